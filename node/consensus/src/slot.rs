//! One sequence number in the window: the PRE-PREPAREs accepted for it, the
//! node's verdict on each proposed block, and the PREPARE and COMMIT votes
//! that make it prepared and committed-local (§4.2).

use std::collections::BTreeMap;

use stele_types::{CommitCertificate, CommitSignature, Hash, Signature, ValidatorSet};

use crate::message::{PreparedCertificate, ReplicaIndex, Vote};
use crate::quorum;

/// Whether the node has checked a proposed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validation {
    Pending,
    Valid,
    Invalid,
}

/// A PRE-PREPARE accepted for one view of a slot.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub block_hash: Hash,
    pub parent: Hash,
    pub payload: Vec<u8>,
}

/// Everything the replica knows about one sequence number in the window.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Accepted PRE-PREPAREs by view (current view and buffered later ones).
    pre_prepares: BTreeMap<u64, Accepted>,
    /// The node's verdict on each block proposed here.
    validation: BTreeMap<Hash, Validation>,
    /// PREPARE signatures by (view, block, parent), then signer.
    prepares: BTreeMap<(u64, Hash, Hash), BTreeMap<ReplicaIndex, Signature>>,
    /// COMMIT signatures by (view, block), then signer.
    commits: BTreeMap<(u64, Hash), BTreeMap<ReplicaIndex, Signature>>,
    /// The prepared certificate of the highest view this replica holds.
    prepared: Option<PreparedCertificate>,
    /// Committed-local (§4.2): a quorum of COMMITs.
    certificate: Option<CommitCertificate>,
    /// Hash of the block committed here, once it is.
    committed: Option<Hash>,
}

impl Slot {
    // ---- PRE-PREPAREs ----------------------------------------------------

    /// The PRE-PREPARE accepted in `view`.
    pub fn accepted(&self, view: u64) -> Option<&Accepted> {
        self.pre_prepares.get(&view)
    }

    /// Accepts a peer's PRE-PREPARE for `view`; the first one stays (a
    /// second, different one is equivocation, reported by the caller).
    pub fn accept_pre_prepare(&mut self, view: u64, accepted: Accepted) {
        self.pre_prepares.entry(view).or_insert(accepted);
    }

    /// Sets the PRE-PREPARE of `view` to one the replica itself signed or
    /// that a NEW-VIEW's O fixes, replacing any buffered one.
    pub fn set_pre_prepare(&mut self, view: u64, accepted: Accepted) {
        self.pre_prepares.insert(view, accepted);
    }

    /// The payload of `block_hash`, from any PRE-PREPARE or certificate here.
    pub fn payload(&self, block_hash: &Hash) -> Option<&Vec<u8>> {
        self.pre_prepares
            .values()
            .find(|a| a.block_hash == *block_hash)
            .map(|a| &a.payload)
            .or_else(|| {
                self.prepared
                    .as_ref()
                    .filter(|c| c.block_hash == *block_hash)
                    .map(|c| &c.payload)
            })
    }

    /// The parent of `block_hash`, from any PRE-PREPARE or certificate here.
    pub fn parent_of(&self, block_hash: &Hash) -> Option<Hash> {
        self.pre_prepares
            .values()
            .map(|a| (a.block_hash, a.parent))
            .chain(self.prepared.iter().map(|c| (c.block_hash, c.parent)))
            .find(|(h, _)| h == block_hash)
            .map(|(_, p)| p)
    }

    // ---- validation by the node ------------------------------------------

    /// The node's verdict on `block_hash`, if it was asked or told.
    pub fn validation(&self, block_hash: &Hash) -> Option<Validation> {
        self.validation.get(block_hash).copied()
    }

    pub fn set_validation(&mut self, block_hash: Hash, validation: Validation) {
        self.validation.insert(block_hash, validation);
    }

    /// Records the node's answer for a pending validation. Returns false if
    /// none was pending for `block_hash` (a stale or repeated answer).
    pub fn resolve_validation(&mut self, block_hash: &Hash, valid: bool) -> bool {
        match self.validation.get_mut(block_hash) {
            Some(v @ Validation::Pending) => {
                *v = if valid {
                    Validation::Valid
                } else {
                    Validation::Invalid
                };
                true
            }
            _ => false,
        }
    }

    /// Forgets validations still in flight (they died with the node).
    pub fn forget_pending_validations(&mut self) {
        self.validation.retain(|_, v| *v != Validation::Pending);
    }

    // ---- PREPAREs and the prepared predicate -----------------------------

    /// Counts `signer`'s PREPARE for `block_hash` on `parent` in `view`.
    pub fn add_prepare(
        &mut self,
        view: u64,
        block_hash: Hash,
        parent: Hash,
        signer: ReplicaIndex,
        signature: Signature,
    ) {
        self.prepares
            .entry((view, block_hash, parent))
            .or_default()
            .insert(signer, signature);
    }

    /// prepared(m, v, n, i) (§4.2): the matching PREPAREs, sorted by signer,
    /// if they hold a quorum.
    pub fn prepared_votes(
        &self,
        view: u64,
        block_hash: Hash,
        parent: Hash,
        validators: &ValidatorSet,
    ) -> Option<Vec<Vote>> {
        let votes: Vec<Vote> = self
            .prepares
            .get(&(view, block_hash, parent))
            .map(|m| {
                m.iter()
                    .map(|(s, sig)| Vote {
                        signer: *s,
                        signature: *sig,
                    })
                    .collect()
            })
            .unwrap_or_default();
        quorum::is_quorum(validators, votes.iter().map(|v| &v.signer)).then_some(votes)
    }

    /// The prepared certificate of the highest view this replica holds.
    pub fn prepared(&self) -> Option<&PreparedCertificate> {
        self.prepared.as_ref()
    }

    /// Keeps `cert` if it is of a higher view than the one held. Returns
    /// whether it did.
    pub fn keep_prepared(&mut self, cert: PreparedCertificate) -> bool {
        if self.prepared.as_ref().is_none_or(|c| c.view < cert.view) {
            self.prepared = Some(cert);
            true
        } else {
            false
        }
    }

    // ---- COMMITs and the committed-local predicate -----------------------

    /// Counts `signer`'s COMMIT for `block_hash` in `view`.
    pub fn add_commit(
        &mut self,
        view: u64,
        block_hash: Hash,
        signer: ReplicaIndex,
        signature: Signature,
    ) {
        self.commits
            .entry((view, block_hash))
            .or_default()
            .insert(signer, signature);
    }

    /// committed-local(m, v, n, i) (§4.2): the commit certificate for
    /// `block_hash` at height `seq` that the matching COMMITs form, if they
    /// hold a quorum.
    pub fn committed_local(
        &self,
        seq: u64,
        epoch: u64,
        view: u64,
        block_hash: Hash,
        validators: &ValidatorSet,
    ) -> Option<CommitCertificate> {
        let signatures: Vec<CommitSignature> = self
            .commits
            .get(&(view, block_hash))
            .map(|m| {
                m.iter()
                    .map(|(s, sig)| CommitSignature {
                        validator: *s,
                        signature: *sig,
                    })
                    .collect()
            })
            .unwrap_or_default();
        quorum::is_quorum(validators, signatures.iter().map(|s| &s.validator)).then_some(
            CommitCertificate {
                height: seq,
                epoch,
                view,
                block_hash,
                signatures,
            },
        )
    }

    /// The commit certificate formed here, once committed-local.
    pub fn certificate(&self) -> Option<&CommitCertificate> {
        self.certificate.as_ref()
    }

    pub fn set_certificate(&mut self, cert: CommitCertificate) {
        self.certificate = Some(cert);
    }

    // ---- commit and view changes -----------------------------------------

    /// Hash of the block committed here, once it is.
    pub fn committed(&self) -> Option<Hash> {
        self.committed
    }

    pub fn set_committed(&mut self, block_hash: Hash) {
        self.committed = Some(block_hash);
    }

    /// Forgets PRE-PREPAREs and votes of views below `view`; the prepared
    /// certificate, the commit certificate and validations are kept.
    pub fn forget_views_below(&mut self, view: u64) {
        self.pre_prepares = self.pre_prepares.split_off(&view);
        self.prepares.retain(|(v, _, _), _| *v >= view);
        self.commits.retain(|(v, _), _| *v >= view);
    }
}

#[cfg(test)]
mod tests {
    use stele_types::{SecretKey, Validator};

    use super::*;

    /// Four validators with powers 1, 1, 1 and 3: total 6, quorum 5.
    fn validators() -> ValidatorSet {
        let mut keys: Vec<SecretKey> = (1..=4u8)
            .map(|i| SecretKey::from_bytes(&[i; 32]).expect("small scalars are valid keys"))
            .collect();
        keys.sort_by_key(|k| k.address());
        let set = keys
            .iter()
            .zip([1, 1, 1, 3])
            .map(|(k, power)| Validator {
                address: k.address(),
                public_key: k.public_key(),
                power,
            })
            .collect();
        ValidatorSet::new(set).expect("distinct sorted keys form a validator set")
    }

    fn sig(signer: ReplicaIndex) -> Signature {
        Signature([signer as u8; 65])
    }

    #[test]
    fn prepared_needs_a_quorum_of_power_for_the_same_view_block_and_parent() {
        let set = validators();
        let (d, p, other) = (Hash([1; 32]), Hash([2; 32]), Hash([3; 32]));
        let mut slot = Slot::default();
        for signer in [2, 1, 0] {
            slot.add_prepare(4, d, p, signer, sig(signer));
        }
        // Votes for another parent, another block or another view do not count.
        slot.add_prepare(4, d, other, 3, sig(3));
        slot.add_prepare(4, other, p, 3, sig(3));
        slot.add_prepare(5, d, p, 3, sig(3));
        assert!(slot.prepared_votes(4, d, p, &set).is_none(), "power 3 of 6");

        slot.add_prepare(4, d, p, 3, sig(3));
        let votes = slot.prepared_votes(4, d, p, &set).expect("power 6 of 6");
        let signers: Vec<ReplicaIndex> = votes.iter().map(|v| v.signer).collect();
        assert_eq!(signers, [0, 1, 2, 3], "sorted by signer, one vote each");
    }

    #[test]
    fn committed_local_forms_the_commit_certificate_at_a_quorum() {
        let set = validators();
        let d = Hash([1; 32]);
        let mut slot = Slot::default();
        slot.add_commit(2, d, 3, sig(3));
        slot.add_commit(2, d, 3, sig(3)); // a duplicate counts once
        assert!(
            slot.committed_local(7, 0, 2, d, &set).is_none(),
            "power 3 of 6"
        );
        slot.add_commit(2, d, 0, sig(0));
        assert!(
            slot.committed_local(7, 0, 2, d, &set).is_none(),
            "power 4 of 6"
        );
        slot.add_commit(2, d, 1, sig(1));
        assert!(
            slot.committed_local(7, 0, 3, d, &set).is_none(),
            "another view"
        );
        let cert = slot
            .committed_local(7, 0, 2, d, &set)
            .expect("power 5 of 6");
        assert_eq!((cert.height, cert.view, cert.block_hash), (7, 2, d));
        let signers: Vec<ReplicaIndex> = cert.signatures.iter().map(|s| s.validator).collect();
        assert_eq!(signers, [0, 1, 3]);
    }

    #[test]
    fn keeps_the_prepared_certificate_of_the_highest_view() {
        let cert = |view| PreparedCertificate {
            view,
            seq: 1,
            block_hash: Hash([view as u8; 32]),
            parent: Hash([0; 32]),
            payload: Vec::new(),
            votes: Vec::new(),
        };
        let mut slot = Slot::default();
        assert!(slot.keep_prepared(cert(2)));
        assert!(!slot.keep_prepared(cert(1)));
        assert!(!slot.keep_prepared(cert(2)));
        assert!(slot.keep_prepared(cert(3)));
        assert_eq!(slot.prepared().map(|c| c.view), Some(3));
    }

    #[test]
    fn first_pre_prepare_stays_unless_set() {
        let accepted = |b: u8| Accepted {
            block_hash: Hash([b; 32]),
            parent: Hash([0; 32]),
            payload: vec![b],
        };
        let mut slot = Slot::default();
        slot.accept_pre_prepare(1, accepted(1));
        slot.accept_pre_prepare(1, accepted(2));
        assert_eq!(slot.accepted(1).map(|a| a.block_hash), Some(Hash([1; 32])));
        slot.set_pre_prepare(1, accepted(3));
        assert_eq!(slot.accepted(1).map(|a| a.block_hash), Some(Hash([3; 32])));
        assert_eq!(slot.payload(&Hash([3; 32])), Some(&vec![3]));
        slot.forget_views_below(2);
        assert!(slot.accepted(1).is_none());
    }
}
