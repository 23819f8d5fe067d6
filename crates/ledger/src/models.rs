//! The ledger's boundary to model work: [`ModelOracle`].
//!
//! Whether a publish is valid depends on what its bytes are, which only an
//! ONNX engine can tell; the ledger asks the oracle, in admission and in
//! block execution alike, so a Byzantine proposer cannot land a manifest
//! that lies about its model, nor bytes that are not a model. The oracle
//! also stores a publish's bytes while the ledger executes the block, before
//! that block commits, so no committed state ever names a model whose bytes
//! were not stored; bytes of a publish that fails its checks are never
//! stored. Both must be deterministic in their outcome: every validator
//! calls them on the same bytes.

use verity_primitives::{ModelId, TensorSpec};

/// What a model's bytes declare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelShape {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Operators, as `domain:OpType` (sorted, unique).
    pub ops: Vec<String>,
}

/// Model work the ledger's rules need (the node wires its engine and Hub).
pub trait ModelOracle: Send + Sync {
    /// Loads `bytes` as a model and says what it declares, or why they are
    /// not a model this network can run.
    fn inspect(&self, bytes: &[u8]) -> Result<ModelShape, InspectError>;

    /// Stores `bytes` under `id` durably (file and directory synced) and
    /// returns only once they would survive a crash. Idempotent.
    fn store(&self, id: &ModelId, bytes: &[u8]) -> Result<(), ModelStoreError>;
}

/// The bytes are not a usable model: the engine's stable error code (for
/// example `unsupported_op`, `limit_exceeded`) and its own error.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct InspectError {
    pub code: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A model's bytes could not be stored: the block is not committed.
#[derive(Debug, thiserror::Error)]
#[error("storing the bytes of model {model}: {source}")]
pub struct ModelStoreError {
    pub model: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}
