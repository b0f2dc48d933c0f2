//! [`Event`]: a futex word in shared memory. It has no owner, so there is nothing to recover
//! when a process that uses it dies.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::SharedError;
use super::futex;
use super::segment::{Header, SharedSegment};

/// The header of an [`Event`]: 1 when set, 0 when clear.
#[repr(C)]
pub(crate) struct EventHeader {
    flag: AtomicU32,
}

// SAFETY: `#[repr(C)]`, made only of an atomic.
unsafe impl Header for EventHeader {
    const KIND: u32 = 4;
    const NAME: &'static str = "Event";
}

/// A flag shared between processes that they can wait on: Python's `multiprocessing.Event`.
///
/// It starts clear. [`set`](Event::set) sets it and wakes every waiter, in every process;
/// [`wait`](Event::wait) returns at once while it is set, and otherwise waits until it is.
///
/// ```
/// use process_runtime::prelude::*;
///
/// #[process_task]
/// fn start_when_told(go: Event) -> String {
///     go.wait();
///     format!("started, and the event is set: {}", go.is_set())
/// }
///
/// let go = Event::new()?;
/// let child = start_when_told.spawn(go.clone())?; // a child process
/// go.set();
/// assert_eq!(child.join()?, "started, and the event is set: true");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Event {
    segment: SharedSegment<EventHeader>,
}

impl Event {
    /// A new event, clear.
    pub fn new() -> Result<Self, SharedError> {
        Ok(Event {
            segment: SharedSegment::create(|_| Ok(()))?,
        })
    }

    fn flag(&self) -> &AtomicU32 {
        &self.segment.header().flag
    }

    /// Sets the flag and wakes every process and thread waiting for it.
    pub fn set(&self) {
        if self.flag().swap(1, Ordering::SeqCst) == 0 {
            futex::wake_all(self.flag());
        }
    }

    /// Clears the flag: waits wait again.
    pub fn clear(&self) {
        self.flag().store(0, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.flag().load(Ordering::SeqCst) != 0
    }

    /// Waits until the flag is set (at once if it is).
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits until the flag is set or `timeout` has passed; returns whether it is set (Python's
    /// return value of `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        futex::wait_until(self.flag(), deadline, || self.is_set())
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_wakes_a_waiting_thread() {
        let event = Event::new().unwrap();
        assert!(!event.is_set());
        assert!(!event.wait_timeout(Duration::from_millis(10)));
        let other = event.clone();
        std::thread::scope(|s| {
            let waiter = s.spawn(move || {
                other.wait();
                other.is_set()
            });
            event.set();
            assert!(waiter.join().unwrap());
        });
        assert!(event.wait_timeout(Duration::ZERO));
        event.clear();
        assert!(!event.is_set());
        // A timeout too large for the clock waits forever, without panicking.
        event.set();
        assert!(event.wait_timeout(Duration::MAX));
    }
}
