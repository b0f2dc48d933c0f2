//! Signals that have a handler, arriving while children start and end. In a test binary of its
//! own: it installs a handler for `SIGUSR1`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use process_runtime::prelude::*;

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

extern "C" fn nothing(_: libc::c_int) {}

/// Interrupts the calling thread, or any thread of the process, with `SIGUSR1` every few
/// microseconds until dropped.
struct Interrupter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Interrupter {
    fn start(whole_process: bool) -> Interrupter {
        // SAFETY: installs a handler that does nothing, without SA_RESTART, so that every
        // blocking call it interrupts fails with EINTR; `action` is fully initialised.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
        // SAFETY: no precondition.
        let target = unsafe { libc::pthread_self() };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    if whole_process {
                        // SAFETY: no precondition; the handler is installed.
                        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
                    } else {
                        // SAFETY: `target` is the test's thread, which outlives this one (it
                        // joins it when the interrupter is dropped).
                        unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                    }
                    sent += 1;
                    std::thread::sleep(Duration::from_micros(20));
                }
                sent
            }
        });
        Interrupter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Interrupter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let sent = thread.join().expect("the interrupter");
            // Not while a failed assertion unwinds: a second panic would abort the test binary
            // and hide the first.
            if !std::thread::panicking() {
                assert!(sent > 0, "no signal was sent");
            }
        }
    }
}

/// Runs `work` for each start method, with signals sent to this thread, then to the process.
fn interrupted(work: fn(StartMethod)) {
    for whole_process in [false, true] {
        let _interrupter = Interrupter::start(whole_process);
        for method in [
            StartMethod::ForkServer,
            StartMethod::Spawn,
            StartMethod::Fork,
        ] {
            work(method);
        }
    }
}

#[test]
fn signals_during_starts_and_joins_are_not_failures() {
    interrupted(|method| {
        for i in 0..100 {
            let child = Process::builder(add)
                .start_method(method)
                .spawn((i, 1))
                .unwrap_or_else(|error| panic!("{method}, start {i}: {error}"));
            assert_eq!(
                child
                    .join()
                    .unwrap_or_else(|error| panic!("{method}, join {i}: {error}")),
                i + 1
            );
        }
    });
}

#[test]
fn signals_during_a_pools_work_are_not_failures() {
    interrupted(|method| {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap_or_else(|error| panic!("{method}: {error}"));
        for round in 0..20 {
            let sums = pool
                .map(add, (0..1000).map(|i| (i, round)))
                .unwrap_or_else(|error| panic!("{method}, map {round}: {error}"));
            assert_eq!(sums.len(), 1000);
            assert_eq!(sums[999], 999 + round);
            let one = pool
                .apply_async(add, (round, 1))
                .unwrap_or_else(|error| panic!("{method}, apply {round}: {error}"))
                .get()
                .unwrap_or_else(|error| panic!("{method}, result {round}: {error}"));
            assert_eq!(one, round + 1);
        }
    });
}
