//! The field: Goldilocks (p = 2^64 - 2^32 + 1) from Plonky3, and its degree-2 binomial
//! extension `F[X]/(X^2 - 7)` (about 2^128 elements) from which every verifier challenge is
//! drawn.

use p3_field::extension::BinomialExtensionField;
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing, PrimeField64};
use p3_goldilocks::Goldilocks;

/// The base field.
pub type F = Goldilocks;
/// The challenge field: the degree-2 extension of [`F`].
pub type EF = BinomialExtensionField<Goldilocks, 2>;

/// The modulus of [`F`].
pub const P: u64 = 0xFFFF_FFFF_0000_0001;

/// Bits of the size of [`EF`] (log2 of p^2, rounded down).
pub const EF_BITS: f64 = 127.99;

/// An integer as a field element (negative values wrap to `p - |v|`).
#[inline]
pub fn f_from_i64(v: i64) -> F {
    F::from_i64(v)
}

/// An unsigned integer as a field element (reduced mod p).
#[inline]
pub fn f_from_u64(v: u64) -> F {
    F::from_u64(v)
}

/// A base element lifted into the extension.
#[inline]
pub fn ef(x: F) -> EF {
    EF::from(x)
}

/// An integer as an extension element.
#[inline]
pub fn ef_from_i64(v: i64) -> EF {
    EF::from(F::from_i64(v))
}

/// Canonical representative of a base element.
#[inline]
pub fn f_to_u64(x: F) -> u64 {
    x.as_canonical_u64()
}

/// The canonical little-endian encoding of a base element (8 bytes).
#[inline]
pub fn f_to_bytes(x: F) -> [u8; 8] {
    x.as_canonical_u64().to_le_bytes()
}

/// Decode a base element; `None` unless the 8 bytes are the canonical encoding.
#[inline]
pub fn f_from_bytes(b: [u8; 8]) -> Option<F> {
    let v = u64::from_le_bytes(b);
    (v < P).then(|| F::from_u64(v))
}

/// The canonical encoding of an extension element (16 bytes: two base coefficients).
#[inline]
pub fn ef_to_bytes(x: EF) -> [u8; 16] {
    let c = x.as_basis_coefficients_slice();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&f_to_bytes(c[0]));
    out[8..].copy_from_slice(&f_to_bytes(c[1]));
    out
}

/// Decode an extension element; `None` unless canonical.
#[inline]
pub fn ef_from_bytes(b: [u8; 16]) -> Option<EF> {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&b[..8]);
    hi.copy_from_slice(&b[8..]);
    let c0 = f_from_bytes(lo)?;
    let c1 = f_from_bytes(hi)?;
    Some(EF::from_basis_coefficients_fn(
        |i| if i == 0 { c0 } else { c1 },
    ))
}

/// `ceil(log2(n))`, with `ceil_log2(0) = ceil_log2(1) = 0`.
#[inline]
pub fn ceil_log2(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p3_field::Field;

    #[test]
    fn encodings_round_trip_and_reject_non_canonical() {
        for v in [0i64, 1, -1, 12345, -99999, i64::from(i32::MAX)] {
            let x = f_from_i64(v);
            assert_eq!(f_from_bytes(f_to_bytes(x)), Some(x));
        }
        assert_eq!(f_from_bytes(P.to_le_bytes()), None);
        assert_eq!(f_from_bytes(u64::MAX.to_le_bytes()), None);
        let e = ef(f_from_i64(-5)) * EF::from_basis_coefficients_fn(|i| f_from_u64(i as u64 + 3));
        assert_eq!(ef_from_bytes(ef_to_bytes(e)), Some(e));
        // the extension really is a field of size p^2: x^(p^2-1) = 1
        let inv = e.inverse();
        assert_eq!(inv * e, EF::ONE);
    }

    #[test]
    fn ceil_log2_values() {
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(3), 2);
        assert_eq!(ceil_log2(784), 10);
        assert_eq!(ceil_log2(1024), 10);
    }
}
