//! Stele's canonical binary codec: one encoding for everything that is hashed
//! or signed (see `docs/adr/0001-canonical-codec.md`).
//!
//! Rules: integers are fixed-width little-endian; lengths and counts are `u32`
//! little-endian; `bool` is one byte, 0 or 1; enum tags and `Option` tags are
//! one byte. Every encoding is therefore unique, and decoding rejects anything
//! else: out-of-range tags, non-0/1 booleans, lengths over their configured
//! maximum, and trailing bytes.

use thiserror::Error;

/// Why bytes were not a valid canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("input is {len} bytes, over the maximum of {max}")]
    InputTooLong { len: usize, max: usize },
    #[error("unexpected end of input reading {what}: needed {needed} bytes, {remaining} left")]
    UnexpectedEnd {
        what: &'static str,
        needed: usize,
        remaining: usize,
    },
    #[error("{what} has length {len}, over the maximum of {max}")]
    LengthOverLimit {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("invalid tag {tag} for {what}")]
    InvalidTag { what: &'static str, tag: u8 },
    #[error("invalid boolean byte {0}")]
    InvalidBool(u8),
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("invalid {what}: {reason}")]
    Invalid {
        what: &'static str,
        reason: &'static str,
    },
}

/// Maximum sizes enforced while decoding. Decoding never allocates more than
/// these permit, whatever the length prefixes in the input claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole input accepted by [`decode`].
    pub input_bytes_max: usize,
    /// Largest contract code in a deploy transaction.
    pub code_bytes_max: usize,
    /// Largest call or constructor argument blob.
    pub args_bytes_max: usize,
    /// Longest method name.
    pub method_bytes_max: usize,
    /// Most transactions in one block.
    pub block_txs_max: usize,
    /// Most topics in one event.
    pub event_topics_max: usize,
    /// Largest event data blob.
    pub event_data_bytes_max: usize,
    /// Most events in one receipt.
    pub receipt_events_max: usize,
    /// Largest return data or error payload in a receipt.
    pub output_bytes_max: usize,
    /// Most validators in a validator set or signatures in a certificate.
    pub validators_max: usize,
}

impl Limits {
    /// Defaults sized for one transaction or one block on the wire.
    pub const DEFAULT: Limits = Limits {
        input_bytes_max: 64 << 20,
        code_bytes_max: 1 << 20,
        args_bytes_max: 128 << 10,
        method_bytes_max: 64,
        block_txs_max: 20_000,
        event_topics_max: 4,
        event_data_bytes_max: 16 << 10,
        receipt_events_max: 1024,
        output_bytes_max: 128 << 10,
        validators_max: 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A value with one canonical byte encoding.
pub trait Encode {
    /// Appends the canonical encoding of `self` to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// Returns the canonical encoding of `self`.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from the front of `r`.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Decodes exactly one `T` from `bytes`, rejecting oversized input and
/// trailing bytes.
pub fn decode<T: Decode>(bytes: &[u8], limits: &Limits) -> Result<T, DecodeError> {
    if bytes.len() > limits.input_bytes_max {
        return Err(DecodeError::InputTooLong {
            len: bytes.len(),
            max: limits.input_bytes_max,
        });
    }
    let mut r = Reader::new(bytes, limits);
    let value = T::decode_from(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// A cursor over untrusted input that checks every length before using it.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    limits: &'a Limits,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` under `limits`.
    pub fn new(buf: &'a [u8], limits: &'a Limits) -> Self {
        Reader { buf, limits }
    }

    /// The limits this reader enforces.
    pub fn limits(&self) -> &'a Limits {
        self.limits
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails if any bytes are left.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes exactly `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub fn u128(&mut self, what: &'static str) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array(what)?))
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8("bool")? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::InvalidBool(b)),
        }
    }

    /// Reads a `u32` length prefix and checks it against `max` and against the
    /// bytes left (each element takes at least `elem_bytes_min` bytes), so no
    /// caller ever allocates from an unchecked length.
    pub fn len(
        &mut self,
        max: usize,
        elem_bytes_min: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::LengthOverLimit { what, len, max });
        }
        let needed = len.saturating_mul(elem_bytes_min.max(1));
        if needed > self.buf.len() {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed,
                remaining: self.buf.len(),
            });
        }
        Ok(len)
    }

    /// Reads a length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = self.len(max, 1, what)?;
        Ok(self.take(len, what)?.to_vec())
    }

    /// Reads a length-prefixed sequence of at most `max` elements, each at
    /// least `elem_bytes_min` bytes long when encoded.
    pub fn seq<T>(
        &mut self,
        max: usize,
        elem_bytes_min: usize,
        what: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let len = self.len(max, elem_bytes_min, what)?;
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Reads an `Option` tag (0 = none, 1 = some) and the value if present.
    pub fn option<T>(
        &mut self,
        what: &'static str,
        item: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => item(self).map(Some),
            tag => Err(DecodeError::InvalidTag { what, tag }),
        }
    }
}

/// Appends a `u32` length prefix. Panics if `len` does not fit, which the
/// limits on every decoded and constructed value rule out.
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("invariant: encoded lengths fit in u32");
    out.extend_from_slice(&len.to_le_bytes());
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends a length-prefixed sequence.
pub fn put_seq<T: Encode>(out: &mut Vec<u8>, items: &[T]) {
    put_len(out, items.len());
    for item in items {
        item.encode_to(out);
    }
}

/// Appends an `Option` tag and the value if present.
pub fn put_option<T: Encode>(out: &mut Vec<u8>, value: &Option<T>) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            v.encode_to(out);
        }
    }
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
        impl Decode for $t {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(r.array(stringify!($t))?))
            }
        }
    )*};
}
int_codec!(u8, u16, u32, u64, u128);

impl Encode for bool {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Decode for bool {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.bool()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_trailing_bytes() {
        let limits = Limits::default();
        assert_eq!(decode::<u32>(&[1, 0, 0, 0], &limits), Ok(1));
        assert_eq!(
            decode::<u32>(&[1, 0, 0, 0, 9], &limits),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn rejects_non_canonical_bool() {
        assert_eq!(
            decode::<bool>(&[2], &Limits::default()),
            Err(DecodeError::InvalidBool(2))
        );
    }

    #[test]
    fn length_prefix_over_remaining_input_is_rejected_before_allocation() {
        let limits = Limits::default();
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0x00, 1, 2], &limits);
        let err = r.bytes(usize::MAX, "blob").unwrap_err();
        assert!(matches!(err, DecodeError::UnexpectedEnd { .. }), "{err}");
    }

    #[test]
    fn length_prefix_over_limit_is_rejected() {
        let limits = Limits::default();
        let mut r = Reader::new(&[3, 0, 0, 0, 1, 2, 3], &limits);
        assert_eq!(
            r.bytes(2, "blob"),
            Err(DecodeError::LengthOverLimit {
                what: "blob",
                len: 3,
                max: 2
            })
        );
    }

    #[test]
    fn oversized_input_is_rejected() {
        let limits = Limits {
            input_bytes_max: 2,
            ..Limits::default()
        };
        assert_eq!(
            decode::<u32>(&[0; 4], &limits),
            Err(DecodeError::InputTooLong { len: 4, max: 2 })
        );
    }
}
