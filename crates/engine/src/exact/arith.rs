//! The integer primitives every exact operator is built from: rounding
//! shifts and divisions (round half to even), square roots, quantization of
//! float constants, and range checks. See `docs/exact-mode.md` §2.

/// `round(v / 2^s)` with ties to even when `s > 0`; `v * 2^-s` when `s <= 0`
/// (`None` when that overflows `i128`).
pub fn round_shift(v: i128, s: i32) -> Option<i128> {
    if s <= 0 {
        let l = s.unsigned_abs();
        if l >= 127 {
            return if v == 0 { Some(0) } else { None };
        }
        let r = v.checked_mul(1i128 << l)?;
        return Some(r);
    }
    if s >= 127 {
        // |v / 2^s| <= 2^127 / 2^127: at most one half, which rounds to 0
        // (even).
        return Some(0);
    }
    let s = s as u32;
    let q = v >> s; // floor
    let r = v - (q << s); // 0 <= r < 2^s
    let half = 1i128 << (s - 1);
    Some(if r > half || (r == half && (q & 1) == 1) {
        q + 1
    } else {
        q
    })
}

/// [`round_shift`] for `i64` values and shifts `0..=63` (the hot path).
#[inline(always)]
pub fn round_shift_i64(v: i64, s: u32) -> i64 {
    if s == 0 {
        return v;
    }
    let q = v >> s;
    let r = v.wrapping_sub(q << s);
    let half = 1i64 << (s - 1);
    if r > half || (r == half && (q & 1) == 1) {
        q + 1
    } else {
        q
    }
}

/// `round(n / d)` with ties to even; `None` when `d == 0`.
pub fn div_round(n: i128, d: i128) -> Option<i128> {
    if d == 0 {
        return None;
    }
    let (n, d) = if d < 0 {
        (n.checked_neg()?, -d)
    } else {
        (n, d)
    };
    let q = n.div_euclid(d); // floor, since d > 0
    let r = n - q * d; // 0 <= r < d
    let twice = 2 * r;
    Some(if twice > d || (twice == d && (q & 1) == 1) {
        q + 1
    } else {
        q
    })
}

/// `floor(sqrt(n))`.
pub fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    // Newton's iteration from an over-estimate; decreasing until it stops.
    let bits = 128 - n.leading_zeros();
    let mut x = 1u128 << bits.div_ceil(2);
    loop {
        let y = (x + n / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// `round(sqrt(n))` (never a tie: `(k + 1/2)^2` is not an integer).
pub fn sqrt_round(n: u128) -> u128 {
    let s = isqrt(n);
    if n - s * s > s {
        s + 1
    } else {
        s
    }
}

/// `2^e` as an `f64` (exact for `-1022 <= e <= 1023`).
pub fn pow2(e: i32) -> f64 {
    let e = e.clamp(-1022, 1023);
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// The exponent `e` with `2^(e-1) <= |x| < 2^e`, for finite non-zero `x`.
pub fn exponent(x: f64) -> i32 {
    let x = x.abs();
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: 2^-1074 * mantissa.
        let m = bits & ((1u64 << 52) - 1);
        return -1074 + (64 - m.leading_zeros() as i32);
    }
    biased - 1022
}

/// `2^63` as `f64`.
pub const TWO63: f64 = 9_223_372_036_854_775_808.0;

/// `round(x * 2^f)` with ties to even (exact: the scaling by a power of two
/// is exact in binary floating point); `None` for NaN, infinities and
/// results outside `i64`.
pub fn quantize(x: f64, f: i32) -> Option<i64> {
    if !x.is_finite() {
        return None;
    }
    // Split large scalings so that each factor is a normal power of two.
    let mut y = x;
    let mut f = f;
    while f > 1000 {
        y *= pow2(1000);
        f -= 1000;
    }
    while f < -1000 {
        y *= pow2(-1000);
        f += 1000;
    }
    let y = (y * pow2(f)).round_ties_even();
    if (-TWO63..TWO63).contains(&y) {
        Some(y as i64)
    } else {
        None
    }
}

/// The fractional bits a constant tensor gets when it is used as a
/// multiplicand (weights): the largest `f` with `max|c| * 2^f < 2^(bits-1)`
/// (`f = bits - 1 - e` with `2^(e-1) <= max|c| < 2^e`), or 0 for an
/// all-zero tensor. See the spec, "weight scale rule".
pub fn weight_frac(values: &[f64], bits: u32) -> i32 {
    let m = values.iter().fold(0f64, |m, v| m.max(v.abs()));
    if m == 0.0 || !m.is_finite() {
        return 0;
    }
    bits as i32 - 1 - exponent(m)
}

/// Real value `v * 2^-frac` as `f64` (exact for every `i32` value and
/// `|frac| < 1000`).
pub fn dequantize(v: i64, frac: i32) -> f64 {
    (v as f64) * pow2(-frac)
}

/// `floor(a * b / 2^s)` for magnitudes whose product needs up to 256 bits
/// (truncation of the magnitude, i.e. rounding toward zero).
pub fn mul_shr(a: i128, b: i128, s: u32) -> i128 {
    let neg = (a < 0) != (b < 0);
    let (hi, lo) = mul_u128(a.unsigned_abs(), b.unsigned_abs());
    let m = if s == 0 {
        lo
    } else if s >= 128 {
        hi >> (s - 128)
    } else {
        (lo >> s) | (hi << (128 - s))
    };
    let m = m as i128;
    if neg {
        -m
    } else {
        m
    }
}

/// Full 128x128 -> 256-bit product as (high, low).
fn mul_u128(a: u128, b: u128) -> (u128, u128) {
    let mask = u64::MAX as u128;
    let (a0, a1) = (a & mask, a >> 64);
    let (b0, b1) = (b & mask, b >> 64);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & mask) + (p10 & mask);
    let lo = (p00 & mask) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_shift_is_half_to_even() {
        let cases = [
            (5i128, 1, 2i128),
            (7, 1, 4),
            (-5, 1, -2),
            (-7, 1, -4),
            (6, 2, 2),
            (10, 2, 2),
            (-6, 2, -2),
            (3, 0, 3),
            (3, -2, 12),
            (1 << 100, 127, 0),
        ];
        for (v, s, want) in cases {
            assert_eq!(round_shift(v, s), Some(want), "{v} >> {s}");
            if (0..64).contains(&s) {
                assert_eq!(round_shift_i64(v as i64, s as u32) as i128, want);
            }
        }
        assert_eq!(round_shift(i128::MAX, -1), None);
    }

    #[test]
    fn division_and_roots() {
        assert_eq!(div_round(5, 2), Some(2));
        assert_eq!(div_round(7, 2), Some(4));
        assert_eq!(div_round(-5, 2), Some(-2));
        assert_eq!(div_round(5, -2), Some(-2));
        assert_eq!(div_round(1, 3), Some(0));
        assert_eq!(div_round(2, 3), Some(1));
        assert_eq!(div_round(1, 0), None);
        for n in 0u128..2000 {
            let s = isqrt(n);
            assert!(s * s <= n && (s + 1) * (s + 1) > n);
            let r = sqrt_round(n);
            assert!(((r as f64) - (n as f64).sqrt()).abs() <= 0.5);
        }
        assert_eq!(isqrt(u128::MAX), u64::MAX as u128);
    }

    #[test]
    fn quantization_and_scales() {
        assert_eq!(quantize(0.5, 1), Some(1));
        assert_eq!(quantize(2.5, 0), Some(2));
        assert_eq!(quantize(-2.5, 0), Some(-2));
        assert_eq!(quantize(1.0 / 16.0, 4), Some(1));
        assert_eq!(quantize(f64::NAN, 4), None);
        assert_eq!(exponent(1.0), 1);
        assert_eq!(exponent(0.75), 0);
        assert_eq!(exponent(3.0), 2);
        assert_eq!(weight_frac(&[0.75, -0.1], 16), 15);
        assert_eq!(weight_frac(&[0.0], 16), 0);
        assert_eq!(mul_shr(3 << 100, 5 << 100, 200), 15);
        assert_eq!(mul_shr(-(3 << 100), 5 << 100, 200), -15);
    }
}
