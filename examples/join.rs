//! join方法的使用 — `join` makes the parent wait.
//!
//! Ports the join program of seed 000. Without `join` the parent would print `主进程` at once
//! (see `create_function`); with it, the parent waits until the child has ended, so `主进程` is
//! always the last line. In Rust `join` also hands back what the task returned (here `()`), or
//! an error saying how the child failed.
//!
//! Run it with `cargo run --example join`.

use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;

#[process_task]
fn task(name: String) {
    println!("{name} start...");
    sleep(Duration::from_secs(2));
    println!("{name} over...");
}

fn main() -> Result<(), process_runtime::Error> {
    let p = task.spawn("neo".to_string())?; // 告诉操作系统，开启子进程
    p.join()?; // 告诉操作系统，结束子进程后，父进程再结束
    println!("主进程");
    Ok(())
}
