//! 进程名称 — naming a process, and reading the name inside it.
//!
//! Ports seed 003's `current_process().name` and seed 004's `Process(..., name='test')` with
//! `print(p.name)`. The parent reads a child's name from its handle, the child from
//! `current_process()`; both see the same name. A child without a name is `Process-N`, N counting
//! the children this process has started (the named one too), and the main process is
//! `MainProcess`.
//!
//! Run it with `cargo run --example name`.

use process_runtime::prelude::*;

#[process_task]
fn task() {
    // multiprocessing.current_process().name
    println!("子进程名称:{}", current_process().name());
}

fn main() -> Result<(), process_runtime::Error> {
    println!("主进程名称:{}", current_process().name());

    // Process(target=task, name='test')
    let p = Process::builder(task).name("test").spawn(())?;
    println!("{}", p.name()); // print(p.name)
    p.join()?;

    // No name given: the runtime numbers it, as Python does.
    let p = task.spawn()?;
    println!("{}", p.name());
    p.join()?;
    Ok(())
}
