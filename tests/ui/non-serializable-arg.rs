use process_runtime::process_task;

struct Config {
    verbose: bool,
}

#[process_task]
fn run(config: Config) -> bool {
    config.verbose
}

fn main() {}
