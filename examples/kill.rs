//! 杀死进程 — `kill -9 进程编号`, and exit code -9.
//!
//! Ports seed 003's `kill -9 进程编号   # -9 强制结束`. The first child is killed by its pid, with
//! the `kill` system call that the `kill -9` command makes; the second with the handle's `kill()`,
//! which is what a program should use. `SIGKILL` cannot be caught or ignored: the child ends at
//! once, and `join` says so, with exit code -9.
//!
//! Killing by pid is safe here only because the child is ours and not yet waited for: until the
//! parent reaps it, its pid cannot be given to another process. `Process::kill` never has that
//! worry; it signals the child through a pidfd, which names this process and no other.
//!
//! Run it with `cargo run --example kill`.

use std::thread::sleep;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use process_runtime::prelude::*;

#[process_task]
fn work() {
    // Would run for a minute.
    sleep(Duration::from_secs(60));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // kill -9 进程编号
    let p = work.spawn()?;
    println!("kill -9 {}", p.pid());
    kill(Pid::from_raw(p.pid() as i32), Signal::SIGKILL)?;
    if let Err(error) = p.join() {
        println!("{error}, exitcode {:?}", error.exitcode());
    }

    // The handle's way: p.kill()
    let p = work.spawn()?;
    p.kill()?;
    if let Err(error) = p.join() {
        println!("{error}, exitcode {:?}", error.exitcode());
    }
    Ok(())
}
