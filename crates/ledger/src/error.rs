//! Ledger errors.

use thiserror::Error;
use verity_primitives::Amount;

/// Why a transaction is not accepted. The `code` is stable and used by the
/// API and CLI.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TxError {
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("wrong chain id {got}, this network is {expected}")]
    WrongChain { expected: u64, got: u64 },
    #[error("nonce {got} already used (account nonce is {expected})")]
    NonceReused { expected: u64, got: u64 },
    #[error("nonce {got} is ahead of the account nonce {expected}")]
    NonceGap { expected: u64, got: u64 },
    #[error("insufficient balance: need {need}, have {have}")]
    InsufficientBalance { need: Amount, have: Amount },
    #[error("unknown model {0}")]
    UnknownModel(String),
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("model {0} is already published")]
    ModelExists(String),
    #[error("name {0} is already taken")]
    NameTaken(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("mode {0} is not supported by this network yet")]
    UnsupportedMode(String),
    /// The reason names the operators (it comes from the prover).
    #[error("{0}")]
    ZkUnsupported(String),
    #[error("max_fee {max_fee} is below the model price {price}")]
    FeeTooLow { max_fee: Amount, price: Amount },
    #[error("unknown request {0}")]
    UnknownRequest(String),
    #[error("invalid result: {0}")]
    InvalidResult(String),
    #[error("transaction too large: {0}")]
    TooLarge(String),
    /// The model's bytes were refused by the engine; `code` is the
    /// engine's (for example `unsupported_op`).
    #[error("{message}")]
    ModelRejected { code: &'static str, message: String },
}

impl TxError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::BadSignature(_) => "bad_signature",
            TxError::WrongChain { .. } => "wrong_chain",
            TxError::NonceReused { .. } => "nonce_reused",
            TxError::NonceGap { .. } => "nonce_gap",
            TxError::InsufficientBalance { .. } => "insufficient_balance",
            TxError::UnknownModel(_) => "unknown_model",
            TxError::InvalidModel(_) => "invalid_model",
            TxError::ModelExists(_) => "model_exists",
            TxError::NameTaken(_) => "name_taken",
            TxError::InvalidInput(_) => "invalid_input",
            TxError::UnsupportedMode(_) => "unsupported_mode",
            TxError::ZkUnsupported(_) => "zk_unsupported",
            TxError::FeeTooLow { .. } => "fee_too_low",
            TxError::UnknownRequest(_) => "unknown_request",
            TxError::InvalidResult(_) => "invalid_result",
            TxError::TooLarge(_) => "too_large",
            TxError::ModelRejected { code, .. } => code,
        }
    }
}

/// Failures of the ledger itself (storage, corruption, misuse).
#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("storage: {0}")]
    Storage(String),
    #[error("corrupt state: {0}")]
    Corrupt(String),
    #[error("block {got} out of order: next height is {expected}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("genesis mismatch: {0}")]
    Genesis(String),
    #[error(transparent)]
    ModelStore(#[from] crate::ModelStoreError),
    #[error(transparent)]
    Zk(#[from] crate::ZkError),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for LedgerError {
            fn from(e: $t) -> Self { LedgerError::Storage(e.to_string()) }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
