//! Lowering of tract's typed graph (one expansion per ONNX node, not
//! decluttered) to the exact graph (spec §3): walks the nodes in evaluation
//! order, folds constant subgraphs, and lowers each node.

use super::arith::{quantize, weight_frac};
use super::ir::{Kind, Plan, Slot, Step, Ty, XT};
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
    /// Convolution outputs (or folded Mul/Add outputs) with a single
    /// consumer: the step computing them and the channel axis.
    pub foldable: HashMap<OutletId, (usize, usize)>,
    /// Softmax outputs with a single consumer, and their step.
    pub softmax_steps: HashMap<OutletId, usize>,
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
            foldable: HashMap::new(),
            softmax_steps: HashMap::new(),
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
        if best.is_none() {
            best = g.node.iter().find(|n| {
                n.output
                    .iter()
                    .any(|o| !o.is_empty() && (name == o || name.starts_with(&format!("{o}."))))
            });
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
                // Saturated to +-2^62 (infinities and mask constants).
                let lim = 1i64 << 62;
                let v = Self::f64s(t)?
                    .iter()
                    .map(|x| {
                        if x.is_nan() {
                            return Err(bad("is NaN"));
                        }
                        Ok(match quantize(*x, f) {
                            Some(q) => q.clamp(-lim, lim),
                            None if *x < 0.0 => -lim,
                            None => lim,
                        })
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
        if name == "Resize" && self.is_float_value(node.inputs[0]) {
            return self.resize(node);
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
            || node.op_is::<Topk>()
    }

    /// A step tract evaluates on the integer representations: float inputs
    /// become fixed point at the activation scale (a constant pad value too).
    pub(crate) fn tract_step(&mut self, node: &TypedNode) -> CR<()> {
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
}
