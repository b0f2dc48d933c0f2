//! 方式1开启多个子进程 — two children run at once.
//!
//! Ports the ocean-and-sky program of seed 002. Both children are started before either is
//! waited for, so they sleep their 2 s at the same time: the program takes about 2 s, not 4.
//! Which child prints first is the operating system's choice.
//!
//! Run it with `cargo run --example multiple_children`.

use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;

#[process_task]
fn task(x: String) {
    println!("子进程{x}-————>start");
    sleep(Duration::from_secs(2));
    println!("进程{x}-————>end");
}

fn main() -> Result<(), process_runtime::Error> {
    // p1.start(); p2.start(): two processes, running side by side.
    let _p1 = task.spawn("ocean".to_string())?;
    let _p2 = task.spawn("sky".to_string())?;
    sleep(Duration::from_secs(2));
    println!("主进程");
    // Returning from main waits for both children, as Python does at exit.
    Ok(())
}
