//! zk mode on the node: models registered with the prover once (cached per model), proof
//! files verified for the ledger ([`ZkVerifier`]), proofs made for the executor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use verity_engine::ExactParams;
use verity_hub::Hub;
use verity_ledger::{Registration, ZkError, ZkVerifier};
use verity_primitives::{ModelId, Tensors, B256};
use verity_prover::{OnnxProver, ProofFile};

type Registered = Arc<Result<OnnxProver, String>>;

/// The prover and verifier for zk-mode requests.
pub struct ZkService {
    hub: Hub,
    params: ExactParams,
    provers: Mutex<HashMap<ModelId, Registered>>,
}

impl std::fmt::Debug for ZkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkService").finish_non_exhaustive()
    }
}

impl ZkService {
    pub fn new(hub: Hub, params: ExactParams) -> Self {
        Self {
            hub,
            params,
            provers: Mutex::new(HashMap::new()),
        }
    }

    /// The model registered for proving (compiled, lowered, weights committed), once.
    fn registered(&self, model: &ModelId) -> Result<Registered, String> {
        if let Some(r) = self.provers.lock().expect("zk lock").get(model) {
            return Ok(r.clone());
        }
        let onnx = self.hub.get(model).map_err(|e| e.to_string())?;
        let r = Arc::new(OnnxProver::register_with(&onnx, &self.params).map_err(|e| e.to_string()));
        self.provers
            .lock()
            .expect("zk lock")
            .insert(*model, r.clone());
        Ok(r)
    }

    /// Runs `model` in exact mode on `input` and proves it: the output and the proof file.
    pub fn prove(&self, model: &ModelId, input: &Tensors) -> Result<(Tensors, Vec<u8>), String> {
        let r = self.registered(model)?;
        let p = r.as_ref().as_ref().map_err(|e| e.clone())?;
        let file = p.prove(input).map_err(|e| e.to_string())?;
        let output = file.output_tensors().map_err(|e| e.to_string())?;
        Ok((output, file.to_bytes()))
    }
}

impl ZkVerifier for ZkService {
    /// Computes the commitment without keeping the prover: every publish
    /// registers its model, and keeping a prover per published model would
    /// let publishers grow every validator's memory; the executor's
    /// [`ZkService::prove`] keeps the ones it uses.
    fn register(&self, model: &ModelId) -> Result<Registration, ZkError> {
        if let Some(r) = self.provers.lock().expect("zk lock").get(model) {
            return Ok(match r.as_ref() {
                Ok(p) => Registration::Ready(B256::from(p.commitment().digest())),
                Err(e) => Registration::Refused(e.clone()),
            });
        }
        let onnx = self
            .hub
            .get(model)
            .map_err(|e| ZkError::Unavailable(Box::new(e)))?;
        Ok(match OnnxProver::register_with(&onnx, &self.params) {
            Ok(p) => Registration::Ready(B256::from(p.commitment().digest())),
            Err(e) => Registration::Refused(e.to_string()),
        })
    }

    fn verify(
        &self,
        commitment: &B256,
        compiled_model: &B256,
        input: &Tensors,
        output: &Tensors,
        proof: &[u8],
    ) -> Result<(), ZkError> {
        ProofFile::verify_settlement(
            proof,
            &commitment.0,
            &compiled_model.0,
            input,
            output,
            i32::from(self.params.frac_bits),
        )
        .map(|_| ())
        .map_err(|e| ZkError::Rejected(Box::new(e)))
    }
}

/// Checks a proof file against a receipt's commitment digest, compiled model id, input and
/// output, then verifies the proof (also used offline by `verity verify`); the prover's
/// guarded entry point, so hostile bytes are an error, never a panic.
pub fn verify_file(
    commitment: &B256,
    compiled_model: &B256,
    input: &Tensors,
    output: &Tensors,
    proof: &[u8],
    frac_bits: u8,
) -> Result<(), String> {
    ProofFile::verify_settlement(
        proof,
        &commitment.0,
        &compiled_model.0,
        input,
        output,
        i32::from(frac_bits),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}
