//! Verity's shared vocabulary: ids, tensors and their JSON form, transactions,
//! receipts, signatures, Merkle proofs and the canonical (versioned) encoding.
//!
//! This crate is pure: it must not do I/O, spawn tasks or read clocks. Every
//! other crate depends on it, so it stays small and dependency-light.

pub mod block;
pub mod codec;
pub mod error;
pub mod failure;
pub mod ids;
pub mod keys;
pub mod manifest;
pub mod merkle;
pub mod receipt;
pub mod tensor;
pub mod tensor_stream;
pub mod tx;

pub use alloy_primitives::{Address, B256};
pub use block::{BlockHeader, BlockSeed, StateClaim};
pub use error::{Error, TensorError};
pub use failure::{FailureError, InferenceFailure};
pub use ids::ModelId;
pub use keys::{PrivateKey, Signature};
pub use manifest::{Dim, ModelManifest, TensorSpec};
pub use receipt::{Receipt, ReceiptBundle};
pub use tensor::{DType, Tensor, TensorData, Tensors};
pub use tx::{Evidence, InferenceRequest, InferenceResult, Mode, SignedTx, Tx, TxBody};

/// Amounts of the native token, in its smallest unit.
pub type Amount = u128;
