//! What the integration tests share: waiting on a condition with a deadline, reading a process's
//! state from /proc, and running one test under every start method.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use process_runtime::{Pool, Process, StartMethod, Task};

/// How long a test waits for something that should happen promptly, before it fails. Generous:
/// CI machines are slow and loaded.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Checks `condition` until it holds or [`DEADLINE`] passes; returns whether it held. The pause
/// between checks is short and not a synchronisation: the test fails only at the deadline.
pub fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The state letter of a process in /proc (`R`, `S`, `Z`, ...), or `None` if it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may contain spaces; the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether a process is gone or a zombie that someone else has to reap (an orphan whose new
/// parent is slow to reap still counts as dead).
pub fn is_dead(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z'))
}

/// Whether a pid names nothing at all any more: no process, no zombie.
pub fn is_reaped(pid: u32) -> bool {
    proc_state(pid).is_none()
}

/// The parent pid of a process, from /proc.
pub fn proc_ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Starts `task` with `args` under `method`; a failure to start fails the test.
pub fn spawn<T: Task>(method: StartMethod, task: T, args: T::Args) -> Process<T::Output> {
    Process::builder(task)
        .start_method(method)
        .spawn(args)
        .expect("start a child")
}

/// A pool of `processes` workers started by `method`, with every other option at its default.
pub fn pool(method: StartMethod, processes: usize) -> Pool {
    Pool::builder()
        .processes(processes)
        .start_method(method)
        .build()
        .expect("start the pool")
}

/// Defines `mod fork`, `mod spawn` and `mod forkserver`, each with one `#[test]` per listed
/// function, calling it with that start method.
#[macro_export]
macro_rules! per_start_method {
    ($($test:ident),* $(,)?) => {
        mod fork {
            $( #[test] fn $test() { super::$test(process_runtime::StartMethod::Fork) } )*
        }
        mod spawn {
            $( #[test] fn $test() { super::$test(process_runtime::StartMethod::Spawn) } )*
        }
        mod forkserver {
            $( #[test] fn $test() { super::$test(process_runtime::StartMethod::ForkServer) } )*
        }
    };
}

/// `len` bytes that differ for each `seed`: payloads whose mix-ups a test can see.
pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sets its event when dropped: a test whose tasks wait on a gate opens it however the test
/// ends, so that a failed assertion fails the test instead of leaving a pool's drop waiting for
/// ever on tasks that wait for the gate.
pub struct SetOnDrop(pub process_runtime::Event);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}
