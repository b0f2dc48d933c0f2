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
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        deserializer.deserialize_byte_buf(Visitor)
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
