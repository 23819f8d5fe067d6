//! Genesis: the initial accounts, executors, models and parameters.

use serde::{Deserialize, Serialize};
use verity_primitives::{Address, Amount, ModelManifest};

/// Economic and safety parameters fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Fee every client transaction pays (burned).
    pub tx_fee: Amount,
    /// Blocks an assigned request may wait for its result before it expires
    /// and its escrow is refunded. The first executor drawn has the first
    /// half of it ([`Params::reassign_after`]); if it posts nothing, the
    /// request is reassigned once, to another executor, for the rest.
    pub request_timeout: u64,
    /// Largest ONNX model accepted by publish.
    pub max_model_bytes: u64,
    /// Largest input (elements across all tensors).
    pub max_input_elements: u64,
    /// Largest output (elements across all tensors).
    pub max_output_elements: u64,
    /// Canonical bytes of the network's exact-mode compile parameters (see
    /// `verity_engine::exact`); bound into every exact receipt.
    #[serde(with = "verity_primitives::merkle::hex_bytes")]
    pub exact_params: Vec<u8>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            tx_fee: 10,
            request_timeout: 50,
            max_model_bytes: 16 << 20,
            max_input_elements: 1 << 20,
            max_output_elements: 1 << 20,
            exact_params: Vec::new(),
        }
    }
}

impl Params {
    /// Blocks the first executor drawn for a request has before the
    /// request is reassigned: half the request timeout (0, no reassignment,
    /// when the timeout is under 2 blocks).
    pub fn reassign_after(&self) -> u64 {
        self.request_timeout / 2
    }
}

/// The initial state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: u64,
    pub params: Params,
    /// Funded accounts.
    pub accounts: Vec<(Address, Amount)>,
    /// Bonded executors, in assignment order.
    pub executors: Vec<Address>,
    /// Models published at genesis (their bytes must be in the Hub).
    pub models: Vec<ModelManifest>,
}
