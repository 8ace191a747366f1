//! secp256k1 ECDSA keys and recoverable signatures (k256).
//!
//! A [`Signature`] is 65 bytes: `r || s || v`, with `s` in the lower half of
//! the curve order (high-S signatures are malleable copies and are rejected)
//! and `v` the recovery id (0 or 1). Every signed digest is built by the
//! caller from a domain tag, so a signature is bound to one kind of message.

use std::fmt;

use k256::ecdsa::{RecoveryId, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::address::Address;
use crate::fixed_base::{self, FixedBase};
use crate::hash::Hash;
use crate::hex::hex_newtype;

/// Why a key or signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("invalid secret key")]
    InvalidSecretKey,
    #[error("invalid public key")]
    InvalidPublicKey,
    #[error("malformed signature")]
    MalformedSignature,
    #[error("signature s value is in the upper half of the curve order (high-S)")]
    HighS,
    #[error("invalid recovery id {0}")]
    InvalidRecoveryId(u8),
    #[error("signature does not verify")]
    BadSignature,
}

/// A 65-byte recoverable ECDSA signature `r || s || v`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 65]);

hex_newtype!(Signature, 65);

/// A compressed SEC1 secp256k1 public key (33 bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 33]);

hex_newtype!(PublicKey, 33);

/// A secp256k1 signing key. Its `Debug` form never shows the secret.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.address())
    }
}

impl SecretKey {
    /// Parses a 32-byte big-endian scalar; zero and values >= n are rejected.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<SecretKey, CryptoError> {
        SigningKey::from_slice(bytes)
            .map(SecretKey)
            .map_err(|_| CryptoError::InvalidSecretKey)
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> SecretKey {
        SecretKey(SigningKey::random(&mut rand_core::OsRng))
    }

    /// The 32-byte big-endian scalar. Handle with care.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_verifying_key(self.0.verifying_key())
    }

    pub fn address(&self) -> Address {
        self.public_key().address()
    }

    /// Signs a 32-byte digest, returning a low-S recoverable signature.
    pub fn sign_digest(&self, digest: &Hash) -> Signature {
        let (sig, recid) = self
            .0
            .sign_prehash_recoverable(&digest.0)
            .expect("invariant: signing a 32-byte prehash with a valid key cannot fail");
        let (sig, recid) = match sig.normalize_s() {
            Some(low) => (
                low,
                RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced()),
            ),
            None => (sig, recid),
        };
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = recid.to_byte();
        Signature(out)
    }
}

impl PublicKey {
    fn from_verifying_key(vk: &VerifyingKey) -> PublicKey {
        let point = vk.to_encoded_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        PublicKey(out)
    }

    fn verifying_key(&self) -> Result<VerifyingKey, CryptoError> {
        VerifyingKey::from_sec1_bytes(&self.0).map_err(|_| CryptoError::InvalidPublicKey)
    }

    /// Checks that the bytes are a point on the curve.
    pub fn validate(&self) -> Result<(), CryptoError> {
        self.verifying_key().map(|_| ())
    }

    /// The account address of this key. An invalid key (which `validate`
    /// rejects) maps to the zero address, which no valid key has.
    pub fn address(&self) -> Address {
        match self.verifying_key() {
            Ok(vk) => {
                let point = vk.to_encoded_point(false);
                let mut uncompressed = [0u8; 65];
                uncompressed.copy_from_slice(point.as_bytes());
                Address::from_uncompressed_pubkey(&uncompressed)
            }
            Err(_) => Address::default(),
        }
    }

    /// Checks that `sig` is this key's signature of `digest`: exactly the
    /// signatures that [`Signature::recover`] maps to this key, so each
    /// (key, digest) pair has one valid encoding (low-S, and `v` the
    /// parity of the signing point's y; plain ECDSA verification ignores
    /// `v`, which would let anyone flip it). Errors as the recovery's for a
    /// malformed or non-canonical signature, else
    /// [`CryptoError::BadSignature`].
    pub fn verify(&self, digest: &Hash, sig: &Signature) -> Result<(), CryptoError> {
        use k256::elliptic_curve::ops::{Invert, LinearCombination, Reduce};
        use k256::{FieldBytes, ProjectivePoint, Scalar, U256};

        let key = self.verifying_key()?;
        let (parsed, recid) = sig.parts()?;
        let (r, s) = parsed.split_scalars();
        let z = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest.0));
        let s_inv: Scalar = *s.invert_vartime();
        let point = ProjectivePoint::lincomb(
            &ProjectivePoint::GENERATOR,
            &(z * s_inv),
            &ProjectivePoint::from(*key.as_affine()),
            &(*r * s_inv),
        );
        if is_signing_point(&point, &r, recid.is_y_odd()) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }

    /// Plain ECDSA verification (SEC 1 v2, 4.1.4) of `sig`'s `r` and `s`,
    /// after the form checks of [`Signature::recover`] (low-S, `v` 0 or 1,
    /// `r` not reduced); `v` is otherwise ignored, so a signature and its
    /// flipped-`v` twin both pass. This is the protocol's rule where it was
    /// fixed before [`PublicKey::verify`] became strict, so that executing
    /// old and new blocks gives the same results: the VM's
    /// `secp256k1_verify` host function and governance vote proofs.
    /// Everywhere else use [`PublicKey::verify`].
    pub fn verify_ecdsa(&self, digest: &Hash, sig: &Signature) -> Result<(), CryptoError> {
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        let key = self.verifying_key()?;
        let (sig, _) = sig.parts()?;
        key.verify_prehash(&digest.0, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// This key as a table of its curve point's
    /// multiples, for checking many signatures by the same signer (a
    /// validator's votes): each check is then about twice as fast, and the
    /// table costs about as much as a dozen checks to build and ~45 KB.
    pub fn prepare(&self) -> Result<PreparedKey, CryptoError> {
        let key = self.verifying_key()?;
        let table = FixedBase::new(&key.as_affine().into(), fixed_base::KEY_WINDOW);
        Ok(PreparedKey { table })
    }
}

/// A [`PublicKey`] parsed for verification ([`PublicKey::prepare`]).
#[derive(Clone, Debug)]
pub struct PreparedKey {
    table: FixedBase,
}

impl PreparedKey {
    /// [`PublicKey::verify`] without parsing the key again, with both
    /// multiplications done from precomputed tables: `Ok` exactly when
    /// recovering `sig` over `digest` ([`Signature::recover`]) would give
    /// this key, the same error as the recovery for a malformed or
    /// non-canonical signature, and [`CryptoError::BadSignature`]
    /// otherwise. Property tests hold it equal to recovering and comparing.
    ///
    /// Recovery computes `Q = r⁻¹(s·R − z·G)` from the point `R` with
    /// x-coordinate `r` and y parity `v`; rearranged, `Q` is this key
    /// exactly when `z/s·G + r/s·Q` is that same `R`, so this checks the
    /// whole point (x equal to `r`, not just modulo the order, and the
    /// parity of y) where plain ECDSA verification checks only x modulo
    /// the order. About half the cost of a recovery.
    pub fn verify(&self, digest: &Hash, sig: &Signature) -> Result<(), CryptoError> {
        let mut results = verify_recoverable_batch(&[(self, digest, sig)]);
        results.pop().unwrap_or(Err(CryptoError::BadSignature))
    }
}

/// Whether `point` is the signing point a recoverable signature names: not
/// the identity, x equal to `r` (`Signature::parts` refused x-reduced ids,
/// so x is `r` itself, not `r` plus the order) and y of parity `y_odd`.
fn is_signing_point(point: &k256::ProjectivePoint, r: &k256::Scalar, y_odd: bool) -> bool {
    use k256::elliptic_curve::group::Group;
    use k256::elliptic_curve::point::AffineCoordinates;
    if bool::from(point.is_identity()) {
        return false;
    }
    let affine = point.to_affine();
    affine.x() == r.to_bytes() && bool::from(affine.y_is_odd()) == y_odd
}

/// [`PreparedKey::verify`] for many signatures at once, each
/// against its own key: the same results, in order, with the inversions
/// shared (one scalar inversion for all the `s⁻¹` and one field inversion
/// to bring all the points to affine form, instead of one of each per
/// signature).
pub fn verify_recoverable_batch(
    checks: &[(&PreparedKey, &Hash, &Signature)],
) -> Vec<Result<(), CryptoError>> {
    use k256::elliptic_curve::BatchNormalize;
    use k256::elliptic_curve::group::Group;
    use k256::elliptic_curve::ops::{Invert, Reduce};
    use k256::elliptic_curve::point::AffineCoordinates;
    use k256::{FieldBytes, ProjectivePoint, Scalar, U256};

    struct Parsed<'a> {
        index: usize,
        key: &'a PreparedKey,
        r: Scalar,
        s: Scalar,
        z: Scalar,
        y_odd: bool,
    }

    let mut results = vec![Err(CryptoError::BadSignature); checks.len()];
    let mut parsed = Vec::with_capacity(checks.len());
    for (index, (key, digest, sig)) in checks.iter().enumerate() {
        match sig.parts() {
            Ok((sig, recid)) => {
                let (r, s) = sig.split_scalars();
                parsed.push(Parsed {
                    index,
                    key,
                    r: *r,
                    s: *s,
                    z: <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest.0)),
                    y_odd: recid.is_y_odd(),
                });
            }
            Err(e) => results[index] = Err(e),
        }
    }
    // k256's batch normalization fails on an empty batch.
    if parsed.is_empty() {
        return results;
    }
    // Every s⁻¹ from one inversion: prefix products forward, then peel
    // them off backwards (`s` is never zero, so neither is any product).
    let mut prefix = Vec::with_capacity(parsed.len());
    let mut product = Scalar::ONE;
    for p in &parsed {
        prefix.push(product);
        product *= p.s;
    }
    let Some(mut inverse) = Option::<Scalar>::from(product.invert_vartime()) else {
        return results;
    };
    let mut s_inv = vec![Scalar::ZERO; parsed.len()];
    for (i, p) in parsed.iter().enumerate().rev() {
        s_inv[i] = inverse * prefix[i];
        inverse *= p.s;
    }
    let points: Vec<ProjectivePoint> = parsed
        .iter()
        .zip(&s_inv)
        .map(|(p, s_inv)| {
            fixed_base::generator().mul(&(p.z * s_inv)) + p.key.table.mul(&(p.r * s_inv))
        })
        .collect();
    let affine = ProjectivePoint::batch_normalize(points.as_slice());
    for ((p, point), projective) in parsed.iter().zip(&affine).zip(&points) {
        // As `is_signing_point`, on the batch-normalized point.
        let same = !bool::from(projective.is_identity())
            && point.x() == p.r.to_bytes()
            && bool::from(point.y_is_odd()) == p.y_odd;
        results[p.index] = if same {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        };
    }
    results
}

impl Signature {
    fn parts(&self) -> Result<(k256::ecdsa::Signature, RecoveryId), CryptoError> {
        let sig = k256::ecdsa::Signature::from_slice(&self.0[..64])
            .map_err(|_| CryptoError::MalformedSignature)?;
        if sig.normalize_s().is_some() {
            return Err(CryptoError::HighS);
        }
        let v = self.0[64];
        let recid = RecoveryId::from_byte(v).ok_or(CryptoError::InvalidRecoveryId(v))?;
        if recid.is_x_reduced() {
            // r >= n happens with negligible probability; refusing it keeps
            // one signature per (key, digest) pair.
            return Err(CryptoError::InvalidRecoveryId(v));
        }
        Ok((sig, recid))
    }

    /// Recovers the public key that made this signature over `digest`, after
    /// checking the signature is canonical (low-S, v in {0, 1}) and valid.
    pub fn recover(&self, digest: &Hash) -> Result<PublicKey, CryptoError> {
        self.recover_key(digest)
            .map(|vk| PublicKey::from_verifying_key(&vk))
    }

    /// Recovers the signer's address.
    pub fn recover_address(&self, digest: &Hash) -> Result<Address, CryptoError> {
        let vk = self.recover_key(digest)?;
        let point = vk.to_encoded_point(false);
        let mut uncompressed = [0u8; 65];
        uncompressed.copy_from_slice(point.as_bytes());
        Ok(Address::from_uncompressed_pubkey(&uncompressed))
    }

    /// Public-key recovery (SEC 1 v2, section 4.1.6): `Q = r⁻¹(s·R − z·G)`
    /// with `R` the curve point whose x is `r` and whose y parity is `v`.
    ///
    /// k256's `VerifyingKey::recover_from_prehash` computes the same point
    /// and then runs a full ECDSA verification against it, which cannot
    /// fail for the point it just computed (`z/s·G + r/s·Q = R`, whose x is
    /// `r`) and doubles the cost of every transaction's sender check. This
    /// is the same computation without that second scalar multiplication;
    /// a property test holds it equal to k256's on valid and invalid input.
    fn recover_key(&self, digest: &Hash) -> Result<VerifyingKey, CryptoError> {
        use k256::elliptic_curve::ops::{Invert, Reduce};
        use k256::elliptic_curve::point::DecompressPoint;
        use k256::elliptic_curve::subtle::Choice;
        use k256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, U256};

        let (sig, recid) = self.parts()?;
        let (r, s) = sig.split_scalars();
        // A 32-byte digest is already the field-size prefix ECDSA takes.
        let z = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest.0));
        // `parts` refused x-reduced ids, so `r` itself is R's x coordinate.
        let big_r =
            AffinePoint::decompress(&r.to_bytes(), Choice::from(u8::from(recid.is_y_odd())));
        let big_r = Option::<AffinePoint>::from(big_r).ok_or(CryptoError::BadSignature)?;
        let r_inv: Scalar = *r.invert_vartime();
        let u1 = -(r_inv * z);
        let u2 = r_inv * *s;
        // The generator's part from its precomputed table, R's by k256.
        let q = fixed_base::generator().mul(&u1) + ProjectivePoint::from(big_r) * u2;
        // The identity is not a key.
        VerifyingKey::from_affine(q.to_affine()).map_err(|_| CryptoError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::keccak256;

    fn key(n: u8) -> SecretKey {
        let mut b = [0u8; 32];
        b[31] = n;
        SecretKey::from_bytes(&b).unwrap()
    }

    #[test]
    fn private_key_one_gives_the_known_address() {
        assert_eq!(
            key(1).address().to_string(),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
    }

    #[test]
    fn sign_then_recover_gives_the_signer() {
        let k = key(7);
        let d = keccak256(b"message");
        let sig = k.sign_digest(&d);
        assert_eq!(sig.recover(&d), Ok(k.public_key()));
        assert_eq!(k.public_key().verify(&d, &sig), Ok(()));
        assert_ne!(sig.recover(&keccak256(b"other")), Ok(k.public_key()));
    }

    #[test]
    fn verify_accepts_only_the_signer_and_the_digest() {
        let k = key(7);
        let d = keccak256(b"message");
        let sig = k.sign_digest(&d);
        let prepared = k.public_key().prepare().unwrap();
        assert_eq!(prepared.verify(&d, &sig), Ok(()));
        assert_eq!(
            prepared.verify(&keccak256(b"other"), &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            key(8).public_key().verify(&d, &sig),
            Err(CryptoError::BadSignature)
        );
        let mut bad_v = sig;
        bad_v.0[64] = 2;
        assert_eq!(
            prepared.verify(&d, &bad_v),
            Err(CryptoError::InvalidRecoveryId(2))
        );
        let mut flipped = sig;
        flipped.0[10] ^= 1;
        assert!(prepared.verify(&d, &flipped).is_err());
        // The other parity: plain ECDSA would pass it (same r and s), so
        // anyone could make a second encoding of a vote or certificate.
        let mut other_v = sig;
        other_v.0[64] ^= 1;
        assert_eq!(
            prepared.verify(&d, &other_v),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            k.public_key().verify(&d, &other_v),
            Err(CryptoError::BadSignature)
        );
        // The protocol's plain-ECDSA rule (VM host function, vote proofs)
        // passes both encodings, and still nothing else.
        assert_eq!(k.public_key().verify_ecdsa(&d, &other_v), Ok(()));
        assert_eq!(k.public_key().verify_ecdsa(&d, &sig), Ok(()));
        assert!(k.public_key().verify_ecdsa(&d, &flipped).is_err());
        assert_eq!(
            key(8).public_key().verify_ecdsa(&d, &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            PublicKey([5; 33]).prepare().map(|_| ()),
            Err(CryptoError::InvalidPublicKey)
        );
    }

    #[test]
    fn high_s_signature_is_rejected() {
        let k = key(9);
        let d = keccak256(b"m");
        let sig = k.sign_digest(&d);
        let parsed = k256::ecdsa::Signature::from_slice(&sig.0[..64]).unwrap();
        // s' = n - s is the malleable twin of the same signature.
        let (r, s) = parsed.split_scalars();
        let high = k256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        let mut bytes = sig.0;
        bytes[..64].copy_from_slice(&high.to_bytes());
        bytes[64] ^= 1;
        assert_eq!(Signature(bytes).recover(&d), Err(CryptoError::HighS));
        assert_eq!(
            k.public_key().verify(&d, &Signature(bytes)),
            Err(CryptoError::HighS)
        );
    }

    /// k256's own recovery, which verifies the recovered key again.
    fn reference_recover(sig: &Signature, d: &Hash) -> Result<PublicKey, CryptoError> {
        let (parsed, recid) = sig.parts()?;
        VerifyingKey::recover_from_prehash(&d.0, &parsed, recid)
            .map(|vk| PublicKey::from_verifying_key(&vk))
            .map_err(|_| CryptoError::BadSignature)
    }

    /// What [`PublicKey::verify`] and [`PreparedKey::verify`] must agree
    /// with: recover,
    /// then compare.
    fn recovers_to(sig: &Signature, d: &Hash, key: &PublicKey) -> Result<(), CryptoError> {
        match sig.recover(d) {
            Ok(recovered) if recovered == *key => Ok(()),
            Ok(_) => Err(CryptoError::BadSignature),
            Err(e) => Err(e),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn recovery_matches_k256_on_real_signatures(
            secret in proptest::array::uniform32(1u8..),
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let k = SecretKey::from_bytes(&secret).unwrap();
            let d = keccak256(&message);
            let sig = k.sign_digest(&d);
            proptest::prop_assert_eq!(sig.recover(&d), Ok(k.public_key()));
            proptest::prop_assert_eq!(sig.recover_address(&d), Ok(k.address()));
            proptest::prop_assert_eq!(sig.recover(&d), reference_recover(&sig, &d));
        }

        #[test]
        fn recovery_matches_k256_on_arbitrary_bytes(
            rs in proptest::collection::vec(proptest::prelude::any::<u8>(), 64),
            v in 0u8..3,
            digest in proptest::array::uniform32(proptest::prelude::any::<u8>()),
        ) {
            let mut bytes = [0u8; 65];
            bytes[..64].copy_from_slice(&rs);
            bytes[64] = v;
            // Keep s low half of the time so recovery itself is reached.
            if v == 0 {
                bytes[32] &= 0x7f;
            }
            let sig = Signature(bytes);
            let d = Hash(digest);
            proptest::prop_assert_eq!(sig.recover(&d), reference_recover(&sig, &d));
            proptest::prop_assert_eq!(
                sig.recover_address(&d),
                reference_recover(&sig, &d).map(|pk| pk.address())
            );
        }

        #[test]
        fn verification_matches_recovery_on_real_signatures(
            secret in proptest::array::uniform32(1u8..),
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            flip in 0usize..70,
        ) {
            let k = SecretKey::from_bytes(&secret).unwrap();
            let public = k.public_key();
            let prepared = public.prepare().unwrap();
            let d = keccak256(&message);
            let mut sig = k.sign_digest(&d);
            proptest::prop_assert_eq!(prepared.verify(&d, &sig), Ok(()));
            proptest::prop_assert_eq!(public.verify(&d, &sig), Ok(()));
            let other = keccak256(&[&message[..], b"x"].concat());
            proptest::prop_assert_eq!(prepared.verify(&other, &sig), recovers_to(&sig, &other, &public));
            proptest::prop_assert_eq!(public.verify(&other, &sig), recovers_to(&sig, &other, &public));
            // One bit flipped in r, s or v (v's low bit names the other
            // point with the same x, which recovers to another key: plain
            // ECDSA verification would still pass it).
            if let Some(b) = sig.0.get_mut(flip) {
                *b ^= 1;
            }
            proptest::prop_assert_eq!(prepared.verify(&d, &sig), recovers_to(&sig, &d, &public));
            proptest::prop_assert_eq!(public.verify(&d, &sig), recovers_to(&sig, &d, &public));
        }

        #[test]
        fn verification_matches_recovery_on_arbitrary_bytes(
            rs in proptest::collection::vec(proptest::prelude::any::<u8>(), 64),
            v in 0u8..3,
            digest in proptest::array::uniform32(proptest::prelude::any::<u8>()),
        ) {
            let mut bytes = [0u8; 65];
            bytes[..64].copy_from_slice(&rs);
            bytes[64] = v;
            if v == 0 {
                bytes[32] &= 0x7f;
            }
            let sig = Signature(bytes);
            let d = Hash(digest);
            // The key such a signature recovers to, when it recovers at
            // all, must pass; another key must not.
            if let Ok(signer) = sig.recover(&d) {
                proptest::prop_assert_eq!(signer.prepare().unwrap().verify(&d, &sig), Ok(()));
                proptest::prop_assert_eq!(signer.verify(&d, &sig), Ok(()));
            }
            let k = key(9).public_key();
            let prepared = k.prepare().unwrap();
            proptest::prop_assert_eq!(prepared.verify(&d, &sig), recovers_to(&sig, &d, &k));
            proptest::prop_assert_eq!(k.verify(&d, &sig), recovers_to(&sig, &d, &k));
        }

        #[test]
        fn batched_recoverable_verification_matches_one_by_one(
            cases in proptest::collection::vec(
                (1u8..6, proptest::array::uniform32(proptest::prelude::any::<u8>()), 0usize..80),
                0..12,
            ),
        ) {
            // Signatures by keys 1..=5 checked against key (n % 5) + 1, some
            // with a bit flipped: a mix of valid, wrong-key and malformed.
            let keys: Vec<PreparedKey> =
                (1..=5).map(|n| key(n).public_key().prepare().unwrap()).collect();
            let signed: Vec<(usize, Hash, Signature)> = cases
                .iter()
                .map(|(n, digest, flip)| {
                    let d = Hash(*digest);
                    let mut sig = key(*n).sign_digest(&d);
                    if let Some(b) = sig.0.get_mut(*flip) {
                        *b ^= 1;
                    }
                    let checked = if flip % 3 == 0 { usize::from(*n) % 5 } else { usize::from(*n) - 1 };
                    (checked, d, sig)
                })
                .collect();
            let checks: Vec<(&PreparedKey, &Hash, &Signature)> =
                signed.iter().map(|(k, d, s)| (&keys[*k], d, s)).collect();
            let one_by_one: Vec<Result<(), CryptoError>> =
                checks.iter().map(|(k, d, s)| k.verify(d, s)).collect();
            proptest::prop_assert_eq!(verify_recoverable_batch(&checks), one_by_one);
        }
    }

    #[test]
    fn zero_and_overflowing_secret_keys_are_rejected() {
        assert!(SecretKey::from_bytes(&[0; 32]).is_err());
        assert!(SecretKey::from_bytes(&[0xff; 32]).is_err());
    }
}
