//! A task that is not registered in the executable a child runs is refused with a typed error,
//! never a hang. This file is its own test binary because `set_executable` is process-wide.

use process_runtime::prelude::*;
use process_runtime::{SpawnError, set_executable};

/// Registered in this test binary, but not in `pt-helper`.
#[process_task]
fn only_here() -> u32 {
    7
}

#[test]
fn a_task_missing_from_the_childs_executable_is_a_spawn_error() {
    set_executable(env!("CARGO_BIN_EXE_pt-helper"));
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let error = Process::builder(only_here)
            .start_method(method)
            .spawn(())
            .unwrap_err();
        match &error {
            SpawnError::NotRegistered { name, executable } => {
                assert_eq!(name, "unregistered::only_here");
                // The program to rebuild or fix, under either method.
                assert_eq!(executable, env!("CARGO_BIN_EXE_pt-helper"), "{method}");
            }
            other => panic!("{method}: expected NotRegistered, got {other:?}"),
        }
        assert!(
            error
                .to_string()
                .starts_with("task `unregistered::only_here` is not registered"),
            "{error}"
        );
    }
    // Fork needs no lookup: the child is a copy of this program.
    let p = Process::builder(only_here)
        .start_method(StartMethod::Fork)
        .spawn(())
        .unwrap();
    assert_eq!(p.join().unwrap(), 7);
}
