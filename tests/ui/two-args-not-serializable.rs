use process_runtime::process_task;

struct Config {
    verbose: bool,
}

struct Report {
    lines: usize,
}

#[process_task]
fn run(config: Config, report: Report) -> bool {
    config.verbose && report.lines > 0
}

fn main() {}
