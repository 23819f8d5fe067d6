//! Many vectors in one committed polynomial, and many evaluation claims reduced to one.
//!
//! A [`Layout`] packs vectors of lengths `2^k_i` into one vector: sorted by decreasing size,
//! each starts at an offset that is a multiple of its own size, so vector `i` is the subcube
//! where the high `n - k_i` variables equal `offset_i >> k_i`. A claim `ṽ_i(z) = y` is then a
//! claim about the packed polynomial `P`: `Σ_x P(x)·sel_i(x_hi)·eq(z, x_lo) = y`.
//!
//! [`prove`]/[`verify`] batch claims with random weights `λ_i` into
//! `Σ_x P(x)·E(x) = Σ λ_i y_i`, `E = Σ λ_i sel_i ⊗ eq(z_i)`, run one degree-2 sumcheck, and
//! leave one evaluation `P̃(ρ)` for the polynomial commitment; the verifier computes `Ẽ(ρ)`
//! itself in `O(#claims · n)`.

use crate::error::VerifyError;
use crate::field::{ceil_log2, ef, EF, F};
use crate::mle::{eq_bits_eval, eq_eval, eq_table_scaled};
use crate::sumcheck;
use crate::transcript::{Challenger, ProverTranscript, VerifierTranscript};
use p3_field::PrimeCharacteristicRing;

/// Placement of vectors of sizes `2^log_lens[i]` in one packed vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Offset of each vector.
    pub offsets: Vec<usize>,
    /// `log2` of each vector's (padded) length.
    pub log_lens: Vec<usize>,
    /// Used length (sum of the sizes).
    pub len: usize,
    /// Variables of the packed polynomial: `ceil(log2 len)`.
    pub num_vars: usize,
}

impl Layout {
    /// Pack vectors with the given `log2` sizes.
    pub fn new(log_lens: &[usize]) -> Self {
        let mut order: Vec<usize> = (0..log_lens.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(log_lens[*i]));
        let mut offsets = vec![0; log_lens.len()];
        let mut off = 0usize;
        for i in order {
            offsets[i] = off;
            off += 1usize << log_lens[i];
        }
        Self {
            offsets,
            log_lens: log_lens.to_vec(),
            len: off,
            num_vars: ceil_log2(off),
        }
    }

    /// Number of vectors.
    pub fn count(&self) -> usize {
        self.log_lens.len()
    }

    /// `sel_i(ρ_hi)`: the eq-weight of vector `i`'s subcube at `point`.
    pub fn selector(&self, i: usize, point: &[EF]) -> EF {
        let k = self.log_lens[i];
        let hi = self.num_vars - k;
        eq_bits_eval(self.offsets[i] >> k, &point[..hi])
    }

    /// The low coordinates of `point` that index inside vector `i`.
    pub fn local<'a>(&self, i: usize, point: &'a [EF]) -> &'a [EF] {
        &point[self.num_vars - self.log_lens[i]..]
    }

    /// Pack the vectors (each zero-padded to its size).
    pub fn pack(&self, vectors: &[Vec<F>]) -> Vec<F> {
        assert_eq!(vectors.len(), self.count());
        let mut out = vec![F::ZERO; self.len];
        for (i, v) in vectors.iter().enumerate() {
            assert!(v.len() <= 1 << self.log_lens[i], "vector {i} too long");
            out[self.offsets[i]..self.offsets[i] + v.len()].copy_from_slice(v);
        }
        out
    }
}

/// A claim `ṽ_vector(point) = value` about one packed vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Which vector of the layout.
    pub vector: usize,
    /// The point (length = that vector's `log2` size).
    pub point: Vec<EF>,
    /// The claimed value.
    pub value: EF,
}

/// Prove all `claims` about the packed `poly`. Sends `P̃(ρ)` and returns `(ρ, P̃(ρ))`.
pub fn prove(
    tr: &mut ProverTranscript,
    layout: &Layout,
    poly: &[F],
    claims: &[Claim],
) -> (Vec<EF>, EF) {
    let size = 1usize << layout.num_vars;
    let lambdas = tr.challenge_ef_vec(claims.len());
    let mut e = vec![EF::ZERO; size];
    for (c, l) in claims.iter().zip(&lambdas) {
        let off = layout.offsets[c.vector];
        let t = eq_table_scaled(&c.point, *l);
        for (x, y) in e[off..off + t.len()].iter_mut().zip(t) {
            *x += y;
        }
    }
    let mut p: Vec<EF> = poly.iter().map(|x| ef(*x)).collect();
    p.resize(size, EF::ZERO);
    let mut polys = [p, e];
    let rho = sumcheck::prove(tr, &mut polys, 2, |v| v[0] * v[1]);
    let value = polys[0][0];
    tr.send_ef(value);
    (rho, value)
}

/// Verify the batch; returns `(ρ, P̃(ρ))`, the evaluation left to the commitment.
pub fn verify(
    tr: &mut VerifierTranscript<'_>,
    layout: &Layout,
    claims: &[Claim],
) -> Result<(Vec<EF>, EF), VerifyError> {
    for c in claims {
        if c.vector >= layout.count() || c.point.len() != layout.log_lens[c.vector] {
            return Err(VerifyError::Claim("claim does not fit the layout"));
        }
    }
    let lambdas = tr.challenge_ef_vec(claims.len());
    let total: EF = claims.iter().zip(&lambdas).map(|(c, l)| c.value * *l).sum();
    let (rho, fin) = sumcheck::verify(tr, total, layout.num_vars, 2)?;
    let value = tr.recv_ef()?;
    let e: EF = claims
        .iter()
        .zip(&lambdas)
        .map(|(c, l)| {
            *l * layout.selector(c.vector, &rho) * eq_eval(&c.point, layout.local(c.vector, &rho))
        })
        .sum();
    if fin != value * e {
        return Err(VerifyError::Sumcheck(
            "claim batch does not reduce to the opening",
        ));
    }
    Ok((rho, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{ef_from_i64, f_from_i64};
    use crate::mle::eval_f;

    #[test]
    fn layout_is_aligned_and_selectors_match() {
        let l = Layout::new(&[2, 5, 0, 3, 3]);
        assert_eq!(l.len, 4 + 32 + 1 + 8 + 8);
        assert_eq!(l.num_vars, 6);
        for i in 0..l.count() {
            assert_eq!(l.offsets[i] % (1 << l.log_lens[i]), 0);
        }
        let vecs: Vec<Vec<F>> = l
            .log_lens
            .iter()
            .enumerate()
            .map(|(i, k)| {
                (0..(1 << k))
                    .map(|j| f_from_i64(i as i64 * 100 + j))
                    .collect()
            })
            .collect();
        let packed = l.pack(&vecs);
        let rho: Vec<EF> = (0..6).map(|i| ef_from_i64(i * 13 + 5)).collect();
        // P(ρ) = Σ sel_i(ρ) v_i(ρ_lo)
        let direct = eval_f(&packed, &rho);
        let by_parts: EF = (0..l.count())
            .map(|i| l.selector(i, &rho) * eval_f(&vecs[i], l.local(i, &rho)))
            .sum();
        assert_eq!(direct, by_parts);
    }

    #[test]
    fn batch_complete_and_false_claim_rejected() {
        let l = Layout::new(&[3, 1, 4]);
        let vecs: Vec<Vec<F>> = l
            .log_lens
            .iter()
            .map(|k| (0..(1 << k)).map(|j| f_from_i64(j * j - 3)).collect())
            .collect();
        let packed = l.pack(&vecs);
        let claims: Vec<Claim> = (0..3)
            .chain(0..2)
            .map(|i| {
                let point: Vec<EF> = (0..l.log_lens[i])
                    .map(|j| ef_from_i64(7 * j as i64 + i as i64 + 2))
                    .collect();
                let value = eval_f(&vecs[i], &point);
                Claim {
                    vector: i,
                    point,
                    value,
                }
            })
            .collect();
        let mut p = ProverTranscript::new(b"b");
        let (rho, v) = prove(&mut p, &l, &packed, &claims);
        assert_eq!(v, eval_f(&packed, &rho));
        let proof = p.finish();
        let mut t = VerifierTranscript::new(b"b", &proof);
        let (rho2, v2) = verify(&mut t, &l, &claims).unwrap();
        assert_eq!((rho2, v2), (rho, v));
        let mut bad = claims.clone();
        bad[2].value += EF::ONE;
        let mut t = VerifierTranscript::new(b"b", &proof);
        assert!(verify(&mut t, &l, &bad).is_err());
    }
}
