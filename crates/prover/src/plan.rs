//! The validated, derived structure of a model ([`Plan`]): its tables, the
//! lookups each layer needs, and where each MatMul's weights sit.

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

pub(crate) fn lerr(layer: usize, reason: impl Into<String>) -> ModelError {
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
