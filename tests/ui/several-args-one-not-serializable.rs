use process_runtime::process_task;

struct Config {
    verbose: bool,
}

#[process_task]
fn run(name: String, config: Config, retries: u32) -> bool {
    config.verbose && !name.is_empty() && retries > 0
}

fn main() {}
