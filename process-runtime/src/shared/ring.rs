//! A ring of length-prefixed byte strings in shared memory, for any number of writers and
//! readers in any processes: the machinery of [`Queue`](crate::Queue) and of each direction of
//! a [`Connection`](crate::Connection).
//!
//! The ring's state is two 64-bit words, each changed by a single store under the robust mutex:
//!
//! - the put word: how many items were ever put (high half, wrapping) and where the next one
//!   goes (low half, a byte offset);
//! - the get word: how many were ever taken and where the next one starts.
//!
//! A writer copies the length and the bytes in first and stores the put word last; a reader
//! copies the bytes out and stores the get word last. A process killed at any instruction in
//! between leaves the words as they were: the half-written item was never put, the half-read one
//! never taken. The robust mutex then passes to the next process, which finds a consistent ring.
//! So an item is delivered exactly once, to a reader that was alive when it took it.
//!
//! Waiting uses two futex sequence words, `not_empty` and `not_full`, which a writer and a reader
//! bump (under the mutex) after each change. A waiter reads the word under the mutex, releases
//! it, and sleeps only if the word has not changed since; so a change that happens in between is
//! never missed. Every sleeper is woken on each change (they count themselves in `*_waiters`, so
//! that a change nobody waits for costs no system call): a woken process that dies before it
//! takes its item must not leave the others asleep.
//!
//! Every offset read from the shared words is reduced modulo the capacity this process checked
//! when it mapped the ring, and every length is checked against the bytes in use: whatever
//! another process writes into the words, this process never reads or writes outside the ring.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde::{Serialize, Serializer};

use super::SharedError;
use super::futex;
use super::mutex::{Held, RawMutex, Wait};
use super::segment::{Header, Segment};
use crate::ProcessValue;
use crate::codec;

/// The smallest capacity: an empty item (4 bytes of length) and then some.
pub(crate) const MIN_CAPACITY: usize = 8;
/// The largest capacity; offsets must fit the low half of a word.
pub(crate) const MAX_CAPACITY: usize = 1 << 30;
/// The capacity of `Queue::new()` and of each direction of `pipe()`.
pub(crate) const DEFAULT_CAPACITY: usize = 1 << 20;
/// The length prefix of each item.
const LEN: usize = 4;

/// The header of a ring.
#[repr(C)]
pub(crate) struct RingHeader {
    mutex: RawMutex,
    put_word: AtomicU64,
    get_word: AtomicU64,
    not_empty: AtomicU32,
    not_full: AtomicU32,
    empty_waiters: AtomicU32,
    full_waiters: AtomicU32,
    /// Set at creation; each process checks it against the segment's size once.
    capacity: AtomicU32,
    /// The most items it holds at once, 0 for no limit but the bytes. Set at creation.
    bound: AtomicU32,
}

// SAFETY: `#[repr(C)]`, 8-byte aligned, made only of atomics and a mutex.
unsafe impl Header for RingHeader {
    const KIND: u32 = 5;
    const NAME: &'static str = "Queue or Pipe";
}

/// The ring as one process sees it.
#[derive(Debug)]
pub(crate) struct Ring {
    segment: Segment<RingHeader>,
    capacity: usize,
    bound: u32,
    /// `queue` or `pipe`, for messages.
    what: &'static str,
}

/// What the two words say.
#[derive(Debug, Clone, Copy)]
struct State {
    head: usize,
    tail: usize,
    gets: u32,
    puts: u32,
}

impl State {
    fn count(&self) -> u32 {
        self.puts.wrapping_sub(self.gets)
    }
}

fn word(count: u32, offset: usize) -> u64 {
    (u64::from(count) << 32) | offset as u64
}

impl Ring {
    /// A new, empty ring of `capacity` bytes holding at most `bound` items.
    pub(crate) fn new(
        capacity: usize,
        bound: Option<usize>,
        what: &'static str,
    ) -> Result<Self, SharedError> {
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(SharedError::Invalid(format!(
                "the capacity of a {what} must be between {MIN_CAPACITY} bytes and 1 GiB, not {capacity} bytes"
            )));
        }
        let bound = match bound {
            None => 0,
            Some(0) => {
                return Err(SharedError::Invalid(format!(
                    "a bounded {what} must hold at least one item"
                )));
            }
            Some(bound) => bound.min(u32::MAX as usize) as u32,
        };
        let segment = Segment::<RingHeader>::create(capacity)?;
        let header = segment.header();
        header.mutex.init(false)?;
        header.capacity.store(capacity as u32, Ordering::Relaxed);
        header.bound.store(bound, Ordering::Relaxed);
        Ok(Ring {
            segment,
            capacity,
            bound,
            what,
        })
    }

    /// The ring in a segment another process sent, checked.
    pub(crate) fn open(segment: Segment<RingHeader>, what: &'static str) -> Result<Self, String> {
        let header = segment.header();
        let capacity = header.capacity.load(Ordering::Acquire) as usize;
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) || capacity > segment.data_len() {
            return Err(format!(
                "the shared memory received for a {what} is corrupt (capacity {capacity})"
            ));
        }
        let bound = header.bound.load(Ordering::Acquire);
        Ok(Ring {
            segment,
            capacity,
            bound,
            what,
        })
    }

    fn header(&self) -> &RingHeader {
        self.segment.header()
    }

    /// The capacity in bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most items the ring holds at once, if it is bounded.
    pub(crate) fn bound(&self) -> Option<usize> {
        (self.bound != 0).then_some(self.bound as usize)
    }

    /// How many items are in the ring: a snapshot.
    pub(crate) fn len(&self) -> usize {
        // The get word first: both only grow, so the count read this way is never negative.
        let gets = (self.header().get_word.load(Ordering::Acquire) >> 32) as u32;
        let puts = (self.header().put_word.load(Ordering::Acquire) >> 32) as u32;
        puts.wrapping_sub(gets) as usize
    }

    /// Appends `bytes` as one item, waiting while the ring has no room for it.
    pub(crate) fn push(&self, bytes: &[u8]) -> Result<(), SharedError> {
        let size = LEN.saturating_add(bytes.len());
        if size > self.capacity {
            return Err(SharedError::TooLarge {
                size,
                capacity: self.capacity,
                what: self.what,
            });
        }
        let header = self.header();
        loop {
            let (held, _) = header.mutex.acquire(Wait::Forever)?;
            if self.try_push(&held, bytes) {
                header.not_empty.fetch_add(1, Ordering::Release);
                let waiters = header.empty_waiters.load(Ordering::Relaxed);
                drop(held);
                if waiters != 0 {
                    futex::wake_all(&header.not_empty);
                }
                return Ok(());
            }
            header.full_waiters.fetch_add(1, Ordering::Relaxed);
            let seen = header.not_full.load(Ordering::Acquire);
            drop(held);
            futex::wait(&header.not_full, seen, None);
            header.full_waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Takes the oldest item, waiting for one as `wait` says: `Ok(None)` if there is none and
    /// `wait` is [`Wait::Never`], [`SharedError::Timeout`] at the deadline of a [`Wait::Until`].
    pub(crate) fn pop(&self, wait: Wait) -> Result<Option<Vec<u8>>, SharedError> {
        let header = self.header();
        // The mutex is only ever held for a copy: "do not wait" still waits for it.
        let for_mutex = match wait {
            Wait::Never => Wait::Forever,
            other => other,
        };
        loop {
            let (held, _) = header.mutex.acquire(for_mutex)?;
            if let Some(bytes) = self.try_pop(&held)? {
                header.not_full.fetch_add(1, Ordering::Release);
                let waiters = header.full_waiters.load(Ordering::Relaxed);
                drop(held);
                if waiters != 0 {
                    futex::wake_all(&header.not_full);
                }
                return Ok(Some(bytes));
            }
            if wait.is_over() {
                return match wait {
                    Wait::Never => Ok(None),
                    other => Err(other.expired()),
                };
            }
            header.empty_waiters.fetch_add(1, Ordering::Relaxed);
            let seen = header.not_empty.load(Ordering::Acquire);
            drop(held);
            futex::wait(&header.not_empty, seen, wait.deadline());
            header.empty_waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Encodes `item` and appends it, waiting while the ring is full.
    pub(crate) fn send<T: ProcessValue>(&self, item: &T) -> Result<(), SharedError> {
        self.push(&encode(item)?)
    }

    /// Takes the oldest item and decodes it, waiting as `wait` says: `None` only when `wait` is
    /// [`Wait::Never`] and the ring is empty. An item that does not decode is taken all the same.
    pub(crate) fn receive<T: ProcessValue>(&self, wait: Wait) -> Result<Option<T>, SharedError> {
        self.pop(wait)?.map(|bytes| decode(&bytes)).transpose()
    }

    /// [`receive`](Ring::receive) with a wait that ends in an item or an error.
    pub(crate) fn receive_waiting<T: ProcessValue>(&self, wait: Wait) -> Result<T, SharedError> {
        self.receive(wait)?.ok_or_else(|| wait.expired())
    }

    /// What the words say, with the offsets brought within the ring.
    fn state(&self, _held: &Held<'_>) -> State {
        let get = self.header().get_word.load(Ordering::Acquire);
        let put = self.header().put_word.load(Ordering::Acquire);
        State {
            head: (get as u32 as usize) % self.capacity,
            tail: (put as u32 as usize) % self.capacity,
            gets: (get >> 32) as u32,
            puts: (put >> 32) as u32,
        }
    }

    /// The bytes in use.
    fn used(&self, state: &State) -> usize {
        if state.count() == 0 {
            return 0;
        }
        match (state.tail + self.capacity - state.head) % self.capacity {
            0 => self.capacity,
            used => used,
        }
    }

    /// Appends the item if there is room; the caller holds the mutex.
    fn try_push(&self, held: &Held<'_>, bytes: &[u8]) -> bool {
        let state = self.state(held);
        let size = LEN + bytes.len();
        if self.bound != 0 && state.count() >= self.bound {
            return false;
        }
        if self.capacity - self.used(&state) < size {
            return false;
        }
        self.copy_in(held, state.tail, &(bytes.len() as u32).to_le_bytes());
        self.copy_in(held, (state.tail + LEN) % self.capacity, bytes);
        // The commit: one store, after the bytes.
        let tail = (state.tail + size) % self.capacity;
        self.header()
            .put_word
            .store(word(state.puts.wrapping_add(1), tail), Ordering::Release);
        true
    }

    /// Takes the oldest item if there is one; the caller holds the mutex.
    fn try_pop(&self, held: &Held<'_>) -> Result<Option<Vec<u8>>, SharedError> {
        let state = self.state(held);
        if state.count() == 0 {
            return Ok(None);
        }
        let used = self.used(&state);
        let mut len = [0; LEN];
        self.copy_out(held, state.head, &mut len);
        let len = u32::from_le_bytes(len) as usize;
        if LEN + len > used {
            return Err(SharedError::Corrupt(self.what));
        }
        let mut bytes = vec![0; len];
        self.copy_out(held, (state.head + LEN) % self.capacity, &mut bytes);
        // The commit: one store, after the bytes.
        let head = (state.head + LEN + len) % self.capacity;
        self.header()
            .get_word
            .store(word(state.gets.wrapping_add(1), head), Ordering::Release);
        Ok(Some(bytes))
    }

    /// Copies `bytes` into the ring at `at`, wrapping at the end.
    fn copy_in(&self, _held: &Held<'_>, at: usize, bytes: &[u8]) {
        assert!(at < self.capacity && bytes.len() <= self.capacity);
        let first = bytes.len().min(self.capacity - at);
        let data = self.segment.data();
        // SAFETY: the data region holds `capacity` bytes (checked in `new`/`open`); `at + first`
        // and `bytes.len() - first` are both at most `capacity` (asserted above). The mutex is
        // held (`_held`), so no other thread or process touches these bytes; `bytes` is private
        // memory, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.add(at), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), data, bytes.len() - first);
        }
    }

    /// Copies bytes out of the ring from `at`, wrapping at the end.
    fn copy_out(&self, _held: &Held<'_>, at: usize, bytes: &mut [u8]) {
        assert!(at < self.capacity && bytes.len() <= self.capacity);
        let first = bytes.len().min(self.capacity - at);
        let data = self.segment.data();
        // SAFETY: as in `copy_in`, in the other direction.
        unsafe {
            std::ptr::copy_nonoverlapping(data.add(at), bytes.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, bytes.as_mut_ptr().add(first), bytes.len() - first);
        }
    }
}

impl Serialize for Ring {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.segment.serialize(serializer)
    }
}

/// Encodes an item of a ring (a queue or a direction of a pipe).
fn encode<T: ProcessValue>(item: &T) -> Result<Vec<u8>, SharedError> {
    codec::encode(item).map_err(|source| SharedError::Encode {
        type_name: std::any::type_name::<T>(),
        source,
    })
}

/// Decodes an item of a ring.
fn decode<T: ProcessValue>(bytes: &[u8]) -> Result<T, SharedError> {
    codec::decode(bytes).map_err(|source| SharedError::Decode {
        type_name: std::any::type_name::<T>(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ring(capacity: usize, bound: Option<usize>) -> Ring {
        Ring::new(capacity, bound, "queue").unwrap()
    }

    fn take(ring: &Ring) -> Option<Vec<u8>> {
        ring.pop(Wait::Never).unwrap()
    }

    #[test]
    fn items_wrap_around_the_end_whole() {
        // 4 + 5 = 9 bytes per item in a ring of 16: every other item crosses the end, some in
        // the length, some in the bytes.
        let ring = ring(16, None);
        for round in 0..50_u8 {
            let item = [round, round + 1, round + 2, round + 3, round + 4];
            ring.push(&item).unwrap();
            assert_eq!(ring.len(), 1);
            assert_eq!(take(&ring).as_deref(), Some(&item[..]), "round {round}");
            assert_eq!(ring.len(), 0);
        }
        // Items of every size from 0 to 12, two at a time when they fit.
        for size in 0..=12_usize {
            let item: Vec<u8> = (0..size as u8).collect();
            ring.push(&item).unwrap();
            if 2 * (LEN + size) <= 16 {
                ring.push(&item).unwrap();
                assert_eq!(take(&ring), Some(item.clone()));
            }
            assert_eq!(take(&ring), Some(item));
        }
    }

    #[test]
    fn an_empty_ring_has_nothing_and_times_out() {
        let ring = ring(64, None);
        assert_eq!(take(&ring), None);
        let error = ring
            .pop(Wait::timeout(Duration::from_millis(10)))
            .unwrap_err();
        assert!(error.is_timeout(), "{error}");
        // An empty item is an item.
        ring.push(&[]).unwrap();
        assert_eq!(take(&ring), Some(Vec::new()));
        assert_eq!(take(&ring), None);
    }

    #[test]
    fn a_full_ring_refuses_until_a_reader_makes_room() {
        let ring = ring(16, None);
        ring.push(&[1; 12]).unwrap(); // exactly full
        let (held, _) = ring.header().mutex.acquire(Wait::Forever).unwrap();
        assert!(!ring.try_push(&held, &[]));
        drop(held);
        std::thread::scope(|s| {
            let writer = s.spawn(|| ring.push(&[2; 3]));
            // The writer waits for room; the read below makes it.
            assert_eq!(take(&ring), Some(vec![1; 12]));
            writer.join().unwrap().unwrap();
        });
        assert_eq!(take(&ring), Some(vec![2; 3]));
    }

    #[test]
    fn a_bounded_ring_counts_items_not_bytes() {
        let ring = ring(1024, Some(2));
        assert_eq!(ring.bound(), Some(2));
        ring.push(b"a").unwrap();
        ring.push(b"b").unwrap();
        let (held, _) = ring.header().mutex.acquire(Wait::Forever).unwrap();
        assert!(!ring.try_push(&held, b"c"));
        drop(held);
        assert_eq!(take(&ring), Some(b"a".to_vec()));
        ring.push(b"c").unwrap();
        assert_eq!(ring.len(), 2);
    }

    #[test]
    fn an_item_too_large_is_an_error_not_a_wait() {
        let ring = ring(16, None);
        ring.push(&[0; 12]).unwrap();
        let error = ring.push(&[0; 13]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "an item of 17 bytes does not fit in a queue of 16 bytes; make the queue with a larger capacity"
        );
    }

    #[test]
    fn capacities_and_bounds_out_of_range_are_refused() {
        assert!(Ring::new(4, None, "queue").is_err());
        assert!(Ring::new(MAX_CAPACITY + 1, None, "queue").is_err());
        let error = Ring::new(64, Some(0), "queue").unwrap_err();
        assert_eq!(
            error.to_string(),
            "a bounded queue must hold at least one item"
        );
    }

    #[test]
    fn scribbled_words_give_an_error_never_a_stray_access() {
        let ring = ring(16, None);
        ring.push(&[7; 3]).unwrap();
        // A length that claims more than the ring holds.
        let (held, _) = ring.header().mutex.acquire(Wait::Forever).unwrap();
        ring.copy_in(&held, 0, &u32::MAX.to_le_bytes());
        drop(held);
        assert!(matches!(
            ring.pop(Wait::Never),
            Err(SharedError::Corrupt(_))
        ));
        // Offsets far outside the ring are reduced into it.
        ring.header().get_word.store(u64::MAX, Ordering::Relaxed);
        ring.header()
            .put_word
            .store(word(5, u32::MAX as usize), Ordering::Relaxed);
        for _ in 0..3 {
            let _ = ring.pop(Wait::Never);
            let (held, _) = ring.header().mutex.acquire(Wait::Forever).unwrap();
            let _ = ring.try_push(&held, &[1; 4]);
        }
    }

    #[test]
    fn many_threads_deliver_every_item_once() {
        let ring = ring(256, Some(8));
        let mut seen: Vec<u32> = std::thread::scope(|s| {
            let writers: Vec<_> = (0..3_u32)
                .map(|writer| {
                    let ring = &ring;
                    s.spawn(move || {
                        for i in 0..1000 {
                            ring.push(&(writer * 1000 + i).to_le_bytes()).unwrap();
                        }
                    })
                })
                .collect();
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let mut got = Vec::new();
                        // Until the empty item that says the writers are done.
                        while let Some(bytes) = ring.pop(Wait::Forever).unwrap() {
                            let Ok(bytes) = <[u8; 4]>::try_from(bytes) else {
                                break;
                            };
                            got.push(u32::from_le_bytes(bytes));
                        }
                        got
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            for _ in 0..3 {
                ring.push(&[]).unwrap();
            }
            readers
                .into_iter()
                .flat_map(|r| r.join().unwrap())
                .collect()
        });
        seen.sort_unstable();
        assert_eq!(seen, (0..3000).collect::<Vec<_>>());
    }
}
