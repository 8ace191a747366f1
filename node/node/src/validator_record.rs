//! A validator record (`validator.json`): what each operator of a network
//! being assembled sends whoever builds its genesis. It names the
//! validator's key, voting power and advertised peer address, and is
//! signed by that key, so nobody can put a key they do not hold in a
//! genesis (proof of possession), and a record of one chain is refused by
//! another.

use serde::{Deserialize, Serialize};
use stele_types::codec::Encode;
use stele_types::crypto::CryptoError;
use stele_types::{Address, Hash, PublicKey, SecretKey, Signature, Validator, keccak256_parts};
use thiserror::Error;

use crate::host::HostPort;

/// Domain tag of a record's signed digest: a record signature cannot be
/// replayed as any other Stele signature, nor the other way round.
pub const RECORD_DOMAIN: &[u8] = b"STELE/v1/validator-record\0";

/// The record's file name in a home written by `stele-node init
/// --advertise`.
pub const RECORD_FILE: &str = "validator.json";

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("the public key is not a valid secp256k1 key")]
    InvalidKey,
    #[error("address {got} is not the address of the public key ({expected})")]
    AddressMismatch { expected: Address, got: Address },
    #[error("voting power must be positive")]
    ZeroPower,
    #[error(
        "the signature is not the record key's over its contents (the record was changed after signing, or signed by another key): {0}"
    )]
    BadSignature(CryptoError),
    #[error("the record is for chain {got}, this genesis is for chain {expected}")]
    WrongChain { expected: u64, got: u64 },
}

/// A validator's signed claim to a place in a genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorRecord {
    /// The chain the record is for; a genesis of another chain refuses it.
    pub chain_id: u64,
    pub address: Address,
    pub public_key: PublicKey,
    /// Voting power in the genesis validator set.
    pub power: u64,
    /// Where the other validators reach this one (`HOST:PORT`, HOST an IP
    /// address or a DNS name).
    pub advertise: HostPort,
    /// By `public_key`, over [`ValidatorRecord::signing_digest`].
    pub signature: Signature,
}

impl ValidatorRecord {
    /// A record of `key`'s validator, signed by it.
    pub fn sign(
        key: &SecretKey,
        chain_id: u64,
        power: u64,
        advertise: HostPort,
    ) -> Result<ValidatorRecord, RecordError> {
        if power == 0 {
            return Err(RecordError::ZeroPower);
        }
        let public_key = key.public_key();
        let mut record = ValidatorRecord {
            chain_id,
            address: public_key.address(),
            public_key,
            power,
            advertise,
            signature: Signature([0; 65]),
        };
        record.signature = key.sign_digest(&record.signing_digest());
        Ok(record)
    }

    /// The digest the validator signs: Keccak-256 of [`RECORD_DOMAIN`],
    /// the chain id and the canonical encoding of every field but the
    /// signature.
    pub fn signing_digest(&self) -> Hash {
        let mut body = Vec::new();
        self.encode_body(&mut body);
        keccak256_parts(&[RECORD_DOMAIN, &self.chain_id.to_le_bytes(), &body])
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.address.encode_to(out);
        self.public_key.encode_to(out);
        self.power.encode_to(out);
        self.advertise.encode_to(out);
    }

    /// Checks the key, that the address is the key's, the power, and the
    /// signature.
    pub fn verify(&self) -> Result<(), RecordError> {
        self.public_key
            .validate()
            .map_err(|_| RecordError::InvalidKey)?;
        let expected = self.public_key.address();
        if self.address != expected {
            return Err(RecordError::AddressMismatch {
                expected,
                got: self.address,
            });
        }
        if self.power == 0 {
            return Err(RecordError::ZeroPower);
        }
        self.public_key
            .verify(&self.signing_digest(), &self.signature)
            .map_err(RecordError::BadSignature)
    }

    /// [`verify`](Self::verify), for chain `chain_id`.
    pub fn verify_for(&self, chain_id: u64) -> Result<(), RecordError> {
        if self.chain_id != chain_id {
            return Err(RecordError::WrongChain {
                expected: chain_id,
                got: self.chain_id,
            });
        }
        self.verify()
    }

    /// The validator-set entry of this record.
    pub fn validator(&self) -> Validator {
        Validator {
            address: self.address,
            public_key: self.public_key,
            power: self.power,
        }
    }
}

/// The signed fields, then the signature.
impl Encode for ValidatorRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode_to(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn record() -> ValidatorRecord {
        let advertise = "node-1.example.net:26656".parse().unwrap();
        ValidatorRecord::sign(&key(7), 42, 3, advertise).unwrap()
    }

    #[test]
    fn a_signed_record_verifies_and_survives_json() {
        let r = record();
        r.verify_for(42).unwrap();
        let json = serde_json::to_string_pretty(&r).unwrap();
        let back: ValidatorRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        back.verify().unwrap();
    }

    #[test]
    fn every_tampered_field_is_refused() {
        let r = record();
        let mut tampered = Vec::new();
        let mut t = r.clone();
        t.power = 4;
        tampered.push(t);
        let mut t = r.clone();
        t.advertise = "node-2.example.net:26656".parse().unwrap();
        tampered.push(t);
        let mut t = r.clone();
        t.chain_id = 43;
        tampered.push(t);
        for t in tampered {
            let err = t.verify().unwrap_err();
            assert!(matches!(err, RecordError::BadSignature(_)), "{err}");
        }
        // Someone else's key with a signature by ours: no proof of
        // possession of that key.
        let mut t = r.clone();
        t.public_key = key(8).public_key();
        t.address = t.public_key.address();
        assert!(matches!(t.verify(), Err(RecordError::BadSignature(_))));
        let mut t = r.clone();
        t.address = key(8).address();
        assert!(matches!(
            t.verify(),
            Err(RecordError::AddressMismatch { .. })
        ));
        let mut t = r.clone();
        t.signature.0[10] ^= 1;
        assert!(t.verify().is_err());
        let mut t = r.clone();
        t.power = 0;
        assert_eq!(t.verify(), Err(RecordError::ZeroPower));
        assert_eq!(
            r.verify_for(1),
            Err(RecordError::WrongChain {
                expected: 1,
                got: 42
            })
        );
        let advertise: HostPort = "10.0.0.1:1".parse().unwrap();
        assert_eq!(
            ValidatorRecord::sign(&key(7), 1, 0, advertise),
            Err(RecordError::ZeroPower)
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut json: serde_json::Value = serde_json::to_value(record()).unwrap();
        json["moniker"] = "v1".into();
        let err = serde_json::from_value::<ValidatorRecord>(json).unwrap_err();
        assert!(err.to_string().contains("unknown field `moniker`"), "{err}");
    }

    /// The signed bytes are a format: changing them is a visible,
    /// deliberate change of every record ever written.
    #[test]
    fn the_signed_encoding_is_pinned() {
        let r = ValidatorRecord::sign(&key(7), 42, 3, "10.0.0.1:26656".parse().unwrap()).unwrap();
        let mut body = Vec::new();
        r.encode_body(&mut body);
        let mut expected = 42u64.to_le_bytes().to_vec();
        expected.extend_from_slice(&r.address.0);
        expected.extend_from_slice(&r.public_key.0);
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(&[4, 10, 0, 0, 1, 0x20, 0x68]);
        assert_eq!(body, expected);
        let named = ValidatorRecord::sign(&key(7), 42, 3, "ab.c:1".parse().unwrap()).unwrap();
        let mut body = Vec::new();
        named.encode_body(&mut body);
        assert!(body.ends_with(&[0, 4, 0, 0, 0, b'a', b'b', b'.', b'c', 1, 0]));
        let mut whole = expected.clone();
        whole.extend_from_slice(&r.signature.0);
        assert_eq!(r.to_bytes(), whole);
        assert_eq!(
            r.signing_digest(),
            keccak256_parts(&[RECORD_DOMAIN, &42u64.to_le_bytes(), &expected])
        );
    }
}
