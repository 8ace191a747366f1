//! View changes (Castro & Liskov §4.4) and their liveness rules (§4.5.2).

use stele_types::Hash;
use stele_types::codec::Encode;

use crate::io::{Action, Record};
use crate::message::{
    Checkpoint, CheckpointProof, Message, NewView, NewViewEntry, PreparedCertificate,
    SignedMessage, ViewChange,
};
use crate::replica::Replica;
use crate::slot::{Accepted, Validation};

/// What a NEW-VIEW installs: the stable checkpoint with the highest sequence
/// in V (min-s) and the PRE-PREPAREs O with their payloads.
pub(crate) struct NewViewPlan {
    pub checkpoint: CheckpointProof,
    pub entries: Vec<(NewViewEntry, Vec<u8>)>,
}

impl Replica {
    /// §4.4: the view timer expired. In an installed view the primary is
    /// suspected: move to the next view. While changing views, move on only
    /// if a quorum is changing to this view or beyond (the new primary is
    /// then the one failing); a replica that is alone ahead of the others
    /// waits for them instead of racing away, and resends its VIEW-CHANGE in
    /// case it was lost. Each view change doubles the timer (§4.5.2); waiting
    /// does not.
    pub(crate) fn on_timeout(&mut self) {
        if self.active {
            self.start_view_change(self.view + 1);
            return;
        }
        let view = self.view;
        let support = self.power(
            self.latest_view_change
                .iter()
                .filter(|(_, m)| m.message.view() >= view)
                .map(|(s, _)| s),
        );
        if self.is_quorum(support) {
            self.start_view_change(view + 1);
            return;
        }
        if let Some(m) = self.latest_view_change.get(&self.me) {
            self.out.push(Action::Broadcast(m.to_bytes()));
        }
        self.arm_timer();
    }

    /// Sends VIEW-CHANGE for `new_view` with the stable checkpoint and the
    /// prepared certificates above it, and stops accepting messages for
    /// lower views.
    pub(crate) fn start_view_change(&mut self, new_view: u64) {
        if new_view <= self.view && !(new_view == self.view && self.active) {
            return;
        }
        self.begin_view_change(new_view);

        let own = self
            .latest_view_change
            .get(&self.me)
            .filter(|m| m.message.view() == new_view)
            .cloned();
        let m = match own {
            // Already signed for this view before a restart: send it again.
            Some(m) => {
                self.out.push(Action::Broadcast(m.to_bytes()));
                Some(m)
            }
            None => {
                // The window may be empty: at the epoch's end the stable
                // checkpoint can reach the last height before the commit.
                let (stable, high) = (self.stable.seq, self.high_watermark());
                let prepared: Vec<PreparedCertificate> = self
                    .slots
                    .range(stable + 1..)
                    .take_while(|(seq, _)| **seq <= high)
                    .filter_map(|(_, s)| s.prepared().cloned())
                    .collect();
                let vc = ViewChange {
                    new_view,
                    checkpoint: self.stable.clone(),
                    prepared,
                };
                self.sign_persist_broadcast(Message::ViewChange(vc))
            }
        };
        if let Some(m) = m {
            self.remember_view_change(m);
        }
        self.arm_timer();
        self.try_new_view();
        self.check_join();
    }

    /// A VIEW-CHANGE from a peer: checked in full, kept if it is the
    /// sender's newest.
    pub(crate) fn on_view_change(&mut self, m: SignedMessage, vc: ViewChange) {
        if vc.new_view < self.view || (vc.new_view == self.view && self.active) {
            // A laggard still asking for a view at or below ours: forward the
            // NEW-VIEW that installed our view. It is self-certifying, so any
            // replica may relay it.
            if self.active
                && let Some(nv) = &self.new_view_message
            {
                self.out.push(Action::Send {
                    to: m.signer,
                    bytes: nv.to_bytes(),
                });
            }
            self.counters.dropped_wrong_view += 1;
            return;
        }
        // §4.4: an honest replica signs one VIEW-CHANGE per view (it resends
        // the persisted one), so two different ones are equivocation.
        if let Some(old) = self.latest_view_change.get(&m.signer)
            && old.message.view() == vc.new_view
            && old.message.body_hash() != m.message.body_hash()
        {
            self.report_equivocation(old.clone(), m);
            return;
        }
        if self
            .latest_view_change
            .get(&m.signer)
            .is_some_and(|old| old.message.view() >= vc.new_view)
        {
            self.counters.duplicates += 1;
            return;
        }
        if !self.valid_view_change(&vc) {
            self.counters.dropped_invalid += 1;
            return;
        }
        self.remember_view_change(m);
        self.try_new_view();
        self.check_join();
    }

    /// The checkpoint proof and every prepared certificate verify, and the
    /// certificates are for views below the new one, inside the window above
    /// the checkpoint, in increasing sequence order.
    pub(crate) fn valid_view_change(&self, vc: &ViewChange) -> bool {
        if !self.valid_checkpoint_proof(&vc.checkpoint) {
            return false;
        }
        let high = vc.checkpoint.seq.saturating_add(self.cfg.window_seqs);
        let mut last = vc.checkpoint.seq;
        for c in &vc.prepared {
            if c.seq <= last || c.seq > high || c.view >= vc.new_view {
                return false;
            }
            if c.payload.len() > self.cfg.limits.payload_bytes_max {
                return false;
            }
            if !self.valid_quorum(
                &c.prepare().digest(self.cfg.chain_id, self.cfg.epoch),
                &c.votes,
            ) {
                return false;
            }
            last = c.seq;
        }
        true
    }

    fn valid_checkpoint_proof(&self, p: &CheckpointProof) -> bool {
        // The epoch's base is its first stable checkpoint, held unsigned.
        if p.seq <= self.cfg.base_seq {
            return p.seq == self.cfg.base_seq
                && p.block_hash == self.cfg.base_hash
                && p.votes.is_empty();
        }
        if !p.seq.is_multiple_of(self.cfg.checkpoint_interval_seqs) {
            return false;
        }
        let digest = Checkpoint {
            seq: p.seq,
            block_hash: p.block_hash,
        }
        .digest(self.cfg.chain_id, self.cfg.epoch);
        self.valid_quorum(&digest, &p.votes)
    }

    /// §4.5.2: a replica that holds VIEW-CHANGEs for views above its own from
    /// a weak quorum (f + 1) joins the smallest of those views.
    fn check_join(&mut self) {
        let current = self.view;
        let higher: Vec<(u64, u32)> = self
            .latest_view_change
            .iter()
            .filter(|(s, m)| **s != self.me && m.message.view() > current)
            .map(|(s, m)| (m.message.view(), *s))
            .collect();
        let power = self.power(higher.iter().map(|(_, s)| s));
        if power >= self.cfg.validators.weak_quorum_power()
            && let Some(target) = higher.iter().map(|(v, _)| *v).min()
        {
            self.start_view_change(target);
        }
    }

    /// §4.4: the primary of the view being changed into, holding a quorum of
    /// VIEW-CHANGEs for it, computes and sends NEW-VIEW.
    fn try_new_view(&mut self) {
        if self.active || !self.is_primary(self.view) {
            return;
        }
        let view = self.view;
        let vcs: Vec<SignedMessage> = self
            .latest_view_change
            .values()
            .filter(|m| m.message.view() == view)
            .cloned()
            .collect();
        if !self.is_quorum(self.power(vcs.iter().map(|m| &m.signer))) {
            return;
        }
        let plan = self.plan_new_view(&vcs);
        let nv = NewView {
            view,
            view_changes: vcs,
            pre_prepares: plan.entries.iter().map(|(e, _)| *e).collect(),
        };
        let Some(m) = self.sign_persist_broadcast(Message::NewView(nv)) else {
            return;
        };
        self.install_new_view(m, plan);
    }

    /// Computes min-s and O from V (§4.4): the highest stable checkpoint, then
    /// for each following sequence number the prepared certificate of the
    /// highest view. Because sequence numbers are block heights, O stops at
    /// the first height with no certificate or whose certificate does not
    /// extend the block chosen below it: such a block cannot have committed
    /// (see ADR 0002), and a null request has no meaning for a chain.
    pub(crate) fn plan_new_view(&self, vcs: &[SignedMessage]) -> NewViewPlan {
        let views: Vec<&ViewChange> = vcs
            .iter()
            .filter_map(|m| match &m.message {
                Message::ViewChange(vc) => Some(vc),
                _ => None,
            })
            .collect();
        let base = CheckpointProof {
            seq: self.cfg.base_seq,
            block_hash: self.cfg.base_hash,
            votes: Vec::new(),
        };
        let checkpoint = views
            .iter()
            .map(|vc| &vc.checkpoint)
            .fold(&base, |best, c| if c.seq > best.seq { c } else { best })
            .clone();
        let mut entries = Vec::new();
        let mut parent: Hash = checkpoint.block_hash;
        let high = checkpoint.seq.saturating_add(self.cfg.window_seqs);
        for seq in checkpoint.seq + 1..=high {
            let best = views
                .iter()
                .flat_map(|vc| vc.prepared.iter())
                .filter(|c| c.seq == seq)
                .max_by(|a, b| (a.view, a.block_hash).cmp(&(b.view, b.block_hash)));
            let Some(c) = best else { break };
            if c.parent != parent {
                break;
            }
            entries.push((
                NewViewEntry {
                    seq,
                    block_hash: c.block_hash,
                    parent: c.parent,
                },
                c.payload.clone(),
            ));
            parent = c.block_hash;
        }
        NewViewPlan {
            checkpoint,
            entries,
        }
    }

    /// §4.4: a backup accepts NEW-VIEW for a view at least its own only if
    /// it comes from that view's primary, carries a quorum of valid
    /// VIEW-CHANGEs for it, and O is exactly what V gives.
    pub(crate) fn on_new_view(&mut self, m: SignedMessage, nv: NewView) {
        // The primary of a view signs one NEW-VIEW for it.
        if let Some(installed) = &self.new_view_message
            && installed.signer == m.signer
            && installed.message.view() == nv.view
            && installed.message.body_hash() != m.message.body_hash()
        {
            self.report_equivocation(installed.clone(), m);
            return;
        }
        if nv.view < self.view || (nv.view == self.view && self.active) {
            self.counters.dropped_wrong_view += 1;
            return;
        }
        if m.signer != self.primary_index(nv.view) {
            self.counters.dropped_invalid += 1;
            return;
        }
        let Some(plan) = self.check_new_view(&nv) else {
            self.counters.dropped_invalid += 1;
            return;
        };
        self.out.push(Action::Persist(Record::NewView(m.clone())));
        self.install_new_view(m, plan);
    }

    fn check_new_view(&self, nv: &NewView) -> Option<NewViewPlan> {
        let sorted = nv
            .view_changes
            .windows(2)
            .all(|w| w[0].signer < w[1].signer);
        if !sorted || !self.is_quorum(self.power(nv.view_changes.iter().map(|m| &m.signer))) {
            return None;
        }
        for vc in &nv.view_changes {
            let Message::ViewChange(body) = &vc.message else {
                return None;
            };
            if body.new_view != nv.view || vc.epoch != self.cfg.epoch {
                return None;
            }
            let digest = vc.digest(self.cfg.chain_id);
            if !self.verify_vote(vc.signer, &digest, &vc.signature) || !self.valid_view_change(body)
            {
                return None;
            }
        }
        let plan = self.plan_new_view(&nv.view_changes);
        let same = plan.entries.len() == nv.pre_prepares.len()
            && plan
                .entries
                .iter()
                .zip(&nv.pre_prepares)
                .all(|((e, _), o)| e == o);
        if !same {
            return None;
        }
        // With at most f faults O agrees with what this replica committed;
        // refuse a NEW-VIEW that does not rather than fork.
        let consistent = plan.entries.iter().all(|(e, _)| {
            self.committed_hash_at(e.seq)
                .is_none_or(|h| h == e.block_hash)
        });
        consistent.then_some(plan)
    }

    /// Enters the new view: adopts min-s as stable checkpoint (fetching the
    /// blocks up to it if this replica is behind) and accepts O as the
    /// PRE-PREPAREs of the view.
    fn install_new_view(&mut self, m: SignedMessage, plan: NewViewPlan) {
        let view = m.message.view();
        self.enter_view(m);
        if plan.checkpoint.seq > self.stable.seq {
            self.adopt_stable(plan.checkpoint.clone());
        } else {
            self.out.push(Action::CompactLog {
                stable_seq: self.stable.seq,
                view,
            });
        }
        let mut last = plan.checkpoint.seq.max(self.committed_seq);
        for (e, payload) in plan.entries {
            last = last.max(e.seq);
            if !self.in_window(e.seq) {
                continue;
            }
            let committed = self.committed_hash_at(e.seq);
            let slot = self.slot_mut(e.seq);
            if committed == Some(e.block_hash) {
                slot.set_validation(e.block_hash, Validation::Valid);
            }
            slot.set_pre_prepare(
                view,
                Accepted {
                    block_hash: e.block_hash,
                    parent: e.parent,
                    payload,
                },
            );
        }
        self.propose_from(last + 1);
        self.arm_timer();
        self.advance();
    }

    /// Replays a NEW-VIEW from the log: it was checked when accepted.
    pub(crate) fn replay_new_view(&mut self, m: SignedMessage) {
        let Message::NewView(nv) = &m.message else {
            return;
        };
        if nv.view < self.view {
            return;
        }
        let plan = self.plan_new_view(&nv.view_changes);
        self.install_new_view(m, plan);
    }
}
