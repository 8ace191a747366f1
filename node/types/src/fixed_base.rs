//! Scalar multiplication of a fixed point with a precomputed table, for the
//! points that are multiplied again and again: the generator (in every
//! signature check), each validator's key (in every consensus vote) and
//! busy senders' keys.
//!
//! A table of window `w` holds `j * 2^(w·i) * P` for `j` in 1..=2^(w-1) and
//! every `w`-bit position `i`, in affine form. A scalar is written in
//! signed radix `2^w` (digits in -2^(w-1)..=2^(w-1)), so `k * P` is one
//! mixed addition per non-zero digit and no doubling, against about 128
//! doublings and 160 additions for k256's general two-point combination.
//! Keys use 4-bit windows (65 additions, 520 points, ~45 KB); the
//! generator, whose one table every check shares, 8-bit windows (33
//! additions, 4 224 points, ~370 KB).
//!
//! Variable time: the digits pick table entries and skip zeros. That is
//! only acceptable because every input here is public (signatures, digests,
//! keys); nothing secret may go through this module.

use k256::elliptic_curve::BatchNormalize;
use k256::{AffinePoint, ProjectivePoint, Scalar};

/// The window of a key's table: 4 bits.
pub(crate) const KEY_WINDOW: u32 = 4;
/// The window of the generator's table: 8 bits.
const GENERATOR_WINDOW: u32 = 8;
/// Most digits of a scalar below 2^256 (4-bit windows, the narrowest: 64
/// plus a carry).
const DIGITS_MAX: usize = 65;

/// The precomputed multiples of one point.
#[derive(Clone)]
pub(crate) struct FixedBase {
    window: u32,
    /// Row `i` is `entries[i * half .. (i + 1) * half]` with
    /// `half = 2^(window - 1)`; its `j`-th entry is `(j + 1) * 2^(window·i) * P`.
    entries: Box<[AffinePoint]>,
}

impl std::fmt::Debug for FixedBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedBase")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// Digits of a scalar in signed radix `2^window`.
fn digit_count(window: u32) -> usize {
    256usize.div_ceil(window as usize) + 1
}

impl FixedBase {
    /// Builds the table of `p` with `window`-bit digits (4..=8): about
    /// `2^(window-1)` point additions per digit and one field inversion.
    pub(crate) fn new(p: &ProjectivePoint, window: u32) -> FixedBase {
        // Fixed by the callers; narrower windows would need more digits.
        assert!((4..=8).contains(&window), "window {window} out of 4..=8");
        let half = 1usize << (window - 1);
        let rows = digit_count(window);
        let mut projective = Vec::with_capacity(rows * half);
        let mut base = *p;
        for _ in 0..rows {
            let mut multiple = base;
            for _ in 0..half {
                projective.push(multiple);
                multiple += base;
            }
            for _ in 0..window {
                base = base.double();
            }
        }
        let entries = ProjectivePoint::batch_normalize(projective.as_slice()).into_boxed_slice();
        FixedBase { window, entries }
    }

    /// `k * P`, in variable time.
    ///
    /// The entries are gathered first and added after: the loads are then
    /// independent of each other and of the additions, so when the table
    /// is not in cache (a busy sender's key among many) their misses
    /// overlap instead of stalling one addition each.
    pub(crate) fn mul(&self, k: &Scalar) -> ProjectivePoint {
        let half = 1usize << (self.window - 1);
        let (digits, n) = signed_digits(k, self.window);
        let mut picked = [AffinePoint::IDENTITY; DIGITS_MAX];
        let mut count = 0;
        for (row, &digit) in self.entries.chunks_exact(half).zip(&digits[..n]) {
            let index = usize::from(digit.unsigned_abs());
            if index == 0 {
                continue;
            }
            let entry = row[index - 1];
            picked[count] = if digit > 0 { entry } else { -entry };
            count += 1;
        }
        let mut acc = ProjectivePoint::IDENTITY;
        for entry in &picked[..count] {
            acc += entry;
        }
        acc
    }
}

/// Digits `d_i` in -2^(w-1)..=2^(w-1) with `sum d_i * 2^(w·i) == k`, and
/// how many there are.
fn signed_digits(k: &Scalar, window: u32) -> ([i16; DIGITS_MAX], usize) {
    let mut le = k.to_bytes(); // big-endian
    le.reverse();
    let n = digit_count(window);
    let mask = (1u32 << window) - 1;
    let mut out = [0i16; DIGITS_MAX];
    for (i, d) in out.iter_mut().enumerate().take(n) {
        let bit = i * window as usize;
        let byte = bit / 8;
        // Two bytes hold any window of at most 8 bits.
        let lo = u32::from(le.get(byte).copied().unwrap_or(0));
        let hi = u32::from(le.get(byte + 1).copied().unwrap_or(0));
        *d = (((lo | hi << 8) >> (bit % 8)) & mask) as i16;
    }
    // Move each digit from 0..2^w (plus a carry of at most one) to
    // -2^(w-1)..2^(w-1), carrying into the next position; the last digit
    // is only a carry.
    let half = 1i16 << (window - 1);
    for i in 0..n - 1 {
        let carry = (out[i] + half) >> window;
        out[i] -= carry << window;
        out[i + 1] += carry;
    }
    (out, n)
}

/// The generator's table, built on first use (a few milliseconds).
pub(crate) fn generator() -> &'static FixedBase {
    static TABLE: std::sync::OnceLock<FixedBase> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| FixedBase::new(&ProjectivePoint::GENERATOR, GENERATOR_WINDOW))
}

#[cfg(test)]
mod tests {
    use k256::elliptic_curve::ops::Reduce;
    use k256::{FieldBytes, U256};

    use super::*;

    fn scalar(bytes: [u8; 32]) -> Scalar {
        <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(bytes))
    }

    const EDGES: [[u8; 32]; 4] = [[0x88; 32], [0xff; 32], [0x77; 32], [0x80; 32]];

    fn edge_scalars() -> Vec<Scalar> {
        let mut out = vec![
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(8u64),
            Scalar::from(9u64),
            Scalar::from(128u64),
            Scalar::from(129u64),
        ];
        out.extend(EDGES.map(scalar));
        out
    }

    #[test]
    fn digits_rebuild_the_scalar() {
        for window in 4..=8u32 {
            let radix = Scalar::from(1u64 << window);
            let bound = 1i16 << (window - 1);
            for k in edge_scalars() {
                let (digits, n) = signed_digits(&k, window);
                assert!(
                    digits[..n].iter().all(|d| (-bound..=bound).contains(d)),
                    "window {window}: {digits:?}"
                );
                assert!(digits[n..].iter().all(|d| *d == 0));
                let mut sum = Scalar::ZERO;
                for d in digits[..n].iter().rev() {
                    sum *= radix;
                    let v = Scalar::from(u64::from(d.unsigned_abs()));
                    sum += if *d < 0 { -v } else { v };
                }
                assert_eq!(sum, k, "window {window}");
            }
        }
    }

    #[test]
    fn edge_scalars_match_plain_multiplication() {
        let g = ProjectivePoint::GENERATOR;
        let p = g * scalar([0x5a; 32]);
        for window in [KEY_WINDOW, 5, 6, 7, GENERATOR_WINDOW] {
            let table = FixedBase::new(&p, window);
            for k in edge_scalars() {
                assert_eq!(table.mul(&k), p * k, "window {window}");
            }
        }
        for k in edge_scalars() {
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
            proptest::prop_assert_eq!(FixedBase::new(&p, KEY_WINDOW).mul(&k), p * k);
            proptest::prop_assert_eq!(generator().mul(&k), ProjectivePoint::GENERATOR * k);
        }
    }
}
