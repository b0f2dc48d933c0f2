use process_runtime::process_task;

#[process_task]
fn add((a, b): (i64, i64)) -> i64 {
    a + b
}

fn main() {}
