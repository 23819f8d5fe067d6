//! Errors of model registration, proving and verification.

use thiserror::Error;

/// A model that cannot be registered for proving.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error("the model has no layers")]
    Empty,
    #[error("input length must be at least 1")]
    EmptyInput,
    #[error("input_bits must be in 1..=32, got {0}")]
    InputBits(u32),
    #[error("layer {layer}: {reason}")]
    Layer { layer: usize, reason: String },
    #[error("the model is too large: {0}")]
    TooLarge(String),
    #[error("output layout: {0}")]
    Layout(&'static str),
}

/// Why a proof could not be produced (the inference itself is outside the exact semantics).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProveError {
    #[error("input has {got} values, the model takes {expected}")]
    InputLength { expected: usize, got: usize },
    #[error("input value {value} at {index} is outside [-2^{bits_minus_one}, 2^{bits_minus_one})")]
    InputRange {
        index: usize,
        value: i64,
        bits_minus_one: u32,
    },
    #[error("layer {layer}: value {value} at {index} is outside the layer's range ({what})")]
    OutOfRange {
        layer: usize,
        index: usize,
        value: i64,
        what: &'static str,
    },
    #[error("layer {layer}: integer overflow")]
    Overflow { layer: usize },
    #[error("a random challenge hit a pole (probability ~2^-100); retry with another input")]
    Unlucky,
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    #[error("the proof is malformed: {0}")]
    Malformed(&'static str),
    #[error("unsupported proof version {0}")]
    Version(u8),
    #[error("the statement is malformed: {0}")]
    Statement(String),
    #[error("sumcheck failed: {0}")]
    Sumcheck(&'static str),
    #[error("lookup argument failed: {0}")]
    Lookup(&'static str),
    #[error("polynomial commitment opening failed: {0}")]
    Pcs(&'static str),
    #[error("claim check failed: {0}")]
    Claim(&'static str),
    #[error("output layout: {0}")]
    Layout(&'static str),
    /// A bug in the verifier, caught: the proof is rejected, never accepted.
    #[error("internal error: the verifier panicked on this proof")]
    Panicked,
}

/// A byte string that is not a valid encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("decode error: {0}")]
pub struct DecodeError(pub &'static str);
