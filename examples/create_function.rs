//! 创建进程 — a function becomes a process.
//!
//! Ports the first program of seed 000 (`Process(target=task, args=('cwz',))`), 方式1 of seed 002
//! (a `task()` without arguments) and 方式一 of seed 001 (`task("pl")`), one after the other.
//! `spawn` starts the child and returns; the parent does not wait for the task, so it prints its
//! line while the child runs: `主进程` comes before the child's last line. In seed 002 the parent
//! sleeps 3 s before it prints, longer than the child's 2 s, so there the child's lines come
//! first.
//!
//! Like Python, the program does not end when `main` returns: the runtime waits for a child that
//! is not a daemon. (The tutorials show the parent's line before the child's first line. That
//! order is the operating system's choice: the child is already running when `spawn` returns,
//! and either may print first.)
//!
//! Run it with `cargo run --example create_function`.

use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;

// 定义一个任务 (seed 000)
#[process_task]
fn task(name: String) {
    println!("{name}的任务开始执行");
    sleep(Duration::from_secs(1));
    println!("{name}的任务已经结束");
}

// 方式一：最常用的（函数式的）(seed 001; "runing" is the tutorial's spelling)
#[process_task]
fn task_001(name: String) {
    println!("{name} is runing");
    sleep(Duration::from_secs(2));
    println!("{name} is gone");
}

// 开启子进程的方式1 (seed 002): a task without arguments is spawned with `spawn()`
#[process_task]
fn task_002() {
    println!("进程 start");
    sleep(Duration::from_secs(2));
    println!("进程 end");
}

fn main() -> Result<(), process_runtime::Error> {
    // Seed 000: p = Process(target=task, args=('cwz',)); p.start()
    let p = task.spawn("cwz".to_string())?;
    println!("主进程");
    // The Python program ends here and waits for its child at exit. This one goes on with the
    // next tutorial's program, so it waits for the child now.
    p.join()?;

    // Seed 002: the parent sleeps longer than the child works, so it prints last.
    let p = task_002.spawn()?;
    sleep(Duration::from_secs(3));
    println!("主进程");
    p.join()?;

    // Seed 001: seed 000's program with another name.
    let _p = task_001.spawn("pl".to_string())?;
    println!("主进程开始");
    // No join: returning from main waits for the child, as Python does at exit.
    Ok(())
}
