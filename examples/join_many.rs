//! 进程对象join方法 — joins overlap: three children sleeping 1, 2 and 3 s take about 3 s in all.
//!
//! Ports seed 001's p1/p2/p3 program and its loop variant (优化上述代码). All three children are
//! started before the first `join`, so they sleep at the same time; each `join` waits only for
//! what is left of its child's sleep. The total is about 3 s, not 1 + 2 + 3 = 6 s.
//!
//! Run it with `cargo run --example join_many`.

use std::thread::sleep;
use std::time::{Duration, Instant};

use process_runtime::prelude::*;

#[process_task]
fn task(sec: u64) {
    println!("is running");
    sleep(Duration::from_secs(sec));
    println!("is gone");
}

fn main() -> Result<(), process_runtime::Error> {
    // Three variables, three joins.
    let start_time = Instant::now();
    let p1 = task.spawn(1)?;
    let p2 = task.spawn(2)?;
    let p3 = task.spawn(3)?;
    // join就是阻塞: the parent stops here until p1 has ended, while p2 and p3 go on running.
    p1.join()?;
    println!("1");
    p2.join()?;
    println!("2");
    p3.join()?;
    println!("3");
    println!("主进程: {}", start_time.elapsed().as_secs_f64());

    // 优化上述代码: the same with a list.
    let start_time = Instant::now();
    let mut lst = Vec::new();
    for i in 1..4 {
        lst.push(task.spawn(i)?);
    }
    for (i, p) in lst.into_iter().enumerate() {
        p.join()?;
        println!("{}", i + 1);
    }
    println!("主进程: {}", start_time.elapsed().as_secs_f64());
    Ok(())
}
