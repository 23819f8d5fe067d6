//! The exact integer semantics of a registered model (what a proof proves), on padded
//! vectors, with the auxiliary vectors the proof commits to.

use crate::error::ProveError;
use crate::field::ceil_log2;
use crate::model::*;
use crate::plan::{eval_affine_ints, AuxDef, NO_SRC};
use verity_engine::exact::div_round;

impl ProverModel {
    /// Run the exact integer semantics (no proof).
    pub fn evaluate(&self, input: &[i64]) -> Result<Vec<i64>, ProveError> {
        let vals = self.run(input)?;
        let last = self.plan.num_layers();
        Ok(vals[last][..self.plan.lens[last]].to_vec())
    }

    /// Run the exact semantics on padded vectors, auxiliary vectors included: `out[v]` has
    /// length `2^logs[v]`.
    pub(crate) fn run(&self, input: &[i64]) -> Result<Vec<Vec<i64>>, ProveError> {
        let mut out = self.run_layers(input)?;
        self.fill_aux(&mut out);
        Ok(out)
    }

    /// The input and every layer's output, padded.
    pub(crate) fn run_layers(&self, input: &[i64]) -> Result<Vec<Vec<i64>>, ProveError> {
        let p = &self.plan;
        if input.len() != p.lens[0] {
            return Err(ProveError::InputLength {
                expected: p.lens[0],
                got: input.len(),
            });
        }
        let ib = self.commitment.input_bits;
        let (lo, hi) = signed_range(ib);
        if let Some((index, value)) = input
            .iter()
            .enumerate()
            .find(|(_, v)| !(lo..hi).contains(*v))
        {
            return Err(ProveError::InputRange {
                index,
                value: *value,
                bits_minus_one: ib - 1,
            });
        }
        let mut cur = input.to_vec();
        cur.resize(1 << p.logs[0], 0);
        let mut out = vec![cur];
        for (l, layer) in self.layers.iter().enumerate() {
            let a = &out[l];
            let size = 1usize << p.logs[l + 1];
            let next: Vec<i64> = match layer {
                Layer::MatMul {
                    rows,
                    cols,
                    weights,
                    bias,
                } => {
                    let mut z = vec![0i64; size];
                    for r in 0..*rows {
                        let row = &weights[r * cols..(r + 1) * cols];
                        let acc: i128 = row
                            .iter()
                            .zip(a)
                            .map(|(w, x)| i128::from(*w) * i128::from(*x))
                            .sum::<i128>()
                            + i128::from(bias[r]);
                        if acc.unsigned_abs() > u128::from(p.bounds[l + 1]) {
                            return Err(ProveError::Overflow { layer: l });
                        }
                        z[r] = acc as i64;
                    }
                    z
                }
                Layer::Rescale {
                    shift,
                    rounding,
                    out_bits,
                } => {
                    let (lo, hi) = signed_range(*out_bits);
                    let mut q = Vec::with_capacity(size);
                    for (index, v) in a.iter().enumerate() {
                        let x = rescale_value(*v, *shift, *rounding);
                        if !(lo..hi).contains(&x) {
                            return Err(ProveError::OutOfRange {
                                layer: l,
                                index,
                                value: x,
                                what: "rescale output",
                            });
                        }
                        q.push(x);
                    }
                    q
                }
                Layer::Relu { in_bits } => {
                    check_range(l, a, *in_bits, "relu input")?;
                    a.iter().map(|v| (*v).max(0)).collect()
                }
                Layer::Lookup(t) => {
                    let mut o = Vec::with_capacity(size);
                    for (index, v) in a.iter().enumerate() {
                        let i = i128::from(*v) - i128::from(t.in_min);
                        if i < 0 || i >= t.values.len() as i128 {
                            return Err(ProveError::OutOfRange {
                                layer: l,
                                index,
                                value: *v,
                                what: "lookup input",
                            });
                        }
                        o.push(t.values[i as usize]);
                    }
                    o
                }
                Layer::Conv {
                    win,
                    cout,
                    weights,
                    bias,
                } => {
                    let pp = 1usize << ceil_log2(win.out_plane());
                    let kk = win.c * win.taps();
                    let mut z = vec![0i64; size];
                    let mut col = vec![0i64; kk];
                    for oy in 0..win.oh {
                        for ox in 0..win.ow {
                            for (k, x) in col.iter_mut().enumerate() {
                                let (c, t) = (k / win.taps(), k % win.taps());
                                *x = win
                                    .src(oy, ox, t / win.kw, t % win.kw)
                                    .map_or(0, |s| a[c * win.in_stride + s]);
                            }
                            for o in 0..*cout {
                                let acc = weights[o * kk..(o + 1) * kk]
                                    .iter()
                                    .zip(&col)
                                    .map(|(w, x)| i128::from(*w) * i128::from(*x))
                                    .sum::<i128>()
                                    + i128::from(bias[o]);
                                if acc.unsigned_abs() > u128::from(p.bounds[l + 1]) {
                                    return Err(ProveError::Overflow { layer: l });
                                }
                                z[o * pp + oy * win.ow + ox] = acc as i64;
                            }
                        }
                    }
                    z
                }
                Layer::AddConst { values, out_bits } => {
                    let (lo, hi) = signed_range(*out_bits);
                    let mut o = Vec::with_capacity(size);
                    for (index, v) in a.iter().enumerate() {
                        let x = v + values.get(index).copied().unwrap_or(0);
                        if !(lo..hi).contains(&x) {
                            return Err(ProveError::OutOfRange {
                                layer: l,
                                index,
                                value: x,
                                what: "sum",
                            });
                        }
                        o.push(x);
                    }
                    o
                }
                Layer::Copy { src } => out[*src].clone(),
                Layer::ArgMax {
                    lanes,
                    n,
                    last,
                    in_bits,
                } => {
                    check_range(l, a, *in_bits, "argmax input")?;
                    let mut o = vec![0i64; size];
                    for (i, v) in o.iter_mut().enumerate().take(*lanes) {
                        *v = argmax(&a[i * n..(i + 1) * n], *last) as i64;
                    }
                    o
                }
                Layer::Softmax {
                    lanes,
                    n,
                    fx,
                    fo,
                    grid,
                    lo,
                    exp,
                } => {
                    check_range(l, a, crate::plan::SOFTMAX_IN_BITS, "softmax input")?;
                    let mut o = vec![0i64; size];
                    let sh = fx - grid;
                    for i in 0..*lanes {
                        let row = &a[i * n..(i + 1) * n];
                        let p = softmax(row, sh, *lo, exp, *fo)
                            .ok_or(ProveError::Overflow { layer: l })?;
                        o[i * n..(i + 1) * n].copy_from_slice(&p);
                    }
                    o
                }
                Layer::Concat { parts } => {
                    let mut o = Vec::with_capacity(size);
                    for part in parts {
                        o.extend_from_slice(&out[*part][..p.lens[*part]]);
                    }
                    o.resize(size, 0);
                    o
                }
                Layer::MaxPool { win, in_bits } => {
                    check_range(l, a, *in_bits, "max pool input")?;
                    let mut o = vec![0i64; size];
                    let q = win.out_plane();
                    for c in 0..win.c {
                        for oy in 0..win.oh {
                            for ox in 0..win.ow {
                                o[c * q + oy * win.ow + ox] = (0..win.taps())
                                    .filter_map(|t| win.src(oy, ox, t / win.kw, t % win.kw))
                                    .map(|s| a[c * win.in_stride + s])
                                    .max()
                                    .unwrap_or(0);
                            }
                        }
                    }
                    o
                }
            };
            out.push(next);
        }
        Ok(out)
    }

    /// Append the auxiliary vectors to the layer vectors.
    pub(crate) fn fill_aux(&self, out: &mut Vec<Vec<i64>>) {
        let p = &self.plan;
        out.truncate(p.nl + 1);
        for (j, def) in p.aux.iter().enumerate() {
            let n = 1usize << p.logs[p.nl + 1 + j];
            let v: Vec<i64> = match def {
                AuxDef::Half(v) => out[*v].iter().map(|q| q >> 1).collect(),
                AuxDef::Limb { a, shift, bits } => (0..n)
                    .map(|i| (eval_affine_ints(a, out, i) >> shift) & ((1i64 << bits) - 1))
                    .collect(),
                AuxDef::Gather { src, map } => map
                    .iter()
                    .map(|m| {
                        if *m == NO_SRC {
                            0
                        } else {
                            out[*src][*m as usize]
                        }
                    })
                    .collect(),
                AuxDef::Max(ops) => (0..n)
                    .map(|i| {
                        ops.iter()
                            .map(|a| eval_affine_ints(a, out, i))
                            .max()
                            .unwrap_or(0)
                    })
                    .collect(),
                AuxDef::Floor { a, shift } => (0..n)
                    .map(|i| eval_affine_ints(a, out, i) >> shift)
                    .collect(),
                AuxDef::RoundHalfEven { a, shift } => (0..n)
                    .map(|i| round_half_even_shift(eval_affine_ints(a, out, i), *shift))
                    .collect(),
                AuxDef::Poly(terms) => (0..n)
                    .map(|i| {
                        terms
                            .iter()
                            .map(|(c, fs)| {
                                fs.iter()
                                    .map(|f| i128::from(eval_affine_ints(f, out, i)))
                                    .product::<i128>()
                                    * i128::from(*c)
                            })
                            .sum::<i128>() as i64
                    })
                    .collect(),
                AuxDef::TableAt { a, layer } => {
                    let Layer::Softmax { exp, .. } = &self.layers[*layer] else {
                        unreachable!("a table aux refers to a softmax layer")
                    };
                    (0..n)
                        .map(|i| {
                            let idx = eval_affine_ints(a, out, i).clamp(0, exp.len() as i64);
                            exp[(idx as usize).min(exp.len() - 1)]
                        })
                        .collect()
                }
                AuxDef::OneHot { gs, k, last } => (0..n)
                    .map(|i| {
                        let row: Vec<i64> = gs.iter().map(|g| out[*g][i]).collect();
                        i64::from(argmax(&row, *last) == *k)
                    })
                    .collect(),
            };
            out.push(v);
        }
    }
}

fn check_range(l: usize, a: &[i64], bits: u32, what: &'static str) -> Result<(), ProveError> {
    let (lo, hi) = signed_range(bits);
    match a.iter().enumerate().find(|(_, v)| !(lo..hi).contains(*v)) {
        Some((index, v)) => Err(ProveError::OutOfRange {
            layer: l,
            index,
            value: *v,
            what,
        }),
        None => Ok(()),
    }
}

/// The index of the first (or last) maximum.
pub(crate) fn argmax(row: &[i64], last: bool) -> usize {
    let mut best = 0;
    for (k, v) in row.iter().enumerate() {
        if *v > row[best] || (last && *v == row[best]) {
            best = k;
        }
    }
    best
}

/// Exact mode's table lookup of `d ≤ 0` (grid shift `sh`; below the table, its first
/// entry).
fn exp_lookup(d: i64, sh: u32, lo: i64, exp: &[i64]) -> i64 {
    let dc = d.max(lo << sh);
    let j = dc >> sh;
    let r = dc - (j << sh);
    let i = (j - lo) as usize;
    if r == 0 {
        exp[i]
    } else {
        exp[i] + round_half_even_shift((exp[i + 1] - exp[i]) * r, sh)
    }
}

/// Exact mode's Softmax of one row (spec §4.9); `None` when the row sum is zero (a table
/// of zeros).
fn softmax(row: &[i64], sh: u32, lo: i64, exp: &[i64], fo: u32) -> Option<Vec<i64>> {
    let m = row.iter().copied().max().unwrap_or(0);
    let e: Vec<i64> = row.iter().map(|x| exp_lookup(x - m, sh, lo, exp)).collect();
    let s: i128 = e.iter().map(|v| i128::from(*v)).sum();
    e.iter()
        .map(|v| div_round(i128::from(*v) << fo, s).map(|q| q as i64))
        .collect()
}
