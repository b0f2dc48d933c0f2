//! The one place that knows how values become bytes.
//!
//! Arguments, return values and reports cross process boundaries as bincode 2 (through its serde
//! support) with the standard configuration. Changing the format means changing this file only.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest message the decoder accepts, so that a corrupt length prefix cannot make it try to
/// allocate more than this.
const LIMIT: usize = 1 << 40;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<LIMIT>,
>;

const CONFIG: Config = bincode::config::standard().with_limit::<LIMIT>();

/// A value that did not encode.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EncodeError(#[from] bincode::error::EncodeError);

/// An encoding refused for `reason`, outside bincode.
pub(crate) fn encode_error(reason: String) -> EncodeError {
    EncodeError(bincode::error::EncodeError::OtherString(reason))
}

/// A decoding refused for `reason`, outside bincode.
pub(crate) fn decode_error(reason: String) -> DecodeError {
    DecodeError::Invalid(bincode::error::DecodeError::OtherString(reason))
}

/// Bytes that did not decode as the expected type.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a valid encoding of the type.
    #[error("{0}")]
    Invalid(#[from] bincode::error::DecodeError),
    /// A valid value was followed by bytes that belong to nothing.
    #[error("{trailing} unexpected trailing byte(s) after the value")]
    Trailing {
        /// How many bytes were left over.
        trailing: usize,
    },
}

/// Encodes `value`.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    Ok(bincode::serde::encode_to_vec(value, CONFIG)?)
}

/// Encodes `value` at the end of `out`. On failure, `out` may hold part of the value: truncate it
/// back.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    bincode::serde::encode_into_writer(value, Appender(out), CONFIG)?;
    Ok(())
}

/// Appends to a vector: what `std::io::Write` for `Vec<u8>` does, without its error plumbing and
/// byte count, which cost as much as encoding a small value.
struct Appender<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for Appender<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes a `T` that must fill `bytes` exactly.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, CONFIG)?;
    match bytes.len() - read {
        0 => Ok(value),
        trailing => Err(DecodeError::Trailing { trailing }),
    }
}

/// One encoded value at the start of bytes that may go on with other values (the next items of
/// a pool's message): the decoder may read ahead into those, but the value must end exactly at
/// its length.
///
/// bincode decodes a varint from 9 bytes at once where it has them; given a small value's bytes
/// alone, it goes byte by byte instead, at twice the cost (4.4 against 2.3 ns for a `u64` of a
/// few bytes). A pool decodes two such values per item of a map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoded<'a> {
    /// The value's bytes, then possibly more.
    bytes: &'a [u8],
    len: usize,
}

impl<'a> Encoded<'a> {
    /// No value at all.
    pub(crate) const EMPTY: Encoded<'static> = Encoded { bytes: &[], len: 0 };

    /// The value in `buffer[range]`, followed by the rest of `buffer`; `None` if `range` is not
    /// in it.
    #[inline]
    pub(crate) fn in_buffer(buffer: &'a [u8], range: std::ops::Range<usize>) -> Option<Self> {
        let bytes = buffer.get(range.start..)?;
        let len = range.end.checked_sub(range.start)?;
        (len <= bytes.len()).then_some(Encoded { bytes, len })
    }

    /// The value's own bytes.
    #[inline]
    pub(crate) fn bytes(self) -> &'a [u8] {
        &self.bytes[..self.len]
    }

    #[inline]
    pub(crate) fn len(self) -> usize {
        self.len
    }
}

impl<'a> From<&'a [u8]> for Encoded<'a> {
    /// A value that is all of `bytes`.
    fn from(bytes: &'a [u8]) -> Self {
        Encoded {
            bytes,
            len: bytes.len(),
        }
    }
}

/// Decodes a `T` that must end exactly where `value` does.
#[inline]
pub(crate) fn decode_in<T: DeserializeOwned>(value: Encoded<'_>) -> Result<T, DecodeError> {
    let (decoded, read) = bincode::serde::decode_from_slice(value.bytes, CONFIG)?;
    match value.len.checked_sub(read) {
        Some(0) => Ok(decoded),
        Some(trailing) => Err(DecodeError::Trailing { trailing }),
        // It read on into what follows the value.
        None => Err(DecodeError::Invalid(
            bincode::error::DecodeError::UnexpectedEnd {
                additional: read - value.len,
            },
        )),
    }
}

/// Decodes a `T` that may borrow from `bytes` and must fill them exactly.
pub(crate) fn decode_borrowed<'de, T: serde::Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<T, DecodeError> {
    let (value, read) = bincode::serde::borrow_decode_from_slice(bytes, CONFIG)?;
    match bytes.len() - read {
        0 => Ok(value),
        trailing => Err(DecodeError::Trailing { trailing }),
    }
}

/// Encodes `value` as the newtype variant `index` of an enum, at the end of `out`: the same
/// bytes as serializing the enum value, without going through the enum's `Serialize`.
pub(crate) fn encode_variant_into<T: Serialize + ?Sized>(
    index: u8,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    debug_assert!(index < SINGLE_BYTE_VARIANTS);
    // A variant index below 251 is one byte, itself.
    out.push(index);
    encode_into(value, out)
}

/// If `bytes` encode the newtype variant `index` of an enum, decodes its value (which must fill
/// the rest exactly); `None` if they encode another variant.
pub(crate) fn decode_variant<T: DeserializeOwned>(
    index: u8,
    value: Encoded<'_>,
) -> Option<Result<T, DecodeError>> {
    debug_assert!(index < SINGLE_BYTE_VARIANTS);
    match value.bytes() {
        [first, ..] if *first == index => Some(decode_in(Encoded {
            bytes: &value.bytes[1..],
            len: value.len - 1,
        })),
        _ => None,
    }
}

/// Variant indexes below this take one byte, holding the index (bincode's varint).
const SINGLE_BYTE_VARIANTS: u8 = 251;

/// The variant index an encoded enum value starts with.
pub(crate) fn variant_index(bytes: &[u8]) -> Option<u32> {
    bincode::serde::decode_from_slice::<u32, _>(bytes, CONFIG)
        .ok()
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let value = (5_i64, String::from("cwz"), vec![1_u8, 2, 3], Some(2.5_f64));
        let bytes = encode(&value).unwrap();
        assert_eq!(
            decode::<(i64, String, Vec<u8>, Option<f64>)>(&bytes).unwrap(),
            value
        );
    }

    #[test]
    fn a_value_in_a_buffer_reads_ahead_but_ends_at_its_length() {
        let mut buffer = encode(&300_u64).unwrap();
        let len = buffer.len();
        buffer.extend(encode(&7_u64).unwrap());
        let first = Encoded::in_buffer(&buffer, 0..len).unwrap();
        assert_eq!(decode_in::<u64>(first).unwrap(), 300);
        let second = Encoded::in_buffer(&buffer, len..buffer.len()).unwrap();
        assert_eq!(decode_in::<u64>(second).unwrap(), 7);
        // Cut short, the first value would take its last bytes from the second.
        let short = Encoded::in_buffer(&buffer, 0..len - 1).unwrap();
        assert!(matches!(
            decode_in::<u64>(short),
            Err(DecodeError::Invalid(
                bincode::error::DecodeError::UnexpectedEnd { additional: 1 }
            ))
        ));
        // Too long, it leaves a byte over.
        let long = Encoded::in_buffer(&buffer, 0..len + 1).unwrap();
        assert!(matches!(
            decode_in::<u64>(long),
            Err(DecodeError::Trailing { trailing: 1 })
        ));
        #[expect(clippy::reversed_empty_ranges, reason = "a corrupt pair of offsets")]
        let reversed = 2..1;
        assert!(Encoded::in_buffer(&buffer, reversed).is_none());
        assert!(Encoded::in_buffer(&buffer, 0..buffer.len() + 1).is_none());
        assert!(Encoded::in_buffer(&buffer, buffer.len() + 1..buffer.len() + 1).is_none());
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = encode(&7_u32).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<u32>(&bytes),
            Err(DecodeError::Trailing { trailing: 1 })
        ));
    }

    #[test]
    fn rejects_truncated_bytes() {
        let bytes = encode(&String::from("a string of some length")).unwrap();
        assert!(decode::<String>(&bytes[..bytes.len() - 3]).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        // A deterministic xorshift stream of bytes, decoded as types that allocate by length.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..2_000 {
            let bytes: Vec<u8> = (0..len % 64)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = decode::<Vec<String>>(&bytes);
            let _ = decode::<(u64, Vec<u8>, Option<String>)>(&bytes);
        }
        // A length prefix that claims the maximum: refused, not allocated.
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode::<Vec<u8>>(&huge).is_err());
    }
}
