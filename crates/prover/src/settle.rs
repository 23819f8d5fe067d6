//! What settlement runs on proof bytes from the network, in one place: decode the file,
//! compare it with the registered commitment and the receipt's compiled model, check that
//! its statement is the request's input and the posted output, and verify the proof.
//!
//! The entry points ([`ProofFile::verify_bytes`], [`ProofFile::verify_settlement`]) run
//! under a panic guard (as does [`crate::verify`]): whatever the bytes, the result is a
//! typed error, never a panic, and never an acceptance. Decoding bounds every length before
//! allocating.

use crate::error::{DecodeError, VerifyError};
use crate::file::ProofFile;
use std::panic::{catch_unwind, AssertUnwindSafe};
use verity_engine::exact::dequantize;
use verity_engine::{Tensor, TensorData, Tensors};

/// Why a proof file from the network was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    /// Not a valid proof file.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The file's commitment is not the registered one.
    #[error("the proof is for another model commitment")]
    Commitment,
    /// The file's compiled-model id is not the receipt's.
    #[error("the proof is for another compiled model")]
    CompiledModel,
    /// The file's statement is not about the request's input and the posted output.
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// The proof does not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A bug in decoding or checking, caught: the file is rejected.
    #[error("internal error: checking this proof file panicked")]
    Panicked,
}

/// Why a file's statement is not about given tensors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("zk proofs cover single-input models")]
    Inputs,
    #[error("the proven input must be a float tensor")]
    InputType,
    #[error("the proof is for another input")]
    Input,
    #[error("the proof is for another output")]
    Output,
    #[error("the output does not match its shapes")]
    Shapes,
}

/// Runs `f`, turning a panic into `panicked`.
pub(crate) fn guard<T, E>(panicked: E, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(panicked))
}

impl ProofFile {
    /// Decode untrusted bytes and verify the proof against the statement they carry.
    pub fn verify_bytes(bytes: &[u8]) -> Result<ProofFile, SettleError> {
        guard(SettleError::Panicked, || {
            let f = ProofFile::from_bytes(bytes)?;
            f.verify()?;
            Ok(f)
        })
    }

    /// Settlement's check of untrusted bytes: the file's commitment has digest
    /// `commitment` (the registered one), its compiled-model id is `model`, its input is
    /// exact mode's quantization of `input` at `frac` fractional bits, its output is
    /// `output` (names, shapes, values), and the proof verifies.
    pub fn verify_settlement(
        bytes: &[u8],
        commitment: &[u8; 32],
        model: &[u8; 32],
        input: &Tensors,
        output: &Tensors,
        frac: i32,
    ) -> Result<ProofFile, SettleError> {
        guard(SettleError::Panicked, || {
            let f = ProofFile::from_bytes(bytes)?;
            if f.commitment.digest() != *commitment {
                return Err(SettleError::Commitment);
            }
            if f.commitment.layout.model_id != *model || f.model_id != *model {
                return Err(SettleError::CompiledModel);
            }
            f.check_statement(input, output, frac)?;
            f.verify()?;
            Ok(f)
        })
    }

    /// The outputs as exact mode returns them (fixed point as `float64`, exact), read by
    /// the commitment's layout.
    pub fn output_tensors(&self) -> Result<Tensors, StatementError> {
        let mut out = Tensors::default();
        let mut at = 0usize;
        for o in &self.commitment.layout.outputs {
            let n = o.len().ok_or(StatementError::Shapes)?;
            let end = at.checked_add(n).ok_or(StatementError::Shapes)?;
            let vals = self.output.get(at..end).ok_or(StatementError::Shapes)?;
            at = end;
            let data = match o.frac {
                Some(f) => TensorData::F64(vals.iter().map(|v| dequantize(*v, f)).collect()),
                None => TensorData::I64(vals.to_vec()),
            };
            let t =
                Tensor::new(&o.name, o.shape.clone(), data).map_err(|_| StatementError::Shapes)?;
            out.0.insert(o.name.clone(), t);
        }
        if at != self.output.len() {
            return Err(StatementError::Shapes);
        }
        Ok(out)
    }

    /// Checks that this file's statement is about `input` and `output`: its input is
    /// exact mode's quantization of `input` (`round(x·2^frac)`, ties to even) and its
    /// output is `output`, name, shape and values.
    pub fn check_statement(
        &self,
        input: &Tensors,
        output: &Tensors,
        frac: i32,
    ) -> Result<(), StatementError> {
        let [t] = input.0.values().collect::<Vec<_>>()[..] else {
            return Err(StatementError::Inputs);
        };
        let scale = f64::from(frac).exp2();
        let q: Vec<i64> = match &t.data {
            TensorData::F32(v) => v
                .iter()
                .map(|x| (f64::from(*x) * scale).round_ties_even() as i64)
                .collect(),
            TensorData::F64(v) => v
                .iter()
                .map(|x| (x * scale).round_ties_even() as i64)
                .collect(),
            _ => return Err(StatementError::InputType),
        };
        if q != self.input {
            return Err(StatementError::Input);
        }
        if &self.output_tensors()? != output {
            return Err(StatementError::Output);
        }
        Ok(())
    }
}
