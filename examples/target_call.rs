//! target传递参数是传递函数名，而不是函数调用 — pass the task, not its call.
//!
//! Ports seed 003's warning about `Process(target=work1())`. In Python that line calls `work1`
//! at once, in the parent, and passes its result (`None`) as the target: the work runs in the
//! wrong process, before `start()`, and nothing complains. In Rust the mistake does not compile:
//! only the task itself can be started. `Process::builder(work1())` is rejected because a task is
//! a value, not a function, and `work1.call().spawn()` because the result of the call, `()`, has
//! nothing to start. The compile-fail test `tests/ui/target-call-mistake.rs` keeps it that way.
//!
//! What remains is to say which process runs the work: `work1.call()` runs it here, like a
//! function; `work1.spawn()` runs it in a child. The pids show the difference.
//!
//! Run it with `cargo run --example target_call`.

use process_runtime::prelude::*;

#[process_task]
fn work1() {
    println!("work1 在进程 {} 中执行", std::process::id());
}

fn main() -> Result<(), process_runtime::Error> {
    println!("主进程 {}", std::process::id());

    // What Python's target=work1() does: run it here, in the parent.
    work1.call();

    // process_obj = multiprocessing.Process(target=work1); process_obj.start()
    let process_obj = Process::builder(work1).spawn(())?;
    process_obj.join()?;
    Ok(())
}
