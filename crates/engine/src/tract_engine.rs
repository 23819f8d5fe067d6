//! The tract-backed [`Engine`]: plan cache, limits, deadline, timings.

use crate::convert::{datum_type, from_tract, to_tract, validate_input};
use crate::error::{chain, panic_message};
use crate::lru::Lru;
use crate::model::{self, ModelInfo};
use crate::{Engine, EngineError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::SimpleState;
use tract_onnx::Onnx;
use verity_primitives::Tensors;

/// Per-request limits.
///
/// The time limit is a deadline checked by the plan runner before each node
/// of the graph is evaluated (tract has no preemption): a run stops with
/// [`EngineError::LimitExceeded`] at the first node boundary after the
/// deadline, so it can overshoot by at most one node's evaluation. Nodes
/// inside loop bodies (`Scan`, `Loop`) are not checked individually. Loading
/// and optimizing a model for a new input shape is not counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest ONNX file accepted.
    pub max_model_bytes: usize,
    /// Most input elements, all input tensors together.
    pub max_input_elements: usize,
    /// Most input bytes (elements times element size), all inputs together.
    pub max_input_bytes: usize,
    /// Most elements of any single tensor the plan computes (intermediates
    /// and outputs): checked when the plan is prepared wherever the shape is
    /// known then, before each node whose output shape depends on input
    /// values (from the actual inputs), and on the outputs after the run.
    pub max_tensor_elements: usize,
    /// Deadline for one execution (see the type's documentation).
    pub max_exec_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_model_bytes: 256 << 20,
            max_input_elements: 16 << 20,
            max_input_bytes: 64 << 20,
            max_tensor_elements: 256 << 20,
            max_exec_time: Duration::from_secs(30),
        }
    }
}

/// A model loaded into tract, shapes not fixed yet.
struct LoadedModel {
    info: Arc<ModelInfo>,
    model: InferenceModel,
}

/// Plans are cached per content hash and input shapes (in input order).
type PlanKey = ([u8; 32], Vec<Vec<usize>>);

/// The tract-backed engine.
///
/// Caches loaded models per content hash and optimized plans per content hash
/// and input shapes (models declare symbolic batch dimensions, a plan is built
/// for concrete shapes); both caches are bounded and evict the least recently
/// used entry.
pub struct TractEngine {
    limits: Limits,
    onnx: Onnx,
    models: Mutex<Lru<[u8; 32], Arc<LoadedModel>>>,
    plans: Mutex<Lru<PlanKey, Arc<PreparedModel>>>,
}

impl std::fmt::Debug for TractEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractEngine")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for TractEngine {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TractEngine {
    /// Default cache sizes: loaded models and prepared plans.
    pub const DEFAULT_MODEL_CACHE: usize = 16;
    /// Default number of cached plans.
    pub const DEFAULT_PLAN_CACHE: usize = 64;

    /// An engine applying `limits` to [`Engine::run`] calls.
    pub fn new(limits: Limits) -> Self {
        Self::with_cache_capacity(limits, Self::DEFAULT_MODEL_CACHE, Self::DEFAULT_PLAN_CACHE)
    }

    /// An engine with the given cache capacities (at least 1 each).
    pub fn with_cache_capacity(limits: Limits, models: usize, plans: usize) -> Self {
        Self {
            limits,
            onnx: model::framework(),
            models: Mutex::new(Lru::new(models)),
            plans: Mutex::new(Lru::new(plans)),
        }
    }

    /// The limits [`Engine::run`] applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of prepared plans in the cache.
    pub fn cached_plans(&self) -> usize {
        lock(&self.plans).len()
    }

    fn loaded(
        &self,
        key: &[u8; 32],
        onnx: &[u8],
        limits: &Limits,
    ) -> Result<Arc<LoadedModel>, EngineError> {
        if onnx.len() > limits.max_model_bytes {
            return Err(EngineError::LimitExceeded(format!(
                "model is {} bytes, the limit is {}",
                onnx.len(),
                limits.max_model_bytes
            )));
        }
        if let Some(m) = lock(&self.models).get(key) {
            return Ok(m);
        }
        let proto = model::decode(onnx, limits.max_model_bytes)?;
        model::check_supported(&proto, &self.onnx)?;
        let info = model::describe(&proto)?;
        let model = model::load(&proto, &self.onnx)?;
        let loaded = Arc::new(LoadedModel {
            info: Arc::new(info),
            model,
        });
        lock(&self.models).insert(*key, loaded.clone());
        Ok(loaded)
    }

    /// Loads the model (or takes it from the cache), checks `input` against
    /// its schema and `limits`, and returns the plan for `input`'s shapes (or
    /// takes it from the cache). `input`'s values are not used.
    pub fn prepare_with_limits(
        &self,
        model_key: &[u8; 32],
        onnx: &[u8],
        input: &Tensors,
        limits: &Limits,
    ) -> Result<Arc<PreparedModel>, EngineError> {
        check_input_size(input, limits)?;
        let loaded = self.loaded(model_key, onnx, limits)?;
        validate_input(&loaded.info.inputs, input)?;
        let shapes: Vec<Vec<usize>> = loaded
            .info
            .inputs
            .iter()
            .map(|s| input.0[&s.name].shape.clone())
            .collect();
        let key = (*model_key, shapes);
        if let Some(p) = lock(&self.plans).get(&key) {
            p.check_tensor_sizes(limits)?;
            return Ok(p);
        }
        let prepared = Arc::new(PreparedModel::build(&loaded, &key.1)?);
        prepared.check_tensor_sizes(limits)?;
        lock(&self.plans).insert(key, prepared.clone());
        Ok(prepared)
    }

    /// [`TractEngine::prepare_with_limits`] with the engine's limits: the
    /// entry point for benchmarks (see [`PreparedModel::time_runs`]).
    pub fn prepare(
        &self,
        model_key: &[u8; 32],
        onnx: &[u8],
        input: &Tensors,
    ) -> Result<Arc<PreparedModel>, EngineError> {
        self.prepare_with_limits(model_key, onnx, input, &self.limits)
    }

    /// [`Engine::run`] with explicit limits.
    pub fn run_with_limits(
        &self,
        model_key: &[u8; 32],
        onnx: &[u8],
        input: &Tensors,
        limits: &Limits,
    ) -> Result<Tensors, EngineError> {
        let prepared = self.prepare_with_limits(model_key, onnx, input, limits)?;
        let deadline = Instant::now() + limits.max_exec_time;
        prepared.run_checked(input, Some(deadline), limits)
    }
}

impl Engine for TractEngine {
    fn inspect(&self, onnx: &[u8]) -> Result<ModelInfo, EngineError> {
        let proto = model::decode(onnx, self.limits.max_model_bytes)?;
        model::check_supported(&proto, &self.onnx)?;
        let info = model::describe(&proto)?;
        model::load(&proto, &self.onnx)?;
        Ok(info)
    }

    fn run(
        &self,
        model_key: &[u8; 32],
        onnx: &[u8],
        input: &Tensors,
    ) -> Result<Tensors, EngineError> {
        self.run_with_limits(model_key, onnx, input, &self.limits)
    }
}

pub(crate) fn check_input_size(input: &Tensors, limits: &Limits) -> Result<(), EngineError> {
    let elements = input.total_len();
    if elements > limits.max_input_elements {
        return Err(EngineError::LimitExceeded(format!(
            "input has {elements} elements, the limit is {}",
            limits.max_input_elements
        )));
    }
    let bytes: usize = input
        .0
        .values()
        .map(|t| t.len().saturating_mul(t.dtype().size()))
        .fold(0usize, usize::saturating_add);
    if bytes > limits.max_input_bytes {
        return Err(EngineError::LimitExceeded(format!(
            "input is {bytes} bytes, the limit is {}",
            limits.max_input_bytes
        )));
    }
    Ok(())
}

/// The error the plan runner raises when the deadline has passed.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// The error the plan runner raises before a node would compute a tensor
/// over the size limit.
#[derive(Debug)]
struct TooLarge(String);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TooLarge {}

/// Before a node whose output shape was unknown at preparation (it depends
/// on input values: ConstantOfShape, Expand, Range, ...), computes its output
/// shapes from the actual inputs (small inputs by value) and refuses the node
/// if one exceeds `max` elements. Inconclusive cases are let through.
fn check_dynamic_output(node: &TypedNode, inputs: &[TValue], max: usize) -> TractResult<()> {
    if inputs.iter().any(|t| !t.is_plain()) {
        return Ok(());
    }
    let facts: TVec<TypedFact> = inputs
        .iter()
        .map(|t| {
            let by_value = (t.len() <= 64)
                .then(|| TypedFact::try_from(t.clone().into_arc_tensor()).ok())
                .flatten();
            by_value.unwrap_or_else(|| TypedFact::shape_and_dt_of(t))
        })
        .collect();
    let refs: TVec<&TypedFact> = facts.iter().collect();
    let outs = catch_unwind(AssertUnwindSafe(|| node.op.output_facts(&refs)));
    let Ok(Ok(outs)) = outs else {
        return Ok(());
    };
    for f in outs {
        if let Some(shape) = f.shape.as_concrete() {
            let n = shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d));
            if n.is_none_or(|n| n > max) {
                return Err(TractError::new(TooLarge(format!(
                    "node `{}` would compute a tensor of shape {shape:?}, the limit is {max} elements",
                    node.name
                ))));
            }
        }
    }
    Ok(())
}

/// An optimized plan of one model for fixed input shapes.
pub struct PreparedModel {
    info: Arc<ModelInfo>,
    shapes: Vec<Vec<usize>>,
    plan: Arc<TypedRunnableModel>,
    /// Per node id: an output shape was unknown when the plan was built.
    dynamic: Vec<bool>,
    /// Largest tensor the plan computes whose size was known when it was
    /// built, and the node producing it.
    largest: (usize, String),
}

impl std::fmt::Debug for PreparedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedModel")
            .field("inputs", &self.info.inputs)
            .field("shapes", &self.shapes)
            .finish_non_exhaustive()
    }
}

impl PreparedModel {
    fn build(loaded: &LoadedModel, shapes: &[Vec<usize>]) -> Result<Self, EngineError> {
        let what = || format!("preparing the model for input shapes {shapes:?}");
        let res = catch_unwind(AssertUnwindSafe(|| -> TractResult<_> {
            let mut m = loaded.model.clone();
            for (ix, (spec, shape)) in loaded.info.inputs.iter().zip(shapes).enumerate() {
                let fact = InferenceFact::dt_shape(datum_type(spec.dtype), shape.clone());
                m.set_input_fact(ix, fact)?;
            }
            let typed = m.into_optimized()?;
            let mut largest = (0usize, String::new());
            let mut dynamic = vec![false; typed.nodes().len()];
            for node in typed.nodes() {
                for o in &node.outputs {
                    if o.fact.shape.as_concrete().is_none() {
                        dynamic[node.id] = true;
                    }
                    if let Some(s) = o.fact.shape.as_concrete() {
                        let n = s.iter().try_fold(1usize, |a, d| a.checked_mul(*d));
                        let n = n.unwrap_or(usize::MAX);
                        if n > largest.0 {
                            largest = (n, node.name.clone());
                        }
                    }
                }
            }
            Ok((typed.into_runnable()?, largest, dynamic))
        }));
        let (plan, largest, dynamic) = match res {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Err(EngineError::Execution(format!("{}: {}", what(), chain(&e)))),
            Err(p) => {
                return Err(EngineError::Execution(format!(
                    "{}: panicked: {}",
                    what(),
                    panic_message(&*p)
                )))
            }
        };
        if plan.model().inputs.len() != shapes.len()
            || plan.model().outputs.len() != loaded.info.outputs.len()
        {
            return Err(EngineError::InvalidModel(
                "the loaded graph's inputs or outputs differ from the declared ones".into(),
            ));
        }
        Ok(Self {
            info: loaded.info.clone(),
            shapes: shapes.to_vec(),
            plan,
            dynamic,
            largest,
        })
    }

    fn check_tensor_sizes(&self, limits: &Limits) -> Result<(), EngineError> {
        if self.largest.0 > limits.max_tensor_elements {
            return Err(EngineError::LimitExceeded(format!(
                "node `{}` would compute a tensor of {} elements, the limit is {}",
                self.largest.1, self.largest.0, limits.max_tensor_elements
            )));
        }
        Ok(())
    }

    /// What the model declares.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The input shapes this plan is for, in the order of `info().inputs`.
    pub fn input_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Checks `input` (schema and this plan's shapes) and converts it.
    fn convert_input(&self, input: &Tensors) -> Result<TVec<TValue>, EngineError> {
        validate_input(&self.info.inputs, input)?;
        let mut values = tvec!();
        for (spec, shape) in self.info.inputs.iter().zip(&self.shapes) {
            let t = &input.0[&spec.name];
            if &t.shape != shape {
                return Err(EngineError::InvalidInput(format!(
                    "input `{}`: this plan is for shape {shape:?}, got {:?}",
                    spec.name, t.shape
                )));
            }
            let tt = to_tract(t).map_err(|e| EngineError::InvalidInput(chain(&e)))?;
            values.push(tt.into_tvalue());
        }
        Ok(values)
    }

    fn execute(
        &self,
        state: &mut TypedSimpleState,
        inputs: TVec<TValue>,
        deadline: Option<Instant>,
        max_elements: usize,
    ) -> Result<TVec<TValue>, EngineError> {
        let res = catch_unwind(AssertUnwindSafe(|| {
            state.run_plan_with_eval(inputs, |ctx, op_state, node, inputs| {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(TractError::new(DeadlineExceeded));
                }
                if self.dynamic.get(node.id).copied().unwrap_or(true) {
                    check_dynamic_output(node, &inputs, max_elements)?;
                }
                tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs)
            })
        }));
        match res {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) if e.downcast_ref::<DeadlineExceeded>().is_some() => Err(
                EngineError::LimitExceeded("execution deadline exceeded".into()),
            ),
            Ok(Err(e)) => match e.downcast_ref::<TooLarge>() {
                Some(TooLarge(m)) => Err(EngineError::LimitExceeded(m.clone())),
                None => Err(EngineError::Execution(chain(&e))),
            },
            Err(p) => Err(EngineError::Execution(format!(
                "panicked: {}",
                panic_message(&*p)
            ))),
        }
    }

    fn spawn(&self) -> Result<TypedSimpleState, EngineError> {
        SimpleState::new(&self.plan).map_err(|e| EngineError::Execution(chain(&e)))
    }

    fn outputs(&self, out: TVec<TValue>, limits: &Limits) -> Result<Tensors, EngineError> {
        let mut res = Tensors::default();
        for (spec, v) in self.info.outputs.iter().zip(out.iter()) {
            if v.len() > limits.max_tensor_elements {
                return Err(EngineError::LimitExceeded(format!(
                    "output `{}` has {} elements, the limit is {}",
                    spec.name,
                    v.len(),
                    limits.max_tensor_elements
                )));
            }
            let t = from_tract(v, Some(spec.dtype))
                .map_err(|e| EngineError::Execution(format!("output `{}`: {e}", spec.name)))?;
            res.0.insert(spec.name.clone(), t);
        }
        Ok(res)
    }

    fn run_checked(
        &self,
        input: &Tensors,
        deadline: Option<Instant>,
        limits: &Limits,
    ) -> Result<Tensors, EngineError> {
        let values = self.convert_input(input)?;
        let mut state = self.spawn()?;
        let out = self.execute(&mut state, values, deadline, limits.max_tensor_elements)?;
        self.outputs(out, limits)
    }

    /// Runs the plan once on `input` (which must have this plan's shapes),
    /// with `deadline` if given and default limits on the outputs.
    pub fn run(&self, input: &Tensors, deadline: Option<Instant>) -> Result<Tensors, EngineError> {
        self.run_checked(input, deadline, &Limits::default())
    }

    /// Times repeated executions of the plan on `input`: one untimed warm-up
    /// run, then up to `runs` timed runs, stopping early once `max_total` has
    /// been spent (at least one timed run). Only the plan execution is
    /// timed: the input is converted once, outputs are not converted back.
    pub fn time_runs(
        &self,
        input: &Tensors,
        runs: usize,
        max_total: Duration,
    ) -> Result<RunTimings, EngineError> {
        let values = self.convert_input(input)?;
        let mut state = self.spawn()?;
        let max = Limits::default().max_tensor_elements;
        self.execute(&mut state, values.clone(), None, max)?;
        let start = Instant::now();
        let mut samples = Vec::with_capacity(runs.min(1 << 16));
        while samples.len() < runs.max(1) {
            let t = Instant::now();
            self.execute(&mut state, values.clone(), None, max)?;
            samples.push(t.elapsed());
            if start.elapsed() >= max_total {
                break;
            }
        }
        Ok(RunTimings { samples })
    }
}

/// Durations of timed runs, in run order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunTimings {
    /// One duration per run.
    pub samples: Vec<Duration>,
}

impl RunTimings {
    /// The `p`-th percentile (0..=100, nearest rank) of the samples.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        if s.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * (s.len() - 1) as f64).round() as usize;
        s[rank.min(s.len() - 1)]
    }

    /// The median sample.
    pub fn median(&self) -> Duration {
        self.percentile(50.0)
    }

    /// The mean of the samples.
    pub fn mean(&self) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        self.samples.iter().sum::<Duration>() / self.samples.len() as u32
    }
}
