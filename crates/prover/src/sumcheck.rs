//! The sumcheck protocol for `Σ_{x ∈ {0,1}^n} G(p_1(x), ..., p_m(x))`, where the `p_k` are
//! multilinear and `G` is a polynomial of total degree `d` (products of two or three
//! multilinears, the eq-weighted fraction combination of the logUp GKR, ...).
//!
//! Round `i` binds the first remaining variable. The prover sends the round polynomial
//! `g_i(X) = Σ_{x'} G(p(r_1..r_{i-1}, X, x'))` as its values at `0, 2, 3, ..., d`; the value at
//! 1 is implied by `g_i(0) + g_i(1) = claim_{i-1}` (so that check cannot be skipped). The
//! verifier samples `r_i`, sets `claim_i = g_i(r_i)`, and after `n` rounds is left with the
//! claim `G(p(r)) = claim_n`, which the caller checks against evaluations of the `p_k` at `r`
//! (soundness error `n·d/|EF|` by Schwartz–Zippel).

use crate::error::VerifyError;
use crate::field::{EF, F};
use crate::mle::fold_first;
use crate::transcript::{Challenger, ProverTranscript, VerifierTranscript};
use p3_field::{Field, PrimeCharacteristicRing};

/// Run the prover. `polys` all have length `2^n`; on return each has been folded to its
/// single evaluation at the returned point `r` (so `polys[k][0] = p̃_k(r)`).
pub fn prove<G>(
    tr: &mut ProverTranscript,
    polys: &mut [Vec<EF>],
    degree: usize,
    combine: G,
) -> Vec<EF>
where
    G: Fn(&[EF]) -> EF,
{
    assert!(degree >= 1, "degree must be positive");
    let len = polys.first().map_or(1, Vec::len);
    assert!(len.is_power_of_two(), "length must be a power of two");
    assert!(polys.iter().all(|p| p.len() == len), "lengths differ");
    let num_vars = len.trailing_zeros() as usize;
    let m = polys.len();
    let mut point = Vec::with_capacity(num_vars);
    let mut cur = vec![EF::ZERO; m];
    let mut diff = vec![EF::ZERO; m];
    for _ in 0..num_vars {
        let h = polys[0].len() / 2;
        let mut evals = vec![EF::ZERO; degree + 1];
        for j in 0..h {
            for k in 0..m {
                let lo = polys[k][j];
                cur[k] = lo;
                diff[k] = polys[k][j + h] - lo;
            }
            evals[0] += combine(&cur);
            for e in evals.iter_mut().skip(1) {
                for k in 0..m {
                    cur[k] += diff[k];
                }
                *e += combine(&cur);
            }
        }
        tr.send_ef(evals[0]);
        for e in &evals[2..] {
            tr.send_ef(*e);
        }
        let r = tr.challenge_ef();
        for p in polys.iter_mut() {
            fold_first(p, r);
        }
        point.push(r);
    }
    point
}

/// Run the verifier for `num_vars` rounds of degree `degree` starting from `claim`.
/// Returns the random point and the final claim `G(p(r))`, which the caller must check.
pub fn verify(
    tr: &mut VerifierTranscript<'_>,
    mut claim: EF,
    num_vars: usize,
    degree: usize,
) -> Result<(Vec<EF>, EF), VerifyError> {
    let mut point = Vec::with_capacity(num_vars);
    let mut evals = vec![EF::ZERO; degree + 1];
    for _ in 0..num_vars {
        evals[0] = tr.recv_ef()?;
        evals[1] = claim - evals[0];
        for e in evals.iter_mut().skip(2) {
            *e = tr.recv_ef()?;
        }
        let r = tr.challenge_ef();
        claim = interpolate(&evals, r);
        point.push(r);
    }
    Ok((point, claim))
}

/// The value at `r` of the polynomial of degree `< evals.len()` taking `evals[i]` at `i`
/// (Lagrange form, everything in the field: the denominator of node `i` is
/// `Π_{j≠i} (i − j) = (−1)^(n−1−i)·i!·(n−1−i)!`, non-zero for any `n < p`).
pub fn interpolate(evals: &[EF], r: EF) -> EF {
    let n = evals.len();
    if n == 0 {
        return EF::ZERO;
    }
    let node = |j: usize| EF::from(F::from_u64(j as u64));
    let mut fact = vec![F::ONE; n];
    for k in 1..n {
        fact[k] = fact[k - 1] * F::from_u64(k as u64);
    }
    // suffix[i] = Π_{j > i} (r − j); the prefix product runs along
    let mut suffix = vec![EF::ONE; n];
    for i in (0..n - 1).rev() {
        suffix[i] = suffix[i + 1] * (r - node(i + 1));
    }
    let mut prefix = EF::ONE;
    let mut acc = EF::ZERO;
    for (i, e) in evals.iter().enumerate() {
        let mut den = fact[i] * fact[n - 1 - i];
        if (n - 1 - i) % 2 == 1 {
            den = -den;
        }
        acc += *e * prefix * suffix[i] * den.inverse();
        prefix *= r - node(i);
    }
    acc
}

/// Sumcheck for `Σ a(x)·b(x)` (degree 2). Returns the point and `(ã(r), b̃(r))`.
pub fn prove_product2(tr: &mut ProverTranscript, a: Vec<EF>, b: Vec<EF>) -> (Vec<EF>, [EF; 2]) {
    let mut polys = [a, b];
    let r = prove(tr, &mut polys, 2, |v| v[0] * v[1]);
    (r, [polys[0][0], polys[1][0]])
}

/// Sumcheck for `Σ a(x)·b(x)·c(x)` (degree 3). Returns the point and the three evaluations.
pub fn prove_product3(
    tr: &mut ProverTranscript,
    a: Vec<EF>,
    b: Vec<EF>,
    c: Vec<EF>,
) -> (Vec<EF>, [EF; 3]) {
    let mut polys = [a, b, c];
    let r = prove(tr, &mut polys, 3, |v| v[0] * v[1] * v[2]);
    (r, [polys[0][0], polys[1][0], polys[2][0]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{ef_from_i64, ef_to_bytes, f_from_i64};
    use crate::mle::eval_ef;

    fn vecs(n: usize, seed: i64) -> Vec<EF> {
        (0..n)
            .map(|i| ef_from_i64((i as i64 * 31 + seed) % 97 - 40))
            .collect()
    }

    #[test]
    fn product2_complete() {
        let a = vecs(16, 3);
        let b = vecs(16, 11);
        let claim: EF = a.iter().zip(&b).map(|(x, y)| *x * *y).sum();
        let mut p = ProverTranscript::new(b"sc");
        let (rp, ev) = prove_product2(&mut p, a.clone(), b.clone());
        assert_eq!(ev[0], eval_ef(&a, &rp));
        assert_eq!(ev[1], eval_ef(&b, &rp));
        let proof = p.finish();
        let mut v = VerifierTranscript::new(b"sc", &proof);
        let (rv, fin) = verify(&mut v, claim, 4, 2).unwrap();
        assert_eq!(rv, rp);
        assert_eq!(fin, ev[0] * ev[1]);
        v.finish().unwrap();
    }

    #[test]
    fn product3_complete_and_wrong_claim_fails() {
        let a = vecs(32, 1);
        let b = vecs(32, 2);
        let c = vecs(32, 5);
        let claim: EF = (0..32).map(|i| a[i] * b[i] * c[i]).sum();
        let mut p = ProverTranscript::new(b"sc");
        let (_, ev) = prove_product3(&mut p, a, b, c);
        let proof = p.finish();
        let mut v = VerifierTranscript::new(b"sc", &proof);
        let (_, fin) = verify(&mut v, claim, 5, 3).unwrap();
        assert_eq!(fin, ev[0] * ev[1] * ev[2]);
        // a false claim leads to a final claim that does not match
        let mut v = VerifierTranscript::new(b"sc", &proof);
        let (_, fin) = verify(&mut v, claim + EF::ONE, 5, 3).unwrap();
        assert_ne!(fin, ev[0] * ev[1] * ev[2]);
    }

    #[test]
    fn tampered_round_polynomial_fails() {
        let a = vecs(8, 7);
        let b = vecs(8, 9);
        let claim: EF = a.iter().zip(&b).map(|(x, y)| *x * *y).sum();
        let mut p = ProverTranscript::new(b"sc");
        let (_, ev) = prove_product2(&mut p, a, b);
        let proof = p.finish();
        // each round message is 2 extension elements (values at 0 and 2)
        for msg in 0..(proof.len() / 16) {
            let mut bad = proof.clone();
            bad[msg * 16] ^= 1;
            let mut v = VerifierTranscript::new(b"sc", &bad);
            let (_, fin) = verify(&mut v, claim, 3, 2).unwrap();
            assert_ne!(fin, ev[0] * ev[1], "tampered message {msg} accepted");
        }
        // a consistent-looking forgery: shift g(0) up and g(2) accordingly still fails
        let mut bad = proof.clone();
        let g0 = crate::field::ef_from_bytes(bad[..16].try_into().unwrap()).unwrap();
        bad[..16].copy_from_slice(&ef_to_bytes(g0 + EF::ONE));
        let mut v = VerifierTranscript::new(b"sc", &bad);
        let (_, fin) = verify(&mut v, claim, 3, 2).unwrap();
        assert_ne!(fin, ev[0] * ev[1]);
    }

    #[test]
    fn interpolation_is_exact_at_high_degree() {
        // degrees past 20, where `i!·(n−1−i)!` no longer fits an i64
        for n in [1usize, 2, 21, 22, 26, 40, 65] {
            let coef: Vec<EF> = (0..n).map(|k| ef_from_i64(k as i64 * 7 - 11)).collect();
            let g = |x: EF| coef.iter().rev().fold(EF::ZERO, |a, c| a * x + *c);
            let evals: Vec<EF> = (0..n).map(|i| g(ef_from_i64(i as i64))).collect();
            for r in [ef_from_i64(1234567), ef_from_i64(3), ef_from_i64(-5)] {
                assert_eq!(interpolate(&evals, r), g(r), "n = {n}");
            }
        }
    }

    #[test]
    fn interpolation_is_exact() {
        // g(X) = 3X^3 - X + 2
        let g = |x: EF| EF::from(f_from_i64(3)) * x * x * x - x + EF::from(f_from_i64(2));
        let evals: Vec<EF> = (0..4).map(|i| g(ef_from_i64(i))).collect();
        let r = ef_from_i64(1234567);
        assert_eq!(interpolate(&evals, r), g(r));
    }
}
