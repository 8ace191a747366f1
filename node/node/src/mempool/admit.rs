//! Admission: the checks against the latest state and the pool's limits,
//! replacement of the same (sender, nonce), and the eviction plan that makes
//! room.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use stele_types::{Address, Hash, SignedTransaction};

use super::{AccountView, AdmitError, Class, Entry, EvictKey, Mempool, VerifiedTx};

impl Mempool {
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
        let replaced_cost = replaced.map_or(0, |h| self.entry(&h).cost());
        let others = queue.map_or(Some(0), |q| q.cost.checked_sub(replaced_cost));
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
}
