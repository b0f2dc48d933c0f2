//! Python's default names, counted from 1 in each process. Its own test binary, so that no other
//! test starts a child first.

use process_runtime::prelude::*;

#[process_task]
fn my_name() -> String {
    current_process().name().to_owned()
}

#[process_task]
fn my_childrens_names() -> Vec<String> {
    (0..2)
        .map(|_| my_name.spawn().unwrap().join().unwrap())
        .collect()
}

#[test]
fn children_are_named_process_n_and_grandchildren_process_n_m() {
    assert_eq!(current_process().name(), "MainProcess");
    let first = my_name.spawn().unwrap();
    assert_eq!(first.name(), "Process-1");
    assert_eq!(first.join().unwrap(), "Process-1");
    let second = my_childrens_names.spawn().unwrap();
    assert_eq!(second.name(), "Process-2");
    assert_eq!(second.join().unwrap(), ["Process-2:1", "Process-2:2"]);
    // A name given to the builder replaces the default, which still counts.
    let named = Process::builder(my_name).name("test").spawn(()).unwrap();
    assert_eq!(named.join().unwrap(), "test");
    assert_eq!(my_name.spawn().unwrap().name(), "Process-4");
}
