//! Exact `Scan` (what tract makes of ONNX LSTM, GRU, RNN and Scan): the
//! body is compiled to its own exact plan and run once per iteration
//! (spec §4.13).

use super::compile::{CVal, Compiler, CR};
use super::ir::{Data, Kind, Plan, Ty, XT};
use super::linalg::RunOptions;
use super::ops::R;
use crate::EngineError;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::scan::{InputMapping, Scan};

/// How a Scan input feeds the body.
pub(crate) enum In {
    Full,
    State,
    /// Slices of `chunk` along `axis` (from the end when `reverse`).
    Scan {
        axis: usize,
        chunk: usize,
        reverse: bool,
    },
}

/// Where a body output goes.
pub(crate) struct Out {
    pub state: bool,
    /// Outer slot and axis of the concatenated per-iteration values.
    pub scan: Option<(usize, usize, usize, bool)>,
    pub last: Option<usize>,
}

pub(crate) struct ScanPlan {
    pub body: Plan,
    pub inputs: Vec<In>,
    pub outputs: Vec<Out>,
    pub iters: usize,
    /// Number of outer outputs.
    pub n_out: usize,
}

fn strides(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// `x[.., start..start + len, ..]` along `axis`.
fn slice(x: &XT, axis: usize, start: usize, len: usize) -> XT {
    let (outer, n, inner) = strides(&x.shape, axis);
    let mut shape = x.shape.clone();
    shape[axis] = len;
    macro_rules! go {
        ($v:expr, $mk:path) => {{
            let mut out = Vec::with_capacity(outer * len * inner);
            for o in 0..outer {
                out.extend_from_slice(&$v[(o * n + start) * inner..(o * n + start + len) * inner]);
            }
            $mk(shape, out)
        }};
    }
    match &x.data {
        Data::I64(v) => go!(v, XT::i64),
        Data::Bool(v) => go!(v, XT::bool),
    }
}

/// Concatenation along `axis`.
fn concat(parts: &[XT], axis: usize) -> R<XT> {
    let first = parts.first().ok_or("empty scan output")?;
    let mut shape = first.shape.clone();
    shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
    let (outer, _, inner) = strides(&first.shape, axis);
    let mut out = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for p in parts {
            let n = p.shape[axis];
            out.extend_from_slice(&p.as_i64()?[o * n * inner..(o + 1) * n * inner]);
        }
    }
    Ok(XT::i64(shape, out))
}

impl ScanPlan {
    pub(crate) fn run(&self, x: &[&XT], opt: RunOptions) -> R<Vec<XT>> {
        let mut states: Vec<XT> = vec![];
        for (m, v) in self.inputs.iter().zip(x) {
            if let In::State = m {
                states.push((*v).clone());
            }
        }
        let mut scans: Vec<Vec<XT>> = vec![vec![]; self.outputs.len()];
        let mut lasts: Vec<Option<XT>> = vec![None; self.outputs.len()];
        for t in 0..self.iters {
            let mut si = 0;
            let mut body_in = vec![];
            for (m, v) in self.inputs.iter().zip(x) {
                body_in.push(match m {
                    In::Full => (*v).clone(),
                    In::State => {
                        si += 1;
                        states[si - 1].clone()
                    }
                    In::Scan {
                        axis,
                        chunk,
                        reverse,
                    } => {
                        let i = if *reverse { self.iters - 1 - t } else { t };
                        slice(v, *axis, i * chunk, *chunk)
                    }
                });
            }
            let outs = super::run::execute(&self.body, body_in, opt).map_err(|e| match e {
                EngineError::Execution(m) => format!("iteration {t}: {m}"),
                e => format!("iteration {t}: {e}"),
            })?;
            let mut si = 0;
            for (j, (m, v)) in self.outputs.iter().zip(outs).enumerate() {
                if m.state {
                    states[si] = v.clone();
                    si += 1;
                }
                if m.scan.is_some() {
                    scans[j].push(v.clone());
                }
                lasts[j] = Some(v);
            }
        }
        let mut res: Vec<Option<XT>> = vec![None; self.n_out];
        for (j, m) in self.outputs.iter().enumerate() {
            if let Some((slot, axis, _, reverse)) = m.scan {
                let mut parts = std::mem::take(&mut scans[j]);
                if reverse {
                    parts.reverse();
                }
                res[slot] = Some(concat(&parts, axis)?);
            }
            if let (Some(slot), Some(v)) = (m.last, lasts[j].take()) {
                res[slot] = Some(v);
            }
        }
        res.into_iter()
            .map(|r| r.ok_or_else(|| "a scan output was not produced".to_string()))
            .collect()
    }
}

impl Compiler<'_> {
    pub(crate) fn scan(&mut self, node: &TypedNode, op: &Scan) -> CR<()> {
        if op.skip != 0 {
            return Err(self.unsupported(node, "Scan with skipped iterations"));
        }
        // The body, compiled on its own.
        let mut sub = Compiler::new(self.p, self.proto, false);
        let body = &op.body;
        let order = body
            .eval_order()
            .map_err(|e| EngineError::Execution(e.to_string()))?;
        for id in order {
            sub.lower(body.node(id))?;
        }
        let in_names: Vec<String> = body
            .input_outlets()
            .map_err(|e| EngineError::Execution(e.to_string()))?
            .iter()
            .map(|o| body.node(o.node).name.clone())
            .collect();
        let mut ins = vec![];
        for name in &in_names {
            let s = sub
                .plan
                .inputs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| *s);
            ins.push((
                name.clone(),
                s.ok_or_else(|| self.unsupported(node, "body input"))?,
            ));
        }
        sub.plan.inputs = ins;
        for o in body
            .output_outlets()
            .map_err(|e| EngineError::Execution(e.to_string()))?
        {
            let s = match sub.vals.get(o).cloned() {
                Some(CVal::Dyn(s)) => s,
                Some(CVal::Const(t)) => {
                    let ty = sub.ty_of(t.datum_type());
                    let xt = sub.quantize_const(body.node(o.node), &t, ty)?;
                    sub.const_slot(xt, ty)
                }
                None => return Err(self.unsupported(node, "body output")),
            };
            sub.plan.outputs.push((String::new(), s));
        }
        let mut plan = sub.plan;
        plan.finish();
        // Outer inputs, as the body's types.
        let mut inputs = vec![];
        let mut mapping = vec![];
        let mut iters = None;
        for (i, (m, (_, bs))) in op.input_mapping.iter().zip(&plan.inputs).enumerate() {
            let ty = plan.slots[*bs].ty;
            let s = self.as_ty(node, node.inputs[i], ty)?;
            mapping.push(match m {
                InputMapping::Full => In::Full,
                InputMapping::State => In::State,
                InputMapping::Scan(info) => {
                    let chunk = info.chunk.unsigned_abs();
                    let n = self.shape(s).get(info.axis).copied().unwrap_or(0);
                    if chunk == 0 || n % chunk != 0 {
                        return Err(self.unsupported(node, "scan chunk"));
                    }
                    iters = Some(n / chunk);
                    In::Scan {
                        axis: info.axis,
                        chunk,
                        reverse: info.chunk < 0,
                    }
                }
            });
            inputs.push(s);
        }
        let Some(iters) = iters else {
            return Err(self.unsupported(node, "Scan without a scanned input"));
        };
        let mut outputs = vec![];
        for m in &op.output_mapping {
            outputs.push(Out {
                state: m.state,
                scan: m.scan.map(|(slot, info)| {
                    (slot, info.axis, info.chunk.unsigned_abs(), info.chunk < 0)
                }),
                last: m.last_value_slot,
            });
        }
        let mut outs = vec![];
        for (i, o) in node.outputs.iter().enumerate() {
            let ty = if super::compile::is_float(o.fact.datum_type) {
                Ty::Fixed(self.f())
            } else {
                self.ty_of(o.fact.datum_type)
            };
            outs.push(self.slot(Self::out_shape(node, i)?, ty));
        }
        let n_out = outs.len();
        let sp = ScanPlan {
            body: plan,
            inputs: mapping,
            outputs,
            iters,
            n_out,
        };
        self.step(node, Kind::Scan(Box::new(sp)), inputs, outs.clone());
        for (i, s) in outs.into_iter().enumerate() {
            self.set(node, i, s);
        }
        Ok(())
    }
}

/// tract's fused LSTM cell epilogue (spec §4.13): `preact [rows, 4h]` in
/// gate order i, o, f, c and `c_prev [rows, h]` give
/// `C = Mul(σ(f), c_prev) + Mul(σ(i), tanh(c))` and `H = Mul(σ(o), tanh(C))`.
pub(crate) fn lstm_epilogue(h: usize, f: i32, pre: &XT, cp: &XT) -> R<Vec<XT>> {
    use super::funcs::{table, Func};
    let sig = table(Func::Sigmoid, f)?;
    let tanh = table(Func::Tanh, f)?;
    let (p, c) = (pre.as_i64()?, cp.as_i64()?);
    let rows = c.len() / h.max(1);
    if p.len() != rows * 4 * h {
        return Err(format!(
            "LstmEpilogue: preact has {} values for {rows} rows of 4*{h}",
            p.len()
        ));
    }
    let ovf = || super::ops::overflow("LSTM cell");
    let look = |t: &super::funcs::Table, x: i64| t.lookup(x, f).ok_or_else(ovf);
    let mul = |a: i64, b: i64| -> R<i64> {
        super::ops::fit128(super::arith::round_shift(a as i128 * b as i128, f).ok_or_else(ovf)?)
    };
    let (mut hs, mut cs) = (vec![0i64; rows * h], vec![0i64; rows * h]);
    for r in 0..rows {
        let row = &p[r * 4 * h..(r + 1) * 4 * h];
        for j in 0..h {
            let (i, o) = (look(&sig, row[j])?, look(&sig, row[h + j])?);
            let (fg, cc) = (look(&sig, row[2 * h + j])?, look(&tanh, row[3 * h + j])?);
            let ct = mul(fg, c[r * h + j])?
                .checked_add(mul(i, cc)?)
                .ok_or_else(ovf)?;
            cs[r * h + j] = ct;
            hs[r * h + j] = mul(o, look(&tanh, ct)?)?;
        }
    }
    Ok(vec![
        XT::i64(cp.shape.clone(), hs),
        XT::i64(cp.shape.clone(), cs),
    ])
}

impl Compiler<'_> {
    pub(crate) fn lstm_epilogue(&mut self, node: &TypedNode, hidden: usize) -> CR<()> {
        let f = self.f();
        let pre = self.fixed(node, node.inputs[0])?;
        let cp = self.fixed(node, node.inputs[1])?;
        let shape = self.shape(cp);
        let h = self.slot(shape.clone(), Ty::Fixed(f));
        let c = self.slot(shape, Ty::Fixed(f));
        self.step(node, Kind::Lstm { hidden, f }, vec![pre, cp], vec![h, c]);
        self.set(node, 0, h);
        self.set(node, 1, c);
        Ok(())
    }
}
