//! Block execution on the real VM against the real Merkle state on RocksDB:
//! transfers, deploys, calls, reverts, fees, block limits, the block store,
//! and determinism across fresh processes and data dirs.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::sync::{Arc, RwLock};

use stele_exec::*;
use stele_fixtures::COUNTER_WAT;
use stele_node::genesis::{Allocation, ChainParams, Genesis};
use stele_node::store::{BLOCK_STORE_CFS, BlockReader, prepare_block_commit};
use stele_state::{State, StateConfig};
use stele_types::*;
use stele_vm::{EXEC_THREAD_STACK_BYTES, Vm, VmConfig, World};

const CHAIN: u64 = 4242;

fn key(n: u8) -> SecretKey {
    stele_fixtures::key(n.into())
}

fn genesis() -> Genesis {
    let v = key(100);
    Genesis {
        chain_id: CHAIN,
        genesis_time_ms: 1_700_000_000_000,
        validators: ValidatorSet::new(vec![Validator {
            address: v.address(),
            public_key: v.public_key(),
            power: 1,
        }])
        .unwrap(),
        allocations: (1..=3)
            .map(|n| Allocation {
                address: key(n).address(),
                balance: 10u128.pow(24),
            })
            .collect(),
        params: ChainParams::default(),
    }
}

struct Chain {
    state: SharedState,
    executor: Executor,
    genesis: Genesis,
    _dir: Option<tempfile::TempDir>,
}

impl Chain {
    fn new() -> Chain {
        Chain::with_genesis(genesis())
    }

    fn with_genesis(genesis: Genesis) -> Chain {
        Chain::with_support(genesis, ProtocolSupport::default())
    }

    /// A chain whose executor builds the VM of any upgrade `support`
    /// allows, as a node's does.
    fn with_support(genesis: Genesis, support: ProtocolSupport) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let state =
            State::open_with_column_families(dir.path(), StateConfig::default(), &BLOCK_STORE_CFS)
                .unwrap();
        Chain::on(state, Some(dir), genesis, support)
    }

    /// A chain whose state is in memory, as the testkit's: blocks commit
    /// their state writes alone (there is no block store).
    fn in_memory() -> Chain {
        let state = State::in_memory(StateConfig::default());
        Chain::on(state, None, genesis(), ProtocolSupport::default())
    }

    fn on(
        mut state: State,
        dir: Option<tempfile::TempDir>,
        genesis: Genesis,
        support: ProtocolSupport,
    ) -> Chain {
        state.commit(0, &genesis.writes()).unwrap();
        let vm_config = VmConfig {
            epoch_ticker: false,
            warm_slots: false,
            ..genesis.vm_config().unwrap()
        };
        let vm = Vm::new(vm_config.clone()).unwrap();
        Chain {
            state: Arc::new(RwLock::new(state)),
            // As on a node keeping the storage-history index.
            executor: Executor::new(
                vm,
                ExecutorConfig {
                    record_storage_writes: true,
                    ..genesis.executor_config()
                },
            )
            .upgradable(vm_config, support),
            genesis,
            _dir: dir,
        }
    }

    fn height(&self) -> u64 {
        self.state.read().unwrap().latest_version().unwrap()
    }

    fn base(&self) -> StateBase {
        StateBase::at(&self.state, Some(self.height()), None)
    }

    fn env(&self) -> BlockEnv {
        BlockEnv {
            height: self.height() + 1,
            timestamp_ms: self.genesis.genesis_time_ms + 1000 * (self.height() + 1),
            proposer: key(100).address(),
        }
    }

    /// Executes and commits a block; returns its receipts.
    fn apply(&self, txs: Vec<SignedTransaction>) -> Result<Vec<Receipt>, ExecError> {
        self.apply_exec(txs).map(|out| out.receipts)
    }

    /// Executes and commits a block; returns the whole execution.
    fn apply_exec(&self, txs: Vec<SignedTransaction>) -> Result<BlockExecution, ExecError> {
        let env = self.env();
        let out = self.executor.execute_block(self.base(), &env, &txs)?;
        let mut state = self.state.write().unwrap();
        if state.is_in_memory() {
            state.commit(env.height, &out.writes).unwrap();
            return Ok(out);
        }
        let parent = state.latest_version().unwrap();
        let prepared_root = state
            .prepare_commit(env.height, &out.writes)
            .unwrap()
            .root();
        let block = Block {
            header: BlockHeader {
                chain_id: CHAIN,
                height: env.height,
                epoch: 0,
                view: 0,
                parent_hash: Hash([parent as u8; 32]),
                tx_root: list_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
                state_root: prepared_root,
                receipts_root: out.receipts_root,
                timestamp_ms: env.timestamp_ms,
                proposer: env.proposer,
                next_validators_hash: Hash::ZERO,
            },
            txs,
        };
        let cert = CommitCertificate {
            height: env.height,
            epoch: 0,
            view: 0,
            block_hash: block.hash(),
            signatures: vec![],
        };
        let prepared =
            prepare_block_commit(&state, &block, &out.receipts, &cert, &out.writes).unwrap();
        state.apply(prepared).unwrap();
        Ok(out)
    }

    fn state_root(&self) -> Hash {
        let state = self.state.read().unwrap();
        state.root(state.latest_version().unwrap()).unwrap()
    }

    fn account(&self, a: &Address) -> Account {
        StateWorld::new(self.base()).account(a).unwrap()
    }

    fn storage(&self, contract: &Address, k: &[u8]) -> Option<Vec<u8>> {
        StateWorld::new(self.base())
            .storage_get(contract, k)
            .unwrap()
    }
}

fn signed(from: u8, nonce: u64, payload: TxPayload) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN,
        nonce,
        gas_limit: 10_000_000,
        gas_price: 3,
        payload,
    }
    .sign(&key(from))
}

fn transfer(from: u8, nonce: u64, to: u8, amount: Amount) -> SignedTransaction {
    signed(
        from,
        nonce,
        TxPayload::Transfer {
            to: key(to).address(),
            amount,
        },
    )
}

fn call(from: u8, nonce: u64, contract: Address, method: &str) -> SignedTransaction {
    signed(
        from,
        nonce,
        TxPayload::Call {
            contract,
            method: method.into(),
            args: vec![],
            value: 0,
        },
    )
}

/// Account 1's first transaction: deploy the counter contract.
fn deploy_counter() -> SignedTransaction {
    signed(
        1,
        0,
        TxPayload::Deploy {
            code: wat::parse_str(COUNTER_WAT).unwrap(),
            init_args: vec![],
            value: 0,
        },
    )
}

/// The VM needs a deep native stack; tests run their body on such a thread.
fn on_exec_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(EXEC_THREAD_STACK_BYTES)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn supply(chain: &Chain, accounts: &[Address]) -> Amount {
    accounts.iter().map(|a| chain.account(a).balance).sum()
}

#[test]
fn transfers_move_value_pay_fees_to_the_proposer_and_keep_supply() {
    on_exec_stack(|| {
        let chain = Chain::new();
        let everyone: Vec<Address> = [1, 2, 3, 100].map(|n| key(n).address()).to_vec();
        let before = supply(&chain, &everyone);
        let receipts = chain
            .apply(vec![transfer(1, 0, 2, 500), transfer(1, 1, 3, 7)])
            .unwrap();
        assert!(receipts.iter().all(|r| r.status == ExecStatus::Success));
        let intrinsic = chain
            .executor
            .config()
            .protocol
            .intrinsic_gas(transfer(1, 0, 2, 500).to_bytes().len());
        assert_eq!(receipts[0].gas_used, intrinsic);
        let fees: Amount = receipts.iter().map(|r| Amount::from(r.gas_used) * 3).sum();
        let a1 = chain.account(&key(1).address());
        assert_eq!(a1.nonce, 2);
        assert_eq!(a1.balance, 10u128.pow(24) - 507 - fees);
        assert_eq!(
            chain.account(&key(2).address()).balance,
            10u128.pow(24) + 500
        );
        assert_eq!(chain.account(&key(100).address()).balance, fees);
        assert_eq!(supply(&chain, &everyone), before);
        let reader_state = chain.state.read().unwrap();
        let reader = BlockReader::new(&reader_state);
        let (loc, receipt) = reader.receipt(&receipts[1].tx_hash).unwrap().unwrap();
        assert_eq!((loc.height, loc.index), (1, 1));
        assert_eq!(receipt, receipts[1]);
        assert_eq!(reader.committed(1).unwrap().unwrap().block.txs.len(), 2);
    });
}

#[test]
fn deploy_call_and_revert_on_the_real_vm() {
    on_exec_stack(|| {
        let chain = Chain::new();
        let r = chain.apply(vec![deploy_counter()]).unwrap();
        assert_eq!(r[0].status, ExecStatus::Success, "{:?}", r[0]);
        let contract = r[0].contract_address.unwrap();
        assert_eq!(contract, Address::contract(&key(1).address(), 0));

        let r = chain
            .apply(vec![
                call(1, 1, contract, "increment"),
                call(2, 0, contract, "increment"),
            ])
            .unwrap();
        assert_eq!(r[1].status, ExecStatus::Success, "{:?}", r[1]);
        assert_eq!(r[1].output, 2u64.to_le_bytes().to_vec());
        assert_eq!(r[1].events.len(), 1);
        assert_eq!(r[1].events[0].contract, contract);
        assert_eq!(
            chain.storage(&contract, b"n"),
            Some(2u64.to_le_bytes().to_vec())
        );

        let before = chain.account(&key(2).address());
        let r = chain.apply(vec![call(2, 1, contract, "fail")]).unwrap();
        assert_eq!(r[0].status, ExecStatus::Reverted);
        assert_eq!(r[0].output, b"no".to_vec());
        // The revert rolled back the write but the gas was paid and the
        // nonce used.
        assert_eq!(
            chain.storage(&contract, b"n"),
            Some(2u64.to_le_bytes().to_vec())
        );
        let after = chain.account(&key(2).address());
        assert_eq!(after.nonce, before.nonce + 1);
        assert_eq!(
            after.balance,
            before.balance - Amount::from(r[0].gas_used) * 3
        );
        assert!(r[0].gas_used > chain.executor.config().protocol.tx_gas_base);
    });
}

/// Each transaction's storage writes are recorded with the hash of the
/// value it left, in block order; a reverted transaction and a plain
/// transfer wrote nothing; the receipts are those of the same block
/// without the record (nothing of it feeds a hash).
#[test]
fn each_transaction_records_the_storage_keys_it_wrote_and_did_not_revert() {
    on_exec_stack(|| {
        let chain = Chain::new();
        let out = chain.apply_exec(vec![deploy_counter()]).unwrap();
        assert_eq!(out.storage_writes, vec![vec![]]);
        let contract = out.receipts[0].contract_address.unwrap();
        let out = chain
            .apply_exec(vec![
                call(1, 1, contract, "increment"),
                transfer(3, 0, 1, 5),
                call(2, 0, contract, "fail"),
                call(2, 1, contract, "increment"),
            ])
            .unwrap();
        let wrote = |n: u64| {
            vec![StorageWrite {
                contract,
                key: b"n".to_vec(),
                value_hash: Some(stele_types::proof::value_hash(&n.to_le_bytes())),
            }]
        };
        assert_eq!(out.storage_writes, vec![wrote(1), vec![], vec![], wrote(2)]);
        let hashes: Vec<Hash> = out.receipts.iter().map(Receipt::hash).collect();
        assert_eq!(out.receipts_root, list_root(&hashes));
    });
}

/// A block executed on its parent's uncommitted writes (as a validator
/// does while the parent is in its commit round) gives the same receipts,
/// writes and state root as the same block executed after the parent
/// committed.
#[test]
fn a_block_on_its_uncommitted_parent_executes_as_after_the_parent_commits() {
    on_exec_stack(|| {
        let chain = Chain::new();
        let r = chain.apply(vec![deploy_counter()]).unwrap();
        let contract = r[0].contract_address.unwrap();

        // The parent: calls and transfers; the child spends what the parent
        // moved, uses the nonces after the parent's and reads its storage.
        let parent_txs = vec![
            call(1, 1, contract, "increment"),
            transfer(2, 0, 3, 1_000),
            transfer(3, 0, 4, 10u128.pow(20)),
        ];
        let child_txs = vec![
            call(2, 1, contract, "increment"),
            transfer(4, 0, 5, 1_400),
            call(1, 2, contract, "fail"),
        ];
        let parent_env = chain.env();
        let child_env = BlockEnv {
            height: parent_env.height + 1,
            timestamp_ms: parent_env.timestamp_ms + 1000,
            proposer: parent_env.proposer,
        };
        let parent = chain
            .executor
            .execute_block(chain.base(), &parent_env, &parent_txs)
            .unwrap();
        let layered = StateBase {
            pending: Some(Arc::new(parent.writes.clone())),
            ..chain.base()
        };
        let early = chain
            .executor
            .execute_block(layered, &child_env, &child_txs)
            .unwrap();
        let mut both = parent.writes.clone();
        both.extend(early.writes.clone());
        let early_root = chain
            .state
            .read()
            .unwrap()
            .prepare_commit(child_env.height, &both)
            .unwrap()
            .root();

        chain.apply(parent_txs).unwrap();
        let late = chain
            .executor
            .execute_block(chain.base(), &child_env, &child_txs)
            .unwrap();
        assert_eq!(early.receipts, late.receipts);
        assert_eq!(early.receipts_root, late.receipts_root);
        assert_eq!(early.writes, late.writes);
        let late_root = chain
            .state
            .read()
            .unwrap()
            .prepare_commit(child_env.height, &late.writes)
            .unwrap()
            .root();
        assert_eq!(early_root, late_root);
        assert_eq!(
            late.receipts[0].output,
            2u64.to_le_bytes().to_vec(),
            "the child saw the parent's increment"
        );
        assert_eq!(late.receipts[1].status, ExecStatus::Success);
    });
}

#[test]
fn invalid_transactions_and_oversized_blocks_make_the_block_invalid() {
    on_exec_stack(|| {
        let chain = Chain::new();
        let err = chain.apply(vec![transfer(1, 5, 2, 1)]).unwrap_err();
        assert!(
            matches!(
                err,
                ExecError::InvalidTx {
                    index: 0,
                    reason: TxRejection::NonceMismatch {
                        expected: 0,
                        got: 5
                    },
                    ..
                }
            ),
            "{err}"
        );
        let broke = transfer(50, 0, 2, 1);
        assert!(matches!(
            chain.apply(vec![broke]).unwrap_err(),
            ExecError::InvalidTx {
                reason: TxRejection::CannotPay { .. },
                ..
            }
        ));
        let mut greedy = transfer(1, 0, 2, 1).tx;
        greedy.gas_limit = chain.executor.config().protocol.block_gas_max + 1;
        assert!(matches!(
            chain.apply(vec![greedy.sign(&key(1))]).unwrap_err(),
            ExecError::TooMuchGas { .. }
        ));
        let mut stingy = transfer(1, 0, 2, 1).tx;
        stingy.gas_limit = 10;
        assert!(matches!(
            chain.apply(vec![stingy.sign(&key(1))]).unwrap_err(),
            ExecError::InvalidTx {
                reason: TxRejection::GasBelowIntrinsic { .. },
                ..
            }
        ));
        // Nothing was committed by the invalid blocks.
        assert_eq!(chain.height(), 0);
    });
}

/// Runs a fixed scenario in a fresh data dir and returns every block's
/// state root, receipts root and encoded receipts.
fn scenario() -> Vec<String> {
    let chain = Chain::new();
    let code = wat::parse_str(COUNTER_WAT).unwrap();
    let blocks = vec![
        vec![
            transfer(1, 0, 2, 11),
            signed(
                3,
                0,
                TxPayload::Deploy {
                    code,
                    init_args: vec![],
                    value: 0,
                },
            ),
        ],
        vec![
            call(2, 0, Address::contract(&key(3).address(), 0), "increment"),
            call(1, 1, Address::contract(&key(3).address(), 0), "fail"),
            transfer(2, 1, 1, 3),
        ],
    ];
    let mut out = Vec::new();
    for txs in blocks {
        let receipts = chain.apply(txs).unwrap();
        let state = chain.state.read().unwrap();
        let h = state.latest_version().unwrap();
        out.push(format!(
            "{} {} {}",
            h,
            state.root(h).unwrap(),
            hex::encode(
                &receipts
                    .iter()
                    .flat_map(|r| r.to_bytes())
                    .collect::<Vec<u8>>()
            )
        ));
    }
    out
}

const SCENARIO_ENV: &str = "STELE_EXEC_SCENARIO_CHILD";

/// The child side of the determinism test: prints the scenario's results.
#[test]
fn determinism_child() {
    if std::env::var_os(SCENARIO_ENV).is_none() {
        return;
    }
    for line in on_exec_stack(scenario) {
        println!("SCENARIO {line}");
    }
}

#[test]
fn same_blocks_give_the_same_bytes_in_fresh_processes() {
    let run = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "determinism_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SCENARIO_ENV, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            // libtest may print its own "test ... " prefix on the same line.
            .filter_map(|l| l.split_once("SCENARIO ").map(|(_, rest)| rest.to_owned()))
            .collect::<Vec<_>>()
    };
    let first = run();
    let second = run();
    assert_eq!(first.len(), 2);
    assert_eq!(first, second);
    assert_eq!(first, on_exec_stack(scenario));
}

const CRASH_ENV: &str = "STELE_STORE_CRASH_CHILD";

/// The child side of the crash test: commits blocks of transfers into the
/// data dir named by the environment until it is killed.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    on_exec_stack(move || {
        let genesis = genesis();
        let mut state =
            State::open_with_column_families(&dir, StateConfig::default(), &BLOCK_STORE_CFS)
                .unwrap();
        if state.latest_version().is_none() {
            state.commit(0, &genesis.writes()).unwrap();
        }
        let vm = Vm::new(VmConfig {
            epoch_ticker: false,
            warm_slots: false,
            ..VmConfig::default()
        })
        .unwrap();
        let chain = Chain {
            state: Arc::new(RwLock::new(state)),
            // As on a node keeping the storage-history index.
            executor: Executor::new(
                vm,
                ExecutorConfig {
                    record_storage_writes: true,
                    ..genesis.executor_config()
                },
            ),
            genesis,
            _dir: Some(tempfile::tempdir().unwrap()),
        };
        loop {
            let nonce = chain.account(&key(1).address()).nonce;
            let txs = (0..20).map(|i| transfer(1, nonce + i, 2, 1)).collect();
            chain.apply(txs).unwrap();
        }
    });
}

/// Kills a process that is committing blocks at arbitrary points, then
/// reopens the database: every committed height has its block, receipts and
/// certificate, the header's state root is the stored root, and there is no
/// block beyond the last state version.
#[test]
fn a_killed_node_never_leaves_a_block_without_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut last = 0;
    for round in 0..5u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--test-threads=1"])
            .env(CRASH_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400 + 137 * round));
        child.kill().unwrap();
        child.wait().unwrap();

        let state =
            State::open_with_column_families(dir.path(), StateConfig::default(), &BLOCK_STORE_CFS)
                .unwrap();
        let height = state.latest_version().unwrap_or(0);
        assert!(height >= last, "committed height went backwards");
        last = height;
        let reader = BlockReader::new(&state);
        for h in 1..=height {
            let committed = reader.committed(h).unwrap().unwrap();
            assert_eq!(committed.block.header.state_root, state.root(h).unwrap());
            assert_eq!(committed.receipts.len(), committed.block.txs.len());
        }
        assert!(reader.block(height + 1).unwrap().is_none());
    }
    assert!(last > 0, "the child never committed a block");
}

#[test]
fn the_mempool_checks_nonces_and_balances_against_committed_state() {
    use stele_node::mempool::{AdmitError, Mempool, MempoolConfig, VerifiedTx};
    on_exec_stack(|| {
        let chain = Chain::new();
        chain.apply(vec![transfer(1, 0, 2, 5)]).unwrap();
        let view = chain.base();
        let mut pool = Mempool::new(MempoolConfig::new(CHAIN));
        let used = VerifiedTx::new(transfer(1, 0, 2, 5), CHAIN).unwrap();
        assert_eq!(
            pool.insert(used, &view),
            Err(AdmitError::NonceTooLow {
                expected: 1,
                got: 0
            })
        );
        let next = VerifiedTx::new(transfer(1, 1, 2, 5), CHAIN).unwrap();
        assert!(pool.insert(next, &view).is_ok());
        let broke = VerifiedTx::new(transfer(77, 0, 2, 5), CHAIN).unwrap();
        assert!(matches!(
            pool.insert(broke, &view),
            Err(AdmitError::InsufficientFunds { balance: 0, .. })
        ));
        // What the pool selects executes as a valid block.
        let block = pool.select(
            stele_node::mempool::BlockLimits {
                gas_max: 10_000_000,
                bytes_max: 1 << 20,
                txs_max: 100,
            },
            &view,
        );
        assert_eq!(block.len(), 1);
        let receipts = chain.apply(block).unwrap();
        assert_eq!(receipts[0].status, ExecStatus::Success);
    });
}

#[test]
fn genesis_names_a_gas_schedule_and_limits_this_build_has() {
    let g = genesis();
    let vm = g.vm_config().unwrap();
    assert_eq!(vm.gas, stele_vm::GasSchedule::V5);
    assert_eq!(vm.limits, stele_vm::VmLimits::V4);
    // Chains that started on older schedules and limits keep running them.
    for (version, gas) in [
        (1, stele_vm::GasSchedule::V1),
        (2, stele_vm::GasSchedule::V2),
        (3, stele_vm::GasSchedule::V3),
        (4, stele_vm::GasSchedule::V4),
    ] {
        let mut old = genesis();
        old.params.gas_schedule_version = version;
        assert_eq!(old.vm_config().unwrap().gas, gas);
    }
    for (version, limits) in [
        (1, stele_vm::VmLimits::V1),
        (2, stele_vm::VmLimits::V2),
        (3, stele_vm::VmLimits::V3),
    ] {
        let mut old = genesis();
        old.params.vm_limits_version = version;
        assert_eq!(old.vm_config().unwrap().limits, limits);
    }
    let mut future = genesis();
    future.params.gas_schedule_version = 99;
    let e = future.validate().unwrap_err();
    assert_eq!(
        e.to_string(),
        "gas schedule version 99 is not supported (this node knows [1, 2, 3, 4, 5])"
    );
    assert!(future.vm_config().is_err());
    // V5 prices memory for frames within the resident pages: not with V2.
    let mut mismatched = genesis();
    mismatched.params.vm_limits_version = 2;
    assert_eq!(
        mismatched.validate().unwrap_err().to_string(),
        "gas schedule 5 prices memory for frames of at most 16 pages, but VM limits 2 allow 256"
    );
    mismatched.params.gas_schedule_version = 4;
    assert!(mismatched.validate().is_ok());
    let mut future = genesis();
    future.params.vm_limits_version = 7;
    assert!(matches!(
        future.validate(),
        Err(stele_node::genesis::GenesisError::VmLimits { got: 7, .. })
    ));
}

#[test]
fn a_sender_verified_at_admission_is_not_verified_again() {
    let chain = Chain::new();
    let tx = transfer(1, 0, 2, 5);
    let hash = tx.hash();
    // A signature that does not verify: only the cache can answer for it.
    let mut forged = tx.clone();
    forged.signature.0[64] = 7;
    assert!(chain.executor.sender(&forged, &hash).is_err());
    chain.executor.remember_sender(hash, key(1).address());
    assert_eq!(chain.executor.sender(&forged, &hash), Ok(key(1).address()));
}

/// Writes keys `k || i` (i as 4 little-endian bytes); deletes them, then
/// steps prefix iteration from the start again and again, then reverts.
const ITER_WAT: &str = include_str!("fixtures/iterate_over_deletes.wat");

fn call_with(
    from: u8,
    nonce: u64,
    contract: Address,
    method: &str,
    args: &[u32],
    gas_limit: u64,
) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN,
        nonce,
        gas_limit,
        gas_price: 3,
        payload: TxPayload::Call {
            contract,
            method: method.into(),
            args: args.iter().flat_map(|a| a.to_le_bytes()).collect(),
            value: 0,
        },
    }
    .sign(&key(from))
}

/// Emits `n` events of `len` bytes of data and one topic each.
const EVENTS_WAT: &str = r#"(module
  (import "stele" "input_read" (func $input_read (param i32)))
  (import "stele" "emit_event" (func $emit (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  ;; input: [n u32][len u32]
  (func (export "emit") (local $i i32)
    (call $input_read (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
      (call $emit (i32.const 64) (i32.const 1) (i32.const 128) (i32.load (i32.const 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
)"#;

/// A transaction's events are capped in bytes, and so are a block's: once
/// the block's budget is spent, a transaction that emits traps (and pays
/// for what it ran), while one that emits nothing still succeeds.
#[test]
fn event_bytes_are_capped_per_transaction_and_per_block() {
    on_exec_stack(|| {
        let chain = Chain::new();
        let limits = stele_vm::VmLimits::LATEST;
        let deploy = signed(
            1,
            0,
            TxPayload::Deploy {
                code: wat::parse_str(EVENTS_WAT).unwrap(),
                init_args: vec![],
                value: 0,
            },
        );
        let contract = chain.apply(vec![deploy]).unwrap()[0]
            .contract_address
            .unwrap();
        // One topic (32 bytes) plus data: the most one transaction may emit,
        // then one byte more.
        let per_tx = limits.event_bytes_max;
        let len = 16 * 1024 - 32;
        let n = (per_tx / (len + 32)) as u32;
        assert_eq!(u64::from(n) * (len + 32), per_tx);
        let emit = |from: u8, nonce: u64, n: u32, len: u64| {
            // 18 of these fit a block's 400 M of gas limits.
            call_with(from, nonce, contract, "emit", &[n, len as u32], 20_000_000)
        };
        let r = chain
            .apply(vec![emit(2, 0, n, len), emit(3, 0, n + 1, len)])
            .unwrap();
        assert_eq!(r[0].status, ExecStatus::Success, "{:?}", r[0]);
        assert_eq!(r[0].events.len(), n as usize);
        assert_eq!(r[1].status, ExecStatus::Trapped);
        assert_eq!(
            r[1].output,
            b"trapped: event bytes over the transaction's or the block's limit"
        );

        // A block holds `block_event_bytes_max`: that many full
        // transactions, then the next one that emits traps.
        let full = limits.block_event_bytes_max / per_tx;
        let mut txs: Vec<_> = (0..=full).map(|i| emit(2, 1 + i, n, len)).collect();
        txs.push(emit(3, 1, 0, 0));
        let r = chain.apply(txs).unwrap();
        let statuses: Vec<_> = r.iter().map(|r| r.status).collect();
        let mut expected = vec![ExecStatus::Success; full as usize];
        expected.extend([ExecStatus::Trapped, ExecStatus::Success]);
        assert_eq!(statuses, expected);
        let emitted: u64 = r
            .iter()
            .flat_map(|r| &r.events)
            .map(stele_vm::event_bytes)
            .sum();
        assert_eq!(emitted, limits.block_event_bytes_max);
    });
}

/// Each step of prefix iteration pays for every key deleted earlier in the
/// block that it walks past, so deleting many keys and iterating over them
/// again and again (then reverting) costs gas in proportion to the walk,
/// and a step stops as soon as the gas runs out. Deletes committed by
/// earlier blocks are not the block's to pay for.
#[test]
fn iterating_past_keys_deleted_in_the_block_is_paid_per_key() {
    on_exec_stack(|| {
        const KEYS: u32 = 1_000;
        const GAS: u64 = 100_000_000;
        let chain = Chain::new();
        let deploy = signed(
            1,
            0,
            TxPayload::Deploy {
                code: wat::parse_str(ITER_WAT).unwrap(),
                init_args: vec![],
                value: 0,
            },
        );
        let r = chain.apply(vec![deploy]).unwrap();
        let contract = r[0].contract_address.unwrap();
        let r = chain
            .apply(vec![call_with(1, 1, contract, "fill", &[KEYS], GAS)])
            .unwrap();
        assert_eq!(r[0].status, ExecStatus::Success, "{:?}", r[0]);

        let skip = stele_vm::GasSchedule::LATEST.storage_iter_skip;
        assert!(skip > 0);
        let r = chain
            .apply(vec![
                call_with(2, 0, contract, "wipe_and_scan", &[KEYS, 1, 1], GAS),
                call_with(2, 1, contract, "wipe_and_scan", &[KEYS, 2, 1], GAS),
            ])
            .unwrap();
        assert_eq!(r[0].status, ExecStatus::Reverted, "{:?}", r[0]);
        assert_eq!(r[1].status, ExecStatus::Reverted, "{:?}", r[1]);
        // One more step: the step itself plus every deleted key it passes.
        let step = r[1].gas_used - r[0].gas_used;
        let walk = u64::from(KEYS) * skip;
        assert!((walk..walk + 3_000).contains(&step), "step {step}");

        // Steps that cannot be paid for stop with the gas.
        let r = chain
            .apply(vec![call_with(
                2,
                2,
                contract,
                "wipe_and_scan",
                &[KEYS, 10_000, 1],
                GAS,
            )])
            .unwrap();
        assert_eq!(r[0].status, ExecStatus::OutOfGas, "{:?}", r[0]);
        assert_eq!(r[0].gas_used, GAS);

        // Deleted for good in one block, then scanned in the next: the
        // step pays for itself only.
        let r = chain
            .apply(vec![call_with(
                2,
                3,
                contract,
                "wipe_and_scan",
                &[KEYS, 0, 0],
                GAS,
            )])
            .unwrap();
        assert_eq!(r[0].status, ExecStatus::Success, "{:?}", r[0]);
        let r = chain
            .apply(vec![
                call_with(2, 4, contract, "wipe_and_scan", &[0, 1, 0], GAS),
                call_with(2, 5, contract, "wipe_and_scan", &[0, 2, 0], GAS),
            ])
            .unwrap();
        let step = r[1].gas_used - r[0].gas_used;
        assert!(step < 3_000, "step {step}");
    });
}

/// Every block's state root, receipts root and receipts of a workload
/// that writes, overwrites, deletes and iterates over deletes, on `chain`.
fn backend_workload(chain: &Chain) -> Vec<(Hash, Hash, Vec<u8>)> {
    const GAS: u64 = 100_000_000;
    let deploy = |from: u8, nonce: u64, wat: &str| {
        signed(
            from,
            nonce,
            TxPayload::Deploy {
                code: wat::parse_str(wat).unwrap(),
                init_args: vec![],
                value: 0,
            },
        )
    };
    let iter = Address::contract(&key(1).address(), 0);
    let counter = Address::contract(&key(3).address(), 0);
    let blocks = vec![
        vec![
            deploy(1, 0, ITER_WAT),
            deploy(3, 0, COUNTER_WAT),
            transfer(2, 0, 4, 7),
        ],
        vec![
            call_with(1, 1, iter, "fill", &[300], GAS),
            call(2, 1, counter, "increment"),
        ],
        vec![
            call_with(2, 2, iter, "wipe_and_scan", &[300, 3, 1], GAS),
            call_with(2, 3, iter, "wipe_and_scan", &[120, 2, 0], GAS),
            call(3, 1, counter, "fail"),
        ],
        vec![
            call_with(2, 4, iter, "wipe_and_scan", &[0, 4, 0], GAS),
            call_with(1, 2, iter, "fill", &[50], GAS),
            call(2, 5, counter, "increment"),
        ],
        vec![call_with(2, 6, iter, "wipe_and_scan", &[300, 1, 0], GAS)],
    ];
    blocks
        .into_iter()
        .map(|txs| {
            let out = chain.apply_exec(txs).unwrap();
            let bytes = out.receipts.iter().flat_map(|r| r.to_bytes()).collect();
            (chain.state_root(), out.receipts_root, bytes)
        })
        .collect()
}

/// The testkit runs blocks on a state in memory (ADR 0013): the same
/// blocks on it and on RocksDB give the same roots, gas and receipts.
#[test]
fn blocks_on_a_state_in_memory_give_the_same_roots_and_receipts_as_on_disk() {
    on_exec_stack(|| {
        let disk = backend_workload(&Chain::new());
        let memory = backend_workload(&Chain::in_memory());
        assert_eq!(disk.len(), 5);
        for (i, (d, m)) in disk.iter().zip(&memory).enumerate() {
            assert_eq!(d, m, "block {}", i + 1);
        }
        // The workload did what it is for: deletes and reverts happened.
        assert_ne!(disk[1].0, disk[2].0);
    });
}

/// Host functions a random contract may import.
const RANDOM_IMPORTS: &str = r#"(module
  (import "stele" "input_len" (func (result i32)))
  (import "stele" "input_read" (func (param i32)))
  (import "stele" "storage_read" (func (param i32 i32 i32 i32) (result i64)))
  (import "stele" "storage_write" (func (param i32 i32 i32 i32)))
  (import "stele" "storage_remove" (func (param i32 i32) (result i32)))
  (import "stele" "storage_next" (func (param i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))
  (import "stele" "emit_event" (func (param i32 i32 i32 i32)))
  (import "stele" "set_return" (func (param i32 i32)))
  (import "stele" "revert" (func (param i32 i32)))
  (import "stele" "gas_left" (func (result i64)))
  (import "stele" "keccak256" (func (param i32 i32 i32)))
  (import "stele" "self_address" (func (param i32)))
  (import "stele" "call" (func (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (import "stele" "result_read" (func (param i32))))"#;

/// What every random contract exports: a memory and two methods.
const RANDOM_EXPORTS: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "init"))
  (func (export "run")))"#;

/// A random module within the contract feature set, from `seed`.
fn random_module(seed: &[u8]) -> Option<Vec<u8>> {
    let config = wasm_smith::Config {
        available_imports: Some(wat::parse_str(RANDOM_IMPORTS).unwrap()),
        exports: Some(wat::parse_str(RANDOM_EXPORTS).unwrap()),
        allow_start_export: false,
        gc_enabled: false,
        exceptions_enabled: false,
        reference_types_enabled: false,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        tail_call_enabled: false,
        memory64_enabled: false,
        custom_page_sizes_enabled: false,
        // Contracts have memory.copy and memory.fill but not the rest of
        // bulk memory, and functions return at most one value.
        bulk_memory_enabled: false,
        multi_value_enabled: false,
        // The exported memory is the one; no others.
        max_memories: 0,
        max_memory32_bytes: 16 << 20,
        max_tables: 1,
        max_table_elements: 4_096,
        max_funcs: 40,
        max_instructions: 400,
        max_nesting_depth: 12,
        ..wasm_smith::Config::default()
    };
    let mut u = arbitrary::Unstructured::new(seed);
    wasm_smith::Module::new(config, &mut u)
        .ok()
        .map(|m| m.to_bytes())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Whatever valid module a contract author uploads, under the latest
    /// limits and under V1's: its deploy and its calls end in receipts
    /// (never a node error, never a panic), and a second node gets the
    /// same receipts.
    #[test]
    fn random_contracts_never_fail_the_node(
        seed in proptest::collection::vec(proptest::prelude::any::<u8>(), 256..4096),
        v1 in proptest::prelude::any::<bool>(),
    ) {
        let Some(code) = random_module(&seed) else { return Ok(()) };
        let receipts = on_exec_stack(move || {
            let run = |code: &[u8]| {
                let mut g = genesis();
                if v1 {
                    // With V4, the last schedule for frames past the
                    // resident pages.
                    g.params.vm_limits_version = 1;
                    g.params.gas_schedule_version = 4;
                }
                let chain = Chain::with_genesis(g);
                let mut receipts = Vec::new();
                let deploy = Transaction {
                    chain_id: CHAIN,
                    nonce: 0,
                    // The whole block gas limit of a new chain.
                    gas_limit: 400_000_000,
                    gas_price: 1,
                    payload: TxPayload::Deploy {
                        code: code.to_vec(),
                        init_args: vec![],
                        value: 0,
                    },
                }
                .sign(&key(1));
                let r = chain.apply(vec![deploy]).expect("a deploy is never a node error");
                let contract = Address::contract(&key(1).address(), 0);
                receipts.extend(r);
                let calls = (0..2)
                    .map(|n| call_with(2, n, contract, "run", &[n as u32], 20_000_000))
                    .collect();
                let r = chain.apply(calls).expect("a call is never a node error");
                receipts.extend(r);
                receipts
            };
            let first = run(&code);
            assert_eq!(run(&code), first, "another node disagrees");
            first
        });
        proptest::prop_assert_eq!(receipts.len(), 3);
    }
}

// ---- validator set changes (ADR 0010) ---------------------------------

/// A chain with validators `validators` (power 1 each) and K = 4; they and the
/// joiners 104 and 105 are funded.
fn governed_chain(validators: &[u8]) -> Chain {
    Chain::with_genesis(governed_genesis(validators))
}

fn governed_genesis(validators: &[u8]) -> Genesis {
    let mut g = genesis();
    g.validators = set_of(validators);
    g.allocations
        .extend(validators.iter().chain(&[104, 105]).map(|n| Allocation {
            address: key(*n).address(),
            balance: 10u128.pow(24),
        }));
    g.params.checkpoint_interval = 4;
    g
}

fn set_of(keys: &[u8]) -> ValidatorSet {
    let mut set: Vec<Validator> = keys
        .iter()
        .map(|n| Validator {
            address: key(*n).address(),
            public_key: key(*n).public_key(),
            power: 1,
        })
        .collect();
    set.sort_by_key(|v| v.address);
    ValidatorSet::new(set).unwrap()
}

/// A vote by `from` for `next` in `epoch`, with possession proofs signed
/// by the keys `newcomers` (in the set's order).
fn vote(
    from: u8,
    nonce: u64,
    epoch: u64,
    next: &ValidatorSet,
    newcomers: &[u8],
) -> SignedTransaction {
    let change = validator_change_hash(CHAIN, epoch, next);
    let mut proofs: Vec<(Address, Signature)> = newcomers
        .iter()
        .map(|n| (key(*n).address(), key(*n).sign_digest(&change)))
        .collect();
    proofs.sort_by_key(|(a, _)| *a);
    signed(
        from,
        nonce,
        TxPayload::VoteValidators {
            epoch,
            validators: next.validators().to_vec(),
            possession: proofs.into_iter().map(|(_, s)| s).collect(),
        },
    )
}

fn governance(chain: &Chain) -> (EpochInfo, ValidatorSet, Option<PendingChange>) {
    let world = StateWorld::new(chain.base());
    (
        governance::epoch_info(&world).unwrap(),
        governance::validators(&world).unwrap(),
        governance::pending(&world).unwrap(),
    )
}

#[test]
fn a_quorum_of_votes_changes_the_set_at_the_next_checkpoint() {
    let chain = governed_chain(&[100, 101, 102, 103]);
    let genesis_set = chain.genesis.validators.clone();
    // Validator 100 leaves, 104 joins.
    let next = set_of(&[101, 102, 103, 104]);
    let r = chain
        .apply(vec![
            vote(100, 0, 0, &next, &[104]),
            vote(101, 0, 0, &next, &[104]),
        ])
        .unwrap();
    assert!(r.iter().all(|r| r.status.is_success() && r.output == [0]));
    assert_eq!(governance(&chain).2, None, "2 of 4 is no quorum");
    // The third vote, in block 2, decides: the epoch ends at block 4.
    let r = chain.apply(vec![vote(102, 0, 0, &next, &[104])]).unwrap();
    assert_eq!(r[0].output, [1], "decided");
    let (info, set, pending) = governance(&chain);
    assert_eq!(
        info,
        EpochInfo {
            epoch: 0,
            start_height: 1
        }
    );
    assert_eq!(set, genesis_set);
    assert_eq!(
        pending,
        Some(PendingChange {
            epoch: 0,
            validators: next.clone(),
            decided_at: 2,
            last_height: 4,
        })
    );
    // A vote after the decision is refused.
    let r = chain.apply(vec![vote(103, 0, 0, &next, &[104])]).unwrap();
    assert_eq!(r[0].status, ExecStatus::Failed);
    assert_eq!(
        governance(&chain).1,
        genesis_set,
        "block 3 is still epoch 0"
    );
    // Block 4, the epoch's last, installs the new set.
    chain.apply(vec![]).unwrap();
    let (info, set, pending) = governance(&chain);
    assert_eq!(
        info,
        EpochInfo {
            epoch: 1,
            start_height: 5
        }
    );
    assert_eq!(set, next);
    assert_eq!(pending, None);
    // Only the new set votes in epoch 1; the old epoch's votes are void.
    let back = set_of(&[100, 101, 102, 103]);
    let r = chain
        .apply(vec![
            vote(100, 1, 1, &back, &[100]),
            vote(104, 0, 1, &back, &[100]),
            vote(101, 1, 0, &back, &[100]),
        ])
        .unwrap();
    assert_eq!(r[0].status, ExecStatus::Failed, "100 left");
    assert!(r[1].status.is_success(), "104 joined");
    assert_eq!(r[2].status, ExecStatus::Failed, "epoch 0 is over");
}

#[test]
fn votes_without_standing_or_proof_are_refused_and_pay_their_gas() {
    let chain = governed_chain(&[100, 101, 102, 103]);
    let next = set_of(&[101, 102, 103, 104]);
    let forged = {
        // 104's proof signed by someone else.
        let change = validator_change_hash(CHAIN, 0, &next);
        signed(
            101,
            1,
            TxPayload::VoteValidators {
                epoch: 0,
                validators: next.validators().to_vec(),
                possession: vec![key(105).sign_digest(&change)],
            },
        )
    };
    let short_of_gas = Transaction {
        chain_id: CHAIN,
        nonce: 2,
        gas_limit: 30_000,
        gas_price: 3,
        payload: TxPayload::VoteValidators {
            epoch: 0,
            validators: next.validators().to_vec(),
            possession: vec![],
        },
    }
    .sign(&key(101));
    let before = chain.account(&key(1).address()).balance;
    let r = chain
        .apply(vec![
            // Not a validator.
            vote(1, 0, 0, &next, &[104]),
            // Wrong epoch.
            vote(100, 0, 1, &next, &[104]),
            // No proof for the new key.
            vote(101, 0, 0, &next, &[]),
            forged,
            short_of_gas,
            // The current set again.
            vote(102, 0, 0, &chain.genesis.validators, &[]),
        ])
        .unwrap();
    let statuses: Vec<ExecStatus> = r.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![
            ExecStatus::Failed,
            ExecStatus::Failed,
            ExecStatus::Failed,
            ExecStatus::Failed,
            ExecStatus::OutOfGas,
            ExecStatus::Failed,
        ]
    );
    let reason = String::from_utf8(r[0].output.clone()).unwrap();
    assert!(reason.contains("is not a validator of epoch 0"), "{reason}");
    assert!(
        chain.account(&key(1).address()).balance < before,
        "gas is paid"
    );
    assert_eq!(governance(&chain).2, None);
    // A list that is no set (out of address order) decodes, and is refused
    // when the vote runs, which its gas pays for.
    let mut unsorted = next.validators().to_vec();
    unsorted.reverse();
    let r = chain
        .apply(vec![signed(
            103,
            0,
            TxPayload::VoteValidators {
                epoch: 0,
                validators: unsorted,
                possession: vec![],
            },
        )])
        .unwrap();
    assert_eq!(r[0].status, ExecStatus::Failed);
    let reason = String::from_utf8(r[0].output.clone()).unwrap();
    assert!(reason.contains("no set"), "{reason}");
    // Nothing was counted: three honest votes are still needed.
    chain
        .apply(vec![
            vote(100, 1, 0, &next, &[104]),
            vote(102, 1, 0, &next, &[104]),
        ])
        .unwrap();
    assert_eq!(governance(&chain).2, None);
}

#[test]
fn a_validator_that_changes_its_vote_counts_once_for_the_latest() {
    let chain = governed_chain(&[100, 101, 102, 103]);
    let a = set_of(&[101, 102, 103, 104]);
    let b = set_of(&[100, 101, 102, 103, 104]);
    chain
        .apply(vec![
            vote(100, 0, 0, &a, &[104]),
            vote(101, 0, 0, &a, &[104]),
            // 100 moves to b: a has one vote left, b one.
            vote(100, 1, 0, &b, &[104]),
            vote(102, 0, 0, &a, &[104]),
        ])
        .unwrap();
    assert_eq!(governance(&chain).2, None, "a has 2 of 4");
    let r = chain.apply(vec![vote(103, 0, 0, &a, &[104])]).unwrap();
    assert_eq!(r[0].output, [1]);
    assert_eq!(governance(&chain).2.map(|p| p.validators), Some(a));
}

// ---- protocol upgrades (ADR 0011) -------------------------------------

/// A governed chain on gas schedule V4 (K = 4), whose executor has the
/// versions `support` allows.
fn v4_chain(support: ProtocolSupport) -> Chain {
    let mut g = governed_genesis(&[100, 101, 102, 103]);
    g.params.gas_schedule_version = 4;
    Chain::with_support(g, support)
}

/// V5, and a higher intrinsic gas.
fn v5(chain: &Chain) -> ProtocolParams {
    ProtocolParams {
        gas_schedule_version: 5,
        tx_gas_base: 30_000,
        ..chain.genesis.params.protocol()
    }
}

fn upgrade_vote(
    from: u8,
    nonce: u64,
    epoch: u64,
    activation_height: u64,
    params: &ProtocolParams,
) -> SignedTransaction {
    signed(
        from,
        nonce,
        TxPayload::VoteUpgrade {
            epoch,
            activation_height,
            params: params.clone(),
        },
    )
}

fn protocol(chain: &Chain) -> (ProtocolParams, Option<ScheduledUpgrade>) {
    let world = StateWorld::new(chain.base());
    (
        upgrade::active(&world, &chain.genesis.params.protocol()).unwrap(),
        upgrade::scheduled(&world).unwrap(),
    )
}

/// Applies empty blocks until the chain's height is `height`.
fn empty_blocks_to(chain: &Chain, height: u64) {
    while chain.height() < height {
        chain.apply(vec![]).unwrap();
    }
}

#[test]
fn an_upgrade_a_quorum_votes_for_changes_gas_from_its_activation_height() {
    on_exec_stack(|| {
        let chain = v4_chain(ProtocolSupport::default());
        let genesis_params = chain.genesis.params.protocol();
        let counter = Address::contract(&key(1).address(), 0);
        let r = chain
            .apply(vec![deploy_counter(), call(1, 1, counter, "increment")])
            .unwrap();
        assert!(r.iter().all(|r| r.status.is_success()), "{r:?}");
        let (v4_call, v4_transfer) = {
            let r = chain
                .apply(vec![call(1, 2, counter, "increment"), transfer(2, 0, 3, 1)])
                .unwrap();
            (r[0].gas_used, r[1].gas_used)
        };
        let next = v5(&chain);
        // Block 3: two votes of four; block 4: the third schedules it for
        // height 20 (at least 2 K after each vote).
        let r = chain
            .apply(vec![
                upgrade_vote(100, 0, 0, 20, &next),
                upgrade_vote(101, 0, 0, 20, &next),
            ])
            .unwrap();
        assert!(
            r.iter().all(|r| r.status.is_success() && r.output == [0]),
            "{r:?}"
        );
        assert_eq!(protocol(&chain).1, None, "2 of 4 is no quorum");
        let r = chain
            .apply(vec![upgrade_vote(102, 0, 0, 20, &next)])
            .unwrap();
        assert_eq!(r[0].output, [1], "scheduled");
        assert_eq!(
            protocol(&chain),
            (
                genesis_params.clone(),
                Some(ScheduledUpgrade {
                    epoch: 0,
                    params: next.clone(),
                    activation_height: 20,
                    decided_at: 4,
                })
            )
        );
        // One upgrade at a time.
        let r = chain
            .apply(vec![upgrade_vote(103, 0, 0, 24, &next)])
            .unwrap();
        assert_eq!(r[0].status, ExecStatus::Failed);
        let reason = String::from_utf8(r[0].output.clone()).unwrap();
        assert!(
            reason.contains("already scheduled for height 20"),
            "{reason}"
        );
        // Block 19 still runs V4; its writes put V5 in force for block 20.
        empty_blocks_to(&chain, 18);
        let r = chain
            .apply(vec![call(1, 3, counter, "increment"), transfer(2, 1, 3, 1)])
            .unwrap();
        assert_eq!((r[0].gas_used, r[1].gas_used), (v4_call, v4_transfer));
        assert_eq!(protocol(&chain), (next.clone(), None));
        // Block 20 is the first under V5: an instance's pages cost more, a
        // transaction's base too.
        let r = chain
            .apply(vec![call(1, 4, counter, "increment"), transfer(2, 2, 3, 1)])
            .unwrap();
        assert!(r.iter().all(|r| r.status.is_success()), "{r:?}");
        assert!(r[0].gas_used > v4_call, "{} vs {v4_call}", r[0].gas_used);
        assert_eq!(r[1].gas_used, v4_transfer + 9_000);
        // Reads at the new height run under V5 too.
        let view = chain
            .executor
            .protocol_on(&chain.base())
            .expect("the protocol reads");
        assert_eq!(view, next);
    });
}

#[test]
fn upgrade_votes_without_standing_or_sense_are_refused_and_count_nothing() {
    on_exec_stack(|| {
        let chain = v4_chain(ProtocolSupport::default());
        let next = v5(&chain);
        let genesis_params = chain.genesis.params.protocol();
        let short_of_gas = Transaction {
            chain_id: CHAIN,
            nonce: 3,
            gas_limit: 30_000,
            gas_price: 3,
            payload: TxPayload::VoteUpgrade {
                epoch: 0,
                activation_height: 20,
                params: next.clone(),
            },
        }
        .sign(&key(101));
        let refused = [
            // Not a validator.
            (upgrade_vote(1, 0, 0, 20, &next), "is not a validator"),
            // Another epoch.
            (
                upgrade_vote(100, 0, 1, 20, &next),
                "the chain is in epoch 0",
            ),
            // Sooner than 2 K after the vote's block (1): 9 is the earliest.
            (upgrade_vote(100, 1, 0, 8, &next), "earliest is 9"),
            (upgrade_vote(100, 2, 0, 20_000_000, &next), "too far"),
            // Blocks larger than nodes size their messages for.
            (
                upgrade_vote(
                    101,
                    0,
                    0,
                    20,
                    &ProtocolParams {
                        block_bytes_max: genesis_params.block_bytes_max + 1,
                        ..next.clone()
                    },
                ),
                "over the genesis",
            ),
            (
                upgrade_vote(
                    101,
                    1,
                    0,
                    20,
                    &ProtocolParams {
                        view_timeout_ms: 0,
                        ..next.clone()
                    },
                ),
                "view_timeout_ms must be positive",
            ),
            (
                upgrade_vote(101, 2, 0, 20, &genesis_params),
                "the ones in force",
            ),
        ];
        let mut txs: Vec<SignedTransaction> = refused.iter().map(|(t, _)| t.clone()).collect();
        txs.push(short_of_gas);
        let r = chain.apply(txs).unwrap();
        for ((_, why), receipt) in refused.iter().zip(&r) {
            assert_eq!(receipt.status, ExecStatus::Failed, "{why}");
            let reason = String::from_utf8(receipt.output.clone()).unwrap();
            assert!(reason.contains(why), "{reason} (expected {why})");
        }
        assert_eq!(r.last().unwrap().status, ExecStatus::OutOfGas);
        // Nothing counted: three valid votes are still needed.
        chain
            .apply(vec![
                upgrade_vote(102, 0, 0, 20, &next),
                upgrade_vote(103, 0, 0, 20, &next),
            ])
            .unwrap();
        assert_eq!(protocol(&chain).1, None);
        // Votes for another height are another proposal.
        chain
            .apply(vec![upgrade_vote(100, 3, 0, 21, &next)])
            .unwrap();
        assert_eq!(protocol(&chain).1, None);
        let r = chain
            .apply(vec![upgrade_vote(101, 4, 0, 20, &next)])
            .unwrap();
        assert_eq!(r[0].output, [1]);
        assert_eq!(protocol(&chain).1.map(|s| s.activation_height), Some(20));
    });
}

#[test]
fn a_node_without_the_version_runs_to_the_block_before_the_activation_and_no_further() {
    on_exec_stack(|| {
        let old = v4_chain(ProtocolSupport {
            gas_schedule_max: 4,
            ..ProtocolSupport::default()
        });
        let new = v4_chain(ProtocolSupport::default());
        let next = v5(&new);
        for chain in [&old, &new] {
            // The vote counts alike on both: what a node runs is not a rule.
            let r = chain
                .apply(vec![
                    upgrade_vote(100, 0, 0, 12, &next),
                    upgrade_vote(101, 0, 0, 12, &next),
                    upgrade_vote(102, 0, 0, 12, &next),
                ])
                .unwrap();
            assert_eq!(r[2].output, [1]);
            empty_blocks_to(chain, 11);
        }
        assert_eq!(
            old.state_root(),
            new.state_root(),
            "the same chain to block 11"
        );
        assert_eq!(
            old.executor.supports(&next),
            Err(Unsupported::GasSchedule {
                version: 5,
                known: vec![1, 2, 3, 4],
            })
        );
        match old.apply(vec![]) {
            Err(ExecError::ProtocolUnsupported { height: 12, reason }) => {
                assert!(
                    reason.to_string().contains("no gas schedule version 5"),
                    "{reason}"
                );
            }
            other => panic!("block 12 must not execute here: {other:?}"),
        }
        assert_eq!(old.height(), 11);
        new.apply(vec![]).unwrap();
        assert_eq!(new.height(), 12);
    });
}
