//! Receipt bundles: cut from a node's state, checked offline by anyone who
//! knows the network identity.

use crate::{consensus::verify_finalization, state::NodeState};
use verity_primitives::{
    codec::Canonical, receipt::BUNDLE_VERSION, tx::result_digest, Evidence, Receipt, ReceiptBundle,
    B256,
};

/// Why a bundle is not (yet) available.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("receipt {0:#x} not found")]
    NotFound(B256),
    #[error("receipt {0:#x} is settled but no finalized block certifies its state root yet")]
    NotFinal(B256),
    #[error("{0}")]
    Internal(String),
}

/// Builds the bundle for a receipt, if a certified block claims its root.
pub fn receipt_bundle(s: &NodeState, id: &B256) -> Result<ReceiptBundle, BundleError> {
    let internal = |e: &dyn std::fmt::Display| BundleError::Internal(e.to_string());
    let rp = s
        .ledger
        .receipt_proof(id)
        .map_err(|e| internal(&e))?
        .ok_or(BundleError::NotFound(*id))?;
    let (headers, finalization) = s
        .chain
        .certified_claim(rp.height)
        .map_err(|e| internal(&e))?
        .ok_or(BundleError::NotFinal(*id))?;
    let rid = rp.receipt.request_id;
    Ok(ReceiptBundle {
        version: BUNDLE_VERSION,
        receipt_id: *id,
        input: s.ledger.input(&rid).map_err(|e| internal(&e))?,
        output: s.ledger.output(&rid).map_err(|e| internal(&e))?,
        receipt: rp.receipt,
        state_proof: rp.proof,
        headers,
        finalization,
        identity: hex::decode(&s.info.identity).map_err(|e| internal(&e))?,
        zk_proof: s
            .ledger
            .zk_proof(&rid)
            .map_err(|e| internal(&e))?
            .map(|p| format!("0x{}", hex::encode(p))),
    })
}

/// A failed check, naming what did not match.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct VerifyError(pub String);

/// What a successful check established.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verified {
    pub receipt_id: String,
    pub checks: Vec<String>,
    pub finalized_view: u64,
    pub state_height: u64,
    pub identity_trusted: bool,
}

/// A zk receipt: the bundled proof file is the one the receipt names, is about the
/// receipt's model commitment, compiled model, input and output, and verifies.
fn verify_zk(b: &ReceiptBundle, commitment: &B256, proof_hash: &B256) -> Result<String, String> {
    let r = &b.receipt;
    let hexp = b
        .zk_proof
        .as_deref()
        .ok_or("zk receipt without its proof file")?;
    let proof =
        hex::decode(hexp.trim_start_matches("0x")).map_err(|e| format!("zk proof hex: {e}"))?;
    if B256::from(verity_primitives::codec::sha256(&proof)) != *proof_hash {
        return Err("zk proof file does not match the receipt's proof hash".into());
    }
    let (Some(input), Some(output), Some(compiled)) = (&b.input, &b.output, &r.compiled_model)
    else {
        return Err("zk receipt without its input, output or compiled model id".into());
    };
    // the compile parameters are bound by the compiled model id; Q16 is the network's
    let frac = verity_engine::ExactParams::default().frac_bits;
    crate::zk::verify_file(commitment, compiled, input, output, &proof, frac)
        .map_err(|e| format!("zk proof rejected: {e}"))?;
    Ok(format!(
        "zk proof verified against model commitment {commitment:#x}"
    ))
}

/// Checks a bundle offline. `trusted_identity`, when given, must equal the
/// bundle's identity (otherwise the certificate only proves consistency
/// with the key the bundle itself names).
pub fn verify_bundle(
    b: &ReceiptBundle,
    trusted_identity: Option<&[u8]>,
) -> Result<Verified, VerifyError> {
    let fail = |m: String| Err(VerifyError(m));
    let mut checks = Vec::new();
    if b.version != BUNDLE_VERSION {
        return fail(format!("unsupported receipt bundle version {}", b.version));
    }
    let r: &Receipt = &b.receipt;
    if r.id() != b.receipt_id {
        return fail(format!(
            "receipt id mismatch: the receipt's fields hash to {:#x}, not {:#x}",
            r.id(),
            b.receipt_id
        ));
    }
    checks.push("receipt id matches its fields".to_string());
    if let Some(input) = &b.input {
        if input.hash() != r.input_hash {
            return fail(format!(
                "input hash mismatch: input hashes to {:#x}, receipt says {:#x}",
                input.hash(),
                r.input_hash
            ));
        }
        checks.push("input matches input_hash".into());
    }
    if let Some(output) = &b.output {
        if output.hash() != r.output_hash {
            return fail(format!(
                "output hash mismatch: output hashes to {:#x}, receipt says {:#x}",
                output.hash(),
                r.output_hash
            ));
        }
        checks.push("output matches output_hash".into());
    }
    let (executor, signature) = r.evidence.signer();
    match signature.recover(&result_digest(&r.request_id, &r.output_hash)) {
        Ok(a) if a == *executor => checks.push(format!("executor signature by {executor}")),
        Ok(a) => {
            return fail(format!(
                "executor signature mismatch: signed by {a}, receipt names {executor}"
            ))
        }
        Err(e) => return fail(format!("executor signature invalid: {e}")),
    }
    if let Evidence::ZkReceipt {
        commitment,
        proof_hash,
        ..
    } = &r.evidence
    {
        checks.push(verify_zk(b, commitment, proof_hash).map_err(VerifyError)?);
    }
    let p = &b.state_proof;
    if p.key != Receipt::state_key(&b.receipt_id) || p.value != r.encode() {
        return fail("state proof is for a different entry than this receipt".into());
    }
    let Some(first) = b.headers.first() else {
        return fail("no block header in the bundle".into());
    };
    if p.root() != first.claim.root {
        return fail(format!(
            "Merkle proof mismatch: proof leads to root {:#x}, the block claims {:#x}",
            p.root(),
            first.claim.root
        ));
    }
    checks.push(format!(
        "receipt included in state root {:#x} (height {})",
        first.claim.root, first.claim.height
    ));
    for pair in b.headers.windows(2) {
        if pair[1].parent != pair[0].digest() {
            return fail(format!("header chain broken at height {}", pair[1].height));
        }
    }
    let last = b.headers.last().expect("non-empty");
    if let Some(t) = trusted_identity {
        if t != b.identity.as_slice() {
            return fail(
                "network identity mismatch: the bundle's identity is not the trusted one".into(),
            );
        }
    }
    let info = verify_finalization(
        &b.identity,
        &r.chain_id.to_string(),
        &b.finalization,
        &last.digest().0,
    )
    .map_err(|e| VerifyError(format!("finalization certificate invalid: {e}")))?;
    checks.push(format!(
        "finalization certificate for block {} (view {}) signed by the validator set",
        last.height, info.view
    ));
    Ok(Verified {
        receipt_id: format!("{:#x}", b.receipt_id),
        checks,
        finalized_view: info.view,
        state_height: first.claim.height,
        identity_trusted: trusted_identity.is_some(),
    })
}
