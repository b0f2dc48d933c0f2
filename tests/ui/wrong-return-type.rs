use process_runtime::process_task;

#[process_task]
fn add(a: i64, b: i64) -> String {
    a + b
}

fn main() {}
