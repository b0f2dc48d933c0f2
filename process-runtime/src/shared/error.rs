//! The errors of the shared objects.

use std::fmt;
use std::io;
use std::time::Duration;

use super::mutex::{Acquired, Held};
use crate::codec::{DecodeError, EncodeError};

/// Why an operation on a shared object failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedError {
    /// A wait with a timeout ended first: no item came, or the lock stayed held.
    #[error("timed out after {timeout:?}")]
    Timeout {
        /// The timeout that was given.
        timeout: Duration,
    },
    /// `try_acquire` found the lock held by another thread or process.
    #[error("the lock is held by another thread or process")]
    WouldBlock,
    /// The previous holder of the lock died while holding it. This is what a
    /// [`LockError::OwnerDied`] becomes when it is turned into a `SharedError` (with `?`); the
    /// lock was released again.
    #[error("the previous holder of the lock died while holding it")]
    OwnerDied,
    /// The calling thread already holds this lock, which is not recursive: waiting for it would
    /// wait forever.
    #[error(
        "this thread already holds the lock; acquiring it again would wait forever (an RLock can be acquired again)"
    )]
    AlreadyHeld,
    /// An item is larger than the queue or pipe can ever hold.
    #[error(
        "an item of {size} bytes does not fit in a {what} of {capacity} bytes; make the {what} with a larger capacity"
    )]
    TooLarge {
        /// The encoded size of the item, with its 4-byte length.
        size: usize,
        /// The capacity in bytes.
        capacity: usize,
        /// `queue` or `pipe`.
        what: &'static str,
    },
    /// An item did not encode.
    #[error("an item of type `{type_name}` did not encode")]
    Encode {
        /// The item's type.
        type_name: &'static str,
        /// Why.
        #[source]
        source: EncodeError,
    },
    /// An item did not decode as the type the receiving end expects.
    #[error("an item did not decode as `{type_name}`")]
    Decode {
        /// The type the receiving end expects.
        type_name: &'static str,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// An argument is out of range, such as a capacity of zero.
    #[error("{0}")]
    Invalid(String),
    /// The shared memory of an object does not hold what it should: a process wrote to it
    /// outside this crate.
    #[error("the shared memory of a {0} is corrupt")]
    Corrupt(&'static str),
    /// A system call failed.
    #[error("could not {action}")]
    Os {
        /// What was being done.
        action: &'static str,
        /// The error the system gave.
        #[source]
        source: io::Error,
    },
}

impl SharedError {
    /// Whether this is a [`SharedError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, SharedError::Timeout { .. })
    }
}

/// What acquiring a lock returns: the guard, or why there is none; see [`LockError`].
pub type LockResult<G> = Result<G, LockError<G>>;

/// A lock that was not acquired cleanly: either its previous holder died while holding it (you
/// have the lock anyway, in [`LockError::OwnerDied`]), or it could not be acquired.
///
/// This is how std's `Mutex` reports poisoning, with the same way out: when the data the lock
/// protects is fine however far the dead holder got, [`recover`](LockError::recover) takes the
/// guard and carries on, and `?` turns the error into a [`SharedError`] (releasing the lock).
///
/// ```
/// use process_runtime::{Lock, LockError};
///
/// let lock = Lock::new()?;
/// let guard = lock.acquire().or_else(LockError::recover)?;
/// drop(guard);
/// # Ok::<(), process_runtime::SharedError>(())
/// ```
pub enum LockError<G> {
    /// The previous holder died while holding the lock (a process that exited, crashed or was
    /// killed). The lock is yours now, in this guard; whatever it protects may be half updated.
    OwnerDied(G),
    /// The lock was not acquired.
    Failed(SharedError),
}

impl<G> LockError<G> {
    /// The guard, whether or not the previous holder died; only a real failure stays an error.
    pub fn recover(self) -> Result<G, SharedError> {
        match self {
            LockError::OwnerDied(guard) => Ok(guard),
            LockError::Failed(error) => Err(error),
        }
    }

    /// Whether this says that the previous holder died.
    pub fn is_owner_died(&self) -> bool {
        matches!(self, LockError::OwnerDied(_))
    }
}

impl<'a, G> LockError<G> {
    /// What a public `acquire()` or `lock()` returns for the outcome of
    /// [`RawMutex::acquire`](super::mutex::RawMutex::acquire): the guard `make` builds, that
    /// guard inside [`LockError::OwnerDied`], or the failure.
    pub(crate) fn from_acquired(
        acquired: Result<(Held<'a>, Acquired), SharedError>,
        make: impl FnOnce(Held<'a>) -> G,
    ) -> LockResult<G> {
        match acquired {
            Ok((held, Acquired::Clean)) => Ok(make(held)),
            Ok((held, Acquired::OwnerDied)) => Err(LockError::OwnerDied(make(held))),
            Err(error) => Err(LockError::Failed(error)),
        }
    }
}

impl<G> From<SharedError> for LockError<G> {
    fn from(error: SharedError) -> Self {
        LockError::Failed(error)
    }
}

impl<G> From<LockError<G>> for SharedError {
    /// [`SharedError::OwnerDied`] for an owner that died (the guard is dropped: the lock is
    /// released), the error itself otherwise.
    fn from(error: LockError<G>) -> Self {
        match error {
            LockError::OwnerDied(_) => SharedError::OwnerDied,
            LockError::Failed(error) => error,
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => {
                f.write_str("the previous holder of the lock died while holding it")
            }
            LockError::Failed(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl<G> std::error::Error for LockError<G> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::OwnerDied(_) => None,
            // Displayed as the inner error itself, so its source is the inner error's.
            LockError::Failed(error) => error.source(),
        }
    }
}
