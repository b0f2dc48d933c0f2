//! A parent process for the lifetime tests: it starts a child, prints the child's pid, and then
//! ends the way the test asks. Not an example; see tests/lifetime.rs.
//!
//! Usage: `pt-helper <fork|spawn|forkserver> <mode>` where mode is one of
//! - `daemon-then-exit`: start a daemon child that sleeps, print `child <pid>`, return from main;
//! - `daemon-then-wait`: start a daemon child that sleeps, print `child <pid>`, wait to be killed;
//! - `child-then-exit`: start a non-daemon child that sleeps 500 ms, print `child <pid>`, return;
//! - `pool-then-wait`: start a pool of two workers, print `child <pid>` for each, wait to be killed;
//! - `join`: start a child that returns at once, join it, print `child <pid>`, return.

use std::io::Write;
use std::time::Duration;

use process_runtime::prelude::*;

#[process_task]
fn sleep_for(millis: u64) {
    std::thread::sleep(Duration::from_millis(millis));
}

fn main() -> Result<(), process_runtime::Error> {
    let args: Vec<String> = std::env::args().collect();
    let method = match args.get(1).map(String::as_str) {
        Some("fork") => StartMethod::Fork,
        Some("spawn") => StartMethod::Spawn,
        Some("forkserver") => StartMethod::ForkServer,
        other => panic!("unknown start method {other:?}"),
    };
    let mode = args.get(2).map(String::as_str).unwrap_or_default();
    if mode == "pool-then-wait" {
        let pool = Pool::builder().processes(2).start_method(method).build()?;
        for pid in pool.worker_pids() {
            println!("child {pid}");
        }
        std::io::stdout().flush().expect("stdout");
        loop {
            std::thread::park();
        }
    }
    if mode == "join" {
        let child = Process::builder(sleep_for).start_method(method).spawn(0)?;
        let pid = child.pid();
        child.join()?;
        println!("child {pid}");
        return Ok(());
    }
    let (daemon, millis) = match mode {
        "daemon-then-exit" | "daemon-then-wait" => (true, 3_600_000),
        "child-then-exit" => (false, 500),
        other => panic!("unknown mode {other:?}"),
    };
    let child = Process::builder(sleep_for)
        .daemon(daemon)
        .start_method(method)
        .spawn(millis)?;
    println!("child {}", child.pid());
    std::io::stdout().flush().expect("stdout");
    if mode == "daemon-then-wait" {
        loop {
            std::thread::park();
        }
    }
    // Returning drops the handle without joining: the exit handler must see to the child.
    Ok(())
}
