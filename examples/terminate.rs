//! 终止进程 — `terminate`, `is_alive` before and after, and the exit code.
//!
//! Ports seed 000's is_alive/terminate program and seed 004's "terminate after 0.1 s, then join"
//! (its `process_fun` without the arguments, which are `args_kwargs`'s lesson).
//!
//! `terminate` sends `SIGTERM`; the child dies wherever it was, without finishing its task. Its
//! exit code is then -15, "killed by signal 15", in Python's convention. Python's tutorial sleeps
//! a second to give the child time to die; here `join_timeout` waits for exactly as long as that
//! takes (at most the second). `join` takes the handle and returns what happened, so after it
//! there is no handle left to ask `is_alive()`: its result says it instead.
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
    // time.sleep(1): wait until it has died, at most a second. The child's end is an error
    // here: it was killed by signal 15.
    if let Err(error) = p.join_timeout(Duration::from_secs(1)) {
        println!("{error}");
    }
    println!("{}", p.is_alive()); // 判断子进程是否存活: false
    println!("{:?}", p.exitcode()); // Some(-15)
    println!("主进程 {}", std::process::id());
    println!("主主进程 {}", parent_id());

    // Seed 004
    let p = process_fun.spawn()?;
    println!("父进程PID:{}", std::process::id());
    sleep(Duration::from_millis(100));
    p.terminate()?; // 无论子进程任务是否完成,立即终止
    // p.join(): 子进程回收资源 阻塞; its result says the child is no longer alive.
    if let Err(error) = p.join() {
        println!("{error}, exitcode {:?}", error.exitcode());
    }
    println!("父进程结束");
    Ok(())
}
