//! The node's shared state: ledger, hub, engine, chain store, mempool.

use crate::{
    chain::ChainStore,
    mempool::{Admission, Mempool, MempoolError},
    metrics::Metrics,
};
use std::sync::{Arc, Mutex};
use verity_engine::Engine;
use verity_hub::Hub;
use verity_ledger::{Ledger, TxError};
use verity_primitives::{codec::Canonical, Address, Mode, PrivateKey, SignedTx, TxBody, B256};

/// Static facts about the node and its network, served by `/v1/status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeInfo {
    pub chain_id: u64,
    /// Threshold BLS group public key, hex: checks every certificate.
    pub identity: String,
    /// Validator peer keys (ed25519, hex).
    pub validators: Vec<String>,
    /// This node's validator key (hex).
    pub validator: String,
    pub api: String,
}

/// Why a submitted transaction was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Tx(#[from] TxError),
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    #[error("model rejected: {0}")]
    Engine(#[from] verity_engine::EngineError),
    #[error("manifest does not match the model: {0}")]
    Manifest(String),
}

/// Everything the API, the executor and the consensus application share.
pub struct NodeState {
    pub ledger: Ledger,
    pub hub: Hub,
    pub engine: Arc<dyn Engine>,
    /// The exact-mode (fixed-point, bit-exact) engine.
    pub exact: Arc<verity_engine::ExactEngine>,
    /// zk mode: the prover and the ledger's proof verifier.
    pub zk: Arc<crate::zk::ZkService>,
    pub chain: ChainStore,
    pub mempool: Mutex<Mempool>,
    pub executor: Option<PrivateKey>,
    pub info: NodeInfo,
    pub metrics: Metrics,
    /// Latest executed height; waiters subscribe to it.
    pub executed: tokio::sync::watch::Sender<u64>,
    /// Set when this node must stop serving finality: its state diverged
    /// from what finalized headers claim, or it could not apply a block.
    /// Holds the reason.
    pub halted: tokio::sync::watch::Sender<Option<String>>,
    /// Admitted transactions go here to be gossiped to the other
    /// validators.
    pub gossip: Option<futures::channel::mpsc::Sender<bytes::Bytes>>,
    /// Transactions other validators gossiped, waiting for admission.
    pub gossip_inbox: Option<tokio::sync::mpsc::Sender<SignedTx>>,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeState")
            .field("info", &self.info)
            .finish()
    }
}

impl NodeState {
    /// Stops serving finality, for `reason` (kept: the first reason wins).
    pub fn halt(&self, reason: String) {
        self.halted.send_if_modified(|h| {
            if h.is_some() {
                return false;
            }
            tracing::error!(%reason, "node halted: no longer serving finality");
            *h = Some(reason);
            true
        });
    }

    /// Why this node stopped serving finality, if it did.
    pub fn halt_reason(&self) -> Option<String> {
        self.halted.borrow().clone()
    }

    fn account_nonce(&self, a: &Address) -> u64 {
        self.ledger.account(a).map(|a| a.nonce).unwrap_or(0)
    }

    /// Next nonce for `a`, counting its pending transactions.
    pub fn next_nonce(&self, a: &Address) -> u64 {
        let n = self.account_nonce(a);
        self.mempool.lock().expect("mempool lock").next_nonce(a, n)
    }

    /// Admission, cheapest checks first: size (it must fit in a block),
    /// then signature, chain, nonce and balance (the ledger's checks), and
    /// only then any model work (for a publish, the ledger's oracle loads
    /// the model and compares it with the manifest: the same check block
    /// execution makes).
    pub fn submit(&self, tx: SignedTx) -> Result<B256, SubmitError> {
        let encoded = tx.encode();
        let id = self.admit(tx)?;
        if let Some(gossip) = &self.gossip {
            // Bounded: if the gossip task lags, this node still includes it.
            let _ = gossip.clone().try_send(bytes::Bytes::from(encoded));
        }
        Ok(id)
    }

    /// [`NodeState::submit`] without gossiping (for transactions that other
    /// validators gossiped).
    pub fn admit(&self, tx: SignedTx) -> Result<B256, SubmitError> {
        let ahead = {
            let pool = self.mempool.lock().expect("mempool lock");
            pool.check_size(&tx)?;
            pool.limits().max_nonce_ahead
        };
        self.ledger.check_tx(&tx, ahead)?;
        if let TxBody::Infer(req) = &tx.tx.body {
            if req.mode == Mode::Exact {
                // Refuse models exact mode cannot compile, naming the op,
                // before anyone pays for them.
                let onnx = self
                    .hub
                    .get(&req.model)
                    .map_err(|e| SubmitError::Manifest(e.to_string()))?;
                self.exact.model(req.model.digest(), &onnx)?;
            }
        }
        let id = tx.id();
        let account = self.ledger.account(&tx.tx.from).map_err(|e| {
            SubmitError::Tx(TxError::InvalidInput(format!("ledger unavailable: {e}")))
        })?;
        let (cost, priority) = self.ledger.tx_cost(&tx.tx.body);
        let admission = Admission {
            height: *self.executed.borrow(),
            account_nonce: account.nonce,
            balance: account.balance,
            cost,
            priority,
        };
        self.mempool
            .lock()
            .expect("mempool lock")
            .insert(tx, admission)?;
        self.metrics.txs_submitted.inc();
        Ok(id)
    }

    /// Drops pending transactions made stale by executed blocks.
    pub fn prune_mempool(&self, height: u64) {
        let mut pool = self.mempool.lock().expect("mempool lock");
        pool.prune(height, |a| self.account_nonce(a));
    }
}
