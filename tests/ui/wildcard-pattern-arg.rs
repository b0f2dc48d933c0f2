use process_runtime::process_task;

#[process_task]
fn ignore(_: String) {}

fn main() {}
