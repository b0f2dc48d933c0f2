//! 进程参数 — positional and keyword arguments.
//!
//! Ports seed 003's `Process(target=work1, args=(10, ), kwargs={"c": 100, "b": 10})` and seed
//! 004's `Process(target=process_fun, args=(1,2), kwargs={'A':'a'})` with `def process_fun(*args,
//! **kwargs)`.
//!
//! Rust has no keyword arguments. A task's arguments are positional: `spawn` takes them in the
//! order of the function's parameters. Where Python passes some by name, Rust passes a struct with
//! named fields, which can be written in any order: `Rest { c: 100, b: 10 }` is
//! `kwargs={"c": 100, "b": 10}`. Python's `*args` and `**kwargs` (any number of values, any
//! names) are a `Vec` and a map.
//!
//! Run it with `cargo run --example args_kwargs`.

use std::collections::BTreeMap;

use process_runtime::prelude::*;
use serde::{Deserialize, Serialize};

// def work1(a, b, c): `a` is given by position, `b` and `c` by name.
#[derive(Serialize, Deserialize)]
struct Rest {
    b: i32,
    c: i32,
}

#[process_task]
fn work1(a: i32, rest: Rest) {
    let Rest { b, c } = rest;
    println!("a={a}, b={b}, c={c}");
}

// def process_fun(*args, **kwargs)
#[process_task]
fn process_fun(args: Vec<i32>, kwargs: BTreeMap<String, String>) {
    println!("helloworld");
    println!("{args:?}");
    println!("{kwargs:?}");
    println!("子进程pid:{}", std::process::id());
}

fn main() -> Result<(), process_runtime::Error> {
    // 先 args 传递给 a ，再传递后续的 kwargs: args=(10, ), kwargs={"c": 100, "b": 10}
    work1.spawn(10, Rest { c: 100, b: 10 })?.join()?;

    // args=(1,2), kwargs={'A':'a'}
    let kwargs = BTreeMap::from([("A".to_string(), "a".to_string())]);
    process_fun.spawn(vec![1, 2], kwargs)?.join()?;
    Ok(())
}
