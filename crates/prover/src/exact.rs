//! Lowering of an exact-mode graph ([`verity_engine::exact::ExactGraph`]) to the prover's
//! layer chain, and the list of what cannot be lowered yet.
//!
//! Covered (each with exact mode's semantics, bit for bit): MatMul/Gemm with a constant
//! matrix (row-vector input), Conv (one group, batch 1, channels first), the bias Add of a
//! Gemm (a constant operand), Relu (`Max` with a constant 0), MaxPool, rescales, and pure
//! reshapes (Reshape, Flatten, Squeeze, Unsqueeze). The graph must be a chain: every step
//! reads the previous step's output and constants. Every intermediate value must fit a
//! signed 32-bit integer ([`VALUE_BITS`]) and the input too: exact mode accepts wider
//! values (up to `2^63`), and a run that leaves this range has no proof (an error, never
//! a wrong proof).

use crate::field::ceil_log2;
use crate::model::{Layer, Rounding, Window};
use verity_engine::exact::{ExactGraph, ExactOp, ExactStep};

/// Width of every proven value (input, activations, outputs): signed 32-bit.
pub const VALUE_BITS: u32 = 32;

/// Why a graph cannot be proven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    /// Operators the proof does not cover, by ONNX name (sorted, unique).
    #[error("zk mode does not cover these operators yet: {}", .0.join(", "))]
    Unsupported(Vec<String>),
    /// Something else about the graph's structure.
    #[error("zk mode cannot prove this model: {0}")]
    Structure(String),
}

/// The prover's view of an exact-mode model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lowered {
    /// The chain of layers.
    pub layers: Vec<Layer>,
    /// Input length (all graph input elements, row-major).
    pub input_len: usize,
    /// The graph's output name, shape and fractional bits.
    pub output_name: String,
    pub output_shape: Vec<usize>,
    pub output_frac: Option<i32>,
}

/// How a vector lays out its tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Row-major, padded at the end.
    Dense,
    /// A convolution's output: channel `c`'s `plane` entries start at `c·stride`.
    Rows { plane: usize, stride: usize },
}

impl Layout {
    /// The vector index of the tensor's flat index `f`.
    fn index(&self, f: usize) -> usize {
        match self {
            Layout::Dense => f,
            Layout::Rows { plane, stride } => f / plane * stride + f % plane,
        }
    }
}

fn structure(s: impl Into<String>) -> LowerError {
    LowerError::Structure(s.into())
}

/// The operators of `graph` the proof cannot cover (empty when it can be lowered).
pub fn unsupported_ops(graph: &ExactGraph) -> Vec<String> {
    match lower(graph) {
        Err(LowerError::Unsupported(ops)) => ops,
        _ => Vec::new(),
    }
}

/// Lower `graph` to the prover's layers.
pub fn lower(graph: &ExactGraph) -> Result<Lowered, LowerError> {
    let mut ops: Vec<String> = graph
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            ExactOp::Other(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    ops.sort();
    ops.dedup();
    if !ops.is_empty() {
        return Err(LowerError::Unsupported(ops));
    }
    let [(_, input)] = graph.inputs.as_slice() else {
        return Err(structure("the model must have exactly one input"));
    };
    let [(out_name, out_slot)] = graph.outputs.as_slice() else {
        return Err(structure("the model must have exactly one output"));
    };
    let val = |s: usize| &graph.values[s];
    if val(*input).frac.is_none() {
        return Err(structure("the input must be a floating-point tensor"));
    }
    let konst = |s: usize| graph.consts.iter().find(|(c, _)| *c == s).map(|(_, v)| v);
    let input_len: usize = val(*input).shape.iter().product();
    let mut cur = *input;
    let mut len = input_len;
    let mut layout = Layout::Dense;
    let mut layers = Vec::new();
    let rescale = |layers: &mut Vec<Layer>, shift: i32| -> Result<(), LowerError> {
        if shift < 0 {
            return Err(structure("a product with a negative rescale"));
        }
        if shift > 0 {
            layers.push(Layer::Rescale {
                shift: shift as u32,
                rounding: Rounding::HalfEven,
                out_bits: VALUE_BITS,
            });
        }
        Ok(())
    };
    for step in &graph.steps {
        let dynamic: Vec<usize> = step
            .inputs
            .iter()
            .copied()
            .filter(|s| konst(*s).is_none())
            .collect();
        if dynamic != [cur] || step.outputs.len() != 1 {
            return Err(chain_error(step));
        }
        let out = step.outputs[0];
        let out_len: usize = val(out).shape.iter().product();
        match &step.op {
            ExactOp::MatVec(m) => {
                let mut w = vec![0i64; m.n * len];
                for k in 0..m.k {
                    let col = layout.index(k);
                    for n in 0..m.n {
                        w[n * len + col] = i64::from(m.w[k * m.n + n]);
                    }
                }
                layers.push(Layer::MatMul {
                    rows: m.n,
                    cols: len,
                    weights: w,
                    bias: vec![0; m.n],
                });
                rescale(&mut layers, m.shift)?;
                (len, layout) = (m.n, Layout::Dense);
            }
            ExactOp::Conv(c) => {
                let in_stride = match layout {
                    Layout::Dense => c.ih * c.iw,
                    Layout::Rows { stride, .. } => stride,
                };
                let win = Window {
                    c: c.cin,
                    ih: c.ih,
                    iw: c.iw,
                    in_stride,
                    oh: c.oh,
                    ow: c.ow,
                    kh: c.kh,
                    kw: c.kw,
                    sh: c.sh,
                    sw: c.sw,
                    dh: c.dh,
                    dw: c.dw,
                    ph: c.ph,
                    pw: c.pw,
                };
                layers.push(Layer::Conv {
                    win,
                    cout: c.cout,
                    weights: c.w.iter().map(|x| i64::from(*x)).collect(),
                    bias: c.bias.clone(),
                });
                rescale(&mut layers, c.shift)?;
                let stride = 1usize << ceil_log2(c.oh * c.ow);
                len = c.cout * stride;
                layout = Layout::Rows {
                    plane: c.oh * c.ow,
                    stride,
                };
            }
            ExactOp::MaxPool(p) => {
                let in_stride = match layout {
                    Layout::Dense => p.ih * p.iw,
                    Layout::Rows { stride, .. } => stride,
                };
                let win = Window {
                    c: p.c,
                    ih: p.ih,
                    iw: p.iw,
                    in_stride,
                    oh: p.oh,
                    ow: p.ow,
                    kh: p.kh,
                    kw: p.kw,
                    sh: p.sh,
                    sw: p.sw,
                    dh: p.dh,
                    dw: p.dw,
                    ph: p.ph,
                    pw: p.pw,
                };
                layers.push(Layer::MaxPool {
                    win,
                    in_bits: VALUE_BITS,
                });
                (len, layout) = (p.c * p.oh * p.ow, Layout::Dense);
            }
            ExactOp::Add | ExactOp::Sub => {
                let (ci, cv) = const_operand(step, &konst).ok_or_else(|| chain_error(step))?;
                if layout != Layout::Dense || out_len != len {
                    return Err(structure(format!(
                        "node `{}`: an addition that broadcasts its input",
                        step.name
                    )));
                }
                let cshape = &val(step.inputs[ci]).shape;
                let full = broadcast(cv, cshape, &val(out).shape)
                    .ok_or_else(|| structure(format!("node `{}`: bad broadcast", step.name)))?;
                let neg = step.op == ExactOp::Sub;
                if neg && ci == 0 {
                    return Err(structure(format!(
                        "node `{}`: constant minus input",
                        step.name
                    )));
                }
                layers.push(Layer::AddConst {
                    values: full.iter().map(|x| if neg { -x } else { *x }).collect(),
                    out_bits: VALUE_BITS,
                });
            }
            ExactOp::Max => {
                let (_, cv) = const_operand(step, &konst).ok_or_else(|| chain_error(step))?;
                let in_len: usize = val(cur).shape.iter().product();
                if cv.iter().any(|x| *x != 0) || out_len != in_len {
                    return Err(LowerError::Unsupported(vec![step.op_name.clone()]));
                }
                layers.push(Layer::Relu {
                    in_bits: VALUE_BITS,
                });
            }
            ExactOp::Rescale { shift } => rescale(&mut layers, *shift)?,
            ExactOp::Reshape => {}
            ExactOp::Min | ExactOp::Other(_) => {
                return Err(LowerError::Unsupported(vec![step.op_name.clone()]))
            }
        }
        cur = out;
    }
    if cur != *out_slot {
        return Err(structure("the output is not the end of the chain"));
    }
    if layout != Layout::Dense {
        return Err(structure("the output is a convolution's output"));
    }
    if layers.is_empty() {
        return Err(structure("the model computes nothing"));
    }
    Ok(Lowered {
        layers,
        input_len,
        output_name: out_name.clone(),
        output_shape: val(*out_slot).shape.clone(),
        output_frac: val(*out_slot).frac,
    })
}

fn chain_error(step: &ExactStep) -> LowerError {
    structure(format!(
        "node `{}` ({}) does not continue a chain of single-input steps",
        step.name, step.op_name
    ))
}

fn const_operand<'a>(
    step: &ExactStep,
    konst: &impl Fn(usize) -> Option<&'a Vec<i64>>,
) -> Option<(usize, &'a Vec<i64>)> {
    if step.inputs.len() != 2 {
        return None;
    }
    (0..2).find_map(|i| konst(step.inputs[i]).map(|v| (i, v)))
}

/// `v` (of `shape`) broadcast to `to` (ONNX multidirectional rules), row-major.
fn broadcast(v: &[i64], shape: &[usize], to: &[usize]) -> Option<Vec<i64>> {
    if shape.len() > to.len() {
        return None;
    }
    let pad = to.len() - shape.len();
    let dims: Vec<usize> = (0..to.len())
        .map(|i| if i < pad { 1 } else { shape[i - pad] })
        .collect();
    if dims.iter().zip(to).any(|(d, t)| *d != 1 && d != t) {
        return None;
    }
    let n: usize = to.iter().product();
    let mut out = Vec::with_capacity(n);
    for f in 0..n {
        let (mut rem, mut src, mut stride) = (f, 0usize, 1usize);
        for i in (0..to.len()).rev() {
            let c = rem % to[i];
            rem /= to[i];
            if dims[i] != 1 {
                src += c * stride;
            }
            stride *= dims[i];
        }
        out.push(*v.get(src)?);
    }
    Some(out)
}
