//! Integer matrix products, convolutions and pools (spec §4.4, §4.5).
//!
//! Sums of products are exact: they are accumulated in `i64` when a bound
//! computed from the operands proves that no partial sum can overflow
//! (always the case for real models), in `i128` otherwise. The result does
//! not depend on which path is taken, nor on SIMD or threads.

use super::arith::round_shift;
use super::ir::XT;
use super::ops::{overflow, R};
use std::borrow::Cow;
use tract_onnx::prelude::tract_ndarray::linalg::general_mat_mul;
use tract_onnx::prelude::tract_ndarray::{ArrayView2, ArrayViewMut2};

/// How the executor may run kernels (never changes results).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Use runtime-detected SIMD instruction sets (AVX2, ...).
    pub simd: bool,
    /// Worker threads for large convolutions and matrix products (1 = none).
    pub threads: usize,
    /// Stop with `EngineError::LimitExceeded` at the first step (node) that
    /// would start after this instant (checked between steps, as tract's
    /// runner does; a step itself is not interrupted).
    pub deadline: Option<std::time::Instant>,
    /// Stop with `EngineError::LimitExceeded` when a step computes a tensor
    /// of more elements than this.
    pub max_tensor_elements: Option<usize>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            simd: true,
            threads: 1,
            deadline: None,
            max_tensor_elements: None,
        }
    }
}

/// Runs a few 256-bit vector instructions through the SIMD dispatcher, so
/// that the compiler's `vzeroupper` at its end leaves the vector registers'
/// upper halves clean. Called after tract code ran (tract's AVX-512 kernels
/// can leave them dirty, which was seen to slow later SSE/AVX2 code of the
/// process down 3-4x). Changes no result.
pub(crate) fn clear_simd_state() {
    let a = std::hint::black_box([1.5f64; 8]);
    let b = std::hint::black_box([2.5f64; 8]);
    let c = pulp::Arch::new().dispatch(|| {
        let mut c = [0f64; 8];
        for i in 0..8 {
            c[i] = a[i] * b[i];
        }
        c
    });
    std::hint::black_box(c);
}

/// Sums of products below this bound are accumulated in `i64`.
pub(crate) const I64_SAFE: i128 = 1i128 << 62;

/// `acc[i][j] += sum_k a[i][k] * b[k][j]` in `i64` (the caller has checked
/// the bound).
#[inline(always)]
fn gemm_kernel(m: usize, k: usize, n: usize, a: &[i32], b: &[i32], acc: &mut [i64]) {
    const NB: usize = 512;
    let mut i0 = 0;
    while i0 < m {
        let rows = (m - i0).min(4);
        let mut j0 = 0;
        while j0 < n {
            let nb = (n - j0).min(NB);
            if rows == 4 {
                let (c0, rest) = acc[i0 * n..].split_at_mut(n);
                let (c1, rest) = rest.split_at_mut(n);
                let (c2, c3) = rest.split_at_mut(n);
                let c0 = &mut c0[j0..j0 + nb];
                let c1 = &mut c1[j0..j0 + nb];
                let c2 = &mut c2[j0..j0 + nb];
                let c3 = &mut c3[j0..j0 + nb];
                for kk in 0..k {
                    let a0 = a[i0 * k + kk] as i64;
                    let a1 = a[(i0 + 1) * k + kk] as i64;
                    let a2 = a[(i0 + 2) * k + kk] as i64;
                    let a3 = a[(i0 + 3) * k + kk] as i64;
                    let br = &b[kk * n + j0..kk * n + j0 + nb];
                    for j in 0..nb {
                        let bv = br[j] as i64;
                        c0[j] = c0[j].wrapping_add(a0.wrapping_mul(bv));
                        c1[j] = c1[j].wrapping_add(a1.wrapping_mul(bv));
                        c2[j] = c2[j].wrapping_add(a2.wrapping_mul(bv));
                        c3[j] = c3[j].wrapping_add(a3.wrapping_mul(bv));
                    }
                }
            } else {
                for r in 0..rows {
                    let c = &mut acc[(i0 + r) * n + j0..(i0 + r) * n + j0 + nb];
                    for kk in 0..k {
                        let av = a[(i0 + r) * k + kk] as i64;
                        if av == 0 {
                            continue;
                        }
                        let br = &b[kk * n + j0..kk * n + j0 + nb];
                        for (cj, bj) in c.iter_mut().zip(br) {
                            *cj = cj.wrapping_add(av.wrapping_mul(*bj as i64));
                        }
                    }
                }
            }
            j0 += nb;
        }
        i0 += rows;
    }
}

/// [`gemm_kernel`] with run-time SIMD dispatch, or plain.
fn gemm_i64(m: usize, k: usize, n: usize, a: &[i32], b: &[i32], acc: &mut [i64], opt: RunOptions) {
    if opt.simd {
        pulp::Arch::new().dispatch(|| gemm_kernel(m, k, n, a, b, acc));
    } else {
        gemm_kernel(m, k, n, a, b, acc);
    }
}

pub(crate) fn max_abs(x: &[i32]) -> i128 {
    x.iter().map(|v| (*v as i64).abs()).max().unwrap_or(0) as i128
}

pub(crate) fn max_abs64(x: &[i64]) -> i128 {
    x.iter().map(|v| (*v as i128).abs()).max().unwrap_or(0)
}

/// Sums of products whose every partial sum is below this bound are exact
/// in binary64 (all terms and partial sums are integers below 2^53).
const F64_EXACT: i128 = 1i128 << 53;

/// A matrix product operand.
#[derive(Clone, Copy)]
pub(crate) enum Opnd<'a> {
    /// A constant: its values as `f64` and `i32`, and its L1 bound (max row
    /// L1 norm for a left operand, max column L1 norm for a right one).
    Const {
        f: &'a [f64],
        n: &'a [i32],
        l1: i128,
        max: i128,
    },
    /// A run-time value.
    Dyn(&'a [i64]),
}

/// Exact `round((A . B + bias) / 2^shift)` for an `m x k` by `k x n`
/// product (spec §4.5). Three exact evaluations, chosen by a bound on every
/// partial sum: binary64 through `matrixmultiply` (integers below 2^53 are
/// exact whatever the order, FMA included), `i64` with SIMD, or `i128`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_exact(
    m: usize,
    k: usize,
    n: usize,
    a: Opnd<'_>,
    b: Opnd<'_>,
    bias: Bias<'_>,
    shift: i32,
    out: &mut [i64],
    opt: RunOptions,
) -> R<()> {
    let amax = match a {
        Opnd::Const { max, .. } => max,
        Opnd::Dyn(x) => max_abs64(x),
    };
    let bmax = match b {
        Opnd::Const { max, .. } => max,
        Opnd::Dyn(x) => max_abs64(x),
    };
    let bound = match (a, b) {
        (Opnd::Const { l1, .. }, _) => l1.saturating_mul(bmax),
        (_, Opnd::Const { l1, .. }) => l1.saturating_mul(amax),
        _ => (k as i128).saturating_mul(amax).saturating_mul(bmax),
    }
    .saturating_add(bias.max_abs());
    // Products of a few rows: binary64 row-times-matrix reading the right
    // operand as i32 (half the memory of f64); others: binary64 GEMM.
    if m < 8 && bound < F64_EXACT {
        if let Some(bn) = as_i32(b) {
            let af = as_f64(a);
            let mut c = vec![0f64; m * n];
            bias.fill_f64(&mut c, n);
            for (i, row) in c.chunks_mut(n.max(1)).enumerate().take(m) {
                let ar = &af[i * k..(i + 1) * k];
                if opt.simd {
                    pulp::Arch::new().dispatch(|| gemv(k, n, ar, &bn, row));
                } else {
                    gemv(k, n, ar, &bn, row);
                }
            }
            for (o, v) in out.iter_mut().zip(&c) {
                *o = round_shift_checked(*v as i64, shift)?;
            }
            return Ok(());
        }
    }
    if bound < F64_EXACT {
        let (af, bf) = (as_f64(a), as_f64(b));
        let mut c = vec![0f64; m * n];
        bias.fill_f64(&mut c, n);
        let bv = ArrayView2::from_shape((k, n), &bf[..]).map_err(|e| e.to_string())?;
        let chunks = if opt.threads > 1 && m >= 2 * opt.threads && m * n * k >= 1 << 20 {
            opt.threads
        } else {
            1
        };
        let rows = m.div_ceil(chunks).max(1);
        let job = |r0: usize, cc: &mut [f64]| -> R<()> {
            let r = cc.len() / n.max(1);
            let av = ArrayView2::from_shape((r, k), &af[r0 * k..(r0 + r) * k])
                .map_err(|e| e.to_string())?;
            let mut cv = ArrayViewMut2::from_shape((r, n), cc).map_err(|e| e.to_string())?;
            general_mat_mul(1.0, &av, &bv, 1.0, &mut cv);
            Ok(())
        };
        if chunks > 1 {
            std::thread::scope(|s| {
                let hs: Vec<_> = c
                    .chunks_mut(rows * n)
                    .enumerate()
                    .map(|(t, cc)| s.spawn(move || job(t * rows, cc)))
                    .collect();
                hs.into_iter()
                    .try_for_each(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into())))
            })?;
        } else if m > 0 && n > 0 {
            job(0, &mut c)?;
        }
        for (o, v) in out.iter_mut().zip(&c) {
            *o = round_shift_checked(*v as i64, shift)?;
        }
        return Ok(());
    }
    if let (Some(an), Some(bn)) = (as_i32(a), as_i32(b)) {
        return matmul_round(m, k, n, &an, &bn, bias, bound, shift, out, opt);
    }
    let wide = |o: Opnd<'_>| -> Vec<i64> {
        match o {
            Opnd::Const { n, .. } => n.iter().map(|v| *v as i64).collect(),
            Opnd::Dyn(x) => x.to_vec(),
        }
    };
    matmul_wide(m, k, n, &wide(a), &wide(b), bias, shift, out)
}

/// `c += a . B` for one row `a` (`k`) and `B` (`k x n`), in binary64 (the
/// caller has checked that every partial sum is an integer below 2^53, so
/// the result is exact in any order).
#[inline(always)]
fn gemv(k: usize, n: usize, a: &[f64], b: &[i32], c: &mut [f64]) {
    let mut kk = 0;
    while kk + 4 <= k {
        let (a0, a1, a2, a3) = (a[kk], a[kk + 1], a[kk + 2], a[kk + 3]);
        let b0 = &b[kk * n..(kk + 1) * n];
        let b1 = &b[(kk + 1) * n..(kk + 2) * n];
        let b2 = &b[(kk + 2) * n..(kk + 3) * n];
        let b3 = &b[(kk + 3) * n..(kk + 4) * n];
        for j in 0..n {
            c[j] += a0 * b0[j] as f64 + a1 * b1[j] as f64 + a2 * b2[j] as f64 + a3 * b3[j] as f64;
        }
        kk += 4;
    }
    while kk < k {
        let av = a[kk];
        for (cj, bj) in c.iter_mut().zip(&b[kk * n..(kk + 1) * n]) {
            *cj += av * *bj as f64;
        }
        kk += 1;
    }
}

fn as_f64(o: Opnd<'_>) -> Cow<'_, [f64]> {
    match o {
        Opnd::Const { f, .. } => Cow::Borrowed(f),
        Opnd::Dyn(x) => Cow::Owned(x.iter().map(|v| *v as f64).collect()),
    }
}

fn as_i32(o: Opnd<'_>) -> Option<Cow<'_, [i32]>> {
    match o {
        Opnd::Const { n, .. } => Some(Cow::Borrowed(n)),
        Opnd::Dyn(x) => to_i32(x).map(Cow::Owned),
    }
}

#[inline]
pub(crate) fn round_shift_checked(v: i64, shift: i32) -> R<i64> {
    if (1..63).contains(&shift) {
        // Round half to even without branches.
        let s = shift as u32;
        let q = v >> s;
        let r = v & ((1i64 << s) - 1);
        return Ok(q + ((r + (q & 1)) > (1i64 << (s - 1))) as i64);
    }
    if shift == 0 {
        return Ok(v);
    }
    let r = round_shift(v as i128, shift).ok_or_else(|| overflow("sum of products"))?;
    i64::try_from(r).map_err(|_| overflow("sum of products (int64)"))
}

/// Exact `round((a . b + bias) / 2^shift)` into `i64` for an `m x k` by
/// `k x n` product of `i32` operands whose partial sums are bounded by
/// `bound`: accumulated in `i64` when it allows, `i128` otherwise.
#[allow(clippy::too_many_arguments)]
fn matmul_round(
    m: usize,
    k: usize,
    n: usize,
    a: &[i32],
    b: &[i32],
    bias: Bias<'_>,
    bound: i128,
    shift: i32,
    out: &mut [i64],
    opt: RunOptions,
) -> R<()> {
    if bound < I64_SAFE {
        let mut acc = vec![0i64; m * n];
        bias.fill(&mut acc, m, n);
        if opt.threads > 1 && m >= 2 * opt.threads && m * n * k >= 1 << 18 {
            let rows = m.div_ceil(opt.threads);
            std::thread::scope(|s| {
                for (t, chunk) in acc.chunks_mut(rows * n).enumerate() {
                    let r0 = t * rows;
                    let r = chunk.len() / n;
                    let a = &a[r0 * k..(r0 + r) * k];
                    s.spawn(move || gemm_i64(r, k, n, a, b, chunk, opt));
                }
            });
        } else {
            gemm_i64(m, k, n, a, b, &mut acc, opt);
        }
        for (o, v) in out.iter_mut().zip(&acc) {
            *o = round_shift_checked(*v, shift)?;
        }
        return Ok(());
    }
    let a: Vec<i64> = a.iter().map(|v| *v as i64).collect();
    let b: Vec<i64> = b.iter().map(|v| *v as i64).collect();
    matmul_wide(m, k, n, &a, &b, bias, shift, out)
}

/// The `i128` path of [`matmul_round`] for any `i64` operands (an error if
/// a partial sum leaves `i128`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_wide(
    m: usize,
    k: usize,
    n: usize,
    a: &[i64],
    b: &[i64],
    bias: Bias<'_>,
    shift: i32,
    out: &mut [i64],
) -> R<()> {
    for i in 0..m {
        for j in 0..n {
            let mut s: i128 = bias.at(i, j) as i128;
            for kk in 0..k {
                s = s
                    .checked_add(a[i * k + kk] as i128 * b[kk * n + j] as i128)
                    .ok_or_else(|| overflow("sum of products"))?;
            }
            let r = round_shift(s, shift).ok_or_else(|| overflow("sum of products"))?;
            out[i * n + j] = i64::try_from(r).map_err(|_| overflow("sum of products (int64)"))?;
        }
    }
    Ok(())
}

/// `x` as `i32` values, when all fit.
pub(crate) fn to_i32(x: &[i64]) -> Option<Vec<i32>> {
    x.iter().map(|v| i32::try_from(*v).ok()).collect()
}

/// A bias added to the accumulator before rounding.
#[derive(Clone, Copy)]
pub(crate) enum Bias<'a> {
    None,
    /// One value per row.
    Rows(&'a [i64]),
}

impl Bias<'_> {
    fn max_abs(&self) -> i128 {
        match self {
            Bias::None => 0,
            Bias::Rows(b) => b.iter().map(|v| (*v as i128).abs()).max().unwrap_or(0),
        }
    }
    fn at(&self, i: usize, _j: usize) -> i64 {
        match self {
            Bias::None => 0,
            Bias::Rows(b) => b[i],
        }
    }
    fn fill_f64(&self, acc: &mut [f64], n: usize) {
        if let Bias::Rows(b) = self {
            for (row, v) in acc.chunks_mut(n.max(1)).zip(b.iter()) {
                row.fill(*v as f64);
            }
        }
    }
    fn fill(&self, acc: &mut [i64], _m: usize, n: usize) {
        if let Bias::Rows(b) = self {
            for (row, v) in acc.chunks_mut(n).zip(b.iter()) {
                row.fill(*v);
            }
        }
    }
}

/// `x` transposed: output axis `i` is input axis `perm[i]`.
pub(crate) fn permute<T: Copy + Default>(x: &[T], shape: &[usize], perm: &[usize]) -> Vec<T> {
    if perm.iter().enumerate().all(|(i, p)| i == *p) {
        return x.to_vec();
    }
    let r = shape.len();
    let mut in_strides = vec![1usize; r];
    for i in (0..r.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * shape[i + 1];
    }
    let oshape: Vec<usize> = perm.iter().map(|p| shape[*p]).collect();
    let ostr: Vec<usize> = perm.iter().map(|p| in_strides[*p]).collect();
    let n = x.len();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut idx = vec![0usize; r];
    let mut off = 0usize;
    let last = r - 1;
    loop {
        // Inner axis as a strided copy.
        let s = ostr[last];
        for t in 0..oshape[last] {
            out.push(x[off + t * s]);
        }
        let mut d = last;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            off += ostr[d];
            if idx[d] < oshape[d] {
                break;
            }
            off -= ostr[d] * oshape[d];
            idx[d] = 0;
        }
    }
}

/// A batched matrix product `C[b] = A[b] . B[b]` lowered from an einsum.
pub(crate) struct MatMulPlan {
    /// Permutation of each operand (size-1 axes dropped) to `[batch.., m.., k..]`
    /// and `[batch.., k.., n..]`, with the dropped shapes.
    pub a_shape: Vec<usize>,
    pub a_perm: Vec<usize>,
    pub b_shape: Vec<usize>,
    pub b_perm: Vec<usize>,
    /// Batch count of each operand (1 = broadcast) and of the output.
    pub a_batch: usize,
    pub b_batch: usize,
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// Operands that are constants, already permuted.
    pub a_const: Option<ConstOpnd>,
    pub b_const: Option<ConstOpnd>,
    /// `[batch.., m.., n..]` to the output's (size-1 axes dropped) order.
    pub c_shape: Vec<usize>,
    pub c_perm: Vec<usize>,
    pub out_shape: Vec<usize>,
    pub shift: i32,
}

impl MatMulPlan {
    pub(crate) fn run(&self, a: Option<&XT>, b: Option<&XT>, opt: RunOptions) -> R<XT> {
        let ap = match (&self.a_const, a) {
            (None, Some(x)) => Some(permute(x.as_i64()?, &self.a_shape, &self.a_perm)),
            (None, None) => return Err("internal: missing operand".into()),
            _ => None,
        };
        let bp = match (&self.b_const, b) {
            (None, Some(x)) => Some(permute(x.as_i64()?, &self.b_shape, &self.b_perm)),
            (None, None) => return Err("internal: missing operand".into()),
            _ => None,
        };
        let (m, k, n) = (self.m, self.k, self.n);
        let mut c = vec![0i64; self.batch * m * n];
        for bi in 0..self.batch {
            let (ao, bo) = ((bi % self.a_batch) * m * k, (bi % self.b_batch) * k * n);
            let aa = match (&self.a_const, &ap) {
                (Some(cst), _) => cst.opnd(ao, m * k),
                (_, Some(x)) => Opnd::Dyn(&x[ao..ao + m * k]),
                _ => return Err("internal: missing operand".into()),
            };
            let bb = match (&self.b_const, &bp) {
                (Some(cst), _) => cst.opnd(bo, k * n),
                (_, Some(x)) => Opnd::Dyn(&x[bo..bo + k * n]),
                _ => return Err("internal: missing operand".into()),
            };
            let cc = &mut c[bi * m * n..(bi + 1) * m * n];
            matmul_exact(m, k, n, aa, bb, Bias::None, self.shift, cc, opt)?;
        }
        let c = permute(&c, &self.c_shape, &self.c_perm);
        Ok(XT::i64(self.out_shape.clone(), c))
    }
}

/// A constant matrix operand, prepared once.
pub(crate) struct ConstOpnd {
    pub n: Vec<i32>,
    pub f: Vec<f64>,
    pub l1: i128,
    pub max: i128,
}

impl ConstOpnd {
    pub(crate) fn new(n: Vec<i32>, l1: i128) -> Self {
        let f = n.iter().map(|v| *v as f64).collect();
        let max = max_abs(&n);
        ConstOpnd { n, f, l1, max }
    }

    fn opnd(&self, at: usize, len: usize) -> Opnd<'_> {
        Opnd::Const {
            f: &self.f[at..at + len],
            n: &self.n[at..at + len],
            l1: self.l1,
            max: self.max,
        }
    }
}
