use process_runtime::{Task, process_task};

#[process_task(name = "custom::name")]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {
    assert_eq!(<add as Task>::NAME, "custom::name");
    assert_eq!(add.call(5, 7), 12);
}
