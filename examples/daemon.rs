//! 守护进程 — daemon children end with the parent's `main`; the others are waited for.
//!
//! Ports seed 000's daemon program (only the parent's line prints) and seed 001's `p1.daemon =
//! True` beside a non-daemon `p2`. When `main` returns, the runtime does what Python does at
//! exit: it terminates the daemon children at once, then waits for the non-daemon ones. So
//! `cwz over...`, `子进程` and `end123` are never printed, while `end456` always is, 3 s later.
//! A daemon may print its first line before it is terminated, if it gets that far (seed 001:
//! 可能会有p1任务执行的打印信息123).
//!
//! Run it with `cargo run --example daemon`.

use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;

#[process_task]
fn task(name: String) {
    println!("{name} start... {}", current_process().pid());
    sleep(Duration::from_secs(3));
    println!("{name} over... {}", current_process().pid());
    println!("子进程");
}

#[process_task]
fn foo() {
    println!("123");
    sleep(Duration::from_secs(1));
    println!("end123");
}

#[process_task]
fn bar() {
    println!("456");
    sleep(Duration::from_secs(3));
    println!("end456");
}

fn main() -> Result<(), process_runtime::Error> {
    // Seed 000: p.daemon = True, set before the process starts.
    let _p = Process::builder(task)
        .daemon(true)
        .spawn("cwz".to_string())?;
    println!("主进程");

    // Seed 001: a daemon p1 and an ordinary p2.
    let _p1 = Process::builder(foo).daemon(true).spawn(())?;
    let _p2 = bar.spawn()?;
    println!("main-------");

    // The end of main: the daemons are terminated, p2 is waited for.
    Ok(())
}
