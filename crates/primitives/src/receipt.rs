//! Receipts and the self-contained bundle an auditor verifies offline.

use crate::{
    codec::Canonical, keys::domain_digest, merkle::MerkleProof, Address, Amount, BlockHeader,
    Evidence, Mode, ModelId, Tensors, B256,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The settled record of one inference.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    pub chain_id: u64,
    pub request_id: B256,
    pub model: ModelId,
    pub mode: Mode,
    pub requester: Address,
    pub input_hash: B256,
    pub output_hash: B256,
    pub evidence: Evidence,
    /// Fee paid to the executor.
    #[serde(with = "crate::codec::amount_serde")]
    pub fee: Amount,
    pub request_height: u64,
    pub settled_height: u64,
    /// For `exact` mode: the compiled model's id, binding the model and the
    /// network's exact-mode compile parameters ([`exact_model_id`]).
    pub compiled_model: Option<B256>,
}

/// The id of a model compiled for exact mode:
/// `sha256("verity-exact-v1" ‖ sha256(onnx) ‖ compile parameters)`.
pub fn exact_model_id(model: &ModelId, params: &[u8]) -> B256 {
    let mut b = b"verity-exact-v1".to_vec();
    b.extend_from_slice(model.digest());
    b.extend_from_slice(params);
    B256::from(crate::codec::sha256(&b))
}

impl Canonical for Receipt {
    const WHAT: &'static str = "receipt";
}

impl Receipt {
    pub fn id(&self) -> B256 {
        domain_digest("receipt", &self.encode())
    }

    /// The ledger state key under which the receipt is stored.
    pub fn state_key(id: &B256) -> Vec<u8> {
        let mut k = b"receipt/".to_vec();
        k.extend_from_slice(id.as_slice());
        k
    }
}

/// Everything needed to check a receipt with only the network's identity
/// (its threshold BLS group public key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiptBundle {
    /// Format version of this file.
    pub version: u8,
    pub receipt_id: B256,
    pub receipt: Receipt,
    /// The request's input and the result's output, so that their hashes
    /// can be checked.
    pub input: Option<Tensors>,
    pub output: Option<Tensors>,
    /// Inclusion of the receipt in the state whose root `header.claim` names.
    pub state_proof: MerkleProof,
    /// Finalized headers: the first claims the root the proof leads to, each
    /// next one names the previous as parent, and the last is the one the
    /// certificate signs (usually the list has one header).
    pub headers: Vec<BlockHeader>,
    /// commonware finalization certificate over the last header's digest, hex.
    #[serde(with = "crate::merkle::hex_bytes")]
    pub finalization: Vec<u8>,
    /// The network identity (threshold group public key) the certificate
    /// claims; `verify` compares it to a trusted one when it has it.
    #[serde(with = "crate::merkle::hex_bytes")]
    pub identity: Vec<u8>,
    /// `zk` receipts: the proof file (0x-hex) whose SHA-256 the receipt's
    /// evidence names, so that the proof can be checked again offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zk_proof: Option<String>,
}

/// Current [`ReceiptBundle::version`].
pub const BUNDLE_VERSION: u8 = 1;
