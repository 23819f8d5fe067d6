//! The exact integer semantics of a registered model (what a proof proves), on padded
//! vectors, with the auxiliary vectors the proof commits to.

use crate::error::ProveError;
use crate::field::ceil_log2;
use crate::model::*;
use crate::plan::{eval_affine_ints, AuxDef, NO_SRC};

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
                    let (lo, hi) = signed_range(*in_bits);
                    let mut o = Vec::with_capacity(size);
                    for (index, v) in a.iter().enumerate() {
                        if !(lo..hi).contains(v) {
                            return Err(ProveError::OutOfRange {
                                layer: l,
                                index,
                                value: *v,
                                what: "relu input",
                            });
                        }
                        o.push((*v).max(0));
                    }
                    o
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
                Layer::MaxPool { win, in_bits } => {
                    let (lo, hi) = signed_range(*in_bits);
                    if let Some((index, v)) =
                        a.iter().enumerate().find(|(_, v)| !(lo..hi).contains(*v))
                    {
                        return Err(ProveError::OutOfRange {
                            layer: l,
                            index,
                            value: *v,
                            what: "max pool input",
                        });
                    }
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
            };
            out.push(v);
        }
    }
}
