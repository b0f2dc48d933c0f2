//! The expansion raises no warning, even under strict lints.
#![deny(
    warnings,
    rust_2018_idioms,
    unused_qualifications,
    unreachable_pub,
    missing_debug_implementations,
    missing_docs,
    unused_results,
    trivial_casts,
    single_use_lifetimes
)]

use process_runtime::process_task;
use serde::{Deserialize, Serialize};

/// A task that is part of a public API.
#[process_task]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// A task without arguments or return value.
#[process_task]
pub fn nothing() {}

#[process_task]
fn private(name: String) -> usize {
    name.len()
}

/// A process in the "subclass" style.
#[derive(Debug, Serialize, Deserialize)]
pub struct Worker {
    /// Its number.
    pub id: u32,
}

#[process_task]
impl Worker {
    /// The task.
    pub fn run(self) -> Option<Self> {
        Some(self)
    }
}

fn main() {
    assert_eq!(add.call(5, 7), 12);
    nothing.call();
    assert_eq!(private.call("abc".to_string()), 3);
}
