use process_runtime::process_task;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Config {
    verbose: bool,
}

#[process_task]
pub fn run(name: String, config: Config) -> bool {
    config.verbose && !name.is_empty()
}

fn main() {}
