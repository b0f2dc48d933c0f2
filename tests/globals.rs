//! `process_global!`: each process has its own value; a child starts from its parent's value at
//! the moment it is started, under every start method; a child's writes never reach the parent.

mod common;

use std::collections::BTreeMap;

use process_runtime::SpawnError;
use process_runtime::prelude::*;
use serde::{Deserialize, Serialize};

use common::spawn;

per_start_method!(
    a_child_starts_from_the_parents_current_value,
    a_childs_writes_never_reach_the_parent,
    the_value_is_taken_when_the_child_starts,
    globals_of_several_types_are_isolated,
    a_grandchild_starts_from_its_parents_value,
    a_pool_worker_starts_from_the_value_when_it_started,
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct Config {
    name: String,
    retries: u32,
    tags: BTreeMap<String, f64>,
}

process_global! {
    static X: i64 = 100;
    static NAME: String = "pl".to_string();
    static LIST: Vec<String> = Vec::new();
    static CONFIG: Config = Config::default();
    static MAYBE: Option<u8> = None;
    static UNTOUCHED: u32 = 7;
}

// Each test uses globals of its own, so that tests running in parallel threads of this binary do
// not see each other's writes.
process_global! {
    static A: i64 = 0;
    static B: i64 = 0;
    static C: i64 = 0;
    static D: i64 = 0;
    static E: i64 = 0;
    static BUSY: i64 = 0;
}

#[process_task]
fn read_a() -> i64 {
    A.get()
}

fn a_child_starts_from_the_parents_current_value(method: StartMethod) {
    A.set(200);
    let child = spawn(method, read_a, ());
    assert_eq!(child.join().unwrap(), 200);
}

#[process_task]
fn bump_b() -> i64 {
    B.update(|b| *b += 1_000);
    B.get()
}

fn a_childs_writes_never_reach_the_parent(method: StartMethod) {
    let before = B.get();
    let child = spawn(method, bump_b, ());
    assert_eq!(child.join().unwrap(), before + 1_000);
    assert_eq!(B.get(), before);
}

#[process_task]
fn read_c() -> i64 {
    C.get()
}

fn the_value_is_taken_when_the_child_starts(method: StartMethod) {
    C.set(1);
    let child = spawn(method, read_c, ());
    C.set(2); // after the start: the child keeps the value it started with
    assert_eq!(child.join().unwrap(), 1);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    x: i64,
    name: String,
    list: Vec<String>,
    config: Config,
    maybe: Option<u8>,
    untouched: u32,
}

#[process_task]
fn read_and_write_everything() -> Everything {
    let seen = Everything {
        x: X.get(),
        name: NAME.get(),
        list: LIST.get(),
        config: CONFIG.get(),
        maybe: MAYBE.get(),
        untouched: UNTOUCHED.get(),
    };
    X.set(-1);
    NAME.set("pl1".into());
    LIST.update(|list| list.clear());
    CONFIG.update(|config| config.retries = 0);
    MAYBE.set(None);
    UNTOUCHED.set(0);
    seen
}

fn globals_of_several_types_are_isolated(method: StartMethod) {
    // Only this test touches these globals; the same values under every start method.
    let config = Config {
        name: "db".into(),
        retries: 3,
        tags: [("a".to_string(), 0.5)].into(),
    };
    X.set(200);
    NAME.set("pl".into());
    LIST.set(vec!["ocean".into(), "sky".into()]);
    CONFIG.set(config.clone());
    MAYBE.set(Some(42));
    let child = spawn(method, read_and_write_everything, ());
    let seen = child.join().unwrap();
    assert_eq!(
        seen,
        Everything {
            x: 200,
            name: "pl".into(),
            list: vec!["ocean".into(), "sky".into()],
            config: config.clone(),
            maybe: Some(42),
            untouched: 7,
        }
    );
    // The parent's values are as it left them.
    assert_eq!(X.get(), 200);
    assert_eq!(NAME.get(), "pl");
    assert_eq!(LIST.get().len(), 2);
    assert_eq!(CONFIG.get(), config);
    assert_eq!(MAYBE.get(), Some(42));
    assert_eq!(UNTOUCHED.get(), 7);
}

#[process_task]
fn set_d_and_ask_a_grandchild(method: StartMethod) -> (i64, i64) {
    let inherited = D.get();
    D.set(inherited * 10);
    let grandchild = spawn(method, read_d, ());
    (inherited, grandchild.join().unwrap())
}

#[process_task]
fn read_d() -> i64 {
    D.get()
}

fn a_grandchild_starts_from_its_parents_value(method: StartMethod) {
    D.set(3);
    let child = spawn(method, set_d_and_ask_a_grandchild, method);
    assert_eq!(child.join().unwrap(), (3, 30));
    assert_eq!(D.get(), 3);
}

#[process_task]
fn read_e() -> i64 {
    E.get()
}

fn a_pool_worker_starts_from_the_value_when_it_started(method: StartMethod) {
    E.set(1);
    let pool = common::pool(method, 2);
    E.set(2);
    // The workers started while E was 1.
    assert!(
        pool.map(read_e, vec![(); 10])
            .unwrap()
            .iter()
            .all(|&e| e == 1)
    );
    // A pool started now sees 2.
    let later = common::pool(method, 1);
    assert_eq!(later.apply(read_e, ()).unwrap(), 2);
}

#[process_task]
fn nothing() {}

#[test]
fn starting_a_process_inside_update_is_an_error_not_a_hang() {
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        let result = BUSY.update(|value| {
            *value += 1;
            Process::builder(nothing)
                .start_method(method)
                .spawn(())
                .map(|_| ())
        });
        match result {
            Err(SpawnError::GlobalBusy { name }) => assert_eq!(name, "globals::BUSY"),
            other => panic!("{method}: {other:?}"),
        }
    }
}

#[test]
fn a_global_is_named_by_its_module_path() {
    assert_eq!(UNTOUCHED.name(), "globals::UNTOUCHED");
}
