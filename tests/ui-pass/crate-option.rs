use process_runtime::process_task;

#[process_task(crate = process_runtime)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[process_task(crate = "process_runtime")]
fn sub(a: i64, b: i64) -> i64 {
    a - b
}

fn main() {
    assert_eq!(add.call(5, 7), 12);
    assert_eq!(sub.call(7, 5), 2);
}
