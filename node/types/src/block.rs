//! Blocks, validator sets and commit certificates.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::address::Address;
use crate::codec::{Decode, DecodeError, Encode, Reader, put_seq};
use crate::crypto::{CryptoError, PublicKey, Signature};
use crate::hash::{Hash, domain, keccak256_parts, list_root};
use crate::tx::SignedTransaction;

/// The header every validator agrees on; its hash is the block hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    pub chain_id: u64,
    /// Height of this block; genesis state is height 0, the first block 1.
    pub height: u64,
    /// The epoch the block belongs to (ADR 0010): the validator set of that
    /// epoch certifies it.
    pub epoch: u64,
    /// The PBFT view in which it was proposed.
    pub view: u64,
    pub parent_hash: Hash,
    /// [`list_root`] of the transaction hashes.
    pub tx_root: Hash,
    /// Merkle state root after executing this block.
    pub state_root: Hash,
    /// [`list_root`] of the receipt hashes.
    pub receipts_root: Hash,
    /// Proposer's clock in milliseconds since the Unix epoch, checked by the
    /// other validators to be after the parent's.
    pub timestamp_ms: u64,
    pub proposer: Address,
    /// [`ValidatorSet::hash`] of the set that certifies the next block: this
    /// block's own set inside an epoch, the next epoch's set in an epoch's
    /// last block. Holding the genesis set, anyone can follow the chain of
    /// sets with certified headers alone.
    pub next_validators_hash: Hash,
}

impl BlockHeader {
    /// The block hash.
    pub fn hash(&self) -> Hash {
        keccak256_parts(&[domain::BLOCK_HEADER, &self.to_bytes()])
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.height.encode_to(out);
        self.epoch.encode_to(out);
        self.view.encode_to(out);
        self.parent_hash.encode_to(out);
        self.tx_root.encode_to(out);
        self.state_root.encode_to(out);
        self.receipts_root.encode_to(out);
        self.timestamp_ms.encode_to(out);
        self.proposer.encode_to(out);
        self.next_validators_hash.encode_to(out);
    }
}

impl Decode for BlockHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BlockHeader {
            chain_id: r.u64("chain id")?,
            height: r.u64("height")?,
            epoch: r.u64("epoch")?,
            view: r.u64("view")?,
            parent_hash: Hash::decode_from(r)?,
            tx_root: Hash::decode_from(r)?,
            state_root: Hash::decode_from(r)?,
            receipts_root: Hash::decode_from(r)?,
            timestamp_ms: r.u64("timestamp")?,
            proposer: Address::decode_from(r)?,
            next_validators_hash: Hash::decode_from(r)?,
        })
    }
}

/// A header and the transactions it commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The transaction root these transactions give.
    pub fn compute_tx_root(&self) -> Hash {
        let hashes: Vec<Hash> = self.txs.iter().map(SignedTransaction::hash).collect();
        list_root(&hashes)
    }
}

/// Smallest possible encoded transaction, used to bound a block's count: a
/// validator-set vote with empty lists (tag, epoch, two zero counts). Too
/// large a bound would refuse valid blocks made of such transactions, which
/// anyone can send (they fail when they run, after the block is agreed).
const SIGNED_TX_BYTES_MIN: usize = 8 * 4 + (1 + 8 + 4 + 4) + 65;

impl Encode for Block {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        put_seq(out, &self.txs);
    }
}

impl Decode for Block {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let limits = r.limits();
        Ok(Block {
            header: BlockHeader::decode_from(r)?,
            txs: r.seq(
                limits.block_txs_max,
                SIGNED_TX_BYTES_MIN,
                "block transactions",
                SignedTransaction::decode_from,
            )?,
        })
    }
}

/// One member of the validator set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    pub address: Address,
    pub public_key: PublicKey,
    /// Voting power; every quorum is measured in power, not in heads.
    pub power: u64,
}

impl Encode for Validator {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.address.encode_to(out);
        self.public_key.encode_to(out);
        self.power.encode_to(out);
    }
}

impl Decode for Validator {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Validator {
            address: Address::decode_from(r)?,
            public_key: PublicKey::decode_from(r)?,
            power: r.u64("voting power")?,
        })
    }
}

/// Why a validator set or certificate was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidatorSetError {
    #[error("validator set is empty")]
    Empty,
    #[error("validator set has {0} members, over the maximum")]
    TooMany(usize),
    #[error("validators are not sorted by address without duplicates at index {0}")]
    NotSorted(usize),
    #[error("validator {index} has an invalid public key")]
    InvalidKey { index: usize },
    #[error("validator {index}'s address does not match its public key")]
    AddressMismatch { index: usize },
    #[error("validator {index} has zero voting power")]
    ZeroPower { index: usize },
    #[error("total voting power overflows")]
    PowerOverflow,
}

/// The validators of a chain, sorted by address. The primary of view `v` is
/// the validator at index `v mod n`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Validator>", into = "Vec<Validator>")]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
}

impl TryFrom<Vec<Validator>> for ValidatorSet {
    type Error = ValidatorSetError;
    fn try_from(v: Vec<Validator>) -> Result<Self, Self::Error> {
        ValidatorSet::new(v)
    }
}

impl From<ValidatorSet> for Vec<Validator> {
    fn from(set: ValidatorSet) -> Self {
        set.validators
    }
}

impl ValidatorSet {
    /// Most validators a set may hold.
    pub const VALIDATORS_MAX: usize = 1024;

    /// Checks and wraps a list of validators sorted by address.
    pub fn new(validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > Self::VALIDATORS_MAX {
            return Err(ValidatorSetError::TooMany(validators.len()));
        }
        let mut total_power: u64 = 0;
        for (index, v) in validators.iter().enumerate() {
            if index > 0 && validators[index - 1].address >= v.address {
                return Err(ValidatorSetError::NotSorted(index));
            }
            v.public_key
                .validate()
                .map_err(|_| ValidatorSetError::InvalidKey { index })?;
            if v.public_key.address() != v.address {
                return Err(ValidatorSetError::AddressMismatch { index });
            }
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower { index });
            }
            total_power = total_power
                .checked_add(v.power)
                .ok_or(ValidatorSetError::PowerOverflow)?;
        }
        Ok(ValidatorSet {
            validators,
            total_power,
        })
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }

    /// Index of the validator with `address`.
    pub fn index_of(&self, address: &Address) -> Option<usize> {
        self.validators
            .binary_search_by(|v| v.address.cmp(address))
            .ok()
    }

    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Power needed for a quorum certificate: more than two thirds of the
    /// total, which is 2f + 1 for n = 3f + 1 validators of equal power.
    pub fn quorum_power(&self) -> u64 {
        // u128 avoids overflow of 2 * total.
        (u128::from(self.total_power) * 2 / 3 + 1) as u64
    }

    /// Power that must include at least one honest validator: more than one
    /// third of the total, which is f + 1 for n = 3f + 1 of equal power.
    pub fn weak_quorum_power(&self) -> u64 {
        self.total_power / 3 + 1
    }

    /// The primary of `view`.
    pub fn primary(&self, view: u64) -> &Validator {
        let index = (view % self.validators.len() as u64) as usize;
        &self.validators[index]
    }

    /// Hash identifying this exact set.
    pub fn hash(&self) -> Hash {
        let mut bytes = Vec::new();
        put_seq(&mut bytes, &self.validators);
        keccak256_parts(&[domain::VALIDATOR_SET, &bytes])
    }
}

impl Encode for ValidatorSet {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_seq(out, &self.validators);
    }
}

impl Decode for ValidatorSet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let limits = r.limits();
        let validators = r.seq(
            limits.validators_max,
            61,
            "validators",
            Validator::decode_from,
        )?;
        ValidatorSet::new(validators).map_err(|_| DecodeError::Invalid {
            what: "validator set",
            reason: "not a valid sorted validator set",
        })
    }
}

/// Kinds of signed consensus message; the byte is part of the signed digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ConsensusKind {
    PrePrepare = 1,
    Prepare = 2,
    Commit = 3,
    Checkpoint = 4,
    ViewChange = 5,
    NewView = 6,
}

/// Digest a replica signs for a consensus message: domain tag, message kind,
/// chain id, epoch, view, sequence number and the hash of the message body.
/// The epoch binds every vote to one validator set (ADR 0010): a key that
/// is in two epochs' sets cannot have a vote of one counted in the other.
pub fn consensus_digest(
    kind: ConsensusKind,
    chain_id: u64,
    epoch: u64,
    view: u64,
    seq: u64,
    body: &Hash,
) -> Hash {
    keccak256_parts(&[
        domain::CONSENSUS,
        &[kind as u8],
        &chain_id.to_le_bytes(),
        &epoch.to_le_bytes(),
        &view.to_le_bytes(),
        &seq.to_le_bytes(),
        &body.0,
    ])
}

/// One validator's COMMIT signature inside a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSignature {
    /// Index of the signer in the validator set.
    pub validator: u32,
    pub signature: Signature,
}

impl Encode for CommitSignature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.validator.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for CommitSignature {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CommitSignature {
            validator: r.u32("validator index")?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// Proof that a block is final: COMMIT signatures over its hash from
/// validators holding a quorum of power, in the view it committed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitCertificate {
    /// The block height, which is the PBFT sequence number.
    pub height: u64,
    /// The epoch whose validator set signed it (ADR 0010).
    pub epoch: u64,
    pub view: u64,
    pub block_hash: Hash,
    /// Sorted by validator index, no index twice.
    pub signatures: Vec<CommitSignature>,
}

/// Why a commit certificate does not prove finality.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    #[error("signatures are not sorted by validator index without duplicates at position {0}")]
    NotSorted(usize),
    #[error("signer index {0} is not in the validator set")]
    UnknownValidator(u32),
    #[error("signature of validator {index} is invalid: {source}")]
    BadSignature { index: u32, source: CryptoError },
    #[error("certificate carries {got} voting power, a quorum needs {needed}")]
    NoQuorum { got: u64, needed: u64 },
    #[error("certificate is for block {got}, expected {expected}")]
    WrongBlock { expected: Hash, got: Hash },
    #[error("certificate is for height {got}, the block is at height {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("certificate is from epoch {got}, the block is in epoch {expected}")]
    WrongEpoch { expected: u64, got: u64 },
}

impl CommitCertificate {
    /// The digest each validator signed.
    pub fn digest(&self, chain_id: u64) -> Hash {
        consensus_digest(
            ConsensusKind::Commit,
            chain_id,
            self.epoch,
            self.view,
            self.height,
            &self.block_hash,
        )
    }

    /// Checks every signature against `validators` and that together they
    /// hold a quorum of voting power.
    pub fn verify(&self, chain_id: u64, validators: &ValidatorSet) -> Result<(), CertificateError> {
        let digest = self.digest(chain_id);
        let mut power: u64 = 0;
        for (pos, cs) in self.signatures.iter().enumerate() {
            if pos > 0 && self.signatures[pos - 1].validator >= cs.validator {
                return Err(CertificateError::NotSorted(pos));
            }
            let v = validators
                .get(cs.validator as usize)
                .ok_or(CertificateError::UnknownValidator(cs.validator))?;
            v.public_key
                .verify(&digest, &cs.signature)
                .map_err(|source| CertificateError::BadSignature {
                    index: cs.validator,
                    source,
                })?;
            power = power.saturating_add(v.power);
        }
        let needed = validators.quorum_power();
        if power < needed {
            return Err(CertificateError::NoQuorum { got: power, needed });
        }
        Ok(())
    }

    /// As [`verify`](Self::verify), and checks that it certifies `header`.
    pub fn verify_header(
        &self,
        header: &BlockHeader,
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        let hash = header.hash();
        if hash != self.block_hash {
            return Err(CertificateError::WrongBlock {
                expected: hash,
                got: self.block_hash,
            });
        }
        if header.height != self.height {
            return Err(CertificateError::WrongHeight {
                expected: header.height,
                got: self.height,
            });
        }
        if header.epoch != self.epoch {
            return Err(CertificateError::WrongEpoch {
                expected: header.epoch,
                got: self.epoch,
            });
        }
        self.verify(header.chain_id, validators)
    }
}

impl Encode for CommitCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.height.encode_to(out);
        self.epoch.encode_to(out);
        self.view.encode_to(out);
        self.block_hash.encode_to(out);
        put_seq(out, &self.signatures);
    }
}

impl Decode for CommitCertificate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let limits = r.limits();
        Ok(CommitCertificate {
            height: r.u64("height")?,
            epoch: r.u64("epoch")?,
            view: r.u64("view")?,
            block_hash: Hash::decode_from(r)?,
            signatures: r.seq(
                limits.validators_max,
                69,
                "certificate signatures",
                CommitSignature::decode_from,
            )?,
        })
    }
}
