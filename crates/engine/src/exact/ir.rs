//! The exact graph: typed value slots, steps, and the executor loop.

use super::conv::{ConvPlan, PoolPlan};
use super::funcs::Table;
use super::linalg::MatMulPlan;
use super::tree::TreePlan;
use std::sync::Arc;
use tract_onnx::prelude::{DatumType, TypedOp};

/// The static type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// Fixed point: `i64` values, real value `v * 2^-frac`.
    Fixed(i32),
    /// An integer tensor (stored as `i64`) of this ONNX element type.
    Int(DatumType),
    /// Booleans.
    Bool,
}

/// A run-time tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Data {
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct XT {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl XT {
    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> XT {
        XT {
            shape,
            data: Data::I64(v),
        }
    }
    pub fn bool(shape: Vec<usize>, v: Vec<bool>) -> XT {
        XT {
            shape,
            data: Data::Bool(v),
        }
    }
    pub fn as_i64(&self) -> Result<&[i64], String> {
        match &self.data {
            Data::I64(v) => Ok(v),
            _ => Err("internal: expected an integer tensor".into()),
        }
    }
    pub fn as_bool(&self) -> Result<&[bool], String> {
        match &self.data {
            Data::Bool(v) => Ok(v),
            _ => Err("internal: expected a boolean tensor".into()),
        }
    }
}

/// Element-wise binary operators on fixed-point values (spec §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    /// `a + b` (equal scales).
    Add,
    /// `a - b` (equal scales).
    Sub,
    /// `max(a, b)`.
    Max,
    /// `min(a, b)`.
    Min,
    /// `round(a * b / 2^shift)`.
    Mul,
    /// `round(a * 2^shift / b)`.
    Div,
}

/// Comparisons (equal scales or integers), giving booleans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Checked integer arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

/// Boolean logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BoolOp {
    And,
    Or,
    Xor,
}

/// Element-wise unary operators (spec §4.3); `fx` input, `fo` output bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UnOp {
    Neg,
    Abs,
    Sign {
        fo: i32,
    },
    Floor {
        fx: i32,
    },
    Ceil {
        fx: i32,
    },
    /// Round half to even to an integer.
    Round {
        fx: i32,
    },
    /// Round half away from zero to an integer.
    RoundAway {
        fx: i32,
    },
    Sqrt {
        fx: i32,
        fo: i32,
    },
    Rsqrt {
        fx: i32,
        fo: i32,
    },
    Recip {
        fx: i32,
        fo: i32,
    },
    /// `x >= 0 ? x : round(x * a / 2^fa)`.
    LeakyRelu {
        a: i64,
        fa: i32,
    },
    /// `round(x * clamp(x + 3, 0, 6) / 6)` at one scale `f`.
    HardSwish {
        f: i32,
    },
    /// Natural logarithm.
    Ln {
        fx: i32,
        fo: i32,
    },
    /// Integer negation / absolute value (checked).
    IntNeg,
    IntAbs,
}

/// Reductions (spec §4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Red {
    Sum,
    Max,
    Min,
    Prod { shift: i32 },
    MeanOfSquares { shift: i32 },
    ArgMax { last: bool },
    ArgMin { last: bool },
}

pub(crate) enum Kind {
    /// `round(x / 2^shift)` (or `x * 2^-shift`), checked to fit `i32`.
    Rescale {
        shift: i32,
    },
    Bin {
        op: BinOp,
        shift: i32,
    },
    Cmp {
        op: CmpOp,
    },
    IntBin {
        op: IntOp,
    },
    BoolBin {
        op: BoolOp,
    },
    Not,
    /// `cond ? a : b` with broadcasting.
    Where,
    Unary {
        op: UnOp,
    },
    /// A function table applied to `Fixed(fx)` inputs.
    Table {
        table: Arc<Table>,
        fx: i32,
    },
    /// Conversions between value kinds.
    Cast {
        from: Ty,
        to: Ty,
    },
    MatMul(Box<MatMulPlan>),
    Conv(Box<ConvPlan>),
    Pool(Box<PoolPlan>),
    Reduce {
        axes: Vec<usize>,
        red: Red,
    },
    /// Softmax (with `log`: LogSoftmax) over `axis` of `Fixed(fx)` values,
    /// output `Fixed(fo)`.
    Softmax {
        axis: usize,
        fo: i32,
        log: bool,
    },
    /// A data-movement or integer-only tract operator, evaluated by tract on
    /// the integer representations.
    Tract(Box<dyn TypedOp>),
    Tree(Box<TreePlan>),
    Deconv(Box<super::conv::DeconvPlan>),
    Resize(Box<super::resize::ResizePlan>),
    /// tract's fused LSTM cell epilogue.
    Lstm {
        hidden: usize,
        f: i32,
    },
    /// A loop over a compiled body.
    Scan(Box<super::scan::ScanPlan>),
}

pub(crate) struct Step {
    /// The tract node name (the ONNX node name, or derived from it).
    pub name: String,
    /// The operator, for error messages.
    pub op: String,
    pub kind: Kind,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub shape: Vec<usize>,
    pub ty: Ty,
}

/// A compiled plan for fixed input shapes.
pub(crate) struct Plan {
    pub slots: Vec<Slot>,
    /// Constant slots and their values.
    pub consts: Vec<(usize, XT)>,
    /// Graph inputs: name and slot.
    pub inputs: Vec<(String, usize)>,
    /// Graph outputs: name and slot.
    pub outputs: Vec<(String, usize)>,
    pub steps: Vec<Step>,
    /// Per slot: index of the last step reading it (`usize::MAX` for
    /// outputs and constants, never freed).
    pub last_use: Vec<usize>,
}

impl Plan {
    pub fn finish(&mut self) {
        let mut last = vec![0usize; self.slots.len()];
        for (i, s) in self.steps.iter().enumerate() {
            for &x in &s.inputs {
                last[x] = i;
            }
        }
        for (_, s) in &self.outputs {
            last[*s] = usize::MAX;
        }
        for (s, _) in &self.consts {
            last[*s] = usize::MAX;
        }
        self.last_use = last;
    }
}
