//! [`pipe`]: two connected ends, each able to send and receive.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SharedError;
use super::mutex::Wait;
use super::ring::{DEFAULT_CAPACITY, Ring, RingHeader};
use super::segment::Segment;
use crate::task::ProcessValue;

/// Two connected ends of a duplex pipe: Python's `multiprocessing.Pipe()`.
///
/// What one end [`send`](Connection::send)s, the other [`recv`](Connection::recv)s, in order,
/// in both directions. Keep one end and pass the other to a task as an ordinary argument.
/// Messages are any [`ProcessValue`] of type `T` (use an enum for several kinds); each direction
/// is a ring of 1 MiB in shared memory (see [`pipe_with_capacity`]), in which `send` waits for
/// room when it is full, and a message larger than the ring is a [`SharedError::TooLarge`].
///
/// ```
/// use process_runtime::prelude::*;
///
/// #[process_task]
/// fn shout(conn: Connection<String>) {
///     let words = conn.recv().expect("receive");
///     conn.send(words.to_uppercase()).expect("send");
/// }
///
/// let (mine, theirs) = pipe()?;
/// let child = shout.spawn(theirs)?; // a child process with the other end
/// mine.send("hello".to_string())?;
/// assert_eq!(mine.recv()?, "HELLO");
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Unlike an OS pipe, a `Connection` has no end-of-file: when the other end is gone, `recv`
/// waits forever. Send a last message that says "done", or use
/// [`recv_timeout`](Connection::recv_timeout).
pub fn pipe<T: ProcessValue>() -> Result<(Connection<T>, Connection<T>), SharedError> {
    pipe_with_capacity(DEFAULT_CAPACITY)
}

/// [`pipe`] with rings of `bytes` bytes in each direction (each message takes its encoded size
/// plus 4), from 8 bytes to 1 GiB.
pub fn pipe_with_capacity<T: ProcessValue>(
    bytes: usize,
) -> Result<(Connection<T>, Connection<T>), SharedError> {
    let there = Arc::new(Ring::new(bytes, None, "pipe")?);
    let back = Arc::new(Ring::new(bytes, None, "pipe")?);
    Ok((
        Connection::from_rings(Arc::clone(&there), Arc::clone(&back)),
        Connection::from_rings(back, there),
    ))
}

/// One end of a [`pipe`]: sends to the other end and receives what it sends.
///
/// Clones are the same end: what one clone receives, the others do not.
pub struct Connection<T> {
    outgoing: Arc<Ring>,
    incoming: Arc<Ring>,
    _message: PhantomData<fn(T) -> T>,
}

impl<T> Connection<T> {
    fn from_rings(outgoing: Arc<Ring>, incoming: Arc<Ring>) -> Self {
        Connection {
            outgoing,
            incoming,
            _message: PhantomData,
        }
    }
}

impl<T: ProcessValue> Connection<T> {
    /// Sends `message` to the other end, waiting while its direction of the pipe is full.
    pub fn send(&self, message: T) -> Result<(), SharedError> {
        self.outgoing.send(&message)
    }

    /// Receives the next message from the other end, waiting until there is one.
    pub fn recv(&self) -> Result<T, SharedError> {
        self.incoming.receive_waiting(Wait::Forever)
    }

    /// Receives the next message, waiting at most `timeout`; [`SharedError::Timeout`] then.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, SharedError> {
        self.incoming.receive_waiting(Wait::timeout(timeout))
    }

    /// Receives the next message if there is one now.
    pub fn try_recv(&self) -> Result<Option<T>, SharedError> {
        self.incoming.receive(Wait::Never)
    }

    /// Whether a message is waiting to be received (Python's `poll()`): a snapshot.
    pub fn poll(&self) -> bool {
        self.incoming.len() != 0
    }
}

impl<T> Clone for Connection<T> {
    /// Another handle to the same end.
    fn clone(&self) -> Self {
        Connection::from_rings(Arc::clone(&self.outgoing), Arc::clone(&self.incoming))
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("waiting_to_be_received", &self.incoming.len())
            .field("waiting_at_the_other_end", &self.outgoing.len())
            .finish()
    }
}

impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&*self.outgoing, &*self.incoming).serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (outgoing, incoming) =
            <(Segment<RingHeader>, Segment<RingHeader>)>::deserialize(deserializer)?;
        let open = |segment| Ring::open(segment, "pipe").map_err(serde::de::Error::custom);
        Ok(Connection::from_rings(
            Arc::new(open(outgoing)?),
            Arc::new(open(incoming)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_send_and_receive() {
        let (a, b) = pipe::<Vec<u16>>().unwrap();
        a.send(vec![1, 2]).unwrap();
        b.send(vec![3]).unwrap();
        assert!(b.poll());
        assert_eq!(b.recv().unwrap(), [1, 2]);
        assert!(!b.poll());
        assert_eq!(a.try_recv().unwrap(), Some(vec![3]));
        assert_eq!(a.try_recv().unwrap(), None);
        assert!(
            a.recv_timeout(Duration::from_millis(5))
                .unwrap_err()
                .is_timeout()
        );
    }

    #[test]
    fn an_end_travels_as_its_two_segments() {
        let (a, b) = pipe_with_capacity::<String>(128).unwrap();
        let (b, segments) = crate::shared::travel::<_, Connection<String>>(&b);
        assert_eq!(segments, 2);
        let b = b.unwrap();
        a.send("ping".into()).unwrap();
        assert_eq!(b.recv().unwrap(), "ping");
        b.send("pong".into()).unwrap();
        assert_eq!(a.recv().unwrap(), "pong");
        let error = a.send("x".repeat(200)).unwrap_err();
        assert!(
            error.to_string().contains("in a pipe of 128 bytes"),
            "{error}"
        );
    }
}
