//! What goes into and comes out of [`Replica::handle`](crate::Replica::handle).

use stele_types::codec::{DecodeError, Encode, Reader, put_bytes};
use stele_types::{CommitCertificate, Hash};

use crate::config::MessageLimits;
use crate::message::{CheckpointProof, Message, PreparedCertificate, ReplicaIndex, SignedMessage};

/// An event the node feeds to the replica.
#[derive(Debug, Clone)]
pub enum Input {
    /// First start with an empty log, at genesis.
    Start,
    /// Start after a crash: the records the replica asked to persist, in
    /// order, and the last block the node committed to its store.
    /// `unsynced_lost` says the records written since the last synced one
    /// may be missing (the host restarted since they were written; a
    /// process crash alone keeps them): the replica then signs no
    /// PRE-PREPARE or PREPARE in its current view (see
    /// [`Record::needs_sync`]).
    Restart {
        records: Vec<Record>,
        committed: Option<(u64, Hash)>,
        unsynced_lost: bool,
    },
    /// Bytes received from a peer. Decoded and checked inside the replica.
    Message(Vec<u8>),
    /// A timer set by [`Action::SetTimer`] fired.
    Timer(TimerId),
    /// The node built the block requested by [`Action::RequestProposal`].
    ProposalReady {
        view: u64,
        seq: u64,
        block_hash: Hash,
        payload: Vec<u8>,
    },
    /// The node executed a block requested by [`Action::ValidateBlock`].
    BlockValidated {
        seq: u64,
        block_hash: Hash,
        valid: bool,
    },
    /// A committed block fetched by state transfer after
    /// [`Action::RequestSync`]; the replica checks the certificate.
    Synced {
        certificate: CommitCertificate,
        payload: Vec<u8>,
    },
    /// The committed chain fixed the epoch's last height (ADR 0010): a
    /// change of validator set or protocol was decided at or below it. The
    /// replica orders nothing above `last_seq`, and once it has committed
    /// `last_seq` it is finished: it arms no timer and changes no view, and
    /// the node replaces it with the next epoch's replica. Given once, with
    /// `last_seq` a checkpoint at or above the committed height.
    EpochEnds { last_seq: u64 },
}

/// Identifies one arming of the view timer; a firing with an older id is
/// ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// Something the node must do. Actions are executed in order: a
/// [`Action::Persist`] must be written (and synced if it needs it) before
/// any later action runs.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send to every other validator.
    Broadcast(Vec<u8>),
    /// Send to one validator.
    Send { to: ReplicaIndex, bytes: Vec<u8> },
    /// Append to the replica's log before the actions after it: written
    /// (so a process crash keeps it), and synced to disk first when
    /// [`Record::needs_sync`] holds.
    Persist(Record),
    /// The block at `seq` is final: apply it and store it with its
    /// certificate. Emitted exactly once per height, in height order.
    Commit {
        seq: u64,
        block_hash: Hash,
        payload: Vec<u8>,
        certificate: CommitCertificate,
    },
    /// Fire [`Input::Timer`] with `id` after `after_ms`. Replaces any
    /// earlier timer.
    SetTimer { id: TimerId, after_ms: u64 },
    /// Build a block at `seq` on top of `parent` and answer with
    /// [`Input::ProposalReady`].
    RequestProposal { view: u64, seq: u64, parent: Hash },
    /// Execute the proposed block (on top of `parent`, which was validated or
    /// committed before) and answer with [`Input::BlockValidated`]: valid
    /// iff `payload` decodes to a block with hash `block_hash`, height `seq`,
    /// parent `parent`, and a correct state root.
    ValidateBlock {
        seq: u64,
        block_hash: Hash,
        parent: Hash,
        payload: Vec<u8>,
    },
    /// Fetch committed blocks `from..=to` with their certificates from
    /// peers and feed them back as [`Input::Synced`], in order.
    RequestSync { from: u64, to: u64 },
    /// A peer signed two conflicting messages.
    Evidence(Evidence),
    /// The log may be rewritten without the records for which
    /// [`Record::obsolete`] holds with these arguments (after the persists
    /// before this action are durable).
    CompactLog { stable_seq: u64, view: u64 },
}

/// Two messages from one signer with the same kind, view and sequence but
/// different contents: proof of Byzantine behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub first: SignedMessage,
    pub second: SignedMessage,
}

/// An entry of the replica's safety log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A message this replica signed, persisted before it is sent.
    Signed(SignedMessage),
    /// A prepared certificate this replica holds (before it sends COMMIT),
    /// so a view change after a restart still reports it.
    Prepared(PreparedCertificate),
    /// A new stable checkpoint.
    Stable(CheckpointProof),
    /// A NEW-VIEW this replica accepted.
    NewView(SignedMessage),
    /// After a restart that may have lost unsynced records: this replica
    /// signs no PRE-PREPARE or PREPARE in this view or below, across later
    /// restarts too.
    LostView(u64),
}

impl Encode for Record {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Record::Signed(m) => {
                out.push(1);
                put_bytes(out, &m.to_bytes());
            }
            Record::Prepared(c) => {
                out.push(2);
                put_bytes(out, &c.to_bytes());
            }
            Record::Stable(p) => {
                out.push(3);
                put_bytes(out, &p.to_bytes());
            }
            Record::NewView(m) => {
                out.push(4);
                put_bytes(out, &m.to_bytes());
            }
            Record::LostView(view) => {
                out.push(5);
                put_bytes(out, &view.to_le_bytes());
            }
        }
    }
}

/// When a [`Record`] becomes obsolete: once the stable checkpoint reaches
/// `stable_at`, or once the view is above `view_above`, whichever comes
/// first; `None` never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub stable_at: Option<u64>,
    pub view_above: Option<u64>,
}

impl Retention {
    /// Whether a replica with stable checkpoint `stable_seq` in `view` can
    /// forget the record ([`Record::obsolete`]).
    pub fn obsolete(&self, stable_seq: u64, view: u64) -> bool {
        self.stable_at.is_some_and(|s| s <= stable_seq) || self.view_above.is_some_and(|v| v < view)
    }
}

impl Record {
    /// Whether this record must be synced to disk before the actions after
    /// it run. PRE-PREPAREs and PREPAREs need only be written: a process
    /// crash keeps them, and losing them in a host crash is safe because the
    /// restarted replica signs no more of them in that view
    /// ([`Input::Restart`]). Everything else is synced: COMMITs (their
    /// prepared certificates must survive for view changes), checkpoints,
    /// view changes. A sync also makes every earlier write durable.
    pub fn needs_sync(&self) -> bool {
        !matches!(
            self,
            Record::Signed(SignedMessage {
                message: Message::PrePrepare(_) | Message::Prepare(_),
                ..
            })
        )
    }

    /// Whether a replica with stable checkpoint `stable_seq` in `view` can
    /// forget this record: it will never sign anything at or below the
    /// stable checkpoint or in a lower view again, and it keeps the newest
    /// stable proof, its prepared certificates above it (for VIEW-CHANGE)
    /// and the view-change records of its current view.
    pub fn obsolete(&self, stable_seq: u64, view: u64) -> bool {
        self.retention().obsolete(stable_seq, view)
    }

    /// What [`Record::obsolete`] depends on, without the record's body: a
    /// log can keep this per record and compact without reading them back.
    pub fn retention(&self) -> Retention {
        let until_stable = |seq: u64| Retention {
            stable_at: Some(seq),
            view_above: None,
        };
        let until_view = |view: u64| Retention {
            stable_at: None,
            view_above: Some(view),
        };
        match self {
            Record::Signed(m) => match &m.message {
                Message::Checkpoint(c) => until_stable(c.seq),
                Message::ViewChange(_) | Message::NewView(_) => until_view(m.message.view()),
                other => Retention {
                    stable_at: Some(other.seq()),
                    view_above: Some(other.view()),
                },
            },
            Record::Prepared(c) => until_stable(c.seq),
            // Kept while it is the newest stable proof: obsolete once the
            // stable checkpoint is above it (never, at the last seq).
            Record::Stable(p) => Retention {
                stable_at: p.seq.checked_add(1),
                view_above: None,
            },
            Record::NewView(m) => until_view(m.message.view()),
            Record::LostView(lost) => until_view(*lost),
        }
    }

    /// Reads a record written by this replica's node.
    pub fn decode(bytes: &[u8], lim: &MessageLimits) -> Result<Record, DecodeError> {
        let codec_limits = lim.codec_limits();
        let mut r = Reader::new(bytes, &codec_limits);
        let tag = r.u8("record kind")?;
        let inner = r.bytes(lim.message_bytes_max, "record body")?;
        r.finish()?;
        let inner_reader = || Reader::new(&inner, &codec_limits);
        Ok(match tag {
            1 => Record::Signed(SignedMessage::decode(&inner, lim)?),
            2 => {
                let mut r = inner_reader();
                let c = PreparedCertificate::decode(&mut r, lim)?;
                r.finish()?;
                Record::Prepared(c)
            }
            3 => {
                let mut r = inner_reader();
                let p = CheckpointProof::decode(&mut r, lim)?;
                r.finish()?;
                Record::Stable(p)
            }
            4 => Record::NewView(SignedMessage::decode(&inner, lim)?),
            5 => {
                let mut r = inner_reader();
                let view = r.u64("lost view")?;
                r.finish()?;
                Record::LostView(view)
            }
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "record kind",
                    tag,
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(view: u64, seq: u64) -> Record {
        Record::Prepared(PreparedCertificate {
            view,
            seq,
            block_hash: Hash::ZERO,
            parent: Hash::ZERO,
            payload: Vec::new(),
            votes: Vec::new(),
        })
    }

    fn stable(seq: u64) -> Record {
        Record::Stable(CheckpointProof {
            seq,
            block_hash: Hash::ZERO,
            votes: Vec::new(),
        })
    }

    #[test]
    fn records_become_obsolete_exactly_at_their_bounds() {
        // A prepared certificate goes once the checkpoint reaches its seq,
        // whatever the view.
        assert!(!prepared(0, 5).obsolete(4, 9));
        assert!(prepared(0, 5).obsolete(5, 0));
        // The newest stable proof stays; an older one goes.
        assert!(!stable(5).obsolete(5, 9));
        assert!(stable(5).obsolete(6, 0));
        assert!(!stable(u64::MAX).obsolete(u64::MAX, u64::MAX));
        // A lost view goes once the replica is in a later view.
        assert!(!Record::LostView(3).obsolete(u64::MAX, 3));
        assert!(Record::LostView(3).obsolete(0, 4));
        assert_eq!(
            prepared(2, 7).retention(),
            Retention {
                stable_at: Some(7),
                view_above: None
            }
        );
    }
}
