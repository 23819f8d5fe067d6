//! Ending a request by its assigned executor: a result that settles it
//! (fees move, a receipt enters the state) or a signed failure report that
//! fails it with the engine's error and refunds the escrow.

use crate::{
    apply::{encode_tensors, model_key, request_key, Exec, Failure},
    checks::check_outputs,
    records::{RequestRecord, RequestStatus},
    store::{OPEN, OUTPUTS, ZK_PROOFS},
    LedgerError, TxError,
};
use verity_primitives::{
    codec::sha256, receipt::exact_model_id, tx::result_digest, Address, Evidence, InferenceFailure,
    InferenceResult, Mode, ModelManifest, Receipt, B256,
};

/// A result or failure report from `from` may end `record` only while the
/// request awaits one and `from` is its assigned executor (checked the same
/// way at admission and in block execution).
pub(crate) fn awaiting(record: &RequestRecord, from: &Address) -> Result<(), TxError> {
    match record.status.assignee() {
        Some(e) if e == from => Ok(()),
        Some(e) => Err(TxError::InvalidResult(format!(
            "request is assigned to {e}, not {from}"
        ))),
        None => Err(TxError::InvalidResult(format!(
            "request is not awaiting a result ({})",
            record.status.name()
        ))),
    }
}

/// A failure report must be well formed and signed by its sender, the
/// request's assigned executor.
pub(crate) fn check_failure(
    record: &RequestRecord,
    from: &Address,
    f: &InferenceFailure,
) -> Result<(), TxError> {
    awaiting(record, from)?;
    f.validate()
        .map_err(|e| TxError::InvalidResult(format!("failure report: {e}")))?;
    let signer = f
        .signer()
        .map_err(|e| TxError::InvalidResult(format!("failure report signature: {e}")))?;
    if signer != *from {
        return Err(TxError::InvalidResult(
            "failure report signature is not the executor's".into(),
        ));
    }
    Ok(())
}

/// The failed request's reason: the executor and its engine's error.
pub(crate) fn failure_reason(executor: &Address, f: &InferenceFailure) -> String {
    format!("executor {executor}: {}", f.error)
}

impl Exec<'_> {
    pub(crate) fn settle(
        &self,
        executor: &Address,
        res: &InferenceResult,
    ) -> Result<B256, Failure> {
        let rid = res.request_id;
        let unknown = || TxError::UnknownRequest(format!("{rid:#x}"));
        let mut record: RequestRecord = self.get(&request_key(&rid))?.ok_or_else(unknown)?;
        awaiting(&record, executor)?;
        let manifest: ModelManifest = self
            .get(&model_key(&record.model))?
            .ok_or_else(|| LedgerError::Corrupt("request for a missing model".into()))?;
        let output_hash = res.output.hash();
        let (signer, signature) = res.evidence.signer();
        if signer != executor {
            return Err(TxError::InvalidResult("evidence names another executor".into()).into());
        }
        let recovered = signature
            .recover(&result_digest(&rid, &output_hash))
            .map_err(|e| TxError::InvalidResult(format!("evidence signature: {e}")))?;
        if recovered != *executor {
            return Err(
                TxError::InvalidResult("evidence signature is not the executor's".into()).into(),
            );
        }
        check_outputs(self.params, &manifest, &res.output, record.mode)?;
        let compiled = matches!(record.mode, Mode::Exact | Mode::Zk)
            .then(|| exact_model_id(&record.model, &self.params.exact_params));
        let evidence = match (&res.evidence, record.mode) {
            (Evidence::ZkProof { proof, .. }, Mode::Zk) => {
                let commitment = self.zk_commitment(&record.model)?;
                let input = self.input(&rid)?;
                let zk = self
                    .zk
                    .ok_or_else(|| TxError::UnsupportedMode("zk".into()))?;
                let compiled = compiled.unwrap_or_default();
                // A verifier panic must not take the block down: it becomes
                // the same refusal on every node (DESIGN §8).
                let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    zk.verify(&commitment, &compiled, &input, &res.output, proof)
                }))
                .unwrap_or(Err(crate::ZkError::Panicked));
                verdict.map_err(|e| TxError::InvalidResult(format!("zk proof rejected: {e}")))?;
                self.w
                    .open_table(ZK_PROOFS)?
                    .insert(rid.as_slice(), proof.as_slice())?;
                Evidence::ZkReceipt {
                    executor: *executor,
                    signature: *signature,
                    commitment,
                    proof_hash: B256::from(sha256(proof)),
                }
            }
            (Evidence::ExecutorSignature { .. }, Mode::Vanilla | Mode::Exact) => {
                res.evidence.clone()
            }
            (_, mode) => {
                return Err(TxError::InvalidResult(format!(
                    "this evidence kind is not valid for a {} request",
                    mode.name()
                ))
                .into())
            }
        };
        let fee = manifest.price.min(record.max_fee);
        let receipt = Receipt {
            chain_id: self.chain_id,
            request_id: rid,
            model: record.model,
            mode: record.mode,
            requester: record.requester,
            input_hash: record.input_hash,
            output_hash,
            evidence,
            fee,
            request_height: record.height,
            settled_height: self.height,
            compiled_model: compiled,
        };
        let receipt_id = receipt.id();
        self.credit(executor, fee)?;
        self.credit(&record.requester, record.max_fee - fee)?;
        record.status = RequestStatus::Settled { receipt_id };
        self.put(&request_key(&rid), &record)?;
        self.put(&Receipt::state_key(&receipt_id), &receipt)?;
        self.w.open_table(OPEN)?.remove(rid.as_slice())?;
        self.w
            .open_table(OUTPUTS)?
            .insert(rid.as_slice(), encode_tensors(&res.output).as_slice())?;
        Ok(receipt_id)
    }

    /// Fails the request with the executor's reported error and refunds
    /// the whole escrow to the requester. The executor earns nothing.
    pub(crate) fn fail_request(
        &self,
        executor: &Address,
        f: &InferenceFailure,
    ) -> Result<(), Failure> {
        let rid = f.request_id;
        let mut record: RequestRecord = self
            .get(&request_key(&rid))?
            .ok_or_else(|| TxError::UnknownRequest(format!("{rid:#x}")))?;
        check_failure(&record, executor, f)?;
        self.credit(&record.requester, record.max_fee)?;
        record.status = RequestStatus::Failed {
            reason: failure_reason(executor, f),
        };
        self.put(&request_key(&rid), &record)?;
        self.w
            .open_table(OPEN)?
            .remove(rid.as_slice())
            .map_err(LedgerError::from)?;
        Ok(())
    }
}
