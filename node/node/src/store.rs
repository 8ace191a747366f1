//! The block store: blocks, transaction locations, receipts and commit
//! certificates in their own column families of the state's RocksDB, written
//! in the same synced batch as the block's state version, so a crash never
//! leaves a block without its state or a state version without its block.

use stele_state::rocksdb::WriteBatch;
use stele_state::{CommittedView, PreparedCommit, State, StateError, WriteSet};
use stele_types::codec::{Decode, DecodeError, Encode, Reader, put_seq};
use stele_types::{Block, CommitCertificate, Hash, Limits, Receipt, ValidatorSet, decode};
use thiserror::Error;

use crate::index;
use stele_exec::governance;

pub const CF_BLOCKS: &str = "blocks";
pub const CF_BLOCK_INDEX: &str = "block_index";
pub const CF_TX_INDEX: &str = "tx_index";
pub const CF_RECEIPTS: &str = "receipts";
pub const CF_CERTS: &str = "certs";
/// The epochs the chain has had ([`EpochRecord`]), by first height.
pub const CF_EPOCHS: &str = "epochs";
/// The block store's own records: the lowest height whose block it keeps.
pub const CF_BLOCK_META: &str = "block_meta";
const META_BLOCKS_FROM: &[u8] = b"blocks_from";
/// Heights deleted per batch (and per hold of the state's lock) by block
/// pruning.
const PRUNE_CHUNK_HEIGHTS: u64 = 256;

/// The column families the block store adds to the state's database, its
/// optional index's included (`crate::index`; opened whether it is on or
/// not).
pub const BLOCK_STORE_CFS: [&str; 13] = [
    CF_BLOCKS,
    CF_EPOCHS,
    CF_BLOCK_META,
    CF_BLOCK_INDEX,
    CF_TX_INDEX,
    CF_RECEIPTS,
    CF_CERTS,
    index::CF_INDEX_META,
    index::CF_EVENT_LOGS,
    index::CF_EVENTS_BY_CONTRACT,
    index::CF_EVENTS_BY_TOPIC,
    index::CF_STORAGE_HISTORY,
    index::CF_STORAGE_WRITES,
];

/// Why a block-store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("stored {what} at height {height} is corrupt: {source}")]
    Corrupt {
        what: &'static str,
        height: u64,
        source: DecodeError,
    },
    #[error("block {height} executes to state root {computed}, its header says {header}")]
    StateRootMismatch {
        height: u64,
        header: Hash,
        computed: Hash,
    },
    #[error("block height {height} does not follow the committed height {committed:?}")]
    NotNext { height: u64, committed: Option<u64> },
    #[error("block has {txs} transactions but {receipts} receipts")]
    ReceiptCount { txs: usize, receipts: usize },
    #[error("certificate is for {cert}, the block is {block}")]
    CertificateMismatch { block: Hash, cert: Hash },
    #[error("block has {txs} transactions but storage writes for {writes}")]
    StorageWritesCount { txs: usize, writes: usize },
    #[error("the index's coverage record is corrupt ({len} bytes)")]
    CorruptIndexMeta { len: usize },
    #[error("an index row is corrupt ({len} bytes)")]
    CorruptIndexRow { len: usize },
    #[error("the epoch records: {0}")]
    Epoch(String),
    #[error("the state lock was poisoned by a panic")]
    Poisoned,
}

/// One epoch of the chain (ADR 0010): its first height, its validator set
/// and the block whose vote decided it (0 for the genesis epoch). Written
/// with the block that ends the epoch before it and kept for good, so that
/// the chain of sets can be served and followed from the genesis however
/// much state and block history was pruned (`get_validators` at an old
/// height; a snapshot's set chain, ADR 0012).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRecord {
    pub epoch: u64,
    pub start_height: u64,
    pub validators: ValidatorSet,
    pub decided_at: u64,
}

impl Encode for EpochRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.epoch.encode_to(out);
        self.start_height.encode_to(out);
        self.decided_at.encode_to(out);
        self.validators.encode_to(out);
    }
}

impl Decode for EpochRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EpochRecord {
            epoch: r.u64("epoch")?,
            start_height: r.u64("epoch start height")?,
            decided_at: r.u64("epoch decided at")?,
            validators: ValidatorSet::decode_from(r)?,
        })
    }
}

/// Adds `record` to `batch`.
pub fn put_epoch(
    state: &State,
    batch: &mut WriteBatch,
    record: &EpochRecord,
) -> Result<(), StoreError> {
    batch.put_cf(
        state.column_family(CF_EPOCHS)?,
        record.start_height.to_be_bytes(),
        record.to_bytes(),
    );
    Ok(())
}

/// Adds to `batch` that the store keeps blocks from `height` on (a node
/// that joined by a snapshot of `height`, or pruned below it).
pub fn put_blocks_from(
    state: &State,
    batch: &mut WriteBatch,
    height: u64,
) -> Result<(), StoreError> {
    batch.put_cf(
        state.column_family(CF_BLOCK_META)?,
        META_BLOCKS_FROM,
        height.to_le_bytes(),
    );
    Ok(())
}

/// Deletes the blocks below `below`, with their receipts, certificates,
/// transaction locations and index rows, and records that the store keeps
/// blocks from `below` on (block pruning, ADR 0012). The last block of
/// every epoch stays whole: with its certificate it is how anyone follows
/// the chain of validator sets from the genesis. Heights go in chunks, each
/// its own batch under a short hold of the state's lock; a crash in
/// between leaves the bound where the last chunk put it. Returns the
/// blocks deleted.
pub fn prune_blocks_below(state: &std::sync::RwLock<State>, below: u64) -> Result<u64, StoreError> {
    let from = {
        let state = state.read().map_err(|_| StoreError::Poisoned)?;
        BlockReader::new(&state).blocks_from()?
    };
    let mut deleted = 0;
    let mut at = from;
    while at < below {
        let end = below.min(at.saturating_add(PRUNE_CHUNK_HEIGHTS));
        let state = state.read().map_err(|_| StoreError::Poisoned)?;
        let reader = BlockReader::new(&state);
        let mut batch = WriteBatch::default();
        for height in at..end {
            let ends_epoch = reader
                .epoch_containing(height + 1)?
                .is_some_and(|e| e.start_height == height + 1);
            if ends_epoch {
                continue;
            }
            let Some(block) = reader.block(height)? else {
                continue;
            };
            let key = height.to_be_bytes();
            for tx in &block.txs {
                batch.delete_cf(state.column_family(CF_TX_INDEX)?, tx.hash().0);
            }
            batch.delete_cf(state.column_family(CF_BLOCK_INDEX)?, block.hash().0);
            for cf in [CF_BLOCKS, CF_RECEIPTS, CF_CERTS] {
                batch.delete_cf(state.column_family(cf)?, key);
            }
            deleted += 1;
        }
        put_blocks_from(&state, &mut batch, end)?;
        state.db()?.write(batch).map_err(StateError::from)?;
        at = end;
    }
    crate::index::prune_below(state, below)?;
    Ok(deleted)
}

/// Writes the genesis epoch's record (epoch 0 from height 1, `validators`
/// the genesis set) if the store lacks it: a new data dir, or one from
/// before the epoch history.
pub fn record_genesis_epoch(state: &State, validators: &ValidatorSet) -> Result<(), StoreError> {
    if BlockReader::new(state).epoch_containing(1)?.is_some() {
        return Ok(());
    }
    let mut batch = WriteBatch::default();
    put_epoch(
        state,
        &mut batch,
        &EpochRecord {
            epoch: 0,
            start_height: 1,
            validators: validators.clone(),
            decided_at: 0,
        },
    )?;
    let mut wo = stele_state::rocksdb::WriteOptions::default();
    wo.set_sync(true);
    state.db()?.write_opt(batch, &wo).map_err(StateError::Db)?;
    Ok(())
}

/// Where a transaction landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    pub height: u64,
    pub index: u32,
}

/// A committed block with everything stored beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedBlock {
    pub block: Block,
    pub receipts: Vec<Receipt>,
    pub certificate: CommitCertificate,
}

struct Receipts<'a>(&'a [Receipt]);

impl Encode for Receipts<'_> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_seq(out, self.0);
    }
}

fn decode_receipts(bytes: &[u8], limits: &Limits) -> Result<Vec<Receipt>, DecodeError> {
    let mut r = Reader::new(bytes, limits);
    let receipts = r.seq(limits.block_txs_max, 1, "receipts", Receipt::decode_from)?;
    r.finish()?;
    Ok(receipts)
}

/// Limits for reading back what this node wrote: generous, since the data
/// passed the wire limits once already.
fn storage_limits() -> Limits {
    Limits {
        input_bytes_max: usize::MAX,
        ..Limits::DEFAULT
    }
}

/// Prepares the commit of `block` at version `block.header.height`: the
/// state writes, then the block, its receipts, its certificate and the
/// transaction index, all in one batch. Checks the computed state root
/// against the header before anything is written.
pub fn prepare_block_commit(
    state: &State,
    block: &Block,
    receipts: &[Receipt],
    certificate: &CommitCertificate,
    writes: &WriteSet,
) -> Result<PreparedCommit, StoreError> {
    let height = block.header.height;
    let committed = state.latest_version();
    if committed.map(|c| c + 1) != Some(height) {
        return Err(StoreError::NotNext { height, committed });
    }
    let prepared = state.prepare_commit(height, writes)?;
    finish_block_commit(state, prepared, block, receipts, certificate, writes)
}

/// [`prepare_block_commit`] for a state commit prepared earlier (when the
/// block was validated) on the same committed version: checks the block,
/// its receipts, certificate and root, and adds the block store writes.
///
/// The last block of an epoch (its `writes` install the next set) also
/// writes the next epoch's [`EpochRecord`].
pub fn finish_block_commit(
    state: &State,
    mut prepared: PreparedCommit,
    block: &Block,
    receipts: &[Receipt],
    certificate: &CommitCertificate,
    writes: &WriteSet,
) -> Result<PreparedCommit, StoreError> {
    let height = block.header.height;
    let committed = state.latest_version();
    if prepared.version() != height || prepared.base() != committed {
        return Err(StoreError::NotNext { height, committed });
    }
    if receipts.len() != block.txs.len() {
        return Err(StoreError::ReceiptCount {
            txs: block.txs.len(),
            receipts: receipts.len(),
        });
    }
    let hash = block.hash();
    if certificate.block_hash != hash {
        return Err(StoreError::CertificateMismatch {
            block: hash,
            cert: certificate.block_hash,
        });
    }
    if prepared.root() != block.header.state_root {
        return Err(StoreError::StateRootMismatch {
            height,
            header: block.header.state_root,
            computed: prepared.root(),
        });
    }
    put_block(state, prepared.batch_mut()?, block, receipts, certificate)?;
    if let Some(record) = epoch_started(state, block, writes)? {
        put_epoch(state, prepared.batch_mut()?, &record)?;
    }
    Ok(prepared)
}

/// The epoch `block` is the last block before, if its writes install a new
/// set; the decision is read from the committed state (its parent).
fn epoch_started(
    state: &State,
    block: &Block,
    writes: &WriteSet,
) -> Result<Option<EpochRecord>, StoreError> {
    let epoch_error = |e: stele_vm::WorldError| StoreError::Epoch(e.to_string());
    let Some(validators) = governance::installed_set(writes).map_err(epoch_error)? else {
        return Ok(None);
    };
    let height = block.header.height;
    let decided_at = match state.latest_version() {
        Some(parent) => governance::pending_in(state, parent)
            .map_err(epoch_error)?
            .map_or(height, |p| p.decided_at),
        None => height,
    };
    Ok(Some(EpochRecord {
        epoch: block.header.epoch + 1,
        start_height: height + 1,
        validators,
        decided_at,
    }))
}

pub(crate) fn put_block(
    state: &State,
    batch: &mut WriteBatch,
    block: &Block,
    receipts: &[Receipt],
    certificate: &CommitCertificate,
) -> Result<(), StoreError> {
    let height = block.header.height.to_be_bytes();
    batch.put_cf(state.column_family(CF_BLOCKS)?, height, block.to_bytes());
    batch.put_cf(state.column_family(CF_BLOCK_INDEX)?, block.hash().0, height);
    batch.put_cf(
        state.column_family(CF_RECEIPTS)?,
        height,
        Receipts(receipts).to_bytes(),
    );
    batch.put_cf(
        state.column_family(CF_CERTS)?,
        height,
        certificate.to_bytes(),
    );
    let tx_index = state.column_family(CF_TX_INDEX)?;
    for (index, receipt) in receipts.iter().enumerate() {
        let mut loc = height.to_vec();
        loc.extend_from_slice(&(index as u32).to_be_bytes());
        batch.put_cf(tx_index, receipt.tx_hash.0, loc);
    }
    Ok(())
}

/// Read access to committed blocks.
///
/// Through a [`CommittedView`] ([`BlockReader::from_view`]) it reads the
/// snapshot the view pinned and holds no lock: use that for anything that
/// reads more than a block or two, so a commit never waits for it. Through
/// a `&State` it borrows (usually) the state's read guard.
pub struct BlockReader<'a> {
    source: Source<'a>,
    limits: Limits,
}

enum Source<'a> {
    State(&'a State),
    View(&'a CommittedView),
}

impl std::fmt::Debug for BlockReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockReader").finish_non_exhaustive()
    }
}

impl<'a> BlockReader<'a> {
    pub fn new(state: &'a State) -> Self {
        BlockReader {
            source: Source::State(state),
            limits: storage_limits(),
        }
    }

    /// A reader of the blocks committed up to `view`'s version, at its
    /// snapshot, without the state's lock.
    pub fn from_view(view: &'a CommittedView) -> Self {
        BlockReader {
            source: Source::View(view),
            limits: storage_limits(),
        }
    }

    /// The view this reader reads through, if it does.
    pub fn view(&self) -> Option<&'a CommittedView> {
        match self.source {
            Source::State(_) => None,
            Source::View(view) => Some(view),
        }
    }

    fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.source {
            Source::State(state) => {
                let cf = state.column_family(cf)?;
                Ok(state.db()?.get_cf(cf, key).map_err(StateError::from)?)
            }
            Source::View(view) => Ok(view.get_cf(cf, key)?),
        }
    }

    /// The lowest height whose block the store keeps (below it, only the
    /// epochs' last blocks): 1 unless the node pruned blocks or joined by
    /// snapshot.
    pub fn blocks_from(&self) -> Result<u64, StoreError> {
        Ok(self
            .get(CF_BLOCK_META, META_BLOCKS_FROM)?
            .and_then(|b| b.try_into().ok())
            .map_or(1, u64::from_le_bytes))
    }

    /// The latest committed block height (0 = genesis only).
    pub fn committed_height(&self) -> Option<u64> {
        match self.source {
            Source::State(state) => state.latest_version(),
            Source::View(view) => Some(view.version()),
        }
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.get(CF_BLOCKS, &height.to_be_bytes())?
            .map(|b| {
                decode(&b, &self.limits).map_err(|source| StoreError::Corrupt {
                    what: "block",
                    height,
                    source,
                })
            })
            .transpose()
    }

    pub fn height_of(&self, block_hash: &Hash) -> Result<Option<u64>, StoreError> {
        Ok(self
            .get(CF_BLOCK_INDEX, &block_hash.0)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    pub fn receipts(&self, height: u64) -> Result<Option<Vec<Receipt>>, StoreError> {
        self.get(CF_RECEIPTS, &height.to_be_bytes())?
            .map(|b| {
                decode_receipts(&b, &self.limits).map_err(|source| StoreError::Corrupt {
                    what: "receipts",
                    height,
                    source,
                })
            })
            .transpose()
    }

    pub fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StoreError> {
        self.get(CF_CERTS, &height.to_be_bytes())?
            .map(|b| {
                decode(&b, &self.limits).map_err(|source| StoreError::Corrupt {
                    what: "certificate",
                    height,
                    source,
                })
            })
            .transpose()
    }

    pub fn tx_location(&self, tx_hash: &Hash) -> Result<Option<TxLocation>, StoreError> {
        Ok(self.get(CF_TX_INDEX, &tx_hash.0)?.and_then(|b| {
            let height = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
            let index = u32::from_be_bytes(b.get(8..12)?.try_into().ok()?);
            Some(TxLocation { height, index })
        }))
    }

    /// The receipt of a committed transaction.
    pub fn receipt(&self, tx_hash: &Hash) -> Result<Option<(TxLocation, Receipt)>, StoreError> {
        let Some(loc) = self.tx_location(tx_hash)? else {
            return Ok(None);
        };
        let receipt = self
            .receipts(loc.height)?
            .and_then(|r| r.into_iter().nth(loc.index as usize));
        Ok(receipt.map(|r| (loc, r)))
    }

    /// The epoch the block at `height` belongs to: the last one starting at
    /// or below it.
    pub fn epoch_containing(&self, height: u64) -> Result<Option<EpochRecord>, StoreError> {
        self.seek_epoch(height, true)
    }

    /// The epoch after `epoch`'s, if the chain has reached it.
    pub fn epoch_after(&self, epoch: &EpochRecord) -> Result<Option<EpochRecord>, StoreError> {
        self.seek_epoch(epoch.start_height.saturating_add(1), false)
    }

    /// The epoch record starting at `height` or, `before`, the last one
    /// before it, else the first one after it.
    fn seek_epoch(&self, height: u64, before: bool) -> Result<Option<EpochRecord>, StoreError> {
        let mut it = match self.source {
            Source::State(state) => state.db()?.raw_iterator_cf(state.column_family(CF_EPOCHS)?),
            Source::View(view) => view.raw_iterator_cf(CF_EPOCHS, Vec::new(), vec![0xff; 9])?,
        };
        let key = height.to_be_bytes();
        if before {
            it.seek_for_prev(key);
        } else {
            it.seek(key);
        }
        it.item()
            .map(|(_, b)| {
                decode(b, &self.limits).map_err(|source| StoreError::Corrupt {
                    what: "epoch record",
                    height,
                    source,
                })
            })
            .transpose()
    }

    /// A block with its receipts and certificate.
    pub fn committed(&self, height: u64) -> Result<Option<CommittedBlock>, StoreError> {
        Ok(self.committed_sized(height)?.map(|(b, _)| b))
    }

    /// [`BlockReader::committed`] with the bytes it takes in the store
    /// (block, receipts and certificate encoded), a measure of the memory
    /// the decoded block holds.
    pub fn committed_sized(
        &self,
        height: u64,
    ) -> Result<Option<(CommittedBlock, usize)>, StoreError> {
        let key = height.to_be_bytes();
        let (Some(block), Some(receipts), Some(certificate)) = (
            self.get(CF_BLOCKS, &key)?,
            self.get(CF_RECEIPTS, &key)?,
            self.get(CF_CERTS, &key)?,
        ) else {
            return Ok(None);
        };
        let bytes = block.len() + receipts.len() + certificate.len();
        let corrupt = |what| {
            move |source| StoreError::Corrupt {
                what,
                height,
                source,
            }
        };
        let committed = CommittedBlock {
            block: decode(&block, &self.limits).map_err(corrupt("block"))?,
            receipts: decode_receipts(&receipts, &self.limits).map_err(corrupt("receipts"))?,
            certificate: decode(&certificate, &self.limits).map_err(corrupt("certificate"))?,
        };
        Ok(Some((committed, bytes)))
    }
}
