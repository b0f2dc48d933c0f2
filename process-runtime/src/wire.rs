//! The channels between a parent and its children.
//!
//! Values are encoded once, by [`codec`](crate::codec), and travel as [`Bytes`] over typed
//! ipc-channel channels: ipc-channel frames them (a length and a copy, no second encoding), and
//! its typed receivers are the ones that can wait with a timeout.

use ipc_channel::ipc::{IpcReceiver, IpcSender};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An encoded value on its way to another process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(copy_to_vec(v)))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// A slice of bytes to serialize as one byte string. For bincode this is the very encoding of a
/// `Vec<u8>` (a length, then the bytes), made with one copy instead of one call per byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteStr<'a>(pub(crate) &'a [u8]);

impl Serialize for ByteStr<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// From this size on, a buffer is worth transparent huge pages: touching fresh memory 4 KiB at a
/// time costs more than the copy itself (a 64 MiB buffer takes tens of thousands of faults).
const HUGE: usize = 4 << 20;

/// Copies `bytes` into a new vector, asking for huge pages when it is large.
pub(crate) fn copy_to_vec(bytes: &[u8]) -> Vec<u8> {
    let mut vec = Vec::new();
    reserve(&mut vec, bytes.len());
    vec.extend_from_slice(bytes);
    vec
}

/// Makes room for `additional` more bytes in `vec`, asking for huge pages for the new room when
/// it is large (so that filling it costs a few faults, not one per 4 KiB).
pub(crate) fn reserve(vec: &mut Vec<u8>, additional: usize) {
    if vec.capacity() - vec.len() >= additional {
        return;
    }
    vec.reserve_exact(additional);
    if additional >= HUGE {
        let base = vec.as_mut_ptr() as usize + vec.len();
        let start = base.next_multiple_of(4096);
        let end = (base + additional) & !4095;
        if end > start {
            // SAFETY: madvise only advises the kernel about pages of this vector's own spare
            // capacity, which nothing has touched; it never changes what the memory holds.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
}

/// Sends encoded values to another process.
pub(crate) type Sender = IpcSender<Bytes>;
/// Receives encoded values from another process.
pub(crate) type Receiver = IpcReceiver<Bytes>;

/// A new channel.
pub(crate) fn channel() -> std::io::Result<(Sender, Receiver)> {
    ipc_channel::ipc::channel()
}
