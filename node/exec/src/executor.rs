//! Executing a block: a deterministic function of (state at the parent,
//! block) -> (write set, receipts, receipts root). The caller commits the
//! write set to get the state root.
//!
//! Per transaction: check chain id and signature (verified once per node,
//! cached by hash), nonce, and that the sender can pay `gas_limit *
//! gas_price + value`; buy the gas up front and bump the nonce; run the
//! transfer, deploy or call; refund unused gas. A failed call reverts its own
//! writes but still pays for its gas and keeps the nonce bump. Fees go to the
//! block's proposer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use stele_types::codec::Encode;
use stele_types::{
    Address, Amount, ExecStatus, Hash, ProtocolParams, Receipt, Signature, SignedTransaction,
    Transaction, TxError, TxPayload, list_root,
};
use stele_vm::{
    Action, CallTrace, ExecContext, GasSchedule, Outcome, Vm, VmConfig, VmError, VmLimits, World,
    WorldError,
};
use thiserror::Error;

use super::account::Account;
use super::world::{StateBase, StateWorld, StorageWrite};

/// What execution needs to know of the chain, and node-local settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorConfig {
    pub chain_id: u64,
    /// The genesis's protocol: blocks execute under it until an upgrade
    /// activates (ADR 0011); after that, under the parameters their
    /// parent's state holds.
    pub protocol: ProtocolParams,
    /// Signatures remembered as verified.
    pub sig_cache_entries_max: usize,
    /// K, the consensus checkpoint interval: an epoch ends at the first
    /// multiple of K at or after the block that decided a change (ADR
    /// 0010).
    pub checkpoint_interval: u64,
    /// Record each transaction's storage writes in
    /// [`BlockExecution::storage_writes`] (a node that keeps the
    /// storage-history index); off, every transaction's list is empty and
    /// nothing is spent on it.
    pub record_storage_writes: bool,
}

/// The versions this node runs: everything compiled in, unless an
/// operator's test caps them to stand for an older build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolSupport {
    pub gas_schedule_max: u32,
    pub vm_limits_max: u32,
}

impl Default for ProtocolSupport {
    fn default() -> Self {
        ProtocolSupport {
            gas_schedule_max: u32::MAX,
            vm_limits_max: u32::MAX,
        }
    }
}

impl ProtocolSupport {
    /// The gas schedule and VM limits of `p`, if this node has them and
    /// they fit together.
    pub fn check(&self, p: &ProtocolParams) -> Result<(GasSchedule, VmLimits), Unsupported> {
        let gas = GasSchedule::by_version(p.gas_schedule_version)
            .filter(|g| g.version <= self.gas_schedule_max)
            .ok_or_else(|| Unsupported::GasSchedule {
                version: p.gas_schedule_version,
                known: GasSchedule::ALL
                    .iter()
                    .map(|g| g.version)
                    .filter(|v| *v <= self.gas_schedule_max)
                    .collect(),
            })?;
        let limits = VmLimits::by_version(p.vm_limits_version)
            .filter(|l| l.version <= self.vm_limits_max)
            .ok_or_else(|| Unsupported::VmLimits {
                version: p.vm_limits_version,
                known: VmLimits::ALL
                    .iter()
                    .map(|l| l.version)
                    .filter(|v| *v <= self.vm_limits_max)
                    .collect(),
            })?;
        gas.check_limits(&limits)
            .map_err(|reason| Unsupported::Mismatch {
                gas: gas.version,
                limits: limits.version,
                reason,
            })?;
        Ok((gas, limits))
    }
}

/// Why this node cannot execute under some protocol parameters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unsupported {
    #[error("this node has no gas schedule version {version} (it has {known:?})")]
    GasSchedule { version: u32, known: Vec<u32> },
    #[error("this node has no VM limits version {version} (it has {known:?})")]
    VmLimits { version: u32, known: Vec<u32> },
    #[error("gas schedule version {gas} does not fit VM limits version {limits}: {reason}")]
    Mismatch {
        gas: u32,
        limits: u32,
        reason: String,
    },
    #[error("this executor runs only the genesis's VM")]
    NotUpgradable,
    #[error("cannot start a VM for them: {0}")]
    Vm(String),
}

/// The block a transaction list executes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEnv {
    pub height: u64,
    pub timestamp_ms: u64,
    pub proposer: Address,
}

/// Why a transaction cannot be in a block at all (the block is invalid).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxRejection {
    #[error("{0}")]
    Signature(TxError),
    #[error("nonce {got} does not follow the account's nonce {expected}")]
    NonceMismatch { expected: u64, got: u64 },
    #[error("balance {balance} cannot cover the maximum cost {cost}")]
    CannotPay { balance: Amount, cost: String },
    #[error("gas limit {gas_limit} is below the intrinsic gas {intrinsic}")]
    GasBelowIntrinsic { gas_limit: u64, intrinsic: u64 },
}

/// Why a block could not be executed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExecError {
    #[error("block has {count} transactions, over the maximum of {max}")]
    TooManyTxs { count: usize, max: usize },
    #[error("block has {bytes} bytes of transactions, over the maximum of {max}")]
    TooManyBytes { bytes: usize, max: usize },
    #[error("block reserves {gas} gas, over the maximum of {max}")]
    TooMuchGas { gas: u128, max: u64 },
    #[error("transaction {index} ({hash}) is invalid: {reason}")]
    InvalidTx {
        index: usize,
        hash: Hash,
        reason: TxRejection,
    },
    /// Executing one transaction failed inside this node: its state backend
    /// or the VM (an invariant, the instance pool). No contract, argument or
    /// state can cause this; everything they can cause is a receipt. A
    /// proposer drops the transaction and builds the block without it; a
    /// validator refuses the block.
    #[error("transaction {index} ({hash}) failed inside the node: {reason}")]
    TxInternal {
        index: usize,
        hash: Hash,
        reason: String,
    },
    /// The node itself failed (state backend); not the block's fault.
    #[error("state backend failed: {0}")]
    Backend(String),
    /// The block executes under protocol parameters this node cannot run
    /// (an upgrade it lacks activated): the node must stop, not decide.
    #[error("block {height} executes under a protocol this node cannot run: {reason}")]
    ProtocolUnsupported { height: u64, reason: Unsupported },
}

/// The result of executing a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockExecution {
    /// Everything the block changes, to commit as the next version.
    pub writes: stele_state::WriteSet,
    pub receipts: Vec<Receipt>,
    pub receipts_root: Hash,
    pub gas_used: u64,
    /// Senders recovered from the signatures, in block order.
    pub senders: Vec<Address>,
    /// Per transaction, in block order, the contract storage keys it wrote
    /// (and did not revert), in (contract, key) order. For the node's
    /// storage-history index only: nothing here feeds a hash or a root.
    pub storage_writes: Vec<Vec<StorageWrite>>,
}

/// A VM's (gas schedule, VM limits) versions.
type VmKey = (u32, u32);

/// Executes blocks with the VM of their protocol, and a signature cache.
pub struct Executor {
    /// The genesis's VM.
    vm: Arc<Vm<StateWorld>>,
    /// Every VM built so far, by (gas schedule, VM limits) version.
    vms: RwLock<Vec<(VmKey, Arc<Vm<StateWorld>>)>>,
    /// How to build the VM of an upgrade, and which versions this node
    /// has; `None` runs the genesis's VM only.
    upgrades: Option<(VmConfig, ProtocolSupport)>,
    config: ExecutorConfig,
    /// tx hash -> sender, for signatures already verified on this node.
    sig_cache: Mutex<BTreeMap<Hash, Address>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor with the genesis's `vm` only: blocks under other
    /// protocol parameters fail with [`ExecError::ProtocolUnsupported`].
    pub fn new(vm: Vm<StateWorld>, config: ExecutorConfig) -> Self {
        let vm = Arc::new(vm);
        let key = (vm.gas_schedule().version, vm.limits().version);
        Executor {
            vms: RwLock::new(vec![(key, vm.clone())]),
            vm,
            upgrades: None,
            config,
            sig_cache: Mutex::new(BTreeMap::new()),
        }
    }

    /// Lets the executor build the VM of any protocol `support` allows,
    /// from `template` (its node-local settings; the gas schedule and
    /// limits are the protocol's).
    pub fn upgradable(mut self, template: VmConfig, support: ProtocolSupport) -> Self {
        self.upgrades = Some((template, support));
        self
    }

    /// Whether this node can execute under `params`.
    pub fn supports(&self, params: &ProtocolParams) -> Result<(), Unsupported> {
        if self.built(params).is_some() {
            return Ok(());
        }
        match &self.upgrades {
            Some((_, support)) => support.check(params).map(|_| ()),
            None => Err(Unsupported::NotUpgradable),
        }
    }

    fn built(&self, params: &ProtocolParams) -> Option<Arc<Vm<StateWorld>>> {
        let key = (params.gas_schedule_version, params.vm_limits_version);
        let vms = self
            .vms
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        vms.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, vm)| vm.clone())
    }

    /// The VM of `params`, built on first use (a node builds it when the
    /// upgrade is scheduled, well before it activates).
    pub fn vm_for(&self, params: &ProtocolParams) -> Result<Arc<Vm<StateWorld>>, Unsupported> {
        if let Some(vm) = self.built(params) {
            return Ok(vm);
        }
        let Some((template, support)) = &self.upgrades else {
            return Err(Unsupported::NotUpgradable);
        };
        let (gas, limits) = support.check(params)?;
        let mut vms = self
            .vms
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (gas.version, limits.version);
        if let Some((_, vm)) = vms.iter().find(|(k, _)| *k == key) {
            return Ok(vm.clone());
        }
        let vm = Vm::new(VmConfig {
            gas,
            limits,
            ..template.clone()
        })
        .map_err(|e| Unsupported::Vm(e.to_string()))?;
        let vm = Arc::new(vm);
        vms.push((key, vm.clone()));
        Ok(vm)
    }

    /// The protocol a block on `base` executes under.
    pub fn protocol_on(&self, base: &StateBase) -> Result<ProtocolParams, String> {
        crate::upgrade::active(&StateWorld::new(base.clone()), &self.config.protocol)
            .map_err(|e| e.to_string())
    }

    fn rules(&self, world: &StateWorld) -> Result<Rules, RulesError> {
        let protocol = crate::upgrade::active(world, &self.config.protocol)
            .map_err(|e| RulesError::Backend(e.to_string()))?;
        let vm = self.vm_for(&protocol).map_err(RulesError::Unsupported)?;
        Ok(Rules { protocol, vm })
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// The genesis's VM.
    pub fn vm(&self) -> &Vm<StateWorld> {
        &self.vm
    }

    /// The verified sender of `tx`, from the cache when possible.
    pub fn sender(&self, tx: &SignedTransaction, hash: &Hash) -> Result<Address, TxRejection> {
        if let Some(sender) = self.cache().get(hash) {
            return Ok(*sender);
        }
        // Verify outside the lock: it is the expensive part.
        let sender = tx
            .verify(self.config.chain_id)
            .map_err(TxRejection::Signature)?;
        self.remember_sender(*hash, sender);
        Ok(sender)
    }

    /// Records that the transaction with `hash` was verified, for this
    /// chain, to be signed by `sender` (the mempool calls this on
    /// admission, so each transaction's signature is checked once per node).
    pub fn remember_sender(&self, hash: Hash, sender: Address) {
        let max = self.config.sig_cache_entries_max;
        let mut cache = self.cache();
        if cache.len() >= max {
            // Cheap bounded eviction: forget the smallest hashes, which are
            // as good as random.
            let drop: Vec<Hash> = cache.keys().take(max / 4 + 1).copied().collect();
            for h in drop {
                cache.remove(&h);
            }
        }
        cache.insert(hash, sender);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, BTreeMap<Hash, Address>> {
        // Every update is a single insert or remove, so a poisoned lock
        // still holds a consistent map.
        self.sig_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Executes `txs` in a block described by `env` on top of `base`.
    /// Must run on a thread with at least
    /// [`stele_vm::EXEC_THREAD_STACK_BYTES`] of stack.
    pub fn execute_block(
        &self,
        base: StateBase,
        env: &BlockEnv,
        txs: &[SignedTransaction],
    ) -> Result<BlockExecution, ExecError> {
        let mut world = StateWorld::new(base);
        let rules = self.rules(&world).map_err(|e| e.into_exec(env.height))?;
        let cfg = &rules.protocol;
        if txs.len() as u64 > cfg.block_txs_max {
            return Err(ExecError::TooManyTxs {
                count: txs.len(),
                max: usize::try_from(cfg.block_txs_max).unwrap_or(usize::MAX),
            });
        }
        let encoded: Vec<Vec<u8>> = txs.iter().map(Encode::to_bytes).collect();
        let bytes: usize = encoded.iter().map(Vec::len).sum();
        if bytes as u64 > cfg.block_bytes_max {
            return Err(ExecError::TooManyBytes {
                bytes,
                max: usize::try_from(cfg.block_bytes_max).unwrap_or(usize::MAX),
            });
        }
        let gas: u128 = txs.iter().map(|t| u128::from(t.tx.gas_limit)).sum();
        if gas > u128::from(cfg.block_gas_max) {
            return Err(ExecError::TooMuchGas {
                gas,
                max: cfg.block_gas_max,
            });
        }

        world.record_storage_writes(self.config.record_storage_writes);
        let TxsRun {
            mut world,
            receipts,
            senders,
            storage_writes,
            gas_used,
            fees,
            trace: _,
        } = self.run_txs(&rules, world, env, txs, &encoded, None)?;
        if fees > 0 {
            let mut proposer = world.account(&env.proposer).map_err(backend)?;
            proposer.balance = proposer.balance.saturating_add(fees);
            world.set_account(&env.proposer, &proposer);
        }
        let new_epoch = crate::governance::end_block(&mut world, env.height).map_err(backend)?;
        crate::upgrade::end_block(&mut world, env.height, new_epoch.is_some()).map_err(backend)?;
        let hashes: Vec<Hash> = receipts.iter().map(Receipt::hash).collect();
        Ok(BlockExecution {
            writes: world.into_writes(),
            receipts_root: list_root(&hashes),
            receipts,
            gas_used,
            senders,
            storage_writes,
        })
    }

    /// Replays transaction `index` of a committed block: `txs` (the
    /// block's) up to `index` run on `base`, the state of the block's
    /// parent, as the block ran them, and the last one also records its
    /// nested-call trace with gas per frame and the storage keys it
    /// wrote. Execution is deterministic, so the receipt is the block's;
    /// callers holding the stored one compare them. Must run on a thread
    /// with [`stele_vm::EXEC_THREAD_STACK_BYTES`] of stack.
    pub fn replay_tx(
        &self,
        base: StateBase,
        env: &BlockEnv,
        txs: &[SignedTransaction],
        index: usize,
    ) -> Result<Replayed, ExecError> {
        let Some(prefix) = txs.get(..=index) else {
            return Err(ExecError::TooManyTxs {
                count: index + 1,
                max: txs.len(),
            });
        };
        let mut world = StateWorld::new(base);
        let rules = self.rules(&world).map_err(|e| e.into_exec(env.height))?;
        world.record_storage_writes(true);
        let encoded: Vec<Vec<u8>> = prefix.iter().map(Encode::to_bytes).collect();
        let mut run = self.run_txs(&rules, world, env, prefix, &encoded, Some(index))?;
        let (Some(receipt), Some(sender), Some(storage_writes)) = (
            run.receipts.pop(),
            run.senders.pop(),
            run.storage_writes.pop(),
        ) else {
            return Err(ExecError::Backend("the replay ran no transaction".into()));
        };
        Ok(Replayed {
            receipt,
            sender,
            trace: run.trace,
            storage_writes,
        })
    }

    /// Runs `txs` in order on `world` as a block's transactions (the
    /// block's limits already checked), tracing the one at `trace_at`.
    fn run_txs(
        &self,
        rules: &Rules,
        mut world: StateWorld,
        env: &BlockEnv,
        txs: &[SignedTransaction],
        encoded: &[Vec<u8>],
        trace_at: Option<usize>,
    ) -> Result<TxsRun, ExecError> {
        let mut receipts = Vec::with_capacity(txs.len());
        let mut senders = Vec::with_capacity(txs.len());
        let mut storage_writes = Vec::with_capacity(txs.len());
        let mut gas_used: u64 = 0;
        let mut fees: Amount = 0;
        let mut traced = None;
        let mut event_bytes_left = rules.vm.limits().block_event_bytes_max;
        for (index, (tx, bytes)) in txs.iter().zip(encoded).enumerate() {
            let hash = stele_types::keccak256(bytes);
            let invalid = |reason| ExecError::InvalidTx {
                index,
                hash,
                reason,
            };
            let sender = self.sender(tx, &hash).map_err(invalid)?;
            let mode = Mode {
                // Tracing only observes: the gas and the outcome are the
                // same (the replay's receipt is compared with the block's).
                debug: trace_at == Some(index),
                ..Mode::block(event_bytes_left)
            };
            let (receipt, trace, w) = self
                .execute_tx(rules, world, env, &tx.tx, hash, sender, bytes.len(), mode)
                .map_err(|e| match e {
                    TxFailure::Invalid(reason) => invalid(reason),
                    TxFailure::Backend(reason) => ExecError::TxInternal {
                        index,
                        hash,
                        reason,
                    },
                })?;
            world = w;
            if trace_at == Some(index) {
                traced = trace;
            }
            storage_writes.push(world.take_tx_storage_writes());
            let emitted: u64 = receipt.events.iter().map(stele_vm::event_bytes).sum();
            event_bytes_left = event_bytes_left.saturating_sub(emitted);
            gas_used += receipt.gas_used;
            fees += Amount::from(receipt.gas_used) * Amount::from(tx.tx.gas_price);
            receipts.push(receipt);
            senders.push(sender);
        }
        Ok(TxsRun {
            world,
            receipts,
            senders,
            storage_writes,
            gas_used,
            fees,
            trace: traced,
        })
    }

    /// Runs `tx` as if `sender` had signed it, on `world`, with exactly the
    /// rules of a block (nonce, intrinsic gas, payment, refund) except that
    /// no signature is checked and the fee is not credited to anyone. The
    /// receipt's `tx_hash` is the hash of the transaction signed with an
    /// all-zero signature. With `debug`, the nested-call trace with gas per
    /// frame is returned too. Used by simulations (RPC) and the testkit;
    /// must run on a thread with [`stele_vm::EXEC_THREAD_STACK_BYTES`] of
    /// stack.
    pub fn apply_unsigned(
        &self,
        world: StateWorld,
        env: &BlockEnv,
        tx: &Transaction,
        sender: Address,
        debug: bool,
    ) -> Result<(Applied, StateWorld), ApplyError> {
        self.apply_inner(world, env, tx, sender, debug, None)
    }

    /// A dry run of `tx` as `sender`: like [`Executor::apply_unsigned`]
    /// with the trace, but the contract code also stops after `timeout_ms`
    /// of wall-clock time (a backstop for RPC simulations, never used for
    /// blocks), and the contract's writes are not kept in the returned
    /// world. Must run on a thread with
    /// [`stele_vm::EXEC_THREAD_STACK_BYTES`] of stack.
    pub fn simulate(
        &self,
        world: StateWorld,
        env: &BlockEnv,
        tx: &Transaction,
        sender: Address,
        timeout_ms: u64,
    ) -> Result<Applied, ApplyError> {
        self.apply_inner(world, env, tx, sender, true, Some(timeout_ms))
            .map(|(applied, _)| applied)
    }

    fn apply_inner(
        &self,
        world: StateWorld,
        env: &BlockEnv,
        tx: &Transaction,
        sender: Address,
        debug: bool,
        timeout_ms: Option<u64>,
    ) -> Result<(Applied, StateWorld), ApplyError> {
        let signed = SignedTransaction {
            tx: tx.clone(),
            signature: Signature([0; 65]),
        };
        let bytes = signed.to_bytes();
        let hash = stele_types::keccak256(&bytes);
        let mode = Mode {
            debug,
            timeout_ms,
            event_bytes_left: u64::MAX,
        };
        let rules = self.rules(&world).map_err(RulesError::into_apply)?;
        match self.execute_tx(&rules, world, env, tx, hash, sender, bytes.len(), mode) {
            Ok((receipt, trace, world)) => Ok((Applied { receipt, trace }, world)),
            Err(TxFailure::Invalid(r)) => Err(ApplyError::Rejected(r)),
            Err(TxFailure::Backend(e)) => Err(ApplyError::Backend(e)),
        }
    }

    /// A read-only call of `method` on `contract` at `base`, as `caller`
    /// with no value: every write is discarded, gas is capped at `gas` and
    /// a wall-clock `timeout_ms` stops runaway code. With `debug`, the
    /// outcome has the call trace and its debug log lines. Must run on a
    /// thread with [`stele_vm::EXEC_THREAD_STACK_BYTES`] of stack.
    #[allow(clippy::too_many_arguments)]
    pub fn view(
        &self,
        base: StateBase,
        env: &BlockEnv,
        caller: Address,
        contract: Address,
        method: &str,
        args: &[u8],
        gas: u64,
        timeout_ms: u64,
        debug: bool,
    ) -> Result<Outcome, ApplyError> {
        let ctx = ExecContext {
            origin: caller,
            caller,
            value: 0,
            block_height: env.height,
            block_timestamp_ms: env.timestamp_ms,
            chain_id: self.config.chain_id,
            tx_hash: Hash::ZERO,
            debug,
            event_bytes_left: u64::MAX,
        };
        let action = Action::Call {
            contract,
            method,
            args,
        };
        let world = StateWorld::new(base);
        let rules = self.rules(&world).map_err(RulesError::into_apply)?;
        let (outcome, _) = rules.vm.query(&ctx, action, gas, timeout_ms, world);
        outcome.map_err(|e| match e {
            VmError::World(WorldError::IterationUnavailable) => {
                ApplyError::IterationUnavailable { height: env.height }
            }
            e => ApplyError::Backend(e.to_string()),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn execute_tx(
        &self,
        rules: &Rules,
        mut world: StateWorld,
        env: &BlockEnv,
        tx: &Transaction,
        hash: Hash,
        sender: Address,
        encoded_len: usize,
        mode: Mode,
    ) -> Result<(Receipt, Option<CallTrace>, StateWorld), TxFailure> {
        let debug = mode.debug;
        world.begin_tx();
        let mut account: Account = world.account(&sender).map_err(backend_tx)?;
        if tx.nonce != account.nonce {
            return Err(TxFailure::Invalid(TxRejection::NonceMismatch {
                expected: account.nonce,
                got: tx.nonce,
            }));
        }
        let intrinsic = rules.protocol.intrinsic_gas(encoded_len);
        if tx.gas_limit < intrinsic {
            return Err(TxFailure::Invalid(TxRejection::GasBelowIntrinsic {
                gas_limit: tx.gas_limit,
                intrinsic,
            }));
        }
        let max_cost = tx.max_cost().filter(|c| *c <= account.balance);
        let Some(_) = max_cost else {
            return Err(TxFailure::Invalid(TxRejection::CannotPay {
                balance: account.balance,
                cost: tx
                    .max_cost()
                    .map_or_else(|| "more than 2^128".into(), |c| c.to_string()),
            }));
        };
        // Buy all the gas and use the nonce, whatever happens next.
        let price = Amount::from(tx.gas_price);
        let nonce = account.nonce;
        account.balance -= Amount::from(tx.gas_limit) * price;
        account.nonce += 1;
        world.set_account(&sender, &account);

        let ctx = |value| ExecContext {
            origin: sender,
            caller: sender,
            value,
            block_height: env.height,
            block_timestamp_ms: env.timestamp_ms,
            chain_id: self.config.chain_id,
            tx_hash: hash,
            debug,
            event_bytes_left: mode.event_bytes_left,
        };
        let vm_gas = tx.gas_limit - intrinsic;
        let (status, vm_gas_used, output, events, contract_address, trace) = match &tx.payload {
            TxPayload::Transfer { to, amount } => {
                let moved = world.transfer(&sender, to, *amount).map_err(backend_tx)?;
                // The balance check above covers the amount, so this holds.
                assert!(moved, "a paid-for transfer must succeed");
                (ExecStatus::Success, 0, Vec::new(), Vec::new(), None, None)
            }
            TxPayload::Deploy {
                code,
                init_args,
                value,
            } => {
                let action = Action::Deploy {
                    code,
                    init_args,
                    nonce,
                };
                let (outcome, w) = match mode.timeout_ms {
                    None => rules.vm.execute(&ctx(*value), action, vm_gas, world),
                    Some(t) => rules.vm.query(&ctx(*value), action, vm_gas, t, world),
                };
                world = w;
                let o = outcome.map_err(|e| TxFailure::Backend(e.to_string()))?;
                (
                    o.status,
                    o.gas_used,
                    o.output,
                    o.events,
                    o.contract_address,
                    o.trace,
                )
            }
            TxPayload::Call {
                contract,
                method,
                args,
                value,
            } => {
                let action = Action::Call {
                    contract: *contract,
                    method,
                    args,
                };
                let (outcome, w) = match mode.timeout_ms {
                    None => rules.vm.execute(&ctx(*value), action, vm_gas, world),
                    Some(t) => rules.vm.query(&ctx(*value), action, vm_gas, t, world),
                };
                world = w;
                let o = outcome.map_err(|e| TxFailure::Backend(e.to_string()))?;
                (o.status, o.gas_used, o.output, o.events, None, o.trace)
            }
            TxPayload::VoteValidators {
                epoch,
                validators,
                possession,
            } => {
                let gas = crate::governance::vote_gas(validators.len(), possession.len());
                let (status, used, output) = system_vote(gas, vm_gas, || {
                    let vote = crate::governance::vote(
                        &mut world,
                        self.config.chain_id,
                        self.config.checkpoint_interval,
                        env.height,
                        sender,
                        *epoch,
                        validators,
                        possession,
                    )?;
                    Ok(vote.map(|v| matches!(v, crate::governance::VoteOutcome::Decided { .. })))
                })?;
                (status, used, output, Vec::new(), None, None)
            }
            TxPayload::VoteUpgrade {
                epoch,
                activation_height,
                params,
            } => {
                let (status, used, output) =
                    system_vote(crate::upgrade::UPGRADE_VOTE_GAS, vm_gas, || {
                        let vote = crate::upgrade::vote(
                            &mut world,
                            &self.config.protocol,
                            self.config.checkpoint_interval,
                            env.height,
                            sender,
                            *epoch,
                            *activation_height,
                            params,
                        )?;
                        Ok(vote
                            .map(|v| matches!(v, crate::upgrade::UpgradeOutcome::Scheduled { .. })))
                    })?;
                (status, used, output, Vec::new(), None, None)
            }
        };
        let gas_used = intrinsic + vm_gas_used.min(vm_gas);
        let refund = Amount::from(tx.gas_limit - gas_used) * price;
        if refund > 0 {
            let mut account = world.account(&sender).map_err(backend_tx)?;
            account.balance += refund;
            world.set_account(&sender, &account);
        }
        let receipt = Receipt {
            tx_hash: hash,
            status,
            gas_used,
            events,
            output,
            contract_address,
        };
        Ok((receipt, trace, world))
    }
}

/// The result of [`Executor::apply_unsigned`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub receipt: Receipt,
    /// Nested calls with gas per frame, when asked for.
    pub trace: Option<CallTrace>,
}

/// A committed transaction run again ([`Executor::replay_tx`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub receipt: Receipt,
    pub sender: Address,
    /// Nested calls with gas per frame (`None` for a transfer or a vote).
    pub trace: Option<CallTrace>,
    /// The storage keys the transaction wrote, in order of first write.
    pub storage_writes: Vec<StorageWrite>,
}

/// A block's transactions run in order ([`Executor::run_txs`]).
struct TxsRun {
    world: StateWorld,
    receipts: Vec<Receipt>,
    senders: Vec<Address>,
    storage_writes: Vec<Vec<StorageWrite>>,
    gas_used: u64,
    fees: Amount,
    trace: Option<CallTrace>,
}

/// Why [`Executor::apply_unsigned`] or [`Executor::view`] produced no
/// result.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    /// The transaction could not be included in a block.
    #[error("{0}")]
    Rejected(TxRejection),
    /// A read-only call at a height older than the latest iterated
    /// storage, which only the latest height can do.
    #[error(
        "storage iteration is only available at the latest height; this call ran at height {height} and iterated storage (call at the latest height instead)"
    )]
    IterationUnavailable { height: u64 },
    #[error("state backend: {0}")]
    Backend(String),
}

/// How a transaction runs: in a block, or as a traced, time-boxed dry run.
#[derive(Debug, Clone, Copy)]
struct Mode {
    debug: bool,
    timeout_ms: Option<u64>,
    /// What is left of the block's event bytes.
    event_bytes_left: u64,
}

impl Mode {
    /// In a block whose earlier transactions left `event_bytes_left`.
    fn block(event_bytes_left: u64) -> Mode {
        Mode {
            debug: false,
            timeout_ms: None,
            event_bytes_left,
        }
    }
}

/// A governance vote costing `gas` with `vm_gas` available: out of gas
/// without running, or `run`'s outcome as a receipt (output `[1]` when it
/// decided, `[0]` when only counted, the reason when refused).
fn system_vote(
    gas: u64,
    vm_gas: u64,
    run: impl FnOnce() -> Result<Result<bool, String>, WorldError>,
) -> Result<(ExecStatus, u64, Vec<u8>), TxFailure> {
    if gas > vm_gas {
        return Ok((ExecStatus::OutOfGas, vm_gas, Vec::new()));
    }
    Ok(match run().map_err(backend_tx)? {
        Ok(decided) => (ExecStatus::Success, gas, vec![u8::from(decided)]),
        Err(reason) => (ExecStatus::Failed, gas, reason.into_bytes()),
    })
}

/// What a block executes under: its protocol and that protocol's VM.
struct Rules {
    protocol: ProtocolParams,
    vm: Arc<Vm<StateWorld>>,
}

enum RulesError {
    Backend(String),
    Unsupported(Unsupported),
}

impl RulesError {
    /// As a block's (or a replayed block's) error at `height`.
    fn into_exec(self, height: u64) -> ExecError {
        match self {
            RulesError::Backend(e) => ExecError::Backend(e),
            RulesError::Unsupported(reason) => ExecError::ProtocolUnsupported { height, reason },
        }
    }

    fn into_apply(self) -> ApplyError {
        match self {
            RulesError::Backend(e) => ApplyError::Backend(e),
            RulesError::Unsupported(e) => ApplyError::Backend(e.to_string()),
        }
    }
}

enum TxFailure {
    Invalid(TxRejection),
    Backend(String),
}

fn backend(e: impl std::fmt::Display) -> ExecError {
    ExecError::Backend(e.to_string())
}

fn backend_tx(e: impl std::fmt::Display) -> TxFailure {
    TxFailure::Backend(e.to_string())
}
