//! Hex text forms used by the JSON representation: `0x`-prefixed lowercase on
//! output, either case accepted on input.

use thiserror::Error;

/// Why a hex string was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum HexError {
    #[error("missing 0x prefix")]
    MissingPrefix,
    #[error("invalid hex: {0}")]
    Invalid(#[from] hex::FromHexError),
    #[error("expected {expected} bytes, got {got}")]
    WrongLength { expected: usize, got: usize },
}

/// `0x` followed by lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Parses `0x`-prefixed hex of any length.
pub fn decode(s: &str) -> Result<Vec<u8>, HexError> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or(HexError::MissingPrefix)?;
    Ok(hex::decode(digits)?)
}

/// Parses `0x`-prefixed hex of exactly `N` bytes.
pub fn decode_array<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let bytes = decode(s)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| HexError::WrongLength {
        expected: N,
        got: bytes.len(),
    })
}

/// Serde adapter: `Vec<u8>` as a `0x` hex string.
pub mod serde_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        super::decode(&s).map_err(D::Error::custom)
    }
}

/// Serde adapter: `u128` as a decimal string (JSON numbers lose precision).
pub mod serde_u128 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| D::Error::custom("expected a decimal u128 string"))
    }
}

/// Implements `Display`, `FromStr`, `Serialize` and `Deserialize` as `0x` hex
/// for a newtype over `[u8; N]`.
macro_rules! hex_newtype {
    ($t:ident, $n:expr) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$crate::hex::encode(&self.0))
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($t), self)
            }
        }
        impl std::str::FromStr for $t {
            type Err = $crate::hex::HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::hex::decode_array::<$n>(s).map($t)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl $crate::codec::Encode for $t {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
        }
        impl $crate::codec::Decode for $t {
            fn decode_from(
                r: &mut $crate::codec::Reader<'_>,
            ) -> Result<Self, $crate::codec::DecodeError> {
                r.array(stringify!($t)).map($t)
            }
        }
    };
}
pub(crate) use hex_newtype;
