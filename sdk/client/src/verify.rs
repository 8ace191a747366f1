//! Checking a node's storage read without trusting the node: the header's
//! commit certificate against a known validator set, then the value's
//! Merkle proof against the header's state root.

use stele_types::proof::{ProofError, StateKey};
use stele_types::{CertificateError, ValidatorSet};
use thiserror::Error;

use crate::api::StorageProof;

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
    if proof.header.chain_id != chain_id {
        return Err(VerifyError::WrongChain {
            expected: chain_id,
            got: proof.header.chain_id,
        });
    }
    proof.certificate.verify_header(&proof.header, validators)?;
    let key = StateKey::storage(&proof.contract, proof.key.0.clone()).hash();
    proof.proof.verify(
        &proof.header.state_root,
        &key,
        proof.value.as_ref().map(|v| v.0.as_slice()),
    )?;
    Ok(())
}
