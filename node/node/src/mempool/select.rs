//! Reading the pool for blocks and peers (`select`, `pending`,
//! `pending_nonce`) and taking transactions out (`remove`, and the clean-up
//! after a block commits).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use stele_types::{Address, Amount, Hash, SignedTransaction};

use super::{AccountView, BlockLimits, Mempool};

impl Mempool {
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
    /// gapped [`MempoolConfig::gapped_ttl_blocks`](super::MempoolConfig::gapped_ttl_blocks)
    /// after their admission. Returns how many were dropped in all.
    pub fn on_block_committed(
        &mut self,
        height: u64,
        committed: &[(Hash, Address)],
        view: &impl AccountView,
    ) -> usize {
        let before = self.entries.len();
        self.height = self.height.max(height);
        let mut by_sender: BTreeMap<Address, Vec<&Hash>> = BTreeMap::new();
        for (hash, sender) in committed {
            by_sender.entry(*sender).or_default().push(hash);
        }
        // Only a sender's own transactions change its nonce or lower its
        // balance, so the other senders' queues stay valid. Each queue is
        // taken out of the indexes once for all its committed transactions.
        for (sender, hashes) in by_sender {
            if !self.senders.contains_key(&sender) {
                continue;
            }
            self.unindex(&sender);
            for hash in hashes {
                if self
                    .entries
                    .get(hash)
                    .is_some_and(|e| e.tx.sender == sender)
                {
                    self.take(hash);
                }
            }
            self.revalidate(&sender, view.account(&sender));
            self.index(&sender);
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
}
