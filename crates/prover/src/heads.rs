//! Relations of the classifier heads: ArgMax, Softmax (exact mode's table with
//! interpolation and rounded division), branches (Copy) and multi-output Concat.
//!
//! Rows are gathered into one vector per position `k` (`g_k[i] = x[i·n + k]`), so every
//! row-wise relation is entrywise on vectors of `lanes` entries.

use crate::builder::Builder;
use crate::error::ModelError;
use crate::field::ceil_log2;
use crate::model::{LayerSpec, MAX_TABLE_BITS, MAX_VECTOR_LOG};
use crate::plan::{
    check_bits, lerr, Affine, AuxDef, LinCheck, TableKind, ZeroCheck, NO_SRC, SOFTMAX_IN_BITS,
};

fn v(terms: &[(usize, i64)], c: i64) -> Affine {
    Affine::of(terms, c)
}

/// `a + b` (terms concatenated).
fn add(a: &Affine, b: &Affine) -> Affine {
    let mut r = a.clone();
    r.terms.extend(b.terms.iter().copied());
    r.constant += b.constant;
    r
}

/// `c·a`.
fn scale(a: &Affine, c: i64) -> Affine {
    Affine {
        terms: a.terms.iter().map(|(v, k)| (*v, k * c)).collect(),
        constant: a.constant * c,
    }
}

impl Builder {
    /// Vector `out` equals `Σ c·Π factors` entrywise (a zero check).
    pub(crate) fn poly_is(&mut self, out: usize, terms: &[(i64, Vec<Affine>)], log: usize) {
        let mut all = vec![(1, vec![v(&[(out, 1)], 0)])];
        all.extend(terms.iter().map(|(c, f)| (-c, f.clone())));
        self.zero_checks.push(ZeroCheck {
            log_len: log,
            terms: all,
        });
    }

    /// `q = round_shift(z, s)` (ties to even) with `q` a signed `ob`-bit integer.
    pub(crate) fn round_he(&mut self, z: &Affine, q: usize, s: u32, ob: u32, log: usize) {
        if s == 0 {
            let mut d = scale(z, -1);
            d.terms.push((q, 1));
            self.lin_checks.push(LinCheck { log_len: log, a: d });
            self.range(v(&[(q, 1)], 1i64 << (ob - 1)), ob, log);
            return;
        }
        let k = self.add_aux(AuxDef::Half(q), log);
        let (sp, half) = (1i64 << s, 1i64 << (s - 1));
        self.lookup(
            TableKind::Range(1),
            log,
            v(&[(q, 1), (k, -2)], 0),
            v(&[], 0),
        );
        self.range(add(z, &v(&[(q, -sp - 1), (k, 2)], half)), s + 1, log);
        self.range(
            add(&scale(z, -1), &v(&[(q, sp - 1), (k, 2)], half)),
            s + 1,
            log,
        );
        self.range(v(&[(k, 1)], 1i64 << (ob - 2)), ob - 1, log);
    }

    /// One gathered vector per row position: `g_k[i] = src[i·n + k]`.
    fn columns(&mut self, src: usize, lanes: usize, n: usize) -> Vec<usize> {
        let log = ceil_log2(lanes);
        (0..n)
            .map(|k| {
                let map = (0..lanes).map(|i| (i * n + k) as u32).collect();
                self.add_aux(AuxDef::Gather { src, map }, log)
            })
            .collect()
    }

    /// The row maxima of the columns `gs` (committed), `bits`-bit differences.
    fn row_max(&mut self, gs: &[usize], bits: u32, log: usize) -> usize {
        let ops: Vec<Affine> = gs.iter().map(|g| v(&[(*g, 1)], 0)).collect();
        let m = self.add_aux(AuxDef::Max(ops.clone()), log);
        self.max_of(m, &ops, bits, log);
        m
    }

    /// `out[i]` = index of the first (or last) maximum of row `i` of `input`.
    pub(crate) fn argmax(
        &mut self,
        input: usize,
        out: usize,
        lanes: usize,
        n: usize,
        last: bool,
        bits: u32,
    ) {
        let log = ceil_log2(lanes);
        let gs = self.columns(input, lanes, n);
        let m = self.row_max(&gs, bits + 1, log);
        let bs: Vec<usize> = (0..n)
            .map(|k| {
                self.add_aux(
                    AuxDef::OneHot {
                        gs: gs.clone(),
                        k,
                        last,
                    },
                    log,
                )
            })
            .collect();
        let mut one = v(&[], -1);
        let mut idx = v(&[(out, 1)], 0);
        for (k, b) in bs.iter().enumerate() {
            self.lookup(TableKind::Range(1), log, v(&[(*b, 1)], 0), v(&[], 0));
            one.terms.push((*b, 1));
            idx.terms.push((*b, -(k as i64)));
            // b_k = 1 only at a maximum
            self.zero_checks.push(ZeroCheck {
                log_len: log,
                terms: vec![(1, vec![v(&[(*b, 1)], 0), v(&[(m, 1), (gs[k], -1)], 0)])],
            });
            // no maximum before (after, with `last`) the chosen one: where the chosen index
            // is not at or before k (P_k = 0), g_k < m
            let prefix: Vec<(usize, i64)> = if last {
                bs[k..].iter().map(|b| (*b, -1)).collect()
            } else {
                bs[..=k].iter().map(|b| (*b, -1)).collect()
            };
            let not_yet = v(&prefix, 1);
            let gap = v(&[(m, 1), (gs[k], -1)], -1);
            let terms = vec![(1, vec![not_yet, gap])];
            let t = self.add_aux(AuxDef::Poly(terms.clone()), log);
            self.poly_is(t, &terms, log);
            self.range(v(&[(t, 1)], 0), bits + 1, log);
        }
        self.lin_checks.push(LinCheck {
            log_len: log,
            a: one,
        });
        self.lin_checks.push(LinCheck {
            log_len: log,
            a: idx,
        });
    }

    /// `out` = exact mode's Softmax of each row of `input` (see `exec::softmax`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn softmax(
        &mut self,
        layer: usize,
        input: usize,
        out: usize,
        lanes: usize,
        n: usize,
        sh: u32,
        lo: i64,
        fo: u32,
    ) {
        let log = ceil_log2(lanes);
        let gs = self.columns(input, lanes, n);
        let os = self.columns(out, lanes, n);
        let m = self.row_max(&gs, SOFTMAX_IN_BITS + 1, log);
        let floor = lo << sh;
        let mut sum = v(&[], 0);
        let mut es = Vec::with_capacity(n);
        for g in &gs {
            // the clamped difference, its grid point j and remainder r
            let d = v(&[(*g, 1), (m, -1)], 0);
            let dc = self.add_aux(AuxDef::Max(vec![d.clone(), v(&[], floor)]), log);
            self.max_of(dc, &[d, v(&[], floor)], SOFTMAX_IN_BITS + 2, log);
            let j = self.add_aux(
                AuxDef::Floor {
                    a: v(&[(dc, 1)], 0),
                    shift: sh,
                },
                log,
            );
            let r = v(&[(dc, 1), (j, -(1i64 << sh))], 0);
            self.range(r.clone(), sh, log);
            // table entries at j and j + 1
            let at = |c: i64| v(&[(j, 1)], c - lo);
            let lj = self.add_aux(AuxDef::TableAt { a: at(0), layer }, log);
            let lj1 = self.add_aux(AuxDef::TableAt { a: at(1), layer }, log);
            self.lookup(TableKind::Custom(layer), log, at(0), v(&[(lj, 1)], 0));
            self.lookup(TableKind::Custom(layer), log, at(1), v(&[(lj1, 1)], 0));
            // e = L[j] + round_shift((L[j+1] - L[j])·r, sh)
            let terms = vec![(1, vec![v(&[(lj1, 1), (lj, -1)], 0), r])];
            let p = self.add_aux(AuxDef::Poly(terms.clone()), log);
            self.poly_is(p, &terms, log);
            let pa = v(&[(p, 1)], 0);
            let q = self.add_aux(
                AuxDef::RoundHalfEven {
                    a: pa.clone(),
                    shift: sh,
                },
                log,
            );
            self.round_he(&pa, q, sh, 32, log);
            let e = v(&[(lj, 1), (q, 1)], 0);
            sum = add(&sum, &e);
            es.push(e);
        }
        // o = div_round(e·2^fo, S): R2 = 2^(fo+1)·e - 2·o·S ∈ [-S, S], ties only for even o
        let sb = 34 + ceil_log2(n) as u32;
        for (e, o) in es.iter().zip(&os) {
            let ov = v(&[(*o, 1)], 0);
            let terms = vec![
                (1i64 << (fo + 1), vec![e.clone()]),
                (-2, vec![ov.clone(), sum.clone()]),
            ];
            let r2 = self.add_aux(AuxDef::Poly(terms.clone()), log);
            self.poly_is(r2, &terms, log);
            let h = self.add_aux(AuxDef::Half(*o), log);
            let beta = v(&[(*o, 1), (h, -2)], 0);
            self.lookup(TableKind::Range(1), log, beta.clone(), v(&[], 0));
            self.range(v(&[(h, 1)], 0), fo, log);
            let r2v = v(&[(r2, 1)], 0);
            self.range(add(&add(&r2v, &sum), &scale(&beta, -1)), sb, log);
            self.range(
                add(&add(&scale(&r2v, -1), &sum), &scale(&beta, -1)),
                sb,
                log,
            );
        }
    }

    /// `out` = the concatenation of `parts` (`(vector, used length)`), zero-padded.
    pub(crate) fn concat(&mut self, out: usize, parts: &[(usize, usize)], log: usize) {
        let mut check = v(&[(out, 1)], 0);
        let mut off = 0usize;
        for (src, len) in parts {
            let mut map = vec![NO_SRC; 1 << log];
            for (k, m) in map.iter_mut().enumerate().skip(off).take(*len) {
                *m = (k - off) as u32;
            }
            off += len;
            let c = self.add_aux(AuxDef::Gather { src: *src, map }, log);
            check.terms.push((c, -1));
        }
        self.lin_checks.push(LinCheck {
            log_len: log,
            a: check,
        });
    }
}

/// Validates a head layer and adds its relations: `(length, pad, bound)` of its output.
pub(crate) fn plan_head(
    b: &mut Builder,
    spec: &LayerSpec,
    l: usize,
    len_in: usize,
    lens: &[usize],
    dense: &[bool],
    bounds: &[u64],
) -> Result<(usize, i64, u64), ModelError> {
    Ok(match spec {
        LayerSpec::ArgMax {
            lanes,
            n,
            last,
            in_bits,
        } => {
            check_bits(l, "in_bits", *in_bits, 1)?;
            check_rows(l, *lanes, *n, len_in, dense[l])?;
            b.argmax(l, l + 1, *lanes, *n, *last, *in_bits);
            (*lanes, 0, *n as u64)
        }
        LayerSpec::Softmax {
            lanes,
            n,
            fx,
            fo,
            grid,
            lo,
            exp,
        } => {
            check_rows(l, *lanes, *n, len_in, dense[l])?;
            if fx < grid || fx - grid > MAX_TABLE_BITS || !(1..=24).contains(fo) {
                return Err(lerr(l, "softmax scales out of range"));
            }
            let hi_ok = *lo <= 0 && exp.len() as i64 == 1 - lo;
            if !hi_ok || exp.len() >= 1 << MAX_TABLE_BITS {
                return Err(lerr(l, "softmax table must cover lo..=0"));
            }
            if exp.iter().any(|e| !(0..1i64 << 31).contains(e)) {
                return Err(lerr(l, "softmax table entries out of range"));
            }
            if *fo as usize + 34 + ceil_log2(*n) > 61 {
                return Err(lerr(l, "softmax rows too long for its output scale"));
            }
            b.softmax(l, l, l + 1, *lanes, *n, fx - grid, *lo, *fo);
            (lanes * n, 0, 1u64 << fo)
        }
        LayerSpec::Concat { parts } => {
            if parts.is_empty() || parts.iter().any(|p| *p > l || !dense[*p]) {
                return Err(lerr(l, "concat parts must be earlier dense vectors"));
            }
            let total: usize = parts.iter().map(|p| lens[*p]).sum();
            if total > 1 << MAX_VECTOR_LOG {
                return Err(lerr(l, "concatenation too long"));
            }
            let ps: Vec<(usize, usize)> = parts.iter().map(|p| (*p, lens[*p])).collect();
            b.concat(l + 1, &ps, ceil_log2(total));
            let bound = parts.iter().map(|p| bounds[*p]).max().unwrap_or(0);
            (total, 0, bound)
        }
        _ => return Err(lerr(l, "not a head layer")),
    })
}

/// A row-wise layer reads a dense `lanes × n` vector, `lanes` a power of two (no padding
/// rows).
fn check_rows(
    l: usize,
    lanes: usize,
    n: usize,
    len_in: usize,
    dense: bool,
) -> Result<(), ModelError> {
    if !lanes.is_power_of_two() || n == 0 || n > 1 << 12 || lanes.checked_mul(n) != Some(len_in) {
        return Err(lerr(
            l,
            "input is not a dense lanes x n matrix with lanes a power of two",
        ));
    }
    if !dense {
        return Err(lerr(l, "input has gaps"));
    }
    Ok(())
}
