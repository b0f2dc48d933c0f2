//! [`Semaphore`]: a futex word in shared memory. It has no owner, so there is nothing to recover
//! when a process that uses it dies.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::SharedError;
use super::futex;
use super::segment::{Header, SharedSegment};

/// The header of a [`Semaphore`]: its counter.
#[repr(C)]
pub(crate) struct SemaphoreHeader {
    count: AtomicU32,
}

// SAFETY: `#[repr(C)]`, made only of an atomic.
unsafe impl Header for SemaphoreHeader {
    const KIND: u32 = 6;
    const NAME: &'static str = "Semaphore";
}

/// A counter shared between processes: Python's `multiprocessing.Semaphore`.
///
/// [`acquire`](Semaphore::acquire) waits until the counter is above zero and takes one;
/// [`release`](Semaphore::release) gives one back, from any process. A semaphore made with `n`
/// lets at most `n` processes past `acquire` at once, until they release. It has no owner: a
/// process that dies between `acquire` and `release` keeps its unit (use a [`Lock`](crate::Lock)
/// when that must not happen).
///
/// ```
/// use process_runtime::Semaphore;
///
/// let slots = Semaphore::new(2)?;
/// slots.acquire();
/// assert!(slots.try_acquire());
/// assert!(!slots.try_acquire()); // both units are taken
/// slots.release();
/// assert_eq!(slots.value(), 1);
/// # Ok::<(), process_runtime::SharedError>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Semaphore {
    segment: SharedSegment<SemaphoreHeader>,
}

impl Semaphore {
    /// A new semaphore whose counter starts at `value`.
    pub fn new(value: u32) -> Result<Self, SharedError> {
        let segment = SharedSegment::create(|header: &SemaphoreHeader| {
            header.count.store(value, Ordering::Relaxed);
            Ok(())
        })?;
        Ok(Semaphore { segment })
    }

    fn count(&self) -> &AtomicU32 {
        &self.segment.header().count
    }

    /// Waits until the counter is above zero, and takes one.
    pub fn acquire(&self) {
        self.acquire_until(None);
    }

    /// Takes one if the counter is above zero now; returns whether it did.
    pub fn try_acquire(&self) -> bool {
        self.count()
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Waits at most `timeout` for the counter to be above zero; returns whether it took one.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_until(Instant::now().checked_add(timeout))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        futex::wait_until(self.count(), deadline, || self.try_acquire())
    }

    /// Gives one back, waking the processes waiting for it.
    ///
    /// # Panics
    ///
    /// If the counter is already `u32::MAX`.
    pub fn release(&self) {
        let before = self
            .count()
            .fetch_update(Ordering::Release, Ordering::Relaxed, |n| n.checked_add(1))
            .expect("a Semaphore was released more than u32::MAX times beyond its acquisitions");
        // Waiters sleep only while the counter is 0; every one of them must look again, since a
        // woken waiter that dies before taking its unit must not leave the others asleep.
        if before == 0 {
            futex::wake_all(self.count());
        }
    }

    /// The counter now (Python's `get_value`): a snapshot that other processes may change at
    /// once.
    pub fn value(&self) -> u32 {
        self.count().load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_semaphore_counts() {
        let semaphore = Semaphore::new(1).unwrap();
        assert!(semaphore.acquire_timeout(Duration::from_millis(10)));
        assert!(!semaphore.acquire_timeout(Duration::from_millis(10)));
        let other = semaphore.clone();
        std::thread::scope(|s| {
            let waiter = s.spawn(move || other.acquire());
            semaphore.release();
            waiter.join().unwrap();
        });
        assert_eq!(semaphore.value(), 0);
    }
}
