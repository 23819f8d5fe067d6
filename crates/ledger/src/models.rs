//! Where published model bytes go. The ledger hands a publish's bytes to a
//! [`ModelStore`] while it executes the block, before that block commits, so
//! that no committed state ever names a model whose bytes were not stored;
//! bytes of a publish that fails its checks are never stored.

use verity_primitives::ModelId;

/// Durable storage of model bytes (the node wires its Hub).
pub trait ModelStore: Send + Sync {
    /// Stores `bytes` under `id` durably (file and directory synced) and
    /// returns only once they would survive a crash. Idempotent.
    fn store(&self, id: &ModelId, bytes: &[u8]) -> Result<(), ModelStoreError>;
}

/// A model's bytes could not be stored: the block is not committed.
#[derive(Debug, thiserror::Error)]
#[error("storing the bytes of model {model}: {source}")]
pub struct ModelStoreError {
    pub model: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}
