//! The integer-layer IR that the prover proves, its public description (the model
//! commitment), and its exact semantics.
//!
//! A model maps an integer input vector through a chain of layers:
//!
//! | layer | semantics (exact, integer) |
//! |---|---|
//! | `MatMul { rows, cols, weights, bias }` | `z_r = b_r + Σ_c W_rc·a_c` (i128 accumulation; `|z| ≤ out_bound ≤ 2^62`) |
//! | `Rescale { shift s, rounding, out_bits b }` | `q = floor((z + c) / 2^s)`, `c = 0` (floor) or `2^(s-1)` (half up), or exact mode's `round_shift` (half to even); checked: `q ∈ [-2^(b-1), 2^(b-1))` |
//! | `Relu { in_bits b }` | `max(a, 0)`; checked: `a ∈ [-2^(b-1), 2^(b-1))` |
//! | `Lookup(table)` | `values[a - in_min]`; checked: `a ∈ [in_min, in_min + len)` |
//!
//! "Checked" means that an input outside the range is an error of the inference (no
//! proof exists), as in exact mode. Vectors are padded to powers of two; padded entries carry
//! the deterministic *pad value* (0 at the input, 0 after a MatMul, the layer applied to the
//! previous pad otherwise), and the proof covers them too.
//!
//! The [`ModelCommitment`] is the public part: the architecture (shapes, shifts, tables,
//! bounds), the Merkle root of the weights' polynomial commitment, computed once at
//! registration ([`ProverModel::new`]), and the output layout with the compiled-model id
//! ([`ProverModel::bind`]). The verifier never needs the weights.

use crate::error::ModelError;
use crate::field::{f_from_i64, F};
pub use crate::layout::OutputLayout;
use crate::merkle::Hash;
use crate::pcs::{self, PcsParams, PcsProverData};

/// Largest lookup or range table: `2^16` rows.
pub const MAX_TABLE_BITS: u32 = 16;
/// Every integer the model computes must satisfy `|v| ≤ 2^62` (so that it embeds in the
/// field without wrap-around, with room for the range arguments).
pub const MAX_ABS: u64 = 1 << 62;
/// Largest vector: `2^24` entries; largest weight matrix (padded): `2^28` entries.
pub const MAX_VECTOR_LOG: usize = 24;
pub(crate) const MAX_MATRIX_LOG: usize = 28;

/// Rounding of a rescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// `floor(z / 2^s)`: an arithmetic right shift.
    Floor,
    /// `floor((z + 2^(s-1)) / 2^s)`: round half up (towards +∞).
    HalfUp,
    /// Round half to even: exact mode's `round_shift` (docs/exact-mode.md §2.2).
    HalfEven,
}

/// Exact mode's `round_shift(v, s)` for `s ≥ 0`: `v / 2^s` rounded to nearest, ties to even.
pub fn round_half_even_shift(v: i64, s: u32) -> i64 {
    verity_engine::exact::round_shift_i64(v, s)
}

/// The result of a rescale (no range check).
pub fn rescale_value(v: i64, shift: u32, rounding: Rounding) -> i64 {
    match rounding {
        Rounding::HalfEven => round_half_even_shift(v, shift),
        _ => (v + rescale_offset(shift, rounding)) >> shift,
    }
}

/// A function on an integer interval, given by its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupTable {
    /// The smallest input.
    pub in_min: i64,
    /// `values[i]` is the output for input `in_min + i`.
    pub values: Vec<i64>,
}

/// A sliding window over a channels-first input vector (the geometry of a convolution or
/// a pooling): output position `(oy, ox)`, tap `(i, j)` reads input row
/// `oy·sh + i·dh - ph` and column `ox·sw + j·dw - pw` (outside the input: padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Input channels, height and width.
    pub c: usize,
    pub ih: usize,
    pub iw: usize,
    /// Distance between two channels in the input vector (`≥ ih·iw`).
    pub in_stride: usize,
    /// Output height and width.
    pub oh: usize,
    pub ow: usize,
    /// Kernel, strides, dilations and leading pads.
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub ph: usize,
    pub pw: usize,
}

impl Window {
    /// The input offset inside a channel read by output `(oy, ox)`, tap `(i, j)`; `None` in
    /// the padding.
    pub fn src(&self, oy: usize, ox: usize, i: usize, j: usize) -> Option<usize> {
        let y = (oy * self.sh + i * self.dh).checked_sub(self.ph)?;
        let x = (ox * self.sw + j * self.dw).checked_sub(self.pw)?;
        (y < self.ih && x < self.iw).then_some(y * self.iw + x)
    }

    /// Output positions per channel.
    pub fn out_plane(&self) -> usize {
        self.oh * self.ow
    }

    /// Taps per window.
    pub fn taps(&self) -> usize {
        self.kh * self.kw
    }

    pub(crate) fn fields(&self) -> [usize; 14] {
        [
            self.c,
            self.ih,
            self.iw,
            self.in_stride,
            self.oh,
            self.ow,
            self.kh,
            self.kw,
            self.sh,
            self.sw,
            self.dh,
            self.dw,
            self.ph,
            self.pw,
        ]
    }

    pub(crate) fn from_fields(f: [usize; 14]) -> Self {
        let [c, ih, iw, in_stride, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw] = f;
        Self {
            c,
            ih,
            iw,
            in_stride,
            oh,
            ow,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            ph,
            pw,
        }
    }

    /// Sizes are positive, bounded, and the channels fit their stride.
    pub(crate) fn check(&self) -> Result<(), String> {
        let f = self.fields();
        if f[..10].contains(&0) {
            return Err("a window dimension is zero".into());
        }
        if f.iter().any(|x| *x > 1 << MAX_VECTOR_LOG) {
            return Err("a window dimension is too large".into());
        }
        if self.in_stride < self.ih * self.iw {
            return Err("channel stride below the channel size".into());
        }
        let big = |a: usize, b: usize| a.checked_mul(b).is_none_or(|n| n > 1 << MAX_VECTOR_LOG);
        if big(self.c, self.in_stride) || big(self.c, self.out_plane()) || big(self.c, self.taps())
        {
            return Err("window too large".into());
        }
        Ok(())
    }
}

/// One layer with its weights (prover side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// `z = W·a + b`, `W` row-major `rows × cols`.
    MatMul {
        rows: usize,
        cols: usize,
        weights: Vec<i64>,
        bias: Vec<i64>,
    },
    /// A convolution `z[o, p] = b[o] + Σ_k W[o, k]·a[src(k, p)]` (`k = (c, i, j)`,
    /// `W` row-major `cout × c·kh·kw`); its output has one row of `2^⌈log2(oh·ow)⌉`
    /// entries per output channel (the entries past `oh·ow` are 0).
    Conv {
        win: Window,
        cout: usize,
        weights: Vec<i64>,
        bias: Vec<i64>,
    },
    /// Rounding right shift with a checked output range.
    Rescale {
        shift: u32,
        rounding: Rounding,
        out_bits: u32,
    },
    /// `max(a, 0)` on a checked input range.
    Relu { in_bits: u32 },
    /// A table function.
    Lookup(LookupTable),
    /// `a + values` (entrywise; `values` is zero-padded), output checked to be a signed
    /// `out_bits`-bit integer.
    AddConst { values: Vec<i64>, out_bits: u32 },
    /// Max pooling over the window's valid taps; output dense `c × oh·ow`; input checked
    /// to be a signed `in_bits`-bit integer.
    MaxPool { win: Window, in_bits: u32 },
    /// `out = vector src` (a branch: a later layer reads an earlier vector).
    Copy { src: usize },
    /// The index of the maximum of each row of a dense `lanes × n` input (the first one,
    /// or the last with `last`); the input is signed `in_bits`-bit.
    ArgMax {
        lanes: usize,
        n: usize,
        last: bool,
        in_bits: u32,
    },
    /// Exact mode's Softmax over each row of a dense `lanes × n` input of `Q(fx)` values,
    /// output `Q(fo)`: the exp table has grid bits `grid`, first grid index `lo` and
    /// entries `exp` (scale `2^30`); see `docs/exact-mode.md` §4.4 and §4.9.
    Softmax {
        lanes: usize,
        n: usize,
        fx: u32,
        fo: u32,
        grid: u32,
        lo: i64,
        exp: Vec<i64>,
    },
    /// The concatenation of vectors `parts` (their used lengths), in order.
    Concat { parts: Vec<usize> },
}

/// One layer without its weights (public).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSpec {
    /// A matrix product; `out_bound` bounds `|z|` over all admissible inputs.
    MatMul {
        rows: usize,
        cols: usize,
        out_bound: u64,
    },
    /// See [`Layer::Conv`]; `out_bound` bounds `|z|`.
    Conv {
        win: Window,
        cout: usize,
        out_bound: u64,
    },
    /// See [`Layer::Rescale`].
    Rescale {
        shift: u32,
        rounding: Rounding,
        out_bits: u32,
    },
    /// See [`Layer::Relu`].
    Relu { in_bits: u32 },
    /// See [`Layer::Lookup`].
    Lookup(LookupTable),
    /// See [`Layer::AddConst`] (the values are public).
    AddConst { values: Vec<i64>, out_bits: u32 },
    /// See [`Layer::MaxPool`].
    MaxPool { win: Window, in_bits: u32 },
    /// See [`Layer::Copy`].
    Copy { src: usize },
    /// See [`Layer::ArgMax`].
    ArgMax {
        lanes: usize,
        n: usize,
        last: bool,
        in_bits: u32,
    },
    /// See [`Layer::Softmax`] (the table is public).
    Softmax {
        lanes: usize,
        n: usize,
        fx: u32,
        fo: u32,
        grid: u32,
        lo: i64,
        exp: Vec<i64>,
    },
    /// See [`Layer::Concat`].
    Concat { parts: Vec<usize> },
}

/// The public commitment to a model: everything a verifier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCommitment {
    /// Length of the input vector.
    pub input_len: usize,
    /// Inputs lie in `[-2^(input_bits-1), 2^(input_bits-1))`.
    pub input_bits: u32,
    /// The layers.
    pub layers: Vec<LayerSpec>,
    /// Parameters of the polynomial commitments (weights and per-proof witness).
    pub params: PcsParams,
    /// Root of the weights' commitment (all zero when the model has no weights).
    pub weights_root: Hash,
    /// How the output vector is read, and the compiled model it comes from
    /// ([`ProverModel::bind`]).
    pub layout: OutputLayout,
}

pub(crate) const COMMITMENT_MAGIC: &[u8; 4] = b"VPMC";
pub(crate) const COMMITMENT_VERSION: u8 = 3;

pub(crate) fn signed_range(bits: u32) -> (i64, i64) {
    let h = 1i64 << (bits - 1);
    (-h, h)
}

pub(crate) fn relu_pad_ok(v: i64, bits: u32) -> bool {
    let (lo, hi) = signed_range(bits);
    (lo..hi).contains(&v)
}

/// `max_r Σ_c |W_rc|·bound + |b_r|`, checked against [`MAX_ABS`].
fn acc_bound(
    l: usize,
    rows: usize,
    cols: usize,
    weights: &[i64],
    bias: &[i64],
    bound: u64,
) -> Result<u64, ModelError> {
    if rows.checked_mul(cols) != Some(weights.len()) || bias.len() != rows {
        return Err(lerr(l, "weights or bias have the wrong length"));
    }
    let mut out: u128 = 0;
    for (r, b) in bias.iter().enumerate() {
        let s: u128 = weights[r * cols..(r + 1) * cols]
            .iter()
            .map(|w| u128::from(w.unsigned_abs()) * u128::from(bound))
            .sum::<u128>()
            + u128::from(b.unsigned_abs());
        out = out.max(s);
    }
    if out > u128::from(MAX_ABS) {
        return Err(lerr(
            l,
            "the accumulator can exceed 2^62 for admissible inputs",
        ));
    }
    Ok(out as u64)
}

// ---------------------------------------------------------------------------------------
// The plan: everything both sides derive from the commitment.

pub(crate) use crate::plan::{lerr, rescale_offset, Affine, Plan, TableKind};

/// A registered model: layers with weights, the committed weights, and the commitment.
#[derive(Debug, Clone)]
pub struct ProverModel {
    pub(crate) layers: Vec<Layer>,
    pub(crate) commitment: ModelCommitment,
    pub(crate) plan: Plan,
    pub(crate) weights: Option<PcsProverData>,
}

impl ProverModel {
    /// Register a model with the default commitment parameters.
    pub fn new(input_len: usize, input_bits: u32, layers: Vec<Layer>) -> Result<Self, ModelError> {
        Self::with_params(input_len, input_bits, layers, PcsParams::DEFAULT)
    }

    /// Register a model: validate it, bound its accumulators, and commit to its weights.
    pub fn with_params(
        input_len: usize,
        input_bits: u32,
        layers: Vec<Layer>,
        params: PcsParams,
    ) -> Result<Self, ModelError> {
        if !(1..=32).contains(&input_bits) {
            return Err(ModelError::InputBits(input_bits));
        }
        // bounds first (an accumulator's bound depends on its weights and the input bound)
        let mut bounds: Vec<u64> = vec![1u64 << (input_bits - 1)];
        let mut specs = Vec::with_capacity(layers.len());
        for (l, layer) in layers.iter().enumerate() {
            let bound = bounds[l];
            let spec = match layer {
                Layer::MatMul {
                    rows,
                    cols,
                    weights,
                    bias,
                } => LayerSpec::MatMul {
                    rows: *rows,
                    cols: *cols,
                    out_bound: acc_bound(l, *rows, *cols, weights, bias, bound)?,
                },
                Layer::Conv {
                    win,
                    cout,
                    weights,
                    bias,
                } => LayerSpec::Conv {
                    win: *win,
                    cout: *cout,
                    out_bound: acc_bound(
                        l,
                        *cout,
                        win.c.saturating_mul(win.taps()),
                        weights,
                        bias,
                        bound,
                    )?,
                },
                Layer::Rescale {
                    shift,
                    rounding,
                    out_bits,
                } => LayerSpec::Rescale {
                    shift: *shift,
                    rounding: *rounding,
                    out_bits: *out_bits,
                },
                Layer::Relu { in_bits } => LayerSpec::Relu { in_bits: *in_bits },
                Layer::Lookup(t) => LayerSpec::Lookup(t.clone()),
                Layer::AddConst { values, out_bits } => LayerSpec::AddConst {
                    values: values.clone(),
                    out_bits: *out_bits,
                },
                Layer::MaxPool { win, in_bits } => LayerSpec::MaxPool {
                    win: *win,
                    in_bits: *in_bits,
                },
                Layer::Copy { src } => LayerSpec::Copy { src: *src },
                Layer::ArgMax {
                    lanes,
                    n,
                    last,
                    in_bits,
                } => LayerSpec::ArgMax {
                    lanes: *lanes,
                    n: *n,
                    last: *last,
                    in_bits: *in_bits,
                },
                Layer::Softmax {
                    lanes,
                    n,
                    fx,
                    fo,
                    grid,
                    lo,
                    exp,
                } => LayerSpec::Softmax {
                    lanes: *lanes,
                    n: *n,
                    fx: *fx,
                    fo: *fo,
                    grid: *grid,
                    lo: *lo,
                    exp: exp.clone(),
                },
                Layer::Concat { parts } => LayerSpec::Concat {
                    parts: parts.clone(),
                },
            };
            let bound = match &spec {
                LayerSpec::MatMul { out_bound, .. } | LayerSpec::Conv { out_bound, .. } => {
                    *out_bound
                }
                LayerSpec::Rescale { out_bits, .. } | LayerSpec::AddConst { out_bits, .. } => {
                    1u64 << (out_bits.clamp(&1, &63) - 1)
                }
                LayerSpec::Relu { in_bits } | LayerSpec::MaxPool { in_bits, .. } => {
                    1u64 << (in_bits.clamp(&1, &63) - 1)
                }
                LayerSpec::Lookup(t) => {
                    t.values.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0)
                }
                LayerSpec::Copy { src } => bounds.get(*src).copied().unwrap_or(0),
                LayerSpec::ArgMax { n, .. } => *n as u64,
                LayerSpec::Softmax { fo, .. } => 1u64 << (*fo).min(62),
                LayerSpec::Concat { parts } => parts
                    .iter()
                    .map(|p| bounds.get(*p).copied().unwrap_or(0))
                    .max()
                    .unwrap_or(0),
            };
            bounds.push(bound);
            specs.push(spec);
        }
        let mut commitment = ModelCommitment {
            input_len,
            input_bits,
            layers: specs,
            params,
            weights_root: [0u8; 32],
            layout: OutputLayout::default(),
        };
        let plan = Plan::new(&commitment)?;
        let weights = if plan.weights.count() > 0 {
            let mut vectors: Vec<Vec<F>> = vec![Vec::new(); plan.weights.count()];
            for (l, layer) in layers.iter().enumerate() {
                let (rows, cols, weights, bias) = match layer {
                    Layer::MatMul {
                        rows,
                        cols,
                        weights,
                        bias,
                    } => (*rows, *cols, weights, bias),
                    Layer::Conv {
                        win,
                        cout,
                        weights,
                        bias,
                    } => (*cout, win.c * win.taps(), weights, bias),
                    _ => continue,
                };
                let Some(m) = plan.mats[l] else { continue };
                let stride = 1usize << m.log_cols;
                let mut w = vec![F::default(); rows * stride];
                for r in 0..rows {
                    for c in 0..cols {
                        w[r * stride + c] = f_from_i64(weights[r * cols + c]);
                    }
                }
                vectors[m.w_seg] = w;
                vectors[m.b_seg] = bias.iter().map(|b| f_from_i64(*b)).collect();
            }
            let data = pcs::commit(plan.weights.pack(&vectors), params);
            commitment.weights_root = data.commitment().root;
            Some(data)
        } else {
            None
        };
        Ok(Self {
            layers,
            commitment,
            plan,
            weights,
        })
    }

    /// Binds the statement's output layout and compiled-model id into the commitment
    /// (its digest and every proof's transcript); the weights' commitment is unchanged.
    /// The outputs must cover the model's output vector exactly.
    pub fn bind(mut self, layout: OutputLayout) -> Result<Self, ModelError> {
        layout.check(self.plan.lens[self.plan.num_layers()])?;
        self.commitment.layout = layout;
        Ok(self)
    }

    /// The public commitment (computed once, here).
    pub fn commitment(&self) -> &ModelCommitment {
        &self.commitment
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Heap bytes held by the committed weights (encoded matrix and tree included).
    pub fn committed_bytes(&self) -> usize {
        self.weights.as_ref().map_or(0, PcsProverData::heap_bytes)
    }
}
