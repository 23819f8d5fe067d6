//! The consensus [`Application`]: builds and checks block bodies from the
//! mempool, and executes finalized blocks on the ledger.
//!
//! Execution happens only on finalized blocks. A block carries a lagging
//! [`StateClaim`]: the root after some already finalized height, advancing
//! by at most one height per block, so every height is claimed by some
//! finalized block and an auditor can link each state root to a certificate.

use crate::{consensus::Application, state::NodeState};
use bytes::Bytes;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tracing::{error, info, warn};
use verity_primitives::{
    block::BlockBody, codec::Canonical, BlockHeader, ModelId, StateClaim, TxBody, B256,
};

/// Largest body a proposer builds.
pub const MAX_BLOCK_BYTES: usize = 36 << 20;

#[derive(Clone, Debug)]
pub struct LedgerApp {
    pub state: Arc<NodeState>,
    /// Transactions this node proposed recently: not proposed again until
    /// they execute or [`REPROPOSE_AFTER`] passes (their block may have
    /// been skipped).
    inflight: Arc<Mutex<HashMap<B256, Instant>>>,
}

/// How long a proposed transaction is held back from further proposals.
pub const REPROPOSE_AFTER: Duration = Duration::from_secs(3);

impl LedgerApp {
    pub fn new(state: Arc<NodeState>) -> Self {
        Self {
            state,
            inflight: Arc::default(),
        }
    }
}

impl LedgerApp {
    fn claim_for(&self, parent: &BlockHeader) -> StateClaim {
        let next = parent.claim.height + 1;
        let executed = self.state.ledger.height().unwrap_or(0);
        if executed >= next {
            if let Ok(Some(root)) = self.state.ledger.root_at(next) {
                return StateClaim { height: next, root };
            }
        }
        parent.claim
    }

    async fn wait_executed(&self, height: u64) {
        let mut rx = self.state.executed.subscribe();
        while *rx.borrow_and_update() < height {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Application for LedgerApp {
    async fn propose(&self, parent: &BlockHeader) -> (StateClaim, Bytes) {
        let claim = self.claim_for(parent);
        let candidates = {
            let pool = self.state.mempool.lock().expect("mempool lock");
            pool.select(
                |a| self.state.ledger.account(a).map(|a| a.nonce).unwrap_or(0),
                MAX_BLOCK_BYTES,
            )
        };
        let now = Instant::now();
        let txs = {
            let mut inflight = self.inflight.lock().expect("inflight lock");
            inflight.retain(|_, t| now.duration_since(*t) < REPROPOSE_AFTER);
            let mut txs = Vec::new();
            for tx in candidates {
                // A held-back transaction is most likely in the parent, so
                // the sender's later nonces can still follow it here.
                if inflight.contains_key(&tx.id()) {
                    continue;
                }
                inflight.insert(tx.id(), now);
                txs.push(tx);
            }
            txs
        };
        (claim, Bytes::from(BlockBody { txs }.encode()))
    }

    async fn verify(&self, parent: &BlockHeader, block: &BlockHeader, body: &Bytes) -> bool {
        let Ok(body) = BlockBody::decode(body) else {
            warn!(height = block.height, "rejecting block: undecodable body");
            return false;
        };
        let chain_id = self.state.ledger.chain_id();
        if body
            .txs
            .iter()
            .any(|t| t.tx.chain_id != chain_id || t.verify_signature().is_err())
        {
            warn!(
                height = block.height,
                "rejecting block: bad transaction signature or chain"
            );
            return false;
        }
        let (c, p) = (block.claim, parent.claim);
        if c.height == p.height {
            return c.root == p.root;
        }
        if c.height != p.height + 1 || c.height >= block.height {
            return false;
        }
        self.wait_executed(c.height).await;
        matches!(self.state.ledger.root_at(c.height), Ok(Some(r)) if r == c.root)
    }

    async fn finalized(&self, header: BlockHeader, body: Bytes, finalization: Option<Vec<u8>>) {
        let s = &self.state;
        let body = match BlockBody::decode(&body) {
            Ok(b) => b,
            Err(e) => {
                error!(height = header.height, %e, "finalized block has an undecodable body");
                BlockBody::default()
            }
        };
        // Model bytes first, so the ledger never names a model the hub lacks.
        for t in &body.txs {
            if let TxBody::Publish { manifest, onnx } = &t.tx.body {
                if ModelId::of_bytes(onnx) == manifest.model_id {
                    if let Err(e) = s.hub.put(onnx) {
                        error!(%e, "storing a published model failed");
                    }
                }
            }
        }
        if let Err(e) = s.chain.record(&header, finalization.as_deref()) {
            error!(%e, "recording a finalized header failed");
        }
        // Randomness for executor draws: the block digest (see DESIGN note in
        // the README: a VRF seed carried in the block would remove the
        // proposer's ability to grind it).
        let randomness = B256::from(header.digest());
        match s.ledger.apply_block(header.height, &randomness, &body.txs) {
            Ok(out) => {
                if !out.already_applied {
                    s.metrics.blocks.inc();
                    s.metrics.txs_applied.inc_by(out.applied as u64);
                    s.metrics.txs_failed.inc_by(out.failed as u64);
                    s.metrics.receipts.inc_by(out.receipts.len() as u64);
                    if !body.txs.is_empty() {
                        info!(height = header.height, txs = body.txs.len(), root = %out.root, "executed block");
                    }
                }
                s.metrics.height.set(header.height as i64);
                s.prune_mempool();
                // Included transactions leave the pool even when they
                // failed (a failure does not advance the sender's nonce).
                {
                    let mut pool = s.mempool.lock().expect("mempool lock");
                    for t in &body.txs {
                        pool.remove(&t.id(), &t.tx.from, t.tx.nonce);
                    }
                }
                s.executed.send_replace(header.height);
            }
            Err(e) => error!(height = header.height, %e, "executing a finalized block failed"),
        }
    }
}
