//! The stateless checks of a transaction (size, bounded decoding, chain id,
//! signature), cheap to run outside any lock, and why a transaction is not
//! admitted.

use stele_types::{
    Address, Amount, CryptoError, DecodeError, Encode, Hash, Limits, SignedTransaction, TxError,
    decode,
};
use thiserror::Error;

use super::MempoolConfig;
use crate::sender_keys::{SenderCheckError, SenderKeys};

/// Why a transaction was not admitted. Each variant is reported to the
/// client as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdmitError {
    #[error("transaction is {bytes} bytes, over the limit of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    #[error("transaction is for chain {got}, this chain is {expected}")]
    WrongChain { expected: u64, got: u64 },
    #[error("bad signature: {0}")]
    BadSignature(CryptoError),
    #[error("transaction is not signed by the given sender {0}")]
    NotSignedBy(Address),
    #[error("transaction {0} is already in the mempool")]
    AlreadyKnown(Hash),
    #[error("nonce too low: the account's next nonce is {expected}, got {got}")]
    NonceTooLow { expected: u64, got: u64 },
    #[error(
        "nonce too high: the account's next nonce is {expected}, at most {max} is queued, got {got}"
    )]
    NonceTooHigh { expected: u64, max: u64, got: u64 },
    #[error(
        "insufficient funds: balance {balance}, the sender's pending transactions with this one may cost {cost}"
    )]
    InsufficientFunds { balance: Amount, cost: String },
    #[error("gas limit {gas_limit} is over the block gas limit {max}")]
    GasLimitOverBlock { gas_limit: u64, max: u64 },
    #[error("gas limit {gas_limit} is below the intrinsic gas {intrinsic} of this transaction")]
    GasBelowIntrinsic { gas_limit: u64, intrinsic: u64 },
    #[error("gas price {got} is under the minimum {min}")]
    GasPriceTooLow { min: u64, got: u64 },
    #[error(
        "replacement underpriced: the pending transaction pays {old}, a replacement must pay at least {required}, got {got}"
    )]
    ReplacementUnderpriced { old: u64, required: u64, got: u64 },
    #[error("the sender already has {max} pending transactions")]
    SenderFull { max: usize },
    #[error(
        "the sender's transactions behind a nonce gap would take {bytes} bytes, over the limit of {max}; send nonce {next_nonce} first"
    )]
    GappedBytesOver {
        next_nonce: u64,
        bytes: usize,
        max: usize,
    },
    #[error(
        "mempool is full and holds nothing cheaper than gas price {got} to make room (a transaction behind a nonce gap may evict only gapped ones)"
    )]
    Full { got: u64 },
}

impl AdmitError {
    /// Whether the submitter could have known better: the transaction
    /// can never be admitted as sent (it does not decode, is for another
    /// chain, is not validly signed, its sender cannot pay, its gas is
    /// out of bounds). The RPC charges these as a flood would cost. A busy
    /// pool or sender, a nonce already used or a duplicate (a wallet's
    /// resend) are not.
    pub fn is_submitters_fault(&self) -> bool {
        match self {
            AdmitError::TooLarge { .. }
            | AdmitError::Malformed(_)
            | AdmitError::WrongChain { .. }
            | AdmitError::BadSignature(_)
            | AdmitError::NotSignedBy(_)
            | AdmitError::InsufficientFunds { .. }
            | AdmitError::GasLimitOverBlock { .. }
            | AdmitError::GasBelowIntrinsic { .. }
            | AdmitError::GasPriceTooLow { .. } => true,
            AdmitError::AlreadyKnown(_)
            | AdmitError::NonceTooLow { .. }
            | AdmitError::NonceTooHigh { .. }
            | AdmitError::ReplacementUnderpriced { .. }
            | AdmitError::SenderFull { .. }
            | AdmitError::GappedBytesOver { .. }
            | AdmitError::Full { .. } => false,
        }
    }
}

impl From<TxError> for AdmitError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::WrongChain { expected, got } => AdmitError::WrongChain { expected, got },
            TxError::Signature(e) => AdmitError::BadSignature(e),
        }
    }
}

/// A transaction whose encoding, chain id and signature have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx {
    pub tx: SignedTransaction,
    pub hash: Hash,
    pub sender: Address,
    /// Length of the canonical encoding.
    pub bytes: usize,
}

impl VerifiedTx {
    /// Checks an already decoded transaction.
    pub fn new(tx: SignedTransaction, chain_id: u64) -> Result<Self, AdmitError> {
        let sender = tx.verify(chain_id)?;
        Ok(VerifiedTx::checked(tx, sender))
    }

    /// A transaction whose signature was checked to be `sender`'s.
    fn checked(tx: SignedTransaction, sender: Address) -> Self {
        let encoded = tx.to_bytes();
        VerifiedTx {
            hash: stele_types::keccak256(&encoded),
            bytes: encoded.len(),
            tx,
            sender,
        }
    }
}

impl From<SenderCheckError> for AdmitError {
    fn from(e: SenderCheckError) -> Self {
        match e {
            SenderCheckError::Signature(e) => AdmitError::BadSignature(e),
            SenderCheckError::NotSignedBy(a) => AdmitError::NotSignedBy(a),
        }
    }
}

/// The stateless checks, cheap to run outside any lock: size, bounded
/// decoding, chain id and signature.
pub fn verify_raw(
    raw: &[u8],
    config: &MempoolConfig,
    limits: &Limits,
) -> Result<VerifiedTx, AdmitError> {
    verify_raw_as(raw, config, limits, None)
}

/// [`verify_raw`] for a transaction whose sender is claimed (by the
/// submitting client or the gossiping validator): `Some((sender, keys))`
/// refuses it unless `sender` signed it ([`SenderKeys::check`], about half
/// the cost of recovering the sender once `sender` has a table).
pub fn verify_raw_as(
    raw: &[u8],
    config: &MempoolConfig,
    limits: &Limits,
    claim: Option<(Address, &SenderKeys)>,
) -> Result<VerifiedTx, AdmitError> {
    match claim {
        Some((sender, keys)) => verify_raw_batch(&[(raw, Some(sender))], config, limits, keys)
            .pop()
            .unwrap_or(Err(AdmitError::BadSignature(CryptoError::BadSignature))),
        None => VerifiedTx::new(decode_checked(raw, config, limits)?, config.chain_id),
    }
}

/// [`verify_raw_as`] for many transactions (a batch of gossip), results in
/// order: the checks of named senders that have tables share their
/// inversions ([`SenderKeys::check_batch`]).
pub fn verify_raw_batch(
    items: &[(&[u8], Option<Address>)],
    config: &MempoolConfig,
    limits: &Limits,
    keys: &SenderKeys,
) -> Vec<Result<VerifiedTx, AdmitError>> {
    let decoded: Vec<Result<SignedTransaction, AdmitError>> = items
        .iter()
        .map(|(raw, _)| decode_checked(raw, config, limits))
        .collect();
    let digests: Vec<Option<Hash>> = decoded
        .iter()
        .zip(items)
        .map(|(tx, (_, claim))| match (tx, claim) {
            (Ok(tx), Some(_)) => Some(tx.tx.signing_digest()),
            _ => None,
        })
        .collect();
    let mut checks = Vec::new();
    let mut at = Vec::new();
    for (i, ((tx, (_, claim)), digest)) in decoded.iter().zip(items).zip(&digests).enumerate() {
        if let (Ok(tx), Some(sender), Some(digest)) = (tx, claim, digest) {
            checks.push((digest, &tx.signature, *sender));
            at.push(i);
        }
    }
    let mut checked: Vec<Option<Result<(), SenderCheckError>>> = vec![None; items.len()];
    for (i, result) in at.into_iter().zip(keys.check_batch(&checks)) {
        checked[i] = Some(result);
    }
    decoded
        .into_iter()
        .zip(items)
        .zip(checked)
        .map(|((tx, (_, claim)), checked)| {
            let tx = tx?;
            match (claim, checked) {
                (Some(sender), Some(result)) => {
                    result?;
                    Ok(VerifiedTx::checked(tx, *sender))
                }
                _ => VerifiedTx::new(tx, config.chain_id),
            }
        })
        .collect()
}

/// The size check, bounded decoding and chain check of a raw transaction.
fn decode_checked(
    raw: &[u8],
    config: &MempoolConfig,
    limits: &Limits,
) -> Result<SignedTransaction, AdmitError> {
    if raw.len() > config.tx_bytes_max {
        return Err(AdmitError::TooLarge {
            bytes: raw.len(),
            max: config.tx_bytes_max,
        });
    }
    let tx: SignedTransaction = decode(raw, limits)?;
    if tx.tx.chain_id != config.chain_id {
        return Err(AdmitError::WrongChain {
            expected: config.chain_id,
            got: tx.tx.chain_id,
        });
    }
    Ok(tx)
}
