//! Prepared keys of recent senders, for checking a transaction whose
//! sender is claimed in advance: by the validator that gossiped it (which
//! recovered the sender itself) or by the client that submitted it.
//!
//! Recovering a signer costs a scalar multiplication of a point that is new
//! with every signature; checking that a signature recovers to a known key
//! ([`PreparedKey::verify_recoverable`]) multiplies only points with
//! precomputed tables, about half the cost. A validator checks every
//! transaction once, whichever validator received it, so with the sender
//! claimed three of four checks (and all four when clients name it) take
//! the cheaper path.
//!
//! A claim is a promise, not a hint: a transaction that does not recover
//! to its claimed sender is rejected ([`SenderCheckError::NotSignedBy`]),
//! so a wrong claim costs one check, never two. A sender's table (~45 KB)
//! is built once [`TABLE_AFTER_TXS`] of its claimed transactions were
//! admitted to the mempool ([`SenderKeys::admitted`]), so one-off senders,
//! and keys that only sign transactions the mempool refuses (no funds),
//! cost nothing beyond their recovery; tables and recovered keys are each
//! kept for a bounded number of recent senders.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lru::LruCache;
use stele_types::{
    Address, CryptoError, Hash, PreparedKey, PublicKey, Signature, verify_recoverable_batch,
};
use thiserror::Error;

/// A sender's table is built when this many of its claimed transactions
/// were admitted (the first ones are recovered): building one costs about
/// three recoveries.
pub const TABLE_AFTER_TXS: u32 = 3;
/// Recovered keys remembered per sender table (33 bytes each, so many more
/// than tables), to count claims towards [`TABLE_AFTER_TXS`].
const SEEN_PER_TABLE: NonZeroUsize = match NonZeroUsize::new(16) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// Why a signature check with a claimed sender failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SenderCheckError {
    #[error("bad signature: {0}")]
    Signature(#[from] CryptoError),
    #[error("transaction is not signed by the claimed sender {0}")]
    NotSignedBy(Address),
}

/// Recently seen senders' keys and the prepared tables of the busiest.
pub struct SenderKeys {
    inner: Option<Mutex<Inner>>,
}

struct Inner {
    /// Keys recovered for claimed senders, and how many of their
    /// transactions checked by recovery were admitted.
    seen: LruCache<Address, (PublicKey, u32)>,
    tables: LruCache<Address, Arc<PreparedKey>>,
}

impl std::fmt::Debug for SenderKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tables = self.inner.as_ref().map(|m| lock(m).tables.len());
        f.debug_struct("SenderKeys")
            .field("tables", &tables)
            .finish_non_exhaustive()
    }
}

impl SenderKeys {
    /// Keeps tables for at most `tables_max` senders; 0 keeps none (every
    /// claim is then checked by recovery).
    pub fn new(tables_max: usize) -> Self {
        let inner = NonZeroUsize::new(tables_max).map(|tables| {
            Mutex::new(Inner {
                seen: LruCache::new(tables.saturating_mul(SEEN_PER_TABLE)),
                tables: LruCache::new(tables),
            })
        });
        SenderKeys { inner }
    }

    /// Checks that `sig` over `digest` recovers to `claimed`: with its
    /// prepared table when there is one, by recovery otherwise.
    pub fn check(
        &self,
        digest: &Hash,
        sig: &Signature,
        claimed: Address,
    ) -> Result<(), SenderCheckError> {
        let mut results = self.check_batch(&[(digest, sig, claimed)]);
        results
            .pop()
            .unwrap_or(Err(SenderCheckError::Signature(CryptoError::BadSignature)))
    }

    /// [`SenderKeys::check`] for many transactions, results in order: the
    /// checks against tables share their inversions
    /// ([`verify_recoverable_batch`], about a quarter cheaper each in
    /// batches of 64).
    pub fn check_batch(
        &self,
        checks: &[(&Hash, &Signature, Address)],
    ) -> Vec<Result<(), SenderCheckError>> {
        let Some(inner) = &self.inner else {
            return checks
                .iter()
                .map(|(digest, sig, claimed)| {
                    recover_and_compare(digest, sig, *claimed).map(|_| ())
                })
                .collect();
        };
        let tables: Vec<Option<Arc<PreparedKey>>> = {
            let mut inner = lock(inner);
            checks
                .iter()
                .map(|(_, _, claimed)| inner.tables.get(claimed).cloned())
                .collect()
        };
        let mut results = Vec::with_capacity(checks.len());
        let mut prepared = Vec::new();
        let mut at = Vec::new();
        for (i, ((digest, sig, claimed), table)) in checks.iter().zip(&tables).enumerate() {
            match table {
                Some(table) => {
                    prepared.push((&**table, *digest, *sig));
                    at.push(i);
                    // Filled in from the batch below.
                    results.push(Ok(()));
                }
                None => {
                    let checked = recover_and_compare(digest, sig, *claimed);
                    if let Ok(key) = checked {
                        lock(inner).seen.get_or_insert(*claimed, || (key, 0));
                    }
                    results.push(checked.map(|_| ()));
                }
            }
        }
        for (i, result) in at.into_iter().zip(verify_recoverable_batch(&prepared)) {
            let claimed = checks[i].2;
            results[i] = result.map_err(|e| match e {
                CryptoError::BadSignature => SenderCheckError::NotSignedBy(claimed),
                other => SenderCheckError::Signature(other),
            });
        }
        results
    }

    /// Counts a transaction of `sender` that passed [`SenderKeys::check`]
    /// and was admitted to the mempool; builds the sender's table at the
    /// [`TABLE_AFTER_TXS`]th.
    pub fn admitted(&self, sender: &Address) {
        let Some(inner) = &self.inner else {
            return;
        };
        let key = {
            let mut inner = lock(inner);
            match inner.seen.get_mut(sender) {
                Some(entry) => {
                    entry.1 = entry.1.saturating_add(1);
                    (entry.1 >= TABLE_AFTER_TXS).then_some(entry.0)
                }
                // Checked with its table already, or forgotten.
                None => None,
            }
        };
        if let Some(key) = key {
            // Built outside the lock (~0.3 ms); two threads may race to
            // build the same table, and either copy does.
            if let Ok(table) = key.prepare() {
                let mut inner = lock(inner);
                inner.seen.pop(sender);
                inner.tables.put(*sender, Arc::new(table));
            }
        }
    }

    /// Whether `sender`'s table is kept.
    pub fn has_table(&self, sender: &Address) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|m| lock(m).tables.contains(sender))
    }
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // Every update is one cache operation, so a poisoned lock still holds
    // consistent caches.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn recover_and_compare(
    digest: &Hash,
    sig: &Signature,
    claimed: Address,
) -> Result<PublicKey, SenderCheckError> {
    let key = sig.recover(digest)?;
    if key.address() == claimed {
        Ok(key)
    } else {
        Err(SenderCheckError::NotSignedBy(claimed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_types::{SecretKey, keccak256};

    fn key(n: u8) -> SecretKey {
        let mut b = [0u8; 32];
        b[31] = n;
        SecretKey::from_bytes(&b).unwrap()
    }

    #[test]
    fn claims_are_checked_before_and_after_the_table_is_built() {
        let keys = SenderKeys::new(4);
        let (alice, bob) = (key(1), key(2));
        for i in 0..2 * TABLE_AFTER_TXS {
            assert_eq!(keys.has_table(&alice.address()), i >= TABLE_AFTER_TXS);
            let d = keccak256(&i.to_le_bytes());
            let sig = alice.sign_digest(&d);
            assert_eq!(keys.check(&d, &sig, alice.address()), Ok(()), "tx {i}");
            keys.admitted(&alice.address());
            // Refused claims are never admitted, so never counted.
            assert_eq!(
                keys.check(&d, &sig, bob.address()),
                Err(SenderCheckError::NotSignedBy(bob.address())),
                "tx {i}"
            );
            let other = keccak256(b"other");
            assert_eq!(
                keys.check(&other, &sig, alice.address()),
                Err(SenderCheckError::NotSignedBy(alice.address())),
                "tx {i}"
            );
        }
        assert!(keys.has_table(&alice.address()));
        assert!(!keys.has_table(&bob.address()));
    }

    #[test]
    fn batches_decide_as_single_checks() {
        let keys = SenderKeys::new(4);
        // Key 1 gets a table, key 2 does not.
        for i in 0..TABLE_AFTER_TXS {
            let d = keccak256(&[i as u8]);
            keys.check(&d, &key(1).sign_digest(&d), key(1).address())
                .unwrap();
            keys.admitted(&key(1).address());
        }
        let d = keccak256(b"batch");
        let mut bad_v = key(1).sign_digest(&d);
        bad_v.0[64] = 9;
        let cases = [
            (key(1).sign_digest(&d), key(1).address()),
            (key(2).sign_digest(&d), key(2).address()),
            (key(2).sign_digest(&d), key(1).address()),
            (key(1).sign_digest(&d), key(2).address()),
            (bad_v, key(1).address()),
            (key(1).sign_digest(&keccak256(b"other")), key(1).address()),
        ];
        let checks: Vec<(&Hash, &Signature, Address)> = cases
            .iter()
            .map(|(sig, claimed)| (&d, sig, *claimed))
            .collect();
        let single: Vec<_> = checks
            .iter()
            .map(|(d, sig, claimed)| keys.check(d, sig, *claimed))
            .collect();
        assert_eq!(keys.check_batch(&checks), single);
        assert_eq!(
            single,
            [
                Ok(()),
                Ok(()),
                Err(SenderCheckError::NotSignedBy(key(1).address())),
                Err(SenderCheckError::NotSignedBy(key(2).address())),
                Err(SenderCheckError::Signature(CryptoError::InvalidRecoveryId(
                    9
                ))),
                Err(SenderCheckError::NotSignedBy(key(1).address())),
            ]
        );
        assert!(keys.check_batch(&[]).is_empty());
    }

    #[test]
    fn checks_alone_build_no_table() {
        let keys = SenderKeys::new(4);
        let k = key(1);
        for i in 0..2 * TABLE_AFTER_TXS {
            let d = keccak256(&[i as u8]);
            keys.check(&d, &k.sign_digest(&d), k.address()).unwrap();
        }
        assert!(!keys.has_table(&k.address()));
        // Admitting a sender never checked does nothing either.
        for _ in 0..TABLE_AFTER_TXS {
            keys.admitted(&key(2).address());
        }
        assert!(!keys.has_table(&key(2).address()));
    }

    #[test]
    fn malformed_signatures_keep_their_error() {
        let keys = SenderKeys::new(4);
        let alice = key(1);
        let d = keccak256(b"m");
        for _ in 0..TABLE_AFTER_TXS {
            keys.check(&d, &alice.sign_digest(&d), alice.address())
                .unwrap();
            keys.admitted(&alice.address());
        }
        assert!(keys.has_table(&alice.address()));
        let mut sig = alice.sign_digest(&d);
        sig.0[64] = 5;
        assert_eq!(
            keys.check(&d, &sig, alice.address()),
            Err(SenderCheckError::Signature(CryptoError::InvalidRecoveryId(
                5
            )))
        );
    }

    #[test]
    fn tables_are_bounded_and_zero_keeps_none() {
        let keys = SenderKeys::new(2);
        for n in 1..=5u8 {
            let k = key(n);
            for i in 0..TABLE_AFTER_TXS {
                let d = keccak256(&[n, i as u8]);
                keys.check(&d, &k.sign_digest(&d), k.address()).unwrap();
                keys.admitted(&k.address());
            }
        }
        let kept: Vec<bool> = (1..=5u8)
            .map(|n| keys.has_table(&key(n).address()))
            .collect();
        assert_eq!(kept, [false, false, false, true, true]);

        let none = SenderKeys::new(0);
        let k = key(1);
        for i in 0..2 * TABLE_AFTER_TXS {
            let d = keccak256(&[i as u8]);
            assert_eq!(none.check(&d, &k.sign_digest(&d), k.address()), Ok(()));
            none.admitted(&k.address());
            assert!(!none.has_table(&k.address()));
            assert_eq!(
                none.check(&d, &k.sign_digest(&d), key(2).address()),
                Err(SenderCheckError::NotSignedBy(key(2).address()))
            );
        }
    }
}
