use process_runtime::process_task;

#[process_task]
#[cfg(unix)]
#[inline]
#[must_use]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[process_task]
#[cfg(not(unix))]
fn add(a: i64, b: i64) -> i64 {
    a - b
}

fn main() {
    assert_eq!(add.call(5, 7), 12);
}
