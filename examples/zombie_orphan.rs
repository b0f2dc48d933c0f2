//! 僵尸进程和孤儿进程 — zombies, orphans, and why the runtime leaves neither.
//!
//! Ports the notes of seeds 000, 002 and 004, with raw `fork` from nix so that nothing is
//! hidden, and reads each process's state from `/proc/<pid>/stat`:
//!
//! - 僵尸进程: a child that has ended but was not waited for keeps its pid and shows state `Z`
//!   until its parent reaps it with `wait`.
//! - 孤儿进程: a child whose parent dies goes on running and is adopted. The tutorials say by
//!   init, pid 1; it is the nearest "subreaper" if there is one (systemd does this for a user
//!   session, and so may a container's init), so the example prints whoever it is.
//! - The runtime never leaves a zombie: a child whose handle was dropped without `join` is
//!   reaped by the runtime's reaper thread as soon as it ends.
//!
//! Run it with `cargo run --example zombie_orphan`.

use std::fs::File;
use std::io::{Read, Write};
use std::thread::sleep;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid, waitpid};
use nix::unistd::{ForkResult, fork, getpid, getppid, pause, pipe};
use process_runtime::prelude::*;

/// The state letter of a process in /proc (`R` running, `S` sleeping, `Z` zombie), or `None`
/// if there is no such process.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (name) state ...": the name may contain spaces, the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[process_task]
fn task() {
    println!("子进程 {} 结束", std::process::id());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 僵尸进程: 子进程已经结束，但PID号还存在，未销毁
    // SAFETY: the program has one thread until the runtime is used below.
    let child = match unsafe { fork() }? {
        ForkResult::Child => std::process::exit(0), // ends at once
        ForkResult::Parent { child } => child,
    };
    // Wait until it has ended, but leave it unreaped (WNOWAIT): it is a zombie now.
    waitid(Id::Pid(child), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)?;
    let pid = child.as_raw() as u32;
    println!("子进程 {pid} 已经结束, 状态 {:?}", proc_state(pid));
    waitpid(child, None)?; // 回收
    println!("wait 之后, 状态 {:?}", proc_state(pid));

    // 孤儿进程: 子进程还在执行，但父进程意外结束
    // The orphan tells us when it has read its parent's pid, and its end closes the pipe.
    let (from_orphan, to_main) = pipe()?;
    // SAFETY: as above, one thread.
    let parent = match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: this process has one thread too.
            if let ForkResult::Child = unsafe { fork() }? {
                // The orphan-to-be.
                let parent = getppid();
                println!("孤儿进程 {}: 父进程 {parent}", getpid());
                File::from(to_main).write_all(b"ready")?;
                // Wait for the parent to die: then the kernel gives this process a new parent.
                while getppid() == parent {
                    sleep(Duration::from_millis(1));
                }
                println!("孤儿进程 {}: 新的父进程 {}", getpid(), getppid());
                std::process::exit(0);
            }
            // Its parent waits to be killed.
            loop {
                pause();
            }
        }
        ForkResult::Parent { child } => child,
    };
    drop(to_main);
    let mut from_orphan = File::from(from_orphan);
    from_orphan.read_exact(&mut [0; 5])?;
    // 父进程意外结束: kill it, and reap it.
    println!("杀死父进程 {parent}");
    kill(parent, Signal::SIGKILL)?;
    waitpid(parent, None)?;
    // Wait for the orphan to finish: read until its end closes the pipe.
    from_orphan.read_to_end(&mut Vec::new())?;

    // The runtime: the handle is dropped at once, without join.
    let pid = task.spawn()?.pid();
    // Wait until the child is gone: ended, and reaped by the runtime, not left a zombie.
    while proc_state(pid).is_some() {
        sleep(Duration::from_millis(1));
    }
    println!("子进程 {pid} 已被回收, 状态 {:?}", proc_state(pid));
    Ok(())
}
