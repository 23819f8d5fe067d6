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
//! bounds) and the Merkle root of the weights' polynomial commitment, computed once at
//! registration ([`ProverModel::new`]). The verifier never needs the weights.

use crate::error::{DecodeError, ModelError, ProveError};
use crate::field::{f_from_i64, F};
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
    if s == 0 {
        return v;
    }
    let q = v >> s;
    let r = v - (q << s);
    let half = 1i64 << (s - 1);
    if r > half || (r == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
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
}

const COMMITMENT_MAGIC: &[u8; 4] = b"VPMC";
const COMMITMENT_VERSION: u8 = 1;

pub(crate) fn signed_range(bits: u32) -> (i64, i64) {
    let h = 1i64 << (bits - 1);
    (-h, h)
}

pub(crate) fn relu_pad_ok(v: i64, bits: u32) -> bool {
    let (lo, hi) = signed_range(bits);
    (lo..hi).contains(&v)
}

impl ModelCommitment {
    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(COMMITMENT_MAGIC);
        w.push(COMMITMENT_VERSION);
        w.push(self.params.log_inv_rate);
        w.extend_from_slice(&self.params.num_queries.to_le_bytes());
        w.extend_from_slice(&(self.input_len as u64).to_le_bytes());
        w.extend_from_slice(&self.input_bits.to_le_bytes());
        w.extend_from_slice(&(self.layers.len() as u32).to_le_bytes());
        for l in &self.layers {
            match l {
                LayerSpec::MatMul {
                    rows,
                    cols,
                    out_bound,
                } => {
                    w.push(0);
                    w.extend_from_slice(&(*rows as u64).to_le_bytes());
                    w.extend_from_slice(&(*cols as u64).to_le_bytes());
                    w.extend_from_slice(&out_bound.to_le_bytes());
                }
                LayerSpec::Rescale {
                    shift,
                    rounding,
                    out_bits,
                } => {
                    w.push(1);
                    w.extend_from_slice(&shift.to_le_bytes());
                    w.push(match rounding {
                        Rounding::Floor => 0,
                        Rounding::HalfUp => 1,
                        Rounding::HalfEven => 2,
                    });
                    w.extend_from_slice(&out_bits.to_le_bytes());
                }
                LayerSpec::Relu { in_bits } => {
                    w.push(2);
                    w.extend_from_slice(&in_bits.to_le_bytes());
                }
                LayerSpec::Lookup(t) => {
                    w.push(3);
                    w.extend_from_slice(&t.in_min.to_le_bytes());
                    w.extend_from_slice(&(t.values.len() as u64).to_le_bytes());
                    for v in &t.values {
                        w.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
        w.extend_from_slice(&self.weights_root);
        w
    }

    /// Decode (strictly: unknown tags, short input and trailing bytes are errors). The
    /// architecture is validated by [`crate::verify`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { b, pos: 0 };
        if r.take(4)? != COMMITMENT_MAGIC {
            return Err(DecodeError("bad magic"));
        }
        if r.u8()? != COMMITMENT_VERSION {
            return Err(DecodeError("unknown version"));
        }
        let params = PcsParams {
            log_inv_rate: r.u8()?,
            num_queries: r.u16()?,
        };
        let input_len = r.usize()?;
        let input_bits = r.u32()?;
        let n = r.u32()? as usize;
        let mut layers = Vec::new();
        for _ in 0..n {
            let l = match r.u8()? {
                0 => LayerSpec::MatMul {
                    rows: r.usize()?,
                    cols: r.usize()?,
                    out_bound: r.u64()?,
                },
                1 => LayerSpec::Rescale {
                    shift: r.u32()?,
                    rounding: match r.u8()? {
                        0 => Rounding::Floor,
                        1 => Rounding::HalfUp,
                        2 => Rounding::HalfEven,
                        _ => return Err(DecodeError("bad rounding")),
                    },
                    out_bits: r.u32()?,
                },
                2 => LayerSpec::Relu { in_bits: r.u32()? },
                3 => {
                    let in_min = r.u64()? as i64;
                    let len = r.usize()?;
                    if len > 1 << MAX_TABLE_BITS {
                        return Err(DecodeError("table too long"));
                    }
                    let mut values = Vec::with_capacity(len);
                    for _ in 0..len {
                        values.push(r.u64()? as i64);
                    }
                    LayerSpec::Lookup(LookupTable { in_min, values })
                }
                _ => return Err(DecodeError("bad layer tag")),
            };
            layers.push(l);
        }
        let mut weights_root = [0u8; 32];
        weights_root.copy_from_slice(r.take(32)?);
        if r.pos != b.len() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(Self {
            input_len,
            input_bits,
            layers,
            params,
            weights_root,
        })
    }

    /// A 32-byte id of the commitment (BLAKE3 of its encoding).
    pub fn digest(&self) -> Hash {
        *blake3::hash(&self.to_bytes()).as_bytes()
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError("overflow"))?;
        let s = self.b.get(self.pos..end).ok_or(DecodeError("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2)?);
        Ok(u16::from_le_bytes(a))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn usize(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.u64()?).map_err(|_| DecodeError("length too large"))
    }
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
        // bounds first (a MatMul's out_bound depends on its weights and the input bound)
        let mut bound: u64 = 1u64 << (input_bits - 1);
        let mut specs = Vec::with_capacity(layers.len());
        for (l, layer) in layers.iter().enumerate() {
            let spec = match layer {
                Layer::MatMul {
                    rows,
                    cols,
                    weights,
                    bias,
                } => {
                    if rows.checked_mul(*cols) != Some(weights.len()) || bias.len() != *rows {
                        return Err(lerr(l, "weights or bias have the wrong length"));
                    }
                    let mut out_bound: u128 = 0;
                    for r in 0..*rows {
                        let row = &weights[r * cols..(r + 1) * cols];
                        let s: u128 = row
                            .iter()
                            .map(|w| u128::from(w.unsigned_abs()) * u128::from(bound))
                            .sum::<u128>()
                            + u128::from(bias[r].unsigned_abs());
                        out_bound = out_bound.max(s);
                    }
                    if out_bound > u128::from(MAX_ABS) {
                        return Err(lerr(
                            l,
                            "the accumulator can exceed 2^62 for admissible inputs",
                        ));
                    }
                    LayerSpec::MatMul {
                        rows: *rows,
                        cols: *cols,
                        out_bound: out_bound as u64,
                    }
                }
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
            };
            bound = match &spec {
                LayerSpec::MatMul { out_bound, .. } => *out_bound,
                LayerSpec::Rescale { out_bits, .. } => 1u64 << (out_bits.clamp(&1, &63) - 1),
                LayerSpec::Relu { in_bits } => 1u64 << (in_bits.clamp(&1, &63) - 1),
                LayerSpec::Lookup(t) => {
                    t.values.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0)
                }
            };
            specs.push(spec);
        }
        let mut commitment = ModelCommitment {
            input_len,
            input_bits,
            layers: specs,
            params,
            weights_root: [0u8; 32],
        };
        let plan = Plan::new(&commitment)?;
        let weights = if plan.weights.count() > 0 {
            let mut vectors: Vec<Vec<F>> = vec![Vec::new(); plan.weights.count()];
            for (l, layer) in layers.iter().enumerate() {
                if let (
                    Layer::MatMul {
                        rows,
                        cols,
                        weights,
                        bias,
                    },
                    Some(m),
                ) = (layer, plan.mats[l])
                {
                    let stride = 1usize << m.log_cols;
                    let mut w = vec![F::default(); rows * stride];
                    for r in 0..*rows {
                        for c in 0..*cols {
                            w[r * stride + c] = f_from_i64(weights[r * cols + c]);
                        }
                    }
                    vectors[m.w_seg] = w;
                    vectors[m.b_seg] = bias.iter().map(|b| f_from_i64(*b)).collect();
                }
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

    /// The public commitment (computed once, here).
    pub fn commitment(&self) -> &ModelCommitment {
        &self.commitment
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Run the exact integer semantics (no proof).
    pub fn evaluate(&self, input: &[i64]) -> Result<Vec<i64>, ProveError> {
        let vals = self.run(input)?;
        let last = self.plan.num_layers();
        Ok(vals[last][..self.plan.lens[last]].to_vec())
    }

    /// Run the exact semantics on padded vectors: `out[v]` has length `2^logs[v]`.
    pub(crate) fn run(&self, input: &[i64]) -> Result<Vec<Vec<i64>>, ProveError> {
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
            };
            out.push(next);
        }
        for l in &p.aux {
            let k: Vec<i64> = out[l + 1].iter().map(|q| q >> 1).collect();
            out.push(k);
        }
        Ok(out)
    }

    /// Heap bytes held by the committed weights (encoded matrix and tree included).
    pub fn committed_bytes(&self) -> usize {
        self.weights.as_ref().map_or(0, PcsProverData::heap_bytes)
    }
}
