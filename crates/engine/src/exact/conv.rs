//! Convolutions, transposed convolutions and pools (spec §4.6, §4.7).

use super::arith::{div_round, round_shift};
use super::ir::XT;
use super::linalg::{
    matmul_exact, max_abs, max_abs64, permute, round_shift_checked, Bias, Opnd, RunOptions,
    I64_SAFE,
};
use super::ops::{overflow, R};

/// Geometry of a 2-D convolution or pool (1-D ones have `h = 1`).
#[derive(Clone, Debug)]
pub(crate) struct Geo {
    pub n: usize,
    pub c: usize,
    pub ih: usize,
    pub iw: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub ph: usize,
    pub pw: usize,
    /// Padded extents (before + input + after), for `count_include_pad`.
    pub eh: usize,
    pub ew: usize,
    /// The tensor is `[N, H, W, C]` (or `[H, W, C]`) rather than channels first.
    pub channels_last: bool,
}

impl Geo {
    /// The input in channels-first order (borrowed when it already is).
    fn channels_first<'a>(&self, x: &'a [i64]) -> std::borrow::Cow<'a, [i64]> {
        if self.channels_last {
            permute(x, &[self.n, self.ih * self.iw, self.c], &[0, 2, 1]).into()
        } else {
            x.into()
        }
    }

    /// Input row for output row `o`, tap `t`, or None in the padding.
    #[inline(always)]
    fn src(o: usize, t: usize, s: usize, d: usize, p: usize, len: usize) -> Option<usize> {
        let pos = (o * s + t * d).checked_sub(p)?;
        (pos < len).then_some(pos)
    }
}

/// A convolution with constant weights.
pub(crate) struct ConvPlan {
    pub geo: Geo,
    pub cout: usize,
    pub group: usize,
    /// The float kernel `[cout, cin/group * kh * kw]` and bias (after
    /// folding), from which the integer ones are quantized.
    pub kernel: Vec<f64>,
    pub bias_f: Vec<f64>,
    /// `[cout, cin/group * kh * kw]`.
    pub w: Vec<i32>,
    /// The same as `f64`.
    pub wf: Vec<f64>,
    /// Per output channel, at the accumulator's scale.
    pub bias: Vec<i64>,
    /// Max over output channels of `sum |w|`, and `max |w|`.
    pub w_l1: i128,
    pub w_max: i128,
    pub shift: i32,
    pub out_shape: Vec<usize>,
}

impl ConvPlan {
    /// (Re)quantizes the kernel (weight rule, one scale) and the bias (at
    /// the accumulator's scale) from the float ones.
    pub(crate) fn quantize(&mut self, f: i32, bits: u32) -> Result<(), String> {
        let fw = super::arith::weight_frac(&self.kernel, bits);
        let q = |x: f64, s: i32| {
            super::arith::quantize(x, s)
                .ok_or_else(|| format!("a weight or bias ({x}) cannot be quantized"))
        };
        self.w = self
            .kernel
            .iter()
            .map(|x| q(*x, fw).map(|v| v as i32))
            .collect::<Result<_, _>>()?;
        self.wf = self.w.iter().map(|v| *v as f64).collect();
        self.bias = self
            .bias_f
            .iter()
            .map(|x| q(*x, f + fw))
            .collect::<Result<_, _>>()?;
        let kk = self.kernel.len() / self.cout.max(1);
        self.w_l1 = self
            .w
            .chunks(kk.max(1))
            .map(|r| r.iter().map(|v| (*v as i128).abs()).sum::<i128>())
            .max()
            .unwrap_or(0);
        self.w_max = max_abs(&self.w);
        self.shift = fw;
        Ok(())
    }

    pub(crate) fn run(&self, x: &XT, opt: RunOptions) -> R<XT> {
        let g = &self.geo;
        let xin = x.as_i64()?;
        let cf = g.channels_first(xin);
        let x: &[i64] = &cf;
        let cin_g = g.c / self.group;
        let cout_g = self.cout / self.group;
        let kk = cin_g * g.kh * g.kw;
        let p = g.oh * g.ow;
        let mut out = vec![0i64; g.n * self.cout * p];
        let one_by_one = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
        let bias_max = self
            .bias
            .iter()
            .map(|b| (*b as i128).abs())
            .max()
            .unwrap_or(0);
        // Depthwise convolutions: direct, in i64 (exact under the bound), no
        // im2col. (Direct binary64 for other small convolutions measured
        // slower than im2col + GEMM.)
        let bound = self
            .w_l1
            .saturating_mul(max_abs64(x))
            .saturating_add(bias_max);
        if cout_g == 1 && kk <= 64 && bound < I64_SAFE {
            let plane_len = g.ih * g.iw;
            for (oi, o) in out.chunks_mut(p).enumerate() {
                let (ni, oc) = (oi / self.cout, oi % self.cout);
                let gi = oc / cout_g;
                o.fill(self.bias[oc]);
                for c in 0..cin_g {
                    let at = (ni * g.c + gi * cin_g + c) * plane_len;
                    let wat = oc * kk + c * g.kh * g.kw;
                    let w: Vec<i64> = self.w[wat..wat + g.kh * g.kw]
                        .iter()
                        .map(|v| *v as i64)
                        .collect();
                    let plane = &x[at..at + plane_len];
                    if opt.simd {
                        pulp::Arch::new().dispatch(|| direct(g, plane, &w, o));
                    } else {
                        direct(g, plane, &w, o);
                    }
                }
                for v in o.iter_mut() {
                    *v = round_shift_checked(*v, self.shift)?;
                }
            }
            return Ok(XT::i64(self.out_shape.clone(), self.finish_layout(out)));
        }
        for ni in 0..g.n {
            for gi in 0..self.group {
                let at = (ni * g.c + gi * cin_g) * g.ih * g.iw;
                let len = cin_g * g.ih * g.iw;
                let w = Opnd::Const {
                    f: &self.wf[gi * cout_g * kk..(gi + 1) * cout_g * kk],
                    n: &self.w[gi * cout_g * kk..(gi + 1) * cout_g * kk],
                    l1: self.w_l1,
                    max: self.w_max,
                };
                let bias = &self.bias[gi * cout_g..(gi + 1) * cout_g];
                let o = &mut out[(ni * self.cout + gi * cout_g) * p..][..cout_g * p];
                let xin = &x[at..at + len];
                let col;
                let b: &[i64] = if one_by_one {
                    xin
                } else {
                    col = self.im2col(xin, cin_g);
                    &col
                };
                matmul_exact(
                    cout_g,
                    kk,
                    p,
                    w,
                    Opnd::Dyn(b),
                    Bias::Rows(bias),
                    self.shift,
                    o,
                    opt,
                )?;
            }
        }
        Ok(XT::i64(self.out_shape.clone(), self.finish_layout(out)))
    }

    fn finish_layout(&self, out: Vec<i64>) -> Vec<i64> {
        let g = &self.geo;
        if g.channels_last {
            permute(&out, &[g.n, self.cout, g.oh * g.ow], &[0, 2, 1])
        } else {
            out
        }
    }

    fn im2col<T: Copy + Default>(&self, x: &[T], cin: usize) -> Vec<T> {
        let g = &self.geo;
        let p = g.oh * g.ow;
        let mut col = vec![T::default(); cin * g.kh * g.kw * p];
        let mut row = 0;
        for c in 0..cin {
            let plane = &x[c * g.ih * g.iw..(c + 1) * g.ih * g.iw];
            for ty in 0..g.kh {
                for tx in 0..g.kw {
                    let dst = &mut col[row * p..(row + 1) * p];
                    for oy in 0..g.oh {
                        let d = &mut dst[oy * g.ow..(oy + 1) * g.ow];
                        match Geo::src(oy, ty, g.sh, g.dh, g.ph, g.ih) {
                            None => d.fill(T::default()),
                            Some(iy) => {
                                let src = &plane[iy * g.iw..(iy + 1) * g.iw];
                                for (ox, dv) in d.iter_mut().enumerate() {
                                    *dv = Geo::src(ox, tx, g.sw, g.dw, g.pw, g.iw)
                                        .map_or(T::default(), |ix| src[ix]);
                                }
                            }
                        }
                    }
                    row += 1;
                }
            }
        }
        col
    }
}

/// One input channel's contribution to one output channel, accumulated in
/// `i64` (the caller has checked the bound): `o += sum_taps w * x`.
#[inline(always)]
fn direct(g: &Geo, x: &[i64], w: &[i64], o: &mut [i64]) {
    for ty in 0..g.kh {
        for tx in 0..g.kw {
            let wv = w[ty * g.kw + tx];
            if wv == 0 {
                continue;
            }
            // Output columns whose input column lies inside the row.
            let off = tx * g.dw;
            let lo = if off >= g.pw {
                0
            } else {
                (g.pw - off).div_ceil(g.sw)
            };
            let hi = if g.iw + g.pw > off {
                ((g.iw + g.pw - off - 1) / g.sw + 1).min(g.ow)
            } else {
                0
            };
            if lo >= hi {
                continue;
            }
            for oy in 0..g.oh {
                let Some(iy) = Geo::src(oy, ty, g.sh, g.dh, g.ph, g.ih) else {
                    continue;
                };
                let row = &x[iy * g.iw..(iy + 1) * g.iw];
                let orow = &mut o[oy * g.ow..(oy + 1) * g.ow];
                let start = lo * g.sw + off - g.pw;
                if g.sw == 1 {
                    for (ov, xv) in orow[lo..hi].iter_mut().zip(&row[start..start + (hi - lo)]) {
                        *ov = ov.wrapping_add(wv.wrapping_mul(*xv));
                    }
                } else {
                    for (i, ov) in orow[lo..hi].iter_mut().enumerate() {
                        *ov = ov.wrapping_add(wv.wrapping_mul(row[start + i * g.sw]));
                    }
                }
            }
        }
    }
}

/// Max or average pooling.
pub(crate) struct PoolPlan {
    pub geo: Geo,
    /// Max pooling, else sum (`normalize`: average).
    pub max: bool,
    pub normalize: bool,
    pub count_include_pad: bool,
    pub out_shape: Vec<usize>,
}

impl PoolPlan {
    pub(crate) fn run(&self, x: &XT) -> R<XT> {
        let g = &self.geo;
        let xin = x.as_i64()?;
        let cf = g.channels_first(xin);
        let x: &[i64] = &cf;
        let p = g.oh * g.ow;
        let mut out = vec![0i64; g.n * g.c * p];
        for (plane, o) in x.chunks(g.ih * g.iw).zip(out.chunks_mut(p)) {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let (y0, x0) = (oy * g.sh, ox * g.sw);
                    if self.max
                        && y0 >= g.ph
                        && x0 >= g.pw
                        && y0 + (g.kh - 1) * g.dh < g.ih + g.ph
                        && x0 + (g.kw - 1) * g.dw < g.iw + g.pw
                    {
                        // The whole window is inside the input.
                        let (iy, ix) = (y0 - g.ph, x0 - g.pw);
                        let mut best = i64::MIN;
                        for ty in 0..g.kh {
                            let row = &plane[(iy + ty * g.dh) * g.iw..];
                            for tx in 0..g.kw {
                                best = best.max(row[ix + tx * g.dw]);
                            }
                        }
                        o[oy * g.ow + ox] = best;
                        continue;
                    }
                    let (mut best, mut sum, mut count, mut padded) = (i64::MIN, 0i128, 0i64, 0i64);
                    for ty in 0..g.kh {
                        let in_h = oy * g.sh + ty * g.dh < g.eh;
                        for tx in 0..g.kw {
                            if in_h && ox * g.sw + tx * g.dw < g.ew {
                                padded += 1;
                            }
                            let (Some(iy), Some(ix)) = (
                                Geo::src(oy, ty, g.sh, g.dh, g.ph, g.ih),
                                Geo::src(ox, tx, g.sw, g.dw, g.pw, g.iw),
                            ) else {
                                continue;
                            };
                            let v = plane[iy * g.iw + ix];
                            best = best.max(v);
                            sum += v as i128;
                            count += 1;
                        }
                    }
                    o[oy * g.ow + ox] = if self.max {
                        if count == 0 {
                            return Err("a pooling window lies entirely in the padding".into());
                        }
                        best
                    } else if self.normalize {
                        let d = if self.count_include_pad {
                            padded
                        } else {
                            count
                        };
                        if d == 0 {
                            return Err("a pooling window lies entirely in the padding".into());
                        }
                        let q = div_round(sum, d as i128).unwrap_or(0);
                        i64::try_from(q).map_err(|_| overflow("average"))?
                    } else {
                        i64::try_from(sum).map_err(|_| overflow("sum"))?
                    };
                }
            }
        }
        let out = if g.channels_last {
            permute(&out, &[g.n, g.c, p], &[0, 2, 1])
        } else {
            out
        };
        Ok(XT::i64(self.out_shape.clone(), out))
    }
}

/// A transposed convolution with constant weights (ONNX ConvTranspose):
/// `y[o, Y] = b[o] + sum W[g, o', i', t] * x[g*I/G + i', y']` over the taps
/// with `Y = y' * s + t * d - pad` (per spatial axis), exact, then rounded
/// by `f_w` (spec §4.6).
pub(crate) struct DeconvPlan {
    /// Input geometry (`ih, iw`), output sizes (`oh, ow`), kernel, strides,
    /// dilations, leading padding.
    pub geo: Geo,
    pub cout: usize,
    pub group: usize,
    /// `[G, O/G, I/G, kh, kw]`.
    pub w: Vec<i64>,
    /// At the accumulator's scale.
    pub bias: Vec<i64>,
    pub shift: i32,
    pub out_shape: Vec<usize>,
}

impl DeconvPlan {
    pub(crate) fn run(&self, x: &XT) -> R<XT> {
        let g = &self.geo;
        let xin = x.as_i64()?;
        let cf = g.channels_first(xin);
        let x: &[i64] = &cf;
        let (ig, og) = (g.c / self.group, self.cout / self.group);
        let (ip, op) = (g.ih * g.iw, g.oh * g.ow);
        let mut acc = vec![0i128; g.n * self.cout * op];
        for (n, a) in acc.chunks_mut(self.cout * op).enumerate() {
            for (o, plane) in a.chunks_mut(op).enumerate() {
                plane.fill(self.bias[o] as i128);
            }
            for gi in 0..self.group {
                for il in 0..ig {
                    let xp = &x[(n * g.c + gi * ig + il) * ip..][..ip];
                    for ol in 0..og {
                        let plane = &mut a[(gi * og + ol) * op..][..op];
                        let w = &self.w[((gi * og + ol) * ig + il) * g.kh * g.kw..][..g.kh * g.kw];
                        for iy in 0..g.ih {
                            for ty in 0..g.kh {
                                let Some(oy) = (iy * g.sh + ty * g.dh)
                                    .checked_sub(g.ph)
                                    .filter(|v| *v < g.oh)
                                else {
                                    continue;
                                };
                                for ix in 0..g.iw {
                                    let xv = xp[iy * g.iw + ix] as i128;
                                    for tx in 0..g.kw {
                                        if let Some(ox) = (ix * g.sw + tx * g.dw)
                                            .checked_sub(g.pw)
                                            .filter(|v| *v < g.ow)
                                        {
                                            plane[oy * g.ow + ox] += w[ty * g.kw + tx] as i128 * xv;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let out = acc
            .into_iter()
            .map(|v| {
                let r =
                    round_shift(v, self.shift).ok_or_else(|| overflow("transposed convolution"))?;
                i64::try_from(r).map_err(|_| overflow("transposed convolution (int64)"))
            })
            .collect::<R<Vec<_>>>()?;
        let out = if g.channels_last {
            permute(&out, &[g.n, self.cout, op], &[0, 2, 1])
        } else {
            out
        };
        Ok(XT::i64(self.out_shape.clone(), out))
    }
}
