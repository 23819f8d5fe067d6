//! Engine errors.

/// Why a model could not be loaded or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The bytes are not a usable ONNX model (not protobuf, truncated, no
    /// graph, inconsistent graph, unsupported element type at the boundary).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// The model uses an operator this engine cannot load.
    #[error("unsupported operator `{op}`: {reason}")]
    UnsupportedOp {
        /// The operator as `domain:OpType`, e.g. `ai.onnx.ml:ZipMap`.
        op: String,
        /// Why: not implemented, or the attribute values it cannot handle.
        reason: String,
    },
    /// The input does not match the model's schema.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A size or time limit was exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The model failed while being prepared for these shapes or run.
    #[error("execution failed: {0}")]
    Execution(String),
}

impl EngineError {
    /// A short machine-readable name of the variant.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::InvalidModel(_) => "invalid_model",
            EngineError::UnsupportedOp { .. } => "unsupported_op",
            EngineError::InvalidInput(_) => "invalid_input",
            EngineError::LimitExceeded(_) => "limit_exceeded",
            EngineError::Execution(_) => "execution",
        }
    }
}

/// Formats a tract error with its whole context chain on one line.
pub(crate) fn chain(e: &tract_onnx::prelude::TractError) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p == &s) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Text of a panic payload.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
