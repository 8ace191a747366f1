//! 20-byte account and contract addresses, derived and written Ethereum-style.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::hash::{domain, keccak256, keccak256_parts};

/// An account or contract address: the last 20 bytes of the Keccak-256 of the
/// uncompressed secp256k1 public key (without its 0x04 prefix), or, for a
/// contract, of its creator and creation nonce.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 20]);

/// Why an address string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("address must be 0x followed by 40 hex digits")]
    Format,
    #[error("address checksum mismatch (EIP-55): expected {expected}")]
    Checksum { expected: String },
}

impl Address {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Address of the account whose uncompressed SEC1 public key (65 bytes,
    /// starting 0x04) is `uncompressed`.
    pub fn from_uncompressed_pubkey(uncompressed: &[u8; 65]) -> Address {
        let digest = keccak256(&uncompressed[1..]);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest.0[12..]);
        Address(out)
    }

    /// Address of the contract created by `creator` with its `nonce`.
    pub fn contract(creator: &Address, nonce: u64) -> Address {
        let digest = keccak256_parts(&[domain::CONTRACT_ADDRESS, &creator.0, &nonce.to_le_bytes()]);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest.0[12..]);
        Address(out)
    }

    /// EIP-55 mixed-case checksummed hex with `0x` prefix.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let digest = keccak256(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (digest.0[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Parses `0x` + 40 hex digits. All-lowercase or all-uppercase input is
    /// taken as unchecksummed; mixed case must match the EIP-55 checksum.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("0x").ok_or(AddressError::Format)?;
        if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AddressError::Format);
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| AddressError::Format)?;
        let address = Address(bytes);
        let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            let expected = address.to_checksum();
            if expected != s {
                return Err(AddressError::Checksum { expected });
            }
        }
        Ok(address)
    }
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_checksum())
    }
}

impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Encode for Address {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for Address {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array("address").map(Address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_vectors_round_trip() {
        // Vectors from the EIP-55 specification.
        for s in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_checksum(), s);
        }
    }

    #[test]
    fn wrong_checksum_is_rejected() {
        let err = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
            .parse::<Address>()
            .unwrap_err();
        assert!(matches!(err, AddressError::Checksum { .. }));
    }

    #[test]
    fn lowercase_is_accepted_and_bad_format_rejected() {
        assert!(
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
                .parse::<Address>()
                .is_ok()
        );
        for bad in [
            "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
            "0x5aae",
            "0xzzaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        ] {
            assert_eq!(bad.parse::<Address>(), Err(AddressError::Format), "{bad}");
        }
    }
}
