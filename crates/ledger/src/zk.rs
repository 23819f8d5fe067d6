//! The zk-mode boundary. The ledger checks proofs through [`ZkVerifier`], implemented
//! outside it (the node wires `verity-prover`); it stores each model's zk registration
//! (the digest of its model commitment, or why it cannot be proven) in the state, once.

use crate::apply::{Exec, Failure};
use crate::store::INPUTS;
use crate::{Ledger, LedgerError, TxError};
use borsh::{BorshDeserialize, BorshSerialize};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use verity_primitives::{codec::Canonical, ModelId, Tensors, B256};

/// Registers models for zk mode and verifies proofs. Both must be deterministic: every
/// validator calls them while executing the same block.
pub trait ZkVerifier: Send + Sync {
    /// The digest of `model`'s zk model commitment, or why the proof system cannot cover
    /// it (naming the operators). `Err` is a local failure (the model's bytes cannot be
    /// read), which must not become state.
    fn register(&self, model: &ModelId) -> Result<Registration, ZkError>;

    /// Checks a proof file: its commitment is `commitment`, its compiled model is
    /// `compiled_model`, its statement is exact mode's `input` and `output`, and the proof
    /// verifies.
    fn verify(
        &self,
        commitment: &B256,
        compiled_model: &B256,
        input: &Tensors,
        output: &Tensors,
        proof: &[u8],
    ) -> Result<(), ZkError>;
}

/// What registering a model for zk mode found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Provable; the digest of its model commitment.
    Ready(B256),
    /// Not provable, and why (the prover's reason, naming the operators).
    Refused(String),
}

/// A failure at the zk boundary, with the prover's own error as its source.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// This node cannot read the model's bytes (a local fault, never state).
    #[error("the model's bytes cannot be read: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The proof does not check.
    #[error("{0}")]
    Rejected(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The prover or verifier panicked on this model or proof.
    #[error("the proof system failed on this model or proof")]
    Panicked,
}

impl From<Registration> for ZkStatus {
    fn from(r: Registration) -> Self {
        match r {
            Registration::Ready(commitment) => ZkStatus::Ready { commitment },
            Registration::Refused(reason) => ZkStatus::Refused { reason },
        }
    }
}

/// A model's zk registration, stored under `zk/<model>`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ZkStatus {
    /// Provable; the digest of its model commitment.
    Ready { commitment: B256 },
    /// Not provable, and why.
    Refused { reason: String },
}

impl Canonical for ZkStatus {
    const WHAT: &'static str = "zk registration";
}

pub(crate) fn zk_key(model: &ModelId) -> Vec<u8> {
    crate::apply::key("zk/", &model.to_cid_bytes())
}

impl Exec<'_> {
    /// The request's stored input.
    pub(crate) fn input(&self, rid: &B256) -> Result<Tensors, LedgerError> {
        let t = self.w.open_table(INPUTS)?;
        let v = t
            .get(rid.as_slice())?
            .ok_or_else(|| LedgerError::Corrupt("request without input".into()))?;
        let bytes = v.value();
        bytes
            .split_first()
            .and_then(|(_, rest)| borsh::from_slice(rest).ok())
            .ok_or_else(|| LedgerError::Corrupt("stored tensors".into()))
    }

    /// Registers `model` for zk mode (its commitment, or why it cannot be
    /// proven) in the state. Publishing does this once, right after the
    /// model's bytes are stored, so that zk requests never pay for it.
    pub(crate) fn zk_register(
        &self,
        zk: &dyn ZkVerifier,
        model: &ModelId,
    ) -> Result<ZkStatus, LedgerError> {
        let registered =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| zk.register(model)))
                .unwrap_or_else(|_| Ok(Registration::Refused(ZkError::Panicked.to_string())));
        let st = ZkStatus::from(registered?);
        self.put(&zk_key(model), &st)?;
        Ok(st)
    }

    /// The model's zk commitment. Models published by transaction were
    /// registered at publish; genesis models are registered on first use.
    pub(crate) fn zk_commitment(&self, model: &ModelId) -> Result<B256, Failure> {
        let status = match self.get::<ZkStatus>(&zk_key(model))? {
            Some(s) => s,
            None => {
                let zk = self.zk.ok_or_else(|| {
                    TxError::UnsupportedMode("zk (no proof verifier on this node)".into())
                })?;
                self.zk_register(zk, model)?
            }
        };
        match status {
            ZkStatus::Ready { commitment } => Ok(commitment),
            ZkStatus::Refused { reason } => Err(TxError::ZkUnsupported(reason).into()),
        }
    }
}

impl Ledger {
    /// Whether zk mode can prove `model` (from the stored registration, or a dry run).
    pub(crate) fn zk_admission(&self, model: &ModelId) -> Result<(), TxError> {
        let internal = |e: String| TxError::InvalidInput(format!("ledger unavailable: {e}"));
        let status = match self.zk_status(model).map_err(|e| internal(e.to_string()))? {
            Some(s) => s,
            None => {
                let zk = self.zk.as_ref().ok_or_else(|| {
                    TxError::UnsupportedMode("zk (no proof verifier on this node)".into())
                })?;
                ZkStatus::from(zk.register(model).map_err(|e| internal(e.to_string()))?)
            }
        };
        match status {
            ZkStatus::Ready { .. } => Ok(()),
            ZkStatus::Refused { reason } => Err(TxError::ZkUnsupported(reason)),
        }
    }
}
