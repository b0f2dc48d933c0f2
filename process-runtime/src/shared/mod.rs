//! Objects shared between processes: values that say in their type that they are shared.
//!
//! Every process has its own memory, so a global changed in a child stays changed in that child
//! only. What several processes must see together lives in one of these objects:
//!
//! | object | what it is | Python |
//! |---|---|---|
//! | [`Value<T>`](crate::Value), [`Array<T>`](crate::Array) | plain data with a lock | `Value`, `Array` |
//! | [`Lock`], [`RLock`] | a lock that survives the death of its holder | `Lock`, `RLock` |
//! | [`Event`] | a flag to wait on | `Event` |
//! | [`Semaphore`] | a counter to wait on | `Semaphore` |
//! | [`Queue<T>`](crate::Queue) | many producers, many consumers | `Queue` |
//! | [`pipe`](crate::pipe) → two [`Connection<T>`](crate::Connection)s | a duplex pipe | `Pipe()` |
//!
//! Each is passed to a task as an ordinary argument (or returned from one, made in the child),
//! and works under every start method and in pool tasks. One call's arguments, or one return
//! value, can hold at most 30 of them (each travels as a file descriptor beside the message);
//! more is an error that says so. Group many in an [`Array`](crate::Array) instead. A clone is another handle to the same object. Each lives in a memory segment of
//! its own (a memfd): it has no name in `/dev/shm` or anywhere else, and the kernel frees it
//! when the last process that holds the object ends, however it ends. Nothing can leak.
//!
//! Inside, the locks are robust process-shared pthread mutexes ([`mutex`]), waits are futexes
//! ([`futex`]), and queues and pipes are rings of encoded items ([`ring`]).

mod error;
mod event;
mod futex;
mod lock;
mod mutex;
mod pipe;
mod plain;
mod queue;
mod ring;
pub(crate) mod segment;
mod semaphore;
mod value;

pub use error::{LockError, LockResult, SharedError};
pub use event::Event;
pub use lock::{Lock, LockGuard, RLock};
pub use pipe::{Connection, pipe, pipe_with_capacity};
pub use plain::Plain;
pub use queue::Queue;
pub use semaphore::Semaphore;
pub use value::{Array, ArrayGuard, Value, ValueGuard};

/// Sends `value` through the same encoding as task arguments, segments and all, and decodes it
/// as a `U`: what a child does with its arguments. Returns the result and the number of
/// segments that travelled.
#[cfg(test)]
pub(crate) fn travel<T: serde::Serialize, U: serde::de::DeserializeOwned>(
    value: &T,
) -> (Result<U, crate::DecodeError>, usize) {
    let payload = crate::attach::encode(value).expect("encode");
    let segments = payload.shared.len();
    (
        crate::attach::decode(&payload.bytes.0, payload.shared),
        segments,
    )
}
