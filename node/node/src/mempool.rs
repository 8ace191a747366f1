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
//!
//! This module holds the configuration and the pool's types; its children
//! hold the stateless checks (`verify`), admission and eviction (`admit`),
//! the per-sender indexes (`index`) and what leaves the pool (`select`).

mod admit;
mod index;
mod select;
mod verify;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use stele_types::{Address, Amount, Hash, SignedTransaction};

pub use verify::{AdmitError, VerifiedTx, verify_raw, verify_raw_as, verify_raw_batch};

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

    /// The most this transaction can cost its sender (admission refuses
    /// one whose cost overflows).
    fn cost(&self) -> Amount {
        self.tx.tx.tx.max_cost().unwrap_or(Amount::MAX)
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
    /// The most all its transactions can cost together (their
    /// `max_cost`s; admission keeps it within the balance, so it fits).
    cost: Amount,
    /// How many of its entries wait to be announced.
    to_announce: usize,
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
    /// Only looked up, never iterated, so its order cannot leak; hashed
    /// with a per-process random key, so no sender can grind hashes that
    /// collide.
    entries: HashMap<Hash, Entry>,
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
    /// Follows the chain's protocol: admission checks its intrinsic gas
    /// and its block gas limit (transactions already in the pool stay; a
    /// proposer drops one that no block can take).
    pub fn set_protocol(&mut self, p: &stele_types::ProtocolParams) {
        self.config.tx_gas_max = p.block_gas_max;
        self.config.tx_gas_base = p.tx_gas_base;
        self.config.tx_gas_per_byte = p.tx_gas_per_byte;
    }

    pub fn at_height(config: MempoolConfig, height: u64) -> Self {
        Mempool {
            config,
            height,
            entries: HashMap::new(),
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
}
