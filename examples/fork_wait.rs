//! os.fork / os.wait — the system calls under every child process.
//!
//! Ports seed 004's `os.fork()` program, with nix. `fork` copies the running process: it returns
//! twice, in the parent with the child's pid and in the child with nothing (Python's `ret == 0`),
//! and both copies go on from there at the same time, so their lines interleave as the scheduler
//! pleases. The child fails at the end, as the tutorial's child raises an exception: like an
//! uncaught Python exception, an error returned from Rust's `main` prints a message on stderr and
//! ends the process with exit code 1. `wait` reaps it and returns the raw wait status, 256: the
//! exit code sits in the second byte (1 << 8), and `WEXITSTATUS` takes it out.
//!
//! The runtime does all of this for you, with pidfds and without the raw status; see the other
//! examples. Run this one with `cargo run --example fork_wait`.

use std::thread::sleep;
use std::time::Duration;

use nix::unistd::{ForkResult, fork, getpid, getppid};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 创建一个进程(子进程)
    // SAFETY: the program has one thread, so the child is a complete copy of it and may do
    // anything the parent could.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // 子进程
            println!("我是子进程PID:{},父进程PPID:{}", getpid(), getppid());
            for _ in 0..10 {
                println!("我是子进程");
                sleep(Duration::from_millis(100));
            }
            // raise Exception('抛出异常状态'): the child ends with exit code 1.
            Err("抛出异常状态".into())
        }
        ForkResult::Parent { .. } => {
            // 父进程
            println!("我是父进程PID:{},父进程PPID:{}", getpid(), getppid());
            for _ in 0..5 {
                println!("父进程");
                sleep(Duration::from_millis(100));
            }
            println!("父进程\"任务\"结束");
            // 阻塞, 等待子进程结束并回收资源: os.wait() returns the pid and the raw status.
            let mut status = 0;
            // SAFETY: `status` is a valid place for `wait` to write the status to.
            let pid = unsafe { libc::wait(&mut status) };
            println!("子进程结束,pid为{},结束状态{}", pid, status);
            println!("退出码{}", libc::WEXITSTATUS(status)); // 256 >> 8 == 1
            Ok(())
        }
    }
}
