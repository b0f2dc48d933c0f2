//! 守护进程内无法再开启子进程 — a daemon may not start children.
//!
//! Ports seed 001's rule "daemonic processes are not allowed to have children". Python raises
//! `AssertionError` in the daemon; here `spawn` returns `Err(SpawnError::DaemonCannotHaveChildren)`,
//! a typed error the daemon can match on, with Python's message. The same task, run by a child
//! that is not a daemon, starts its grandchild without trouble.
//!
//! Run it with `cargo run --example daemon_no_children`.

use process_runtime::SpawnError;
use process_runtime::prelude::*;

#[process_task]
fn grandchild() {
    println!("孙进程 {}", current_process().name());
}

#[process_task]
fn child() {
    let me = current_process();
    match grandchild.spawn() {
        // Not joined: like `main`, a child waits for its own children when its task returns.
        Ok(p) => println!("{} 开启了子进程 {}", me.name(), p.name()),
        // What a daemon always gets, whatever it tries to start.
        Err(error @ SpawnError::DaemonCannotHaveChildren) => {
            println!("{} (daemon): {error}", me.name());
        }
        Err(error) => println!("{}: {error}", me.name()),
    }
}

fn main() -> Result<(), process_runtime::Error> {
    // An ordinary child may have children.
    child.spawn()?.join()?;
    // p.daemon = True: the same task is refused its child.
    Process::builder(child).daemon(true).spawn(())?.join()?;
    Ok(())
}
