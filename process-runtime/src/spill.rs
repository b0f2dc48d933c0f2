//! Large byte strings travel through shared memory that is used again and again.
//!
//! A `Vec<u8>` argument or return value of at least [`THRESHOLD`] bytes is not written into the
//! message: it is copied into a *spill*, a memory segment shared with the receiver (a memfd, like
//! the shared objects'), which travels beside the message as an attachment (see
//! [`attach`](crate::attach)), and the receiver copies it out. That is two copies of the bytes
//! in all, where the socket took seven (into the item, the batch, ipc-channel's message, the
//! kernel, ipc-channel's reassembly buffer, the received bytes and the value).
//!
//! What makes it fast is that a spill is *used again*. Fresh memory costs a page fault per
//! 4 KiB the first time it is touched, and on a virtual machine that costs more than the copy:
//! a fresh 64 MiB segment takes about 50 ms to fill, a warm one about 6. So each process keeps
//! the spills it made or received lately (at most [`KEEP`]), mapped, and a message that names
//! a spill the receiver already has is read through the receiver's warm mapping.
//!
//! # Who may write a spill
//!
//! A spill's header counts its *holds*. It is free to be written again only at zero:
//!
//! - the encoder claims a free spill (0 → 1) and holds it as long as its attachment lives on the
//!   sending side (a pool keeps a unit's items until their results are in, to send them again
//!   if a worker dies);
//! - every time the attachment is serialized into a message, one more hold is taken on behalf of
//!   the receiver, who releases it when it drops the attachment, after copying the bytes out.
//!
//! Holds are released only by the process that took them: a forked child inherits the parent's
//! attachments, but dropping them there releases nothing. A hold that is never released (a
//! receiver killed before it read the message) only keeps that spill from being used again; it
//! is forgotten once [`KEEP`] newer spills have been used, and the kernel frees it when the last
//! process that maps it lets go.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ipc_channel::ipc::IpcSharedMemory;

use crate::shared::SharedError;
use crate::shared::segment::{Header, Segment};

/// Byte strings at least this long go through a spill.
pub(crate) const THRESHOLD: usize = 1 << 20;

/// How many spills a process keeps mapped for use again.
pub(crate) const KEEP: usize = 4;

/// Spills are made in multiples of this, so that a slightly longer string fits an old one.
const GRANULE: usize = 1 << 20;

/// The header of a spill.
#[repr(C)]
pub(crate) struct SpillHeader {
    /// Names the spill across processes: a receiver finds its own mapping of it by this.
    id: AtomicU64,
    /// How many bytes the string in it has.
    len: AtomicU64,
    /// See the module docs.
    holds: AtomicU32,
}

// SAFETY: `#[repr(C)]`, 8-byte aligned, made only of atomics.
unsafe impl Header for SpillHeader {
    const KIND: u32 = 8;
    const NAME: &'static str = "large byte string";
}

type Spill = Segment<SpillHeader>;

/// The spills this process made or received lately, the most recently used first.
static KNOWN: Mutex<Vec<Arc<Spill>>> = Mutex::new(Vec::new());

fn known() -> std::sync::MutexGuard<'static, Vec<Arc<Spill>>> {
    KNOWN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Holds the list of spills and the spare vector across a fork (see
/// [`crate::current::lock_for_fork`]).
pub(crate) fn lock_for_fork() -> impl Sized {
    (known(), spare())
}

/// Keeps `spill` as the most recently used.
fn remember(known: &mut Vec<Arc<Spill>>, spill: Arc<Spill>) {
    known.retain(|other| !Arc::ptr_eq(other, &spill));
    known.insert(0, spill);
    known.truncate(KEEP);
}

/// One hold on a spill, released when dropped in the process that took it.
pub(crate) struct Hold {
    spill: Arc<Spill>,
    pid: u32,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("id", &self.spill.header().id.load(Ordering::Relaxed))
            .field("len", &self.len())
            .finish()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            release(&self.spill);
        }
    }
}

/// Gives back one hold; never below zero, whatever a confused peer did.
fn release(spill: &Spill) {
    let _ = spill
        .header()
        .holds
        .fetch_update(Ordering::Release, Ordering::Relaxed, |holds| {
            holds.checked_sub(1)
        });
}

impl Hold {
    /// Copies `bytes` into a free spill this process knows, or into a new one, and holds it.
    pub(crate) fn store(bytes: &[u8]) -> Result<Hold, SharedError> {
        let spill = claim(bytes.len())?;
        let header = spill.header();
        header.len.store(bytes.len() as u64, Ordering::Relaxed);
        // SAFETY: the data region is at least `bytes.len()` long (`claim` chose it so), and the
        // hold taken by `claim` means no process writes or reads it until this hold is released
        // or handed on with a message (see the module docs).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), spill.data(), bytes.len()) };
        Ok(Hold {
            spill,
            pid: std::process::id(),
        })
    }

    /// A spill received from another process, which took a hold on this process's behalf when
    /// it sent it. Read through this process's own mapping when it has one.
    pub(crate) fn received(memory: IpcSharedMemory) -> Result<Hold, String> {
        let fresh = Spill::open(memory)?;
        let id = fresh.header().id.load(Ordering::Acquire);
        let mut known = known();
        let spill = match known
            .iter()
            .find(|spill| spill.header().id.load(Ordering::Relaxed) == id)
        {
            Some(spill) => Arc::clone(spill),
            None => Arc::new(fresh),
        };
        remember(&mut known, Arc::clone(&spill));
        Ok(Hold {
            spill,
            pid: std::process::id(),
        })
    }

    /// Another hold on the same spill, taken now, for a process that will inherit it by `fork`
    /// (it [`adopt`](Hold::adopt)s it there).
    pub(crate) fn for_child(&self) -> Hold {
        self.spill.header().holds.fetch_add(1, Ordering::Relaxed);
        Hold {
            spill: Arc::clone(&self.spill),
            pid: 0,
        }
    }

    /// Makes an inherited hold this process's own, to release.
    pub(crate) fn adopt(mut self) -> Hold {
        self.pid = std::process::id();
        self
    }

    /// Takes one more hold on behalf of a receiver, as the spill is sent to it.
    pub(crate) fn count_receiver(&self) {
        self.spill.header().holds.fetch_add(1, Ordering::Relaxed);
    }

    /// The memory to send (ipc-channel passes its descriptor).
    pub(crate) fn memory(&self) -> &IpcSharedMemory {
        self.spill.memory_ref()
    }

    /// How many bytes the string has.
    pub(crate) fn len(&self) -> usize {
        self.spill.header().len.load(Ordering::Acquire) as usize
    }

    /// Copies the string out into a new vector.
    pub(crate) fn to_vec(&self) -> Result<Vec<u8>, String> {
        let len = self.len();
        if len > self.spill.data_len() {
            return Err(format!(
                "a large byte string claims {len} bytes in a segment of {}",
                self.spill.data_len()
            ));
        }
        let mut vec = reuse(len).unwrap_or_default();
        vec.clear();
        crate::wire::reserve(&mut vec, len);
        // SAFETY: `len` bytes are within the data region (checked above) and the vector has room
        // for them; while this hold lives nobody writes the spill (see the module docs), and the
        // bytes are plain `u8`s, valid whatever they are.
        unsafe {
            std::ptr::copy_nonoverlapping(self.spill.data(), vec.as_mut_ptr(), len);
            vec.set_len(len);
        }
        Ok(vec)
    }
}

/// The last large byte vector this process was done with (a `Vec<u8>` argument it sent, or a
/// return value), kept to receive the next large one into: memory already touched is filled at
/// the speed of a copy, where a fresh vector costs the kernel zeroing every page first (on the
/// benchmark's VM that is as much again as the copy). One vector at most, so what a process
/// keeps is bounded by the largest string it sent lately.
static SPARE: Mutex<Option<Vec<u8>>> = Mutex::new(None);

fn spare() -> std::sync::MutexGuard<'static, Option<Vec<u8>>> {
    SPARE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps `bytes`' memory to receive a later large string into, if it is large.
pub(crate) fn recycle(bytes: Vec<u8>) {
    if bytes.capacity() >= THRESHOLD {
        // The one it replaces, if any, is freed here.
        drop(spare().replace(bytes));
    }
}

/// The spare vector, if it has room for `len` bytes and not much more (a string received into
/// it is handed to the caller, who should not carry a far larger allocation than it needs).
fn reuse(len: usize) -> Option<Vec<u8>> {
    let mut spare = spare();
    let capacity = spare.as_ref()?.capacity();
    (capacity >= len && capacity - len <= len / 4)
        .then(|| spare.take())
        .flatten()
}

/// Whether `memory` is a spill (rather than a shared object's segment).
pub(crate) fn is_spill(memory: &IpcSharedMemory) -> bool {
    Spill::holds_kind(memory)
}

/// A free spill of at least `len` bytes, held once.
fn claim(len: usize) -> Result<Arc<Spill>, SharedError> {
    let mut known = known();
    let free = known.iter().find(|spill| {
        spill.data_len() >= len
            && spill
                .header()
                .holds
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    });
    if let Some(spill) = free {
        let spill = Arc::clone(spill);
        remember(&mut known, Arc::clone(&spill));
        return Ok(spill);
    }
    let spill = Arc::new(Spill::create_touched(len.next_multiple_of(GRANULE))?);
    let id = u64::from_ne_bytes(
        crate::sys::random_bytes().map_err(|source| SharedError::Os {
            action: "name a shared memory segment",
            source,
        })?,
    );
    let header = spill.header();
    header.id.store(id, Ordering::Relaxed);
    header.holds.store(1, Ordering::Relaxed);
    remember(&mut known, Arc::clone(&spill));
    Ok(spill)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(hold: &Hold) -> u32 {
        hold.spill.header().holds.load(Ordering::Relaxed)
    }

    #[test]
    fn a_spill_is_used_again_only_once_every_hold_is_released() {
        let bytes: Vec<u8> = (0..THRESHOLD + 5).map(|i| (i % 251) as u8).collect();
        let first = Hold::store(&bytes).unwrap();
        assert_eq!(first.to_vec().unwrap(), bytes);
        // Sent once: the receiver's hold.
        first.count_receiver();
        let received = Hold::received(first.memory().clone()).unwrap();
        assert!(Arc::ptr_eq(&received.spill, &first.spill), "found by id");
        assert_eq!(holds(&first), 2);

        // Held: a second string goes to another spill.
        let second = Hold::store(&bytes[..10]).unwrap();
        assert!(!Arc::ptr_eq(&second.spill, &first.spill));
        drop(first);
        let third = Hold::store(&bytes[..10]).unwrap();
        assert!(!Arc::ptr_eq(&third.spill, &received.spill));
        // Both holds released: free to be claimed again.
        let spill = Arc::clone(&received.spill);
        drop(received);
        assert_eq!(spill.header().holds.load(Ordering::Relaxed), 0);
        drop((second, third));
    }

    #[test]
    fn a_large_string_is_received_into_the_last_vector_let_go_if_it_fits() {
        let len = 3 * THRESHOLD + 12_345;
        let bytes: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
        let spare = vec![7_u8; len];
        let address = spare.as_ptr();
        recycle(spare);
        let hold = Hold::store(&bytes).unwrap();
        let received = hold.to_vec().unwrap();
        assert_eq!(received, bytes);
        assert_eq!(received.as_ptr(), address, "received into the spare vector");

        // A spare far larger than the string is not handed out with it.
        recycle(vec![0_u8; 4 * len]);
        let hold = Hold::store(&bytes[..len / 2]).unwrap();
        let received = hold.to_vec().unwrap();
        assert_eq!(received, &bytes[..len / 2]);
        assert!(
            received.capacity() <= len / 2 + len / 8,
            "{}",
            received.capacity()
        );
    }

    #[test]
    fn a_hold_for_a_child_is_released_only_once_adopted() {
        let hold = Hold::store(b"abc").unwrap();
        let inherited = hold.for_child();
        assert_eq!(holds(&hold), 2);
        drop(inherited);
        assert_eq!(holds(&hold), 2, "not adopted: released by nobody here");
        let adopted = hold.for_child().adopt();
        assert_eq!(holds(&hold), 3);
        drop(adopted);
        assert_eq!(holds(&hold), 2);
    }

    #[test]
    fn a_shared_object_segment_is_not_a_spill() {
        /// Another kind of segment.
        #[repr(C)]
        struct Other(AtomicU64);
        // SAFETY: `#[repr(C)]`, made only of an atomic.
        unsafe impl Header for Other {
            const KIND: u32 = 1000;
            const NAME: &'static str = "test object";
        }
        assert!(!is_spill(&Segment::<Other>::create(8).unwrap().memory()));
        assert!(is_spill(Hold::store(b"x").unwrap().memory()));
    }
}
