//! [`Lock`] and [`RLock`]: locks shared between processes that survive the death of their
//! holder.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::mutex::{Acquired, Held, RawMutex, Wait};
use super::segment::{Header, SharedSegment};
use super::{LockError, LockResult, SharedError};

/// The header of a [`Lock`], or of an [`RLock`] if `RECURSIVE`: the same mutex, initialised as
/// recursive or not, under two kinds so that neither is taken for the other.
#[repr(C)]
pub(crate) struct LockHeader<const RECURSIVE: bool> {
    mutex: RawMutex,
}

// SAFETY: `#[repr(C)]`, made only of a mutex.
unsafe impl<const RECURSIVE: bool> Header for LockHeader<RECURSIVE> {
    const KIND: u32 = if RECURSIVE { 3 } else { 2 };
    const NAME: &'static str = if RECURSIVE { "RLock" } else { "Lock" };
}

/// Proof that the calling thread holds a [`Lock`] or an [`RLock`]; dropping it releases the
/// lock. It stays on the thread that acquired it (it is not `Send`).
pub struct LockGuard<'a> {
    _held: Held<'a>,
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

fn guard(acquired: Result<(Held<'_>, Acquired), SharedError>) -> LockResult<LockGuard<'_>> {
    LockError::from_acquired(acquired, |held| LockGuard { _held: held })
}

macro_rules! lock_type {
    ($(#[$doc:meta])* $name:ident, recursive: $recursive:literal) => {
        $(#[$doc])*
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name {
            segment: SharedSegment<LockHeader<$recursive>>,
        }

        impl $name {
            /// A new lock, free.
            pub fn new() -> Result<Self, SharedError> {
                Ok($name {
                    segment: SharedSegment::create(|header: &LockHeader<$recursive>| {
                        header.mutex.init($recursive)
                    })?,
                })
            }

            /// Waits until the lock is free and takes it. If its previous holder died while
            /// holding it, you get it anyway, in [`LockError::OwnerDied`].
            pub fn acquire(&self) -> LockResult<LockGuard<'_>> {
                guard(self.segment.header().mutex.acquire(Wait::Forever))
            }

            /// Takes the lock if it is free now; fails with [`SharedError::WouldBlock`] if not.
            pub fn try_acquire(&self) -> LockResult<LockGuard<'_>> {
                guard(self.segment.header().mutex.acquire(Wait::Never))
            }

            /// Waits at most `timeout` for the lock; fails with [`SharedError::Timeout`] then.
            /// The timeout is measured on the wall clock (`CLOCK_REALTIME`, as
            /// `pthread_mutex_timedlock` does): setting the clock shortens or stretches it.
            pub fn acquire_timeout(&self, timeout: Duration) -> LockResult<LockGuard<'_>> {
                guard(self.segment.header().mutex.acquire(Wait::timeout(timeout)))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

lock_type!(
    /// A lock shared between processes: Python's `multiprocessing.Lock`, except that a holder
    /// that dies does not leave it locked forever.
    ///
    /// Pass it to tasks as an ordinary argument (clone it to keep one); all the clones in all
    /// processes are the same lock. [`acquire`](Lock::acquire) returns a guard that releases it
    /// when dropped.
    ///
    /// When a process dies holding it (it exits, crashes, or is `SIGKILL`ed or `terminate`d),
    /// the kernel releases it, and the next process to acquire it is told so with
    /// [`LockError::OwnerDied`], which carries the guard: whatever the lock protects may be
    /// half updated. (Python's tutorial warns that terminating a lock holder deadlocks the
    /// others; here it cannot.) [`LockError::recover`] takes the guard when that does not
    /// matter.
    ///
    /// ```
    /// use process_runtime::prelude::*;
    /// use process_runtime::LockError;
    ///
    /// #[process_task]
    /// fn hold_forever(lock: Lock, holding: Event) {
    ///     let _guard = lock.acquire().unwrap();
    ///     holding.set();
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let (lock, holding) = (Lock::new()?, Event::new()?);
    /// let holder = hold_forever.spawn(lock.clone(), holding.clone())?;
    /// holding.wait();
    /// holder.kill()?; // dies holding the lock
    /// match lock.acquire() {
    ///     Ok(_guard) => unreachable!("the holder died holding it"),
    ///     Err(LockError::OwnerDied(_guard)) => println!("its holder died: repair what it guards"),
    ///     Err(LockError::Failed(error)) => return Err(error.into()),
    /// }
    /// assert!(lock.acquire().is_ok()); // told once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The lock is not recursive: a thread that holds it and acquires it again gets
    /// [`SharedError::AlreadyHeld`] instead of waiting forever; use an [`RLock`] for that.
    Lock,
    recursive: false
);

lock_type!(
    /// A recursive lock shared between processes: Python's `multiprocessing.RLock`. The thread
    /// that holds it can acquire it again; it is released when every guard is dropped.
    /// Otherwise it is a [`Lock`], down to surviving the death of its holder.
    ///
    /// ```
    /// use process_runtime::RLock;
    ///
    /// let lock = RLock::new()?;
    /// let outer = lock.acquire()?;
    /// let inner = lock.acquire()?; // the same thread: no deadlock
    /// drop((inner, outer));
    /// # Ok::<(), process_runtime::SharedError>(())
    /// ```
    RLock,
    recursive: true
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_excludes_and_reports_what_happened() {
        let lock = Lock::new().unwrap();
        let guard = lock.acquire().unwrap();
        assert!(matches!(
            lock.acquire(),
            Err(LockError::Failed(SharedError::AlreadyHeld))
        ));
        let other = lock.clone();
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(matches!(
                    other.try_acquire(),
                    Err(LockError::Failed(SharedError::WouldBlock))
                ));
                let error = other
                    .acquire_timeout(Duration::from_millis(20))
                    .unwrap_err();
                assert_eq!(error.to_string(), "timed out after 20ms");
            });
        });
        drop(guard);
        assert!(lock.try_acquire().is_ok());
    }

    #[test]
    fn a_thread_that_dies_holding_the_lock_hands_it_over() {
        let lock = Lock::new().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| std::mem::forget(lock.acquire().unwrap()));
        });
        let error = lock.acquire().unwrap_err();
        assert!(error.is_owner_died());
        assert_eq!(
            error.to_string(),
            "the previous holder of the lock died while holding it"
        );
        let guard = error.recover().unwrap();
        drop(guard);
        assert!(lock.acquire().is_ok());
    }

    #[test]
    fn an_rlock_nests() {
        let lock = RLock::new().unwrap();
        let a = lock.acquire().unwrap();
        let b = lock.acquire().unwrap();
        drop(a);
        let other = lock.clone();
        std::thread::scope(|s| {
            s.spawn(|| assert!(other.try_acquire().is_err()));
        });
        drop(b);
        std::thread::scope(|s| {
            s.spawn(|| assert!(other.try_acquire().is_ok()));
        });
    }

    #[test]
    fn a_lock_is_not_an_rlock() {
        let lock = Lock::new().unwrap();
        let error = crate::shared::travel::<_, RLock>(&lock).0.unwrap_err();
        assert!(error.to_string().contains("does not hold one"), "{error}");
    }
}
