#![deny(missing_docs)]
//! A crate whose tasks are documented.

use process_runtime::process_task;

/// Adds two numbers.
///
/// The documentation stays on the generated value.
#[process_task]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Entry point.
fn main() {
    assert_eq!(add.call(5, 7), 12);
}
