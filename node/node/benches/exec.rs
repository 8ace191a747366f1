//! Execution throughput benchmark (see docs/benchmarks.md), printed as JSON
//! lines. Not a timed test: CI only builds it.
//!
//! Run: `cargo bench -p stele-node --bench exec` (release profile).
//! `STELE_BENCH_BLOCK_TXS` (default 1000) sets the transactions per block,
//! `STELE_BENCH_BLOCKS` (default 5) the measured blocks per workload.
//!
//! Everything is real: a temp RocksDB with the block store's column
//! families, the Merkle state, the wasmtime VM, k256 signatures. Each
//! workload runs blocks of signed transactions from distinct senders:
//!
//! - `native`: native token transfers;
//! - `contract`: `transfer` calls of a small WAT token contract (2 storage
//!   reads, 2 writes, 1 event per call).
//!
//! For every block it measures, in order:
//!
//! 1. `sig_ms`: verifying every signature (`Executor::sender`, which fills
//!    the executor's cache, as admission to the node would);
//! 2. `exec_ms`: `Executor::execute_block` with that warm cache (the VM,
//!    state reads through the overlay, receipts);
//! 3. `commit_prepare_ms`: `store::prepare_block_commit` (Merkle update and
//!    root, block, receipts and tx index into one batch);
//! 4. `commit_write_ms`: the synced RocksDB write (`State::apply`);
//!
//! and, on a copy of the same block that was never verified (cold cache),
//! `exec_cold_ms`: `execute_block` verifying the signatures itself.
//! `tx_per_s_warm` counts exec + commit, `tx_per_s_cold` sig + exec + commit.
//!
//! `exec_iteration_*` lines give the ns per gas of prefix iteration over
//! 2 000 deleted keys: deleted in the same transaction (priced per key
//! walked past since gas schedule V4) and deleted by an earlier, committed
//! block (RocksDB tombstones, not priced).
//!
//! `STELE_BENCH_SDK_TOKEN=path/to/token.wasm` adds an `sdk_token` workload:
//! `transfer` calls of the SDK-built example token (`contracts/token`, as
//! `stele build` or `stele-bench --workload token` builds it; Borsh
//! arguments, a `Map` of balances, an event with two topics), the contract
//! the end-to-end token load calls. `STELE_BENCH_WARM_SLOTS=1` builds the
//! VMs with warmed pool slots (`VmConfig::warm_slots`), `0` without;
//! `STELE_BENCH_VM_ROUNDS` (default 5) sets the rounds of the VM-only runs.
//!
//! A last line splits the contract call's execution: the same calls on the
//! VM alone over an in-memory world (`vm_only_us_per_tx`: Wasm, host calls
//! and instantiation) against the executor over the Merkle state
//! (`exec_us_per_tx`); the difference is state access, accounts and
//! receipts.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use stele_exec::{BlockEnv, Executor, SharedState, StateBase};
use stele_node::genesis::{Allocation, ChainParams, Genesis};
use stele_node::store::{BLOCK_STORE_CFS, prepare_block_commit};
use stele_state::{State, StateConfig};
use stele_types::{
    Address, Block, BlockHeader, CommitCertificate, Hash, SecretKey, SignedTransaction,
    Transaction, TxPayload, Validator, ValidatorSet, list_root,
};
use stele_vm::{Action, ExecContext, MemoryWorld, Vm, VmConfig};

const CHAIN: u64 = 77;
const GAS_PRICE: u64 = 1;

/// A token: balances under the 20-byte holder address. `init` gives the
/// deployer 10^15; `transfer(to: 20 B, amount: u64 LE)` moves tokens from
/// the caller, reverting if the balance is short, and emits an event.
const TOKEN_WAT: &str = r#"(module
  (import "stele" "input_read" (func $input_read (param i32)))
  (import "stele" "caller" (func $caller (param i32)))
  (import "stele" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i64)))
  (import "stele" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "stele" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "stele" "revert" (func $revert (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "init")
    (call $caller (i32.const 0))
    (i64.store (i32.const 64) (i64.const 1000000000000000))
    (call $storage_write (i32.const 0) (i32.const 20) (i32.const 64) (i32.const 8)))
  (func $bal (param $k i32) (result i64)
    (if (result i64)
      (i64.eq (call $storage_read (local.get $k) (i32.const 20) (i32.const 64) (i32.const 8)) (i64.const -1))
      (then (i64.const 0)) (else (i64.load (i32.const 64)))))
  (func $set (param $k i32) (param $v i64)
    (i64.store (i32.const 64) (local.get $v))
    (call $storage_write (local.get $k) (i32.const 20) (i32.const 64) (i32.const 8)))
  (func (export "transfer") (local $from i64) (local $amt i64)
    (call $caller (i32.const 0))
    (call $input_read (i32.const 32))
    (local.set $amt (i64.load (i32.const 52)))
    (local.set $from (call $bal (i32.const 0)))
    (if (i64.lt_u (local.get $from) (local.get $amt)) (then (call $revert (i32.const 0) (i32.const 0))))
    (call $set (i32.const 0) (i64.sub (local.get $from) (local.get $amt)))
    (call $set (i32.const 32) (i64.add (call $bal (i32.const 32)) (local.get $amt)))
    (call $emit_event (i32.const 128) (i32.const 1) (i32.const 52) (i32.const 8)))
)"#;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `STELE_BENCH_WARM_SLOTS=1` (or `0`) overrides `VmConfig::warm_slots`.
fn warm_slots() -> bool {
    std::env::var("STELE_BENCH_WARM_SLOTS").map_or(VmConfig::default().warm_slots, |v| v != "0")
}

fn key(n: u32) -> SecretKey {
    stele_fixtures::key(u64::from(n) + 1)
}

struct Chain {
    state: SharedState,
    executor: Executor,
    genesis_time_ms: u64,
    proposer: Address,
    _dir: tempfile::TempDir,
}

/// Timings of one block, in seconds.
#[derive(Default, Clone, Copy)]
struct Split {
    sig: f64,
    exec: f64,
    exec_cold: f64,
    prepare: f64,
    write: f64,
    /// Gas used by the block's transactions.
    gas: u64,
}

impl Chain {
    fn new(accounts: &[Address]) -> Chain {
        let dir = tempfile::tempdir().expect("tempdir");
        let validator = key(1_000_000);
        let genesis = Genesis {
            chain_id: CHAIN,
            genesis_time_ms: 1_700_000_000_000,
            validators: ValidatorSet::new(vec![Validator {
                address: validator.address(),
                public_key: validator.public_key(),
                power: 1,
            }])
            .expect("validator set"),
            allocations: accounts
                .iter()
                .map(|a| Allocation {
                    address: *a,
                    balance: 10u128.pow(24),
                })
                .collect(),
            params: ChainParams::default(),
        };
        let mut state = State::open_with_column_families(
            dir.path(),
            StateConfig {
                // `STELE_BENCH_FLAT_DELETES_COMPACT=0` leaves committed
                // deletes' tombstones in place (the worst case between
                // a block and the compaction it starts).
                flat_deletes_compact: env_usize(
                    "STELE_BENCH_FLAT_DELETES_COMPACT",
                    StateConfig::default().flat_deletes_compact as usize,
                ) as u64,
                ..StateConfig::default()
            },
            &BLOCK_STORE_CFS,
        )
        .expect("open state");
        state.commit(0, &genesis.writes()).expect("genesis");
        let vm = Vm::new(VmConfig {
            epoch_ticker: false,
            warm_slots: warm_slots(),
            ..VmConfig::default()
        })
        .expect("vm");
        Chain {
            state: Arc::new(RwLock::new(state)),
            executor: Executor::new(vm, genesis.executor_config()),
            genesis_time_ms: genesis.genesis_time_ms,
            proposer: validator.address(),
            _dir: dir,
        }
    }

    fn height(&self) -> u64 {
        self.state
            .read()
            .expect("state lock")
            .latest_version()
            .expect("genesis committed")
    }

    /// Executes and commits `txs` as the next block, timing each stage.
    /// With `verify_first`, signatures are verified (and cached) in a
    /// separate timed pass before execution.
    fn apply(&self, txs: Vec<SignedTransaction>, verify_first: bool) -> Split {
        let mut split = Split::default();
        let height = self.height() + 1;
        let env = BlockEnv {
            height,
            timestamp_ms: self.genesis_time_ms + 1000 * height,
            proposer: self.proposer,
        };
        let base = StateBase::at(&self.state, Some(height - 1), None);
        if verify_first {
            let t = Instant::now();
            for tx in &txs {
                self.executor
                    .sender(tx, &tx.hash())
                    .expect("valid signature");
            }
            split.sig = t.elapsed().as_secs_f64();
        }
        let t = Instant::now();
        let out = self
            .executor
            .execute_block(base, &env, &txs)
            .expect("valid block");
        split.exec = t.elapsed().as_secs_f64();
        let failed = out
            .receipts
            .iter()
            .filter(|r| !r.status.is_success())
            .count();
        assert_eq!(failed, 0, "every transaction succeeds");
        split.gas = out.receipts.iter().map(|r| r.gas_used).sum();

        let mut state = self.state.write().expect("state lock");
        // The header needs the root first (a proposer computes it once, the
        // untimed pass here); the timed commit below is a replica's.
        let root = state
            .prepare_commit(height, &out.writes)
            .expect("prepare")
            .root();
        let block = Block {
            header: BlockHeader {
                chain_id: CHAIN,
                height,
                epoch: 0,
                view: 0,
                parent_hash: Hash::ZERO,
                tx_root: list_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
                state_root: root,
                receipts_root: out.receipts_root,
                timestamp_ms: env.timestamp_ms,
                proposer: env.proposer,
                next_validators_hash: Hash::ZERO,
            },
            txs,
        };
        let cert = CommitCertificate {
            height,
            epoch: 0,
            view: 0,
            block_hash: block.hash(),
            signatures: vec![],
        };
        let t = Instant::now();
        let prepared = prepare_block_commit(&state, &block, &out.receipts, &cert, &out.writes)
            .expect("prepare block commit");
        split.prepare = t.elapsed().as_secs_f64();
        let t = Instant::now();
        state.apply(prepared).expect("apply");
        split.write = t.elapsed().as_secs_f64();
        split
    }
}

fn sign(from: &SecretKey, nonce: u64, gas_limit: u64, payload: TxPayload) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN,
        nonce,
        gas_limit,
        gas_price: GAS_PRICE,
        payload,
    }
    .sign(from)
}

fn token_args(to: &Address, amount: u64) -> Vec<u8> {
    let mut args = to.0.to_vec();
    args.extend_from_slice(&amount.to_le_bytes());
    args
}

/// Borsh arguments of the SDK token's `transfer(to: Address, amount: u128)`.
fn sdk_token_args(to: &Address, amount: u64) -> Vec<u8> {
    let mut args = to.0.to_vec();
    args.extend_from_slice(&u128::from(amount).to_le_bytes());
    args
}

/// Borsh arguments of the SDK token's `init(name, symbol, decimals,
/// initial_supply)`.
fn sdk_token_init() -> Vec<u8> {
    let mut args = Vec::new();
    for s in ["Bench", "BNC"] {
        args.extend_from_slice(&(s.len() as u32).to_le_bytes());
        args.extend_from_slice(s.as_bytes());
    }
    args.push(6);
    args.extend_from_slice(&10u128.pow(30).to_le_bytes());
    args
}

/// A token contract's code and how to call it.
struct TokenCode {
    name: &'static str,
    code: Vec<u8>,
    init_args: Vec<u8>,
    args: fn(&Address, u64) -> Vec<u8>,
    gas: u64,
}

/// Runs `blocks` blocks built by `make(block, verified)` and prints a line.
fn measure(
    chain: &Chain,
    name: &str,
    txs_per_block: usize,
    blocks: usize,
    mut make: impl FnMut(u64) -> Vec<SignedTransaction>,
) -> Split {
    let mut round = 0u64;
    // One warm-up block (caches, allocator).
    chain.apply(make(round), true);
    round += 1;
    let mut total = Split::default();
    let mut best_warm = f64::MAX;
    let mut best_cold = f64::MAX;
    for _ in 0..blocks {
        let s = chain.apply(make(round), true);
        round += 1;
        // The next block's transactions were never verified: cold cache.
        let c = chain.apply(make(round), false);
        round += 1;
        total.sig += s.sig;
        total.exec += s.exec;
        total.prepare += s.prepare;
        total.write += s.write;
        total.exec_cold += c.exec;
        total.gas += s.gas;
        best_warm = best_warm.min(s.exec + s.prepare + s.write);
        best_cold = best_cold.min(c.exec + c.prepare + c.write);
    }
    let n = blocks as f64;
    let avg = Split {
        sig: total.sig / n,
        exec: total.exec / n,
        exec_cold: total.exec_cold / n,
        prepare: total.prepare / n,
        write: total.write / n,
        gas: total.gas / blocks as u64,
    };
    let txs = txs_per_block as f64;
    let warm = avg.exec + avg.prepare + avg.write;
    let cold = avg.sig + warm;
    println!(
        concat!(
            r#"{{"bench":"exec_{}","txs_per_block":{},"blocks":{},"#,
            r#""sig_ms":{:.1},"exec_ms":{:.1},"exec_cold_ms":{:.1},"#,
            r#""commit_prepare_ms":{:.1},"commit_write_ms":{:.1},"#,
            r#""tx_per_s_warm":{:.0},"tx_per_s_cold":{:.0},"#,
            r#""tx_per_s_warm_best":{:.0},"tx_per_s_cold_execute_block_best":{:.0},"#,
            r#""us_per_tx_sig":{:.1},"us_per_tx_exec":{:.1},"us_per_tx_commit":{:.1},"#,
            r#""gas_per_tx":{}}}"#
        ),
        name,
        txs_per_block,
        blocks,
        avg.sig * 1e3,
        avg.exec * 1e3,
        avg.exec_cold * 1e3,
        avg.prepare * 1e3,
        avg.write * 1e3,
        txs / warm,
        txs / cold,
        txs / best_warm,
        txs / best_cold,
        avg.sig * 1e6 / txs,
        avg.exec * 1e6 / txs,
        (avg.prepare + avg.write) * 1e6 / txs,
        avg.gas / txs_per_block as u64,
    );
    avg
}

/// The contract's `transfer` on the VM alone over an in-memory world, per
/// call in microseconds.
fn vm_only_us(token: &TokenCode, holders: &[Address]) -> f64 {
    let vm: Vm<MemoryWorld> = Vm::new(VmConfig {
        epoch_ticker: false,
        warm_slots: warm_slots(),
        ..VmConfig::default()
    })
    .expect("vm");
    let ctx = |caller: Address| ExecContext {
        origin: caller,
        caller,
        value: 0,
        block_height: 1,
        block_timestamp_ms: 0,
        chain_id: CHAIN,
        tx_hash: Hash::ZERO,
        debug: false,
        event_bytes_left: u64::MAX,
    };
    let deployer = holders[0];
    let (out, mut world) = vm.execute(
        &ctx(deployer),
        Action::Deploy {
            code: &token.code,
            init_args: &token.init_args,
            nonce: 0,
        },
        300_000_000,
        MemoryWorld::new(),
    );
    let out = out.expect("deploy");
    let contract = out
        .contract_address
        .unwrap_or_else(|| panic!("deploy failed: {:?}", out.status));
    for h in holders {
        let args = (token.args)(h, 1_000_000);
        let (out, w) = vm.execute(
            &ctx(deployer),
            Action::Call {
                contract,
                method: "transfer",
                args: &args,
            },
            token.gas,
            world,
        );
        assert!(out.expect("call").status.is_success());
        world = w;
    }
    let rounds = env_usize("STELE_BENCH_VM_ROUNDS", 5);
    let start = Instant::now();
    for r in 0..rounds {
        for (i, h) in holders.iter().enumerate() {
            let to = holders[(i + 1 + r) % holders.len()];
            let args = (token.args)(&to, 1);
            let (out, w) = vm.execute(
                &ctx(*h),
                Action::Call {
                    contract,
                    method: "transfer",
                    args: &args,
                },
                token.gas,
                world,
            );
            assert!(out.expect("call").status.is_success());
            world = w;
        }
    }
    start.elapsed().as_secs_f64() * 1e6 / (rounds * holders.len()) as f64
}

/// Writes keys `k || i`; deletes the first `deletes`, then steps prefix
/// iteration from the start `steps` times, then reverts if asked.
const ITER_WAT: &str = include_str!("../tests/fixtures/iterate_over_deletes.wat");

fn u32_args(args: &[u32]) -> Vec<u8> {
    args.iter().flat_map(|a| a.to_le_bytes()).collect()
}

/// Executes (without committing) one call and prints its ns per gas.
fn iteration_case(chain: &Chain, name: &str, tx: SignedTransaction) {
    chain
        .executor
        .sender(&tx, &tx.hash())
        .expect("valid signature");
    let height = chain
        .state
        .read()
        .expect("state lock")
        .latest_version()
        .unwrap_or(0);
    let env = BlockEnv {
        height: height + 1,
        timestamp_ms: chain.genesis_time_ms + height + 1,
        proposer: chain.proposer,
    };
    let base = StateBase::at(&chain.state, Some(height), None);
    let t = Instant::now();
    let out = chain
        .executor
        .execute_block(base, &env, &[tx])
        .expect("valid block");
    let ns = t.elapsed().as_nanos() as f64;
    let r = &out.receipts[0];
    println!(
        r#"{{"bench":"exec_iteration_{name}","status":"{:?}","gas":{},"ms":{:.1},"ns_per_gas":{:.3}}}"#,
        r.status,
        r.gas_used,
        ns / 1e6,
        ns / r.gas_used.max(1) as f64
    );
}

/// Prefix iteration over 2 000 deleted keys.
fn iteration(chain: &Chain, key: &SecretKey, nonce: &mut u64) {
    let from = key.address();
    let code = wat::parse_str(ITER_WAT).expect("iteration wat");
    let contract = Address::contract(&from, *nonce);
    let deploy = TxPayload::Deploy {
        code,
        init_args: vec![],
        value: 0,
    };
    chain.apply(vec![sign(key, *nonce, 50_000_000, deploy)], true);
    let call = |method: &str, args: &[u32]| TxPayload::Call {
        contract,
        method: method.into(),
        args: u32_args(args),
        value: 0,
    };
    let fill = call("fill", &[2_000]);
    chain.apply(vec![sign(key, *nonce + 1, 100_000_000, fill)], true);
    // Deleted in the same transaction, stepped over until the gas runs out
    // (executed, not committed: the nonce stays free).
    let scan = call("wipe_and_scan", &[2_000, u32::MAX, 1]);
    iteration_case(chain, "same_tx", sign(key, *nonce + 2, 200_000_000, scan));
    // Deleted by a committed block, then stepped over.
    let wipe = call("wipe_and_scan", &[2_000, 0, 0]);
    chain.apply(vec![sign(key, *nonce + 2, 100_000_000, wipe)], true);
    let scan = call("wipe_and_scan", &[0, u32::MAX, 0]);
    iteration_case(chain, "committed", sign(key, *nonce + 3, 200_000_000, scan));
    // The same deletes, approached from inside each stretch in turn.
    let each = call("scan_from_each", &[2_000, u32::MAX]);
    iteration_case(
        chain,
        "committed_from_each",
        sign(key, *nonce + 3, 200_000_000, each),
    );
    *nonce += 3;
}

fn run() {
    let n = env_usize("STELE_BENCH_BLOCK_TXS", 1_000);
    let blocks = env_usize("STELE_BENCH_BLOCKS", 5);
    let keys: Vec<SecretKey> = (0..n as u32).map(key).collect();
    let addrs: Vec<Address> = keys.iter().map(SecretKey::address).collect();
    let chain = Chain::new(&addrs);
    let mut nonces = vec![0u64; n];

    // Native transfers: sender i pays sender i+1 (mod n).
    let native = measure(&chain, "native", n, blocks, |round| {
        (0..n)
            .map(|i| {
                let to = addrs[(i + 1 + round as usize) % n];
                let tx = sign(
                    &keys[i],
                    nonces[i],
                    21_000 + 16 * 200,
                    TxPayload::Transfer { to, amount: 1 },
                );
                nonces[i] += 1;
                tx
            })
            .collect()
    });

    let wat = TokenCode {
        name: "contract",
        code: wat::parse_str(TOKEN_WAT).expect("token wat"),
        init_args: vec![],
        args: token_args,
        // A block of 1 000 stays under the chain's 400 M gas per block.
        gas: 390_000,
    };
    let contract = token_workload(&chain, &wat, &keys, &mut nonces, blocks);
    split_line(&wat, &contract, &native, &addrs);

    if let Ok(path) = std::env::var("STELE_BENCH_SDK_TOKEN") {
        let sdk = TokenCode {
            name: "sdk_token",
            code: std::fs::read(&path).expect("STELE_BENCH_SDK_TOKEN: a token.wasm"),
            init_args: sdk_token_init(),
            args: sdk_token_args,
            gas: 390_000,
        };
        let calls = token_workload(&chain, &sdk, &keys, &mut nonces, blocks);
        split_line(&sdk, &calls, &native, &addrs);
    }

    iteration(&chain, &keys[0], &mut nonces[0]);
}

/// Deploys `token` from sender 0, gives every sender some tokens, then
/// measures blocks of `transfer` calls (sender i pays sender i+1+round).
fn token_workload(
    chain: &Chain,
    token: &TokenCode,
    keys: &[SecretKey],
    nonces: &mut [u64],
    blocks: usize,
) -> Split {
    let n = keys.len();
    let addrs: Vec<Address> = keys.iter().map(SecretKey::address).collect();
    let deploy = sign(
        &keys[0],
        nonces[0],
        300_000_000,
        TxPayload::Deploy {
            code: token.code.clone(),
            init_args: token.init_args.clone(),
            value: 0,
        },
    );
    let contract = Address::contract(&addrs[0], nonces[0]);
    nonces[0] += 1;
    chain.apply(vec![deploy], true);
    let mut funding = Vec::with_capacity(n);
    for a in &addrs {
        funding.push(sign(
            &keys[0],
            nonces[0],
            token.gas,
            TxPayload::Call {
                contract,
                method: "transfer".into(),
                args: (token.args)(a, 1_000_000),
                value: 0,
            },
        ));
        nonces[0] += 1;
    }
    chain.apply(funding, true);

    measure(chain, token.name, n, blocks, |round| {
        (0..n)
            .map(|i| {
                let to = addrs[(i + 1 + round as usize) % n];
                let tx = sign(
                    &keys[i],
                    nonces[i],
                    token.gas,
                    TxPayload::Call {
                        contract,
                        method: "transfer".into(),
                        args: (token.args)(&to, 1),
                        value: 0,
                    },
                );
                nonces[i] += 1;
                tx
            })
            .collect()
    })
}

/// How a call's execution splits: the VM alone against the executor.
fn split_line(token: &TokenCode, calls: &Split, native: &Split, addrs: &[Address]) {
    let n = addrs.len() as f64;
    let vm_us = vm_only_us(token, addrs);
    let exec_us = calls.exec * 1e6 / n;
    let native_us = native.exec * 1e6 / n;
    println!(
        concat!(
            r#"{{"bench":"exec_{}_split","vm_only_us_per_tx":{:.1},"exec_us_per_tx":{:.1},"#,
            r#""native_exec_us_per_tx":{:.1},"state_and_accounts_us_per_tx":{:.1}}}"#
        ),
        token.name,
        vm_us,
        exec_us,
        native_us,
        exec_us - vm_us,
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`; only
    // measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    std::thread::Builder::new()
        .stack_size(stele_vm::EXEC_THREAD_STACK_BYTES)
        .spawn(run)
        .expect("spawn")
        .join()
        .expect("bench thread");
}
