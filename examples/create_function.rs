//! 创建进程 — a function becomes a process.
//!
//! Ports the first program of seed 000 (`Process(target=task, args=('cwz',))`). `spawn` starts
//! the child and returns at once, so the parent goes on to print its line while the child is
//! still starting: `主进程` comes first, then the child's two lines a second apart.
//!
//! Like Python, the program does not end when `main` returns: the runtime waits for a child that
//! is not a daemon. (The order of the parent's line and the child's first line is the operating
//! system's choice; a child takes a few hundred microseconds to start, so the parent wins.)
//!
//! Run it with `cargo run --example create_function`.

use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;

// 定义一个任务
#[process_task]
fn task(name: String) {
    println!("{name}的任务开始执行");
    sleep(Duration::from_secs(1));
    println!("{name}的任务已经结束");
}

fn main() -> Result<(), process_runtime::Error> {
    // p = Process(target=task, args=('cwz',)); p.start()
    let _p = task.spawn("cwz".to_string())?;
    println!("主进程");
    // No join: returning from main waits for the child, as Python does at exit.
    Ok(())
}
