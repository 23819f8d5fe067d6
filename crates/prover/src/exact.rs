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
use crate::model::{Layer, LookupTable, Rounding, Window};
use std::collections::HashMap;
use verity_engine::exact::{softmax_exp_table, ExactGraph, ExactOp, ExactStep, ExactWindow};

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

pub use crate::layout::OutputSpec;

/// The prover's view of an exact-mode model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lowered {
    /// The layers (a chain; `Copy` layers bring back earlier vectors at branches).
    pub layers: Vec<Layer>,
    /// Input length (all graph input elements, row-major).
    pub input_len: usize,
    /// The graph's outputs, concatenated in this order in the proven output.
    pub outputs: Vec<OutputSpec>,
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
            ExactOp::Other(_) => Some(s.op_name.clone()),
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
    if graph.outputs.is_empty() {
        return Err(structure("the model has no output"));
    }
    let val = |s: usize| &graph.values[s];
    if val(*input).frac.is_none() {
        return Err(structure("the input must be a floating-point tensor"));
    }
    let konst = |s: usize| graph.consts.iter().find(|(c, _)| *c == s).map(|(_, v)| v);
    let input_len: usize = val(*input).shape.iter().product();
    // where each graph value lives: its vector and layout
    let mut at: HashMap<usize, (usize, Layout)> = HashMap::new();
    at.insert(*input, (0, Layout::Dense));
    let mut layers: Vec<Layer> = Vec::new();
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
        let ([x], [out]) = (dynamic.as_slice(), step.outputs.as_slice()) else {
            return Err(chain_error(step));
        };
        let (xv, layout) = *at.get(x).ok_or_else(|| chain_error(step))?;
        let out = *out;
        if step.op == ExactOp::Reshape {
            at.insert(out, (xv, layout));
            continue;
        }
        // bring the operand to the end of the chain
        if xv != layers.len() {
            layers.push(Layer::Copy { src: xv });
        }
        let len = || *vector_lens(input_len, &layers).last().unwrap_or(&input_len);
        let elems = |s: usize| val(s).shape.iter().product::<usize>();
        let mut new_layout = Layout::Dense;
        match &step.op {
            ExactOp::MatVec(m) => {
                let len = len();
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
            }
            ExactOp::Conv(c) => {
                let win = window(&c.win, layout);
                layers.push(Layer::Conv {
                    win,
                    cout: c.cout,
                    weights: c.w.iter().map(|x| i64::from(*x)).collect(),
                    bias: c.bias.clone(),
                });
                rescale(&mut layers, c.shift)?;
                let plane = c.win.oh * c.win.ow;
                new_layout = Layout::Rows {
                    plane,
                    stride: 1usize << ceil_log2(plane),
                };
            }
            ExactOp::MaxPool(p) => {
                let win = window(p, layout);
                layers.push(Layer::MaxPool {
                    win,
                    in_bits: VALUE_BITS,
                });
            }
            ExactOp::Add | ExactOp::Sub => {
                let (ci, cv) = const_operand(step, &konst).ok_or_else(|| chain_error(step))?;
                if layout != Layout::Dense || elems(out) != len() {
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
                if cv.iter().any(|x| *x != 0) || elems(out) != elems(*x) {
                    return Err(LowerError::Unsupported(vec![step.op_name.clone()]));
                }
                layers.push(Layer::Relu {
                    in_bits: VALUE_BITS,
                });
                new_layout = layout;
            }
            ExactOp::Rescale { shift } => {
                rescale(&mut layers, *shift)?;
                new_layout = layout;
            }
            ExactOp::DivConst { shift, divisor } => {
                let k = divisor.trailing_zeros() as i32;
                if *divisor <= 0 || divisor.count_ones() != 1 || k < *shift {
                    return Err(LowerError::Unsupported(vec![format!(
                        "{} (by {divisor})",
                        step.op_name
                    )]));
                }
                rescale(&mut layers, k - shift)?;
                new_layout = layout;
            }
            ExactOp::Softmax { axis, .. } | ExactOp::ArgMax { axis, .. }
                if layout != Layout::Dense || *axis + 1 != val(*x).shape.len() =>
            {
                return Err(structure(format!(
                    "node `{}` ({}): only the last axis of a dense tensor",
                    step.name, step.op_name
                )));
            }
            ExactOp::Softmax { fx, fo, .. } => {
                let n = *val(*x).shape.last().unwrap_or(&1);
                let (grid, lo, exp) = softmax_exp_table().map_err(|e| structure(e.to_string()))?;
                let ok = *fx >= grid && *fo > 0;
                if !ok {
                    return Err(structure(format!("node `{}`: softmax scales", step.name)));
                }
                layers.push(Layer::Softmax {
                    lanes: elems(*x) / n.max(1),
                    n,
                    fx: *fx as u32,
                    fo: *fo as u32,
                    grid: grid as u32,
                    lo,
                    exp,
                });
            }
            ExactOp::ArgMax { last, .. } => {
                let n = *val(*x).shape.last().unwrap_or(&1);
                layers.push(Layer::ArgMax {
                    lanes: elems(*x) / n.max(1),
                    n,
                    last: *last,
                    in_bits: VALUE_BITS,
                });
            }
            ExactOp::GatherConst { data } => {
                layers.push(Layer::Lookup(LookupTable {
                    in_min: 0,
                    values: data.clone(),
                }));
            }
            ExactOp::Reshape => {}
            ExactOp::Min | ExactOp::Other(_) => {
                return Err(LowerError::Unsupported(vec![step.op_name.clone()]))
            }
        }
        at.insert(out, (layers.len(), new_layout));
    }
    let mut parts = Vec::new();
    let mut outputs = Vec::new();
    for (name, slot) in &graph.outputs {
        let (v, layout) = *at
            .get(slot)
            .ok_or_else(|| structure(format!("output `{name}` is not computed by the chain")))?;
        if layout != Layout::Dense {
            return Err(structure("an output is a convolution's output"));
        }
        parts.push(v);
        outputs.push(OutputSpec {
            name: name.clone(),
            shape: val(*slot).shape.clone(),
            frac: val(*slot).frac,
        });
    }
    match parts.as_slice() {
        [v] if *v == layers.len() && *v > 0 => {}
        [v] => layers.push(Layer::Copy { src: *v }),
        _ => layers.push(Layer::Concat { parts }),
    }
    Ok(Lowered {
        layers,
        input_len,
        outputs,
    })
}

/// The length of every vector of the chain so far (vector 0 is the input).
fn vector_lens(input_len: usize, layers: &[Layer]) -> Vec<usize> {
    let mut lens = vec![input_len];
    for l in layers {
        let last = *lens.last().unwrap_or(&0);
        lens.push(match l {
            Layer::MatMul { rows, .. } => *rows,
            Layer::Conv { win, cout, .. } => cout << ceil_log2(win.out_plane()),
            Layer::MaxPool { win, .. } => win.c * win.out_plane(),
            Layer::Copy { src } => lens.get(*src).copied().unwrap_or(0),
            Layer::ArgMax { lanes, .. } => *lanes,
            Layer::Softmax { lanes, n, .. } => lanes * n,
            Layer::Concat { parts } => parts
                .iter()
                .map(|p| lens.get(*p).copied().unwrap_or(0))
                .sum(),
            _ => last,
        });
    }
    lens
}

/// The prover's window for an exact window over a vector laid out as `layout`.
fn window(w: &ExactWindow, layout: Layout) -> Window {
    Window {
        c: w.c,
        ih: w.ih,
        iw: w.iw,
        in_stride: match layout {
            Layout::Dense => w.ih * w.iw,
            Layout::Rows { stride, .. } => stride,
        },
        oh: w.oh,
        ow: w.ow,
        kh: w.kh,
        kw: w.kw,
        sh: w.sh,
        sw: w.sw,
        dh: w.dh,
        dw: w.dw,
        ph: w.ph,
        pw: w.pw,
    }
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
