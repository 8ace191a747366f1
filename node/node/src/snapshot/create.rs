//! Making a snapshot of a committed version: into one file (`stele-node
//! snapshot export`) or into a folder of chunk files (the snapshots a
//! node keeps for its peers).

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use stele_state::{CF_FLAT, CommittedView, StateKey, state_key_of_flat};
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

/// Where a snapshot's pieces go, in order: every chunk, then the index
/// (manifest and anchor).
pub trait Sink {
    fn chunk(&mut self, index: usize, bytes: &[u8]) -> Result<(), SnapshotError>;
    fn index(&mut self, bytes: &[u8]) -> Result<(), SnapshotError>;
}

/// One snapshot file (`docs/snapshot-format.md`).
#[derive(Debug)]
pub struct FileSink<W: Write> {
    out: W,
    started: bool,
}

impl<W: Write> FileSink<W> {
    pub fn new(out: W) -> Self {
        FileSink {
            out,
            started: false,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn start(&mut self) -> Result<(), SnapshotError> {
        if !self.started {
            self.out.write_all(MAGIC)?;
            self.out.write_all(&FORMAT_VERSION.to_le_bytes())?;
            self.started = true;
        }
        Ok(())
    }
}

impl<W: Write> Sink for FileSink<W> {
    fn chunk(&mut self, _: usize, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.start()?;
        Ok(self.out.write_all(bytes)?)
    }

    fn index(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.start()?;
        self.out.write_all(bytes)?;
        self.out.write_all(&(bytes.len() as u64).to_le_bytes())?;
        self.out.write_all(END_MAGIC)?;
        Ok(self.out.flush()?)
    }
}

/// A folder: `chunk-N` files and `index`, as a node keeps its snapshots.
#[derive(Debug)]
pub struct DirSink {
    dir: PathBuf,
}

impl DirSink {
    pub fn new(dir: &Path) -> Result<DirSink, SnapshotError> {
        std::fs::create_dir_all(dir)?;
        Ok(DirSink {
            dir: dir.to_path_buf(),
        })
    }
}

/// The name of chunk `index` in a snapshot folder.
pub fn chunk_file(index: usize) -> String {
    format!("chunk-{index:06}")
}

/// The name of the index in a snapshot folder.
pub const INDEX_FILE: &str = "index";

impl Sink for DirSink {
    fn chunk(&mut self, index: usize, bytes: &[u8]) -> Result<(), SnapshotError> {
        Ok(std::fs::write(self.dir.join(chunk_file(index)), bytes)?)
    }

    fn index(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let path = self.dir.join(INDEX_FILE);
        let mut f = std::fs::File::create(&path)?;
        f.write_all(bytes)?;
        Ok(f.sync_all()?)
    }
}

/// Copies the snapshot folder `dir` (as a node keeps them) into `sink`,
/// checking each chunk's length and hash against the manifest on the way
/// (a node may delete the folder meanwhile: that is an error, not a
/// damaged copy). `entries` is not counted (0).
pub fn export_folder(dir: &Path, sink: &mut impl Sink) -> Result<Exported, SnapshotError> {
    let index = std::fs::read(dir.join(INDEX_FILE))?;
    let (manifest, _) = super::decode_index(&index)?;
    let mut bytes = MAGIC.len() as u64 + 4;
    for (i, part) in manifest.parts.iter().enumerate() {
        let chunk = std::fs::read(dir.join(chunk_file(i)))?;
        if chunk.len() as u64 != part.chunk_bytes || keccak256(&chunk) != part.chunk_hash {
            return Err(SnapshotError::Chunk {
                index: i,
                reason: "its bytes are not the ones the manifest names".into(),
            });
        }
        sink.chunk(i, &chunk)?;
        bytes += chunk.len() as u64;
    }
    sink.index(&index)?;
    bytes += index.len() as u64 + 16;
    Ok(Exported {
        manifest,
        entries: 0,
        bytes,
    })
}

/// Makes a snapshot of `view`'s version into `sink`, with parts of at most
/// `chunk_entries` entries (and [`CHUNK_BYTES_TARGET`] bytes). The view
/// pins the version for as long as this takes.
pub fn export(
    view: &CommittedView,
    sink: &mut impl Sink,
    chunk_entries: usize,
) -> Result<Exported, SnapshotError> {
    let height = view.version();
    if height == 0 {
        return Err(SnapshotError::NothingCommitted);
    }
    let reader = BlockReader::from_view(view);
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

    let leaves = leaves(view)?;
    let mut ranges = Vec::new();
    cut(
        &leaves,
        0..leaves.len(),
        Prefix::ALL,
        chunk_entries.clamp(1, CHUNK_ENTRIES_TARGET),
        &mut ranges,
    );
    let mut written = MAGIC.len() as u64 + 4;
    let mut parts = Vec::with_capacity(ranges.len());
    for (index, (prefix, range)) in ranges.into_iter().enumerate() {
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
            let value = view
                .get_cf(CF_FLAT, &leaf.flat)?
                .ok_or(SnapshotError::FlatChanged)?;
            let key = state_key_of_flat(&leaf.flat).ok_or(SnapshotError::FlatChanged)?;
            entries.push((key, value));
        }
        let chunk = encode_chunk(&entries);
        sink.chunk(index, &chunk)?;
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
    sink.index(&index)?;
    written += index.len() as u64 + 8 + END_MAGIC.len() as u64;
    Ok(Exported {
        manifest,
        entries: leaves.len() as u64,
        bytes: written,
    })
}

/// Every entry of the flat index (the whole state), sorted by key hash.
fn leaves(view: &CommittedView) -> Result<Vec<Leaf>, SnapshotError> {
    // Every flat key is a namespace (at most 21 bytes) and a raw key of at
    // most 1,024 bytes: all are below this bound.
    let mut it = view.raw_iterator_cf(CF_FLAT, Vec::new(), vec![0xff; 2048])?;
    it.seek_to_first();
    let mut out = Vec::new();
    while let Some((key, value)) = it.item() {
        let state_key = state_key_of_flat(key).ok_or(SnapshotError::FlatChanged)?;
        out.push(Leaf {
            hash: state_key.hash(),
            value_hash: keccak256(value),
            flat: key.to_vec(),
            value_len: value.len(),
        });
        it.next();
    }
    it.status().map_err(stele_state::StateError::from)?;
    out.sort_unstable_by_key(|l| l.hash);
    Ok(out)
}

/// Splits `leaves[range]` (all under `prefix`) into parts of at most
/// `entries_max` entries and [`CHUNK_BYTES_TARGET`] bytes, halving the
/// prefix where a part holds more.
fn cut(
    leaves: &[Leaf],
    range: Range<usize>,
    prefix: Prefix,
    entries_max: usize,
    out: &mut Vec<(Prefix, Range<usize>)>,
) {
    let mine = &leaves[range.clone()];
    let bytes: usize = mine.iter().map(|l| l.flat.len() + l.value_len).sum();
    let small = mine.len() <= entries_max && bytes <= CHUNK_BYTES_TARGET;
    match prefix.halves() {
        Some((left, right)) if !small && mine.len() > 1 => {
            let split = range.start + mine.partition_point(|l| left.contains(&l.hash));
            cut(leaves, range.start..split, left, entries_max, out);
            cut(leaves, split..range.end, right, entries_max, out);
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
