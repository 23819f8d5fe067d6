//! ONNX in, proof file out: exact-mode compilation, lowering, registration and proving in
//! one place, for the CLI and the node.

use crate::error::{ModelError, ProveError};
use crate::exact::{lower, LowerError, Lowered, VALUE_BITS};
use crate::file::ProofFile;
use crate::model::{ModelCommitment, OutputLayout, ProverModel};
use crate::protocol::prove;
use verity_engine::{EngineError, ExactModel, ExactParams, Tensors};

/// Why an ONNX model or input cannot be proven.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The model or input is not valid for exact mode.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The graph uses operators (or a structure) the proof does not cover.
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// Registration failed (a bound or size limit).
    #[error("zk registration: {0}")]
    Model(#[from] ModelError),
    /// The run has no proof (a value outside the proven range, ...).
    #[error("no proof for this input: {0}")]
    Prove(#[from] ProveError),
    /// The model takes several inputs.
    #[error("zk mode proves models with one input")]
    Inputs,
    /// Never expected: the circuit and exact mode disagree.
    #[error("internal error: the circuit's output differs from exact mode's")]
    Mismatch,
}

/// A model registered for proving: its exact-mode compilation, the lowered circuit and the
/// committed weights.
pub struct OnnxProver {
    exact: ExactModel,
    lowered: Lowered,
    model: ProverModel,
}

impl OnnxProver {
    /// Compile `onnx` in exact mode (the network's parameters), lower it, commit to its
    /// weights and bind its output layout and compiled-model id into the commitment.
    pub fn register(onnx: &[u8]) -> Result<Self, ZkError> {
        Self::register_with(onnx, &ExactParams::default())
    }

    /// [`OnnxProver::register`] with explicit exact-mode parameters.
    pub fn register_with(onnx: &[u8], params: &ExactParams) -> Result<Self, ZkError> {
        let exact = ExactModel::compile(onnx, params)?;
        let lowered = lower(&exact.graph()?)?;
        let model = ProverModel::new(lowered.input_len, VALUE_BITS, lowered.layers.clone())?.bind(
            OutputLayout {
                model_id: exact.id(),
                outputs: lowered.outputs.clone(),
            },
        )?;
        Ok(Self {
            exact,
            lowered,
            model,
        })
    }

    /// The model commitment (what verifiers need).
    pub fn commitment(&self) -> &ModelCommitment {
        self.model.commitment()
    }

    /// The compiled exact-mode model.
    pub fn exact(&self) -> &ExactModel {
        &self.exact
    }

    /// Run exact mode on `input`, prove the result, and package the statement.
    pub fn prove(&self, input: &Tensors) -> Result<ProofFile, ZkError> {
        let mut xs = self.exact.quantize_inputs(input)?;
        if xs.len() != 1 {
            return Err(ZkError::Inputs);
        }
        let x = xs.remove(0);
        let (y, proof) = prove(&self.model, &x)?;
        let expected: Vec<i64> = self
            .exact
            .run_exact(input)?
            .into_iter()
            .flat_map(|o| o.values)
            .collect();
        if expected != y {
            return Err(ZkError::Mismatch);
        }
        Ok(ProofFile {
            model_id: self.exact.id(),
            outputs: self.lowered.outputs.clone(),
            commitment: self.model.commitment().clone(),
            input: x,
            output: y,
            proof,
        })
    }
}
