//! The non-lookup relations of a model run, each proven on its own and reduced to
//! evaluation claims on committed vectors (batched and opened at the end):
//!
//! - matrix products `Z = W·X + b ⊗ valid` (one degree-2 sumcheck over the inner index);
//! - gathers `g = src[map]` (wiring: `g̃(r) = Σ_j src(j)·M_r(j)`, `M_r(j) = Σ_{map[i]=j} eq(r, i)`,
//!   one degree-2 sumcheck; the verifier builds `M_r` itself);
//! - linear checks `Σ c_v·v + c = 0` (at one random point);
//! - zero checks `Π_i A_i = 0` (degree `k + 1` sumcheck of `eq(r, x)·Π A_i(x)` against 0);
//! - public constant additions `o = a + c` (at one random point).

use crate::claims::Claim;
use crate::error::VerifyError;
use crate::field::{ef_from_i64, EF};
use crate::mle::{eq_eval, eq_table, eval_ef, eval_f, eval_i64};
use crate::model::LayerSpec;
use crate::pcs::PcsProverData;
use crate::plan::{Affine, AuxDef, MatInfo, Plan, NO_SRC};
use crate::sumcheck;
use crate::transcript::{Challenger, ProverTranscript, VerifierTranscript};
use p3_field::PrimeCharacteristicRing;

/// Prover state shared by the relations.
pub(crate) struct ProverCtx<'a> {
    pub tr: ProverTranscript,
    pub plan: &'a Plan,
    pub vals: &'a [Vec<i64>],
    pub wclaims: Vec<Claim>,
    pub mclaims: Vec<Claim>,
}

/// Verifier state shared by the relations.
pub(crate) struct VerifierCtx<'a, 'p> {
    pub tr: VerifierTranscript<'p>,
    pub plan: &'a Plan,
    pub input: &'a [i64],
    pub output: &'a [i64],
    pub wclaims: Vec<Claim>,
    pub mclaims: Vec<Claim>,
}

impl ProverCtx<'_> {
    /// `ṽ(pt)`, sent and claimed when `v` is committed.
    pub fn open(&mut self, v: usize, pt: &[EF]) {
        let val = eval_i64(&self.vals[v], 0, pt);
        if let Some(seg) = self.plan.wit_vec[v] {
            self.tr.send_ef(val);
            self.wclaims.push(Claim {
                vector: seg,
                point: pt.to_vec(),
                value: val,
            });
        }
    }
}

impl VerifierCtx<'_, '_> {
    /// `ṽ(pt)`: received and claimed when `v` is committed, computed when public.
    pub fn open(&mut self, v: usize, pt: &[EF]) -> Result<EF, VerifyError> {
        match self.plan.wit_vec[v] {
            Some(seg) => {
                let x = self.tr.recv_ef()?;
                self.wclaims.push(Claim {
                    vector: seg,
                    point: pt.to_vec(),
                    value: x,
                });
                Ok(x)
            }
            None if v == 0 => Ok(eval_i64(self.input, self.plan.pads[0], pt)),
            None => Ok(eval_i64(
                self.output,
                self.plan.pads[self.plan.num_layers()],
                pt,
            )),
        }
    }
}

fn valid_eval(m: &MatInfo, r_p: &[EF]) -> EF {
    eq_table(r_p)[..m.p_valid].iter().copied().sum()
}

fn affine_eval(a: &Affine, at: impl Fn(usize) -> EF) -> EF {
    a.terms
        .iter()
        .map(|(v, c)| ef_from_i64(*c) * at(*v))
        .sum::<EF>()
        + ef_from_i64(a.constant)
}

/// `Σ c·Π affine` at one point.
fn poly_eval(terms: &[(i64, Vec<Affine>)], at: impl Fn(usize) -> EF + Copy) -> EF {
    terms
        .iter()
        .map(|(c, fs)| ef_from_i64(*c) * fs.iter().map(|f| affine_eval(f, at)).product::<EF>())
        .sum()
}

/// `M_r` over the source's domain.
fn wiring(map: &[u32], r: &[EF], src_len: usize) -> Vec<EF> {
    let eq = eq_table(r);
    let mut m = vec![EF::ZERO; src_len];
    for (i, j) in map.iter().enumerate() {
        if *j != NO_SRC {
            m[*j as usize] += eq[i];
        }
    }
    m
}

fn zero_vectors(terms: &[(i64, Vec<Affine>)]) -> Vec<usize> {
    let mut vs: Vec<usize> = terms
        .iter()
        .flat_map(|(_, fs)| fs.iter().flat_map(|f| f.terms.iter().map(|(v, _)| *v)))
        .collect();
    vs.sort_unstable();
    vs.dedup();
    vs
}

/// Every relation, prover side.
pub(crate) fn prove_all(ctx: &mut ProverCtx<'_>, weights: Option<&PcsProverData>) {
    let plan = ctx.plan;
    for m in plan.mats.iter().flatten() {
        let wdata = weights.expect("a model with products has weights");
        let r = ctx.tr.challenge_ef_vec(m.log_rows + m.log_p);
        let (r_o, r_p) = r.split_at(m.log_rows);
        ctx.open(m.z, &r);
        let wv = wdata.values();
        let b_off = plan.weights.offsets[m.b_seg];
        let b_val = eval_f(&wv[b_off..b_off + (1 << m.log_rows)], r_o);
        ctx.tr.send_ef(b_val);
        ctx.mclaims.push(Claim {
            vector: m.b_seg,
            point: r_o.to_vec(),
            value: b_val,
        });
        let cols = 1usize << m.log_cols;
        let w_off = plan.weights.offsets[m.w_seg];
        let mut w_r = vec![EF::ZERO; cols];
        for (row, e) in eq_table(r_o).iter().enumerate() {
            let base = w_off + row * cols;
            for (acc, w) in w_r.iter_mut().zip(&wv[base..base + cols]) {
                *acc += *e * *w;
            }
        }
        let eq_p = eq_table(r_p);
        let x = &ctx.vals[m.x];
        let x_r: Vec<EF> = (0..cols)
            .map(|k| {
                let row = &x[k << m.log_p..(k + 1) << m.log_p];
                row.iter()
                    .zip(&eq_p)
                    .filter(|(v, _)| **v != 0)
                    .map(|(v, e)| ef_from_i64(*v) * *e)
                    .sum()
            })
            .collect();
        let (s, [w_s, _]) = sumcheck::prove_product2(&mut ctx.tr, w_r, x_r);
        ctx.tr.send_ef(w_s);
        ctx.mclaims.push(Claim {
            vector: m.w_seg,
            point: [r_o, s.as_slice()].concat(),
            value: w_s,
        });
        ctx.open(m.x, &[s.as_slice(), r_p].concat());
    }
    for (j, def) in plan.aux.iter().enumerate() {
        let AuxDef::Gather { src, map } = def else {
            continue;
        };
        let g = plan.nl + 1 + j;
        let r = ctx.tr.challenge_ef_vec(plan.logs[g]);
        ctx.open(g, &r);
        let m = wiring(map, &r, 1 << plan.logs[*src]);
        let sv: Vec<EF> = ctx.vals[*src].iter().map(|x| ef_from_i64(*x)).collect();
        let (s, _) = sumcheck::prove_product2(&mut ctx.tr, m, sv);
        ctx.open(*src, &s);
    }
    for lc in &plan.lin_checks {
        let r = ctx.tr.challenge_ef_vec(lc.log_len);
        for (v, _) in &lc.a.terms {
            ctx.open(*v, &r);
        }
    }
    for zc in &plan.zero_checks {
        let r = ctx.tr.challenge_ef_vec(zc.log_len);
        let vs = zero_vectors(&zc.terms);
        let mut polys = vec![eq_table(&r)];
        polys.extend(
            vs.iter()
                .map(|v| ctx.vals[*v].iter().map(|x| ef_from_i64(*x)).collect()),
        );
        let idx = |v: usize| 1 + vs.iter().position(|x| *x == v).unwrap_or(0);
        let s = sumcheck::prove(&mut ctx.tr, &mut polys, zc.degree(), |p| {
            poly_eval(&zc.terms, |v| p[idx(v)]) * p[0]
        });
        for v in &vs {
            ctx.open(*v, &s);
        }
    }
    for l in &plan.adds {
        let r = ctx.tr.challenge_ef_vec(plan.logs[*l]);
        ctx.open(*l, &r);
        ctx.open(l + 1, &r);
    }
}

/// Every relation, verifier side.
pub(crate) fn verify_all(
    ctx: &mut VerifierCtx<'_, '_>,
    specs: &[LayerSpec],
) -> Result<(), VerifyError> {
    let plan = ctx.plan;
    for m in plan.mats.iter().flatten() {
        let r = ctx.tr.challenge_ef_vec(m.log_rows + m.log_p);
        let (r_o, r_p) = r.split_at(m.log_rows);
        let z = ctx.open(m.z, &r)?;
        let b_val = ctx.tr.recv_ef()?;
        ctx.mclaims.push(Claim {
            vector: m.b_seg,
            point: r_o.to_vec(),
            value: b_val,
        });
        let claim = z - b_val * valid_eval(m, r_p);
        let (s, fin) = sumcheck::verify(&mut ctx.tr, claim, m.log_cols, 2)?;
        let w_s = ctx.tr.recv_ef()?;
        ctx.mclaims.push(Claim {
            vector: m.w_seg,
            point: [r_o, s.as_slice()].concat(),
            value: w_s,
        });
        let x_s = ctx.open(m.x, &[s.as_slice(), r_p].concat())?;
        if fin != w_s * x_s {
            return Err(VerifyError::Sumcheck("matrix product does not reduce"));
        }
    }
    for (j, def) in plan.aux.iter().enumerate() {
        let AuxDef::Gather { src, map } = def else {
            continue;
        };
        let g = plan.nl + 1 + j;
        let r = ctx.tr.challenge_ef_vec(plan.logs[g]);
        let g_r = ctx.open(g, &r)?;
        let (s, fin) = sumcheck::verify(&mut ctx.tr, g_r, plan.logs[*src], 2)?;
        let src_s = ctx.open(*src, &s)?;
        let m = wiring(map, &r, 1 << plan.logs[*src]);
        if fin != eval_ef(&m, &s) * src_s {
            return Err(VerifyError::Sumcheck("gather does not reduce"));
        }
    }
    for lc in &plan.lin_checks {
        let r = ctx.tr.challenge_ef_vec(lc.log_len);
        let mut at = Vec::with_capacity(lc.a.terms.len());
        for (v, _) in &lc.a.terms {
            at.push((*v, ctx.open(*v, &r)?));
        }
        let get = |v: usize| at.iter().find(|(x, _)| *x == v).map_or(EF::ZERO, |p| p.1);
        if affine_eval(&lc.a, get) != EF::ZERO {
            return Err(VerifyError::Claim(
                "a limb decomposition does not recompose",
            ));
        }
    }
    for zc in &plan.zero_checks {
        let r = ctx.tr.challenge_ef_vec(zc.log_len);
        let vs = zero_vectors(&zc.terms);
        let (s, fin) = sumcheck::verify(&mut ctx.tr, EF::ZERO, zc.log_len, zc.degree())?;
        let mut at = Vec::with_capacity(vs.len());
        for v in &vs {
            at.push((*v, ctx.open(*v, &s)?));
        }
        let get = |v: usize| at.iter().find(|(x, _)| *x == v).map_or(EF::ZERO, |p| p.1);
        if fin != eq_eval(&r, &s) * poly_eval(&zc.terms, get) {
            return Err(VerifyError::Sumcheck("a product relation does not hold"));
        }
    }
    for l in &plan.adds {
        let r = ctx.tr.challenge_ef_vec(plan.logs[*l]);
        let a = ctx.open(*l, &r)?;
        let o = ctx.open(l + 1, &r)?;
        let LayerSpec::AddConst { values, .. } = &specs[*l] else {
            return Err(VerifyError::Statement("internal: not an addition".into()));
        };
        if o != a + eval_i64(values, 0, &r) {
            return Err(VerifyError::Claim("a constant addition does not hold"));
        }
    }
    Ok(())
}
