use process_runtime::process_task;

#[process_task(name)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
