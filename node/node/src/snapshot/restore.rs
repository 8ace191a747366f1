//! Checking a snapshot file against the genesis and importing it into an
//! empty data dir (`stele-node snapshot import`): everything it holds is
//! checked the way snapshot sync checks what peers send (ADR 0012) before
//! the node may use it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use stele_state::State;
use stele_types::codec::{Decode, Reader};
use stele_types::proof::value_hash;
use stele_types::snapshot::Cut;
use stele_types::{Hash, keccak256, list_root};

use super::SnapshotError;
use super::create::{INDEX_FILE, chunk_file};
use super::format::{
    Anchor, CHUNK_BYTES_MAX, END_MAGIC, FORMAT_VERSION, MAGIC, Manifest, PartEntry, chunk_limits,
    decode_chunk, index_limits,
};
use crate::genesis::Genesis;
use crate::store::{EpochRecord, put_block, put_blocks_from, put_epoch};

/// What an import made.
#[derive(Debug, Clone)]
pub struct Imported {
    pub height: u64,
    pub state_root: Hash,
    pub entries: u64,
    pub epoch: u64,
}

/// Checks `anchor` against the genesis and `manifest`: the chain of
/// epochs from the genesis set, each certified by the set before it, and
/// block H certified by its epoch's set, naming the manifest's root.
pub fn check_anchor(
    genesis: &Genesis,
    manifest: &Manifest,
    anchor: &Anchor,
) -> Result<(), SnapshotError> {
    let bad = |why: String| Err(SnapshotError::Anchor(why));
    let header = &anchor.block.header;
    if manifest.chain_id != genesis.chain_id || header.chain_id != genesis.chain_id {
        return bad(format!(
            "the snapshot is of chain {}, this genesis is chain {}",
            manifest.chain_id, genesis.chain_id
        ));
    }
    if header.height != manifest.height
        || anchor.block.hash() != manifest.block_hash
        || header.state_root != manifest.state_root
    {
        return bad("block H is not the one the manifest names".into());
    }
    if anchor.block.compute_tx_root() != header.tx_root {
        return bad("block H's transactions do not match its header".into());
    }
    let receipts: Vec<Hash> = anchor.receipts.iter().map(|r| r.hash()).collect();
    if receipts.len() != anchor.block.txs.len() || list_root(&receipts) != header.receipts_root {
        return bad("block H's receipts do not match its header".into());
    }
    let mut set = genesis.validators.clone();
    let mut epoch = 0;
    for link in &anchor.epochs {
        let (record, end) = (&link.record, &link.header);
        if record.epoch != epoch + 1
            || end.epoch != epoch
            || end.chain_id != genesis.chain_id
            || end.height.checked_add(1) != Some(record.start_height)
            || record.start_height > header.height
        {
            return bad(format!(
                "epoch {} does not follow epoch {epoch}",
                record.epoch
            ));
        }
        link.certificate
            .verify_header(end, &set)
            .map_err(|e| SnapshotError::Anchor(format!("the end of epoch {epoch}: {e}")))?;
        if end.next_validators_hash != record.validators.hash() {
            return bad(format!(
                "the end of epoch {epoch} names another set than epoch {}'s",
                record.epoch
            ));
        }
        set = record.validators.clone();
        epoch = record.epoch;
    }
    if header.epoch != epoch {
        return bad(format!(
            "block H is of epoch {}, the epochs given end at {epoch}",
            header.epoch
        ));
    }
    anchor
        .certificate
        .verify_header(header, &set)
        .map_err(|e| SnapshotError::Anchor(format!("block H: {e}")))
}

/// A snapshot's index: its manifest, then its anchor.
pub fn decode_index(bytes: &[u8]) -> Result<(Manifest, Anchor), SnapshotError> {
    let limits = index_limits();
    if bytes.len() > limits.input_bytes_max {
        return Err(SnapshotError::Truncated);
    }
    let mut r = Reader::new(bytes, &limits);
    let manifest = Manifest::decode_from(&mut r)?;
    let anchor = Anchor::decode_from(&mut r)?;
    r.finish()?;
    Ok((manifest, anchor))
}

/// Reads the manifest and anchor at the end of `file`; returns them with
/// the offset of the first chunk.
fn read_index(file: &mut File) -> Result<(Manifest, Anchor, u64), SnapshotError> {
    let mut head = [0u8; 12];
    file.read_exact(&mut head)?;
    if &head[..8] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::Version(version));
    }
    let len = file.seek(SeekFrom::End(0))?;
    if len < 12 + 16 {
        return Err(SnapshotError::NotASnapshot);
    }
    file.seek(SeekFrom::End(-16))?;
    let mut tail = [0u8; 16];
    file.read_exact(&mut tail)?;
    if &tail[8..] != END_MAGIC {
        return Err(SnapshotError::Truncated);
    }
    let index_len = u64::from_le_bytes(tail[..8].try_into().unwrap_or_default());
    let limits = index_limits();
    let index_start = (len - 16)
        .checked_sub(index_len)
        .filter(|s| *s >= 12 && index_len <= limits.input_bytes_max as u64)
        .ok_or(SnapshotError::Truncated)?;
    file.seek(SeekFrom::Start(index_start))?;
    let mut index = vec![0u8; index_len as usize];
    file.read_exact(&mut index)?;
    let (manifest, anchor) = decode_index(&index)?;
    // Lengths the file names: summed without overflow.
    let chunks = manifest
        .parts
        .iter()
        .try_fold(12u64, |sum, p| sum.checked_add(p.chunk_bytes));
    if chunks != Some(index_start) {
        return Err(SnapshotError::Truncated);
    }
    Ok((manifest, anchor, 12))
}

/// Checks the snapshot in `file` against `genesis` and imports it into
/// `state`, which must have no version yet: the state at H, block H with
/// its receipts and certificate, and the epoch history.
pub fn import(
    state: &mut State,
    genesis: &Genesis,
    file: &Path,
) -> Result<Imported, SnapshotError> {
    let mut f = File::open(file)?;
    let (manifest, anchor, first) = read_index(&mut f)?;
    f.seek(SeekFrom::Start(first))?;
    import_parts(state, genesis, &manifest, &anchor, |index, entry| {
        let len = usize::try_from(entry.chunk_bytes)
            .ok()
            .filter(|l| *l <= CHUNK_BYTES_MAX)
            .ok_or(SnapshotError::Chunk {
                index,
                reason: format!("{} bytes, over the maximum", entry.chunk_bytes),
            })?;
        let mut bytes = vec![0u8; len];
        f.read_exact(&mut bytes)?;
        Ok(bytes)
    })
}

/// [`import`] from a snapshot folder (`index` and `chunk-N` files), as a
/// node keeps them and a joining node downloads them.
pub fn import_folder(
    state: &mut State,
    genesis: &Genesis,
    dir: &Path,
) -> Result<Imported, SnapshotError> {
    let (manifest, anchor) = decode_index(&std::fs::read(dir.join(INDEX_FILE))?)?;
    import_parts(state, genesis, &manifest, &anchor, |index, _| {
        Ok(std::fs::read(dir.join(chunk_file(index)))?)
    })
}

/// Checks the snapshot (`manifest`, `anchor`, and each chunk `chunk`
/// gives) against `genesis` and imports it into `state`.
pub fn import_parts(
    state: &mut State,
    genesis: &Genesis,
    manifest: &Manifest,
    anchor: &Anchor,
    mut chunk: impl FnMut(usize, &PartEntry) -> Result<Vec<u8>, SnapshotError>,
) -> Result<Imported, SnapshotError> {
    check_anchor(genesis, manifest, anchor)?;
    let cut = Cut {
        parts: manifest.parts.iter().map(|p| p.part).collect(),
    };
    cut.verify(&manifest.state_root)
        .map_err(|e| SnapshotError::Manifest(e.to_string()))?;
    let limits = chunk_limits();
    let value_bytes_max = state.config().value_bytes_max;
    let mut importer = state.import(manifest.height)?;
    for (index, entry) in manifest.parts.iter().enumerate() {
        let bytes = chunk(index, entry)?;
        let entries = check_chunk(entry, &bytes, &limits, value_bytes_max)
            .map_err(|reason| SnapshotError::Chunk { index, reason })?;
        for (key, value) in entries {
            importer.push(key, value)?;
        }
    }
    let entries = importer.entries;
    // With the version, in its one synced write: block H, the epoch
    // history, and the genesis this data dir belongs to.
    let root = importer.finish_with(|state, batch, root| {
        if root != manifest.state_root {
            return Err(SnapshotError::Manifest(format!(
                "the entries make root {root}, not {}",
                manifest.state_root
            )));
        }
        put_block(
            state,
            batch,
            &anchor.block,
            &anchor.receipts,
            &anchor.certificate,
        )?;
        put_epoch(
            state,
            batch,
            &EpochRecord {
                epoch: 0,
                start_height: 1,
                validators: genesis.validators.clone(),
                decided_at: 0,
            },
        )?;
        for link in &anchor.epochs {
            put_epoch(state, batch, &link.record)?;
        }
        put_blocks_from(state, batch, manifest.height)?;
        crate::node::record_genesis_hash(state, batch, &genesis.hash())?;
        Ok(())
    })?;
    Ok(Imported {
        height: manifest.height,
        state_root: root,
        entries,
        epoch: anchor.block.header.epoch,
    })
}

/// Checks one chunk's bytes against its part and returns its entries.
pub fn check_chunk(
    entry: &PartEntry,
    bytes: &[u8],
    limits: &stele_types::Limits,
    value_bytes_max: usize,
) -> Result<Vec<(stele_state::StateKey, Vec<u8>)>, String> {
    if bytes.len() as u64 != entry.chunk_bytes || keccak256(bytes) != entry.chunk_hash {
        return Err("its bytes are not the ones the manifest names".into());
    }
    let entries = decode_chunk(bytes, limits, value_bytes_max).map_err(|e| e.to_string())?;
    let leaves: Vec<(Hash, Hash)> = entries
        .iter()
        .map(|(k, v)| (k.hash(), value_hash(v)))
        .collect();
    entry.part.check(&leaves).map_err(|e| e.to_string())?;
    Ok(entries)
}
