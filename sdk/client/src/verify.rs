//! Checking a node's storage or account read without trusting the node:
//! the header's commit certificate against a known validator set, then the
//! value's Merkle proof against the header's state root.

use stele_types::proof::{ProofError, SparseMerkleProof, StateKey};
use stele_types::{
    Account, Address, BlockHeader, CertificateError, CommitCertificate, Limits, ValidatorSet,
};
use thiserror::Error;

use crate::api::{AccountProof, StorageProof};

/// Why a storage proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    #[error("header is for chain {got}, expected {expected}")]
    WrongChain { expected: u64, got: u64 },
    #[error("commit certificate does not certify the header: {0}")]
    Certificate(#[from] CertificateError),
    #[error("Merkle proof does not match the certified state root: {0}")]
    Proof(#[from] ProofError),
    /// The chain of validator sets from the genesis does not hold (ADR
    /// 0010): an epoch's last block is not certified by the set known for
    /// it, or does not name the set the node gives for the next epoch.
    #[error("the chain of validator sets breaks at height {height}: {reason}")]
    SetChain { height: u64, reason: String },
    /// The node proved something else than what was asked: another
    /// contract, key or height. The proof may hold; it answers another
    /// question.
    #[error("the node answered for another {what} than the one asked")]
    WrongAnswer { what: &'static str },
    /// The proven bytes are not an account record (`stele_types::Account`).
    /// The proof holds, so the state holds these bytes at an account key,
    /// which an honest chain never writes.
    #[error("the proven account record does not decode: {0}")]
    AccountRecord(stele_types::DecodeError),
}

/// Checks that `proof` answers the question asked: `contract`'s `key`, at
/// `height` if one was asked. [`verify_storage_proof`] then checks that
/// the answer holds; both are needed, as a node can prove another key.
pub fn check_storage_answer(
    proof: &StorageProof,
    contract: &stele_types::Address,
    key: &[u8],
    height: Option<u64>,
) -> Result<(), VerifyError> {
    if proof.contract != *contract {
        return Err(VerifyError::WrongAnswer { what: "contract" });
    }
    if proof.key.0 != key {
        return Err(VerifyError::WrongAnswer { what: "key" });
    }
    if height.is_some_and(|h| h != proof.header.height) {
        return Err(VerifyError::WrongAnswer { what: "height" });
    }
    Ok(())
}

/// Verifies `proof` for chain `chain_id` with validator set `validators`:
/// the certificate carries a quorum of valid signatures over the header,
/// and the value (or its absence) is proven under the header's state root.
pub fn verify_storage_proof(
    proof: &StorageProof,
    chain_id: u64,
    validators: &ValidatorSet,
) -> Result<(), VerifyError> {
    verify_state(
        &StateKey::storage(&proof.contract, proof.key.0.clone()),
        proof.value.as_ref().map(|v| v.0.as_slice()),
        &proof.proof,
        &proof.header,
        &proof.certificate,
        chain_id,
        validators,
    )
}

/// Checks that `proof` answers the question asked: `address`'s account, at
/// `height` if one was asked. [`verify_account_proof`] then checks that the
/// answer holds.
pub fn check_account_answer(
    proof: &AccountProof,
    address: &Address,
    height: Option<u64>,
) -> Result<(), VerifyError> {
    if proof.address != *address {
        return Err(VerifyError::WrongAnswer { what: "address" });
    }
    if height.is_some_and(|h| h != proof.header.height) {
        return Err(VerifyError::WrongAnswer { what: "height" });
    }
    Ok(())
}

/// Verifies `proof` for chain `chain_id` with validator set `validators`
/// as [`verify_storage_proof`] does, and decodes the proven record: `None`
/// when the account is proven absent.
pub fn verify_account_proof(
    proof: &AccountProof,
    chain_id: u64,
    validators: &ValidatorSet,
) -> Result<Option<Account>, VerifyError> {
    let value = proof.value.as_ref().map(|v| v.0.as_slice());
    verify_state(
        &StateKey::account(&proof.address),
        value,
        &proof.proof,
        &proof.header,
        &proof.certificate,
        chain_id,
        validators,
    )?;
    value
        .map(|v| stele_types::decode::<Account>(v, &Limits::default()))
        .transpose()
        .map_err(VerifyError::AccountRecord)
}

/// The header is of chain `chain_id` and certified by `validators`, and
/// `value` (or its absence) is proven at `key` under its state root.
fn verify_state(
    key: &StateKey,
    value: Option<&[u8]>,
    proof: &SparseMerkleProof,
    header: &BlockHeader,
    certificate: &CommitCertificate,
    chain_id: u64,
    validators: &ValidatorSet,
) -> Result<(), VerifyError> {
    if header.chain_id != chain_id {
        return Err(VerifyError::WrongChain {
            expected: chain_id,
            got: header.chain_id,
        });
    }
    certificate.verify_header(header, validators)?;
    proof.verify(&header.state_root, &key.hash(), value)?;
    Ok(())
}
