//! A chain's data dir made up for benchmarks and tests: the state of many
//! accounts at a height, the block of that height certified by the
//! genesis's validators (the caller holds their keys), the blocks below it
//! pruned, and the node's snapshot of that height kept, as a node that ran
//! the chain that long with `keep_blocks` on would hold it. Nothing here
//! executed a transaction: the accounts are written straight into the
//! state. Not for production use.

use std::path::Path;

use stele_exec::Account;
use stele_state::{StateKey, WriteSet};
use stele_types::codec::Encode;
use stele_types::{
    Address, Block, BlockHeader, CommitCertificate, CommitSignature, Hash, SecretKey, keccak256,
};

use super::{DirSink, Exported, SnapshotError, export};
use crate::genesis::Genesis;
use crate::node::NodeError;
use crate::store::{prepare_block_commit, put_blocks_from};

/// Why a made-up chain could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    #[error(transparent)]
    Node(Box<NodeError>),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl From<NodeError> for SyntheticError {
    fn from(e: NodeError) -> Self {
        SyntheticError::Node(Box::new(e))
    }
}

/// Accounts written per state version while filling the state.
const ACCOUNTS_PER_VERSION: u64 = 100_000;

/// The made-up account number `i`: its address.
pub fn account_address(i: u64) -> Address {
    let hash = keccak256(&i.to_le_bytes());
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash.0[..20]);
    Address(address)
}

/// Balance of every made-up account.
pub const ACCOUNT_BALANCE: u128 = 1_000;

/// Writes into `data_dir` (new) the database of a node of `genesis` whose
/// chain is at `height` (at least 2): the genesis state and `accounts`
/// made-up accounts ([`account_address`]), written over the versions
/// just below `height`; block `height`, empty, of epoch 0, signed by
/// `keys` (the genesis's validators, each in the set); the blocks below
/// it marked pruned. Returns block `height`'s state root.
pub fn write_chain(
    data_dir: &Path,
    genesis: &Genesis,
    keys: &[SecretKey],
    height: u64,
    accounts: u64,
) -> Result<Hash, SyntheticError> {
    let mut state = crate::node::open_database(data_dir, genesis)?;
    let versions = accounts.div_ceil(ACCOUNTS_PER_VERSION).max(1);
    // Versions height - versions .. height - 1 hold the accounts; at least
    // version 1 is left between them and the genesis.
    let first = height.saturating_sub(versions).max(1);
    let mut next = 0;
    for version in first..height {
        let end = if version + 1 == height {
            accounts
        } else {
            (next + ACCOUNTS_PER_VERSION).min(accounts)
        };
        let writes: WriteSet = (next..end)
            .map(|i| {
                let account = Account {
                    nonce: 0,
                    balance: ACCOUNT_BALANCE,
                    code_hash: None,
                };
                (
                    StateKey::account(&account_address(i)),
                    Some(account.to_bytes()),
                )
            })
            .collect();
        state.commit(version, &writes).map_err(NodeError::from)?;
        next = end;
    }
    let writes = WriteSet::new();
    let root = state
        .prepare_commit(height, &writes)
        .map_err(NodeError::from)?
        .root();
    let block = Block {
        header: BlockHeader {
            chain_id: genesis.chain_id,
            height,
            epoch: 0,
            view: 0,
            parent_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            state_root: root,
            receipts_root: Hash::ZERO,
            timestamp_ms: genesis.genesis_time_ms + height,
            proposer: genesis.validators.validators()[0].address,
            next_validators_hash: genesis.validators.hash(),
        },
        txs: Vec::new(),
    };
    let certificate = certify(genesis, keys, &block);
    let mut prepared = prepare_block_commit(&state, &block, &[], &certificate, &writes)
        .map_err(NodeError::from)?;
    let batch = prepared.batch_mut().map_err(NodeError::from)?;
    put_blocks_from(&state, batch, height).map_err(NodeError::from)?;
    state.apply(prepared).map_err(NodeError::from)?;
    Ok(root)
}

/// `block`'s commit certificate, signed by every key of `keys` that is in
/// the genesis's set.
fn certify(genesis: &Genesis, keys: &[SecretKey], block: &Block) -> CommitCertificate {
    let mut certificate = CommitCertificate {
        height: block.header.height,
        epoch: block.header.epoch,
        view: block.header.view,
        block_hash: block.hash(),
        signatures: Vec::new(),
    };
    let digest = certificate.digest(genesis.chain_id);
    let mut signatures: Vec<CommitSignature> = keys
        .iter()
        .filter_map(|key| {
            let index = genesis.validators.index_of(&key.address())?;
            Some(CommitSignature {
                validator: u32::try_from(index).ok()?,
                signature: key.sign_digest(&digest),
            })
        })
        .collect();
    signatures.sort_by_key(|s| s.validator);
    certificate.signatures = signatures;
    certificate
}

/// Makes the snapshot of the latest height of the node database in
/// `data_dir` into `data_dir/snapshots/<height>`, as the node keeps its
/// own, in chunks of `chunk_entries` entries.
pub fn keep_snapshot(
    data_dir: &Path,
    genesis: &Genesis,
    chunk_entries: usize,
) -> Result<Exported, SyntheticError> {
    let state = crate::node::open_database(data_dir, genesis)?;
    let view = state.view().ok_or(SnapshotError::NothingCommitted)?;
    let dir = crate::node::snapshots_dir(data_dir).join(view.version().to_string());
    let mut sink = DirSink::new(&dir)?;
    Ok(export(&view, &mut sink, chunk_entries)?)
}
