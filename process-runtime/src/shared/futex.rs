//! Futex words in shared memory: the waits of [`Event`](crate::Event),
//! [`Semaphore`](crate::Semaphore) and the rings of [`Queue`](crate::Queue) and
//! [`Connection`](crate::Connection).
//!
//! The calls leave out `FUTEX_PRIVATE_FLAG`: the word is in memory shared between processes, so
//! the kernel must key waiters by the page they share, not by this process's address.

use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// Sleeps while `word` holds `expected`, until [`wake_all`] on the same word, a signal or
/// `deadline`. Returns early for many reasons (the word changed before the call, a signal, a
/// spurious wake-up); callers check their condition again, and the deadline themselves.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) {
    let timeout = match deadline {
        None => None,
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            Some(libc::timespec {
                tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(left.subsec_nanos() as i32),
            })
        }
    };
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the whole call, which only reads it;
    // the timeout pointer is null or points to a timespec on this stack; FUTEX_WAIT ignores the
    // last two arguments. Every error (EAGAIN: the word changed; EINTR; ETIMEDOUT) means "look
    // again", which is what the caller does anyway.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            timeout_ptr,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Waits until `ready()` holds, sleeping on `word` while it is 0, or until `deadline`; returns
/// whether `ready()` held. The wait of an object whose waiters sleep while its word is 0 and
/// whose wakers wake them when it leaves 0 ([`Event`](crate::Event) and
/// [`Semaphore`](crate::Semaphore)).
pub(crate) fn wait_until(
    word: &AtomicU32,
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> bool,
) -> bool {
    loop {
        if ready() {
            return true;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return false;
        }
        wait(word, 0, deadline);
    }
}

/// Wakes every thread, in any process, that sleeps in [`wait`] on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE reads nothing through the
    // other pointers, and only uses the address to find the waiters.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}
