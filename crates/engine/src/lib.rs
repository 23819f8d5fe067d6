//! `verity-engine`: runs ONNX models on tensors.
//!
//! What this crate does:
//! - defines the [`Engine`] trait, the boundary between the node and model
//!   execution: [`Engine::inspect`] loads and validates ONNX bytes and
//!   describes them ([`ModelInfo`]: input/output [`TensorSpec`]s and the
//!   operators used), [`Engine::run`] runs a model on JSON-able [`Tensors`];
//! - implements it with tract ([`TractEngine`]): ONNX float semantics, a
//!   bounded cache of prepared plans keyed by content hash and input shapes,
//!   input checks against the model schema before execution, per-request
//!   [`Limits`], and errors (never panics) on bad models or inputs;
//! - adds the `ai.onnx.ml` operators that real exported models (scikit-learn
//!   via skl2onnx) use and tract lacks or implements unsafely ([`ml`]).
//!
//! What it must not do: know about the ledger, consensus, fees, accounts or
//! the network. It sees bytes, a content hash and tensors, and returns tensors
//! or an [`EngineError`]. It does no I/O besides what the caller hands it (ONNX
//! external-data references to files are refused).

#![deny(missing_docs)]

mod convert;
mod error;
pub mod exact;
mod lru;
pub mod ml;
mod model;
mod tract_engine;

pub use convert::validate_input;
pub use error::EngineError;
pub use exact::{compiled_id, ExactEngine, ExactModel, ExactOutput, ExactParams, RunOptions};
pub use model::ModelInfo;
pub use tract_engine::{Limits, PreparedModel, RunTimings, TractEngine};
pub use verity_primitives::{DType, Dim, Tensor, TensorData, TensorSpec, Tensors};

/// A model executor.
///
/// Implementations are shared between threads; every method takes `&self`.
pub trait Engine: Send + Sync {
    /// Loads and validates ONNX bytes and describes the model: its inputs and
    /// outputs (graph inputs fed by initializers are not inputs) and the
    /// sorted, unique list of operators used as `domain:OpType` (the default
    /// domain written `ai.onnx`), subgraphs included.
    fn inspect(&self, onnx: &[u8]) -> Result<ModelInfo, EngineError>;

    /// Runs the model `onnx`, whose content hash is `model_key`, on `input`.
    /// The caller guarantees that `model_key` identifies `onnx` (the engine
    /// caches per key and does not rehash). Returns the outputs keyed by the
    /// model's output names.
    fn run(
        &self,
        model_key: &[u8; 32],
        onnx: &[u8],
        input: &Tensors,
    ) -> Result<Tensors, EngineError>;
}
