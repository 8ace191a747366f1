//! The mempool: transactions admitted but not yet committed.
//!
//! A plain data structure, no locks or I/O: the node calls it under its own
//! lock, after doing the expensive stateless checks ([`verify_raw`]) outside.
//!
//! Per sender, transactions wait in nonce order, and together they must fit
//! the sender's balance. A transaction behind a missing nonce (gapped) can go
//! in no block and pays nothing while it waits, so a sender's gapped bytes
//! are capped, they expire after a number of blocks, and they are evicted
//! before any ready transaction. Capacity is bounded in count and bytes; when
//! full, a newcomer may evict transactions below it in (gapped before ready,
//! gas price), always taken from the end of a sender's queue so eviction
//! opens no gap. Everything that decides order (block selection, eviction,
//! expiry) is a function of the pool's contents, arrival order and the
//! heights the caller reports; there is no clock.
//!
//! A transaction admitted to be announced (a client's, which this node
//! gossips) is handed out for gossip once it is ready, not before: a gapped
//! one waits until its gap closes (the missing nonce arrives or commits),
//! so a client cannot make every validator hold and carry transactions no
//! block can include ([`Mempool::insert_announced`],
//! [`Mempool::take_announcements`]).

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
    /// Most encoded bytes of one sender's gapped transactions (those
    /// behind a missing nonce, which no block can include yet). Above
    /// `tx_bytes_max`, so any one transaction may arrive out of order;
    /// small, so that parking transactions takes many funded accounts.
    pub sender_gapped_bytes_max: usize,
    /// Blocks after its admission at which a transaction still gapped is
    /// dropped: gapped transactions pay nothing while they wait, so they
    /// must not wait forever. Its sender sends the missing nonce, then
    /// sends it again.
    pub gapped_ttl_blocks: u64,
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
            sender_gapped_bytes_max: 2 << 20,
            gapped_ttl_blocks: 600,
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

/// The mempool reads nonces and balances at the base version. A state
/// backend error reads as an empty account, so the transaction is refused
/// (never admitted on a guess).
impl AccountView for stele_exec::StateBase {
    fn account(&self, address: &Address) -> AccountState {
        match stele_exec::StateWorld::new(self.clone()).account(address) {
            Ok(a) => AccountState {
                nonce: a.nonce,
                balance: a.balance,
            },
            Err(e) => {
                tracing::error!(%address, error = %e, "cannot read account for the mempool");
                AccountState::default()
            }
        }
    }
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
    #[error(
        "insufficient funds: balance {balance}, the sender's pending transactions with this one may cost {cost}"
    )]
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
    #[error(
        "the sender's transactions behind a nonce gap would take {bytes} bytes, over the limit of {max}; send nonce {next_nonce} first"
    )]
    GappedBytesOver {
        next_nonce: u64,
        bytes: usize,
        max: usize,
    },
    #[error(
        "mempool is full and holds nothing cheaper than gas price {got} to make room (a transaction behind a nonce gap may evict only gapped ones)"
    )]
    Full { got: u64 },
}

impl AdmitError {
    /// Whether the submitter could have known better: the transaction
    /// can never be admitted as sent (it does not decode, is for another
    /// chain, is not validly signed, its sender cannot pay, its gas is
    /// out of bounds). The RPC charges these as a flood would cost. A busy
    /// pool or sender, a nonce already used or a duplicate (a wallet's
    /// resend) are not.
    pub fn is_submitters_fault(&self) -> bool {
        match self {
            AdmitError::TooLarge { .. }
            | AdmitError::Malformed(_)
            | AdmitError::WrongChain { .. }
            | AdmitError::BadSignature(_)
            | AdmitError::NotSignedBy(_)
            | AdmitError::InsufficientFunds { .. }
            | AdmitError::GasLimitOverBlock { .. }
            | AdmitError::GasBelowIntrinsic { .. }
            | AdmitError::GasPriceTooLow { .. } => true,
            AdmitError::AlreadyKnown(_)
            | AdmitError::NonceTooLow { .. }
            | AdmitError::NonceTooHigh { .. }
            | AdmitError::ReplacementUnderpriced { .. }
            | AdmitError::SenderFull { .. }
            | AdmitError::GappedBytesOver { .. }
            | AdmitError::Full { .. } => false,
        }
    }
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

/// Whether a pending transaction could go in the next block as far as the
/// pool knows: a ready one follows its account's nonce without a gap, a
/// gapped one waits behind a missing nonce. `Gapped` sorts first, so
/// eviction takes what no block can include before what one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Gapped,
    Ready,
}

#[derive(Debug, Clone)]
struct Entry {
    tx: VerifiedTx,
    /// Arrival order, for deterministic tie-breaks.
    seq: u64,
    /// The height from which this transaction is dropped if it is still
    /// gapped ([`MempoolConfig::gapped_ttl_blocks`] after its admission).
    expires_at: u64,
    /// To be announced (gossiped) once ready; cleared when handed out.
    announce: bool,
}

impl Entry {
    fn price(&self) -> u64 {
        self.tx.tx.tx.gas_price
    }

    fn nonce(&self) -> u64 {
        self.tx.tx.tx.nonce
    }

    /// Order of eviction: gapped before ready, then cheapest first, newest
    /// first among equals.
    fn evict_key(&self, class: Class) -> EvictKey {
        (class, self.price(), Reverse(self.seq), self.tx.hash)
    }
}

type EvictKey = (Class, u64, Reverse<u64>, Hash);

/// One sender's pending transactions, and what the pool's indexes hold
/// of them.
#[derive(Debug)]
struct Queue {
    /// The account's nonce when last read (at the sender's last admission
    /// or the last committed block with its transactions); no transaction
    /// below it is kept.
    nonce: u64,
    txs: BTreeMap<u64, Hash>,
    /// The first nonce from `nonce` with no transaction: those below are
    /// ready, those above gapped.
    ready_end: u64,
    /// Encoded bytes of the gapped transactions.
    gapped_bytes: usize,
    /// The key of the last (highest-nonce) transaction in
    /// [`Mempool::tails`].
    tail: Option<EvictKey>,
}

/// Pending transactions, bounded, per-sender nonce-ordered.
///
/// Every sender's transactions together fit its balance. A transaction
/// behind a nonce gap is admitted within [`MempoolConfig::nonce_ahead_max`]
/// and [`MempoolConfig::sender_gapped_bytes_max`], is evicted before any
/// ready one, and is dropped if still gapped
/// [`MempoolConfig::gapped_ttl_blocks`] after its admission. Heights come
/// from the caller ([`Mempool::on_block_committed`]); there is no clock.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    /// The last committed height the caller reported.
    height: u64,
    entries: BTreeMap<Hash, Entry>,
    senders: BTreeMap<Address, Queue>,
    /// The last transaction of every sender: the only ones eviction may
    /// take, so eviction never opens a gap.
    tails: BTreeSet<EvictKey>,
    /// Gapped transactions by the height they expire at.
    gapped: BTreeSet<(u64, Hash)>,
    /// Transactions that are ready.
    ready_txs: usize,
    /// Gapped transactions dropped at their TTL since the pool was made.
    expired: u64,
    /// Transactions to announce that became ready, in the order they did;
    /// drained by [`Mempool::take_announcements`]. At most one per entry.
    announcements: Vec<Hash>,
    bytes: usize,
    next_seq: u64,
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Self {
        Mempool::at_height(config, 0)
    }

    /// An empty pool above the committed block `height`.
    pub fn at_height(config: MempoolConfig, height: u64) -> Self {
        Mempool {
            config,
            height,
            entries: BTreeMap::new(),
            senders: BTreeMap::new(),
            tails: BTreeSet::new(),
            gapped: BTreeSet::new(),
            ready_txs: 0,
            expired: 0,
            announcements: Vec::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// The last committed height reported by [`Mempool::on_block_committed`].
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Transactions that follow their account's nonce without a gap: what
    /// the next block could include. With none, a proposal would be empty
    /// whatever else waits.
    pub fn ready_len(&self) -> usize {
        self.ready_txs
    }

    /// Transactions waiting behind a nonce gap.
    pub fn gapped_len(&self) -> usize {
        self.gapped.len()
    }

    /// Gapped transactions dropped at their TTL since the pool was made.
    pub fn expired_total(&self) -> u64 {
        self.expired
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

    /// Every pending transaction, ready or gapped, each sender's in nonce
    /// order, senders in address order, up to `txs_max` of them and
    /// `bytes_max` encoded bytes: what a validator offers a peer that
    /// (re)connects. Unlike [`Mempool::select`] it does not read the
    /// state, so a validator whose state lags still offers what it holds;
    /// the peer's admission drops what it cannot use.
    pub fn pending(&self, txs_max: usize, bytes_max: usize) -> Vec<SignedTransaction> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for queue in self.senders.values() {
            for hash in queue.txs.values() {
                let e = &self.entries[hash];
                if out.len() >= txs_max || bytes.saturating_add(e.tx.bytes) > bytes_max {
                    return out;
                }
                bytes += e.tx.bytes;
                out.push(e.tx.tx.clone());
            }
        }
        out
    }

    /// The sender's next nonce counting its pending transactions that
    /// follow the account nonce without a gap.
    pub fn pending_nonce(&self, sender: &Address, view: &impl AccountView) -> u64 {
        let mut next = view.account(sender).nonce;
        if let Some(queue) = self.senders.get(sender) {
            while queue.txs.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// Admits a checked transaction against the latest state, replacing a
    /// cheaper one with the same (sender, nonce) or evicting others when
    /// full. Returns the hashes evicted to make room.
    ///
    /// The sender's pending transactions are first revalidated against
    /// the account just read (used nonces and what the balance no longer
    /// covers are dropped, even if the newcomer is then refused).
    pub fn insert(
        &mut self,
        vtx: VerifiedTx,
        view: &impl AccountView,
    ) -> Result<Vec<Hash>, AdmitError> {
        self.insert_with(vtx, view, false)
    }

    /// [`Mempool::insert`] for a transaction this node announces to its
    /// peers: [`Mempool::take_announcements`] hands it out once it is
    /// ready, at once if it is now, else when its gap closes.
    pub fn insert_announced(
        &mut self,
        vtx: VerifiedTx,
        view: &impl AccountView,
    ) -> Result<Vec<Hash>, AdmitError> {
        self.insert_with(vtx, view, true)
    }

    /// The transactions to announce that have become ready since the last
    /// call, each once, in the order they did, with their senders.
    pub fn take_announcements(&mut self) -> Vec<(Address, SignedTransaction)> {
        let hashes = std::mem::take(&mut self.announcements);
        hashes
            .iter()
            .filter_map(|h| self.entries.get(h))
            .map(|e| (e.tx.sender, e.tx.tx.clone()))
            .collect()
    }

    fn insert_with(
        &mut self,
        vtx: VerifiedTx,
        view: &impl AccountView,
        announce: bool,
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
        self.refresh(&vtx.sender, account);

        let queue = self.senders.get(&vtx.sender);
        let replaced = queue.and_then(|q| q.txs.get(&tx.nonce)).copied();
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
            let queued = queue.map_or(0, |q| q.txs.len());
            if queued >= self.config.sender_txs_max {
                return Err(AdmitError::SenderFull {
                    max: self.config.sender_txs_max,
                });
            }
        }

        // The sender's pending transactions and this one, replacing its
        // predecessor, must be payable together: otherwise a sender could
        // queue many transactions of which the balance pays for one.
        let others = queue.map_or(Some(0), |q| {
            q.txs
                .iter()
                .filter(|(nonce, _)| **nonce != tx.nonce)
                .try_fold(0 as Amount, |sum, (_, h)| {
                    sum.checked_add(self.entry(h).tx.tx.tx.max_cost()?)
                })
        });
        let cost = others.and_then(|o| o.checked_add(tx.max_cost()?));
        match cost {
            Some(cost) if cost <= account.balance => {}
            cost => {
                return Err(AdmitError::InsufficientFunds {
                    balance: account.balance,
                    cost: cost.map_or_else(|| "more than 2^128".into(), |c| c.to_string()),
                });
            }
        }

        let ready_end = queue.map_or(account.nonce, |q| q.ready_end);
        let class = if tx.nonce <= ready_end {
            Class::Ready
        } else {
            // A replacement of a gapped transaction frees its bytes.
            let freed = replaced.map_or(0, |h| self.entry(&h).tx.bytes);
            let bytes = queue.map_or(0, |q| q.gapped_bytes) - freed + vtx.bytes;
            if bytes > self.config.sender_gapped_bytes_max {
                return Err(AdmitError::GappedBytesOver {
                    next_nonce: ready_end,
                    bytes,
                    max: self.config.sender_gapped_bytes_max,
                });
            }
            Class::Gapped
        };

        let freed_by_replacement = replaced.map_or(0, |h| self.entry(&h).tx.bytes);
        let txs_after = self.entries.len() + usize::from(replaced.is_none());
        let bytes_after = self.bytes - freed_by_replacement + vtx.bytes;
        let evict = self.plan_eviction(&vtx, class, txs_after, bytes_after)?;

        for hash in &evict {
            self.remove(hash);
        }
        // A replacement does not restart its predecessor's clock.
        let fresh = self.height.saturating_add(self.config.gapped_ttl_blocks);
        let expires_at = replaced.map_or(fresh, |h| self.entry(&h).expires_at);
        let sender = vtx.sender;
        self.unindex(&sender);
        if let Some(old_hash) = replaced {
            self.take(&old_hash);
        }
        let entry = Entry {
            tx: vtx,
            seq: self.next_seq,
            expires_at,
            announce,
        };
        self.next_seq += 1;
        self.put(entry, account.nonce);
        self.index(&sender);
        Ok(evict)
    }

    /// Chooses transactions to evict so that `txs` and `bytes` fit, without
    /// changing anything: from other senders, from the end of their queues,
    /// only those whose (class, gas price) is below the newcomer's. So a
    /// ready newcomer evicts any gapped transaction, then cheaper ready
    /// ones; a gapped newcomer evicts only cheaper gapped ones. Fails with
    /// `Full` if that cannot make enough room.
    fn plan_eviction(
        &self,
        newcomer: &VerifiedTx,
        class: Class,
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
            // Keys come in order, and those the newcomer may evict are a
            // prefix of that order.
            let Some(key) = next.filter(|k| (k.0, k.1) < (class, price)) else {
                return Err(AdmitError::Full { got: price });
            };
            let victim = self.entry(&key.3);
            if victim.tx.sender == newcomer.sender {
                continue;
            }
            plan.push(key.3);
            txs -= 1;
            bytes -= victim.tx.bytes;
            let queue = self.queue(&victim.tx.sender);
            if let Some((&nonce, prev)) = queue.txs.range(..victim.nonce()).next_back() {
                let class = if nonce < queue.ready_end {
                    Class::Ready
                } else {
                    Class::Gapped
                };
                exposed.push(Reverse(self.entry(prev).evict_key(class)));
            }
        }
        Ok(plan)
    }

    fn entry(&self, hash: &Hash) -> &Entry {
        self.entries
            .get(hash)
            .expect("invariant: every indexed hash has an entry")
    }

    fn queue(&self, sender: &Address) -> &Queue {
        self.senders
            .get(sender)
            .expect("invariant: an entry's sender has a queue")
    }

    /// Takes `sender`'s transactions out of the indexes that depend on
    /// their class (tails, gapped, the ready count), before its queue
    /// changes; [`Mempool::index`] puts them back.
    fn unindex(&mut self, sender: &Address) {
        let Some(queue) = self.senders.get_mut(sender) else {
            return;
        };
        if let Some(tail) = queue.tail.take() {
            self.tails.remove(&tail);
        }
        self.ready_txs -= queue.txs.range(..queue.ready_end).count();
        for hash in queue.txs.range(queue.ready_end..).map(|(_, h)| h) {
            let e = &self.entries[hash];
            self.gapped.remove(&(e.expires_at, *hash));
        }
        // Nothing counted any more: a second call changes nothing.
        queue.ready_end = queue.nonce;
        queue.gapped_bytes = 0;
    }

    /// Classifies `sender`'s transactions and indexes them; drops the
    /// queue if it is empty.
    fn index(&mut self, sender: &Address) {
        let Some(queue) = self.senders.get_mut(sender) else {
            return;
        };
        let Some((&last, tail)) = queue.txs.last_key_value() else {
            self.senders.remove(sender);
            return;
        };
        let mut end = queue.nonce;
        while queue.txs.contains_key(&end) {
            end = end.saturating_add(1);
        }
        queue.ready_end = end;
        let class = if last < end {
            Class::Ready
        } else {
            Class::Gapped
        };
        let key = self.entries[tail].evict_key(class);
        self.tails.insert(key);
        queue.tail = Some(key);
        for hash in queue.txs.range(..end).map(|(_, h)| h) {
            self.ready_txs += 1;
            if let Some(e) = self.entries.get_mut(hash)
                && e.announce
            {
                e.announce = false;
                if self.announcements.len() >= self.config.txs_max {
                    // Never drained: keep only what is still held.
                    let entries = &self.entries;
                    self.announcements.retain(|h| entries.contains_key(h));
                }
                self.announcements.push(*hash);
            }
        }
        for hash in queue.txs.range(end..).map(|(_, h)| h) {
            let e = &self.entries[hash];
            queue.gapped_bytes += e.tx.bytes;
            self.gapped.insert((e.expires_at, *hash));
        }
    }

    /// Adds an entry to its sender's queue (created with the account's
    /// `nonce` if new), between [`Mempool::unindex`] and
    /// [`Mempool::index`].
    fn put(&mut self, entry: Entry, nonce: u64) {
        let queue = self.senders.entry(entry.tx.sender).or_insert(Queue {
            nonce,
            txs: BTreeMap::new(),
            ready_end: nonce,
            gapped_bytes: 0,
            tail: None,
        });
        queue.txs.insert(entry.nonce(), entry.tx.hash);
        self.bytes += entry.tx.bytes;
        self.entries.insert(entry.tx.hash, entry);
    }

    /// Removes an entry from its sender's queue, between
    /// [`Mempool::unindex`] and [`Mempool::index`].
    fn take(&mut self, hash: &Hash) -> Option<Entry> {
        let entry = self.entries.remove(hash)?;
        self.bytes -= entry.tx.bytes;
        if let Some(queue) = self.senders.get_mut(&entry.tx.sender) {
            queue.txs.remove(&entry.nonce());
        }
        Some(entry)
    }

    /// Revalidates `sender`'s transactions against `account`: drops those
    /// whose nonce was used, and from the first one its balance cannot pay
    /// together with those before it, that one and all after (keeping the
    /// rest gap-free). Returns how many were dropped.
    fn refresh(&mut self, sender: &Address, account: AccountState) -> usize {
        let Some(queue) = self.senders.get(sender) else {
            return 0;
        };
        let mut drop = Vec::new();
        let mut left = Some(account.balance);
        for (&nonce, hash) in &queue.txs {
            if nonce < account.nonce {
                drop.push(*hash);
                continue;
            }
            let cost = self.entries[hash].tx.tx.tx.max_cost();
            left = left
                .zip(cost)
                .and_then(|(left, cost)| left.checked_sub(cost));
            if left.is_none() {
                drop.push(*hash);
            }
        }
        self.unindex(sender);
        if let Some(queue) = self.senders.get_mut(sender) {
            queue.nonce = account.nonce;
        }
        for hash in &drop {
            self.take(hash);
        }
        self.index(sender);
        drop.len()
    }

    /// Removes one transaction; returns it if it was there. Removing one
    /// from the middle of a queue leaves the ones after it gapped.
    pub fn remove(&mut self, hash: &Hash) -> Option<SignedTransaction> {
        let sender = self.entries.get(hash)?.tx.sender;
        self.unindex(&sender);
        let entry = self.take(hash);
        self.index(&sender);
        entry.map(|e| e.tx.tx)
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
            if let Some(hash) = queue.txs.get(&account.nonce) {
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
            let queue = &self.senders[&sender].txs;
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

    /// After the block at `height` commits: drops its transactions,
    /// revalidates the queues of its senders against the new state (nonces
    /// now used, balances now short), then drops the transactions still
    /// gapped [`MempoolConfig::gapped_ttl_blocks`] after their admission.
    /// Returns how many were dropped in all.
    pub fn on_block_committed(
        &mut self,
        height: u64,
        committed: &[(Hash, Address)],
        view: &impl AccountView,
    ) -> usize {
        let before = self.entries.len();
        self.height = self.height.max(height);
        let mut senders = BTreeSet::new();
        for (hash, sender) in committed {
            self.remove(hash);
            senders.insert(*sender);
        }
        // Only a sender's own transactions change its nonce or lower its
        // balance, so the other senders' queues stay valid.
        for sender in senders {
            if self.senders.contains_key(&sender) {
                self.refresh(&sender, view.account(&sender));
            }
        }
        while let Some(&(expires_at, hash)) = self.gapped.first() {
            if expires_at > self.height {
                break;
            }
            self.remove(&hash);
            self.expired += 1;
        }
        before - self.entries.len()
    }

    /// Checks the internal indexes agree; for tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let mut bytes = 0;
        let mut count = 0;
        let mut ready = 0;
        let mut gapped = BTreeSet::new();
        let mut tails = BTreeSet::new();
        for (sender, queue) in &self.senders {
            assert!(!queue.txs.is_empty(), "empty queue kept for {sender}");
            let mut end = queue.nonce;
            while queue.txs.contains_key(&end) {
                end += 1;
            }
            assert_eq!(queue.ready_end, end, "ready run of {sender}");
            let mut gapped_bytes = 0;
            for (nonce, hash) in &queue.txs {
                let e = &self.entries[hash];
                assert_eq!(e.nonce(), *nonce);
                assert_eq!(e.tx.sender, *sender);
                assert!(*nonce >= queue.nonce, "a used nonce kept for {sender}");
                bytes += e.tx.bytes;
                count += 1;
                if *nonce < end {
                    ready += 1;
                    assert!(!e.announce, "a ready transaction not announced");
                } else {
                    gapped_bytes += e.tx.bytes;
                    gapped.insert((e.expires_at, *hash));
                }
            }
            assert_eq!(queue.gapped_bytes, gapped_bytes, "gapped bytes of {sender}");
            let (last, tail) = queue.txs.last_key_value().expect("non-empty");
            let class = if *last < end {
                Class::Ready
            } else {
                Class::Gapped
            };
            let key = self.entries[tail].evict_key(class);
            assert_eq!(queue.tail, Some(key));
            tails.insert(key);
        }
        assert_eq!(count, self.entries.len());
        assert_eq!(bytes, self.bytes);
        assert_eq!(ready, self.ready_txs);
        assert_eq!(gapped, self.gapped);
        assert_eq!(tails, self.tails);
        assert!(self.entries.len() <= self.config.txs_max);
        assert!(self.bytes <= self.config.bytes_max);
    }
}
