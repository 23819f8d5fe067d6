//! The validated, derived structure of a model ([`Plan`]): its tables, the relations each
//! layer adds (lookups, linear checks, zero checks, gathers, matrix products) and the
//! auxiliary vectors the prover commits to.

use crate::builder::Builder;
use crate::claims::Layout;
use crate::error::ModelError;
use crate::field::ceil_log2;
use crate::model::*;

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

impl Affine {
    pub(crate) fn of(terms: &[(usize, i64)], constant: i64) -> Self {
        Self {
            terms: terms.to_vec(),
            constant,
        }
    }
}

/// The value of an affine form at entry `i`.
pub(crate) fn eval_affine_ints(a: &Affine, vals: &[Vec<i64>], i: usize) -> i64 {
    let mut acc = i128::from(a.constant);
    for (v, c) in &a.terms {
        acc += i128::from(*c) * i128::from(vals[*v][i]);
    }
    acc as i64
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

/// `a = 0` entrywise on vectors of size `2^log_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinCheck {
    pub log_len: usize,
    pub a: Affine,
}

/// `Σ_t c_t·Π_i A_{t,i} = 0` entrywise on vectors of size `2^log_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ZeroCheck {
    pub log_len: usize,
    pub terms: Vec<(i64, Vec<Affine>)>,
}

impl ZeroCheck {
    /// The sumcheck degree: the longest product plus the eq factor.
    pub fn degree(&self) -> usize {
        self.terms.iter().map(|(_, f)| f.len()).max().unwrap_or(0) + 1
    }
}

/// Marks a gathered entry that reads nothing (value 0).
pub(crate) const NO_SRC: u32 = u32::MAX;

/// How the prover computes an auxiliary vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuxDef {
    /// `v >> 1` (floor) of vector `v`.
    Half(usize),
    /// Bits `shift .. shift + bits` of a non-negative affine form.
    Limb { a: Affine, shift: u32, bits: u32 },
    /// `src[map[i]]` (0 where `map[i] == NO_SRC`); proven by a wiring sumcheck.
    Gather { src: usize, map: Vec<u32> },
    /// The entrywise maximum of affine forms.
    Max(Vec<Affine>),
    /// `a >> shift` (floor).
    Floor { a: Affine, shift: u32 },
    /// `round_shift(a, shift)`, ties to even.
    RoundHalfEven { a: Affine, shift: u32 },
    /// `Σ c·Π factors`.
    Poly(Vec<(i64, Vec<Affine>)>),
    /// Entry `min(a, len)` of layer `layer`'s Softmax table extended by its last entry.
    TableAt { a: Affine, layer: usize },
    /// `[k is the first (or last) index of the maximum of vectors gs]`.
    OneHot {
        gs: Vec<usize>,
        k: usize,
        last: bool,
    },
}

/// A matrix product `Z = W·X + b ⊗ valid`: `W` is `2^log_rows × 2^log_cols` (weights),
/// `X` is `2^log_cols × 2^log_p` (vector `x`; `log_p = 0` for a matrix-vector product),
/// `Z` is vector `z`, `valid[p] = [p < p_valid]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatInfo {
    pub w_seg: usize,
    pub b_seg: usize,
    pub log_rows: usize,
    pub log_cols: usize,
    pub log_p: usize,
    pub x: usize,
    pub z: usize,
    pub p_valid: usize,
}

/// Derived, validated structure of a model.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Number of layers `L`.
    pub nl: usize,
    /// Vector `0` is the input, vector `l + 1` the output of layer `l`; vector `L + 1 + j`
    /// is auxiliary vector `j` (always committed), see `aux`.
    pub lens: Vec<usize>,
    pub logs: Vec<usize>,
    pub pads: Vec<i64>,
    pub bounds: Vec<u64>,
    pub mats: Vec<Option<MatInfo>>,
    pub weights: Layout,
    pub tables: Vec<TableKind>,
    pub table_bits: Vec<usize>,
    pub queries: Vec<Query>,
    pub lin_checks: Vec<LinCheck>,
    pub zero_checks: Vec<ZeroCheck>,
    /// Layers that add public constants.
    pub adds: Vec<usize>,
    pub witness: Layout,
    /// Witness segment of each vector (None: public input or output).
    pub wit_vec: Vec<Option<usize>>,
    /// Witness segment of each table's multiplicities.
    pub wit_mult: Vec<usize>,
    /// Lookup tree: queries, then tables.
    pub lookup: Layout,
    /// Vectors whose evaluation the lookup argument needs (sorted, distinct).
    pub lookup_vectors: Vec<usize>,
    pub aux: Vec<AuxDef>,
}

pub(crate) fn lerr(layer: usize, reason: impl Into<String>) -> ModelError {
    ModelError::Layer {
        layer,
        reason: reason.into(),
    }
}

/// Width of a Softmax input: signed.
pub(crate) const SOFTMAX_IN_BITS: u32 = 40;

/// Largest value width the range checks accept (limbs of 16 bits).
pub(crate) const MAX_VALUE_BITS: u32 = 48;

pub(crate) fn check_bits(l: usize, what: &str, bits: u32, min: u32) -> Result<(), ModelError> {
    if !(min..=MAX_VALUE_BITS - 1).contains(&bits) {
        return Err(lerr(
            l,
            format!("{what} {bits} not in {min}..={}", MAX_VALUE_BITS - 1),
        ));
    }
    Ok(())
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
        // whether a vector's entries past its length are all padding (no interleaved gaps)
        let mut dense = vec![true];
        let mut mats = vec![None; nl];
        let mut weight_logs = Vec::new();
        let mut adds = Vec::new();
        let mut b = Builder {
            nl,
            tables: Vec::new(),
            queries: Vec::new(),
            lin_checks: Vec::new(),
            zero_checks: Vec::new(),
            aux: Vec::new(),
            aux_logs: Vec::new(),
        };
        let v = Affine::of;
        for (l, spec) in c.layers.iter().enumerate() {
            let (len_in, pad_in) = (lens[l], pads[l]);
            let log_in = ceil_log2(len_in);
            let (i, o) = (l, l + 1);
            let mut out_dense = dense[l];
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
                        log_p: 0,
                        x: i,
                        z: o,
                        p_valid: 1,
                    });
                    weight_logs.push(lr + lc);
                    weight_logs.push(lr);
                    out_dense = true;
                    (*rows, 0, *out_bound)
                }
                LayerSpec::Conv {
                    win,
                    cout,
                    out_bound,
                } => {
                    win.check().map_err(|e| lerr(l, e))?;
                    if win.c * win.in_stride > len_in.next_power_of_two()
                        || win.c * win.in_stride < len_in
                    {
                        return Err(lerr(l, "input length does not match the window"));
                    }
                    if *cout == 0 || *cout > 1 << MAX_VECTOR_LOG {
                        return Err(lerr(l, "bad output channel count"));
                    }
                    if *out_bound > MAX_ABS {
                        return Err(lerr(l, "accumulator bound above 2^62"));
                    }
                    let kk = win.c * win.taps();
                    let (lr, lc) = (ceil_log2(*cout), ceil_log2(kk));
                    let lp = ceil_log2(win.out_plane());
                    if lr + lc > MAX_MATRIX_LOG || lc + lp > MAX_VECTOR_LOG {
                        return Err(lerr(l, "convolution too large"));
                    }
                    // the im2col matrix X[k, p], gathered from the input
                    let mut map = vec![NO_SRC; 1 << (lc + lp)];
                    for k in 0..kk {
                        let (ch, t) = (k / win.taps(), k % win.taps());
                        for oy in 0..win.oh {
                            for ox in 0..win.ow {
                                if let Some(s) = win.src(oy, ox, t / win.kw, t % win.kw) {
                                    map[(k << lp) + oy * win.ow + ox] =
                                        (ch * win.in_stride + s) as u32;
                                }
                            }
                        }
                    }
                    let x = b.add_aux(AuxDef::Gather { src: i, map }, lc + lp);
                    mats[l] = Some(MatInfo {
                        w_seg: weight_logs.len(),
                        b_seg: weight_logs.len() + 1,
                        log_rows: lr,
                        log_cols: lc,
                        log_p: lp,
                        x,
                        z: o,
                        p_valid: win.out_plane(),
                    });
                    weight_logs.push(lr + lc);
                    weight_logs.push(lr);
                    out_dense = (1usize << lp) == win.out_plane();
                    (*cout << lp, 0, *out_bound)
                }
                LayerSpec::Rescale {
                    shift,
                    rounding,
                    out_bits,
                } => {
                    check_bits(l, "out_bits", *out_bits, 1)?;
                    if *shift > MAX_VALUE_BITS - 2 {
                        return Err(lerr(l, format!("shift {shift} too large")));
                    }
                    let pad = rescale_value(pad_in, *shift, *rounding);
                    if !relu_pad_ok(pad, *out_bits) {
                        return Err(lerr(l, "padding value out of range"));
                    }
                    let (s, ob) = (*shift, *out_bits);
                    if s + ob > 62 {
                        return Err(lerr(l, "shift + out_bits above 62"));
                    }
                    let s_pow = 1i64 << s;
                    if *rounding == Rounding::HalfEven && s > 0 {
                        if ob < 2 {
                            return Err(lerr(l, "half-even rescale needs out_bits >= 2"));
                        }
                        // q = 2k + β; k in the signed (out_bits - 1)-bit range bounds q
                        let k = b.add_aux(AuxDef::Half(o), log_in);
                        let half = 1i64 << (s - 1);
                        if s < MAX_TABLE_BITS && ob - 1 <= MAX_TABLE_BITS {
                            // (v - 2^s·q + half, q - 2k) in Rne(s)
                            b.lookup(
                                TableKind::Rne(s),
                                log_in,
                                v(&[(i, 1), (o, -s_pow)], half),
                                v(&[(o, 1), (k, -2)], 0),
                            );
                        } else {
                            // β = q - 2k ∈ {0, 1}; A = v - 2^s·q + half - β ≥ 0 and
                            // B = half - β - v + 2^s·q ≥ 0 (A + B = 2^s - 2β): the
                            // remainder is within half, a tie only with even q
                            b.lookup(
                                TableKind::Range(1),
                                log_in,
                                v(&[(o, 1), (k, -2)], 0),
                                v(&[], 0),
                            );
                            b.range(v(&[(i, 1), (o, -s_pow - 1), (k, 2)], half), s + 1, log_in);
                            b.range(v(&[(i, -1), (o, s_pow - 1), (k, 2)], half), s + 1, log_in);
                        }
                        b.range(v(&[(k, 1)], 1i64 << (ob - 2)), ob - 1, log_in);
                    } else {
                        let c_add = rescale_offset(s, *rounding);
                        b.range(v(&[(i, 1), (o, -s_pow)], c_add), s, log_in);
                        // the output range: checked by the next lookup, by the verifier
                        // (public output), or here
                        let covered = match c.layers.get(l + 1) {
                            None => true,
                            Some(LayerSpec::Relu { in_bits }) => {
                                *in_bits <= MAX_TABLE_BITS && in_bits <= out_bits
                            }
                            Some(LayerSpec::Lookup(t)) => {
                                let (lo, hi) = signed_range(ob);
                                t.in_min >= lo
                                    && (t.in_min as i128 + t.values.len() as i128) <= hi as i128
                            }
                            Some(_) => false,
                        };
                        if !covered {
                            b.range(v(&[(o, 1)], 1i64 << (ob - 1)), ob, log_in);
                        }
                    }
                    (len_in, pad, 1u64 << (ob - 1))
                }
                LayerSpec::Relu { in_bits } => {
                    check_bits(l, "in_bits", *in_bits, 1)?;
                    if !relu_pad_ok(pad_in, *in_bits) {
                        return Err(lerr(l, "padding value out of range"));
                    }
                    let ib = *in_bits;
                    if ib <= MAX_TABLE_BITS {
                        b.lookup(
                            TableKind::Relu(ib),
                            log_in,
                            v(&[(i, 1)], 1i64 << (ib - 1)),
                            v(&[(o, 1)], 0),
                        );
                    } else {
                        // out = max(a, 0); the input's range comes from its producer
                        b.max_of(o, &[v(&[(i, 1)], 0), v(&[], 0)], ib, log_in);
                    }
                    (len_in, pad_in.max(0), 1u64 << (ib - 1))
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
                    b.lookup(
                        TableKind::Custom(l),
                        log_in,
                        v(&[(i, 1)], t.in_min.wrapping_neg()),
                        v(&[(o, 1)], 0),
                    );
                    let bound = t.values.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
                    (len_in, t.values[idx as usize], bound)
                }
                LayerSpec::AddConst { values, out_bits } => {
                    check_bits(l, "out_bits", *out_bits, 1)?;
                    if values.len() > 1 << log_in {
                        return Err(lerr(l, "more constants than inputs"));
                    }
                    if values.iter().any(|v| v.unsigned_abs() > MAX_ABS / 2) {
                        return Err(lerr(l, "constant beyond 2^61"));
                    }
                    if pad_in != 0 || !(dense[l] && values.len() <= len_in) {
                        return Err(lerr(l, "constants over padding are not supported"));
                    }
                    // out - a - c = 0 is checked directly; the output range here
                    let ob = *out_bits;
                    b.range(v(&[(o, 1)], 1i64 << (ob - 1)), ob, log_in);
                    adds.push(l);
                    (len_in, 0, 1u64 << (ob - 1))
                }
                LayerSpec::Copy { src } => {
                    if *src > l {
                        return Err(lerr(l, "copies a later vector"));
                    }
                    let mut d = v(&[(o, 1), (*src, -1)], 0);
                    d.constant = 0;
                    b.lin_checks.push(LinCheck {
                        log_len: ceil_log2(lens[*src]),
                        a: d,
                    });
                    out_dense = dense[*src];
                    (lens[*src], pads[*src], bounds[*src])
                }
                LayerSpec::ArgMax { .. } | LayerSpec::Softmax { .. } | LayerSpec::Concat { .. } => {
                    out_dense = true;
                    crate::heads::plan_head(&mut b, spec, l, len_in, &lens, &dense, &bounds)?
                }
                LayerSpec::MaxPool { win, in_bits } => {
                    win.check().map_err(|e| lerr(l, e))?;
                    check_bits(l, "in_bits", *in_bits, 1)?;
                    if win.c * win.in_stride > len_in.next_power_of_two()
                        || win.c * win.in_stride < len_in
                    {
                        return Err(lerr(l, "input length does not match the window"));
                    }
                    let q = win.out_plane();
                    let log_out = ceil_log2(win.c * q);
                    let mut ops = Vec::new();
                    for t in 0..win.taps() {
                        let mut map = vec![NO_SRC; 1 << log_out];
                        for ch in 0..win.c {
                            for oy in 0..win.oh {
                                for ox in 0..win.ow {
                                    // a tap in the padding repeats a valid one (max unchanged)
                                    let src =
                                        win.src(oy, ox, t / win.kw, t % win.kw).or_else(|| {
                                            (0..win.taps()).find_map(|u| {
                                                win.src(oy, ox, u / win.kw, u % win.kw)
                                            })
                                        });
                                    let Some(s) = src else {
                                        return Err(lerr(l, "a window lies in the padding"));
                                    };
                                    map[ch * q + oy * win.ow + ox] =
                                        (ch * win.in_stride + s) as u32;
                                }
                            }
                        }
                        let g = b.add_aux(AuxDef::Gather { src: i, map }, log_out);
                        ops.push(v(&[(g, 1)], 0));
                    }
                    b.max_of(o, &ops, *in_bits, log_out);
                    out_dense = true;
                    (win.c * q, 0, 1u64 << (in_bits - 1))
                }
            };
            lens.push(len_out);
            pads.push(pad_out);
            bounds.push(bound_out);
            dense.push(out_dense);
        }
        if !dense[nl] {
            return Err(lerr(
                nl - 1,
                "the output vector has gaps (a convolution's rows)",
            ));
        }
        for (j, log) in b.aux_logs.iter().enumerate() {
            lens.push(1 << log);
            pads.push(0);
            bounds.push(match &b.aux[j] {
                AuxDef::Half(v) => bounds[*v] / 2,
                AuxDef::Limb { bits, .. } => 1u64 << bits,
                AuxDef::Gather { src, .. } => bounds[*src],
                _ => MAX_ABS,
            });
        }
        let tables = b.tables;
        let logs: Vec<usize> = lens.iter().map(|n| ceil_log2(*n)).collect();
        let table_bits: Vec<usize> = tables
            .iter()
            .map(|t| match t {
                TableKind::Range(b) | TableKind::Relu(b) => *b as usize,
                TableKind::Rne(s) => *s as usize + 1,
                TableKind::Custom(l) => match &c.layers[*l] {
                    LayerSpec::Lookup(t) => ceil_log2(t.values.len()),
                    LayerSpec::Softmax { exp, .. } => ceil_log2(exp.len() + 1),
                    _ => 0,
                },
            })
            .collect();
        // witness: intermediate and auxiliary vectors, then multiplicities
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
        let queries = b.queries;
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
        c.layout.check(lens[nl])?;
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
            lin_checks: b.lin_checks,
            zero_checks: b.zero_checks,
            adds,
            witness,
            wit_vec,
            wit_mult,
            lookup: Layout::new(&lk_logs),
            lookup_vectors,
            aux: b.aux,
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
