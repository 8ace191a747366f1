//! The 20-byte account/contract address.

use borsh::{BorshDeserialize, BorshSerialize};

/// An account or contract address: 20 raw bytes (Borsh: the bytes, no
/// length prefix; JSON: `0x` hex).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The all-zero address (never a real signer or contract).
    pub const ZERO: Address = Address([0; 20]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Whether this is [`Address::ZERO`].
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 20]
    }
}

impl core::fmt::Display for Address {
    /// `0x` and 40 lowercase hex digits (for [`crate::log!`]; the CLI and
    /// clients show the EIP-55 mixed-case form).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl From<[u8; 20]> for Address {
    fn from(b: [u8; 20]) -> Self {
        Address(b)
    }
}
