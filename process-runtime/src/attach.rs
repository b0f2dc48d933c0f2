//! Shared memory that travels beside encoded values.
//!
//! A shared object ([`Value`](crate::Value), [`Lock`](crate::Lock), [`Queue`](crate::Queue), …)
//! lives in a memory segment (a memfd, through ipc-channel's `IpcSharedMemory`). When one is part
//! of a task's arguments, its `Serialize` impl cannot put the segment into the bytes: it hands
//! the segment to [`collecting`], which gathers it into a list, and writes only its index in that
//! list. The list travels beside the bytes in the same ipc-channel message, which passes the
//! segments as file descriptors; on the other side [`providing`] makes the received list
//! available while the bytes decode, and the object's `Deserialize` impl takes its segment back
//! by index.
//!
//! A segment has no name in the file system: when the last process that maps it exits, however
//! it exits, the kernel frees it. Nothing can leak.
//!
//! Outside these two contexts a shared object refuses to serialize, with an error that says
//! where it can go.
//!
//! Large byte strings travel the same way, in a [`spill`](crate::spill): an attachment that
//! holds one also holds the spill against being written again (see that module).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use ipc_channel::ipc::IpcSharedMemory;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, DecodeError, EncodeError};
use crate::spill::{self, Hold};

thread_local! {
    /// The attachments gathered by the [`collecting`] calls running on this thread, innermost
    /// last.
    static OUTGOING: RefCell<Attachments> = const { RefCell::new(Vec::new()) };
    /// How many attachments `OUTGOING` holds: read without touching `OUTGOING` itself, whose
    /// thread-local costs more to reach, so that an encoding that attaches nothing (nearly all)
    /// costs a few reads of plain cells.
    static PENDING: Cell<usize> = const { Cell::new(0) };
    /// Where the innermost [`collecting`]'s attachments start in `OUTGOING`; [`OUTSIDE`] outside
    /// any (a plain word: an `Option` is two, and moving those through thread-local memory costs
    /// more than the rest of the bookkeeping).
    static SCOPE: Cell<usize> = const { Cell::new(OUTSIDE) };
    static INCOMING: RefCell<Option<Vec<Option<Attachment>>>> = const { RefCell::new(None) };
}

/// [`SCOPE`] outside any [`collecting`].
const OUTSIDE: usize = usize::MAX;

/// Shared memory beside an encoded value.
#[derive(Debug, Clone)]
pub(crate) enum Attachment {
    /// A shared object's segment.
    Segment(IpcSharedMemory),
    /// A large byte string, with a hold on its spill for as long as this attachment (or a clone
    /// of it) lives.
    Spill(Arc<Hold>),
}

impl Serialize for Attachment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Attachment::Segment(memory) => memory.serialize(serializer),
            Attachment::Spill(hold) => {
                // The receiver's hold, released when it drops what it received.
                hold.count_receiver();
                hold.memory().serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Attachment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let memory = IpcSharedMemory::deserialize(deserializer)?;
        if spill::is_spill(&memory) {
            Hold::received(memory)
                .map(|hold| Attachment::Spill(Arc::new(hold)))
                .map_err(D::Error::custom)
        } else {
            Ok(Attachment::Segment(memory))
        }
    }
}

/// Shared memory, in the order the encoded bytes refer to it.
pub(crate) type Attachments = Vec<Attachment>;

/// The most attachments one message can carry: ipc-channel passes at most 64 descriptors in a
/// message (and panics beyond), a few of which a child's `Start` needs for its channels.
pub(crate) const MAX_PER_MESSAGE: usize = 60;

/// The most attachments one call's arguments, or one return value, may take along: half a
/// message, so that a pool's batch of calls (or a worker's message of reports), which takes one
/// more while it holds less than half, never needs more than one message.
pub(crate) const MAX_PER_VALUE: usize = MAX_PER_MESSAGE / 2;

/// Why a value with `count` attachments cannot go to another process, if it cannot.
#[inline]
pub(crate) fn too_many(count: usize) -> Option<String> {
    (count > MAX_PER_VALUE).then(|| too_many_message(count))
}

#[cold]
fn too_many_message(count: usize) -> String {
    format!(
        "it holds {count} shared objects or large byte strings, and one call's arguments or one \
         return value can take at most {MAX_PER_VALUE} to another process (each is a file \
         descriptor, and a message passes a limited number): pass fewer, or group them in an \
         Array or a Queue"
    )
}

/// For a child about to be forked, which inherits `attachments` without a message: takes a hold
/// on each spill for it. The child [`adopt`]s them; if the fork fails, [`drop_for_child`] gives
/// them back.
pub(crate) fn hold_for_child(attachments: &Attachments) -> Vec<Hold> {
    attachments
        .iter()
        .filter_map(|attachment| match attachment {
            Attachment::Spill(hold) => Some(hold.for_child()),
            Attachment::Segment(_) => None,
        })
        .collect()
}

/// In a forked child: makes the holds taken for it by [`hold_for_child`] its own, to release
/// once it has read the spills.
pub(crate) fn adopt(holds: Vec<Hold>) -> Vec<Hold> {
    holds.into_iter().map(Hold::adopt).collect()
}

/// In the parent, when the fork failed: gives back the holds taken by [`hold_for_child`].
pub(crate) fn drop_for_child(holds: Vec<Hold>) {
    drop(adopt(holds));
}

/// Copies `bytes` into a spill that travels beside the value being encoded, and returns its
/// index; `None` when nothing is collecting attachments here (or no spill could be made: the
/// bytes then go inline, which works as well, only slower).
pub(crate) fn spill(bytes: &[u8]) -> Option<u32> {
    if SCOPE.get() == OUTSIDE {
        return None;
    }
    let hold = Hold::store(bytes).ok()?;
    attach(Attachment::Spill(Arc::new(hold))).map(|index| index as u32)
}

/// Adds `attachment` to the innermost [`collecting`]; its index there, `None` outside one.
fn attach(attachment: Attachment) -> Option<usize> {
    let start = SCOPE.get();
    if start == OUTSIDE {
        return None;
    }
    let index = OUTGOING.with_borrow_mut(|out| {
        out.push(attachment);
        out.len() - 1 - start
    });
    PENDING.set(PENDING.get() + 1);
    Some(index)
}

/// For a large byte string's `Deserialize`: the spill whose index comes in the bytes. Dropping
/// it releases it.
pub(crate) fn take_spill(index: u32) -> Result<Arc<Hold>, String> {
    match take(index as usize) {
        Some(Attachment::Spill(hold)) => Ok(hold),
        Some(Attachment::Segment(_)) => Err(format!(
            "attachment {index} is a shared object where a large byte string was expected"
        )),
        None => Err(format!(
            "the large byte string in attachment {index} is missing from the message"
        )),
    }
}

fn take(index: usize) -> Option<Attachment> {
    INCOMING.with(|inc| {
        inc.borrow_mut()
            .as_mut()
            .and_then(|list| list.get_mut(index))
            .and_then(Option::take)
    })
}

/// Runs `f` (which encodes), gathering the segments of the shared objects it serializes.
pub(crate) fn collecting<R>(f: impl FnOnce() -> R) -> (R, Attachments) {
    let mut gathered = Vec::new();
    let result = collecting_into(&mut gathered, f);
    (result, gathered)
}

/// Runs `f` (which encodes), appending the segments of the shared objects it serializes to
/// `gathered`.
///
/// Cheap enough to wrap every item of a pool's chunk: a few reads and writes of thread-local
/// words, and nothing more unless something is attached.
#[inline]
pub(crate) fn collecting_into<R>(gathered: &mut Attachments, f: impl FnOnce() -> R) -> R {
    /// Ends the scope, even if `f` panics.
    struct Scope {
        outer: usize,
        start: usize,
    }
    impl Drop for Scope {
        #[inline]
        fn drop(&mut self) {
            // After a panic in `f`: what it gathered is dropped, not left to the next encoding.
            if PENDING.get() > self.start {
                OUTGOING.with_borrow_mut(|out| out.truncate(self.start));
                PENDING.set(self.start);
            }
            SCOPE.set(self.outer);
        }
    }
    let start = PENDING.get();
    let scope = Scope {
        outer: SCOPE.replace(start),
        start,
    };
    let result = f();
    if PENDING.get() > start {
        PENDING.set(start);
        OUTGOING.with_borrow_mut(|out| gathered.extend(out.drain(start..)));
    }
    drop(scope);
    result
}

/// Runs `f` (which decodes) with `attachments` available to the shared objects it deserializes.
pub(crate) fn providing<R>(attachments: Attachments, f: impl FnOnce() -> R) -> R {
    /// Puts back what the caller provided, even if `f` panics (a `Deserialize` impl may, and
    /// the pool's thread goes on): the attachments left over are dropped, not handed to the
    /// next decoding.
    struct Scope(Option<Vec<Option<Attachment>>>);
    impl Drop for Scope {
        fn drop(&mut self) {
            let outer = self.0.take();
            let left = INCOMING.with(|inc| std::mem::replace(&mut *inc.borrow_mut(), outer));
            drop(left);
        }
    }
    let list = attachments.into_iter().map(Some).collect();
    let _scope = Scope(INCOMING.with(|inc| inc.borrow_mut().replace(list)));
    f()
}

/// An encoded value and the segments its bytes refer to.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub(crate) bytes: crate::wire::Bytes,
    pub(crate) shared: Attachments,
}

impl Payload {
    /// A payload that refers to no segment.
    pub(crate) fn plain(bytes: Vec<u8>) -> Self {
        Payload {
            bytes: crate::wire::Bytes(bytes),
            shared: Vec::new(),
        }
    }
}

/// A [`Payload`] inside an encoded value (a pool's initializer inside a worker's start): its
/// segments join the outer value's attachments instead of needing a message of their own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nested {
    pub(crate) bytes: Vec<u8>,
    pub(crate) shared: Attachments,
}

impl From<Payload> for Nested {
    fn from(payload: Payload) -> Self {
        Nested {
            bytes: payload.bytes.0,
            shared: payload.shared,
        }
    }
}

impl Serialize for Nested {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&crate::wire::Bytes(self.bytes.clone()))?;
        tuple.serialize_element(&Segments(&self.shared))?;
        tuple.end()
    }
}

/// Serializes attachments by index, as part of the outer value's attachments.
struct Segments<'a>(&'a [Attachment]);

impl Serialize for Segments<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for segment in self.0 {
            seq.serialize_element(&Segment(segment))?;
        }
        seq.end()
    }
}

struct Segment<'a>(&'a Attachment);

impl Serialize for Segment<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_attachment(self.0.clone(), serializer)
    }
}

/// An attachment received by index.
struct Received(Attachment);

impl<'de> Deserialize<'de> for Received {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let index = u32::deserialize(deserializer)?;
        take(index as usize).map(Received).ok_or_else(|| {
            D::Error::custom(format!("attachment {index} is missing from the message"))
        })
    }
}

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (bytes, shared): (crate::wire::Bytes, Vec<Received>) =
            Deserialize::deserialize(deserializer)?;
        Ok(Nested {
            bytes: bytes.0,
            shared: shared.into_iter().map(|r| r.0).collect(),
        })
    }
}

/// Encodes `value` and gathers the segments of the shared objects in it.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Payload, EncodeError> {
    let (bytes, shared) = collecting(|| codec::encode(value));
    Ok(Payload {
        bytes: crate::wire::Bytes(bytes?),
        shared,
    })
}

/// Runs `encode` on a new buffer and gathers the segments of the shared objects it serializes.
pub(crate) fn encode_with(
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<Payload, EncodeError> {
    let mut bytes = Vec::new();
    let (encoded, shared) = collecting(|| encode(&mut bytes));
    encoded?;
    if let Some(reason) = too_many(shared.len()) {
        return Err(codec::encode_error(reason));
    }
    Ok(Payload {
        bytes: crate::wire::Bytes(bytes),
        shared,
    })
}

/// Decodes a `T` whose shared objects take their segments from `attachments`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    attachments: Attachments,
) -> Result<T, DecodeError> {
    if attachments.is_empty() {
        // Nothing to provide: a shared object in the bytes finds no segment either way.
        return codec::decode(bytes);
    }
    providing(attachments, || codec::decode(bytes))
}

/// For a shared object's `Serialize`: hands `segment` over to travel beside the bytes and writes
/// its index.
pub(crate) fn serialize_segment<S: Serializer>(
    segment: &IpcSharedMemory,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serialize_attachment(Attachment::Segment(segment.clone()), serializer)
}

fn serialize_attachment<S: Serializer>(
    attachment: Attachment,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match attach(attachment) {
        Some(index) => (index as u32).serialize(serializer),
        None => Err(S::Error::custom(
            "a shared object can only be sent to another process as (part of) a task's arguments or return value, or in a process_global",
        )),
    }
}

/// For a shared object's `Deserialize`: takes the segment whose index comes next in the bytes.
pub(crate) fn deserialize_segment<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<IpcSharedMemory, D::Error> {
    let index = u32::deserialize(deserializer)? as usize;
    match take(index) {
        Some(Attachment::Segment(memory)) => Ok(memory),
        Some(Attachment::Spill(_)) => Err(D::Error::custom(format!(
            "shared memory segment {index} is a large byte string, not a shared object"
        ))),
        None => Err(D::Error::custom(format!(
            "shared memory segment {index} is missing from the message"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for a shared object.
    #[derive(Debug)]
    struct Shared(IpcSharedMemory);

    impl Serialize for Shared {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize_segment(&self.0, serializer)
        }
    }

    impl<'de> Deserialize<'de> for Shared {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserialize_segment(deserializer).map(Shared)
        }
    }

    #[test]
    fn segments_travel_beside_the_bytes() {
        let value = (
            7_u32,
            Shared(IpcSharedMemory::from_bytes(b"abc")),
            Shared(IpcSharedMemory::from_bytes(b"xyz")),
        );
        let payload = encode(&value).unwrap();
        assert_eq!(payload.shared.len(), 2);
        let (n, a, b): (u32, Shared, Shared) = decode(&payload.bytes.0, payload.shared).unwrap();
        assert_eq!((n, &a.0[..], &b.0[..]), (7, &b"abc"[..], &b"xyz"[..]));
    }

    #[test]
    fn nested_encodings_gather_their_own_segments() {
        let a = Shared(IpcSharedMemory::from_bytes(b"a"));
        let b = Shared(IpcSharedMemory::from_bytes(b"b"));
        let (outer, outer_shared) = collecting(|| {
            let first = codec::encode(&a).unwrap();
            let (inner, inner_shared) = collecting(|| codec::encode(&(&b, &a)).unwrap());
            let second = codec::encode(&b).unwrap();
            (first, inner, inner_shared, second)
        });
        let (first, inner, inner_shared, second) = outer;
        // Indexes count from the start of each encoding's own list.
        assert_eq!(codec::decode::<u32>(&first).unwrap(), 0);
        assert_eq!(codec::decode::<(u32, u32)>(&inner).unwrap(), (0, 1));
        assert_eq!(codec::decode::<u32>(&second).unwrap(), 1);
        assert_eq!((outer_shared.len(), inner_shared.len()), (2, 2));
        // After a panic inside, the thread is outside any encoding again.
        let _ = std::panic::catch_unwind(|| collecting(|| panic!("in the middle")));
        assert!(codec::encode(&a).is_err());
    }

    #[test]
    fn outside_a_message_a_shared_object_does_not_encode() {
        let error = codec::encode(&Shared(IpcSharedMemory::from_bytes(b"abc"))).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("can only be sent to another process"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_segment_is_a_decode_error() {
        let payload = encode(&Shared(IpcSharedMemory::from_bytes(b"abc"))).unwrap();
        assert!(decode::<Shared>(&payload.bytes.0, Vec::new()).is_err());
    }
}
