//! Lowering of tract's typed graph (one expansion per ONNX node, not
//! decluttered) to the exact graph (spec §3): walks the nodes in evaluation
//! order, folds constant subgraphs, and lowers each node.

use super::arith::{quantize, weight_frac};
use super::funcs::{self, Func};
use super::ir::{BinOp, BoolOp, CmpOp, IntOp, Kind, Plan, Slot, Step, Ty, UnOp, XT};
use super::ExactParams;
use crate::EngineError;
use std::collections::HashMap;
use std::sync::Arc;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops;

/// A value during compilation.
#[derive(Clone)]
pub(crate) enum CVal {
    Const(Arc<Tensor>),
    Dyn(usize),
}

pub(crate) struct Compiler<'a> {
    pub p: &'a ExactParams,
    pub proto: &'a ModelProto,
    pub vals: HashMap<OutletId, CVal>,
    pub plan: Plan,
    /// Unsupported operators met (in collect mode compilation goes on).
    pub unsupported: Vec<EngineError>,
    pub collect: bool,
}

pub(crate) type CR<T> = Result<T, EngineError>;

pub(crate) fn is_float(dt: DatumType) -> bool {
    dt.is_float()
}

impl<'a> Compiler<'a> {
    pub fn new(p: &'a ExactParams, proto: &'a ModelProto, collect: bool) -> Self {
        Compiler {
            p,
            proto,
            vals: HashMap::new(),
            plan: Plan {
                slots: vec![],
                consts: vec![],
                inputs: vec![],
                outputs: vec![],
                steps: vec![],
                last_use: vec![],
            },
            unsupported: vec![],
            collect,
        }
    }

    /// Activation fractional bits.
    pub fn f(&self) -> i32 {
        self.p.frac_bits as i32
    }

    /// The ONNX operator behind a tract node (tract names expansions
    /// `<onnx name>` or `<onnx name>.<suffix>`).
    pub fn onnx_op(&self, name: &str) -> Option<String> {
        let g = self.proto.graph.as_ref()?;
        let mut best: Option<&tract_onnx::pb::NodeProto> = None;
        for n in &g.node {
            if !n.name.is_empty()
                && (name == n.name || name.starts_with(&format!("{}.", n.name)))
                && best.is_none_or(|b| b.name.len() < n.name.len())
            {
                best = Some(n);
            }
        }
        best.map(|n| {
            let d = crate::model::domain_name(&n.domain);
            format!("{d}:{}", n.op_type)
        })
    }

    pub fn unsupported(&self, node: &TypedNode, why: &str) -> EngineError {
        let op = self
            .onnx_op(&node.name)
            .unwrap_or_else(|| format!("ai.onnx:{}", node.op.name()));
        EngineError::UnsupportedOp {
            op,
            reason: format!(
                "exact mode: node `{}` (tract op {}): {why}",
                node.name,
                node.op.name()
            ),
        }
    }

    pub fn slot(&mut self, shape: Vec<usize>, ty: Ty) -> usize {
        self.plan.slots.push(Slot { shape, ty });
        self.plan.slots.len() - 1
    }

    pub fn ty(&self, s: usize) -> Ty {
        self.plan.slots[s].ty
    }

    pub fn shape(&self, s: usize) -> Vec<usize> {
        self.plan.slots[s].shape.clone()
    }

    pub fn step(&mut self, node: &TypedNode, kind: Kind, inputs: Vec<usize>, outputs: Vec<usize>) {
        self.plan.steps.push(Step {
            name: node.name.clone(),
            op: node.op.name().to_string(),
            kind,
            inputs,
            outputs,
        });
    }

    /// A step with one new output slot.
    pub fn emit(
        &mut self,
        node: &TypedNode,
        kind: Kind,
        inputs: Vec<usize>,
        shape: Vec<usize>,
        ty: Ty,
    ) -> usize {
        let o = self.slot(shape, ty);
        self.step(node, kind, inputs, vec![o]);
        o
    }

    pub fn const_slot(&mut self, xt: XT, ty: Ty) -> usize {
        let s = self.slot(xt.shape.clone(), ty);
        self.plan.consts.push((s, xt));
        s
    }

    /// The exact type of a tract fact.
    pub fn ty_of(&self, dt: DatumType) -> Ty {
        if is_float(dt) {
            Ty::Fixed(self.f())
        } else if dt == DatumType::Bool {
            Ty::Bool
        } else if dt == DatumType::TDim {
            Ty::Int(DatumType::I64)
        } else {
            Ty::Int(dt)
        }
    }

    /// A constant tensor's values as `f64` (floats, integers, booleans).
    pub fn f64s(t: &Tensor) -> CR<Vec<f64>> {
        let c = t
            .cast_to::<f64>()
            .map_err(|e| EngineError::InvalidModel(format!("constant: {e}")))?;
        let v = c
            .try_as_plain_ram()
            .and_then(|p| p.as_slice::<f64>().map(|s| s.to_vec()))
            .map_err(|e| EngineError::InvalidModel(format!("constant: {e}")))?;
        Ok(v)
    }

    fn i64s(t: &Tensor) -> CR<Vec<i64>> {
        let c = t
            .cast_to::<i64>()
            .map_err(|e| EngineError::InvalidModel(format!("constant: {e}")))?;
        c.try_as_plain_ram()
            .and_then(|p| p.as_slice::<i64>().map(|s| s.to_vec()))
            .map_err(|e| EngineError::InvalidModel(format!("constant: {e}")))
    }

    /// A constant as an exact tensor of type `ty` (float constants are
    /// quantized with round half to even; out of range is an error).
    pub fn quantize_const(&self, node: &TypedNode, t: &Tensor, ty: Ty) -> CR<XT> {
        let shape = t.shape().to_vec();
        let bad = |why: &str| {
            EngineError::Execution(format!("exact: node `{}`: constant input {why}", node.name))
        };
        Ok(match ty {
            Ty::Fixed(f) => {
                let v = Self::f64s(t)?
                    .iter()
                    .map(|x| {
                        quantize(*x, f).ok_or_else(|| bad(&format!("{x} overflows Q.{f} (int64)")))
                    })
                    .collect::<CR<Vec<_>>>()?;
                XT::i64(shape, v)
            }
            Ty::Int(_) => {
                if is_float(t.datum_type()) {
                    return Err(bad("is a float where an integer is expected"));
                }
                XT::i64(shape, Self::i64s(t)?)
            }
            Ty::Bool => XT::bool(shape, Self::f64s(t)?.iter().map(|x| *x != 0.0).collect()),
        })
    }

    /// The value of `o` as a slot of type `want` (constants are quantized,
    /// dynamic values converted with a cast step when needed).
    pub fn as_ty(&mut self, node: &TypedNode, o: OutletId, want: Ty) -> CR<usize> {
        match self.vals.get(&o).cloned() {
            Some(CVal::Const(t)) => {
                let xt = self.quantize_const(node, &t, want)?;
                Ok(self.const_slot(xt, want))
            }
            Some(CVal::Dyn(s)) => {
                let have = self.ty(s);
                if have == want || matches!((have, want), (Ty::Int(_), Ty::Int(_))) {
                    return Ok(s);
                }
                let shape = self.shape(s);
                let kind = match (have, want) {
                    (Ty::Fixed(a), Ty::Fixed(b)) => Kind::Rescale { shift: a - b },
                    _ => Kind::Cast {
                        from: have,
                        to: want,
                    },
                };
                Ok(self.emit(node, kind, vec![s], shape, want))
            }
            None => Err(EngineError::Execution(format!(
                "exact: node `{}`: input {o:?} was not computed",
                node.name
            ))),
        }
    }

    /// A float value at the activation scale.
    pub fn fixed(&mut self, node: &TypedNode, o: OutletId) -> CR<usize> {
        let f = self.f();
        self.as_ty(node, o, Ty::Fixed(f))
    }

    /// A constant used as a multiplicand: quantized with the weight rule.
    pub fn weight(&mut self, t: &Tensor) -> CR<(XT, i32)> {
        let v = Self::f64s(t)?;
        let fw = weight_frac(&v, self.p.weight_bits as u32);
        let q = v
            .iter()
            .map(|x| quantize(*x, fw))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| EngineError::InvalidModel("a weight is not finite".into()))?;
        Ok((XT::i64(t.shape().to_vec(), q), fw))
    }

    /// Quantized weights as `i32` (they have at most `weight_bits` bits).
    pub fn narrow(q: &XT) -> CR<Vec<i32>> {
        q.as_i64()
            .map_err(EngineError::Execution)?
            .iter()
            .map(|v| {
                i32::try_from(*v).map_err(|_| EngineError::Execution("weight out of range".into()))
            })
            .collect()
    }

    pub fn konst(&self, o: OutletId) -> Option<Arc<Tensor>> {
        match self.vals.get(&o) {
            Some(CVal::Const(t)) => Some(t.clone()),
            _ => None,
        }
    }

    pub fn out_shape(node: &TypedNode, i: usize) -> CR<Vec<usize>> {
        node.outputs[i]
            .fact
            .shape
            .as_concrete()
            .map(|s| s.to_vec())
            .ok_or_else(|| {
                EngineError::Execution(format!("exact: node `{}` has a symbolic shape", node.name))
            })
    }

    pub fn set(&mut self, node: &TypedNode, i: usize, s: usize) {
        self.vals.insert(OutletId::new(node.id, i), CVal::Dyn(s));
    }

    /// Lowers one node.
    pub fn lower(&mut self, node: &TypedNode) -> CR<()> {
        if let Some(src) = node.op_as::<ops::source::TypedSource>() {
            let shape = src
                .fact
                .shape
                .as_concrete()
                .map(|s| s.to_vec())
                .unwrap_or_default();
            let ty = self.ty_of(src.fact.datum_type);
            let s = self.slot(shape, ty);
            self.plan.inputs.push((node.name.clone(), s));
            self.set(node, 0, s);
            return Ok(());
        }
        if let Some(k) = node.op_as::<ops::konst::Const>() {
            self.vals
                .insert(OutletId::new(node.id, 0), CVal::Const(k.val().clone()));
            return Ok(());
        }
        // Constant folding (tract evaluates nodes whose inputs are all constants).
        let consts: Option<TVec<TValue>> = node
            .inputs
            .iter()
            .map(|i| self.konst(*i).map(|t| t.into_tvalue()))
            .collect();
        if let Some(inputs) = consts {
            if !node.inputs.is_empty() {
                if let Ok(Some(out)) = node.op.eval_out_of_plan(inputs) {
                    for (i, t) in out.into_iter().enumerate() {
                        self.vals
                            .insert(OutletId::new(node.id, i), CVal::Const(t.into_arc_tensor()));
                    }
                    return Ok(());
                }
            }
        }
        match self.lower_op(node) {
            Err(e @ EngineError::UnsupportedOp { .. }) if self.collect => {
                self.unsupported.push(e);
                // Stand-in outputs so that compilation goes on.
                for (i, o) in node.outputs.iter().enumerate() {
                    let shape = o
                        .fact
                        .shape
                        .as_concrete()
                        .map(|s| s.to_vec())
                        .unwrap_or_default();
                    let s = self.slot(shape, self.ty_of(o.fact.datum_type));
                    self.set(node, i, s);
                }
                Ok(())
            }
            r => r,
        }
    }

    fn lower_op(&mut self, node: &TypedNode) -> CR<()> {
        let name = node.op.name();
        if name == "Identity" {
            let v = self.vals.get(&node.inputs[0]).cloned();
            if let Some(v) = v {
                self.vals.insert(OutletId::new(node.id, 0), v);
            }
            return Ok(());
        }
        if let Some(op) = node.op_as::<ops::binary::TypedBinOp>() {
            return self.binary(node, op.0.name());
        }
        if let Some(op) = node.op_as::<ops::element_wise::ElementWiseOp>() {
            return self.unary(node, &*op.0);
        }
        if let Some(op) = node.op_as::<ops::cast::Cast>() {
            return self.cast(node, op.to);
        }
        if node.op_is::<ops::logic::Iff>() {
            let out = node.outputs[0].fact.datum_type;
            let ty = self.ty_of(out);
            let c = self.as_ty(node, node.inputs[0], Ty::Bool)?;
            let a = self.as_ty(node, node.inputs[1], ty)?;
            let b = self.as_ty(node, node.inputs[2], ty)?;
            let s = self.emit(
                node,
                Kind::Where,
                vec![c, a, b],
                Self::out_shape(node, 0)?,
                ty,
            );
            self.set(node, 0, s);
            return Ok(());
        }
        if self.lower_nn(node)? {
            return Ok(());
        }
        if name == "TreeEnsembleClassifier" || name == "TreeEnsembleRegressor" {
            return self.tree(node);
        }
        if self.is_move(node) {
            return self.tract_step(node);
        }
        let float_io = node.outputs.iter().any(|o| is_float(o.fact.datum_type))
            || node.inputs.iter().any(|i| self.is_float_value(*i));
        if !float_io {
            return self.tract_step(node);
        }
        Err(self.unsupported(node, "no exact lowering for this operator"))
    }

    pub fn is_float_value(&self, o: OutletId) -> bool {
        match self.vals.get(&o) {
            Some(CVal::Const(t)) => is_float(t.datum_type()),
            Some(CVal::Dyn(s)) => matches!(self.plan.slots[*s].ty, Ty::Fixed(_)),
            None => false,
        }
    }

    /// Operators that only move or select values (any element type).
    fn is_move(&self, node: &TypedNode) -> bool {
        use ops::array::*;
        node.op_is::<ops::change_axes::AxisOp>()
            || node.op_is::<TypedConcat>()
            || node.op_is::<Slice>()
            || node.op_is::<Gather>()
            || node.op_is::<GatherElements>()
            || node.op_is::<GatherNd>()
            || node.op_is::<MultiBroadcastTo>()
            || node.op_is::<StridedSlice>()
            || node.op_is::<Tile>()
            || node.op_is::<Pad>()
            || node.op_is::<DynSlice>()
            || node.op_is::<Trilu>()
    }

    /// A step tract evaluates on the integer representations: float inputs
    /// become fixed point at the activation scale (a constant pad value too).
    fn tract_step(&mut self, node: &TypedNode) -> CR<()> {
        let mut inputs = vec![];
        for i in &node.inputs {
            let ty = if self.is_float_value(*i) {
                Ty::Fixed(self.f())
            } else {
                match self.vals.get(i) {
                    Some(CVal::Const(t)) => self.ty_of(t.datum_type()),
                    Some(CVal::Dyn(s)) => self.ty(*s),
                    None => Ty::Int(DatumType::I64),
                }
            };
            inputs.push(self.as_ty(node, *i, ty)?);
        }
        let mut op: Box<dyn TypedOp> = node.op.clone();
        if let Some(pad) = node.op_as::<ops::array::Pad>() {
            if let ops::array::PadMode::Constant(v) = &pad.mode {
                if is_float(v.datum_type()) {
                    let q = self.quantize_const(node, v, Ty::Fixed(self.f()))?;
                    let q = q.as_i64().map_err(EngineError::Execution)?[0];
                    op = Box::new(ops::array::Pad {
                        pads: pad.pads.clone(),
                        mode: ops::array::PadMode::Constant(tensor0(q).into_arc_tensor()),
                    });
                }
            }
        }
        let mut outs = vec![];
        for (i, o) in node.outputs.iter().enumerate() {
            let ty = self.ty_of(o.fact.datum_type);
            outs.push(self.slot(Self::out_shape(node, i)?, ty));
        }
        self.step(node, Kind::Tract(op), inputs, outs.clone());
        for (i, s) in outs.into_iter().enumerate() {
            self.set(node, i, s);
        }
        Ok(())
    }

    fn cast(&mut self, node: &TypedNode, to: DatumType) -> CR<()> {
        let want = self.ty_of(to);
        let i = node.inputs[0];
        if let Some(CVal::Dyn(s)) = self.vals.get(&i).cloned() {
            let have = self.ty(s);
            if have == want || matches!((have, want), (Ty::Fixed(_), Ty::Fixed(_))) {
                self.set(node, 0, s);
                return Ok(());
            }
            let o = self.emit(
                node,
                Kind::Cast {
                    from: have,
                    to: want,
                },
                vec![s],
                self.shape(s),
                want,
            );
            self.set(node, 0, o);
            return Ok(());
        }
        let s = self.as_ty(node, i, want)?;
        self.set(node, 0, s);
        Ok(())
    }

    fn binary(&mut self, node: &TypedNode, name: &str) -> CR<()> {
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let shape = Self::out_shape(node, 0)?;
        let f = self.f();
        let out_dt = node.outputs[0].fact.datum_type;
        let cmp = match name {
            "Eq" => Some(CmpOp::Eq),
            "NE" => Some(CmpOp::Ne),
            "LT" => Some(CmpOp::Lt),
            "GT" => Some(CmpOp::Gt),
            "LTE" => Some(CmpOp::Le),
            "GTE" => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = cmp {
            let ty =
                if self.is_float_value(a) || self.is_float_value(b) {
                    Ty::Fixed(f)
                } else if node.inputs.iter().any(
                    |i| matches!(self.vals.get(i), Some(CVal::Dyn(s)) if self.ty(*s) == Ty::Bool),
                ) {
                    Ty::Bool
                } else {
                    Ty::Int(DatumType::I64)
                };
            let sa = self.as_ty(node, a, ty)?;
            let sb = self.as_ty(node, b, ty)?;
            let o = self.emit(node, Kind::Cmp { op }, vec![sa, sb], shape, Ty::Bool);
            self.set(node, 0, o);
            return Ok(());
        }
        if out_dt == DatumType::Bool {
            let op = match name {
                "And" => BoolOp::And,
                "Or" => BoolOp::Or,
                "Xor" => BoolOp::Xor,
                _ => return Err(self.unsupported(node, "boolean operator")),
            };
            let sa = self.as_ty(node, a, Ty::Bool)?;
            let sb = self.as_ty(node, b, Ty::Bool)?;
            let o = self.emit(node, Kind::BoolBin { op }, vec![sa, sb], shape, Ty::Bool);
            self.set(node, 0, o);
            return Ok(());
        }
        if !is_float(out_dt) {
            let op = match name {
                "Add" => IntOp::Add,
                "Sub" => IntOp::Sub,
                "Mul" => IntOp::Mul,
                "Div" => IntOp::Div,
                "Max" => IntOp::Max,
                "Min" => IntOp::Min,
                _ => return self.tract_step(node),
            };
            let ty = self.ty_of(out_dt);
            let sa = self.as_ty(node, a, ty)?;
            let sb = self.as_ty(node, b, ty)?;
            let o = self.emit(node, Kind::IntBin { op }, vec![sa, sb], shape, ty);
            self.set(node, 0, o);
            return Ok(());
        }
        let fx = Ty::Fixed(f);
        let (op, x, y) = match name {
            "Add" => (BinOp::Add, a, b),
            "Sub" => (BinOp::Sub, a, b),
            "SubF" => (BinOp::Sub, b, a),
            "Max" => (BinOp::Max, a, b),
            "Min" => (BinOp::Min, a, b),
            "Mul" => {
                let o = self.mul(node, a, b, shape)?;
                self.set(node, 0, o);
                return Ok(());
            }
            "Div" => {
                let o = self.div(node, a, b, shape)?;
                self.set(node, 0, o);
                return Ok(());
            }
            "Pow" => {
                let Some(e) = self.konst(b).filter(|t| t.len() == 1) else {
                    return Err(self.unsupported(node, "Pow with a non-constant exponent"));
                };
                let e = Self::f64s(&e)?[0];
                let x = self.fixed(node, a)?;
                let o = self.pow(node, x, e as f32)?;
                self.set(node, 0, o);
                return Ok(());
            }
            _ => return Err(self.unsupported(node, &format!("binary operator {name}"))),
        };
        let sat = matches!(op, BinOp::Max | BinOp::Min);
        let sx = self.operand(node, x, fx, sat)?;
        let sy = self.operand(node, y, fx, sat)?;
        let o = self.emit(node, Kind::Bin { op, shift: 0 }, vec![sx, sy], shape, fx);
        self.set(node, 0, o);
        Ok(())
    }

    /// An operand of type `ty`; with `saturate`, a float constant is
    /// clamped to the `i32` range (infinities included), which is exact for
    /// the operand of a `Max`/`Min` whose other operand is in range.
    fn operand(&mut self, node: &TypedNode, o: OutletId, ty: Ty, saturate: bool) -> CR<usize> {
        if let (true, Some(t), Ty::Fixed(f)) = (saturate, self.konst(o), ty) {
            if is_float(t.datum_type()) {
                let v = Self::f64s(&t)?
                    .iter()
                    .map(|x| {
                        if x.is_nan() {
                            Err(EngineError::InvalidModel(format!(
                                "exact: node `{}`: NaN constant",
                                node.name
                            )))
                        } else {
                            let y = (x * super::arith::pow2(f)).round_ties_even();
                            Ok(y.clamp(-super::arith::TWO63, super::arith::TWO63) as i64)
                        }
                    })
                    .collect::<CR<Vec<_>>>()?;
                return Ok(self.const_slot(XT::i64(t.shape().to_vec(), v), ty));
            }
        }
        self.as_ty(node, o, ty)
    }

    pub fn mul(
        &mut self,
        node: &TypedNode,
        a: OutletId,
        b: OutletId,
        shape: Vec<usize>,
    ) -> CR<usize> {
        let f = self.f();
        let (ca, cb) = (self.konst(a), self.konst(b));
        let (x, c) = match (ca, cb) {
            (None, Some(c)) => (a, Some(c)),
            (Some(c), None) => (b, Some(c)),
            _ => (a, None),
        };
        let sx = self.fixed(node, x)?;
        if let Some(c) = c {
            let (q, fc) = self.weight(&c)?;
            let sc = self.const_slot(q, Ty::Fixed(fc));
            return Ok(self.emit(
                node,
                Kind::Bin {
                    op: BinOp::Mul,
                    shift: fc,
                },
                vec![sx, sc],
                shape,
                Ty::Fixed(f),
            ));
        }
        let sy = self.fixed(node, b)?;
        Ok(self.emit(
            node,
            Kind::Bin {
                op: BinOp::Mul,
                shift: f,
            },
            vec![sx, sy],
            shape,
            Ty::Fixed(f),
        ))
    }

    fn div(&mut self, node: &TypedNode, a: OutletId, b: OutletId, shape: Vec<usize>) -> CR<usize> {
        let f = self.f();
        let sx = self.fixed(node, a)?;
        if let Some(c) = self.konst(b) {
            let (q, fc) = self.weight(&c)?;
            if q.as_i64().map_err(EngineError::Execution)?.contains(&0) {
                return Err(EngineError::InvalidModel(format!(
                    "exact: node `{}` divides by a constant that is zero at the weight precision",
                    node.name
                )));
            }
            let sc = self.const_slot(q, Ty::Fixed(fc));
            return Ok(self.emit(
                node,
                Kind::Bin {
                    op: BinOp::Div,
                    shift: fc,
                },
                vec![sx, sc],
                shape,
                Ty::Fixed(f),
            ));
        }
        let sy = self.fixed(node, b)?;
        Ok(self.emit(
            node,
            Kind::Bin {
                op: BinOp::Div,
                shift: f,
            },
            vec![sx, sy],
            shape,
            Ty::Fixed(f),
        ))
    }

    /// `x^e` for the exponents exact mode defines.
    fn pow(&mut self, node: &TypedNode, x: usize, e: f32) -> CR<usize> {
        let f = self.f();
        let shape = self.shape(x);
        let fx = Ty::Fixed(f);
        let un = |op| Kind::Unary { op };
        Ok(match e {
            1.0 => x,
            2.0 => self.emit(
                node,
                Kind::Bin {
                    op: BinOp::Mul,
                    shift: f,
                },
                vec![x, x],
                shape,
                fx,
            ),
            3.0 => {
                let sq = self.emit(
                    node,
                    Kind::Bin {
                        op: BinOp::Mul,
                        shift: f,
                    },
                    vec![x, x],
                    shape.clone(),
                    fx,
                );
                self.emit(
                    node,
                    Kind::Bin {
                        op: BinOp::Mul,
                        shift: f,
                    },
                    vec![sq, x],
                    shape,
                    fx,
                )
            }
            0.5 => self.emit(node, un(UnOp::Sqrt { fx: f, fo: f }), vec![x], shape, fx),
            -0.5 => self.emit(node, un(UnOp::Rsqrt { fx: f, fo: f }), vec![x], shape, fx),
            -1.0 => self.emit(node, un(UnOp::Recip { fx: f, fo: f }), vec![x], shape, fx),
            _ => return Err(self.unsupported(node, &format!("Pow with exponent {e}"))),
        })
    }

    fn table_step(&mut self, node: &TypedNode, x: usize, func: Func) -> CR<usize> {
        let f = self.f();
        let t = funcs::table(func, f).map_err(EngineError::Execution)?;
        let shape = self.shape(x);
        Ok(self.emit(
            node,
            Kind::Table { table: t, fx: f },
            vec![x],
            shape,
            Ty::Fixed(f),
        ))
    }

    /// `x * c` for a float constant `c` (weight rule).
    fn mul_const(&mut self, node: &TypedNode, x: usize, c: f32) -> CR<usize> {
        let f = self.f();
        let (q, fc) = self.weight(&tensor0(c))?;
        let sc = self.const_slot(q, Ty::Fixed(fc));
        let shape = self.shape(x);
        Ok(self.emit(
            node,
            Kind::Bin {
                op: BinOp::Mul,
                shift: fc,
            },
            vec![x, sc],
            shape,
            Ty::Fixed(f),
        ))
    }

    fn add_const(&mut self, node: &TypedNode, x: usize, c: f32) -> CR<usize> {
        let f = self.f();
        let q = quantize(c as f64, f).unwrap_or(0);
        let sc = self.const_slot(XT::i64(vec![], vec![q]), Ty::Fixed(f));
        let shape = self.shape(x);
        Ok(self.emit(
            node,
            Kind::Bin {
                op: BinOp::Add,
                shift: 0,
            },
            vec![x, sc],
            shape,
            Ty::Fixed(f),
        ))
    }

    fn mul2(&mut self, node: &TypedNode, x: usize, y: usize) -> usize {
        let f = self.f();
        let shape = self.shape(x);
        self.emit(
            node,
            Kind::Bin {
                op: BinOp::Mul,
                shift: f,
            },
            vec![x, y],
            shape,
            Ty::Fixed(f),
        )
    }

    fn unary(&mut self, node: &TypedNode, op: &dyn ops::element_wise::ElementWiseMiniOp) -> CR<()> {
        let name = op.name();
        let i = node.inputs[0];
        let f = self.f();
        if !self.is_float_value(i) {
            let ty = self.ty_of(node.outputs[0].fact.datum_type);
            let kind = match name.as_str() {
                "Not" => Kind::Not,
                "Neg" => Kind::Unary { op: UnOp::IntNeg },
                "Abs" => Kind::Unary { op: UnOp::IntAbs },
                _ => return self.tract_step(node),
            };
            let x = self.as_ty(node, i, ty)?;
            let o = self.emit(node, kind, vec![x], self.shape(x), ty);
            self.set(node, 0, o);
            return Ok(());
        }
        let x = self.fixed(node, i)?;
        let shape = self.shape(x);
        let fx = Ty::Fixed(f);
        let un = |op| Kind::Unary { op };
        let o = match name.as_str() {
            "Sigmoid" => self.table_step(node, x, Func::Sigmoid)?,
            "Tanh" => self.table_step(node, x, Func::Tanh)?,
            "Exp" => self.table_step(node, x, Func::Exp)?,
            "Erf" => self.table_step(node, x, Func::Erf)?,
            "Abs" => self.emit(node, un(UnOp::Abs), vec![x], shape, fx),
            "Neg" => self.emit(node, un(UnOp::Neg), vec![x], shape, fx),
            "Sign" => self.emit(node, un(UnOp::Sign { fo: f }), vec![x], shape, fx),
            "Floor" => self.emit(node, un(UnOp::Floor { fx: f }), vec![x], shape, fx),
            "Ceil" => self.emit(node, un(UnOp::Ceil { fx: f }), vec![x], shape, fx),
            "Round" => self.emit(node, un(UnOp::RoundAway { fx: f }), vec![x], shape, fx),
            "RoundHalfToEven" => self.emit(node, un(UnOp::Round { fx: f }), vec![x], shape, fx),
            "Sqrt" => self.pow(node, x, 0.5)?,
            "Rsqrt" => self.pow(node, x, -0.5)?,
            "Recip" => self.pow(node, x, -1.0)?,
            "Square" => self.pow(node, x, 2.0)?,
            "HardSwish" => self.emit(node, un(UnOp::HardSwish { f }), vec![x], shape, fx),
            "LeakyRelu" => {
                let alpha = op
                    .downcast_ref::<ops::nn::LeakyRelu>()
                    .map(|l| l.alpha)
                    .ok_or_else(|| self.unsupported(node, "LeakyRelu parameters"))?;
                let fa = weight_frac(&[alpha as f64], self.p.weight_bits as u32);
                let a = quantize(alpha as f64, fa).unwrap_or(0);
                self.emit(node, un(UnOp::LeakyRelu { a, fa }), vec![x], shape, fx)
            }
            "PowConst" => {
                let e = op
                    .downcast_ref::<ops::math::PowConst>()
                    .map(|p| p.exponent)
                    .ok_or_else(|| self.unsupported(node, "PowConst parameters"))?;
                self.pow(node, x, e)?
            }
            "Silu" => {
                let s = self.table_step(node, x, Func::Sigmoid)?;
                self.mul2(node, x, s)
            }
            "GeluExact" => {
                // x * (1 + erf(x / sqrt 2)) / 2
                let u = self.mul_const(node, x, std::f32::consts::FRAC_1_SQRT_2)?;
                let e = self.table_step(node, u, Func::Erf)?;
                let e1 = self.add_const(node, e, 1.0)?;
                let p = self.mul2(node, x, e1);
                self.mul_const(node, p, 0.5)?
            }
            "GeluApproximate" => {
                // x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2
                let x3 = self.pow(node, x, 3.0)?;
                let c = self.mul_const(node, x3, 0.044715)?;
                let shape = self.shape(x);
                let s = self.emit(
                    node,
                    Kind::Bin {
                        op: BinOp::Add,
                        shift: 0,
                    },
                    vec![x, c],
                    shape,
                    fx,
                );
                let u = self.mul_const(node, s, 0.797_884_6)?;
                let t = self.table_step(node, u, Func::Tanh)?;
                let t1 = self.add_const(node, t, 1.0)?;
                let p = self.mul2(node, x, t1);
                self.mul_const(node, p, 0.5)?
            }
            _ => return Err(self.unsupported(node, &format!("element-wise operator {name}"))),
        };
        self.set(node, 0, o);
        Ok(())
    }
}
