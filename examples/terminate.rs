//! 终止进程 — `terminate`, `is_alive` before and after, and the exit code.
//!
//! Ports seed 000's is_alive/terminate program and seed 004's "terminate after 0.1 s, then join"
//! (its `process_fun` without the arguments, which are `args_kwargs`'s lesson).
//!
//! `terminate` sends `SIGTERM`; the child dies wherever it was, without finishing its task. Its
//! exit code is then -15, "killed by signal 15", in Python's convention. Python's tutorial sleeps
//! a second to give the child time to die; here `wait_timeout` waits for exactly as long as that
//! takes (at most the second). `wait` is Python's `join()`: it waits and takes nothing, so the
//! handle can still be asked `is_alive()`; `join` would also return the task's value (here, the
//! error saying it was killed).
//!
//! Run it with `cargo run --example terminate`.

use std::os::unix::process::parent_id;
use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;

#[process_task]
fn task(name: String) {
    println!("{name} start... {}", current_process().pid());
    sleep(Duration::from_secs(2));
    println!("{name} over... {}", current_process().pid());
}

#[process_task]
fn process_fun() {
    for _ in 0..10 {
        println!("helloworld");
        println!("子进程pid:{}", std::process::id());
        sleep(Duration::from_millis(100));
    }
}

fn main() -> Result<(), process_runtime::Error> {
    // Seed 000
    let mut p = task.spawn("neo".to_string())?;
    println!("{}", p.is_alive()); // true
    p.terminate()?; // 直接告诉操作系统，终止子进程
    // time.sleep(1): wait until it has died, at most a second.
    p.wait_timeout(Duration::from_secs(1))?;
    println!("{}", p.is_alive()); // 判断子进程是否存活: false
    println!("{:?}", p.exitcode()); // Some(-15)
    println!("主进程 {}", std::process::id());
    println!("主主进程 {}", parent_id());

    // Seed 004
    let mut p = process_fun.spawn()?;
    println!("父进程PID:{}", std::process::id());
    sleep(Duration::from_millis(100));
    p.terminate()?; // 无论子进程任务是否完成,立即终止
    p.wait()?; // p.join(): 子进程回收资源 阻塞
    println!("{}", p.is_alive()); // 查看子进程是否还在执行: false
    // What `join` says about a child that was terminated:
    if let Err(error) = p.join() {
        println!("{error}, exitcode {:?}", error.exitcode());
    }
    println!("父进程结束");
    Ok(())
}
