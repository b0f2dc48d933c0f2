//! A `process_global` holding more shared objects than one message to a child can carry. In a
//! test binary of its own: a changed global goes to every child started in the process.

mod common;

use process_runtime::prelude::*;
use process_runtime::{SpawnError, Value};

process_global! {
    static MANY: Vec<Value<u64>> = Vec::new();
}

#[process_task]
fn count_them() -> usize {
    MANY.with(Vec::len)
}

#[test]
fn globals_holding_too_many_shared_objects_are_a_spawn_error_not_a_panic() {
    // Each is a file descriptor beside the start message, and ipc-channel panics past 64. A
    // forked child needs no message: it has the values already.
    MANY.set(
        (0..70)
            .map(|i| Value::new(i).expect("a shared value"))
            .collect(),
    );
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        match Process::builder(count_them).start_method(method).spawn(()) {
            Err(SpawnError::Encode { source, .. }) => {
                let reason = source.to_string();
                assert!(reason.contains("70 shared objects"), "{method:?}: {reason}");
            }
            other => panic!("{method:?}: {other:?}"),
        }
    }
    let forked = common::spawn(StartMethod::Fork, count_them, ());
    assert_eq!(forked.join().expect("the forked child's count"), 70);
}
