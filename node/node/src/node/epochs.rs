//! The epoch the node is in (ADR 0010), as its committed state says: the
//! epoch number and first height, the validator set that certifies the next
//! block, and the change decided so far. The follower reads it after every
//! commit and publishes it in [`Shared`](super::Shared) for the transport,
//! the pre-check and the RPC server.

use std::sync::Arc;

use stele_consensus::{Config as ReplicaConfig, Replica};
use stele_exec::governance;
use stele_exec::{EpochInfo, PendingChange, SharedState, StateBase};
use stele_types::{Address, Hash, SecretKey, Validator, ValidatorSet};

use super::NodeError;
use crate::precheck::{PrecheckedVerifier, VerifiedSignatures};
use crate::store::BlockReader;

/// The epoch of the block after some committed tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochView {
    pub info: EpochInfo,
    /// The set that certifies the next block.
    pub validators: ValidatorSet,
    /// The change decided in this epoch, with the epoch's last height.
    pub pending: Option<PendingChange>,
}

impl EpochView {
    /// The epoch of the block after `base`.
    pub(super) fn on(base: &StateBase) -> Result<EpochView, NodeError> {
        let (info, validators, pending) =
            governance::epoch_on(base).map_err(|e| NodeError::Epoch(e.to_string()))?;
        Ok(EpochView {
            info,
            validators,
            pending,
        })
    }

    /// The epoch's number.
    pub fn epoch(&self) -> u64 {
        self.info.epoch
    }

    /// The epoch's last height, once a change is decided.
    pub fn last_height(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.last_height)
    }

    /// Whether `address` is a validator of this epoch or of the next one
    /// (decided): the transport treats both as validators, so the next set
    /// is connected when its epoch starts.
    pub fn is_member(&self, address: &Address) -> bool {
        self.validators.index_of(address).is_some()
            || self
                .pending
                .as_ref()
                .is_some_and(|p| p.validators.index_of(address).is_some())
    }
}

impl EpochView {
    /// The keys the transport treats as validators: this epoch's set and
    /// the next one's once decided, so the next set is connected as
    /// validators when its epoch starts.
    pub fn transport_set(&self) -> ValidatorSet {
        let Some(next) = &self.pending else {
            return self.validators.clone();
        };
        let mut all: Vec<Validator> = self
            .validators
            .validators()
            .iter()
            .chain(next.validators.validators())
            .cloned()
            .collect();
        all.sort_by_key(|v| v.address);
        all.dedup_by_key(|v| v.address);
        // Sorted distinct valid keys of two valid sets: always a set.
        ValidatorSet::new(all).unwrap_or_else(|_| self.validators.clone())
    }
}

/// What a validator builds each epoch's replica from: the chain's replica
/// parameters, its key, and where the pre-check leaves verified
/// signatures for the replica.
pub(super) struct EpochReplicas {
    pub(super) template: ReplicaConfig,
    /// Whether the replicas' view timeouts follow the chain's protocol
    /// (this node's config sets none of its own).
    pub(super) chain_timeouts: bool,
    pub(super) key: SecretKey,
    pub(super) verified: Arc<VerifiedSignatures>,
}

impl EpochReplicas {
    /// The replica of `epoch`, on the block before its first height
    /// (`base_hash`); `None` if this validator is not in its set.
    pub(super) fn build(
        &self,
        epoch: &EpochView,
        base_hash: Hash,
    ) -> Result<Option<Replica>, NodeError> {
        if epoch.validators.index_of(&self.key.address()).is_none() {
            return Ok(None);
        }
        let base_seq = epoch.info.start_height.saturating_sub(1);
        let cfg =
            self.template
                .for_epoch(epoch.epoch(), epoch.validators.clone(), base_seq, base_hash);
        let verifier = Box::new(PrecheckedVerifier::new(self.verified.clone()));
        Ok(Some(Replica::new(cfg, self.key.clone(), verifier)?))
    }
}

/// The hash of the block at `height` (the genesis hash at 0).
pub(super) fn block_hash_at(
    state: &SharedState,
    height: u64,
    genesis_hash: Hash,
) -> Result<Hash, NodeError> {
    if height == 0 {
        return Ok(genesis_hash);
    }
    let state = state.read().map_err(|_| NodeError::Poisoned)?;
    BlockReader::new(&state)
        .block(height)?
        .map(|b| b.hash())
        .ok_or_else(|| NodeError::Epoch(format!("block {height}, an epoch's base, is not stored")))
}
