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

use crate::claims::Layout;
use crate::error::{DecodeError, ModelError, ProveError};
use crate::field::{ceil_log2, f_from_i64, F};
use crate::merkle::Hash;
use crate::pcs::{self, PcsParams, PcsProverData};

/// Largest lookup or range table: `2^16` rows.
pub const MAX_TABLE_BITS: u32 = 16;
/// Every integer the model computes must satisfy `|v| ≤ 2^62` (so that it embeds in the
/// field without wrap-around, with room for the range arguments).
pub const MAX_ABS: u64 = 1 << 62;
/// Largest vector: `2^24` entries; largest weight matrix (padded): `2^28` entries.
pub const MAX_VECTOR_LOG: usize = 24;
const MAX_MATRIX_LOG: usize = 28;

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

fn signed_range(bits: u32) -> (i64, i64) {
    let h = 1i64 << (bits - 1);
    (-h, h)
}

fn relu_pad_ok(v: i64, bits: u32) -> bool {
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

/// A lookup table kind; its tag is its index in [`Plan::tables`] plus one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TableKind {
    /// `{(i, 0) : 0 ≤ i < 2^bits}`.
    Range(u32),
    /// `{(i, relu(i - 2^(bits-1))) : 0 ≤ i < 2^bits}`.
    Relu(u32),
    /// The table of layer `l` (a [`LayerSpec::Lookup`]), padded by repeating its last row.
    Custom(usize),
    /// Round-half-even remainders for shift `s`: rows `j < 2^(s+1)` are
    /// `(j >> 1, j & 1)`, except row 1, which is `(2^s, 0)`: the pairs
    /// `(e + 2^(s-1), q mod 2)` allowed for `v = q·2^s + e`.
    Rne(u32),
}

/// `Σ coef·vector + constant`, entrywise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Affine {
    pub terms: Vec<(usize, i64)>,
    pub constant: i64,
}

/// One set of lookups: for every entry `i` of vectors of size `2^log_len`, the pair
/// `(a_i, o_i)` is a row of `tables[table]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub table: usize,
    pub log_len: usize,
    pub a: Affine,
    pub o: Affine,
}

/// Where a MatMul's weights and bias sit in the weights polynomial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatInfo {
    pub w_seg: usize,
    pub b_seg: usize,
    pub log_rows: usize,
    pub log_cols: usize,
}

/// Derived, validated structure of a model.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Number of layers `L`.
    pub nl: usize,
    /// Vector `0` is the input, vector `l + 1` the output of layer `l`; vectors `L + 1 + j`
    /// are auxiliary vectors (always committed), see `aux`.
    pub lens: Vec<usize>,
    pub logs: Vec<usize>,
    pub pads: Vec<i64>,
    pub bounds: Vec<u64>,
    pub mats: Vec<Option<MatInfo>>,
    pub weights: Layout,
    pub tables: Vec<TableKind>,
    pub table_bits: Vec<usize>,
    pub queries: Vec<Query>,
    pub witness: Layout,
    /// Witness segment of each vector (None: public input or output).
    pub wit_vec: Vec<Option<usize>>,
    /// Witness segment of each table's multiplicities.
    pub wit_mult: Vec<usize>,
    /// Lookup tree: queries, then tables.
    pub lookup: Layout,
    /// Vectors whose evaluation the lookup argument needs (sorted, distinct).
    pub lookup_vectors: Vec<usize>,
    /// Auxiliary vector `L + 1 + j` is `q >> 1` of the half-even rescale at layer `aux[j]`.
    pub aux: Vec<usize>,
}

fn lerr(layer: usize, reason: impl Into<String>) -> ModelError {
    ModelError::Layer {
        layer,
        reason: reason.into(),
    }
}

impl Plan {
    pub(crate) fn num_layers(&self) -> usize {
        self.nl
    }

    pub(crate) fn new(c: &ModelCommitment) -> Result<Self, ModelError> {
        if c.layers.is_empty() {
            return Err(ModelError::Empty);
        }
        if c.input_len == 0 {
            return Err(ModelError::EmptyInput);
        }
        if c.input_len > 1 << MAX_VECTOR_LOG {
            return Err(ModelError::TooLarge("input".into()));
        }
        if !(1..=32).contains(&c.input_bits) {
            return Err(ModelError::InputBits(c.input_bits));
        }
        c.params.check().map_err(ModelError::TooLarge)?;
        let nl = c.layers.len();
        let mut lens = vec![c.input_len];
        let mut pads = vec![0i64];
        let mut bounds = vec![1u64 << (c.input_bits - 1)];
        let mut mats = vec![None; nl];
        let mut weight_logs = Vec::new();
        let mut tables: Vec<TableKind> = Vec::new();
        let mut table_of = |k: TableKind| -> usize {
            if let Some(i) = tables.iter().position(|t| *t == k) {
                i
            } else {
                tables.push(k);
                tables.len() - 1
            }
        };
        // (table, vector in, vector out, kind) collected first; affine forms below
        let mut queries: Vec<Query> = Vec::new();
        let mut aux: Vec<usize> = Vec::new();
        let mut aux_pads: Vec<i64> = Vec::new();
        for (l, spec) in c.layers.iter().enumerate() {
            let (len_in, pad_in, bound_in) = (lens[l], pads[l], bounds[l]);
            let log_in = ceil_log2(len_in);
            let (len_out, pad_out, bound_out) = match spec {
                LayerSpec::MatMul {
                    rows,
                    cols,
                    out_bound,
                } => {
                    if *cols != len_in {
                        return Err(lerr(l, format!("takes {cols} inputs, gets {len_in}")));
                    }
                    if *rows == 0 || *rows > 1 << MAX_VECTOR_LOG {
                        return Err(lerr(l, "bad row count"));
                    }
                    let (lr, lc) = (ceil_log2(*rows), ceil_log2(*cols));
                    if lr + lc > MAX_MATRIX_LOG {
                        return Err(lerr(l, "matrix too large"));
                    }
                    if *out_bound > MAX_ABS {
                        return Err(lerr(l, "accumulator bound above 2^62"));
                    }
                    mats[l] = Some(MatInfo {
                        w_seg: weight_logs.len(),
                        b_seg: weight_logs.len() + 1,
                        log_rows: lr,
                        log_cols: lc,
                    });
                    weight_logs.push(lr + lc);
                    weight_logs.push(lr);
                    (*rows, 0, *out_bound)
                }
                LayerSpec::Rescale {
                    shift,
                    rounding,
                    out_bits,
                } => {
                    if *shift > MAX_TABLE_BITS {
                        return Err(lerr(l, format!("shift {shift} above {MAX_TABLE_BITS}")));
                    }
                    if !(1..=MAX_TABLE_BITS).contains(out_bits) {
                        return Err(lerr(l, format!("out_bits {out_bits} not in 1..=16")));
                    }
                    let pad = rescale_value(pad_in, *shift, *rounding);
                    if !relu_pad_ok(pad, *out_bits) {
                        return Err(lerr(l, "padding value out of range"));
                    }
                    let s_pow = 1i64 << shift;
                    if *rounding == Rounding::HalfEven && *shift > 0 {
                        if *out_bits < 2 {
                            return Err(lerr(l, "half-even rescale needs out_bits >= 2"));
                        }
                        // v = q·2^s + e, (e + half, q - 2k) in Rne(s), k in the signed
                        // (out_bits - 1)-bit range; this also bounds q
                        let k_id = nl + 1 + aux.len();
                        aux.push(l);
                        aux_pads.push(pad >> 1);
                        queries.push(Query {
                            table: table_of(TableKind::Rne(*shift)),
                            log_len: log_in,
                            a: Affine {
                                terms: vec![(l, 1), (l + 1, -s_pow)],
                                constant: 1i64 << (shift - 1),
                            },
                            o: Affine {
                                terms: vec![(l + 1, 1), (k_id, -2)],
                                constant: 0,
                            },
                        });
                        queries.push(Query {
                            table: table_of(TableKind::Range(out_bits - 1)),
                            log_len: log_in,
                            a: Affine {
                                terms: vec![(k_id, 1)],
                                constant: 1i64 << (out_bits - 2),
                            },
                            o: Affine {
                                terms: vec![],
                                constant: 0,
                            },
                        });
                        lens.push(len_in);
                        pads.push(pad);
                        bounds.push(1u64 << (out_bits - 1));
                        continue;
                    }
                    let c_add = rescale_offset(*shift, *rounding);
                    queries.push(Query {
                        table: table_of(TableKind::Range(*shift)),
                        log_len: log_in,
                        a: Affine {
                            terms: vec![(l, 1), (l + 1, -s_pow)],
                            constant: c_add,
                        },
                        o: Affine {
                            terms: vec![],
                            constant: 0,
                        },
                    });
                    // the output range: checked by the next lookup, by the verifier (public
                    // output), or here
                    let covered = match c.layers.get(l + 1) {
                        None => true,
                        Some(LayerSpec::Relu { in_bits }) => in_bits <= out_bits,
                        Some(LayerSpec::Lookup(t)) => {
                            let (lo, hi) = signed_range(*out_bits);
                            t.in_min >= lo
                                && (t.in_min as i128 + t.values.len() as i128) <= hi as i128
                        }
                        Some(_) => false,
                    };
                    if !covered {
                        queries.push(Query {
                            table: table_of(TableKind::Range(*out_bits)),
                            log_len: log_in,
                            a: Affine {
                                terms: vec![(l + 1, 1)],
                                constant: 1i64 << (out_bits - 1),
                            },
                            o: Affine {
                                terms: vec![],
                                constant: 0,
                            },
                        });
                    }
                    (len_in, pad, 1u64 << (out_bits - 1))
                }
                LayerSpec::Relu { in_bits } => {
                    if !(1..=MAX_TABLE_BITS).contains(in_bits) {
                        return Err(lerr(l, format!("in_bits {in_bits} not in 1..=16")));
                    }
                    if !relu_pad_ok(pad_in, *in_bits) {
                        return Err(lerr(l, "padding value out of range"));
                    }
                    queries.push(Query {
                        table: table_of(TableKind::Relu(*in_bits)),
                        log_len: log_in,
                        a: Affine {
                            terms: vec![(l, 1)],
                            constant: 1i64 << (in_bits - 1),
                        },
                        o: Affine {
                            terms: vec![(l + 1, 1)],
                            constant: 0,
                        },
                    });
                    (len_in, pad_in.max(0), 1u64 << (in_bits - 1))
                }
                LayerSpec::Lookup(t) => {
                    let n = t.values.len();
                    if n == 0 || n > 1 << MAX_TABLE_BITS {
                        return Err(lerr(l, "table length not in 1..=2^16"));
                    }
                    let lim = MAX_ABS as i128;
                    if (t.in_min as i128).abs() > lim || (t.in_min as i128 + n as i128) > lim {
                        return Err(lerr(l, "table domain beyond 2^62"));
                    }
                    if t.values.iter().any(|v| v.unsigned_abs() > MAX_ABS) {
                        return Err(lerr(l, "table value beyond 2^62"));
                    }
                    let idx = pad_in as i128 - t.in_min as i128;
                    if idx < 0 || idx >= n as i128 {
                        return Err(lerr(l, "padding value outside the table's domain"));
                    }
                    queries.push(Query {
                        table: table_of(TableKind::Custom(l)),
                        log_len: log_in,
                        a: Affine {
                            terms: vec![(l, 1)],
                            constant: t.in_min.wrapping_neg(),
                        },
                        o: Affine {
                            terms: vec![(l + 1, 1)],
                            constant: 0,
                        },
                    });
                    let bound = t.values.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
                    (len_in, t.values[idx as usize], bound)
                }
            };
            let _ = bound_in;
            lens.push(len_out);
            pads.push(pad_out);
            bounds.push(bound_out);
        }
        for (j, l) in aux.iter().enumerate() {
            lens.push(lens[*l + 1]);
            pads.push(aux_pads[j]);
            bounds.push(bounds[*l + 1] / 2);
        }
        let logs: Vec<usize> = lens.iter().map(|n| ceil_log2(*n)).collect();
        let table_bits: Vec<usize> = tables
            .iter()
            .map(|t| match t {
                TableKind::Range(b) | TableKind::Relu(b) => *b as usize,
                TableKind::Rne(s) => *s as usize + 1,
                TableKind::Custom(l) => match &c.layers[*l] {
                    LayerSpec::Lookup(t) => ceil_log2(t.values.len()),
                    _ => 0,
                },
            })
            .collect();
        // witness: intermediate vectors, then multiplicities
        let mut wit_logs = Vec::new();
        let mut wit_vec = vec![None; lens.len()];
        for (v, slot) in wit_vec.iter_mut().enumerate().skip(1) {
            if v != nl {
                *slot = Some(wit_logs.len());
                wit_logs.push(logs[v]);
            }
        }
        let mut wit_mult = Vec::new();
        for b in &table_bits {
            wit_mult.push(wit_logs.len());
            wit_logs.push(*b);
        }
        let mut lk_logs: Vec<usize> = queries.iter().map(|q| q.log_len).collect();
        lk_logs.extend(table_bits.iter().copied());
        let mut lookup_vectors: Vec<usize> = queries
            .iter()
            .flat_map(|q| q.a.terms.iter().chain(&q.o.terms).map(|(v, _)| *v))
            .collect();
        lookup_vectors.sort_unstable();
        lookup_vectors.dedup();
        let weights = Layout::new(&weight_logs);
        let witness = Layout::new(&wit_logs);
        for (what, l) in [("weights", &weights), ("witness", &witness)] {
            if l.len > c.params.max_len() {
                return Err(ModelError::TooLarge(format!(
                    "{what}: {} values, at most {} with these parameters",
                    l.len,
                    c.params.max_len()
                )));
            }
        }
        Ok(Self {
            nl,
            lens,
            logs,
            pads,
            bounds,
            mats,
            weights,
            tables,
            table_bits,
            queries,
            witness,
            wit_vec,
            wit_mult,
            lookup: Layout::new(&lk_logs),
            lookup_vectors,
            aux,
        })
    }
}

/// The constant added before the shift.
pub(crate) fn rescale_offset(shift: u32, rounding: Rounding) -> i64 {
    match rounding {
        Rounding::HalfUp if shift > 0 => 1i64 << (shift - 1),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------
// The prover's model.

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
