//! PBFT messages (Castro & Liskov, TOCS'02 §4), their canonical encoding and
//! the digests replicas sign.
//!
//! Every message travels as a [`SignedMessage`]: its epoch, the body, the
//! signer's index in that epoch's validator set and a signature over
//! `consensus_digest(kind, chain_id, epoch, view, seq, body_hash)`, so a
//! signature is bound to one chain, one epoch (one validator set, ADR 0010),
//! one message kind, one view and one sequence number.
//! COMMIT signs the block hash itself, which makes a quorum of COMMITs a
//! `stele_types::CommitCertificate` as it stands.

use stele_types::codec::{Decode, DecodeError, Encode, Reader, put_bytes, put_len};
use stele_types::{ConsensusKind, Hash, Signature, consensus_digest, keccak256, keccak256_parts};

use crate::config::MessageLimits;

/// Index of a validator in the (address-sorted) validator set.
pub type ReplicaIndex = u32;

/// One validator's signature inside a certificate or proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub signer: ReplicaIndex,
    pub signature: Signature,
}

/// PRE-PREPARE (§4.2): the primary assigns `seq` to a block. The payload is
/// the encoded block; `block_hash` commits to it (the node checks that) and
/// `parent` is the block the primary built on, the one at `seq - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrePrepare {
    pub view: u64,
    pub seq: u64,
    pub block_hash: Hash,
    pub parent: Hash,
    pub payload: Vec<u8>,
}

/// PREPARE (§4.2): a replica accepted and validated the PRE-PREPARE. The
/// primary sends one too (see ADR 0002), so a prepared certificate is simply
/// a quorum of PREPAREs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepare {
    pub view: u64,
    pub seq: u64,
    pub block_hash: Hash,
    pub parent: Hash,
}

/// COMMIT (§4.2): the replica holds a prepared certificate for the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    pub view: u64,
    pub seq: u64,
    pub block_hash: Hash,
}

/// CHECKPOINT (§4.3): the replica committed everything up to `seq`; the
/// state digest is the hash of the block at `seq`, whose header carries the
/// state root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub block_hash: Hash,
}

/// Proof of a stable checkpoint: CHECKPOINT signatures from a quorum.
/// Sequence 0 (genesis) needs no signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointProof {
    pub seq: u64,
    pub block_hash: Hash,
    pub votes: Vec<Vote>,
}

/// Prepared certificate (§4.2, the set P of §4.4): PREPAREs from a quorum
/// for one (view, seq, block). It carries the payload so a new primary can
/// re-propose the block without fetching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCertificate {
    pub view: u64,
    pub seq: u64,
    pub block_hash: Hash,
    pub parent: Hash,
    pub payload: Vec<u8>,
    pub votes: Vec<Vote>,
}

impl PreparedCertificate {
    /// The PREPARE every vote in this certificate signed.
    pub fn prepare(&self) -> Prepare {
        Prepare {
            view: self.view,
            seq: self.seq,
            block_hash: self.block_hash,
            parent: self.parent,
        }
    }
}

/// VIEW-CHANGE (§4.4): the sender moves to `new_view`, with its stable
/// checkpoint and its prepared certificates above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewChange {
    pub new_view: u64,
    pub checkpoint: CheckpointProof,
    pub prepared: Vec<PreparedCertificate>,
}

/// One re-issued PRE-PREPARE in the set O of a NEW-VIEW (§4.4). Its payload
/// is the one in the prepared certificate it was chosen from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewViewEntry {
    pub seq: u64,
    pub block_hash: Hash,
    pub parent: Hash,
}

/// NEW-VIEW (§4.4): the view changes V the primary used and the PRE-PREPAREs
/// O it derived from them; every backup recomputes O from V.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewView {
    pub view: u64,
    pub view_changes: Vec<SignedMessage>,
    pub pre_prepares: Vec<NewViewEntry>,
}

/// The body of a consensus message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    PrePrepare(PrePrepare),
    Prepare(Prepare),
    Commit(Commit),
    Checkpoint(Checkpoint),
    ViewChange(ViewChange),
    NewView(NewView),
}

/// A message with its epoch, signer and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    /// The epoch it belongs to: `signer` indexes that epoch's set, and the
    /// signature covers it. First on the wire, so a node can route a
    /// message by epoch without decoding the rest ([`peek_epoch`]).
    pub epoch: u64,
    pub message: Message,
    pub signer: ReplicaIndex,
    pub signature: Signature,
}

/// Hash of a (block, parent) pair: what PRE-PREPARE and PREPARE sign.
pub fn block_and_parent_hash(block_hash: &Hash, parent: &Hash) -> Hash {
    keccak256_parts(&[&block_hash.0, &parent.0])
}

impl Prepare {
    pub fn digest(&self, chain_id: u64, epoch: u64) -> Hash {
        consensus_digest(
            ConsensusKind::Prepare,
            chain_id,
            epoch,
            self.view,
            self.seq,
            &block_and_parent_hash(&self.block_hash, &self.parent),
        )
    }
}

impl Commit {
    pub fn digest(&self, chain_id: u64, epoch: u64) -> Hash {
        consensus_digest(
            ConsensusKind::Commit,
            chain_id,
            epoch,
            self.view,
            self.seq,
            &self.block_hash,
        )
    }
}

impl Checkpoint {
    pub fn digest(&self, chain_id: u64, epoch: u64) -> Hash {
        consensus_digest(
            ConsensusKind::Checkpoint,
            chain_id,
            epoch,
            0,
            self.seq,
            &self.block_hash,
        )
    }
}

impl Message {
    pub fn kind(&self) -> ConsensusKind {
        match self {
            Message::PrePrepare(_) => ConsensusKind::PrePrepare,
            Message::Prepare(_) => ConsensusKind::Prepare,
            Message::Commit(_) => ConsensusKind::Commit,
            Message::Checkpoint(_) => ConsensusKind::Checkpoint,
            Message::ViewChange(_) => ConsensusKind::ViewChange,
            Message::NewView(_) => ConsensusKind::NewView,
        }
    }

    /// The view this message belongs to (the target view of a VIEW-CHANGE;
    /// 0 for CHECKPOINT, which is view-independent).
    pub fn view(&self) -> u64 {
        match self {
            Message::PrePrepare(m) => m.view,
            Message::Prepare(m) => m.view,
            Message::Commit(m) => m.view,
            Message::Checkpoint(_) => 0,
            Message::ViewChange(m) => m.new_view,
            Message::NewView(m) => m.view,
        }
    }

    /// The sequence number in the signed digest (the stable checkpoint's for
    /// a VIEW-CHANGE, 0 for NEW-VIEW).
    pub fn seq(&self) -> u64 {
        match self {
            Message::PrePrepare(m) => m.seq,
            Message::Prepare(m) => m.seq,
            Message::Commit(m) => m.seq,
            Message::Checkpoint(m) => m.seq,
            Message::ViewChange(m) => m.checkpoint.seq,
            Message::NewView(_) => 0,
        }
    }

    /// The body hash in the signed digest. Two messages of one kind, view
    /// and sequence from one signer with different body hashes are an
    /// equivocation.
    pub fn body_hash(&self) -> Hash {
        match self {
            Message::PrePrepare(m) => block_and_parent_hash(&m.block_hash, &m.parent),
            Message::Prepare(m) => block_and_parent_hash(&m.block_hash, &m.parent),
            Message::Commit(m) => m.block_hash,
            Message::Checkpoint(m) => m.block_hash,
            Message::ViewChange(_) | Message::NewView(_) => keccak256(&self.to_bytes()),
        }
    }

    /// The digest the signer signs in `epoch`.
    pub fn digest(&self, chain_id: u64, epoch: u64) -> Hash {
        consensus_digest(
            self.kind(),
            chain_id,
            epoch,
            self.view(),
            self.seq(),
            &self.body_hash(),
        )
    }
}

// ---- canonical encoding -------------------------------------------------

impl Encode for Vote {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.signer.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for Vote {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Vote {
            signer: r.u32("signer")?,
            signature: Signature::decode_from(r)?,
        })
    }
}

const VOTE_BYTES: usize = 4 + 65;

fn put_votes(out: &mut Vec<u8>, votes: &[Vote]) {
    put_len(out, votes.len());
    for v in votes {
        v.encode_to(out);
    }
}

fn read_votes(r: &mut Reader<'_>, lim: &MessageLimits) -> Result<Vec<Vote>, DecodeError> {
    r.seq(lim.validators_max, VOTE_BYTES, "votes", Vote::decode_from)
}

impl Encode for CheckpointProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.seq.encode_to(out);
        self.block_hash.encode_to(out);
        put_votes(out, &self.votes);
    }
}

impl CheckpointProof {
    pub(crate) fn decode(r: &mut Reader<'_>, lim: &MessageLimits) -> Result<Self, DecodeError> {
        Ok(CheckpointProof {
            seq: r.u64("checkpoint seq")?,
            block_hash: Hash::decode_from(r)?,
            votes: read_votes(r, lim)?,
        })
    }
}

impl Encode for PreparedCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.view.encode_to(out);
        self.seq.encode_to(out);
        self.block_hash.encode_to(out);
        self.parent.encode_to(out);
        put_bytes(out, &self.payload);
        put_votes(out, &self.votes);
    }
}

/// Smallest encoded prepared certificate: fixed fields and two empty lists.
const PREPARED_CERT_BYTES_MIN: usize = 8 + 8 + 32 + 32 + 4 + 4;

impl PreparedCertificate {
    pub(crate) fn decode(r: &mut Reader<'_>, lim: &MessageLimits) -> Result<Self, DecodeError> {
        Ok(PreparedCertificate {
            view: r.u64("view")?,
            seq: r.u64("seq")?,
            block_hash: Hash::decode_from(r)?,
            parent: Hash::decode_from(r)?,
            payload: r.bytes(lim.payload_bytes_max, "payload")?,
            votes: read_votes(r, lim)?,
        })
    }
}

impl Encode for Message {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.kind() as u8);
        match self {
            Message::PrePrepare(m) => {
                m.view.encode_to(out);
                m.seq.encode_to(out);
                m.block_hash.encode_to(out);
                m.parent.encode_to(out);
                put_bytes(out, &m.payload);
            }
            Message::Prepare(m) => {
                m.view.encode_to(out);
                m.seq.encode_to(out);
                m.block_hash.encode_to(out);
                m.parent.encode_to(out);
            }
            Message::Commit(m) => {
                m.view.encode_to(out);
                m.seq.encode_to(out);
                m.block_hash.encode_to(out);
            }
            Message::Checkpoint(m) => {
                m.seq.encode_to(out);
                m.block_hash.encode_to(out);
            }
            Message::ViewChange(m) => {
                m.new_view.encode_to(out);
                m.checkpoint.encode_to(out);
                put_len(out, m.prepared.len());
                for c in &m.prepared {
                    c.encode_to(out);
                }
            }
            Message::NewView(m) => {
                m.view.encode_to(out);
                put_len(out, m.view_changes.len());
                for vc in &m.view_changes {
                    vc.encode_to(out);
                }
                put_len(out, m.pre_prepares.len());
                for e in &m.pre_prepares {
                    e.seq.encode_to(out);
                    e.block_hash.encode_to(out);
                    e.parent.encode_to(out);
                }
            }
        }
    }
}

impl Message {
    /// Reads one message body under `lim`. A NEW-VIEW may only carry
    /// VIEW-CHANGEs, never other NEW-VIEWs, so decoding recurses once.
    pub fn decode(r: &mut Reader<'_>, lim: &MessageLimits) -> Result<Self, DecodeError> {
        Self::decode_depth(r, lim, true)
    }

    fn decode_depth(
        r: &mut Reader<'_>,
        lim: &MessageLimits,
        allow_new_view: bool,
    ) -> Result<Self, DecodeError> {
        let tag = r.u8("message kind")?;
        Ok(match tag {
            1 => Message::PrePrepare(PrePrepare {
                view: r.u64("view")?,
                seq: r.u64("seq")?,
                block_hash: Hash::decode_from(r)?,
                parent: Hash::decode_from(r)?,
                payload: r.bytes(lim.payload_bytes_max, "payload")?,
            }),
            2 => Message::Prepare(Prepare {
                view: r.u64("view")?,
                seq: r.u64("seq")?,
                block_hash: Hash::decode_from(r)?,
                parent: Hash::decode_from(r)?,
            }),
            3 => Message::Commit(Commit {
                view: r.u64("view")?,
                seq: r.u64("seq")?,
                block_hash: Hash::decode_from(r)?,
            }),
            4 => Message::Checkpoint(Checkpoint {
                seq: r.u64("seq")?,
                block_hash: Hash::decode_from(r)?,
            }),
            5 => Message::ViewChange(ViewChange {
                new_view: r.u64("view")?,
                checkpoint: CheckpointProof::decode(r, lim)?,
                prepared: r.seq(
                    lim.window_max(),
                    PREPARED_CERT_BYTES_MIN,
                    "prepared certificates",
                    |r| PreparedCertificate::decode(r, lim),
                )?,
            }),
            6 if allow_new_view => Message::NewView(NewView {
                view: r.u64("view")?,
                view_changes: r.seq(lim.validators_max, SIGNED_BYTES_MIN, "view changes", |r| {
                    SignedMessage::decode_depth(r, lim, false)
                })?,
                pre_prepares: r.seq(lim.window_max(), 72, "new-view pre-prepares", |r| {
                    Ok(NewViewEntry {
                        seq: r.u64("seq")?,
                        block_hash: Hash::decode_from(r)?,
                        parent: Hash::decode_from(r)?,
                    })
                })?,
            }),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "message kind",
                    tag,
                });
            }
        })
    }
}

/// Smallest encoded signed message: epoch, a tag, a checkpoint, signer,
/// signature.
const SIGNED_BYTES_MIN: usize = 8 + 1 + 8 + 32 + 4 + 65;

/// The epoch of an encoded [`SignedMessage`], read without decoding the
/// rest; `None` if `bytes` is too short to hold one.
pub fn peek_epoch(bytes: &[u8]) -> Option<u64> {
    let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}

impl SignedMessage {
    /// The digest its signer signed.
    pub fn digest(&self, chain_id: u64) -> Hash {
        self.message.digest(chain_id, self.epoch)
    }
}

impl Encode for SignedMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.epoch.encode_to(out);
        self.message.encode_to(out);
        self.signer.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl SignedMessage {
    fn decode_depth(
        r: &mut Reader<'_>,
        lim: &MessageLimits,
        allow_new_view: bool,
    ) -> Result<Self, DecodeError> {
        Ok(SignedMessage {
            epoch: r.u64("epoch")?,
            message: Message::decode_depth(r, lim, allow_new_view)?,
            signer: r.u32("signer")?,
            signature: Signature::decode_from(r)?,
        })
    }

    /// Decodes one signed message from `bytes`, rejecting input over
    /// `lim.message_bytes_max`, over any per-field limit, and trailing bytes.
    pub fn decode(bytes: &[u8], lim: &MessageLimits) -> Result<Self, DecodeError> {
        if bytes.len() > lim.message_bytes_max {
            return Err(DecodeError::InputTooLong {
                len: bytes.len(),
                max: lim.message_bytes_max,
            });
        }
        let codec_limits = lim.codec_limits();
        let mut r = Reader::new(bytes, &codec_limits);
        let m = Self::decode_depth(&mut r, lim, true)?;
        r.finish()?;
        Ok(m)
    }
}
