//! 进程pid — every process has a pid, and knows its parent's.
//!
//! Ports the pid programs and notes of seeds 000, 001 and 003: `current_process().pid` and
//! `os.getpid()` give a process its own pid, `os.getppid()` its parent's, and the parent reads the
//! child's from `p.pid`. The child's pid is the parent's `p.pid()`, and the child's parent pid is
//! the parent's own pid. The parent's parent (主主进程, PyCharm in the tutorial) is whatever
//! started the program: the shell, or `cargo run`.
//!
//! Run it with `cargo run --example pid`.

use std::os::unix::process::parent_id;
use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;

#[process_task]
fn task(name: String) {
    // current_process().pid 获取子进程号
    println!("{name} start... {}", current_process().pid());
    // os.getppid(): the parent is the process that spawned this one.
    println!("{name} 父进程id {}", parent_id());
    sleep(Duration::from_secs(2));
    // os.getpid() gives the same number as current_process().pid.
    println!("{name} over... {}", std::process::id());
}

fn main() -> Result<(), process_runtime::Error> {
    let p = task.spawn("neo".to_string())?;
    println!("主进程 {}", std::process::id()); // os.getpid()
    println!("主主进程 {}", parent_id()); // os.getppid()
    println!("子进程 {}", p.pid()); // p.pid
    Ok(())
}
