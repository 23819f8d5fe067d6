//! The exact-mode [`Engine`]: a bounded cache of compiled models, run under
//! the same [`Limits`] as the float engine (model and input size, the
//! largest tensor a step computes, and a deadline checked between steps).

use super::linalg::RunOptions;
use super::run::ExactModel;
use super::ExactParams;
use crate::lru::Lru;
use crate::model::ModelInfo;
use crate::tract_engine::check_input_size;
use crate::{Engine, EngineError, Limits};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use verity_primitives::Tensors;

/// An [`Engine`] running models in exact mode, with a bounded cache of
/// compiled models keyed by the caller's model key, applying [`Limits`] to
/// [`Engine::run`] as [`crate::TractEngine`] does: `max_exec_time` and
/// `max_tensor_elements` are checked between the steps of the exact plan
/// (loop bodies included), so a run overshoots its deadline by at most one
/// step. Compiling a model for new input shapes is not counted.
pub struct ExactEngine {
    params: ExactParams,
    limits: Limits,
    models: Mutex<Lru<[u8; 32], Arc<ExactModel>>>,
    /// Why recently refused models do not compile: a refusal is remembered
    /// (bounded), so asking again for a model that cannot compile costs a
    /// lookup, not a compile. Compiling is deterministic, so the answer
    /// cannot change.
    refusals: Mutex<Lru<[u8; 32], EngineError>>,
    compiles: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ExactEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactEngine")
            .field("params", &self.params)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for ExactEngine {
    fn default() -> Self {
        Self::new(ExactParams::default())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ExactEngine {
    /// An engine compiling with `params`, with default [`Limits`].
    pub fn new(params: ExactParams) -> Self {
        Self::with_limits(params, Limits::default())
    }

    /// An engine compiling with `params` and applying `limits` to
    /// [`Engine::run`].
    pub fn with_limits(params: ExactParams, limits: Limits) -> Self {
        Self {
            params,
            limits,
            models: Mutex::new(Lru::new(16)),
            refusals: Mutex::new(Lru::new(256)),
            compiles: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The limits [`Engine::run`] applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The compiled model for `onnx` (whose content hash is `model_key`),
    /// from the cache or compiled now.
    pub fn model(&self, model_key: &[u8; 32], onnx: &[u8]) -> Result<Arc<ExactModel>, EngineError> {
        if let Some(m) = lock(&self.models).get(model_key) {
            return Ok(m);
        }
        if let Some(e) = lock(&self.refusals).get(model_key) {
            return Err(e);
        }
        self.compiles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match ExactModel::compile(onnx, &self.params) {
            Ok(m) => {
                let m = Arc::new(m);
                lock(&self.models).insert(*model_key, m.clone());
                Ok(m)
            }
            Err(e) => {
                lock(&self.refusals).insert(*model_key, e.clone());
                Err(e)
            }
        }
    }

    /// How many compiles this engine has run (cache misses).
    pub fn compiles(&self) -> u64 {
        self.compiles.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Engine for ExactEngine {
    fn inspect(&self, onnx: &[u8]) -> Result<ModelInfo, EngineError> {
        let m = ExactModel::compile(onnx, &self.params)?;
        Ok(m.info().clone())
    }

    fn run(
        &self,
        model_key: &[u8; 32],
        onnx: &[u8],
        input: &Tensors,
    ) -> Result<Tensors, EngineError> {
        let limits = &self.limits;
        if onnx.len() > limits.max_model_bytes {
            return Err(EngineError::LimitExceeded(format!(
                "model is {} bytes, the limit is {}",
                onnx.len(),
                limits.max_model_bytes
            )));
        }
        check_input_size(input, limits)?;
        let model = self.model(model_key, onnx)?;
        let opt = RunOptions {
            deadline: Some(Instant::now() + limits.max_exec_time),
            max_tensor_elements: Some(limits.max_tensor_elements),
            ..RunOptions::default()
        };
        model.run_with(input, opt)
    }
}
