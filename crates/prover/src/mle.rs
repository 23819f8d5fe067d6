//! Multilinear polynomials given by their evaluations over the boolean hypercube.
//!
//! Convention: a vector `v` of length `2^n` is the multilinear extension `ṽ` in `n` variables
//! with `v[i] = ṽ(bits(i))`, where the **first** variable is the **most significant** bit of
//! `i`. Fixing the first variable to `r` therefore folds the two halves:
//! `v'[j] = v[j] + r·(v[j + 2^(n-1)] - v[j])`. A row-major matrix of `2^a × 2^b` entries is a
//! polynomial in (row variables, column variables).

use crate::field::{ef, EF, F};
use p3_field::PrimeCharacteristicRing;

/// `eq(r, x)` for all `x` in the hypercube: `out[i] = Π_k (r_k if bit_k(i) else 1 - r_k)`.
pub fn eq_table(point: &[EF]) -> Vec<EF> {
    eq_table_scaled(point, EF::ONE)
}

/// `scale · eq(r, x)` for all `x`.
pub fn eq_table_scaled(point: &[EF], scale: EF) -> Vec<EF> {
    let mut out = Vec::with_capacity(1 << point.len());
    out.push(scale);
    for r in point {
        let n = out.len();
        out.resize(2 * n, EF::ZERO);
        // expand in place from the back: new[2i] = t[i](1-r), new[2i+1] = t[i] r
        for i in (0..n).rev() {
            let t = out[i];
            let hi = t * *r;
            out[2 * i + 1] = hi;
            out[2 * i] = t - hi;
        }
    }
    out
}

/// `eq(a, b) = Π (a_k b_k + (1 - a_k)(1 - b_k))`.
pub fn eq_eval(a: &[EF], b: &[EF]) -> EF {
    debug_assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let xy = *x * *y;
            xy + xy - *x - *y + EF::ONE
        })
        .product()
}

/// `eq(bits, r)` where `bits` is the `r.len()`-bit integer `v` (MSB first).
pub fn eq_bits_eval(v: usize, r: &[EF]) -> EF {
    let n = r.len();
    r.iter()
        .enumerate()
        .map(|(k, rk)| {
            if (v >> (n - 1 - k)) & 1 == 1 {
                *rk
            } else {
                EF::ONE - *rk
            }
        })
        .product()
}

/// Fix the first variable of `v` to `r` in place (the length halves).
pub fn fold_first(v: &mut Vec<EF>, r: EF) {
    let h = v.len() / 2;
    for j in 0..h {
        let lo = v[j];
        let hi = v[j + h];
        v[j] = lo + r * (hi - lo);
    }
    v.truncate(h);
}

/// The evaluation `ṽ(point)` of an extension-valued vector of length `2^point.len()`.
pub fn eval_ef(v: &[EF], point: &[EF]) -> EF {
    assert_eq!(
        v.len(),
        1 << point.len(),
        "vector length and point disagree"
    );
    if point.is_empty() {
        return v[0];
    }
    let mut w = v.to_vec();
    for r in point {
        fold_first(&mut w, *r);
    }
    w[0]
}

/// The evaluation `ṽ(point)` of a base-field vector of length at most `2^point.len()`
/// (missing entries are zero).
pub fn eval_f(v: &[F], point: &[EF]) -> EF {
    let n = point.len();
    assert!(v.len() <= 1 << n, "vector longer than the hypercube");
    if n == 0 {
        return v.first().map(|x| ef(*x)).unwrap_or(EF::ZERO);
    }
    // first fold straight from the base field
    let h = 1usize << (n - 1);
    let r = point[0];
    let mut w: Vec<EF> = (0..h)
        .map(|j| {
            let lo = v.get(j).copied().unwrap_or(F::ZERO);
            let hi = v.get(j + h).copied().unwrap_or(F::ZERO);
            r * (hi - lo) + lo
        })
        .collect();
    for r in &point[1..] {
        fold_first(&mut w, *r);
    }
    w[0]
}

/// The evaluation of an integer vector (zero-padded to `2^point.len()`, or padded with
/// `pad` where given) at `point`.
pub fn eval_i64(v: &[i64], pad: i64, point: &[EF]) -> EF {
    let n = 1usize << point.len();
    assert!(v.len() <= n, "vector longer than the hypercube");
    let full: Vec<F> = (0..n)
        .map(|i| crate::field::f_from_i64(v.get(i).copied().unwrap_or(pad)))
        .collect();
    eval_f(&full, point)
}

/// `Σ_i 2^(n-1-i) r_i`: the evaluation at `r` of the vector `(0, 1, ..., 2^n - 1)`.
pub fn identity_eval(r: &[EF]) -> EF {
    let mut acc = EF::ZERO;
    for x in r {
        acc = acc + acc + *x;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{f_from_i64, f_from_u64};
    use p3_field::BasedVectorSpace;

    fn rnd(seed: u64) -> EF {
        EF::from_basis_coefficients_fn(|i| {
            f_from_u64(
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(i as u64 * 77),
            )
        })
    }

    #[test]
    fn eval_matches_eq_sum_and_boolean_points() {
        let v: Vec<F> = (0..8).map(|i| f_from_i64(i * i - 5)).collect();
        let r = [rnd(1), rnd(2), rnd(3)];
        let eq = eq_table(&r);
        let direct: EF = eq.iter().zip(&v).map(|(e, x)| *e * *x).sum();
        assert_eq!(eval_f(&v, &r), direct);
        let vef: Vec<EF> = v.iter().map(|x| ef(*x)).collect();
        assert_eq!(eval_ef(&vef, &r), direct);
        // boolean point (1,0,1) = index 5
        let b = [EF::ONE, EF::ZERO, EF::ONE];
        assert_eq!(eval_f(&v, &b), ef(v[5]));
        assert_eq!(eq_bits_eval(5, &r), eq[5]);
        assert_eq!(eq_eval(&b, &r), eq[5]);
        let ids: Vec<F> = (0..8).map(f_from_u64).collect();
        assert_eq!(eval_f(&ids, &r), identity_eval(&r));
        assert_eq!(eq.iter().copied().sum::<EF>(), EF::ONE);
    }

    #[test]
    fn short_vectors_are_zero_padded() {
        let v: Vec<F> = (0..5).map(|i| f_from_i64(i + 1)).collect();
        let mut padded = v.clone();
        padded.resize(8, F::ZERO);
        let r = [rnd(4), rnd(5), rnd(6)];
        assert_eq!(eval_f(&v, &r), eval_f(&padded, &r));
        assert_eq!(eval_i64(&[1, 2, 3, 4, 5], 0, &r), eval_f(&v, &r));
    }
}
