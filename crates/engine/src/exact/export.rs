//! A public, read-only view of a compiled exact plan, for the prover
//! (`verity-prover` lowers it to its own circuit IR).
//!
//! Operators the view describes structurally are the ones a proof can
//! cover today; every other step is [`ExactOp::Other`] with its ONNX
//! operator name, so that callers can refuse it by name.

// Geometry fields are named as the ONNX attributes they hold.
#![allow(missing_docs)]

use super::conv::Geo;
use super::ir::{BinOp, Data, Kind, Plan, Ty};
use super::run::quantize_input;
use super::run::ExactModel;
use crate::EngineError;
use crate::{validate_input, Tensors};
use std::sync::Arc;
use tract_onnx::prelude::DatumType;

/// One value of the graph (a plan slot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactValue {
    pub shape: Vec<usize>,
    /// Fractional bits of a fixed-point value; `None` for integers/booleans.
    pub frac: Option<i32>,
}

/// A matrix product `out[n] = round_shift(Σ_k x[k]·w[k·n_len + n], shift)`
/// of a dynamic row vector `x` (all leading dimensions 1) and a constant
/// `k × n` matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactMatVec {
    pub k: usize,
    pub n: usize,
    /// Row-major `k × n`.
    pub w: Vec<i32>,
    pub shift: i32,
}

/// A sliding window over a channels-first input, batch 1: output `(y, x)`, tap
/// `(i, j)` reads input row `y·sh + i·dh - ph` and column `x·sw + j·dw - pw`
/// (outside the input: padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactWindow {
    pub c: usize,
    pub ih: usize,
    pub iw: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub ph: usize,
    pub pw: usize,
}

impl ExactWindow {
    fn of(g: &Geo) -> Self {
        Self {
            c: g.c,
            ih: g.ih,
            iw: g.iw,
            oh: g.oh,
            ow: g.ow,
            kh: g.kh,
            kw: g.kw,
            sh: g.sh,
            sw: g.sw,
            dh: g.dh,
            dw: g.dw,
            ph: g.ph,
            pw: g.pw,
        }
    }
}

/// A 2-D convolution, one group:
/// `out[o, y, x] = round_shift(bias[o] + Σ w[o, c, i, j]·in[c, tap (i, j) of (y, x)], shift)`
/// (taps in the padding read 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactConv {
    /// The window over the input (`win.c` input channels).
    pub win: ExactWindow,
    pub cout: usize,
    /// `[cout, c·kh·kw]`.
    pub w: Vec<i32>,
    /// At the accumulator's scale.
    pub bias: Vec<i64>,
    pub shift: i32,
}

/// What a step computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExactOp {
    /// `round_shift(x, shift)`.
    Rescale {
        shift: i32,
    },
    /// `a + b` / `a - b` (same shapes or a constant operand broadcast).
    Add,
    Sub,
    /// `max(a, b)` / `min(a, b)`.
    Max,
    Min,
    MatVec(ExactMatVec),
    Conv(ExactConv),
    /// Max pooling over the window's taps inside the input.
    MaxPool(ExactWindow),
    /// The same elements in the same order under another shape
    /// (Reshape, Flatten, Squeeze, Unsqueeze, Identity, a Cast to the same type).
    Reshape,
    /// Softmax over `axis` of `Q(fx)` values, output `Q(fo)` (spec §4.9).
    Softmax {
        axis: usize,
        fx: i32,
        fo: i32,
    },
    /// The index of the maximum over `axis` (the first one, or the last with `last`).
    ArgMax {
        axis: usize,
        last: bool,
    },
    /// `data[index]` for a constant 1-D `data` and a dynamic index tensor.
    GatherConst {
        data: Vec<i64>,
    },
    /// `div_round(x · 2^shift, divisor)` by a constant scalar divisor.
    DivConst {
        shift: i32,
        divisor: i64,
    },
    /// Anything else, by ONNX operator name.
    Other(String),
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactStep {
    /// The ONNX node name.
    pub name: String,
    /// The operator (for messages): the ONNX operator the step comes from when it can be
    /// told (`domain:OpType` outside the default domain), else exact mode's step name.
    pub op_name: String,
    pub op: ExactOp,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

/// The compiled plan for the model's default input shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactGraph {
    pub values: Vec<ExactValue>,
    /// Constant values (integers as stored).
    pub consts: Vec<(usize, Vec<i64>)>,
    pub inputs: Vec<(String, usize)>,
    pub outputs: Vec<(String, usize)>,
    pub steps: Vec<ExactStep>,
}

fn is_reshape(name: &str) -> bool {
    matches!(
        name,
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity" | "AxisOp" | "RmAxis"
    )
}

fn step_op(plan: &Plan, step: &super::ir::Step) -> ExactOp {
    let other = || ExactOp::Other(step.op.clone());
    match &step.kind {
        Kind::Rescale { shift } => ExactOp::Rescale { shift: *shift },
        Kind::Bin {
            op: BinOp::Div,
            shift,
        } => match plan
            .consts
            .iter()
            .find(|(c, _)| Some(c) == step.inputs.get(1))
        {
            Some((_, x)) => match x.as_i64() {
                Ok([d]) => ExactOp::DivConst {
                    shift: *shift,
                    divisor: *d,
                },
                _ => other(),
            },
            None => other(),
        },
        Kind::Softmax {
            axis,
            fo,
            log: false,
        } => match plan.slots[step.inputs[0]].ty {
            Ty::Fixed(fx) => ExactOp::Softmax {
                axis: *axis,
                fx,
                fo: *fo,
            },
            _ => other(),
        },
        Kind::Reduce {
            axes,
            red: super::ir::Red::ArgMax { last },
        } if axes.len() == 1 => ExactOp::ArgMax {
            axis: axes[0],
            last: *last,
        },
        Kind::Cast { from, to } if from == to => ExactOp::Reshape,
        // integer to a signed type of at least 32 bits: exact mode's range check cannot fail
        // for values the proof allows (signed 32-bit)
        Kind::Cast {
            from: Ty::Int(_),
            to: Ty::Int(DatumType::I64 | DatumType::I32),
        } => ExactOp::Reshape,
        Kind::Tract(op) if op.name() == "Gather" => {
            let data = plan
                .consts
                .iter()
                .find(|(c, _)| Some(c) == step.inputs.first());
            match data {
                Some((c, x)) if plan.slots[*c].shape.len() == 1 && step.inputs.len() == 2 => {
                    match (
                        &x.data,
                        op.downcast_ref::<tract_onnx::tract_core::ops::array::Gather>(),
                    ) {
                        (Data::I64(v), Some(g)) if g.axis == 0 => {
                            ExactOp::GatherConst { data: v.clone() }
                        }
                        _ => other(),
                    }
                }
                _ => other(),
            }
        }
        Kind::Bin { op, .. } => match op {
            BinOp::Add => ExactOp::Add,
            BinOp::Sub => ExactOp::Sub,
            BinOp::Max => ExactOp::Max,
            BinOp::Min => ExactOp::Min,
            _ => other(),
        },
        Kind::MatMul(p) => {
            let row_vec = p.a_const.is_none()
                && p.batch == 1
                && p.m == 1
                && p.a_perm.iter().enumerate().all(|(i, x)| i == *x);
            match (&p.b_const, row_vec) {
                (Some(b), true) if p.c_perm.iter().enumerate().all(|(i, x)| i == *x) => {
                    ExactOp::MatVec(ExactMatVec {
                        k: p.k,
                        n: p.n,
                        w: b.n.clone(),
                        shift: p.shift,
                    })
                }
                _ => other(),
            }
        }
        Kind::Conv(p) => {
            let g = &p.geo;
            if p.group != 1 || g.n != 1 || g.channels_last {
                return other();
            }
            ExactOp::Conv(ExactConv {
                win: ExactWindow::of(g),
                cout: p.cout,
                w: p.w.clone(),
                bias: p.bias.clone(),
                shift: p.shift,
            })
        }
        Kind::Pool(p) => {
            let g = &p.geo;
            if !p.max || g.n != 1 || g.channels_last {
                return other();
            }
            ExactOp::MaxPool(ExactWindow::of(g))
        }
        Kind::Tract(op) if is_reshape(&op.name()) => {
            // a pure reshape keeps the element count and order
            let ok = step.inputs.len() == 1
                && step.outputs.len() == 1
                && plan.slots[step.inputs[0]].shape.iter().product::<usize>()
                    == plan.slots[step.outputs[0]].shape.iter().product::<usize>();
            if ok {
                ExactOp::Reshape
            } else {
                other()
            }
        }
        _ => other(),
    }
}

/// Exact mode's Softmax exponential table (spec §4.4): grid bits `T`, the first grid
/// index `lo`, and the entries `e^(j / 2^T)` at scale `2^30` for `j = lo..=0` (below `lo`
/// the first entry is used).
pub fn softmax_exp_table() -> Result<(i32, i64, Vec<i64>), EngineError> {
    let t = super::funcs::table(super::funcs::Func::ExpNeg, super::funcs::SOFTMAX_EXP_BITS)
        .map_err(EngineError::Execution)?;
    Ok((super::funcs::TABLE_GRID_BITS, t.lo, t.vals.clone()))
}

impl ExactModel {
    /// The integer inputs exact mode runs on (after quantization), in the
    /// model's input order.
    pub fn quantize_inputs(&self, input: &Tensors) -> Result<Vec<Vec<i64>>, EngineError> {
        validate_input(&self.info().inputs, input)?;
        let f = self.params().frac_bits as i32;
        let mut xs = vec![];
        for spec in &self.info().inputs {
            let x = quantize_input(&spec.name, &input.0[&spec.name], f)?;
            xs.push(match x.data {
                Data::I64(v) => v,
                Data::Bool(v) => v.into_iter().map(i64::from).collect(),
            });
        }
        Ok(xs)
    }

    /// The compiled graph for the model's default input shapes (symbolic
    /// dimensions taken as 1).
    pub fn graph(&self) -> Result<ExactGraph, EngineError> {
        let plan: Arc<Plan> = self.default_plan()?;
        let values = plan
            .slots
            .iter()
            .map(|s| ExactValue {
                shape: s.shape.clone(),
                frac: match s.ty {
                    Ty::Fixed(f) => Some(f),
                    _ => None,
                },
            })
            .collect();
        let consts = plan
            .consts
            .iter()
            .map(|(s, x)| {
                let v = match &x.data {
                    super::ir::Data::I64(v) => v.clone(),
                    super::ir::Data::Bool(v) => v.iter().map(|b| i64::from(*b)).collect(),
                };
                (*s, v)
            })
            .collect();
        // ONNX node names to operator types (steps are named after their node, with a
        // `.suffix` for expansions)
        let onnx_ops: std::collections::HashMap<&str, String> = self
            .proto
            .graph
            .iter()
            .flat_map(|g| g.node.iter())
            .map(|n| {
                let op = match n.domain.as_str() {
                    "" | "ai.onnx" => n.op_type.clone(),
                    d => format!("{d}:{}", n.op_type),
                };
                (n.name.as_str(), op)
            })
            .collect();
        let onnx_op = |name: &str| {
            onnx_ops
                .get(name)
                .or_else(|| onnx_ops.get(name.split('.').next().unwrap_or(name)))
                .cloned()
        };
        let steps = plan
            .steps
            .iter()
            .map(|s| ExactStep {
                name: s.name.clone(),
                op_name: onnx_op(&s.name).unwrap_or_else(|| s.op.clone()),
                op: step_op(&plan, s),
                inputs: s.inputs.clone(),
                outputs: s.outputs.clone(),
            })
            .collect();
        Ok(ExactGraph {
            values,
            consts,
            inputs: plan.inputs.clone(),
            outputs: plan.outputs.clone(),
            steps,
        })
    }
}
