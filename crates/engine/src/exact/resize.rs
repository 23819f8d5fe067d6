//! Exact `Resize` (spec §4.14): a resize with constant scales or sizes is a
//! linear map applied axis by axis; its per-axis weights are read from the
//! loader's own float resampler (one probe per input index), quantized by
//! the weight rule, and applied exactly.

use super::arith::{round_shift, weight_frac};
use super::compile::{Compiler, CR};
use super::ir::{Kind, Ty, XT};
use super::ops::{overflow, R};
use tract_onnx::prelude::*;

/// One resampled axis: per output index, the `(input index, weight)` taps.
pub(crate) struct AxisMap {
    pub axis: usize,
    pub len_in: usize,
    pub taps: Vec<Vec<(usize, i64)>>,
    pub frac: i32,
}

pub(crate) struct ResizePlan {
    pub axes: Vec<AxisMap>,
    pub out_shape: Vec<usize>,
}

impl ResizePlan {
    pub(crate) fn run(&self, x: &XT) -> R<XT> {
        let mut shape = x.shape.clone();
        let mut data = x.as_i64()?.to_vec();
        for m in &self.axes {
            let outer: usize = shape[..m.axis].iter().product();
            let inner: usize = shape[m.axis + 1..].iter().product();
            let len_out = m.taps.len();
            let mut out = vec![0i64; outer * len_out * inner];
            for o in 0..outer {
                for (xo, taps) in m.taps.iter().enumerate() {
                    for i in 0..inner {
                        let mut s: i128 = 0;
                        for (j, w) in taps {
                            s += *w as i128 * data[(o * m.len_in + j) * inner + i] as i128;
                        }
                        let r = round_shift(s, m.frac).ok_or_else(|| overflow("resize"))?;
                        out[(o * len_out + xo) * inner + i] =
                            i64::try_from(r).map_err(|_| overflow("resize (int64)"))?;
                    }
                }
            }
            data = out;
            shape[m.axis] = len_out;
        }
        Ok(XT::i64(self.out_shape.clone(), data))
    }
}

impl Compiler<'_> {
    /// Lowers a `Resize` node whose scales/sizes/roi inputs are constants.
    pub(crate) fn resize(&mut self, node: &TypedNode) -> CR<()> {
        let f = self.f();
        let mut consts = vec![];
        for i in &node.inputs[1..] {
            match self.konst(*i) {
                Some(t) => consts.push(t),
                None => {
                    return Err(self.unsupported(node, "Resize with non-constant scales or sizes"))
                }
            }
        }
        let in_shape = match self.vals.get(&node.inputs[0]) {
            Some(super::compile::CVal::Dyn(s)) => self.shape(*s),
            _ => return Err(self.unsupported(node, "Resize of a constant")),
        };
        let out_shape = Self::out_shape(node, 0)?;
        let n: usize = in_shape.iter().product();
        let bad = |why: &str| self.unsupported(node, why);
        let eval = |v: Vec<f32>| -> CR<Vec<f32>> {
            let x = Tensor::from_shape(&in_shape, &v).map_err(|e| bad(&e.to_string()))?;
            let mut inputs: TVec<TValue> = tvec!(x.into_tvalue());
            inputs.extend(consts.iter().map(|c| c.clone().into_tvalue()));
            let out = node
                .op
                .eval_out_of_plan(inputs)
                .ok()
                .flatten()
                .ok_or_else(|| bad("the resampler cannot be probed"))?;
            let t = out[0].cast_to::<f32>().map_err(|e| bad(&e.to_string()))?;
            let v = t
                .try_as_plain_ram()
                .and_then(|p| p.as_slice::<f32>().map(|s| s.to_vec()));
            v.map_err(|e| bad(&e.to_string()))
        };
        if eval(vec![0.0; n])?.iter().any(|v| *v != 0.0) {
            return Err(bad("Resize with a non-zero extrapolation value"));
        }
        let strides = |s: &[usize]| {
            let mut st = vec![1usize; s.len()];
            for i in (0..s.len().saturating_sub(1)).rev() {
                st[i] = st[i + 1] * s[i + 1];
            }
            st
        };
        let (ist, ost) = (strides(&in_shape), strides(&out_shape));
        let mut axes = vec![];
        for a in 0..in_shape.len() {
            if in_shape[a] == out_shape[a] {
                continue;
            }
            // Weights w[x][j]: probe with the one-hot of index j along `a`.
            let mut w = vec![vec![0f64; in_shape[a]]; out_shape[a]];
            for j in 0..in_shape[a] {
                let v: Vec<f32> = (0..n)
                    .map(|i| ((i / ist[a]) % in_shape[a] == j) as u8 as f32)
                    .collect();
                let y = eval(v)?;
                for (x, row) in w.iter_mut().enumerate() {
                    row[j] = y[x * ost[a]] as f64;
                }
            }
            let flat: Vec<f64> = w.iter().flatten().copied().collect();
            let frac = weight_frac(&flat, self.p.weight_bits as u32);
            let taps = w
                .iter()
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .filter_map(|(j, v)| {
                            let q = super::arith::quantize(*v, frac)?;
                            (q != 0).then_some((j, q))
                        })
                        .collect()
                })
                .collect();
            axes.push(AxisMap {
                axis: a,
                len_in: in_shape[a],
                taps,
                frac,
            });
        }
        let x = self.fixed(node, node.inputs[0])?;
        let plan = ResizePlan {
            axes,
            out_shape: out_shape.clone(),
        };
        let o = self.emit(
            node,
            Kind::Resize(Box::new(plan)),
            vec![x],
            out_shape,
            Ty::Fixed(f),
        );
        self.set(node, 0, o);
        Ok(())
    }
}
