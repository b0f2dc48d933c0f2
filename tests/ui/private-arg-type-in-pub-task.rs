use process_runtime::process_task;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Config {
    verbose: bool,
}

#[process_task]
pub fn run(config: Config) -> bool {
    config.verbose
}

fn main() {}
