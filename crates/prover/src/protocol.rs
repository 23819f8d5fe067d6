//! `prove` and `verify` for a whole model run.
//!
//! Transcript order (both sides):
//! 1. statement: protocol version, the model commitment (output layout and compiled-model
//!    id included), the input, the output;
//! 2. the root of the witness commitment (intermediate vectors and table multiplicities);
//! 3. per MatMul `l`: `r ← EF^{log rows}`; `z̃(r)` (sent unless `z` is the public output);
//!    `b̃(r)`; sumcheck of `Σ_c W̃(r,c)·ã(c) = z̃(r) - b̃(r)`; `W̃(r,s)`; `ã(s)` (sent unless
//!    `a` is the public input);
//! 4. lookups: `α, β`; fractional-sum GKR over the leaves (queries: `1/(α - f)`, tables:
//!    `-m/(α - t)`, with `f = a + β·o + β²·tag`); the evaluations of the involved committed
//!    vectors and multiplicities at the leaf point;
//! 5. the witness claims, batched into one evaluation, and its opening;
//! 6. the weight claims, batched into one evaluation, and its opening.

use crate::claims::{self, Claim};
use crate::error::{ProveError, VerifyError};
use crate::field::{ef, ef_from_i64, f_from_i64, EF, F};
use crate::logup;
use crate::mle::{eval_f, eval_i64};
use crate::model::{LayerSpec, ModelCommitment, Plan, ProverModel, TableKind};
use crate::pcs::{self, PcsCommitment};
use crate::plan::eval_affine_ints;
use crate::relations::{self, ProverCtx, VerifierCtx};
use crate::tables::{table_eval, table_rows};
use crate::transcript::{Challenger, ProverTranscript, VerifierTranscript};
use p3_field::{Field, PrimeCharacteristicRing};

const LABEL: &[u8] = b"verity-prover/model-run";
/// The proof format version (first byte of every proof).
pub const PROOF_VERSION: u8 = 1;

/// A proof that `output` is the exact result of the committed model on `input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    bytes: Vec<u8>,
}

impl Proof {
    /// The proof's bytes (version byte, then the prover's messages).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// A proof from bytes (checked by [`verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
        }
    }

    /// The proof's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether empty (never, for a real proof).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

fn absorb_statement<C: Challenger>(
    tr: &mut C,
    comm: &ModelCommitment,
    input: &[i64],
    output: &[i64],
) {
    tr.absorb_public(b"version", &[PROOF_VERSION]);
    tr.absorb_public(b"model", &comm.to_bytes());
    let enc = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    tr.absorb_public(b"input", &enc(input));
    tr.absorb_public(b"output", &enc(output));
}

fn to_f(v: &[i64]) -> Vec<F> {
    v.iter().map(|x| f_from_i64(*x)).collect()
}

/// Run the model on `input` and prove the result.
pub fn prove(model: &ProverModel, input: &[i64]) -> Result<(Vec<i64>, Proof), ProveError> {
    prove_with(model, input, None)
}

/// A hook for soundness tests: change the witness (intermediate and auxiliary vectors)
/// after the honest run and prove anyway, leaving out lookups that have no table row.
/// The hook is called twice: on the layer vectors (`false`; the auxiliary vectors are then
/// recomputed from them, as a cheating prover would) and on all vectors (`true`).
pub(crate) type Tamper<'a> = Option<&'a dyn Fn(&mut [Vec<i64>], bool)>;

pub(crate) fn prove_with(
    model: &ProverModel,
    input: &[i64],
    tamper: Tamper<'_>,
) -> Result<(Vec<i64>, Proof), ProveError> {
    let plan = &model.plan;
    let comm = &model.commitment;
    let nl = plan.num_layers();
    let mut vals = model.run_layers(input)?;
    let output = vals[nl][..plan.lens[nl]].to_vec();
    if let Some(t) = tamper {
        t(&mut vals, false);
    }
    model.fill_aux(&mut vals);
    if let Some(t) = tamper {
        t(&mut vals, true);
    }

    let mut tr = ProverTranscript::new(LABEL);
    absorb_statement(&mut tr, comm, input, &output);

    // multiplicities
    let mut mults: Vec<Vec<u64>> = plan.table_bits.iter().map(|b| vec![0u64; 1 << b]).collect();
    let mut query_ints: Vec<(Vec<i64>, Vec<i64>)> = Vec::with_capacity(plan.queries.len());
    for q in &plan.queries {
        let n = 1usize << q.log_len;
        let a: Vec<i64> = (0..n).map(|i| eval_affine_ints(&q.a, &vals, i)).collect();
        let o: Vec<i64> = (0..n).map(|i| eval_affine_ints(&q.o, &vals, i)).collect();
        for (x, y) in a.iter().zip(&o) {
            // run() has checked every range, so the row exists
            let row = match &plan.tables[q.table] {
                TableKind::Rne(s) if *x == 1i64 << s => Some(1),
                TableKind::Rne(_) => usize::try_from(2 * x + y).ok(),
                _ => usize::try_from(*x).ok(),
            };
            match row.and_then(|i| mults[q.table].get_mut(i)) {
                Some(m) => *m += 1,
                None if tamper.is_some() => {}
                None => {
                    return Err(ProveError::OutOfRange {
                        layer: q.table,
                        index: 0,
                        value: *x,
                        what: "lookup row (internal)",
                    })
                }
            }
        }
        query_ints.push((a, o));
    }

    // witness commitment
    let mut wit_vectors: Vec<Vec<F>> = Vec::with_capacity(plan.witness.count());
    for (v, vec) in vals.iter().enumerate().skip(1) {
        if v != nl {
            wit_vectors.push(to_f(vec));
        }
    }
    for m in &mults {
        wit_vectors.push(m.iter().map(|x| F::from_u64(*x)).collect());
    }
    let witness = (plan.witness.count() > 0)
        .then(|| pcs::commit(plan.witness.pack(&wit_vectors), comm.params));
    if let Some(w) = &witness {
        tr.send_hash(&w.commitment().root);
    }
    let weights = model.weights.as_ref();
    let mut ctx = ProverCtx {
        tr,
        plan,
        vals: &vals,
        wclaims: Vec::new(),
        mclaims: Vec::new(),
    };
    relations::prove_all(&mut ctx, weights);
    let ProverCtx {
        mut tr,
        mut wclaims,
        mclaims,
        ..
    } = ctx;

    // lookups
    if !plan.queries.is_empty() {
        let ab = tr.challenge_ef_vec(2);
        let (alpha, beta) = (ab[0], ab[1]);
        let size = 1usize << plan.lookup.num_vars;
        let mut p = vec![EF::ZERO; size];
        let mut q = vec![EF::ONE; size];
        let nq = plan.queries.len();
        for (k, (qu, (a, o))) in plan.queries.iter().zip(&query_ints).enumerate() {
            let off = plan.lookup.offsets[k];
            let tag = ef(F::from_u64(qu.table as u64 + 1));
            for i in 0..a.len() {
                p[off + i] = EF::ONE;
                q[off + i] =
                    alpha - (ef_from_i64(a[i]) + beta * ef_from_i64(o[i]) + beta * beta * tag);
            }
        }
        for (j, kind) in plan.tables.iter().enumerate() {
            let off = plan.lookup.offsets[nq + j];
            let tag = ef(F::from_u64(j as u64 + 1));
            for (i, (a, o)) in table_rows(comm, kind, plan.table_bits[j])
                .into_iter()
                .enumerate()
            {
                p[off + i] = -ef(F::from_u64(mults[j][i]));
                q[off + i] = alpha - (ef_from_i64(a) + beta * ef_from_i64(o) + beta * beta * tag);
            }
        }
        if q.iter().any(|x| x.is_zero()) {
            return Err(ProveError::Unlucky);
        }
        let leaf = logup::prove(&mut tr, p, q);
        let nv = plan.lookup.num_vars;
        for v in &plan.lookup_vectors {
            if let Some(seg) = plan.wit_vec[*v] {
                let pt = leaf.point[nv - plan.logs[*v]..].to_vec();
                let val = eval_i64(&vals[*v], 0, &pt);
                tr.send_ef(val);
                wclaims.push(Claim {
                    vector: seg,
                    point: pt,
                    value: val,
                });
            }
        }
        for (j, seg) in plan.wit_mult.iter().enumerate() {
            let pt = leaf.point[nv - plan.table_bits[j]..].to_vec();
            let val = eval_f(&wit_vectors[*seg], &pt);
            tr.send_ef(val);
            wclaims.push(Claim {
                vector: *seg,
                point: pt,
                value: val,
            });
        }
    }

    if let Some(w) = &witness {
        let (rho, _) = claims::prove(&mut tr, &plan.witness, w.values(), &wclaims);
        pcs::open(w, &rho, &mut tr);
    }
    if let Some(wdata) = weights {
        let (rho, _) = claims::prove(&mut tr, &plan.weights, wdata.values(), &mclaims);
        pcs::open(wdata, &rho, &mut tr);
    }
    let mut bytes = vec![PROOF_VERSION];
    bytes.extend(tr.finish());
    Ok((output, Proof { bytes }))
}

fn check_public(
    comm: &ModelCommitment,
    plan: &Plan,
    input: &[i64],
    output: &[i64],
) -> Result<(), VerifyError> {
    let st = |s: &str| VerifyError::Statement(s.to_string());
    if input.len() != plan.lens[0] {
        return Err(st("input length does not match the model"));
    }
    let h = 1i64 << (comm.input_bits - 1);
    if input.iter().any(|x| !(-h..h).contains(x)) {
        return Err(st("input value out of range"));
    }
    let nl = plan.num_layers();
    if output.len() != plan.lens[nl] {
        return Err(st("output length does not match the model"));
    }
    let ok = match &comm.layers[nl - 1] {
        LayerSpec::MatMul { out_bound, .. } | LayerSpec::Conv { out_bound, .. } => {
            output.iter().all(|y| y.unsigned_abs() <= *out_bound)
        }
        LayerSpec::Rescale { out_bits, .. }
        | LayerSpec::Relu { in_bits: out_bits }
        | LayerSpec::AddConst { out_bits, .. }
        | LayerSpec::MaxPool {
            in_bits: out_bits, ..
        } => {
            let h = 1i64 << (out_bits - 1);
            output.iter().all(|y| (-h..h).contains(y))
        }
        LayerSpec::Lookup(t) => {
            let lo = t.values.iter().min().copied().unwrap_or(0);
            let hi = t.values.iter().max().copied().unwrap_or(0);
            output.iter().all(|y| (lo..=hi).contains(y))
        }
        LayerSpec::Copy { .. }
        | LayerSpec::ArgMax { .. }
        | LayerSpec::Softmax { .. }
        | LayerSpec::Concat { .. } => output.iter().all(|y| y.unsigned_abs() <= plan.bounds[nl]),
    };
    if !ok {
        return Err(st("output value out of range"));
    }
    Ok(())
}

/// Verify that `output` is the exact result of the model committed to by `comm` on `input`.
/// Runs under a panic guard: a panic while checking is [`VerifyError::Panicked`].
pub fn verify(
    comm: &ModelCommitment,
    input: &[i64],
    output: &[i64],
    proof: &Proof,
) -> Result<(), VerifyError> {
    crate::settle::guard(VerifyError::Panicked, || {
        verify_unguarded(comm, input, output, proof)
    })
}

fn verify_unguarded(
    comm: &ModelCommitment,
    input: &[i64],
    output: &[i64],
    proof: &Proof,
) -> Result<(), VerifyError> {
    let plan = Plan::new(comm).map_err(|e| VerifyError::Statement(e.to_string()))?;
    check_public(comm, &plan, input, output)?;
    let nl = plan.num_layers();
    let (version, body) = proof
        .bytes
        .split_first()
        .ok_or(VerifyError::Malformed("empty proof"))?;
    if *version != PROOF_VERSION {
        return Err(VerifyError::Version(*version));
    }
    let mut tr = VerifierTranscript::new(LABEL, body);
    absorb_statement(&mut tr, comm, input, output);

    // a public vector's evaluation
    let public_eval = |v: usize, pt: &[EF]| -> EF {
        if v == 0 {
            eval_i64(input, plan.pads[0], pt)
        } else {
            eval_i64(output, plan.pads[nl], pt)
        }
    };

    let wit_root = if plan.witness.count() > 0 {
        Some(tr.recv_hash()?)
    } else {
        None
    };
    let mut ctx = VerifierCtx {
        tr,
        plan: &plan,
        input,
        output,
        wclaims: Vec::new(),
        mclaims: Vec::new(),
    };
    relations::verify_all(&mut ctx, &comm.layers)?;
    let VerifierCtx {
        mut tr,
        mut wclaims,
        mclaims,
        ..
    } = ctx;

    if !plan.queries.is_empty() {
        let ab = tr.challenge_ef_vec(2);
        let (alpha, beta) = (ab[0], ab[1]);
        let nv = plan.lookup.num_vars;
        let leaf = logup::verify(&mut tr, nv)?;
        if !leaf.root_p.is_zero() {
            return Err(VerifyError::Lookup(
                "lookups are not balanced by the tables",
            ));
        }
        if leaf.root_q.is_zero() {
            return Err(VerifyError::Lookup("a denominator is zero"));
        }
        let mut vec_eval = vec![EF::ZERO; plan.lens.len()];
        for v in &plan.lookup_vectors {
            let pt = &leaf.point[nv - plan.logs[*v]..];
            vec_eval[*v] = match plan.wit_vec[*v] {
                Some(seg) => {
                    let x = tr.recv_ef()?;
                    wclaims.push(Claim {
                        vector: seg,
                        point: pt.to_vec(),
                        value: x,
                    });
                    x
                }
                None => public_eval(*v, pt),
            };
        }
        let mut mult_eval = Vec::with_capacity(plan.tables.len());
        for (j, seg) in plan.wit_mult.iter().enumerate() {
            let pt = &leaf.point[nv - plan.table_bits[j]..];
            let x = tr.recv_ef()?;
            wclaims.push(Claim {
                vector: *seg,
                point: pt.to_vec(),
                value: x,
            });
            mult_eval.push(x);
        }
        let affine = |a: &crate::model::Affine| -> EF {
            a.terms
                .iter()
                .map(|(v, c)| ef_from_i64(*c) * vec_eval[*v])
                .sum::<EF>()
                + ef_from_i64(a.constant)
        };
        let mut exp_p = EF::ZERO;
        let mut exp_q = EF::ZERO;
        let mut covered = EF::ZERO;
        let nq = plan.queries.len();
        for (k, qu) in plan.queries.iter().enumerate() {
            let sel = plan.lookup.selector(k, &leaf.point);
            let tag = ef(F::from_u64(qu.table as u64 + 1));
            let f = affine(&qu.a) + beta * affine(&qu.o) + beta * beta * tag;
            exp_p += sel;
            exp_q += sel * (alpha - f);
            covered += sel;
        }
        for (j, kind) in plan.tables.iter().enumerate() {
            let sel = plan.lookup.selector(nq + j, &leaf.point);
            let tag = ef(F::from_u64(j as u64 + 1));
            let t = table_eval(
                comm,
                kind,
                beta,
                tag,
                plan.lookup.local(nq + j, &leaf.point),
            );
            exp_p -= sel * mult_eval[j];
            exp_q += sel * (alpha - t);
            covered += sel;
        }
        exp_q += EF::ONE - covered;
        if exp_p != leaf.p || exp_q != leaf.q {
            return Err(VerifyError::Lookup("leaf claim does not match the data"));
        }
    }

    if let Some(root) = wit_root {
        let (rho, value) = claims::verify(&mut tr, &plan.witness, &wclaims)?;
        let c = PcsCommitment {
            root,
            len: plan.witness.len,
            params: comm.params,
        };
        pcs::verify(&c, &rho, value, &mut tr)?;
    }
    if plan.weights.count() > 0 {
        let (rho, value) = claims::verify(&mut tr, &plan.weights, &mclaims)?;
        let c = PcsCommitment {
            root: comm.weights_root,
            len: plan.weights.len,
            params: comm.params,
        };
        pcs::verify(&c, &rho, value, &mut tr)?;
    }
    tr.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layer, Rounding};

    fn model() -> ProverModel {
        let layers = vec![
            Layer::MatMul {
                rows: 6,
                cols: 5,
                weights: (0..30).map(|i| (i * 7 % 11) - 5).collect(),
                bias: vec![3, -2, 0, 1, 5, -7],
            },
            Layer::Rescale {
                shift: 2,
                rounding: Rounding::HalfEven,
                out_bits: 8,
            },
            Layer::Relu { in_bits: 8 },
            Layer::MatMul {
                rows: 2,
                cols: 6,
                weights: vec![1, -2, 3, -1, 2, 1, 2, 2, -1, 1, 0, 3],
                bias: vec![0, 1],
            },
        ];
        ProverModel::new(5, 6, layers).unwrap()
    }

    /// A prover that lies about one intermediate value is caught.
    #[test]
    fn tampered_witness_is_rejected() {
        let m = model();
        let x = [3i64, -7, 12, 0, 31];
        let (y, p) = prove(&m, &x).unwrap();
        verify(m.commitment(), &x, &y, &p).unwrap();
        let nl = m.plan.num_layers();
        let k_id = nl + 1; // the half-even rescale's auxiliary vector
        type Case = (&'static str, Box<dyn Fn(&mut [Vec<i64>], bool)>);
        let cases: Vec<Case> = vec![
            (
                "matmul output",
                Box::new(|v, aux| {
                    if aux {
                        v[1][2] += 1
                    }
                }),
            ),
            (
                "matmul output pad",
                Box::new(|v, aux| {
                    if aux {
                        v[1][7] += 1
                    }
                }),
            ),
            (
                "rescale output",
                Box::new(|v, aux| {
                    if aux {
                        v[2][0] += 1
                    }
                }),
            ),
            (
                "rescale output and relu",
                Box::new(|v, aux| {
                    if !aux {
                        v[2][0] += 1;
                        v[3][0] = v[2][0].max(0);
                    }
                }),
            ),
            (
                "relu output",
                Box::new(|v, aux| {
                    if !aux {
                        v[3][1] += 1
                    }
                }),
            ),
            (
                "relu output pad",
                Box::new(|v, aux| {
                    if !aux {
                        v[3][6] = 1
                    }
                }),
            ),
            (
                "rescale parity witness",
                Box::new(move |v, aux| {
                    if aux {
                        v[k_id][0] += 1
                    }
                }),
            ),
        ];
        for (name, t) in cases {
            let (y2, p2) = prove_with(&m, &x, Some(t.as_ref())).unwrap();
            assert_eq!(y2, y);
            assert!(
                verify(m.commitment(), &x, &y, &p2).is_err(),
                "{name} accepted"
            );
        }
        // an untampered run through the hook still verifies
        let (_, p3) = prove_with(&m, &x, Some(&|_: &mut [Vec<i64>], _| {})).unwrap();
        verify(m.commitment(), &x, &y, &p3).unwrap();
    }
}
