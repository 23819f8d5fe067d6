//! The public exact-mode API: compiled models, the plan cache, the executor.

use super::compile::{CVal, Compiler};
use super::ir::{Data, Kind, Plan, Step, Ty, XT};
use super::linalg::RunOptions;
use super::{compiled_id, ops, ExactParams};
use crate::convert::{datum_type, validate_input};
use crate::error::{chain, panic_message};
use crate::lru::Lru;
use crate::model::{self, ModelInfo};
use crate::EngineError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use verity_primitives::{DType, Dim, Tensor as VTensor, TensorData, Tensors};

/// An output in its exact integer form: `values[i] * 2^-frac` is the real
/// value (`frac` is `None` for integer and boolean outputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactOutput {
    /// The output's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Fractional bits of a fixed-point output.
    pub frac: Option<i32>,
    /// The integers (booleans as 0/1), row-major.
    pub values: Vec<i64>,
}

/// An ONNX model compiled for exact mode: `Send + Sync`, plans cached per
/// input shapes and reused.
pub struct ExactModel {
    id: [u8; 32],
    params: ExactParams,
    info: Arc<ModelInfo>,
    pub(crate) proto: ModelProto,
    model: InferenceModel,
    plans: Mutex<Lru<Vec<Vec<usize>>, Arc<Plan>>>,
}

impl std::fmt::Debug for ExactModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactModel")
            .field("id", &hex_id(&self.id))
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn hex_id(id: &[u8; 32]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Largest ONNX file [`ExactModel::compile`] accepts.
const MAX_MODEL_BYTES: usize = 256 << 20;

impl ExactModel {
    /// Loads `onnx` and compiles it with `params`. Fails with
    /// [`EngineError::UnsupportedOp`] naming the first operator exact mode
    /// cannot lower (checked on the model's declared shapes, symbolic
    /// dimensions taken as 1).
    pub fn compile(onnx: &[u8], params: &ExactParams) -> Result<Self, EngineError> {
        params.validate()?;
        let framework = model::framework();
        let proto = model::decode(onnx, MAX_MODEL_BYTES)?;
        model::check_supported(&proto, &framework)?;
        let info = model::describe(&proto)?;
        let model = model::load(&proto, &framework)?;
        let m = ExactModel {
            id: compiled_id(onnx, params),
            params: params.clone(),
            info: Arc::new(info),
            proto,
            model,
            plans: Mutex::new(Lru::new(16)),
        };
        let shapes = m.default_shapes();
        match m.plan(&shapes) {
            Err(e @ EngineError::UnsupportedOp { .. }) => return Err(e),
            Err(e @ EngineError::InvalidModel(_)) => return Err(e),
            _ => {}
        }
        Ok(m)
    }

    /// The operators of `onnx` that exact mode cannot lower, as
    /// `domain:OpType` (sorted, unique; empty when all are supported).
    pub fn unsupported_ops(onnx: &[u8]) -> Result<Vec<String>, EngineError> {
        let framework = model::framework();
        let proto = model::decode(onnx, MAX_MODEL_BYTES)?;
        if let Err(EngineError::UnsupportedOp { op, .. }) =
            model::check_supported(&proto, &framework)
        {
            return Ok(vec![op]);
        }
        let info = model::describe(&proto)?;
        let model = model::load(&proto, &framework)?;
        let params = ExactParams::default();
        let shapes = default_shapes(&info);
        let typed = typed_for(&model, &info, &shapes)?;
        let mut c = Compiler::new(&params, &proto, true);
        for id in typed
            .eval_order()
            .map_err(|e| EngineError::Execution(chain(&e)))?
        {
            c.lower(typed.node(id))?;
        }
        let mut ops: Vec<String> = c
            .unsupported
            .into_iter()
            .filter_map(|e| match e {
                EngineError::UnsupportedOp { op, .. } => Some(op),
                _ => None,
            })
            .collect();
        ops.sort();
        ops.dedup();
        Ok(ops)
    }

    /// The compiled-model id (see [`super::compiled_id`]).
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// The compile parameters.
    pub fn params(&self) -> &ExactParams {
        &self.params
    }

    /// What the model declares.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn default_shapes(&self) -> Vec<Vec<usize>> {
        default_shapes(&self.info)
    }

    /// The plan for the default input shapes.
    pub(crate) fn default_plan(&self) -> Result<Arc<Plan>, EngineError> {
        self.plan(&self.default_shapes())
    }

    /// The plan for these input shapes (cached).
    fn plan(&self, shapes: &[Vec<usize>]) -> Result<Arc<Plan>, EngineError> {
        if let Some(p) = lock(&self.plans).get(&shapes.to_vec()) {
            return Ok(p);
        }
        let typed = typed_for(&self.model, &self.info, shapes)?;
        let mut c = Compiler::new(&self.params, &self.proto, false);
        let order = typed
            .eval_order()
            .map_err(|e| EngineError::Execution(chain(&e)))?;
        let res = catch_unwind(AssertUnwindSafe(|| -> Result<(), EngineError> {
            for id in order {
                c.lower(typed.node(id))?;
            }
            Ok(())
        }));
        match res {
            Ok(r) => r?,
            Err(p) => {
                return Err(EngineError::Execution(format!(
                    "exact compilation panicked: {}",
                    panic_message(&*p)
                )))
            }
        }
        for (spec, outlet) in self.info.outputs.iter().zip(
            typed
                .output_outlets()
                .map_err(|e| EngineError::Execution(chain(&e)))?,
        ) {
            let s = match c.vals.get(outlet).cloned() {
                Some(CVal::Dyn(s)) => s,
                Some(CVal::Const(t)) => {
                    let ty = c.ty_of(t.datum_type());
                    let node = typed.node(outlet.node);
                    let xt = c.quantize_const(node, &t, ty)?;
                    c.const_slot(xt, ty)
                }
                None => {
                    return Err(EngineError::Execution(format!(
                        "exact: output `{}` not computed",
                        spec.name
                    )))
                }
            };
            c.plan.outputs.push((spec.name.clone(), s));
        }
        let mut plan = c.plan;
        plan.finish();
        let plan = Arc::new(plan);
        lock(&self.plans).insert(shapes.to_vec(), plan.clone());
        Ok(plan)
    }

    /// Runs the model on `input` (float inputs are quantized, see the spec)
    /// and returns the outputs keyed by name: fixed-point outputs as
    /// `float64` (their exact values), integer outputs in their declared
    /// type, booleans as `bool`.
    pub fn run(&self, input: &Tensors) -> Result<Tensors, EngineError> {
        self.run_with(input, RunOptions::default())
    }

    /// [`ExactModel::run`] with explicit execution options (results never
    /// depend on them).
    pub fn run_with(&self, input: &Tensors, opt: RunOptions) -> Result<Tensors, EngineError> {
        let outs = self.run_exact_with(input, opt)?;
        let mut res = Tensors::default();
        for o in outs {
            let spec = self.info.outputs.iter().find(|s| s.name == o.name);
            let data = match o.frac {
                Some(f) => TensorData::F64(
                    o.values
                        .iter()
                        .map(|v| super::arith::dequantize(*v, f))
                        .collect(),
                ),
                None => int_data(spec.map(|s| s.dtype).unwrap_or(DType::Int64), &o.values),
            };
            let t = VTensor::new(&o.name, o.shape.clone(), data)
                .map_err(|e| EngineError::Execution(e.to_string()))?;
            res.0.insert(o.name.clone(), t);
        }
        Ok(res)
    }

    /// The outputs in their exact integer form, in the model's output order.
    pub fn run_exact(&self, input: &Tensors) -> Result<Vec<ExactOutput>, EngineError> {
        self.run_exact_with(input, RunOptions::default())
    }

    /// [`ExactModel::run_exact`] with explicit execution options.
    pub fn run_exact_with(
        &self,
        input: &Tensors,
        opt: RunOptions,
    ) -> Result<Vec<ExactOutput>, EngineError> {
        validate_input(&self.info.inputs, input)?;
        let shapes: Vec<Vec<usize>> = self
            .info
            .inputs
            .iter()
            .map(|s| input.0[&s.name].shape.clone())
            .collect();
        let plan = self.plan(&shapes)?;
        let f = self.params.frac_bits as i32;
        let mut xs = vec![];
        for spec in &self.info.inputs {
            xs.push(quantize_input(&spec.name, &input.0[&spec.name], f)?);
        }
        let outs = catch_unwind(AssertUnwindSafe(|| execute(&plan, xs, opt))).map_err(|p| {
            EngineError::Execution(format!("exact execution panicked: {}", panic_message(&*p)))
        })??;
        Ok(plan
            .outputs
            .iter()
            .zip(outs)
            .map(|((name, s), xt)| {
                let frac = match plan.slots[*s].ty {
                    Ty::Fixed(f) => Some(f),
                    _ => None,
                };
                let values = match xt.data {
                    Data::I64(v) => v,
                    Data::Bool(v) => v.into_iter().map(i64::from).collect(),
                };
                ExactOutput {
                    name: name.clone(),
                    shape: xt.shape,
                    frac,
                    values,
                }
            })
            .collect())
    }
}

fn int_data(dt: DType, v: &[i64]) -> TensorData {
    match dt {
        DType::Int32 => TensorData::I32(v.iter().map(|x| *x as i32).collect()),
        DType::Int8 => TensorData::I8(v.iter().map(|x| *x as i8).collect()),
        DType::Uint8 => TensorData::U8(v.iter().map(|x| *x as u8).collect()),
        DType::Bool => TensorData::Bool(v.iter().map(|x| *x != 0).collect()),
        _ => TensorData::I64(v.to_vec()),
    }
}

fn default_shapes(info: &ModelInfo) -> Vec<Vec<usize>> {
    info.inputs
        .iter()
        .map(|s| {
            s.shape
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => *n as usize,
                    Dim::Symbolic(_) => 1,
                })
                .collect()
        })
        .collect()
}

/// tract's typed graph (not decluttered) for concrete input shapes.
fn typed_for(
    model: &InferenceModel,
    info: &ModelInfo,
    shapes: &[Vec<usize>],
) -> Result<TypedModel, EngineError> {
    let res = catch_unwind(AssertUnwindSafe(|| -> TractResult<TypedModel> {
        let mut m = model.clone();
        for (ix, (spec, shape)) in info.inputs.iter().zip(shapes).enumerate() {
            m.set_input_fact(
                ix,
                InferenceFact::dt_shape(datum_type(spec.dtype), shape.clone()),
            )?;
        }
        m.into_typed()
    }));
    match res {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(EngineError::Execution(format!(
            "preparing the model for input shapes {shapes:?}: {}",
            chain(&e)
        ))),
        Err(p) => Err(EngineError::Execution(format!(
            "preparing the model panicked: {}",
            panic_message(&*p)
        ))),
    }
}

/// Input conversion (spec §2.3): floats to `round(x * 2^f)` (ties to even),
/// an error for NaN, infinities and values outside `i32`; integers and
/// booleans unchanged.
pub(crate) fn quantize_input(name: &str, t: &VTensor, f: i32) -> Result<XT, EngineError> {
    let shape = t.shape.clone();
    let q = |i: usize, x: f64| {
        super::arith::quantize(x, f)
            .filter(|v| v.unsigned_abs() < 1 << 62)
            .ok_or_else(|| {
                EngineError::InvalidInput(format!(
                    "input `{}`: element {i} = {x} is outside the exact-mode range (finite, |x| < 2^{})",
                    name,
                    62 - f
                ))
            })
    };
    Ok(match &t.data {
        TensorData::F32(v) => XT::i64(
            shape,
            v.iter()
                .enumerate()
                .map(|(i, x)| q(i, *x as f64))
                .collect::<Result<_, _>>()?,
        ),
        TensorData::F64(v) => XT::i64(
            shape,
            v.iter()
                .enumerate()
                .map(|(i, x)| q(i, *x))
                .collect::<Result<_, _>>()?,
        ),
        TensorData::I64(v) => XT::i64(shape, v.clone()),
        TensorData::I32(v) => XT::i64(shape, v.iter().map(|x| *x as i64).collect()),
        TensorData::I8(v) => XT::i64(shape, v.iter().map(|x| *x as i64).collect()),
        TensorData::U8(v) => XT::i64(shape, v.iter().map(|x| *x as i64).collect()),
        TensorData::Bool(v) => XT::bool(shape, v.clone()),
    })
}

/// Runs a plan.
pub(crate) fn execute(
    plan: &Plan,
    inputs: Vec<XT>,
    opt: RunOptions,
) -> Result<Vec<XT>, EngineError> {
    super::linalg::clear_simd_state();
    let mut vals: Vec<Option<XT>> = vec![None; plan.slots.len()];
    let mut konst: Vec<Option<&XT>> = vec![None; plan.slots.len()];
    for (s, x) in &plan.consts {
        konst[*s] = Some(x);
    }
    for ((_, s), x) in plan.inputs.iter().zip(inputs) {
        vals[*s] = Some(x);
    }
    for (i, step) in plan.steps.iter().enumerate() {
        if opt.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(EngineError::LimitExceeded(format!(
                "exact execution deadline exceeded before node `{}`",
                step.name
            )));
        }
        let outs = {
            let ins: Vec<&XT> = step
                .inputs
                .iter()
                .map(|s| konst[*s].or(vals[*s].as_ref()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    EngineError::Execution(format!(
                        "exact: node `{}`: input not computed",
                        step.name
                    ))
                })?;
            run_step(plan, step, &ins, opt).map_err(|e| {
                EngineError::Execution(format!("exact: node `{}` ({}): {e}", step.name, step.op))
            })?
        };
        if let Some(max) = opt.max_tensor_elements {
            if let Some(big) = outs
                .iter()
                .find(|o| o.shape.iter().product::<usize>() > max)
            {
                return Err(EngineError::LimitExceeded(format!(
                    "node `{}` computed a tensor of {} elements, the limit is {max}",
                    step.name,
                    big.shape.iter().product::<usize>()
                )));
            }
        }
        for (s, v) in step.outputs.iter().zip(outs) {
            vals[*s] = Some(v);
        }
        for s in &step.inputs {
            if plan.last_use[*s] == i {
                vals[*s] = None;
            }
        }
    }
    plan.outputs
        .iter()
        .map(|(name, s)| {
            konst[*s]
                .cloned()
                .or_else(|| vals[*s].clone())
                .ok_or_else(|| {
                    EngineError::Execution(format!("exact: output `{name}` not computed"))
                })
        })
        .collect()
}

fn run_step(plan: &Plan, step: &Step, x: &[&XT], opt: RunOptions) -> ops::R<Vec<XT>> {
    let one = |r: ops::R<XT>| r.map(|t| vec![t]);
    match &step.kind {
        Kind::Rescale { shift } => one(ops::rescale(*shift, x[0])),
        Kind::Bin { op, shift } => one(ops::bin(*op, *shift, x[0], x[1])),
        Kind::Cmp { op } => one(ops::compare(*op, x[0], x[1])),
        Kind::IntBin { op } => {
            let dt = match plan.slots[step.outputs[0]].ty {
                Ty::Int(dt) => dt,
                _ => DatumType::I64,
            };
            one(ops::int_bin(*op, dt, x[0], x[1]))
        }
        Kind::BoolBin { op } => one(ops::bool_bin(*op, x[0], x[1])),
        Kind::Not => one(ops::not(x[0])),
        Kind::Where => one(ops::where_(x[0], x[1], x[2])),
        Kind::Unary { op } => one(ops::unary(op, x[0])),
        Kind::Table { table, fx } => one(ops::table(table, *fx, x[0])),
        Kind::Cast { from, to } => one(ops::cast(*from, *to, x[0])),
        Kind::MatMul(p) => {
            let mut it = x.iter();
            let a = if p.a_const.is_none() {
                it.next().copied()
            } else {
                None
            };
            let b = if p.b_const.is_none() {
                it.next().copied()
            } else {
                None
            };
            one(p.run(a, b, opt))
        }
        Kind::Conv(p) => one(p.run(x[0], opt)),
        Kind::Pool(p) => one(p.run(x[0])),
        Kind::Deconv(p) => one(p.run(x[0])),
        Kind::Resize(p) => one(p.run(x[0])),
        Kind::Reduce { axes, red } => one(super::reduce::reduce(axes, *red, x[0])),
        Kind::Softmax { axis, fo, log } => {
            let fx = match plan.slots[step.inputs[0]].ty {
                Ty::Fixed(f) => f,
                _ => return Err("internal: softmax of a non fixed-point value".into()),
            };
            if *log {
                one(super::reduce::log_softmax(*axis, fx, *fo, x[0]))
            } else {
                one(super::reduce::softmax(*axis, fx, *fo, x[0]))
            }
        }
        Kind::Tract(op) => {
            let r = tract_eval(plan, step, &**op, x);
            super::linalg::clear_simd_state();
            r
        }
        Kind::Tree(p) => p.run(x[0]),
        Kind::Scan(p) => p.run(x, opt),
        Kind::Lstm { hidden, f } => super::scan::lstm_epilogue(*hidden, *f, x[0], x[1]),
    }
}

/// Evaluates a data-movement or integer operator with tract.
fn tract_eval(plan: &Plan, step: &Step, op: &dyn TypedOp, x: &[&XT]) -> ops::R<Vec<XT>> {
    let err = |e: TractError| chain(&e);
    let mut inputs: TVec<TValue> = tvec!();
    for (t, s) in x.iter().zip(&step.inputs) {
        let tt = match (&t.data, plan.slots[*s].ty) {
            (Data::I64(v), Ty::Int(dt)) => {
                let t64 = Tensor::from_shape(&t.shape, v).map_err(err)?;
                if dt == DatumType::I64 || dt == DatumType::TDim {
                    t64
                } else {
                    t64.cast_to_dt(dt).map_err(err)?.into_owned()
                }
            }
            (Data::I64(v), _) => Tensor::from_shape(&t.shape, v).map_err(err)?,
            (Data::Bool(v), _) => Tensor::from_shape(&t.shape, v).map_err(err)?,
        };
        inputs.push(tt.into_tvalue());
    }
    let outs = op
        .eval_out_of_plan(inputs)
        .map_err(err)?
        .ok_or_else(|| "the operator cannot be evaluated outside a plan".to_string())?;
    let mut res = vec![];
    for (o, s) in outs.into_iter().zip(&step.outputs) {
        let shape = o.shape().to_vec();
        let xt = match plan.slots[*s].ty {
            Ty::Fixed(_) | Ty::Int(_) => {
                let c = o.cast_to::<i64>().map_err(err)?;
                let v = c
                    .try_as_plain_ram()
                    .and_then(|p| p.as_slice::<i64>().map(|s| s.to_vec()))
                    .map_err(err)?;
                XT::i64(shape, v)
            }
            Ty::Bool => {
                let c = o.cast_to::<bool>().map_err(err)?;
                let v = c
                    .try_as_plain_ram()
                    .and_then(|p| p.as_slice::<bool>().map(|s| s.to_vec()))
                    .map_err(err)?;
                XT::bool(shape, v)
            }
        };
        res.push(xt);
    }
    Ok(res)
}
