//! Making a snapshot of the state's latest version and writing it as one
//! file (`stele-node snapshot export`).

use std::io::Write;
use std::ops::Range;

use stele_state::{CF_FLAT, State, StateKey, state_key_of_flat};
use stele_types::codec::Encode;
use stele_types::snapshot::{Cut, Part, Prefix, subtree_hash};
use stele_types::{Hash, keccak256};

use super::SnapshotError;
use super::format::{
    Anchor, CHUNK_BYTES_TARGET, CHUNK_ENTRIES_TARGET, END_MAGIC, EpochLink, FORMAT_VERSION, MAGIC,
    Manifest, PartEntry, encode_chunk,
};
use crate::store::BlockReader;

/// One state entry, as the cut needs it: its key hash, value hash, flat
/// key (to read the value again) and value length.
struct Leaf {
    hash: Hash,
    value_hash: Hash,
    flat: Vec<u8>,
    value_len: usize,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub manifest: Manifest,
    pub entries: u64,
    pub bytes: u64,
}

/// Writes a snapshot of `state`'s latest version to `out` (the file
/// format of `docs/snapshot-format.md`). The state must not change
/// meanwhile: the caller holds it (a stopped node's home, locked).
pub fn export(state: &State, out: &mut impl Write) -> Result<Exported, SnapshotError> {
    let height = state.latest_version().unwrap_or(0);
    if height == 0 {
        return Err(SnapshotError::NothingCommitted);
    }
    let reader = BlockReader::new(state);
    let committed = reader
        .committed(height)?
        .ok_or(SnapshotError::MissingBlock { height })?;
    let anchor = Anchor {
        epochs: epoch_links(&reader, height)?,
        block: committed.block,
        receipts: committed.receipts,
        certificate: committed.certificate,
    };
    let header = &anchor.block.header;

    let leaves = leaves(state)?;
    let mut ranges = Vec::new();
    cut(&leaves, 0..leaves.len(), Prefix::ALL, &mut ranges);
    let flat = state.column_family(CF_FLAT)?;
    let mut written = MAGIC.len() as u64 + 4;
    out.write_all(MAGIC)?;
    out.write_all(&FORMAT_VERSION.to_le_bytes())?;
    let mut parts = Vec::with_capacity(ranges.len());
    for (prefix, range) in ranges {
        let pairs: Vec<(Hash, Hash)> = leaves[range.clone()]
            .iter()
            .map(|l| (l.hash, l.value_hash))
            .collect();
        let part = Part {
            prefix,
            leaves: pairs.len() as u64,
            hash: subtree_hash(&pairs, usize::from(prefix.bits())),
        };
        let mut entries: Vec<(StateKey, Vec<u8>)> = Vec::with_capacity(pairs.len());
        for leaf in &leaves[range] {
            let value = state
                .db()
                .get_cf(flat, &leaf.flat)
                .map_err(stele_state::StateError::from)?
                .ok_or(SnapshotError::FlatChanged)?;
            let key = state_key_of_flat(&leaf.flat).ok_or(SnapshotError::FlatChanged)?;
            entries.push((key, value));
        }
        let chunk = encode_chunk(&entries);
        out.write_all(&chunk)?;
        written += chunk.len() as u64;
        parts.push(PartEntry {
            part,
            chunk_bytes: chunk.len() as u64,
            chunk_hash: keccak256(&chunk),
        });
    }
    let manifest = Manifest {
        chain_id: header.chain_id,
        height,
        block_hash: anchor.block.hash(),
        state_root: header.state_root,
        parts,
    };
    // What the state and its flat index hold must be the certified state.
    let cut = Cut {
        parts: manifest.parts.iter().map(|p| p.part).collect(),
    };
    cut.verify(&header.state_root)
        .map_err(|e| SnapshotError::Disagrees(e.to_string()))?;
    let mut index = manifest.to_bytes();
    anchor.encode_to(&mut index);
    out.write_all(&index)?;
    out.write_all(&(index.len() as u64).to_le_bytes())?;
    out.write_all(END_MAGIC)?;
    out.flush()?;
    written += index.len() as u64 + 8 + END_MAGIC.len() as u64;
    Ok(Exported {
        manifest,
        entries: leaves.len() as u64,
        bytes: written,
    })
}

/// Every entry of the flat index (the whole state), sorted by key hash.
fn leaves(state: &State) -> Result<Vec<Leaf>, SnapshotError> {
    let flat = state.column_family(CF_FLAT)?;
    let mut out = Vec::new();
    for item in state
        .db()
        .iterator_cf(flat, stele_state::rocksdb::IteratorMode::Start)
    {
        let (key, value) = item.map_err(stele_state::StateError::from)?;
        let state_key = state_key_of_flat(&key).ok_or(SnapshotError::FlatChanged)?;
        out.push(Leaf {
            hash: state_key.hash(),
            value_hash: keccak256(&value),
            flat: key.to_vec(),
            value_len: value.len(),
        });
    }
    out.sort_unstable_by_key(|l| l.hash);
    Ok(out)
}

/// Splits `leaves[range]` (all under `prefix`) into parts of at most
/// [`CHUNK_ENTRIES_TARGET`] entries and [`CHUNK_BYTES_TARGET`] bytes,
/// halving the prefix where a part holds more.
fn cut(
    leaves: &[Leaf],
    range: Range<usize>,
    prefix: Prefix,
    out: &mut Vec<(Prefix, Range<usize>)>,
) {
    let mine = &leaves[range.clone()];
    let bytes: usize = mine.iter().map(|l| l.flat.len() + l.value_len).sum();
    let small = mine.len() <= CHUNK_ENTRIES_TARGET && bytes <= CHUNK_BYTES_TARGET;
    match prefix.halves() {
        Some((left, right)) if !small && mine.len() > 1 => {
            let split = range.start + mine.partition_point(|l| left.contains(&l.hash));
            cut(leaves, range.start..split, left, out);
            cut(leaves, split..range.end, right, out);
        }
        _ => out.push((prefix, range)),
    }
}

/// The epochs after the genesis's up to `height`'s, each with the block
/// that ended the one before it.
fn epoch_links(reader: &BlockReader<'_>, height: u64) -> Result<Vec<EpochLink>, SnapshotError> {
    let mut links = Vec::new();
    let Some(mut record) = reader.epoch_containing(1)? else {
        return Err(SnapshotError::NoEpochHistory);
    };
    while let Some(next) = reader.epoch_after(&record)? {
        if next.start_height > height {
            break;
        }
        let end = next.start_height - 1;
        let header = reader
            .block(end)?
            .ok_or(SnapshotError::MissingBlock { height: end })?
            .header;
        let certificate = reader
            .certificate(end)?
            .ok_or(SnapshotError::MissingBlock { height: end })?;
        links.push(EpochLink {
            record: next.clone(),
            header,
            certificate,
        });
        record = next;
    }
    Ok(links)
}
