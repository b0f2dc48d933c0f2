//! The channels between a parent and its children.
//!
//! Values are encoded once, by [`codec`](crate::codec), and travel as [`Bytes`] with the shared
//! memory they refer to ([`Payload`]) over typed ipc-channel channels: ipc-channel frames them (a
//! length and a copy, no second encoding), and its typed receivers are the ones that can wait
//! with a timeout. Large byte strings go beside the bytes, in a [spill](crate::spill).

use std::sync::OnceLock;

use ipc_channel::ipc::{IpcReceiver, IpcSender};
use ipc_channel::platform::OsIpcSender;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::attach::Payload;

/// The most bytes a pool puts in one message of its own making (a batch for a worker, a
/// worker's reports): what ipc-channel sends in one piece, less room for the framing.
///
/// A larger message ipc-channel splits over a socket pair made for that message, the sender
/// waiting for the receiver to take each piece. A map of a million tiny items in Python's
/// default chunks (125,000 items, about a megabyte a message) ran at two-thirds the speed of
/// the same map in chunks under this size.
pub(crate) fn message_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let piece = OsIpcSender::get_max_fragment_size();
        // Below a piece however small the socket's buffer is.
        piece.saturating_sub(4096).max(piece / 2)
    })
}

/// Whether a message of `count` values taking `size` bytes is full: one more value of their
/// average size would take it past `budget`. Cut there, values of a few kilobytes each stay
/// within the budget, where a cut once the budget is reached sends the last one past it.
#[inline]
pub(crate) fn is_full(size: usize, count: usize, budget: usize) -> bool {
    // `size + size / count > budget`, without a division per value.
    count > 0 && size.saturating_mul(count + 1) > budget.saturating_mul(count)
}

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

/// A `Vec<u8>` argument or return value on its way: a tag, then the bytes themselves (tag 0), or,
/// from [`spill::THRESHOLD`](crate::spill::THRESHOLD) bytes on and while the encoding collects
/// attachments, the index of the [spill](crate::spill) that holds them (tag 1). Decoded as a
/// [`Blob`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteStr<'a>(pub(crate) &'a [u8]);

/// [`ByteStr`]'s tags.
const INLINE: u8 = 0;
const SPILLED: u8 = 1;

impl Serialize for ByteStr<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(2)?;
        let spilled = if self.0.len() >= crate::spill::THRESHOLD {
            crate::attach::spill(self.0)
        } else {
            None
        };
        match spilled {
            Some(index) => {
                tuple.serialize_element(&SPILLED)?;
                tuple.serialize_element(&index)?;
            }
            None => {
                tuple.serialize_element(&INLINE)?;
                tuple.serialize_element(&Inline(self.0))?;
            }
        }
        tuple.end()
    }
}

/// Bytes serialized as one byte string (for bincode: a length, then the bytes, in one copy
/// instead of one call per byte).
struct Inline<'a>(&'a [u8]);

impl Serialize for Inline<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// A decoded [`ByteStr`].
#[derive(Debug)]
pub(crate) struct Blob(pub(crate) Vec<u8>);

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a tagged byte string")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
                use serde::de::Error;
                let tag: u8 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                match tag {
                    INLINE => Ok(Blob(
                        seq.next_element::<Bytes>()?
                            .ok_or_else(|| A::Error::invalid_length(1, &self))?
                            .0,
                    )),
                    SPILLED => {
                        let index: u32 = seq
                            .next_element()?
                            .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                        // Copied out, then the spill is released as `hold` drops.
                        let hold = crate::attach::take_spill(index).map_err(A::Error::custom)?;
                        hold.to_vec().map(Blob).map_err(A::Error::custom)
                    }
                    other => Err(A::Error::custom(format!(
                        "{other} is not the tag of a byte string"
                    ))),
                }
            }
        }
        deserializer.deserialize_tuple(2, Visitor)
    }
}

/// Offsets into a buffer (where each item of a pool's batch ends): on the wire, their
/// little-endian bytes in one byte string, a copy where a sequence would cost a call and a
/// varint per offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Offsets(pub(crate) Vec<u32>);

impl std::ops::Deref for Offsets {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        &self.0
    }
}

impl Serialize for Offsets {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(4 * self.0.len());
        for offset in &self.0 {
            bytes.extend_from_slice(&offset.to_le_bytes());
        }
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Offsets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Offsets;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("offsets as little-endian u32 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Offsets, E> {
                if v.len() % 4 != 0 {
                    return Err(E::custom(format!(
                        "{} bytes of offsets, not a multiple of 4",
                        v.len()
                    )));
                }
                Ok(Offsets(
                    v.chunks_exact(4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ))
            }
        }
        deserializer.deserialize_bytes(Visitor)
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

/// Sends encoded values, and the shared memory they refer to, to another process.
pub(crate) type Sender = IpcSender<Payload>;
/// Receives encoded values, and the shared memory they refer to, from another process.
pub(crate) type Receiver = IpcReceiver<Payload>;

/// A new channel.
pub(crate) fn channel() -> std::io::Result<(Sender, Receiver)> {
    ipc_channel::ipc::channel()
}

/// Waits for a message on `receiver` until `deadline`: `Err(Empty)` if none came by then.
///
/// Where ipc-channel's `try_recv_timeout` falls short: it rounds the timeout down to whole
/// milliseconds (here rounded up, and a wait that returns early goes on), and a signal with a
/// handler that interrupts its `poll` is an `EINTR` error (here the wait goes on too: it is not
/// the other side's failure).
pub(crate) fn recv_until<T>(
    receiver: &IpcReceiver<T>,
    deadline: std::time::Instant,
) -> Result<T, ipc_channel::TryRecvError>
where
    T: for<'de> Deserialize<'de> + Serialize,
{
    use ipc_channel::{IpcError, TryRecvError};
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match receiver.try_recv_timeout(left + std::time::Duration::from_micros(999)) {
            Err(TryRecvError::IpcError(IpcError::Io(error)))
                if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(TryRecvError::Empty) if std::time::Instant::now() < deadline => {}
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_reject_a_torn_length() {
        let offsets = Offsets(vec![0, 3, 70_000, u32::MAX]);
        let bytes = crate::codec::encode(&offsets).unwrap();
        assert_eq!(crate::codec::decode::<Offsets>(&bytes).unwrap(), offsets);
        let torn = crate::codec::encode(&Bytes(vec![1, 2, 3])).unwrap();
        assert!(crate::codec::decode::<Offsets>(&torn).is_err());
    }
}
