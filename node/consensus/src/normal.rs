//! Normal-case operation (Castro & Liskov §4.2), one function per step:
//!
//! 1. the primary asks the node for a block and multicasts PRE-PREPARE
//!    (`request_proposal`, `on_proposal_ready`);
//! 2. a backup accepts the PRE-PREPARE (`on_pre_prepare`) and, once the
//!    node has executed the block, counts it as valid (`validate_pre_prepare`);
//! 3. it multicasts PREPARE (`send_prepare`) and collects the others'
//!    (`on_prepare`);
//! 4. prepared: it persists the prepared certificate and multicasts COMMIT
//!    (`send_commit`), and collects the others' (`on_commit`);
//! 5. committed-local: a quorum of COMMITs is the commit certificate
//!    (`commit_local`);
//! 6. blocks commit strictly in height order (`commit_in_order`).
//!
//! `advance` runs steps 2 to 6 on every slot after each input, then step 1.
//! Where a chain of blocks needs more than the paper's independent requests
//! (parents, execution), ADR 0002 says why.

use stele_types::{CommitCertificate, Hash};

use crate::io::{Action, Record};
use crate::message::{Commit, Message, PrePrepare, Prepare, PreparedCertificate, SignedMessage};
use crate::replica::Replica;
use crate::slot::{Accepted, Validation};

impl Replica {
    // ---- step 1: the primary proposes -----------------------------------

    /// §4.2: the primary assigns the next sequence number, asking the node
    /// for a block, while the window and the pipeline have room.
    fn request_proposal(&mut self) {
        if !self.active
            || !self.is_primary(self.view)
            || self.proposal_pending.is_some()
            || !self.may_order(self.view)
        {
            return;
        }
        if self.committed_seq < self.stable.seq {
            return; // still catching up by state transfer
        }
        let seq = self.next_seq.max(self.committed_seq + 1);
        if seq > self.high_watermark()
            || seq - 1 - self.committed_seq >= self.cfg.pipeline_blocks_max
        {
            return;
        }
        let parent = if seq - 1 == self.committed_seq {
            self.committed_hash
        } else {
            match self
                .slots
                .get(&(seq - 1))
                .and_then(|s| s.accepted(self.view))
            {
                Some(a) => a.block_hash,
                None => return,
            }
        };
        self.next_seq = seq;
        self.proposal_pending = Some((self.view, seq, parent));
        self.out.push(Action::RequestProposal {
            view: self.view,
            seq,
            parent,
        });
    }

    /// §4.2: the primary multicasts PRE-PREPARE for the block the node
    /// built (persisted first), and accepts it itself.
    pub(crate) fn on_proposal_ready(
        &mut self,
        view: u64,
        seq: u64,
        block_hash: Hash,
        payload: Vec<u8>,
    ) {
        let Some((pview, pseq, parent)) = self.proposal_pending else {
            return;
        };
        if (pview, pseq) != (view, seq) {
            return;
        }
        self.proposal_pending = None;
        if view != self.view || !self.active || payload.len() > self.cfg.limits.payload_bytes_max {
            return;
        }
        let pp = PrePrepare {
            view,
            seq,
            block_hash,
            parent,
            payload: payload.clone(),
        };
        if self
            .sign_persist_broadcast(Message::PrePrepare(pp))
            .is_none()
        {
            return;
        }
        let slot = self.slot_mut(seq);
        slot.set_pre_prepare(
            view,
            Accepted {
                block_hash,
                parent,
                payload,
            },
        );
        // The node built and executed this block itself.
        slot.set_validation(block_hash, Validation::Valid);
        self.next_seq = seq + 1;
        self.advance();
    }

    // ---- receiving (steps 2 to 4) ---------------------------------------

    /// §4.2: a backup accepts a PRE-PREPARE from the primary of its view,
    /// in the window, and no other for the same view and sequence.
    pub(crate) fn on_pre_prepare(&mut self, m: SignedMessage, pp: PrePrepare) {
        if m.signer != self.primary_index(pp.view) {
            self.counters.dropped_invalid += 1;
            return;
        }
        if !self.view_acceptable(pp.view)
            || !self.seq_acceptable(pp.seq)
            || !self.first_of_its_kind(&m)
        {
            return;
        }
        self.slot_mut(pp.seq).accept_pre_prepare(
            pp.view,
            Accepted {
                block_hash: pp.block_hash,
                parent: pp.parent,
                payload: pp.payload,
            },
        );
        // The primary delivered the next block: from here its commit needs
        // this replica's execution of it and two rounds, so it gets a whole
        // timeout of its own, as the time up to here (the primary's
        // execution) had. Without this a block whose execution takes more
        // than half the timeout (what the block gas limit allows is ~1.5 s
        // against a 2 s timer) would cost a view change although every
        // replica works. Once per sequence, so a faulty primary delays a
        // view change by one timeout at most.
        if self.active
            && pp.view == self.view
            && pp.seq == self.committed_seq + 1
            && pp.seq > self.timer_extended_for
        {
            self.timer_extended_for = pp.seq;
            self.arm_timer();
        }
        self.advance();
    }

    /// The node's verdict on a block asked for by `ValidateBlock` (step 2).
    pub(crate) fn on_validated(&mut self, seq: u64, block_hash: Hash, valid: bool) {
        let Some(slot) = self.slots.get_mut(&seq) else {
            return;
        };
        if slot.resolve_validation(&block_hash, valid) {
            self.advance();
        }
    }

    /// §4.2: collect PREPAREs for the prepared predicate.
    pub(crate) fn on_prepare(&mut self, m: SignedMessage, p: Prepare) {
        if !self.view_acceptable(p.view)
            || !self.seq_acceptable(p.seq)
            || !self.first_of_its_kind(&m)
        {
            return;
        }
        self.slot_mut(p.seq)
            .add_prepare(p.view, p.block_hash, p.parent, m.signer, m.signature);
        self.advance();
    }

    /// §4.2: collect COMMITs for the committed-local predicate.
    pub(crate) fn on_commit(&mut self, m: SignedMessage, c: Commit) {
        if !self.view_acceptable(c.view)
            || !self.seq_acceptable(c.seq)
            || !self.first_of_its_kind(&m)
        {
            return;
        }
        self.slot_mut(c.seq)
            .add_commit(c.view, c.block_hash, m.signer, m.signature);
        self.advance();
    }

    // ---- the loop --------------------------------------------------------

    /// Drives every slot as far as it can go in the current view, commits in
    /// order, and asks for the next proposal when primary.
    pub(crate) fn advance(&mut self) {
        if self.active {
            let seqs: Vec<u64> = self.slots.keys().copied().collect();
            for seq in seqs {
                self.advance_slot(seq);
            }
        }
        self.commit_in_order();
        self.request_proposal();
    }

    /// Steps 2 to 5 for the PRE-PREPARE accepted at `seq` in the current
    /// view; each step runs once the one before it holds, and every step is
    /// idempotent (this runs for every slot on every input).
    fn advance_slot(&mut self, seq: u64) {
        // Only the hashes: the payload (up to a megabyte) is copied only
        // where it leaves.
        let Some((block, parent)) = self
            .slots
            .get(&seq)
            .and_then(|s| s.accepted(self.view))
            .map(|a| (a.block_hash, a.parent))
        else {
            return;
        };
        if self.validate_pre_prepare(seq, block, parent)
            && self.send_prepare(seq, block, parent)
            && self.send_commit(seq, block, parent)
        {
            self.commit_local(seq, block);
        }
    }

    // ---- steps 2 to 6 ----------------------------------------------------

    /// §4.2, accepting the pre-prepare, strengthened with execution (ADR
    /// 0002): the node validates `block` once its parent is ready; a block
    /// at or below the committed height is judged against the committed
    /// chain. True once the block is valid.
    fn validate_pre_prepare(&mut self, seq: u64, block: Hash, parent: Hash) -> bool {
        let validation = self.slots.get(&seq).and_then(|s| s.validation(&block));
        if validation.is_none() {
            if let Some(h) = self.committed_hash_at(seq) {
                let v = if h == block {
                    Validation::Valid
                } else {
                    Validation::Invalid
                };
                self.slot_mut(seq).set_validation(block, v);
            } else if self.parent_ready(seq, &parent) {
                self.slot_mut(seq)
                    .set_validation(block, Validation::Pending);
                self.out.push(Action::ValidateBlock {
                    seq,
                    block_hash: block,
                    parent,
                    payload: self.accepted_payload(seq, self.view),
                });
            }
        }
        self.slots.get(&seq).and_then(|s| s.validation(&block)) == Some(Validation::Valid)
    }

    /// §4.2: having accepted the PRE-PREPARE, multicast PREPARE (persisted
    /// first). The primary prepares too, and only on a prepared parent (see
    /// `parent_prepared`): a block's certificate then implies its whole
    /// chain is prepared at f + 1 honest replicas, so every later NEW-VIEW
    /// re-proposes that chain intact (ADR 0002). True once this replica's
    /// PREPARE for (view, `seq`) is for `block` on `parent`.
    fn send_prepare(&mut self, seq: u64, block: Hash, parent: Hash) -> bool {
        if !self.parent_prepared(seq, &parent) {
            return false;
        }
        let view = self.view;
        let prepare = Message::Prepare(Prepare {
            view,
            seq,
            block_hash: block,
            parent,
        });
        if self.signed_body(&prepare).is_none()
            && let Some(m) = self.sign_persist_broadcast(prepare.clone())
        {
            let me = self.me;
            self.slot_mut(seq)
                .add_prepare(view, block, parent, me, m.signature);
        }
        self.signed_body(&prepare) == Some(prepare.body_hash())
    }

    /// §4.2: once prepared(m, v, n, i) holds (a quorum of matching
    /// PREPAREs), keep and persist the prepared certificate, then multicast
    /// COMMIT (persisted too): a view change must find every certificate
    /// that may have committed. True once this replica's COMMIT for
    /// (view, `seq`) is for `block`.
    fn send_commit(&mut self, seq: u64, block: Hash, parent: Hash) -> bool {
        let view = self.view;
        let commit = Message::Commit(Commit {
            view,
            seq,
            block_hash: block,
        });
        if self.signed_body(&commit).is_none() {
            let Some(votes) = self
                .slots
                .get(&seq)
                .and_then(|s| s.prepared_votes(view, block, parent, &self.cfg.validators))
            else {
                return false;
            };
            let cert = PreparedCertificate {
                view,
                seq,
                block_hash: block,
                parent,
                payload: self.accepted_payload(seq, view),
                votes,
            };
            if self.slot_mut(seq).keep_prepared(cert.clone()) && !self.replaying() {
                self.out.push(Action::Persist(Record::Prepared(cert)));
            }
            if let Some(m) = self.sign_persist_broadcast(commit.clone()) {
                let me = self.me;
                self.slot_mut(seq).add_commit(view, block, me, m.signature);
            }
        }
        self.signed_body(&commit) == Some(commit.body_hash())
    }

    /// §4.2: committed-local(m, v, n, i), a quorum of matching COMMITs, is
    /// the block's commit certificate (no re-signing, ADR 0002).
    fn commit_local(&mut self, seq: u64, block: Hash) {
        // `slots` and `cfg` borrowed apart (not through `slot_mut`).
        let slot = self.slots.entry(seq).or_default();
        if slot.certificate().is_some() {
            return;
        }
        let (epoch, view) = (self.cfg.epoch, self.view);
        if let Some(cert) = slot.committed_local(seq, epoch, view, block, &self.cfg.validators) {
            slot.set_certificate(cert);
        }
    }

    /// §4.2: executes committed-local blocks strictly in sequence order.
    fn commit_in_order(&mut self) {
        loop {
            let seq = self.committed_seq + 1;
            let Some(slot) = self.slots.get(&seq) else {
                return;
            };
            let Some(cert) = slot.certificate().cloned() else {
                return;
            };
            let Some(payload) = slot.payload(&cert.block_hash).cloned() else {
                return;
            };
            let parent = slot.parent_of(&cert.block_hash);
            assert!(
                parent.is_none_or(|p| p == self.committed_hash),
                "invariant: a committed block extends the committed chain (seq {seq})"
            );
            self.apply_commit(cert, payload);
        }
    }

    /// Emits the commit of the next height (here or from state transfer) and
    /// takes a checkpoint every K (§4.3).
    pub(crate) fn apply_commit(&mut self, cert: CommitCertificate, payload: Vec<u8>) {
        let seq = cert.height;
        assert_eq!(
            seq,
            self.committed_seq + 1,
            "invariant: blocks commit strictly in height order"
        );
        let block_hash = cert.block_hash;
        self.committed_seq = seq;
        self.committed_hash = block_hash;
        if self.in_window(seq) {
            self.slot_mut(seq).set_committed(block_hash);
        }
        self.out.push(Action::Commit {
            seq,
            block_hash,
            payload,
            certificate: cert,
        });
        // Progress: the view works, so the backoff starts over.
        if self.active {
            self.attempts = 0;
            self.arm_timer();
        }
        if seq.is_multiple_of(self.cfg.checkpoint_interval_seqs) {
            self.send_checkpoint(seq, block_hash);
        }
    }

    // ---- chain rules (ADR 0002) ------------------------------------------

    /// Whether block `seq` with `parent` can be executed now: its parent is
    /// committed or is the accepted and validated (or validating) proposal at
    /// `seq - 1` in this view. Blocks at or below the committed height are
    /// checked by the node against its store.
    fn parent_ready(&self, seq: u64, parent: &Hash) -> bool {
        if seq <= self.committed_seq {
            return true;
        }
        let below = seq - 1;
        if below == self.committed_seq {
            return self.committed_hash == *parent;
        }
        let Some(slot) = self.slots.get(&below) else {
            return false;
        };
        match slot.accepted(self.view) {
            Some(a) if a.block_hash == *parent => matches!(
                slot.validation(parent),
                Some(Validation::Pending | Validation::Valid)
            ),
            _ => false,
        }
    }

    /// The parent of block `seq` is committed, or prepared in this view.
    /// This is where a chain differs from the paper's independent requests:
    /// without it a block could gather a certificate while its parent at
    /// `seq - 1` never prepares, and the next NEW-VIEW, which must re-propose
    /// a chain, would have a hole below a committed block (ADR 0002).
    fn parent_prepared(&self, seq: u64, parent: &Hash) -> bool {
        if seq <= self.committed_seq {
            return true;
        }
        if seq - 1 == self.committed_seq {
            return self.committed_hash == *parent;
        }
        self.slots
            .get(&(seq - 1))
            .and_then(|s| s.prepared())
            .is_some_and(|c| c.view == self.view && c.block_hash == *parent)
    }

    /// A copy of the payload of the PRE-PREPARE accepted at (`seq`, `view`).
    fn accepted_payload(&self, seq: u64, view: u64) -> Vec<u8> {
        self.slots
            .get(&seq)
            .and_then(|s| s.accepted(view))
            .map(|a| a.payload.clone())
            .unwrap_or_default()
    }
}
