//! Opening a node's data dir: the database checked against the genesis it
//! belongs to and against the high-water mark (ADR 0007), and the VM warmed
//! with every stored contract.

use std::path::Path;
use std::time::Instant;

use stele_state::{Namespace, State, StateConfig, StateError, WalRecovery};
use stele_types::Hash;
use stele_vm::Vm;
use tracing::{info, warn};

use super::{CF_NODE_META, NodeError};
use crate::genesis::Genesis;
use crate::mark::{DataLoss, Mark};
use crate::store::{BLOCK_STORE_CFS, record_genesis_epoch};
use crate::wal::{CF_WAL, Wal};

const META_GENESIS: &[u8] = b"genesis_hash";

/// Stored contracts read per page when warming the VM.
const WARM_PAGE: usize = 8;

/// Loads every stored contract into the VM (from its artifact, or by
/// compiling it) before the node takes part in consensus, so that no block
/// or query after a restart, or after the artifact directory was wiped,
/// pays for an unpriced compile.
pub(super) fn warm_contracts(
    vm: &Vm<stele_exec::StateWorld>,
    state: &State,
) -> Result<(), NodeError> {
    warm_contracts_from(vm, |after| {
        state.iter_prefix(&Namespace::Code, b"", after, WARM_PAGE)
    })
}

/// [`warm_contracts`] from a committed view, which holds no lock: for a
/// VM warmed while the node runs (an upgrade's, before it activates).
pub(super) fn warm_contracts_in(
    vm: &Vm<stele_exec::StateWorld>,
    view: &stele_state::CommittedView,
) -> Result<(), NodeError> {
    warm_contracts_from(vm, |after| {
        view.iter_prefix(&Namespace::Code, b"", after, WARM_PAGE)
    })
}

fn warm_contracts_from(
    vm: &Vm<stele_exec::StateWorld>,
    page_after: impl Fn(Option<&[u8]>) -> Result<stele_state::Page, StateError>,
) -> Result<(), NodeError> {
    let started = Instant::now();
    let mut after: Option<Vec<u8>> = None;
    let mut count = 0usize;
    loop {
        let page = page_after(after.as_deref())?;
        for (hash, code) in &page.entries {
            // Every stored code passed validation at its deploy under this
            // chain's limits; one that fails now is reported and left to
            // fail its calls.
            if let Err(e) = vm.warm(code) {
                warn!(code_hash = %hex::encode(hash), error = %e, "stored contract does not load");
            }
            count += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if count > 0 {
        info!(
            contracts = count,
            ms = started.elapsed().as_millis() as u64,
            "contracts loaded into the VM"
        );
    }
    Ok(())
}

/// Opens `data_dir`'s database as the node does (every column family,
/// checked against `genesis`), for a stopped node's snapshot export.
pub fn open_database(data_dir: &Path, genesis: &Genesis) -> Result<State, NodeError> {
    open_state(data_dir, &StateConfig::default(), genesis, genesis.hash())
}

/// Opens a new data dir's database with no version in it, for a snapshot
/// import; refuses one that holds a chain.
pub fn open_empty_database(data_dir: &Path) -> Result<State, NodeError> {
    let db_dir = data_dir.join("db");
    std::fs::create_dir_all(&db_dir).map_err(|source| NodeError::CreateDir {
        path: db_dir.clone(),
        source,
    })?;
    let state = State::open_with_column_families(&db_dir, StateConfig::default(), &node_cfs())
        .map_err(|e| open_error(&db_dir, e))?;
    if let Some(height) = state.latest_version() {
        return Err(NodeError::NotEmpty {
            path: db_dir,
            height,
        });
    }
    Ok(state)
}

/// Adds to `batch` the record of the genesis a data dir belongs to.
pub fn record_genesis_hash(
    state: &State,
    batch: &mut stele_state::rocksdb::WriteBatch,
    hash: &Hash,
) -> Result<(), StateError> {
    batch.put_cf(state.column_family(CF_NODE_META)?, META_GENESIS, hash.0);
    Ok(())
}

/// Every column family of a node's database.
fn node_cfs() -> Vec<&'static str> {
    let mut cfs: Vec<&str> = BLOCK_STORE_CFS.to_vec();
    cfs.push(CF_WAL);
    cfs.push(CF_NODE_META);
    cfs
}

/// Initialises `data_dir` from `genesis` (as the first start would) and
/// returns the genesis state root.
pub fn init_data_dir(data_dir: &Path, genesis: &Genesis) -> Result<Hash, NodeError> {
    genesis.validate()?;
    let state = open_state(data_dir, &StateConfig::default(), genesis, genesis.hash())?;
    Ok(state.root(0)?)
}

fn open_state(
    data_dir: &Path,
    config: &StateConfig,
    genesis: &Genesis,
    genesis_hash: Hash,
) -> Result<State, NodeError> {
    let cfs = node_cfs();
    let db_dir = data_dir.join("db");
    std::fs::create_dir_all(&db_dir).map_err(|source| NodeError::CreateDir {
        path: db_dir.clone(),
        source,
    })?;
    let mut state = State::open_with_column_families(&db_dir, config.clone(), &cfs)
        .map_err(|e| open_error(&db_dir, e))?;
    let meta = state.column_family(CF_NODE_META)?;
    let recorded = state
        .db()?
        .get_cf(meta, META_GENESIS)
        .map_err(StateError::Db)?;
    match recorded {
        Some(bytes) => {
            let found = Hash(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| NodeError::CorruptGenesisRecord { len: bytes.len() })?,
            );
            if found != genesis_hash {
                return Err(NodeError::WrongGenesis {
                    found,
                    expected: genesis_hash,
                });
            }
        }
        None => {
            if state.latest_version().is_none() {
                state.commit(0, &genesis.writes())?;
            }
            let meta = state.column_family(CF_NODE_META)?;
            let mut wo = stele_state::rocksdb::WriteOptions::default();
            wo.set_sync(true);
            state
                .db()?
                .put_cf_opt(meta, META_GENESIS, genesis_hash.0, &wo)
                .map_err(StateError::Db)?;
        }
    }
    record_genesis_epoch(&state, &genesis.validators)?;
    Ok(state)
}

fn open_error(db_dir: &Path, e: StateError) -> NodeError {
    if e.is_locked() {
        NodeError::HomeInUse {
            lock: db_dir.join("LOCK"),
        }
    } else if e.is_corruption() {
        NodeError::DataLoss(vec![DataLoss::CorruptDatabase {
            detail: e.to_string(),
        }])
    } else {
        NodeError::State(e)
    }
}

/// Opens the state refusing a damaged RocksDB log ([`WalRecovery::Strict`]);
/// a database refused so is opened again without its damaged tail, and
/// the damage is returned for the caller to weigh against the high-water
/// mark (refusing the start if anything synced is gone).
pub(super) fn open_state_guarded(
    data_dir: &Path,
    config: &StateConfig,
    genesis: &Genesis,
    genesis_hash: Hash,
) -> Result<(State, Option<DataLoss>), NodeError> {
    let strict = StateConfig {
        wal_recovery: WalRecovery::Strict,
        ..config.clone()
    };
    match open_state(data_dir, &strict, genesis, genesis_hash) {
        Err(NodeError::DataLoss(mut found)) => {
            let lenient = StateConfig {
                wal_recovery: WalRecovery::DropDamagedTail,
                ..config.clone()
            };
            let state = open_state(data_dir, &lenient, genesis, genesis_hash)
                .map_err(|e| NodeError::DamagedBeyondRepair(Box::new(e)))?;
            Ok((state, found.pop()))
        }
        opened => opened.map(|state| (state, None)),
    }
}

/// Compares the database with the high-water mark in `data_dir`, adding
/// what it lost (or a damaged mark) to `losses`; returns the mark.
pub(super) fn check_mark(
    data_dir: &Path,
    state: &State,
    wal: &Wal,
    losses: &mut Vec<DataLoss>,
) -> Result<Option<Mark>, NodeError> {
    let height = state.latest_version().unwrap_or(0);
    match Mark::read(data_dir) {
        Ok(Some(mark)) => {
            losses.extend(mark.check(height, wal.next_index()));
            Ok(Some(mark))
        }
        Ok(None) => {
            if height > 0 || wal.next_index() > 0 {
                warn!(
                    height,
                    "no high-water mark beside this database (first start of this version?); starting one now"
                );
            }
            Ok(None)
        }
        Err(e @ crate::mark::MarkError::Corrupt { .. }) => {
            losses.push(DataLoss::CorruptMark {
                detail: e.to_string(),
            });
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
