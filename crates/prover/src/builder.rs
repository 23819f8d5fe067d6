//! Collects the relations of a model's layers (lookups, wide range checks by limbs, max
//! gadgets, as trees of fan-in at most [`MAX_FAN_IN`]) while [`crate::plan::Plan::new`]
//! walks them.

use crate::model::MAX_TABLE_BITS;
use crate::plan::{Affine, AuxDef, LinCheck, Query, TableKind, ZeroCheck};

/// Most operands of one maximum's zero check (its sumcheck degree is one more); wider maxima
/// are proven as a tree of such maxima.
pub(crate) const MAX_FAN_IN: usize = 16;

/// Collects relations while the layers are walked.
pub(crate) struct Builder {
    pub nl: usize,
    pub tables: Vec<TableKind>,
    pub queries: Vec<Query>,
    pub lin_checks: Vec<LinCheck>,
    pub zero_checks: Vec<ZeroCheck>,
    pub aux: Vec<AuxDef>,
    pub aux_logs: Vec<usize>,
}

impl Builder {
    pub(crate) fn table(&mut self, k: TableKind) -> usize {
        if let Some(i) = self.tables.iter().position(|t| *t == k) {
            i
        } else {
            self.tables.push(k);
            self.tables.len() - 1
        }
    }

    pub(crate) fn add_aux(&mut self, def: AuxDef, log: usize) -> usize {
        self.aux.push(def);
        self.aux_logs.push(log);
        self.nl + self.aux.len()
    }

    pub(crate) fn lookup(&mut self, table: TableKind, log_len: usize, a: Affine, o: Affine) {
        let table = self.table(table);
        self.queries.push(Query {
            table,
            log_len,
            a,
            o,
        });
    }

    /// `a ∈ [0, 2^bits)` entrywise: one range lookup, or 16-bit limbs (committed) with a
    /// linear check that they recompose `a`.
    pub(crate) fn range(&mut self, a: Affine, bits: u32, log: usize) {
        if bits <= MAX_TABLE_BITS {
            self.lookup(TableKind::Range(bits), log, a, Affine::of(&[], 0));
            return;
        }
        let mut recompose = a.clone();
        let mut shift = 0;
        while shift < bits {
            let b = (bits - shift).min(MAX_TABLE_BITS);
            let limb = self.add_aux(
                AuxDef::Limb {
                    a: a.clone(),
                    shift,
                    bits: b,
                },
                log,
            );
            self.lookup(
                TableKind::Range(b),
                log,
                Affine::of(&[(limb, 1)], 0),
                Affine::of(&[], 0),
            );
            recompose.terms.push((limb, -(1i64 << shift)));
            shift += b;
        }
        self.lin_checks.push(LinCheck {
            log_len: log,
            a: recompose,
        });
    }

    /// `out = max(operands)` entrywise, all operands signed `bits`-bit: `out - op ≥ 0`
    /// for each operand, and `Π (out - op) = 0` (a zero check of degree `k + 1`). More than
    /// [`MAX_FAN_IN`] operands are a tree: balanced groups of at most `MAX_FAN_IN`, each
    /// group's maximum a committed auxiliary vector, and the maximum of those.
    pub(crate) fn max_of(&mut self, out: usize, operands: &[Affine], bits: u32, log: usize) {
        if operands.len() > MAX_FAN_IN {
            let groups = operands.len().div_ceil(MAX_FAN_IN);
            let size = operands.len().div_ceil(groups);
            let mut maxima = Vec::with_capacity(groups);
            for group in operands.chunks(size) {
                let m = self.add_aux(AuxDef::Max(group.to_vec()), log);
                self.max_of(m, group, bits, log);
                maxima.push(Affine::of(&[(m, 1)], 0));
            }
            return self.max_of(out, &maxima, bits, log);
        }
        let mut factors = Vec::new();
        for op in operands {
            let mut d = Affine::of(&[(out, 1)], -op.constant);
            d.terms.extend(op.terms.iter().map(|(v, c)| (*v, -c)));
            self.range(d.clone(), bits, log);
            factors.push(d);
        }
        self.zero_checks.push(ZeroCheck {
            log_len: log,
            terms: vec![(1, factors)],
        });
    }
}
