//! Python's `multiprocessing`, the Rust way: mark a function `#[process_task]` and run it in a
//! child process.
//!
//! ```
//! use process_runtime::prelude::*;
//!
//! #[process_task]
//! fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//!
//! let p = add.spawn(5, 7)?;            // a child process is running `add(5, 7)`
//! assert!(p.pid() != std::process::id());
//! assert_eq!(p.join()?, 12);            // waits for it and returns what it returned
//! assert_eq!(add.call(5, 7), 12);       // the same function, in this process
//! # Ok::<(), process_runtime::Error>(())
//! ```
//!
//! The child is a real process with its own memory: a crash, a leak or an `abort` there cannot
//! hurt the parent, and `join` tells you what happened in a [`ProcessError`]. Arguments and return
//! values cross the boundary serialized with serde (bincode), over
//! [ipc-channel](https://docs.rs/ipc-channel).
//!
//! # Tasks
//!
//! [`#[process_task]`](macro@process_task) turns `fn add(a: i64, b: i64) -> i64` into a value
//! `add` that implements [`Task`]: `add.spawn(5, 7)` starts it in a child, `add.call(5, 7)` calls
//! it here, and [`Process::builder(add)`](Process::builder) sets a name, the daemon flag or the
//! start method. Arguments and the return value must be [`ProcessValue`]s: serializable, owned
//! and `Send`. Each task is registered at link time under a stable name (`my_crate::add`), so a
//! process that runs the same executable can find it by name.
//!
//! A task whose argument or return value is a `Vec<u8>` of 1 MiB or more hands it over through
//! shared memory beside the message, with one copy on each side, instead of through the socket
//! (several GB/s rather than a few hundred MB/s). Only a whole argument or value of that type
//! takes this path: a `Vec<u8>` inside a tuple or struct is encoded by serde like any other
//! field. To make the next transfer as fast, each process keeps the shared memory of its last
//! few large transfers, and the last large `Vec<u8>` it was done with, to receive into.
//!
//! Python's other style, "subclass `Process` and override `run`", is an `impl` block:
//!
//! ```
//! use process_runtime::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct MyProcess {
//!     name: String,
//! }
//!
//! #[process_task]
//! impl MyProcess {
//!     fn run(self) -> String {
//!         format!("{} is running", self.name)
//!     }
//! }
//!
//! let p = MyProcess { name: "pl".into() }.spawn()?;
//! assert_eq!(p.join()?, "pl is running");
//! # Ok::<(), process_runtime::Error>(())
//! ```
//!
//! # The process handle
//!
//! [`Process`] has what Python's has: [`pid`](Process::pid), [`name`](Process::name),
//! [`is_daemon`](Process::is_daemon), [`is_alive`](Process::is_alive), [`join`](Process::join)
//! (with the return value), [`join_timeout`](Process::join_timeout),
//! [`terminate`](Process::terminate), [`kill`](Process::kill) and
//! [`exitcode`](Process::exitcode) (`-N` after signal `N`). [`current_process`],
//! [`parent_process`] and [`active_children`] work as in Python; children are named
//! `Process-1`, `Process-2`, … and the main process `MainProcess`.
//!
//! # Start methods
//!
//! [`StartMethod::ForkServer`], the default, asks a small single-threaded server process to fork
//! each child: safe in a multi-threaded parent (a test harness, a tokio runtime), and the
//! fastest. [`StartMethod::Spawn`] executes the program again and runs only the task in it.
//! [`StartMethod::Fork`] forks the caller, which is fast but unsafe if other threads hold locks.
//! [`set_start_method`] changes the default; the builder overrides it per child.
//!
//! **No setup is needed** in `main`, in tests or in doctests: a re-executed child is taken over
//! by a constructor of this crate before `main` runs, so the same binary is both the program and
//! its children. (Python needs `if __name__ == '__main__':` for the same reason.)
//!
//! # Process lifetime
//!
//! As in Python, when a process exits normally (its `main` returns or it calls
//! `std::process::exit`) it terminates its daemon children and waits for the others. Beyond
//! Python:
//!
//! - a daemon child also dies when its parent is killed (`SIGKILL` included), so daemons are
//!   never orphaned;
//! - a child whose handle is dropped without `join` is still reaped when it ends: no zombies;
//! - a daemon may not start children ([`SpawnError::DaemonCannotHaveChildren`]).
//!
//! # Global state and shared objects
//!
//! A global declared with [`process_global!`] has one value per process: a child starts from
//! its parent's value at the moment it is started, under every start method, and its writes
//! never reach the parent (see [`ProcessGlobal`]). What is meant to be shared says so in its
//! type: [`Value`] and [`Array`] hold plain data in shared memory, [`Lock`] and [`RLock`] are
//! locks that tell the next holder when the previous one died holding them, [`Queue`] carries
//! items between any number of producers and consumers, [`pipe`] makes two connected ends, and
//! [`Event`] and [`Semaphore`] synchronise. They are passed to tasks as ordinary arguments:
//!
//! ```
//! use process_runtime::prelude::*;
//!
//! #[process_task]
//! fn add_to(total: Value<u64>, n: u64) {
//!     total.update(|t| *t += n);
//! }
//!
//! let total = Value::new(0_u64)?;
//! let children: Vec<_> = (1..=4).map(|n| add_to.spawn(total.clone(), n)).collect::<Result<_, _>>()?;
//! for child in children {
//!     child.join()?;
//! }
//! assert_eq!(total.get(), 10);
//! # Ok::<(), process_runtime::Error>(())
//! ```
//!
//! They live in anonymous shared memory that the kernel frees when the last process using it
//! exits, however it exits: nothing is left behind in `/dev/shm` or the temp dir.
//!
//! # Errors
//!
//! Starting a child fails with a [`SpawnError`], waiting for one with a [`ProcessError`] that
//! says whether the task panicked (message and `file:line:column`), the child exited (its code)
//! or was killed (the signal), or its result was lost or corrupt. Both convert into [`Error`]
//! for `?`. Nothing in the parent panics on what a child does or sends.
//!
//! # Testing
//!
//! Tasks work in `#[test]` functions under the normal multi-threaded harness, with every start
//! method: a re-executed test binary runs the task, not the tests. A task defined in a test file
//! is registered in that test binary only.
//!
//! # Platform support
//!
//! Linux 5.4 or newer (pidfds, `waitid(P_PIDFD)`), on x86-64 and AArch64. Other Unix systems are
//! not supported yet; the crate does not compile there.
//!
//! # How it works
//!
//! `ARCHITECTURE.md` in the repository explains how a re-executed child finds its task, how the
//! fork server starts and stops, and why the default start method is what it is.

#![deny(missing_docs)]
#![warn(unreachable_pub)]

#[cfg(not(target_os = "linux"))]
compile_error!("process-runtime supports Linux only (it relies on pidfd, clone and prctl)");

// Lets the runtime's own tests and doctests use `#[process_task]`, whose expansion names
// `::process_runtime`.
extern crate self as process_runtime;

mod attach;
mod child;
mod children;
mod codec;
mod current;
mod error;
mod globals;
mod oneshot;
mod panic;
mod pool;
mod process;
mod shared;
mod spawn;
mod spill;
mod start_method;
mod sys;
mod task;
mod wire;

pub use children::active_children;
pub use codec::{DecodeError, EncodeError};
pub use current::{ProcessInfo, current_process, parent_process};
pub use error::{Error, Location, PanicInfo, PoolError, ProcessError, SpawnError, TaskError};
pub use globals::ProcessGlobal;
pub use pool::{AsyncResult, Imap, MapResult, Pool, PoolBuilder};
pub use process::{Builder, Process};
pub use process_macros::process_task;
pub use shared::{
    Array, ArrayGuard, Connection, Event, Lock, LockError, LockGuard, LockResult, Plain, Queue,
    RLock, Semaphore, SharedError, Value, ValueGuard, pipe, pipe_with_capacity,
};
pub use spawn::bootstrap::set_executable;
pub use start_method::{StartMethod, StartMethodError, get_start_method, set_start_method};
pub use task::{ProcessValue, Task};

/// The names most programs need: `use process_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Array, Connection, Event, Lock, Pool, Process, Queue, RLock, Semaphore, SharedError,
        StartMethod, Task, Value, active_children, current_process, parent_process, pipe,
        process_global, process_task,
    };
}

/// What the code generated by `#[process_task]` uses. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::globals::{GLOBALS, GlobalEntry};
    pub use crate::task::{TASKS, TaskEntry};
    pub use linkme;
    pub use serde;
}
