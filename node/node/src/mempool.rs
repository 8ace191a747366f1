//! The mempool: transactions admitted but not yet committed.
//!
//! A plain data structure, no locks or I/O: the node calls it under its own
//! lock, after doing the expensive stateless checks ([`verify_raw`]) outside.
//!
//! Per sender, transactions wait in nonce order. Capacity is bounded in count
//! and bytes; when full, a newcomer may evict strictly cheaper transactions,
//! always taken from the end of a sender's queue so no queue gets a gap.
//! Everything that decides order (block selection, eviction) is a function of
//! the pool's contents and arrival order only.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use stele_types::{
    Address, Amount, CryptoError, DecodeError, Encode, Hash, Limits, SignedTransaction, TxError,
    decode,
};
use thiserror::Error;

use crate::sender_keys::{SenderCheckError, SenderKeys};

/// Limits and policy of the mempool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolConfig {
    /// The chain whose transactions are accepted.
    pub chain_id: u64,
    /// Most transactions held.
    pub txs_max: usize,
    /// Most encoded bytes held.
    pub bytes_max: usize,
    /// Most transactions held for one sender.
    pub sender_txs_max: usize,
    /// How far past the account's next nonce a transaction may be.
    pub nonce_ahead_max: u64,
    /// Largest encoded transaction.
    pub tx_bytes_max: usize,
    /// Largest gas limit of one transaction: the block gas limit.
    pub tx_gas_max: u64,
    /// Lowest gas price accepted.
    pub gas_price_min: u64,
    /// Intrinsic gas (the chain's `tx_gas_base` plus `tx_gas_per_byte` per
    /// encoded byte): a gas limit below it could never be included.
    pub tx_gas_base: u64,
    pub tx_gas_per_byte: u64,
    /// A replacement for the same (sender, nonce) must raise the gas price
    /// by at least this many percent (and by at least 1).
    pub replace_bump_percent: u64,
}

impl MempoolConfig {
    /// Defaults for `chain_id`.
    pub fn new(chain_id: u64) -> Self {
        MempoolConfig {
            chain_id,
            txs_max: 50_000,
            bytes_max: 64 << 20,
            sender_txs_max: 64,
            nonce_ahead_max: 64,
            tx_bytes_max: (1 << 20) + (4 << 10),
            tx_gas_max: 50_000_000,
            gas_price_min: 1,
            tx_gas_base: 21_000,
            tx_gas_per_byte: 16,
            replace_bump_percent: 10,
        }
    }
}

/// What the mempool needs to know of an account at the latest state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountState {
    /// The nonce the account's next transaction must carry.
    pub nonce: u64,
    pub balance: Amount,
}

/// Read access to account state at the latest committed version.
pub trait AccountView {
    fn account(&self, address: &Address) -> AccountState;
}

/// Why a transaction was not admitted. Each variant is reported to the
/// client as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdmitError {
    #[error("transaction is {bytes} bytes, over the limit of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    #[error("transaction is for chain {got}, this chain is {expected}")]
    WrongChain { expected: u64, got: u64 },
    #[error("bad signature: {0}")]
    BadSignature(CryptoError),
    #[error("transaction is not signed by the given sender {0}")]
    NotSignedBy(Address),
    #[error("transaction {0} is already in the mempool")]
    AlreadyKnown(Hash),
    #[error("nonce too low: the account's next nonce is {expected}, got {got}")]
    NonceTooLow { expected: u64, got: u64 },
    #[error(
        "nonce too high: the account's next nonce is {expected}, at most {max} is queued, got {got}"
    )]
    NonceTooHigh { expected: u64, max: u64, got: u64 },
    #[error("insufficient funds: balance {balance}, the transaction may cost {cost}")]
    InsufficientFunds { balance: Amount, cost: String },
    #[error("gas limit {gas_limit} is over the block gas limit {max}")]
    GasLimitOverBlock { gas_limit: u64, max: u64 },
    #[error("gas limit {gas_limit} is below the intrinsic gas {intrinsic} of this transaction")]
    GasBelowIntrinsic { gas_limit: u64, intrinsic: u64 },
    #[error("gas price {got} is under the minimum {min}")]
    GasPriceTooLow { min: u64, got: u64 },
    #[error(
        "replacement underpriced: the pending transaction pays {old}, a replacement must pay at least {required}, got {got}"
    )]
    ReplacementUnderpriced { old: u64, required: u64, got: u64 },
    #[error("the sender already has {max} pending transactions")]
    SenderFull { max: usize },
    #[error("mempool is full and holds nothing cheaper than gas price {got} to make room")]
    Full { got: u64 },
}

impl From<TxError> for AdmitError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::WrongChain { expected, got } => AdmitError::WrongChain { expected, got },
            TxError::Signature(e) => AdmitError::BadSignature(e),
        }
    }
}

/// A transaction whose encoding, chain id and signature have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx {
    pub tx: SignedTransaction,
    pub hash: Hash,
    pub sender: Address,
    /// Length of the canonical encoding.
    pub bytes: usize,
}

impl VerifiedTx {
    /// Checks an already decoded transaction.
    pub fn new(tx: SignedTransaction, chain_id: u64) -> Result<Self, AdmitError> {
        let sender = tx.verify(chain_id)?;
        Ok(VerifiedTx::checked(tx, sender))
    }

    /// A transaction whose signature was checked to be `sender`'s.
    fn checked(tx: SignedTransaction, sender: Address) -> Self {
        let encoded = tx.to_bytes();
        VerifiedTx {
            hash: stele_types::keccak256(&encoded),
            bytes: encoded.len(),
            tx,
            sender,
        }
    }
}

impl From<SenderCheckError> for AdmitError {
    fn from(e: SenderCheckError) -> Self {
        match e {
            SenderCheckError::Signature(e) => AdmitError::BadSignature(e),
            SenderCheckError::NotSignedBy(a) => AdmitError::NotSignedBy(a),
        }
    }
}

/// The stateless checks, cheap to run outside any lock: size, bounded
/// decoding, chain id and signature.
pub fn verify_raw(
    raw: &[u8],
    config: &MempoolConfig,
    limits: &Limits,
) -> Result<VerifiedTx, AdmitError> {
    verify_raw_as(raw, config, limits, None)
}

/// [`verify_raw`] for a transaction whose sender is claimed (by the
/// submitting client or the gossiping validator): `Some((sender, keys))`
/// refuses it unless `sender` signed it ([`SenderKeys::check`], about half
/// the cost of recovering the sender once `sender` has a table).
pub fn verify_raw_as(
    raw: &[u8],
    config: &MempoolConfig,
    limits: &Limits,
    claim: Option<(Address, &SenderKeys)>,
) -> Result<VerifiedTx, AdmitError> {
    match claim {
        Some((sender, keys)) => verify_raw_batch(&[(raw, Some(sender))], config, limits, keys)
            .pop()
            .unwrap_or(Err(AdmitError::BadSignature(CryptoError::BadSignature))),
        None => VerifiedTx::new(decode_checked(raw, config, limits)?, config.chain_id),
    }
}

/// [`verify_raw_as`] for many transactions (a batch of gossip), results in
/// order: the checks of named senders that have tables share their
/// inversions ([`SenderKeys::check_batch`]).
pub fn verify_raw_batch(
    items: &[(&[u8], Option<Address>)],
    config: &MempoolConfig,
    limits: &Limits,
    keys: &SenderKeys,
) -> Vec<Result<VerifiedTx, AdmitError>> {
    let decoded: Vec<Result<SignedTransaction, AdmitError>> = items
        .iter()
        .map(|(raw, _)| decode_checked(raw, config, limits))
        .collect();
    let digests: Vec<Option<Hash>> = decoded
        .iter()
        .zip(items)
        .map(|(tx, (_, claim))| match (tx, claim) {
            (Ok(tx), Some(_)) => Some(tx.tx.signing_digest()),
            _ => None,
        })
        .collect();
    let mut checks = Vec::new();
    let mut at = Vec::new();
    for (i, ((tx, (_, claim)), digest)) in decoded.iter().zip(items).zip(&digests).enumerate() {
        if let (Ok(tx), Some(sender), Some(digest)) = (tx, claim, digest) {
            checks.push((digest, &tx.signature, *sender));
            at.push(i);
        }
    }
    let mut checked: Vec<Option<Result<(), SenderCheckError>>> = vec![None; items.len()];
    for (i, result) in at.into_iter().zip(keys.check_batch(&checks)) {
        checked[i] = Some(result);
    }
    decoded
        .into_iter()
        .zip(items)
        .zip(checked)
        .map(|((tx, (_, claim)), checked)| {
            let tx = tx?;
            match (claim, checked) {
                (Some(sender), Some(result)) => {
                    result?;
                    Ok(VerifiedTx::checked(tx, *sender))
                }
                _ => VerifiedTx::new(tx, config.chain_id),
            }
        })
        .collect()
}

/// The size check, bounded decoding and chain check of a raw transaction.
fn decode_checked(
    raw: &[u8],
    config: &MempoolConfig,
    limits: &Limits,
) -> Result<SignedTransaction, AdmitError> {
    if raw.len() > config.tx_bytes_max {
        return Err(AdmitError::TooLarge {
            bytes: raw.len(),
            max: config.tx_bytes_max,
        });
    }
    let tx: SignedTransaction = decode(raw, limits)?;
    if tx.tx.chain_id != config.chain_id {
        return Err(AdmitError::WrongChain {
            expected: config.chain_id,
            got: tx.tx.chain_id,
        });
    }
    Ok(tx)
}

/// Limits of one block, for [`Mempool::select`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLimits {
    pub gas_max: u64,
    pub bytes_max: usize,
    pub txs_max: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    tx: VerifiedTx,
    /// Arrival order, for deterministic tie-breaks.
    seq: u64,
}

impl Entry {
    fn price(&self) -> u64 {
        self.tx.tx.tx.gas_price
    }

    fn nonce(&self) -> u64 {
        self.tx.tx.tx.nonce
    }

    /// Order of eviction: cheapest first, newest first among equals.
    fn evict_key(&self) -> EvictKey {
        (self.price(), Reverse(self.seq), self.tx.hash)
    }
}

type EvictKey = (u64, Reverse<u64>, Hash);

/// Pending transactions, bounded, per-sender nonce-ordered.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    entries: BTreeMap<Hash, Entry>,
    senders: BTreeMap<Address, BTreeMap<u64, Hash>>,
    /// The last (highest-nonce) transaction of every sender: the only ones
    /// eviction may take.
    tails: BTreeSet<EvictKey>,
    bytes: usize,
    next_seq: u64,
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Self {
        Mempool {
            config,
            entries: BTreeMap::new(),
            senders: BTreeMap::new(),
            tails: BTreeSet::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash)
    }

    pub fn get(&self, hash: &Hash) -> Option<&SignedTransaction> {
        self.entries.get(hash).map(|e| &e.tx.tx)
    }

    /// The sender's next nonce counting its pending transactions that
    /// follow the account nonce without a gap.
    pub fn pending_nonce(&self, sender: &Address, view: &impl AccountView) -> u64 {
        let mut next = view.account(sender).nonce;
        if let Some(queue) = self.senders.get(sender) {
            while queue.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// Admits a checked transaction against the latest state, replacing a
    /// cheaper one with the same (sender, nonce) or evicting cheaper ones
    /// when full. Returns the hashes evicted to make room.
    pub fn insert(
        &mut self,
        vtx: VerifiedTx,
        view: &impl AccountView,
    ) -> Result<Vec<Hash>, AdmitError> {
        let tx = &vtx.tx.tx;
        if self.entries.contains_key(&vtx.hash) {
            return Err(AdmitError::AlreadyKnown(vtx.hash));
        }
        if tx.gas_limit > self.config.tx_gas_max {
            return Err(AdmitError::GasLimitOverBlock {
                gas_limit: tx.gas_limit,
                max: self.config.tx_gas_max,
            });
        }
        let intrinsic = self
            .config
            .tx_gas_base
            .saturating_add(self.config.tx_gas_per_byte.saturating_mul(vtx.bytes as u64));
        if tx.gas_limit < intrinsic {
            return Err(AdmitError::GasBelowIntrinsic {
                gas_limit: tx.gas_limit,
                intrinsic,
            });
        }
        if tx.gas_price < self.config.gas_price_min {
            return Err(AdmitError::GasPriceTooLow {
                min: self.config.gas_price_min,
                got: tx.gas_price,
            });
        }
        if vtx.bytes > self.config.tx_bytes_max {
            return Err(AdmitError::TooLarge {
                bytes: vtx.bytes,
                max: self.config.tx_bytes_max,
            });
        }
        let account = view.account(&vtx.sender);
        if tx.nonce < account.nonce {
            return Err(AdmitError::NonceTooLow {
                expected: account.nonce,
                got: tx.nonce,
            });
        }
        let nonce_max = account.nonce.saturating_add(self.config.nonce_ahead_max);
        if tx.nonce > nonce_max {
            return Err(AdmitError::NonceTooHigh {
                expected: account.nonce,
                max: nonce_max,
                got: tx.nonce,
            });
        }
        match tx.max_cost() {
            Some(cost) if cost <= account.balance => {}
            cost => {
                return Err(AdmitError::InsufficientFunds {
                    balance: account.balance,
                    cost: cost.map_or_else(|| "more than 2^128".into(), |c| c.to_string()),
                });
            }
        }

        let replaced = self
            .senders
            .get(&vtx.sender)
            .and_then(|q| q.get(&tx.nonce))
            .copied();
        if let Some(old_hash) = replaced {
            let old = self.entry(&old_hash).price();
            let bump = (old.saturating_mul(self.config.replace_bump_percent) / 100).max(1);
            let required = old.saturating_add(bump);
            if tx.gas_price < required {
                return Err(AdmitError::ReplacementUnderpriced {
                    old,
                    required,
                    got: tx.gas_price,
                });
            }
        } else {
            let queued = self.senders.get(&vtx.sender).map_or(0, BTreeMap::len);
            if queued >= self.config.sender_txs_max {
                return Err(AdmitError::SenderFull {
                    max: self.config.sender_txs_max,
                });
            }
        }

        let freed_by_replacement = replaced.map_or(0, |h| self.entry(&h).tx.bytes);
        let txs_after = self.entries.len() + usize::from(replaced.is_none());
        let bytes_after = self.bytes - freed_by_replacement + vtx.bytes;
        let evict = self.plan_eviction(&vtx, txs_after, bytes_after)?;

        if let Some(old_hash) = replaced {
            self.remove(&old_hash);
        }
        for hash in &evict {
            self.remove(hash);
        }
        self.add(vtx);
        Ok(evict)
    }

    /// Chooses transactions to evict so that `txs` and `bytes` fit, without
    /// changing anything: only transactions strictly cheaper than `newcomer`,
    /// from other senders, from the end of their queues. Fails with `Full`
    /// if that cannot make enough room.
    fn plan_eviction(
        &self,
        newcomer: &VerifiedTx,
        mut txs: usize,
        mut bytes: usize,
    ) -> Result<Vec<Hash>, AdmitError> {
        let price = newcomer.tx.tx.gas_price;
        let mut plan = Vec::new();
        let mut tails = self.tails.iter().peekable();
        // Predecessors exposed by planned evictions become tails too.
        let mut exposed: BinaryHeap<Reverse<EvictKey>> = BinaryHeap::new();
        while txs > self.config.txs_max || bytes > self.config.bytes_max {
            let from_tails = tails.peek().copied();
            let from_exposed = exposed.peek().map(|r| &r.0);
            let next = match (from_tails, from_exposed) {
                (Some(t), Some(e)) if e < t => exposed.pop().map(|r| r.0),
                (Some(_), _) => tails.next().copied(),
                (None, Some(_)) => exposed.pop().map(|r| r.0),
                (None, None) => None,
            };
            let Some(key) = next else {
                return Err(AdmitError::Full { got: price });
            };
            if key.0 >= price {
                return Err(AdmitError::Full { got: price });
            }
            let victim = self.entry(&key.2);
            if victim.tx.sender == newcomer.sender {
                continue;
            }
            plan.push(key.2);
            txs -= 1;
            bytes -= victim.tx.bytes;
            let queue = &self.senders[&victim.tx.sender];
            if let Some((_, prev)) = queue.range(..victim.nonce()).next_back() {
                exposed.push(Reverse(self.entry(prev).evict_key()));
            }
        }
        Ok(plan)
    }

    fn entry(&self, hash: &Hash) -> &Entry {
        self.entries
            .get(hash)
            .expect("invariant: every indexed hash has an entry")
    }

    fn add(&mut self, tx: VerifiedTx) {
        let entry = Entry {
            seq: self.next_seq,
            tx,
        };
        self.next_seq += 1;
        let queue = self.senders.entry(entry.tx.sender).or_default();
        if let Some((&last_nonce, last_hash)) = queue.last_key_value() {
            if last_nonce < entry.nonce() {
                let old_tail = self.entries[last_hash].evict_key();
                self.tails.remove(&old_tail);
                self.tails.insert(entry.evict_key());
            }
        } else {
            self.tails.insert(entry.evict_key());
        }
        queue.insert(entry.nonce(), entry.tx.hash);
        self.bytes += entry.tx.bytes;
        self.entries.insert(entry.tx.hash, entry);
    }

    /// Removes one transaction; returns it if it was there.
    pub fn remove(&mut self, hash: &Hash) -> Option<SignedTransaction> {
        let entry = self.entries.remove(hash)?;
        self.bytes -= entry.tx.bytes;
        let sender = entry.tx.sender;
        let queue = self
            .senders
            .get_mut(&sender)
            .expect("invariant: an entry's sender has a queue");
        queue.remove(&entry.nonce());
        if self.tails.remove(&entry.evict_key())
            && let Some((_, new_tail)) = queue.last_key_value()
        {
            let key = self.entries[new_tail].evict_key();
            self.tails.insert(key);
        }
        if queue.is_empty() {
            self.senders.remove(&sender);
        }
        Some(entry.tx.tx)
    }

    /// Transactions for the next block, within `limits`: for each sender a
    /// gap-free run from its account nonce whose total cost its balance
    /// covers; across senders, highest gas price first, then arrival order.
    pub fn select(&self, limits: BlockLimits, view: &impl AccountView) -> Vec<SignedTransaction> {
        struct Cursor {
            nonce: u64,
            balance: Amount,
        }
        let mut cursors: BTreeMap<Address, Cursor> = BTreeMap::new();
        let mut heap: BinaryHeap<(u64, Reverse<u64>, Address)> = BinaryHeap::new();
        for (sender, queue) in &self.senders {
            let account = view.account(sender);
            if let Some(hash) = queue.get(&account.nonce) {
                let e = &self.entries[hash];
                heap.push((e.price(), Reverse(e.seq), *sender));
                cursors.insert(
                    *sender,
                    Cursor {
                        nonce: account.nonce,
                        balance: account.balance,
                    },
                );
            }
        }
        let (mut gas, mut bytes) = (0u64, 0usize);
        let mut out = Vec::new();
        while let Some((_, _, sender)) = heap.pop() {
            if out.len() >= limits.txs_max {
                break;
            }
            let queue = &self.senders[&sender];
            let cursor = cursors
                .get_mut(&sender)
                .expect("invariant: every sender in the heap has a cursor");
            let e = &self.entries[&queue[&cursor.nonce]];
            let tx = &e.tx.tx.tx;
            let fits = gas.saturating_add(tx.gas_limit) <= limits.gas_max
                && bytes + e.tx.bytes <= limits.bytes_max;
            let cost = tx.max_cost().filter(|c| *c <= cursor.balance);
            // A sender whose next transaction does not fit waits for the next
            // block: skipping it would leave a gap.
            let (true, Some(cost)) = (fits, cost) else {
                continue;
            };
            gas += tx.gas_limit;
            bytes += e.tx.bytes;
            cursor.balance -= cost;
            cursor.nonce += 1;
            out.push(e.tx.tx.clone());
            if let Some(hash) = queue.get(&cursor.nonce) {
                let next = &self.entries[hash];
                heap.push((next.price(), Reverse(next.seq), sender));
            }
        }
        out
    }

    /// After a block commits: drops its transactions, then revalidates the
    /// queues of its senders against the new state (nonces now used,
    /// balances now short). Returns how many were dropped in all.
    pub fn on_block_committed(
        &mut self,
        committed: &[(Hash, Address)],
        view: &impl AccountView,
    ) -> usize {
        let mut dropped = 0;
        let mut senders = BTreeSet::new();
        for (hash, sender) in committed {
            dropped += usize::from(self.remove(hash).is_some());
            senders.insert(*sender);
        }
        for sender in senders {
            let Some(queue) = self.senders.get(&sender) else {
                continue;
            };
            let account = view.account(&sender);
            let stale: Vec<Hash> = queue
                .values()
                .filter(|h| {
                    let tx = &self.entries[*h].tx.tx.tx;
                    tx.nonce < account.nonce || tx.max_cost().is_none_or(|c| c > account.balance)
                })
                .copied()
                .collect();
            for hash in stale {
                dropped += usize::from(self.remove(&hash).is_some());
            }
        }
        dropped
    }

    /// Checks the internal indexes agree; for tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let mut bytes = 0;
        let mut count = 0;
        for (sender, queue) in &self.senders {
            assert!(!queue.is_empty(), "empty queue kept for {sender}");
            for (nonce, hash) in queue {
                let e = &self.entries[hash];
                assert_eq!(e.nonce(), *nonce);
                assert_eq!(e.tx.sender, *sender);
                bytes += e.tx.bytes;
                count += 1;
            }
            let (_, tail) = queue.last_key_value().expect("non-empty");
            assert!(self.tails.contains(&self.entries[tail].evict_key()));
        }
        assert_eq!(count, self.entries.len());
        assert_eq!(bytes, self.bytes);
        assert_eq!(self.tails.len(), self.senders.len());
        assert!(self.entries.len() <= self.config.txs_max);
        assert!(self.bytes <= self.config.bytes_max);
    }
}
