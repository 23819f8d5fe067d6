//! API errors: `{"error": {"code", "message"}}` with a fitting status.

use crate::{audit::BundleError, mempool::MempoolError, state::SubmitError};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use verity_ledger::TxError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn bad_request(code: &str, m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, m)
    }
    pub fn not_found(code: &str, m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, m)
    }
    pub fn internal(m: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<TxError> for ApiError {
    fn from(e: TxError) -> Self {
        let status = match &e {
            TxError::UnknownModel(_) | TxError::UnknownRequest(_) => StatusCode::NOT_FOUND,
            TxError::NonceReused { .. } | TxError::ModelExists(_) | TxError::NameTaken(_) => {
                StatusCode::CONFLICT
            }
            TxError::InsufficientBalance { .. } | TxError::FeeTooLow { .. } => {
                StatusCode::PAYMENT_REQUIRED
            }
            TxError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            TxError::ModelRejected { code, .. } if *code == "limit_exceeded" => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            TxError::ModelRejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            TxError::InvalidModel(_)
            | TxError::InvalidInput(_)
            | TxError::UnsupportedMode(_)
            | TxError::ZkUnsupported(_) => StatusCode::UNPROCESSABLE_ENTITY,
            TxError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Tx(t) => t.into(),
            SubmitError::Mempool(m) => match m {
                MempoolError::Full => Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "mempool_full",
                    m.to_string(),
                ),
                MempoolError::TooLarge { .. } => {
                    Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m.to_string())
                }
                MempoolError::SenderLimit { .. } => {
                    Self::new(StatusCode::TOO_MANY_REQUESTS, "sender_limit", m.to_string())
                }
                MempoolError::PendingExceedsBalance { .. } => Self::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "insufficient_balance",
                    m.to_string(),
                ),
                _ => Self::new(StatusCode::CONFLICT, "duplicate", m.to_string()),
            },
            SubmitError::Engine(en) => {
                let status = match en {
                    verity_engine::EngineError::LimitExceeded(_) => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                Self::new(status, en.code(), en.to_string())
            }
            SubmitError::Manifest(m) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest", m)
            }
        }
    }
}

impl From<BundleError> for ApiError {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::NotFound(_) => Self::not_found("unknown_receipt", e.to_string()),
            BundleError::NotFinal(_) => Self::new(StatusCode::ACCEPTED, "not_final", e.to_string()),
            BundleError::Internal(m) => Self::internal(m),
        }
    }
}

impl From<verity_ledger::LedgerError> for ApiError {
    fn from(e: verity_ledger::LedgerError) -> Self {
        Self::internal(e)
    }
}
