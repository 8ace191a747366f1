//! The per-sender queues and the indexes that hang on them (tails, gapped
//! transactions by expiry, the ready count, announcements), kept in step
//! with each change, and the check that they agree.

use std::collections::{BTreeMap, BTreeSet};

use stele_types::{Address, Amount, Hash};

use super::{AccountState, Class, Entry, Mempool, Queue};

impl Mempool {
    pub(super) fn entry(&self, hash: &Hash) -> &Entry {
        self.entries
            .get(hash)
            .expect("invariant: every indexed hash has an entry")
    }

    pub(super) fn queue(&self, sender: &Address) -> &Queue {
        self.senders
            .get(sender)
            .expect("invariant: an entry's sender has a queue")
    }

    /// Takes `sender`'s transactions out of the indexes that depend on
    /// their class (tails, gapped, the ready count), before its queue
    /// changes; [`Mempool::index`] puts them back.
    pub(super) fn unindex(&mut self, sender: &Address) {
        let Some(queue) = self.senders.get_mut(sender) else {
            return;
        };
        if let Some(tail) = queue.tail.take() {
            self.tails.remove(&tail);
        }
        // The ready run is every nonce from `nonce` to `ready_end`, and no
        // transaction is kept below `nonce`.
        let ready = queue.ready_end.saturating_sub(queue.nonce);
        self.ready_txs -= usize::try_from(ready).unwrap_or(usize::MAX);
        if queue.gapped_bytes > 0 {
            for hash in queue.txs.range(queue.ready_end..).map(|(_, h)| h) {
                let e = &self.entries[hash];
                self.gapped.remove(&(e.expires_at, *hash));
            }
        }
        // Nothing counted any more: a second call changes nothing.
        queue.ready_end = queue.nonce;
        queue.gapped_bytes = 0;
    }

    /// Classifies `sender`'s transactions and indexes them; drops the
    /// queue if it is empty.
    pub(super) fn index(&mut self, sender: &Address) {
        let Some(queue) = self.senders.get_mut(sender) else {
            return;
        };
        let Some((&last, tail)) = queue.txs.last_key_value() else {
            self.senders.remove(sender);
            return;
        };
        let mut end = queue.nonce;
        for &nonce in queue.txs.range(queue.nonce..).map(|(n, _)| n) {
            if nonce != end {
                break;
            }
            end = end.saturating_add(1);
        }
        queue.ready_end = end;
        self.ready_txs += usize::try_from(end - queue.nonce).unwrap_or(usize::MAX);
        let class = if last < end {
            Class::Ready
        } else {
            Class::Gapped
        };
        let key = self.entries[tail].evict_key(class);
        self.tails.insert(key);
        queue.tail = Some(key);
        for hash in queue.txs.range(..end).map(|(_, h)| h) {
            if queue.to_announce == 0 {
                break;
            }
            if let Some(e) = self.entries.get_mut(hash)
                && e.announce
            {
                e.announce = false;
                queue.to_announce -= 1;
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
    pub(super) fn put(&mut self, entry: Entry, nonce: u64) {
        let queue = self.senders.entry(entry.tx.sender).or_insert(Queue {
            nonce,
            txs: BTreeMap::new(),
            ready_end: nonce,
            gapped_bytes: 0,
            cost: 0,
            to_announce: 0,
            tail: None,
        });
        queue.txs.insert(entry.nonce(), entry.tx.hash);
        queue.cost = queue.cost.saturating_add(entry.cost());
        queue.to_announce += usize::from(entry.announce);
        self.bytes += entry.tx.bytes;
        self.entries.insert(entry.tx.hash, entry);
    }

    /// Removes an entry from its sender's queue, between
    /// [`Mempool::unindex`] and [`Mempool::index`].
    pub(super) fn take(&mut self, hash: &Hash) -> Option<Entry> {
        let entry = self.entries.remove(hash)?;
        self.bytes -= entry.tx.bytes;
        if let Some(queue) = self.senders.get_mut(&entry.tx.sender) {
            queue.txs.remove(&entry.nonce());
            queue.cost = queue.cost.saturating_sub(entry.cost());
            queue.to_announce -= usize::from(entry.announce);
        }
        Some(entry)
    }

    /// Revalidates `sender`'s transactions against `account`: drops those
    /// whose nonce was used, and from the first one its balance cannot pay
    /// together with those before it, that one and all after (keeping the
    /// rest gap-free). Returns how many were dropped.
    pub(super) fn refresh(&mut self, sender: &Address, account: AccountState) -> usize {
        let Some(queue) = self.senders.get(sender) else {
            return 0;
        };
        // No nonce used and everything payable: nothing to drop, and the
        // indexes stand.
        if queue.nonce == account.nonce && queue.cost <= account.balance {
            return 0;
        }
        self.unindex(sender);
        let dropped = self.revalidate(sender, account);
        self.index(sender);
        dropped
    }

    /// [`Mempool::refresh`]'s work, between [`Mempool::unindex`] and
    /// [`Mempool::index`]: the queue takes the account's nonce.
    pub(super) fn revalidate(&mut self, sender: &Address, account: AccountState) -> usize {
        let Some(queue) = self.senders.get_mut(sender) else {
            return 0;
        };
        queue.nonce = account.nonce;
        let used: Vec<Hash> = queue.txs.range(..account.nonce).map(|(_, h)| *h).collect();
        for hash in &used {
            self.take(hash);
        }
        // What is left costs at most its total: when the balance covers
        // that, every transaction is payable with those before it.
        let Some(queue) = self
            .senders
            .get(sender)
            .filter(|q| q.cost > account.balance)
        else {
            return used.len();
        };
        let mut left = Some(account.balance);
        let unpayable: Vec<Hash> = queue
            .txs
            .values()
            .skip_while(|hash| {
                let cost = self.entries[*hash].tx.tx.tx.max_cost();
                left = left
                    .zip(cost)
                    .and_then(|(left, cost)| left.checked_sub(cost));
                left.is_some()
            })
            .copied()
            .collect();
        for hash in &unpayable {
            self.take(hash);
        }
        used.len() + unpayable.len()
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
            let cost = queue
                .txs
                .values()
                .map(|h| self.entries[h].cost())
                .fold(0 as Amount, Amount::saturating_add);
            assert_eq!(queue.cost, cost, "cost of {sender}'s queue");
            let to_announce = queue
                .txs
                .values()
                .filter(|h| self.entries[*h].announce)
                .count();
            assert_eq!(queue.to_announce, to_announce, "to announce of {sender}");
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
