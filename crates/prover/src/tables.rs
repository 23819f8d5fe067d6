//! The lookup tables: their rows (prover) and their multilinear extensions (verifier).

use crate::field::{ef, f_from_i64, EF, F};
use crate::mle::{eq_bits_eval, eval_f, identity_eval};
use crate::model::{LayerSpec, ModelCommitment, TableKind};
use p3_field::PrimeCharacteristicRing;

/// Table rows `(a_j, o_j)` of a table (prover side).
pub(crate) fn table_rows(comm: &ModelCommitment, kind: &TableKind, bits: usize) -> Vec<(i64, i64)> {
    let n = 1usize << bits;
    match kind {
        TableKind::Range(_) => (0..n as i64).map(|j| (j, 0)).collect(),
        TableKind::Relu(b) => {
            let h = 1i64 << (b - 1);
            (0..n as i64).map(|j| (j, (j - h).max(0))).collect()
        }
        TableKind::Rne(s) => (0..n as i64)
            .map(|j| {
                if j == 1 {
                    (1i64 << s, 0)
                } else {
                    (j >> 1, j & 1)
                }
            })
            .collect(),
        TableKind::Custom(l) => {
            let values = custom_values(comm, *l);
            (0..n)
                .map(|j| {
                    let k = j.min(values.len() - 1);
                    (k as i64, values[k])
                })
                .collect()
        }
    }
}

/// `t̃(ρ)` of a table (verifier side): closed forms for range and ReLU tables.
pub(crate) fn table_eval(
    comm: &ModelCommitment,
    kind: &TableKind,
    beta: EF,
    tag: EF,
    rho: &[EF],
) -> EF {
    let (a, o) = match kind {
        TableKind::Range(_) => (identity_eval(rho), EF::ZERO),
        TableKind::Relu(_) => (
            identity_eval(rho),
            match rho.split_first() {
                Some((top, rest)) => *top * identity_eval(rest),
                None => EF::ZERO,
            },
        ),
        TableKind::Rne(s) => {
            let s = *s as usize;
            let e1 = eq_bits_eval(1, rho);
            (
                identity_eval(&rho[..s]) + e1 * ef(F::from_u64(1u64 << s)),
                rho[s] - e1,
            )
        }
        TableKind::Custom(l) => {
            let values = custom_values(comm, *l);
            let n = 1usize << rho.len();
            let last = values.len() - 1;
            let idx: Vec<F> = (0..n).map(|j| f_from_i64(j.min(last) as i64)).collect();
            let val: Vec<F> = (0..n).map(|j| f_from_i64(values[j.min(last)])).collect();
            (eval_f(&idx, rho), eval_f(&val, rho))
        }
    };
    a + beta * o + beta * beta * tag
}

/// The values of layer `l`'s table: a Lookup's, or a Softmax's exp table extended by its
/// last entry (so that `j + 1` exists at the last grid point).
pub(crate) fn custom_values(comm: &ModelCommitment, l: usize) -> Vec<i64> {
    match &comm.layers[l] {
        LayerSpec::Lookup(t) => t.values.clone(),
        LayerSpec::Softmax { exp, .. } => {
            let mut v = exp.clone();
            v.push(*exp.last().unwrap_or(&0));
            v
        }
        _ => vec![0],
    }
}
