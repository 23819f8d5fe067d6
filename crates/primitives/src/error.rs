//! Error types of the primitives.

use thiserror::Error;

/// A tensor failed validation.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TensorError {
    #[error("tensor `{name}`: shape {shape:?} holds {expected} values but data has {actual}")]
    ShapeMismatch {
        name: String,
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    #[error("tensor `{name}`: unsupported dtype `{dtype}` (supported: float32, float64, int64, int32, int8, uint8, bool)")]
    UnknownDType { name: String, dtype: String },
    #[error("tensor `{name}`: value {value} is not a valid {dtype}")]
    BadValue {
        name: String,
        value: String,
        dtype: &'static str,
    },
    #[error("tensor `{name}`: {reason}")]
    Malformed { name: String, reason: String },
    #[error("tensors too large: {actual} values exceed the limit of {limit}")]
    TooLarge { actual: usize, limit: usize },
}

/// Errors from decoding, ids and signatures.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error(transparent)]
    Tensor(#[from] TensorError),
    #[error("invalid model id `{0}`: {1}")]
    BadModelId(String, &'static str),
    #[error("unsupported encoding version {found} for {what} (expected {expected})")]
    Version {
        what: &'static str,
        found: u8,
        expected: u8,
    },
    #[error("malformed {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("invalid signature: {0}")]
    Signature(String),
    #[error("invalid private key: {0}")]
    Key(String),
}
