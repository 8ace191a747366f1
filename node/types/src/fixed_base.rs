//! Scalar multiplication of a fixed point with a precomputed table, for the
//! points that are multiplied again and again: the generator (in every
//! signature check) and each validator's key (in every consensus vote).
//!
//! The table holds `j * 16^i * P` for `j` in 1..=8 and every 4-bit position
//! `i`, in affine form. A scalar is written in signed radix 16 (digits in
//! -8..=8), so `k * P` is one mixed addition per non-zero digit and no
//! doubling, against about 128 doublings and 160 additions for k256's
//! general two-point combination.
//!
//! Variable time: the digits pick table entries and skip zeros. That is
//! only acceptable because every input here is public (signatures, digests,
//! keys); nothing secret may go through this module.

use k256::elliptic_curve::BatchNormalize;
use k256::{AffinePoint, ProjectivePoint, Scalar};

/// Signed radix-16 digits of a scalar below the group order (< 2^256): 64
/// nibbles plus one carry digit.
const DIGITS: usize = 65;
/// Table entries per digit position: the multiples 1..=8.
const ENTRIES: usize = 8;

/// The precomputed multiples of one point.
#[derive(Clone)]
pub(crate) struct FixedBase {
    /// `rows[i][j] = (j + 1) * 16^i * P`.
    rows: Box<[[AffinePoint; ENTRIES]]>,
}

impl std::fmt::Debug for FixedBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedBase").finish_non_exhaustive()
    }
}

impl FixedBase {
    /// Builds the table of `p` (about 600 point operations and one field
    /// inversion).
    pub(crate) fn new(p: &ProjectivePoint) -> FixedBase {
        let mut projective = Vec::with_capacity(DIGITS * ENTRIES);
        let mut base = *p;
        for _ in 0..DIGITS {
            let mut multiple = base;
            for _ in 0..ENTRIES {
                projective.push(multiple);
                multiple += base;
            }
            for _ in 0..4 {
                base = base.double();
            }
        }
        let affine = ProjectivePoint::batch_normalize(projective.as_slice());
        let rows = affine
            .chunks_exact(ENTRIES)
            .map(|c| {
                let mut row = [AffinePoint::IDENTITY; ENTRIES];
                row.copy_from_slice(c);
                row
            })
            .collect();
        FixedBase { rows }
    }

    /// `k * P`, in variable time.
    pub(crate) fn mul(&self, k: &Scalar) -> ProjectivePoint {
        let mut acc = ProjectivePoint::IDENTITY;
        for (row, digit) in self.rows.iter().zip(signed_radix16(k)) {
            match digit {
                0 => {}
                d if d > 0 => acc += &row[usize::from(d.unsigned_abs()) - 1],
                d => acc += &-row[usize::from(d.unsigned_abs()) - 1],
            }
        }
        acc
    }
}

/// Digits `d_i` in -8..=8 with `sum d_i * 16^i == k`.
fn signed_radix16(k: &Scalar) -> [i8; DIGITS] {
    let bytes = k.to_bytes(); // big-endian
    let mut out = [0i8; DIGITS];
    for (i, b) in bytes.iter().rev().enumerate() {
        out[2 * i] = (b & 0x0f) as i8;
        out[2 * i + 1] = (b >> 4) as i8;
    }
    // Move each digit from 0..=15 (plus a carry of at most one) to -8..=7
    // (or 8 for the last), carrying into the next position.
    for i in 0..DIGITS - 1 {
        let carry = (out[i] + 8) >> 4;
        out[i] -= carry << 4;
        out[i + 1] += carry;
    }
    out
}

/// The generator's table, built on first use.
pub(crate) fn generator() -> &'static FixedBase {
    static TABLE: std::sync::OnceLock<FixedBase> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| FixedBase::new(&ProjectivePoint::GENERATOR))
}

#[cfg(test)]
mod tests {
    use k256::elliptic_curve::ops::Reduce;
    use k256::{FieldBytes, U256};

    use super::*;

    fn scalar(bytes: [u8; 32]) -> Scalar {
        <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(bytes))
    }

    #[test]
    fn digits_rebuild_the_scalar() {
        let sixteen = Scalar::from(16u64);
        for k in [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            scalar([0x88; 32]),
            scalar([0xff; 32]),
            scalar([0x77; 32]),
        ] {
            let digits = signed_radix16(&k);
            assert!(digits.iter().all(|d| (-8..=8).contains(d)), "{digits:?}");
            let mut sum = Scalar::ZERO;
            for d in digits.iter().rev() {
                sum *= sixteen;
                let v = Scalar::from(u64::from(d.unsigned_abs()));
                sum += if *d < 0 { -v } else { v };
            }
            assert_eq!(sum, k);
        }
    }

    #[test]
    fn edge_scalars_match_plain_multiplication() {
        let g = ProjectivePoint::GENERATOR;
        let p = g * scalar([0x5a; 32]);
        let table = FixedBase::new(&p);
        for k in [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(8u64),
            Scalar::from(9u64),
            scalar([0x88; 32]),
            scalar([0xff; 32]),
        ] {
            assert_eq!(table.mul(&k), p * k);
            assert_eq!(generator().mul(&k), g * k);
        }
    }

    proptest::proptest! {
        #[test]
        fn random_scalars_match_plain_multiplication(
            point in proptest::array::uniform32(proptest::num::u8::ANY),
            k in proptest::array::uniform32(proptest::num::u8::ANY),
        ) {
            let p = ProjectivePoint::GENERATOR * scalar(point);
            let k = scalar(k);
            proptest::prop_assert_eq!(FixedBase::new(&p).mul(&k), p * k);
            proptest::prop_assert_eq!(generator().mul(&k), ProjectivePoint::GENERATOR * k);
        }
    }
}
