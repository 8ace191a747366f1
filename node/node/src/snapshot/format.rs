//! The snapshot format, version 1 (`docs/snapshot-format.md`): the
//! manifest (the cut with each chunk's length and hash), the anchor (block
//! H, its receipts and certificate, and the chain of epochs from the
//! genesis), and the chunks (a part's entries in key-hash order).

use stele_state::StateKey;
use stele_types::codec::{Decode, DecodeError, Encode, Reader, put_bytes, put_seq};
use stele_types::snapshot::{Part, Prefix};
use stele_types::{Block, BlockHeader, CommitCertificate, Hash, Limits, Receipt};

use crate::store::EpochRecord;

/// The first bytes of a snapshot file.
pub const MAGIC: &[u8; 8] = b"STELESNP";
/// The last bytes of a snapshot file, after the index's length.
pub const END_MAGIC: &[u8; 8] = b"STELEEND";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Entries a chunk holds at most, unless one key's subtree cannot split.
pub const CHUNK_ENTRIES_TARGET: usize = 4_096;
/// Bytes a chunk's entries take at most, unless one entry is larger.
pub const CHUNK_BYTES_TARGET: usize = 8 << 20;
/// Parts a manifest may list.
pub const PARTS_MAX: usize = 1 << 20;
/// Epochs an anchor may list.
pub const EPOCHS_MAX: usize = 1 << 20;
/// A chunk's encoding at most: the target, plus one largest value.
pub const CHUNK_BYTES_MAX: usize = CHUNK_BYTES_TARGET + (16 << 20);

/// One part of the cut and the chunk that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartEntry {
    pub part: Part,
    /// The chunk's encoded length and Keccak-256.
    pub chunk_bytes: u64,
    pub chunk_hash: Hash,
}

impl Encode for PartEntry {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.part.prefix.bits().encode_to(out);
        self.part.prefix.path().encode_to(out);
        self.part.leaves.encode_to(out);
        self.part.hash.encode_to(out);
        self.chunk_bytes.encode_to(out);
        self.chunk_hash.encode_to(out);
    }
}

impl Decode for PartEntry {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bits = r.u16("prefix bits")?;
        let path = Hash::decode_from(r)?;
        let prefix = Prefix::of(&path, bits)
            .filter(|p| p.path() == &path)
            .ok_or(DecodeError::Invalid {
                what: "part prefix",
                reason: "bits past the prefix's length must be zero, at most 256 bits",
            })?;
        Ok(PartEntry {
            part: Part {
                prefix,
                leaves: r.u64("part leaves")?,
                hash: Hash::decode_from(r)?,
            },
            chunk_bytes: r.u64("chunk bytes")?,
            chunk_hash: Hash::decode_from(r)?,
        })
    }
}

/// What a snapshot of height `height` holds, checked against the certified
/// state root of that height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub chain_id: u64,
    pub height: u64,
    pub block_hash: Hash,
    pub state_root: Hash,
    pub parts: Vec<PartEntry>,
}

impl Encode for Manifest {
    fn encode_to(&self, out: &mut Vec<u8>) {
        FORMAT_VERSION.encode_to(out);
        self.chain_id.encode_to(out);
        self.height.encode_to(out);
        self.block_hash.encode_to(out);
        self.state_root.encode_to(out);
        put_seq(out, &self.parts);
    }
}

impl Decode for Manifest {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u32("format version")?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::Invalid {
                what: "snapshot format version",
                reason: "not one this build reads (1)",
            });
        }
        Ok(Manifest {
            chain_id: r.u64("chain id")?,
            height: r.u64("height")?,
            block_hash: Hash::decode_from(r)?,
            state_root: Hash::decode_from(r)?,
            parts: r.seq(PARTS_MAX, 1, "parts", PartEntry::decode_from)?,
        })
    }
}

/// An epoch after the genesis's, with the block that ended the one before
/// it (its header names the set, its certificate is by the set before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochLink {
    pub record: EpochRecord,
    pub header: BlockHeader,
    pub certificate: CommitCertificate,
}

impl Encode for EpochLink {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.record.encode_to(out);
        self.header.encode_to(out);
        self.certificate.encode_to(out);
    }
}

impl Decode for EpochLink {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EpochLink {
            record: EpochRecord::decode_from(r)?,
            header: BlockHeader::decode_from(r)?,
            certificate: CommitCertificate::decode_from(r)?,
        })
    }
}

/// What ties a snapshot to the chain: block H with its receipts and
/// certificate, and every epoch from the genesis's to H's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub block: Block,
    pub receipts: Vec<Receipt>,
    pub certificate: CommitCertificate,
    pub epochs: Vec<EpochLink>,
}

impl Encode for Anchor {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.block.encode_to(out);
        put_seq(out, &self.receipts);
        self.certificate.encode_to(out);
        put_seq(out, &self.epochs);
    }
}

impl Decode for Anchor {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let block = Block::decode_from(r)?;
        let txs_max = r.limits().block_txs_max;
        Ok(Anchor {
            block,
            receipts: r.seq(txs_max, 1, "receipts", Receipt::decode_from)?,
            certificate: CommitCertificate::decode_from(r)?,
            epochs: r.seq(EPOCHS_MAX, 1, "epochs", EpochLink::decode_from)?,
        })
    }
}

/// A chunk: its entries, each a state key and its value.
pub fn encode_chunk(entries: &[(StateKey, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    len.encode_to(&mut out);
    for (key, value) in entries {
        key.encode_to(&mut out);
        put_bytes(&mut out, value);
    }
    out
}

/// [`encode_chunk`]'s inverse, bounded by `limits` (whole chunk) and
/// `value_bytes_max` (each value).
pub fn decode_chunk(
    bytes: &[u8],
    limits: &Limits,
    value_bytes_max: usize,
) -> Result<Vec<(StateKey, Vec<u8>)>, DecodeError> {
    if bytes.len() > limits.input_bytes_max {
        return Err(DecodeError::InputTooLong {
            len: bytes.len(),
            max: limits.input_bytes_max,
        });
    }
    let mut r = Reader::new(bytes, limits);
    // An entry takes at least a namespace tag, a key length and a value
    // length.
    let entries = r.seq(usize::MAX, 9, "chunk entries", |r| {
        Ok((
            StateKey::decode_from(r)?,
            r.bytes(value_bytes_max, "value")?,
        ))
    })?;
    r.finish()?;
    Ok(entries)
}

/// Limits for reading a snapshot's index (manifest and anchor).
pub fn index_limits() -> Limits {
    Limits {
        input_bytes_max: 1 << 30,
        ..Limits::DEFAULT
    }
}

/// Limits for reading one chunk.
pub fn chunk_limits() -> Limits {
    Limits {
        input_bytes_max: CHUNK_BYTES_MAX,
        ..Limits::DEFAULT
    }
}
