//! 同步与异步 — synchronous and asynchronous submission, told apart by the clock.
//!
//! Ports the last section of seed 004. 同步 (synchronous): each task must finish before the next
//! starts, so four tasks of 0.5 s take 2 s. 异步 (asynchronous): all four are started first and
//! run at the same time, in no particular order, and take about 0.5 s. The difference is only
//! where the parent waits: after each `spawn`, or after all of them. (Seed 004 shows the same
//! with a pool's `apply` and `apply_async`; see the `pool` examples.)
//!
//! Run it with `cargo run --example sync_async`.

use std::thread::sleep;
use std::time::{Duration, Instant};

use process_runtime::prelude::*;

#[process_task]
fn test(num: u32) {
    println!("开始执行任务{num}");
    sleep(Duration::from_millis(500));
    println!("结束执行任务{num}");
}

fn main() -> Result<(), process_runtime::Error> {
    // 同步: start one, wait for it, start the next.
    let start = Instant::now();
    for i in 0..4 {
        test.spawn(i)?.join()?;
    }
    println!("同步: {:.2}s", start.elapsed().as_secs_f64());

    // 异步: start them all, then wait for them all.
    let start = Instant::now();
    let mut children = Vec::new();
    for i in 0..4 {
        children.push(test.spawn(i)?);
    }
    for p in children {
        p.join()?;
    }
    println!("异步: {:.2}s", start.elapsed().as_secs_f64());
    Ok(())
}
