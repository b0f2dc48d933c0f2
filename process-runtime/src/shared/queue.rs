//! [`Queue`]: many producers, many consumers, across processes.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SharedError;
use super::mutex::Wait;
use super::ring::{DEFAULT_CAPACITY, Ring};
use super::segment::Segment;
use crate::task::ProcessValue;

/// A first-in, first-out queue shared between processes: Python's `multiprocessing.Queue`.
///
/// Any number of processes may [`put`](Queue::put) and [`get`](Queue::get) at once; every item
/// put is got exactly once, by one of them. Items are encoded like task arguments (any
/// [`ProcessValue`]) into a ring buffer in shared memory, so they need no feeder thread and no
/// pipe, and a process killed in the middle of a `put` or a `get` leaves the queue as if it had
/// not started it.
///
/// ```
/// use process_runtime::prelude::*;
///
/// #[process_task]
/// fn produce(queue: Queue<String>) {
///     for i in 0..3 {
///         queue.put(format!("item {i}")).expect("put an item");
///     }
/// }
///
/// let queue = Queue::new()?;
/// let producer = produce.spawn(queue.clone())?; // a child process
/// for i in 0..3 {
///     assert_eq!(queue.get()?, format!("item {i}"));
/// }
/// producer.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Capacity
///
/// The items wait in a ring of bytes of fixed size, 1 MiB unless made
/// [`with_capacity`](Queue::with_capacity). [`Queue::new`] is unbounded as far as the number of
/// items goes, but when the bytes are full, `put` waits for a consumer to make room, as a write
/// to a full pipe does; [`Queue::bounded`] also makes `put` wait while `n` items are queued. An
/// item larger than the whole ring can never fit: `put` fails with
/// [`SharedError::TooLarge`] instead of waiting forever. The memory is only allocated as the
/// ring is used, and freed when the last process holding the queue ends.
///
/// An item cannot hold a shared object (a `Queue<Lock>`): the memory of that object cannot
/// travel through another object's memory, and `put` fails with [`SharedError::Encode`] saying
/// so. Pass shared objects to tasks as arguments instead.
///
/// A queue has no end-of-file: a consumer that waits with [`get`](Queue::get) on a queue nobody
/// will put into again waits forever. Put a last item that says "done" (an `Option<T>` queue and
/// `None` are a common way), or use [`get_timeout`](Queue::get_timeout).
pub struct Queue<T> {
    ring: Arc<Ring>,
    _item: PhantomData<fn(T) -> T>,
}

impl<T: ProcessValue> Queue<T> {
    /// An unbounded queue of 1 MiB: `put` waits only while the bytes are full.
    pub fn new() -> Result<Self, SharedError> {
        Queue::make(DEFAULT_CAPACITY, None)
    }

    /// A queue holding at most `items` items at once: `put` waits while it is full.
    pub fn bounded(items: usize) -> Result<Self, SharedError> {
        Queue::make(DEFAULT_CAPACITY, Some(items))
    }

    /// An unbounded queue of `bytes` bytes (each item takes its encoded size plus 4), from 8
    /// bytes to 1 GiB.
    pub fn with_capacity(bytes: usize) -> Result<Self, SharedError> {
        Queue::make(bytes, None)
    }

    /// A queue of `bytes` bytes holding at most `items` items at once.
    pub fn bounded_with_capacity(items: usize, bytes: usize) -> Result<Self, SharedError> {
        Queue::make(bytes, Some(items))
    }

    fn make(bytes: usize, items: Option<usize>) -> Result<Self, SharedError> {
        Ok(Queue {
            ring: Arc::new(Ring::new(bytes, items, "queue")?),
            _item: PhantomData,
        })
    }

    /// Appends `item`, waiting while the queue is full.
    pub fn put(&self, item: T) -> Result<(), SharedError> {
        self.ring.send(&item)
    }

    /// Takes the oldest item, waiting until there is one. An item that does not decode as a `T`
    /// is taken all the same, and reported as [`SharedError::Decode`].
    pub fn get(&self) -> Result<T, SharedError> {
        self.ring.receive_waiting(Wait::Forever)
    }

    /// Takes the oldest item, waiting at most `timeout` for one; [`SharedError::Timeout`] then.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, SharedError> {
        self.ring.receive_waiting(Wait::timeout(timeout))
    }

    /// Takes the oldest item if there is one now (Python's `get_nowait`).
    pub fn try_get(&self) -> Result<Option<T>, SharedError> {
        self.ring.receive(Wait::Never)
    }

    /// How many items are queued: a snapshot that other processes may change at once.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no item is queued: a snapshot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of the ring, in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The most items the queue holds at once, if it was made [`bounded`](Queue::bounded).
    pub fn bound(&self) -> Option<usize> {
        self.ring.bound()
    }
}

impl<T> Clone for Queue<T> {
    /// Another handle to the same queue.
    fn clone(&self) -> Self {
        Queue {
            ring: Arc::clone(&self.ring),
            _item: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.ring.len())
            .field("capacity", &self.ring.capacity())
            .field("bound", &self.ring.bound())
            .finish()
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ring.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let segment = Segment::deserialize(deserializer)?;
        Ok(Queue {
            ring: Arc::new(Ring::open(segment, "queue").map_err(serde::de::Error::custom)?),
            _item: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_order_and_typed() {
        let queue = Queue::<(u32, String)>::new().unwrap();
        assert!(queue.is_empty());
        queue.put((1, "one".into())).unwrap();
        queue.put((2, "two".into())).unwrap();
        assert_eq!(queue.len(), 2);
        let other = queue.clone();
        assert_eq!(other.get().unwrap(), (1, "one".into()));
        assert_eq!(other.try_get().unwrap(), Some((2, "two".into())));
        assert_eq!(other.try_get().unwrap(), None);
        let error = queue.get_timeout(Duration::from_millis(10)).unwrap_err();
        assert_eq!(error.to_string(), "timed out after 10ms");
    }

    #[test]
    fn a_queue_travels_as_a_segment() {
        let queue = Queue::<u8>::bounded(3).unwrap();
        let copy: Queue<u8> = crate::shared::travel(&queue).0.unwrap();
        copy.put(9).unwrap();
        assert_eq!(queue.get().unwrap(), 9);
        assert_eq!(copy.bound(), Some(3));
        assert_eq!(copy.capacity(), DEFAULT_CAPACITY);
    }

    #[test]
    fn an_item_of_another_type_is_a_decode_error() {
        let queue = Queue::<String>::new().unwrap();
        let confused: Queue<u64> = crate::shared::travel(&queue).0.unwrap();
        // A length of 2 and two bytes that are no u64 in this encoding.
        queue.put("\u{ff}".into()).unwrap();
        let error = confused.get().unwrap_err();
        assert!(matches!(error, SharedError::Decode { .. }), "{error}");
        assert!(queue.is_empty(), "the undecodable item was taken");
    }

    #[test]
    fn an_item_holding_a_shared_object_is_refused() {
        let queue = Queue::<crate::Lock>::new().unwrap();
        let error = queue.put(crate::Lock::new().unwrap()).unwrap_err();
        assert!(matches!(error, SharedError::Encode { .. }), "{error}");
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(
            source.contains("as (part of) a task's arguments"),
            "{source}"
        );
    }

    #[test]
    fn an_item_too_large_is_refused() {
        let queue = Queue::<Vec<u8>>::with_capacity(64).unwrap();
        let error = queue.put(vec![0; 100]).unwrap_err();
        assert!(
            matches!(error, SharedError::TooLarge { capacity: 64, .. }),
            "{error}"
        );
        assert!(Queue::<u8>::with_capacity(0).is_err());
        assert!(Queue::<u8>::bounded(0).is_err());
    }
}
