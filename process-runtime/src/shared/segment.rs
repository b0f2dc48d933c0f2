//! The memory segment under every shared object.
//!
//! A segment is ipc-channel's [`IpcSharedMemory`]: a memfd mapped shared, with no name in the
//! file system, freed by the kernel when the last process that maps it is gone, however it went.
//! It starts with a tag (a magic number and the kind of object), then the object's header `H` (a
//! `#[repr(C)]` struct of atomics and mutexes) at [`HEADER_AT`], then the object's data.
//!
//! The segment is only ever touched through `H`'s atomics and mutexes, or through its data while
//! the object's mutex is held: never through a `&[u8]` or `&mut [u8]` of it, since other
//! processes write it at any time.

use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ipc_channel::ipc::IpcSharedMemory;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SharedError;

/// The header of one kind of shared object.
///
/// # Safety
///
/// The type is `#[repr(C)]`, aligned to at most 64 bytes, and made only of atomics and
/// [`RawMutex`](super::mutex::RawMutex)es: all-zero bytes, and any bytes another process may
/// write, are a valid value, and every field can be changed through a shared reference.
pub(crate) unsafe trait Header: Sync + Sized {
    /// Tells the segments of different kinds of object apart.
    const KIND: u32;
    /// The kind of object, for messages.
    const NAME: &'static str;
}

/// "PTso": a segment made by this crate.
const MAGIC: u32 = u32::from_le_bytes(*b"PTso");

/// Where the header starts; the tag is before it.
const HEADER_AT: usize = 64;

/// Segments at least this large give their (all-zero) pages back to the kernel right after
/// creation: ipc-channel writes every byte of a new segment, but a ring only needs the pages it
/// uses, and a page given back reads as zeroes again.
const GIVE_BACK_ABOVE: usize = 64 * 1024;

/// A segment holding one object of header `H`.
pub(crate) struct Segment<H> {
    /// Keeps the mapping (and its file descriptor) alive.
    memory: IpcSharedMemory,
    /// The start of the mapping, page-aligned.
    base: *mut u8,
    _header: PhantomData<H>,
}

// SAFETY: the segment is touched only through `H` (atomics and process-shared mutexes, which are
// `Sync`: `Header` requires it) and through the data region under the object's mutex. The
// pointer stays valid as long as `memory`, which moves with it.
unsafe impl<H: Header> Send for Segment<H> {}
// SAFETY: as above; nothing in `Segment` itself changes after construction.
unsafe impl<H: Header> Sync for Segment<H> {}

impl<H> std::fmt::Debug for Segment<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("address", &self.base)
            .field("len", &self.memory.len())
            .finish()
    }
}

impl<H: Header> Segment<H> {
    /// Where the data region starts: after the header, on a 64-byte boundary.
    pub(crate) const DATA_AT: usize = (HEADER_AT + size_of::<H>()).next_multiple_of(64);

    /// A new, zeroed segment with `data_len` bytes of data after the header, tagged as an `H`.
    /// The caller initialises the header before the segment is shared.
    pub(crate) fn create(data_len: usize) -> Result<Self, SharedError> {
        Self::create_with(data_len, true)
    }

    /// As [`create`](Segment::create), but keeps every page of the segment in memory from the
    /// start: for a segment that is about to be filled anyway.
    pub(crate) fn create_touched(data_len: usize) -> Result<Self, SharedError> {
        Self::create_with(data_len, false)
    }

    fn create_with(data_len: usize, give_back: bool) -> Result<Self, SharedError> {
        const { assert!(align_of::<H>() <= HEADER_AT) };
        let len = Self::DATA_AT
            .checked_add(data_len)
            .filter(|&len| len <= isize::MAX as usize)
            .ok_or_else(|| {
                SharedError::Invalid(format!(
                    "a {} of {data_len} bytes is larger than memory can be",
                    H::NAME
                ))
            })?;
        // ipc-channel asserts that memfd_create, ftruncate and mmap succeed: turn a failure
        // (no file descriptor or no memory left) into an error.
        let memory = std::panic::catch_unwind(|| IpcSharedMemory::from_byte(0, len)).map_err(
            |_| SharedError::Os {
                action: "create a shared memory segment",
                source: io::Error::other(format!(
                    "memfd_create or mmap of {len} bytes failed: out of file descriptors or memory?"
                )),
            },
        )?;
        let segment = Segment::map(memory);
        if give_back && len >= GIVE_BACK_ABOVE {
            // SAFETY: the range is this mapping, shared and writable; nothing else knows the
            // segment yet. MADV_REMOVE frees the pages, which read as zeroes afterwards, as they
            // are now. A failure only means the pages stay allocated.
            unsafe { libc::madvise(segment.base.cast(), len, libc::MADV_REMOVE) };
        }
        let (magic, kind) = segment.tag();
        magic.store(MAGIC, Ordering::Relaxed);
        kind.store(H::KIND, Ordering::Relaxed);
        Ok(segment)
    }

    /// The segment another process sent, checked to hold an `H`.
    pub(crate) fn open(memory: IpcSharedMemory) -> Result<Self, String> {
        if memory.len() < Self::DATA_AT {
            return Err(format!(
                "the shared memory of a {} is {} bytes, too small to be one",
                H::NAME,
                memory.len()
            ));
        }
        if !Self::holds_kind(&memory) {
            return Err(format!(
                "the shared memory received for a {} does not hold one",
                H::NAME
            ));
        }
        Ok(Segment::map(memory))
    }

    /// Whether `memory` is a segment tagged as an `H`, without taking it.
    pub(crate) fn holds_kind(memory: &IpcSharedMemory) -> bool {
        if memory.len() < Self::DATA_AT {
            return false;
        }
        let base = memory.as_ptr();
        // SAFETY: the mapping is page-aligned and longer than the two tag words, which are only
        // ever accessed as atomics.
        let (magic, kind) = unsafe {
            (
                AtomicU32::from_ptr(base.cast_mut().cast()),
                AtomicU32::from_ptr(base.add(4).cast_mut().cast()),
            )
        };
        magic.load(Ordering::Acquire) == MAGIC && kind.load(Ordering::Acquire) == H::KIND
    }

    fn map(mut memory: IpcSharedMemory) -> Self {
        // SAFETY: ipc-channel's condition is that no other reference to the bytes is in use.
        // The `&mut [u8]` lives only for this statement, which takes its address; from then on
        // the memory is only reached through atomics, mutexes and raw pointers.
        let base = unsafe { memory.deref_mut() }.as_mut_ptr();
        Segment {
            memory,
            base,
            _header: PhantomData,
        }
    }

    fn tag(&self) -> (&AtomicU32, &AtomicU32) {
        // SAFETY: the mapping is page-aligned and at least `DATA_AT` > 8 bytes long (checked in
        // `create` and `open`), lives as long as `self`, and its first two words are only ever
        // accessed as these atomics.
        unsafe {
            (
                AtomicU32::from_ptr(self.base.cast()),
                AtomicU32::from_ptr(self.base.add(4).cast()),
            )
        }
    }

    /// The object's header.
    pub(crate) fn header(&self) -> &H {
        // SAFETY: `HEADER_AT` is a multiple of `H`'s alignment (asserted in `create`) in a
        // page-aligned mapping at least `DATA_AT` bytes long, so the header is in bounds and
        // aligned; `Header` guarantees that any bytes are a valid `H` that may be shared.
        unsafe { &*self.base.add(HEADER_AT).cast::<H>() }
    }

    /// The start of the data region. Touch it only while holding the object's mutex.
    pub(crate) fn data(&self) -> *mut u8 {
        // SAFETY: `DATA_AT` is within the mapping (checked in `create` and `open`).
        unsafe { self.base.add(Self::DATA_AT) }
    }

    /// The memory itself (another mapping of it), to hand to a process through a channel of
    /// the runtime's own rather than as a task's argument.
    pub(crate) fn memory(&self) -> IpcSharedMemory {
        self.memory.clone()
    }

    /// The memory itself, borrowed: for serializing it into a message, which passes its
    /// descriptor, without making another mapping first. Not for reading: see the module docs.
    pub(crate) fn memory_ref(&self) -> &IpcSharedMemory {
        &self.memory
    }

    /// The length of the data region.
    pub(crate) fn data_len(&self) -> usize {
        self.memory.len() - Self::DATA_AT
    }
}

impl<H: Header> Serialize for Segment<H> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::attach::serialize_segment(&self.memory, serializer)
    }
}

impl<'de, H: Header> Deserialize<'de> for Segment<H> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let memory = crate::attach::deserialize_segment(deserializer)?;
        Segment::open(memory).map_err(serde::de::Error::custom)
    }
}

/// A segment shared by every clone of one handle: what an object whose clones are the same
/// object holds ([`Event`](crate::Event), [`Semaphore`](crate::Semaphore), the locks). It
/// travels as its segment, so such an object can derive `Clone`, `Serialize` and `Deserialize`
/// (with `#[serde(transparent)]`).
pub(crate) struct SharedSegment<H>(Arc<Segment<H>>);

impl<H: Header> SharedSegment<H> {
    /// A new, zeroed segment with no data region, tagged as an `H`; `init` sets up the header
    /// before anything else can see it.
    pub(crate) fn create(
        init: impl FnOnce(&H) -> Result<(), SharedError>,
    ) -> Result<Self, SharedError> {
        let segment = Segment::create(0)?;
        init(segment.header())?;
        Ok(SharedSegment(Arc::new(segment)))
    }
}

impl<H> Clone for SharedSegment<H> {
    fn clone(&self) -> Self {
        SharedSegment(Arc::clone(&self.0))
    }
}

impl<H> Deref for SharedSegment<H> {
    type Target = Segment<H>;
    fn deref(&self) -> &Segment<H> {
        &self.0
    }
}

impl<H: Header> Serialize for SharedSegment<H> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, H: Header> Deserialize<'de> for SharedSegment<H> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Segment::deserialize(deserializer).map(|segment| SharedSegment(Arc::new(segment)))
    }
}
