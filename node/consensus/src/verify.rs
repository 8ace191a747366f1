//! Signature checking, behind a trait so a simulation can memoise it.

use std::fmt::Debug;

use stele_types::{Hash, PublicKey, Signature};

/// Checks one signature over one digest.
pub trait Verifier: Debug + Send {
    fn verify(&self, key: &PublicKey, digest: &Hash, signature: &Signature) -> bool;
}

/// Plain k256 verification, what the node uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct K256Verifier;

impl Verifier for K256Verifier {
    fn verify(&self, key: &PublicKey, digest: &Hash, signature: &Signature) -> bool {
        key.verify(digest, signature).is_ok()
    }
}
