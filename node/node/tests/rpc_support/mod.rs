//! A real chain behind the RPC server: RocksDB state with the genesis
//! applied, the real executor and mempool, and a committer that executes
//! mempool transactions, signs a commit certificate with the validators'
//! keys, persists the block and publishes it as the node does.
#![allow(clippy::unwrap_used, dead_code)] // test set-up: a failure here is a test failure

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use stele_exec::*;
use stele_node::genesis::{Allocation, ChainParams, Genesis};
use stele_node::index::IndexConfig;
use stele_node::mempool::{AdmitError, BlockLimits, Mempool, MempoolConfig, verify_raw_as};
use stele_node::rpc::{
    NodeStatus, RpcConfig, RpcContext, RpcServer, StatusInfo, TxSubmitter, start,
};
use stele_node::sender_keys::SenderKeys;
use stele_node::store::{BLOCK_STORE_CFS, BlockReader, CommittedBlock, prepare_block_commit};
use stele_state::{State, StateConfig};
use stele_types::*;
use stele_vm::{EXEC_THREAD_STACK_BYTES, Vm, VmConfig};

pub const CHAIN: u64 = 4242;

pub use stele_fixtures::COUNTER_WAT;

pub fn key(n: u8) -> SecretKey {
    stele_fixtures::key(n.into())
}

/// Validator keys, in validator-set order.
pub fn validator_keys() -> Vec<SecretKey> {
    let mut keys: Vec<SecretKey> = (100..104).map(key).collect();
    keys.sort_by_key(|k| k.address());
    keys
}

/// The key of a validator of any epoch: keys 100 to 109.
pub fn key_of(address: &Address) -> SecretKey {
    (100..110)
        .map(key)
        .find(|k| k.address() == *address)
        .expect("validators' keys are keys 100 to 109")
}

pub fn validators() -> ValidatorSet {
    ValidatorSet::new(
        validator_keys()
            .iter()
            .map(|k| Validator {
                address: k.address(),
                public_key: k.public_key(),
                power: 1,
            })
            .collect(),
    )
    .unwrap()
}

pub fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN,
        genesis_time_ms: 1_700_000_000_000,
        validators: validators(),
        allocations: (1..=3)
            .map(|n| Allocation {
                address: key(n).address(),
                balance: 10u128.pow(24),
            })
            .collect(),
        params: ChainParams::default(),
    }
}

/// The mempool behind `send_transaction`.
pub struct Pool {
    pub mempool: Mutex<Mempool>,
    pub state: SharedState,
    pub sender_keys: SenderKeys,
}

impl Pool {
    fn view(&self) -> StateBase {
        StateBase::latest(&self.state, None)
    }
}

impl TxSubmitter for Pool {
    fn submit(&self, raw: &[u8], sender: Option<Address>) -> Result<Hash, AdmitError> {
        let mut mempool = self.mempool.lock().unwrap();
        let claim = sender.map(|s| (s, &self.sender_keys));
        let vtx = verify_raw_as(raw, mempool.config(), &Limits::default(), claim)?;
        let (hash, signer) = (vtx.hash, vtx.sender);
        mempool.insert(vtx, &self.view())?;
        if sender.is_some() {
            self.sender_keys.admitted(&signer);
        }
        Ok(hash)
    }

    fn pending(&self, hash: &Hash) -> Option<SignedTransaction> {
        self.mempool.lock().unwrap().get(hash).cloned()
    }

    fn pending_nonce(&self, address: &Address) -> u64 {
        self.mempool
            .lock()
            .unwrap()
            .pending_nonce(address, &self.view())
    }
}

pub struct Status {
    pub state: SharedState,
    pub pool: Arc<Pool>,
    /// What `peers_connected` says (3 unless a test changes it).
    pub peers: AtomicU64,
    /// The height the peers are at, for `/health` (0: none known).
    pub peer_height: AtomicU64,
}

impl NodeStatus for Status {
    fn status(&self) -> StatusInfo {
        let mempool = self.pool.mempool.lock().unwrap();
        StatusInfo {
            chain_id: CHAIN,
            height: self.state.read().unwrap().latest_version().unwrap_or(0),
            view: 0,
            peers_connected: self.peers.load(Ordering::Relaxed),
            syncing: false,
            mempool_txs: mempool.len() as u64,
            mempool_bytes: mempool.bytes() as u64,
            ..StatusInfo::default()
        }
    }

    fn peer_height(&self) -> Option<u64> {
        Some(self.peer_height.load(Ordering::Relaxed))
    }
}

pub struct TestNode {
    pub state: SharedState,
    pub executor: Arc<Executor>,
    pub pool: Arc<Pool>,
    pub status: Arc<Status>,
    pub commits: tokio::sync::broadcast::Sender<Arc<CommittedBlock>>,
    pub server: RpcServer,
    pub genesis: Genesis,
    /// The indexes each commit writes (both on, as on a full node, unless a
    /// test turns them off).
    pub index: Arc<Mutex<IndexConfig>>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    pub async fn start(config: RpcConfig) -> TestNode {
        TestNode::start_with_limits(config, stele_vm::VmLimits::LATEST).await
    }

    /// A node whose VM runs `limits` (older chains' limits allow receipts
    /// that newer ones refuse).
    pub async fn start_with_limits(config: RpcConfig, limits: stele_vm::VmLimits) -> TestNode {
        TestNode::start_with_state(config, limits, StateConfig::default()).await
    }

    /// A node whose state keeps the last `versions_kept` versions once
    /// pruned ([`TestNode::prune`]).
    pub async fn start_keeping(config: RpcConfig, versions_kept: u64) -> TestNode {
        let state = StateConfig {
            versions_kept,
            ..StateConfig::default()
        };
        TestNode::start_with_state(config, stele_vm::VmLimits::LATEST, state).await
    }

    async fn start_with_state(
        config: RpcConfig,
        limits: stele_vm::VmLimits,
        state_config: StateConfig,
    ) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let mut genesis = genesis();
        // The chain runs these limits: blocks execute under the genesis's
        // protocol (ADR 0011).
        genesis.params.vm_limits_version = limits.version;
        genesis.params.gas_schedule_version = stele_vm::GasSchedule::latest_for(&limits).version;
        let mut state =
            State::open_with_column_families(dir.path(), state_config, &BLOCK_STORE_CFS).unwrap();
        state.commit(0, &genesis.writes()).unwrap();
        stele_node::store::record_genesis_epoch(&state, &genesis.validators).unwrap();
        let state: SharedState = Arc::new(RwLock::new(state));
        let vm_config = VmConfig {
            gas: stele_vm::GasSchedule::latest_for(&limits),
            limits,
            // Node-local and slow to set up; results and gas do not depend on it.
            warm_slots: false,
            ..VmConfig::default()
        };
        let vm = Vm::new(vm_config.clone()).unwrap();
        let executor = Arc::new(
            Executor::new(
                vm,
                stele_exec::ExecutorConfig {
                    record_storage_writes: true,
                    ..genesis.executor_config()
                },
            )
            .upgradable(vm_config, stele_exec::ProtocolSupport::default()),
        );
        let pool = Arc::new(Pool {
            mempool: Mutex::new(Mempool::new(MempoolConfig::new(CHAIN))),
            state: state.clone(),
            sender_keys: SenderKeys::new(16),
        });
        let (commits, _) = tokio::sync::broadcast::channel(16);
        let status = Arc::new(Status {
            state: state.clone(),
            pool: pool.clone(),
            peers: AtomicU64::new(3),
            peer_height: AtomicU64::new(0),
        });
        let ctx = RpcContext {
            chain_id: CHAIN,
            genesis_hash: genesis.hash(),
            validators: genesis.validators.clone(),
            state: state.clone(),
            executor: executor.clone(),
            submitter: pool.clone(),
            status: status.clone(),
            commits: commits.clone(),
        };
        let config = RpcConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let server = start(config, ctx).await.unwrap();
        TestNode {
            state,
            executor,
            pool,
            status,
            commits,
            server,
            genesis,
            index: Arc::new(Mutex::new(IndexConfig {
                events: true,
                storage_history: true,
            })),
            _dir: dir,
        }
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }

    pub fn ws(&self) -> String {
        format!("ws://{}", self.server.local_addr())
    }

    pub fn height(&self) -> u64 {
        self.state.read().unwrap().latest_version().unwrap()
    }

    /// Executes the mempool's selection as the next block, certifies it
    /// with every validator's COMMIT signature, persists it and publishes
    /// it on `commits`.
    pub async fn commit(&self) -> Arc<CommittedBlock> {
        let state = self.state.clone();
        let executor = self.executor.clone();
        let pool = self.pool.clone();
        let commits = self.commits.clone();
        let time = self.genesis.genesis_time_ms;
        let index = *self.index.lock().unwrap();
        tokio::task::spawn_blocking(move || {
            std::thread::Builder::new()
                .stack_size(EXEC_THREAD_STACK_BYTES)
                .spawn(move || commit_block(&state, &executor, &pool, &commits, time, index))
                .unwrap()
                .join()
                .unwrap()
        })
        .await
        .unwrap()
    }
}

fn commit_block(
    state: &SharedState,
    executor: &Executor,
    pool: &Pool,
    commits: &tokio::sync::broadcast::Sender<Arc<CommittedBlock>>,
    genesis_time_ms: u64,
    index: IndexConfig,
) -> Arc<CommittedBlock> {
    let parent = state.read().unwrap().latest_version().unwrap();
    let base = StateBase::at(state, Some(parent), None);
    let cfg = executor.config().clone();
    let txs = pool.mempool.lock().unwrap().select(
        BlockLimits {
            gas_max: cfg.protocol.block_gas_max,
            bytes_max: cfg.protocol.block_bytes_max as usize,
            txs_max: cfg.protocol.block_txs_max as usize,
        },
        &base,
    );
    let height = parent + 1;
    // The epoch and set of this block, as its parent's state says (ADR
    // 0010); the set's members sign its certificate.
    let (info, set, _) = stele_exec::governance::epoch_on(&base).unwrap();
    let env = BlockEnv {
        height,
        timestamp_ms: genesis_time_ms + 1000 * height,
        proposer: set.primary(0).address,
    };
    let out = executor.execute_block(base, &env, &txs).unwrap();
    let next_validators_hash = stele_exec::governance::installed_set(&out.writes)
        .unwrap()
        .unwrap_or_else(|| set.clone())
        .hash();
    let mut guard = state.write().unwrap();
    let parent_hash = BlockReader::new(&guard)
        .block(parent)
        .unwrap()
        .map_or(Hash::ZERO, |b| b.hash());
    let state_root = guard.prepare_commit(height, &out.writes).unwrap().root();
    let block = Block {
        header: BlockHeader {
            chain_id: CHAIN,
            height,
            epoch: info.epoch,
            view: 0,
            parent_hash,
            tx_root: list_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
            state_root,
            receipts_root: out.receipts_root,
            timestamp_ms: env.timestamp_ms,
            proposer: env.proposer,
            next_validators_hash,
        },
        txs,
    };
    let mut certificate = CommitCertificate {
        height,
        epoch: info.epoch,
        view: 0,
        block_hash: block.hash(),
        signatures: vec![],
    };
    let digest = certificate.digest(CHAIN);
    certificate.signatures = set
        .validators()
        .iter()
        .enumerate()
        .map(|(i, v)| CommitSignature {
            validator: i as u32,
            signature: key_of(&v.address).sign_digest(&digest),
        })
        .collect();
    let mut prepared =
        prepare_block_commit(&guard, &block, &out.receipts, &certificate, &out.writes).unwrap();
    stele_node::index::put_block(
        &guard,
        prepared.batch_mut().unwrap(),
        &index,
        &block,
        &out.receipts,
        &out.storage_writes,
    )
    .unwrap();
    guard.apply(prepared).unwrap();
    drop(guard);
    let committed: Vec<(Hash, Address)> = block
        .txs
        .iter()
        .map(SignedTransaction::hash)
        .zip(out.senders.iter().copied())
        .collect();
    let view = StateBase::at(state, Some(height), None);
    pool.mempool
        .lock()
        .unwrap()
        .on_block_committed(height, &committed, &view);
    let cb = Arc::new(CommittedBlock {
        block,
        receipts: out.receipts,
        certificate,
    });
    // No subscriber is fine.
    let _ = commits.send(cb.clone());
    cb
}

/// A signed transaction from account `from`.
pub fn signed(from: u8, nonce: u64, gas_limit: u64, payload: TxPayload) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN,
        nonce,
        gas_limit,
        gas_price: 3,
        payload,
    }
    .sign(&key(from))
}

pub fn counter_code() -> Vec<u8> {
    wat::parse_str(COUNTER_WAT).unwrap()
}
