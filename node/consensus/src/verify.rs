//! Signature checking, behind a trait so a simulation can memoise it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use stele_types::{Hash, PreparedKey, PublicKey, Signature};

/// Checks one signature over one digest.
pub trait Verifier: Debug + Send {
    fn verify(&self, key: &PublicKey, digest: &Hash, signature: &Signature) -> bool;
}

/// Most keys [`K256Verifier`] keeps parsed: a validator set's worth and
/// more. Past it, the cache starts over.
const PREPARED_KEYS_MAX: usize = 1_024;

/// k256 verification, what the node uses. Validators' keys are prepared
/// once and kept: a table of multiples that makes each vote check about
/// twice as fast (~45 KB per key, so ~46 MB for the largest validator
/// set). Keys are prepared and signatures checked outside the cache's lock,
/// so concurrent checks do not wait on each other.
#[derive(Debug, Default)]
pub struct K256Verifier {
    prepared: Mutex<BTreeMap<PublicKey, Arc<PreparedKey>>>,
}

impl K256Verifier {
    fn cache(&self) -> std::sync::MutexGuard<'_, BTreeMap<PublicKey, Arc<PreparedKey>>> {
        // Every update is one insert or a clear, so a poisoned lock still
        // holds a consistent map.
        self.prepared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Verifier for K256Verifier {
    fn verify(&self, key: &PublicKey, digest: &Hash, signature: &Signature) -> bool {
        let cached = self.cache().get(key).cloned();
        let prepared_key = match cached {
            Some(k) => k,
            None => {
                let Ok(k) = key.prepare() else {
                    return false;
                };
                let mut cache = self.cache();
                if cache.len() >= PREPARED_KEYS_MAX {
                    cache.clear();
                }
                cache.entry(*key).or_insert_with(|| Arc::new(k)).clone()
            }
        };
        prepared_key.verify(digest, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_with_a_cached_key_and_rejects_others() {
        let sk = stele_types::SecretKey::from_bytes(&[3; 32]).unwrap();
        let digest = stele_types::keccak256(b"vote");
        let sig = sk.sign_digest(&digest);
        let v = K256Verifier::default();
        assert!(v.verify(&sk.public_key(), &digest, &sig));
        assert!(v.verify(&sk.public_key(), &digest, &sig));
        assert!(!v.verify(&sk.public_key(), &stele_types::keccak256(b"x"), &sig));
        let other = stele_types::SecretKey::from_bytes(&[4; 32]).unwrap();
        assert!(!v.verify(&other.public_key(), &digest, &sig));
        assert!(!v.verify(&PublicKey([5; 33]), &digest, &sig));
    }
}
