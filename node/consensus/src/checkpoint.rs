//! Checkpoints and garbage collection (Castro & Liskov §4.3), and state
//! transfer from certified blocks (which replaces the paper's partition
//! tree, ADR 0002).

use stele_types::{CommitCertificate, Hash, Signature};

use crate::io::{Action, Record};
use crate::message::{Checkpoint, CheckpointProof, Message, ReplicaIndex, SignedMessage, Vote};
use crate::replica::Replica;

impl Replica {
    /// §4.3: every K blocks a replica multicasts CHECKPOINT for the block
    /// it committed there (persisted first), and counts its own vote.
    pub(crate) fn send_checkpoint(&mut self, seq: u64, block_hash: Hash) {
        let c = Checkpoint { seq, block_hash };
        if let Some(m) = self.sign_persist_broadcast(Message::Checkpoint(c)) {
            self.add_checkpoint_vote(self.me, c, m.signature);
        }
    }

    /// §4.3: a peer's CHECKPOINT above the stable one.
    pub(crate) fn on_checkpoint(&mut self, m: SignedMessage, c: Checkpoint) {
        if c.seq <= self.stable.seq || !c.seq.is_multiple_of(self.cfg.checkpoint_interval_seqs) {
            self.counters.dropped_out_of_window += 1;
            return;
        }
        if self.in_window(c.seq) && !self.first_of_its_kind(&m) {
            return;
        }
        self.add_checkpoint_vote(m.signer, c, m.signature);
    }

    /// Keeps votes inside the window, plus each signer's highest vote beyond
    /// it, which is how a lagging replica learns it must catch up.
    fn add_checkpoint_vote(&mut self, signer: ReplicaIndex, c: Checkpoint, sig: Signature) {
        let high = self.high_watermark();
        if c.seq > high {
            let older: Vec<u64> = self
                .checkpoint_votes
                .iter()
                .filter(|(s, v)| **s > high && v.contains_key(&signer))
                .map(|(s, _)| *s)
                .collect();
            if older.iter().any(|s| *s >= c.seq) {
                return;
            }
            for s in older {
                if let Some(v) = self.checkpoint_votes.get_mut(&s) {
                    v.remove(&signer);
                }
            }
        }
        self.checkpoint_votes
            .entry(c.seq)
            .or_default()
            .insert(signer, (c.block_hash, sig));
        self.check_stable(c.seq, c.block_hash);
        self.check_lagging();
    }

    /// §4.3: a checkpoint with a quorum of matching votes becomes stable;
    /// the votes are its proof.
    fn check_stable(&mut self, seq: u64, block_hash: Hash) {
        if seq <= self.stable.seq {
            return;
        }
        let votes: Vec<Vote> = self
            .checkpoint_votes
            .get(&seq)
            .map(|m| {
                m.iter()
                    .filter(|(_, (h, _))| *h == block_hash)
                    .map(|(s, (_, sig))| Vote {
                        signer: *s,
                        signature: *sig,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !self.is_quorum(self.power(votes.iter().map(|v| &v.signer))) {
            return;
        }
        let proof = CheckpointProof {
            seq,
            block_hash,
            votes,
        };
        self.adopt_stable(proof);
    }

    /// §4.3: moves the low watermark h to `proof` (persisted) and discards
    /// every slot, vote and record at or below it.
    pub(crate) fn adopt_stable(&mut self, proof: CheckpointProof) {
        if proof.seq <= self.stable.seq {
            return;
        }
        let seq = proof.seq;
        self.out
            .push(Action::Persist(Record::Stable(proof.clone())));
        self.stable = proof;
        self.out.push(Action::CompactLog {
            stable_seq: seq,
            view: self.view,
        });
        self.slots = self.slots.split_off(&(seq + 1));
        self.checkpoint_votes = self.checkpoint_votes.split_off(&(seq + 1));
        self.forget_seqs_through(seq);
        if self.committed_seq < seq {
            self.request_sync(seq);
        }
        self.advance();
    }

    /// A weak quorum of checkpoints beyond the window means this replica
    /// fell behind: fetch the certified blocks.
    fn check_lagging(&mut self) {
        let high = self.high_watermark();
        let mut beyond: Vec<(u64, ReplicaIndex)> = self
            .checkpoint_votes
            .range(high + 1..)
            .flat_map(|(seq, v)| v.keys().map(move |s| (*seq, *s)))
            .collect();
        beyond.sort_by(|a, b| b.cmp(a));
        let weak = self.cfg.validators.weak_quorum_power();
        let mut power = 0;
        for (seq, signer) in beyond {
            power += self.power_of(signer);
            if power >= weak {
                self.request_sync(seq);
                return;
            }
        }
    }

    /// Asks the node for committed blocks up to `to` (state transfer),
    /// unless already asked for as far.
    pub(crate) fn request_sync(&mut self, to: u64) {
        if to <= self.committed_seq || to <= self.sync_requested_to {
            return;
        }
        self.sync_requested_to = to;
        self.out.push(Action::RequestSync {
            from: self.committed_seq + 1,
            to,
        });
    }

    /// State transfer: a committed block with a certificate from a peer.
    pub(crate) fn on_synced(&mut self, cert: CommitCertificate, payload: Vec<u8>) {
        if cert.height != self.committed_seq + 1
            || cert.epoch != self.cfg.epoch
            || self.last_seq.is_some_and(|last| cert.height > last)
        {
            return;
        }
        let digest = cert.digest(self.cfg.chain_id);
        let votes: Vec<Vote> = cert
            .signatures
            .iter()
            .map(|s| Vote {
                signer: s.validator,
                signature: s.signature,
            })
            .collect();
        if !self.valid_quorum(&digest, &votes) {
            self.counters.dropped_invalid += 1;
            return;
        }
        self.apply_commit(cert, payload);
        self.advance();
    }
}
