// Seed 003's mistake, `Process(target=work1())`: calling the task and starting its result instead
// of the task. In Python it runs `work1` in the parent and starts a process with no target; in
// Rust neither spelling of it compiles (see examples/target_call.rs).
use process_runtime::prelude::*;

#[process_task]
fn work1() {}

fn main() {
    // A task is a value, not a function: it cannot be called like one.
    let _ = Process::builder(work1());
    // `call` runs it here and returns its result, `()`, which cannot be started.
    let _ = work1.call().spawn();
}
