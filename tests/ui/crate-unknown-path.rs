use process_runtime::process_task;

#[process_task(crate = process_runtim)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
