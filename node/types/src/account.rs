//! The account record stored under [`StateKey::account`]: what a node
//! executes against and what an account proof (`get_account_proof`)
//! proves, so the executor and every client decode the same bytes.
//!
//! [`StateKey::account`]: crate::proof::StateKey::account

use crate::codec::{Decode, DecodeError, Encode, Reader, put_option};
use crate::{Amount, Hash};

/// An account: externally owned (no code) or a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Account {
    /// Transactions sent (externally owned) or contracts created (contract).
    pub nonce: u64,
    pub balance: Amount,
    /// Keccak-256 of the contract's code; `None` for a plain account.
    pub code_hash: Option<Hash>,
}

impl Encode for Account {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.nonce.encode_to(out);
        self.balance.encode_to(out);
        put_option(out, &self.code_hash);
    }
}

impl Decode for Account {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Account {
            nonce: r.u64("nonce")?,
            balance: r.u128("balance")?,
            code_hash: r.option("code hash", Hash::decode_from)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, decode};

    #[test]
    fn account_encoding_is_pinned() {
        let a = Account {
            nonce: 3,
            balance: 1_000,
            code_hash: Some(Hash([0xab; 32])),
        };
        let bytes = a.to_bytes();
        assert_eq!(
            crate::hex::encode(&bytes),
            "0x0300000000000000e803000000000000000000000000000001abababababababababababababababababababababababababababababababab"
        );
        assert_eq!(decode::<Account>(&bytes, &Limits::default()), Ok(a));
        // No trailing bytes, no option tag other than 0 and 1.
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<Account>(&long, &Limits::default()).is_err());
        let mut tag = bytes;
        tag[24] = 2;
        assert!(decode::<Account>(&tag, &Limits::default()).is_err());
    }
}
