//! The block store: blocks, transaction locations, receipts and commit
//! certificates in their own column families of the state's RocksDB, written
//! in the same synced batch as the block's state version, so a crash never
//! leaves a block without its state or a state version without its block.

use stele_state::rocksdb::WriteBatch;
use stele_state::{CommittedView, PreparedCommit, State, StateError, WriteSet};
use stele_types::codec::{Decode, DecodeError, Encode, Reader, put_seq};
use stele_types::{Block, CommitCertificate, Hash, Limits, Receipt, decode};
use thiserror::Error;

use crate::index;

pub const CF_BLOCKS: &str = "blocks";
pub const CF_BLOCK_INDEX: &str = "block_index";
pub const CF_TX_INDEX: &str = "tx_index";
pub const CF_RECEIPTS: &str = "receipts";
pub const CF_CERTS: &str = "certs";

/// The column families the block store adds to the state's database, its
/// optional index's included (`crate::index`; opened whether it is on or
/// not).
pub const BLOCK_STORE_CFS: [&str; 11] = [
    CF_BLOCKS,
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
    finish_block_commit(state, prepared, block, receipts, certificate)
}

/// [`prepare_block_commit`] for a state commit prepared earlier (when the
/// block was validated) on the same committed version: checks the block,
/// its receipts, certificate and root, and adds the block store writes.
pub fn finish_block_commit(
    state: &State,
    mut prepared: PreparedCommit,
    block: &Block,
    receipts: &[Receipt],
    certificate: &CommitCertificate,
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
    put_block(state, prepared.batch_mut(), block, receipts, certificate)?;
    Ok(prepared)
}

fn put_block(
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
                Ok(state.db().get_cf(cf, key).map_err(StateError::from)?)
            }
            Source::View(view) => Ok(view.get_cf(cf, key)?),
        }
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
