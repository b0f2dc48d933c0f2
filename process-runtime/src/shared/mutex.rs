//! A robust, process-shared pthread mutex in shared memory: the lock of [`Lock`](crate::Lock),
//! [`RLock`](crate::RLock), [`Value`](crate::Value), [`Array`](crate::Array) and of every ring.
//!
//! *Robust* means the kernel watches it: when a thread that holds it ends (its process exits,
//! crashes or is `SIGKILL`ed), the kernel marks the mutex, and the next thread to lock it gets it
//! with `EOWNERDEAD` instead of waiting forever. That thread makes it consistent again and is
//! told ([`Acquired::OwnerDied`]). The kernel finds the held mutexes through the robust list the
//! C library registers for each thread; the fork server's children register theirs again after
//! their raw `clone` (see `sys::clone_as_sibling`), so this holds under every start method.

use std::cell::UnsafeCell;
use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use super::SharedError;

/// A `pthread_mutex_t` in shared memory, initialised once by [`RawMutex::init`].
#[repr(transparent)]
pub(crate) struct RawMutex(UnsafeCell<libc::pthread_mutex_t>);

impl std::fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RawMutex").field(&self.0.get()).finish()
    }
}

// SAFETY: a pthread mutex is made to be locked and unlocked by many threads at once, through a
// shared pointer; this one is process-shared, so threads of other processes do the same through
// their own mappings of the page.
unsafe impl Sync for RawMutex {}

/// How long [`RawMutex::acquire`] may wait.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Until the mutex is free.
    Forever,
    /// Not at all: fail with [`SharedError::WouldBlock`] if it is held.
    Never,
    /// Until `deadline`, then fail with [`SharedError::Timeout`] naming `timeout`.
    Until {
        /// When to give up.
        deadline: Instant,
        /// The timeout the caller asked for, for the error message.
        timeout: Duration,
    },
}

impl Wait {
    /// `timeout` from now; a timeout too large for the clock waits forever.
    pub(crate) fn timeout(timeout: Duration) -> Wait {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => Wait::Until { deadline, timeout },
            None => Wait::Forever,
        }
    }

    /// The deadline, if any.
    pub(crate) fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Until { deadline, .. } => Some(deadline),
            Wait::Forever | Wait::Never => None,
        }
    }

    /// The error for a wait that ended without what it waited for.
    pub(crate) fn expired(self) -> SharedError {
        match self {
            Wait::Until { timeout, .. } => SharedError::Timeout { timeout },
            Wait::Forever | Wait::Never => SharedError::WouldBlock,
        }
    }

    /// Whether the time to wait is over.
    pub(crate) fn is_over(self) -> bool {
        match self {
            Wait::Forever => false,
            Wait::Never => true,
            Wait::Until { deadline, .. } => Instant::now() >= deadline,
        }
    }
}

/// How a mutex was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// From a holder that unlocked it.
    Clean,
    /// From a holder that died holding it; the mutex has been made consistent again.
    OwnerDied,
}

/// The mutex, held by the calling thread until this is dropped. Not `Send`: a pthread mutex must
/// be unlocked by the thread that locked it.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    mutex: &'a RawMutex,
    _not_send: PhantomData<*const ()>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SAFETY: a `Held` exists only while this thread holds the mutex (made by `acquire`),
        // and is dropped once, on this thread (it is not `Send`).
        unsafe { libc::pthread_mutex_unlock(self.mutex.0.get()) };
    }
}

impl RawMutex {
    /// Initialises the mutex: process-shared, robust, and either recursive or error-checking
    /// (locking it twice from one thread is an error instead of a deadlock). Called once, by the
    /// process that creates the segment, before any other process can see it.
    pub(crate) fn init(&self, recursive: bool) -> Result<(), SharedError> {
        let kind = if recursive {
            libc::PTHREAD_MUTEX_RECURSIVE
        } else {
            libc::PTHREAD_MUTEX_ERRORCHECK
        };
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        let os = |source| SharedError::Os {
            action: "initialise a process-shared mutex",
            source,
        };
        // SAFETY: `attr` is writable memory for a pthread_mutexattr_t, which init fills.
        check(unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) }).map_err(os)?;
        // SAFETY: `attr` was initialised just above and is destroyed only after this block; the
        // mutex memory is valid, aligned, and not yet visible to any other thread or process.
        let result = unsafe {
            check(libc::pthread_mutexattr_settype(attr.as_mut_ptr(), kind))
                .and_then(|()| {
                    check(libc::pthread_mutexattr_setpshared(
                        attr.as_mut_ptr(),
                        libc::PTHREAD_PROCESS_SHARED,
                    ))
                })
                .and_then(|()| {
                    check(libc::pthread_mutexattr_setrobust(
                        attr.as_mut_ptr(),
                        libc::PTHREAD_MUTEX_ROBUST,
                    ))
                })
                .and_then(|()| check(libc::pthread_mutex_init(self.0.get(), attr.as_ptr())))
        };
        // SAFETY: `attr` was initialised by pthread_mutexattr_init and is not used afterwards.
        unsafe { libc::pthread_mutexattr_destroy(attr.as_mut_ptr()) };
        result.map_err(os)
    }

    /// Locks the mutex, waiting as `wait` says. A mutex whose holder died is made consistent and
    /// returned as [`Acquired::OwnerDied`].
    pub(crate) fn acquire(&self, wait: Wait) -> Result<(Held<'_>, Acquired), SharedError> {
        let mutex = self.0.get();
        let rc = match wait {
            // SAFETY: the mutex was initialised by its creator (the segment's tag says so) and
            // lives as long as `self`.
            Wait::Forever => unsafe { libc::pthread_mutex_lock(mutex) },
            // SAFETY: as above.
            Wait::Never => unsafe { libc::pthread_mutex_trylock(mutex) },
            Wait::Until { deadline, .. } => {
                let abstime = realtime_deadline(deadline);
                // SAFETY: as above; `abstime` is a valid timespec on this stack.
                unsafe { libc::pthread_mutex_timedlock(mutex, &abstime) }
            }
        };
        let held = Held {
            mutex: self,
            _not_send: PhantomData,
        };
        match rc {
            0 => Ok((held, Acquired::Clean)),
            libc::EOWNERDEAD => {
                // SAFETY: this thread holds the mutex (EOWNERDEAD hands it over locked), which
                // is the one condition of pthread_mutex_consistent.
                let rc = unsafe { libc::pthread_mutex_consistent(mutex) };
                match check(rc) {
                    Ok(()) => Ok((held, Acquired::OwnerDied)),
                    Err(source) => Err(SharedError::Os {
                        action: "recover a mutex whose holder died",
                        source,
                    }),
                }
            }
            other => {
                // The mutex is not held: do not unlock it.
                std::mem::forget(held);
                Err(match other {
                    libc::EBUSY => SharedError::WouldBlock,
                    libc::ETIMEDOUT => wait.expired(),
                    libc::EDEADLK => SharedError::AlreadyHeld,
                    errno => SharedError::Os {
                        action: "lock a process-shared mutex",
                        source: io::Error::from_raw_os_error(errno),
                    },
                })
            }
        }
    }
}

/// A pthread return code as a result.
fn check(rc: libc::c_int) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// `deadline` on the wall clock, which `pthread_mutex_timedlock` measures against.
fn realtime_deadline(deadline: Instant) -> libc::timespec {
    let left = deadline.saturating_duration_since(Instant::now());
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .map(|t| Duration::new(t.tv_sec().max(0) as u64, t.tv_nsec() as u32))
        .unwrap_or_default();
    let at = now.saturating_add(left);
    libc::timespec {
        tv_sec: at.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(at.subsec_nanos() as i32),
    }
}
