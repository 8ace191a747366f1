//! The in-process chain.

use std::sync::{Arc, RwLock};

use borsh::{BorshDeserialize, BorshSerialize};
use stele_abi::Abi;
use stele_exec::{
    Account, ApplyError, BlockEnv, Executor, ExecutorConfig, SharedState, StateBase, StateWorld,
};
use stele_state::{State, StateConfig};
use stele_types::proof::StateKey;
use stele_types::{Transaction, TxPayload};
use stele_vm::{EXEC_THREAD_STACK_BYTES, Vm, VmConfig};

use crate::{Address, Contract, Outcome};

/// Gas limit of every transaction unless set with [`TestChain::set_gas_limit`].
pub const DEFAULT_GAS_LIMIT: u64 = 200_000_000;
/// Native balance of accounts made by [`TestChain::account`].
pub const DEFAULT_BALANCE: u128 = 1_000_000_000_000_000_000_000_000_000_000;
const CHAIN_ID: u64 = 31_337;
const GENESIS_TIME_MS: u64 = 1_700_000_000_000;
const BLOCK_TIME_MS: u64 = 1_000;

/// A single-node chain with its state in memory. Each transaction is its
/// own block: executed at [`TestChain::height`] and committed.
pub struct TestChain {
    state: SharedState,
    executor: Executor,
    chain_id: u64,
    /// Height and time of the next block.
    height: u64,
    timestamp_ms: u64,
    /// Height and time of the last block (committed, or skipped by
    /// `advance_blocks`): what a view runs at, as a node's `call_view`
    /// runs at its latest committed block. (0, 0) before the first.
    last_block: (u64, u64),
    gas_limit: u64,
    accounts_made: u64,
    abis: Vec<(Address, Arc<Abi>)>,
}

impl std::fmt::Debug for TestChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestChain")
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl Default for TestChain {
    fn default() -> Self {
        Self::new()
    }
}

fn types_addr(a: &Address) -> stele_types::Address {
    stele_types::Address(a.0)
}

/// Runs `f` on a thread with the stack the VM requires.
fn on_exec_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("stele-testkit-exec".into())
            .stack_size(EXEC_THREAD_STACK_BYTES)
            .spawn_scoped(s, f)
            .expect("spawning the execution thread");
        match handle.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

fn encode_args<A: BorshSerialize>(args: &A) -> Vec<u8> {
    borsh::to_vec(args).expect("arguments encode")
}

/// Where a chain starts: its id, its last block's height and time, and the
/// protocol it runs.
pub(crate) struct Origin {
    pub(crate) chain_id: u64,
    pub(crate) last_block: (u64, u64),
    pub(crate) gas: stele_vm::GasSchedule,
    pub(crate) limits: stele_vm::VmLimits,
}

impl TestChain {
    /// An empty chain at height 1, its state in memory: the same Merkle
    /// tree, roots and iteration as a node's on disk (ADR 0013).
    ///
    /// # Panics
    /// If the VM cannot be set up.
    pub fn new() -> TestChain {
        TestChain::on(
            State::in_memory(StateConfig::default()),
            Origin {
                chain_id: CHAIN_ID,
                last_block: (0, 0),
                gas: stele_vm::GasSchedule::LATEST,
                limits: stele_vm::VmLimits::LATEST,
            },
        )
    }

    /// A chain on `state` whose last block is `origin.last_block`.
    pub(crate) fn on(state: State, origin: Origin) -> TestChain {
        let (gas_schedule_version, vm_limits_version) = (origin.gas.version, origin.limits.version);
        let vm = Vm::new(VmConfig {
            gas: origin.gas,
            limits: origin.limits,
            epoch_ticker: false,
            // Compiled modules are shared by every chain and test process.
            artifact_dir: Some(std::env::temp_dir().join("stele-testkit-artifacts")),
            // Warming the instance pool faults in a MiB per slot each time
            // a chain is built; results and gas do not depend on it.
            warm_slots: false,
            ..VmConfig::default()
        })
        .expect("the VM");
        let config = ExecutorConfig {
            chain_id: origin.chain_id,
            protocol: stele_types::ProtocolParams {
                gas_schedule_version,
                vm_limits_version,
                block_gas_max: u64::MAX,
                block_bytes_max: u64::MAX,
                block_txs_max: u64::MAX,
                tx_gas_base: 21_000,
                tx_gas_per_byte: 16,
                view_timeout_ms: 2_000,
                view_timeout_max_ms: 60_000,
            },
            checkpoint_interval: 16,
            sig_cache_entries_max: 1,
            record_storage_writes: false,
        };
        let (last_height, last_time) = origin.last_block;
        TestChain {
            state: Arc::new(RwLock::new(state)),
            executor: Executor::new(vm, config),
            chain_id: origin.chain_id,
            height: last_height + 1,
            timestamp_ms: if last_height == 0 {
                GENESIS_TIME_MS
            } else {
                last_time + BLOCK_TIME_MS
            },
            last_block: origin.last_block,
            gas_limit: DEFAULT_GAS_LIMIT,
            accounts_made: 0,
            abis: Vec::new(),
        }
    }

    /// Height of the next block (the one the next transaction runs in).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Timestamp (ms) of the next block.
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }

    /// Skips `blocks` blocks (and `blocks` seconds).
    pub fn advance_blocks(&mut self, blocks: u64) {
        if blocks > 0 {
            self.last_block = (
                self.height + blocks - 1,
                self.timestamp_ms + (blocks - 1) * BLOCK_TIME_MS,
            );
        }
        self.height += blocks;
        self.timestamp_ms += blocks * BLOCK_TIME_MS;
    }

    /// Moves the clock forward by `ms` without new blocks.
    pub fn advance_time_ms(&mut self, ms: u64) {
        self.timestamp_ms += ms;
    }

    /// Gas limit of the following transactions.
    pub fn set_gas_limit(&mut self, gas: u64) {
        self.gas_limit = gas;
    }

    fn base(&self) -> StateBase {
        StateBase::latest(&self.state, None)
    }

    fn account_record(&self, who: &Address) -> Account {
        StateWorld::new(self.base())
            .account(&types_addr(who))
            .expect("account record")
    }

    /// Commits `writes` as the next block.
    fn commit(&mut self, writes: &stele_state::WriteSet) {
        self.state
            .write()
            .expect("state lock")
            .commit(self.height, writes)
            .expect("commit");
        self.advance_blocks(1);
    }

    /// A new account holding [`DEFAULT_BALANCE`].
    pub fn account(&mut self) -> Address {
        self.accounts_made += 1;
        let mut seed = b"stele-testkit account".to_vec();
        seed.extend_from_slice(&self.accounts_made.to_le_bytes());
        let digest = stele_types::keccak256(&seed);
        let mut a = [0u8; 20];
        a.copy_from_slice(&digest.0[12..]);
        let who = Address(a);
        self.set_balance(&who, DEFAULT_BALANCE);
        who
    }

    /// Sets the native balance of `who` (a block of its own).
    pub fn set_balance(&mut self, who: &Address, balance: u128) {
        let mut account = self.account_record(who);
        account.balance = balance;
        let mut world = StateWorld::new(self.base());
        world.set_account(&types_addr(who), &account);
        let writes = world.into_writes();
        self.commit(&writes);
    }

    /// Native balance of `who`.
    pub fn balance(&self, who: &Address) -> u128 {
        self.account_record(who).balance
    }

    /// Raw value of a contract's storage key.
    pub fn storage(&self, contract: &Address, key: &[u8]) -> Option<Vec<u8>> {
        let base = self.base();
        let version = base.version?;
        let state = self.state.read().expect("state lock");
        state
            .get(
                &StateKey::storage(&types_addr(contract), key.to_vec()),
                version,
            )
            .expect("state read")
    }

    /// An SDK `Item` field's value (by field name), Borsh-decoded.
    pub fn storage_item<T: BorshDeserialize>(&self, contract: &Address, field: &str) -> Option<T> {
        let raw = self.storage(contract, &field_prefix(field))?;
        Some(T::try_from_slice(&raw).expect("storage value decodes as the type"))
    }

    /// An SDK `Map` field's entry at `key`, Borsh-decoded.
    pub fn storage_map<K: stele_sdk::StorageKey, V: BorshDeserialize>(
        &self,
        contract: &Address,
        field: &str,
        key: &K,
    ) -> Option<V> {
        let mut k = field_prefix(field);
        key.write_key(&mut k);
        let raw = self.storage(contract, &k)?;
        Some(V::try_from_slice(&raw).expect("storage value decodes as the type"))
    }

    fn run(
        &mut self,
        sender: &Address,
        payload: TxPayload,
        method: &str,
        abi: Option<Arc<Abi>>,
    ) -> Outcome {
        let nonce = self.account_record(sender).nonce;
        let tx = Transaction {
            chain_id: self.chain_id,
            nonce,
            gas_limit: self.gas_limit,
            gas_price: 1,
            payload,
        };
        let env = BlockEnv {
            height: self.height,
            timestamp_ms: self.timestamp_ms,
            proposer: stele_types::Address([0xfe; 20]),
        };
        let world = StateWorld::new(self.base());
        let executor = &self.executor;
        let sender_t = types_addr(sender);
        let result = on_exec_thread(|| executor.apply_unsigned(world, &env, &tx, sender_t, true));
        let (applied, world) = match result {
            Ok(r) => r,
            Err(ApplyError::Rejected(r)) => panic!("transaction `{method}` rejected: {r}"),
            Err(e) => panic!("transaction `{method}`: {e}"),
        };
        let writes = world.into_writes();
        self.commit(&writes);
        let r = applied.receipt;
        Outcome {
            status: r.status,
            gas_used: r.gas_used,
            output: r.output,
            events: r.events,
            contract_address: r.contract_address.map(|a| Address(a.0)),
            trace: applied.trace,
            method: method.to_string(),
            abi,
            abis: self.abis.clone(),
        }
    }

    /// Deploys `contract` from `sender` with constructor arguments `args` (a
    /// tuple, Borsh-encoded).
    pub fn deploy<A: BorshSerialize>(
        &mut self,
        sender: &Address,
        contract: &Contract,
        args: A,
    ) -> Outcome {
        self.deploy_with_value(sender, contract, args, 0)
    }

    /// [`TestChain::deploy`] with native `value` for the constructor.
    pub fn deploy_with_value<A: BorshSerialize>(
        &mut self,
        sender: &Address,
        contract: &Contract,
        args: A,
        value: u128,
    ) -> Outcome {
        self.deploy_raw(sender, contract, encode_args(&args), value)
    }

    /// Deploys with constructor arguments given as JSON (by the ABI).
    pub fn deploy_json(
        &mut self,
        sender: &Address,
        contract: &Contract,
        args: serde_json::Value,
    ) -> Outcome {
        let input = contract
            .abi
            .encode_args("init", &args)
            .unwrap_or_else(|e| panic!("init args: {e}"));
        self.deploy_raw(sender, contract, input, 0)
    }

    fn deploy_raw(
        &mut self,
        sender: &Address,
        contract: &Contract,
        init_args: Vec<u8>,
        value: u128,
    ) -> Outcome {
        let payload = TxPayload::Deploy {
            code: contract.wasm.to_vec(),
            init_args,
            value,
        };
        let mut out = self.run(sender, payload, "init", Some(contract.abi.clone()));
        if let Some(a) = out.contract_address {
            self.abis.push((a, contract.abi.clone()));
            // The constructor's own events decode with the new ABI.
            out.abis.push((a, contract.abi.clone()));
        }
        out
    }

    fn abi_of(&self, contract: &Address) -> Option<Arc<Abi>> {
        self.abis
            .iter()
            .find(|(a, _)| a == contract)
            .map(|(_, abi)| abi.clone())
    }

    /// Calls `method` of `contract` as `sender` with `args` (a tuple,
    /// Borsh-encoded).
    pub fn call<A: BorshSerialize>(
        &mut self,
        sender: &Address,
        contract: &Address,
        method: &str,
        args: A,
    ) -> Outcome {
        self.call_with_value(sender, contract, method, args, 0)
    }

    /// [`TestChain::call`] with native `value` attached.
    pub fn call_with_value<A: BorshSerialize>(
        &mut self,
        sender: &Address,
        contract: &Address,
        method: &str,
        args: A,
        value: u128,
    ) -> Outcome {
        self.call_raw(sender, contract, method, encode_args(&args), value)
    }

    /// Calls with arguments given as JSON (encoded by the contract's ABI).
    pub fn call_json(
        &mut self,
        sender: &Address,
        contract: &Address,
        method: &str,
        args: serde_json::Value,
    ) -> Outcome {
        let abi = self
            .abi_of(contract)
            .expect("a contract deployed on this chain");
        let input = abi
            .encode_args(method, &args)
            .unwrap_or_else(|e| panic!("{method} args: {e}"));
        self.call_raw(sender, contract, method, input, 0)
    }

    /// Calls with already encoded input.
    pub fn call_raw(
        &mut self,
        sender: &Address,
        contract: &Address,
        method: &str,
        input: Vec<u8>,
        value: u128,
    ) -> Outcome {
        let payload = TxPayload::Call {
            contract: types_addr(contract),
            method: method.to_string(),
            args: input,
            value,
        };
        let abi = self.abi_of(contract);
        self.run(sender, payload, method, abi)
    }

    /// Runs a view (read-only; nothing is committed) as caller zero, at
    /// the last block's height and time, as a node's `call_view` runs at
    /// its latest committed block.
    pub fn view<A: BorshSerialize>(&self, contract: &Address, method: &str, args: A) -> Outcome {
        // At the last block, as a node's view: a transaction sent after it
        // runs at `height()`, one block later.
        let (height, timestamp_ms) = self.last_block;
        let env = BlockEnv {
            height,
            timestamp_ms,
            proposer: stele_types::Address([0xfe; 20]),
        };
        let base = self.base();
        let input = encode_args(&args);
        let executor = &self.executor;
        let gas = self.gas_limit;
        let to = types_addr(contract);
        let result = on_exec_thread(|| {
            executor.view(
                base,
                &env,
                stele_types::Address([0; 20]),
                to,
                method,
                &input,
                gas,
                10_000,
                true,
            )
        });
        let o = match result {
            Ok(o) => o,
            Err(e) => panic!("view `{method}`: {e}"),
        };
        Outcome {
            status: o.status,
            gas_used: o.gas_used,
            output: o.output,
            events: o.events,
            contract_address: None,
            trace: o.trace,
            method: method.to_string(),
            abi: self.abi_of(contract),
            abis: self.abis.clone(),
        }
    }

    /// The nonce of `who`.
    pub fn nonce(&self, who: &Address) -> u64 {
        self.account_record(who).nonce
    }

    /// The code hash of a deployed contract.
    pub fn code_hash(&self, contract: &Address) -> Option<stele_types::Hash> {
        self.account_record(contract).code_hash
    }
}

/// The SDK's key prefix of a storage field: `[len(name)] ++ name`.
fn field_prefix(field: &str) -> Vec<u8> {
    let mut k = vec![field.len() as u8];
    k.extend_from_slice(field.as_bytes());
    k
}
