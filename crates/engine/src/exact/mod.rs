//! Exact mode: ONNX compiled to a fixed-point integer graph whose every
//! operation has one defined integer result, so that execution,
//! re-execution and proofs agree bit for bit on every machine.
//!
//! The semantics are written down in `docs/exact-mode.md`; in short:
//! - every floating-point tensor becomes an `i32` tensor with a static
//!   power-of-two scale (`frac_bits` fractional bits for activations; a
//!   per-tensor scale for constant multiplicands, chosen from the largest
//!   magnitude with `weight_bits` significant bits);
//! - rounding is always to nearest, ties to even; every result is checked to
//!   fit its type and an overflow is an error naming the node, never a wrap;
//! - sums of products are exact; non-linear functions are correctly rounded
//!   tables with linear interpolation, or exact integer formulas.
//!
//! [`ExactModel::compile`] loads the ONNX bytes with tract, and lowers
//! tract's typed graph (one expansion per ONNX node) for each set of input
//! shapes met (plans are cached and reused). [`ExactModel::id`] is
//! `sha256("verity-exact-v1" || sha256(onnx) || params.to_bytes())`.

mod arith;
mod bcast;
mod compile;
mod conv;
mod engine;
mod export;
mod funcs;
mod ir;
mod linalg;
mod lower_deconv;
mod lower_ew;
mod lower_nn;
mod ops;
mod reduce;
mod resize;
mod run;
mod scan;
mod tree;

pub use arith::{dequantize, div_round, round_shift_i64};
pub use engine::ExactEngine;
pub use export::{
    softmax_exp_table, ExactConv, ExactGraph, ExactMatVec, ExactOp, ExactStep, ExactValue,
    ExactWindow,
};
pub use linalg::RunOptions;
pub use run::{ExactModel, ExactOutput};

/// Compile parameters of exact mode. Their canonical bytes
/// ([`ExactParams::to_bytes`]) are part of the compiled model id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExactParams {
    /// Fractional bits of activations (inputs, intermediate values,
    /// outputs): a real `x` is held as `round(x * 2^frac_bits)`.
    pub frac_bits: u8,
    /// Significant bits of constant multiplicands (weights, constant
    /// factors and divisors), sign included.
    pub weight_bits: u8,
}

impl Default for ExactParams {
    /// The network's fixed parameters: Q.16 activations, 16-bit weights.
    fn default() -> Self {
        Self {
            frac_bits: 16,
            weight_bits: 16,
        }
    }
}

impl ExactParams {
    /// Version of the exact-mode semantics these parameters select.
    pub const VERSION: u8 = 1;

    /// Canonical encoding: `[VERSION, frac_bits, weight_bits]`.
    pub fn to_bytes(&self) -> Vec<u8> {
        vec![Self::VERSION, self.frac_bits, self.weight_bits]
    }

    /// Checks the ranges the semantics define (`frac_bits` 0..=24,
    /// `weight_bits` 2..=24).
    pub fn validate(&self) -> Result<(), crate::EngineError> {
        if self.frac_bits > 24 || !(2..=24).contains(&self.weight_bits) {
            return Err(crate::EngineError::InvalidInput(format!(
                "exact parameters out of range: frac_bits {} (0..=24), weight_bits {} (2..=24)",
                self.frac_bits, self.weight_bits
            )));
        }
        Ok(())
    }
}

/// The compiled-model id: `sha256(b"verity-exact-v1" || sha256(onnx) || params)`
/// (the ledger computes the same from the model id, without the bytes).
pub fn compiled_id(onnx: &[u8], params: &ExactParams) -> [u8; 32] {
    let model = verity_primitives::ModelId::of_bytes(onnx);
    verity_primitives::receipt::exact_model_id(&model, &params.to_bytes()).0
}
