//! The consensus [`Application`]: builds and checks block bodies from the
//! mempool, and executes finalized blocks on the ledger.
//!
//! Execution happens only on finalized blocks. A block carries a lagging
//! [`StateClaim`]: the root after some already finalized height, advancing
//! by at most one height per block, so every height is claimed by some
//! finalized block and an auditor can link each state root to a certificate.

use crate::{
    consensus::{Application, ApplyFailure},
    state::NodeState,
};
use bytes::Bytes;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tracing::{info, warn};
use verity_primitives::{block::BlockBody, codec::Canonical, BlockHeader, StateClaim, B256};

/// Largest body a proposer builds.
pub const MAX_BLOCK_BYTES: usize = 36 << 20;

/// Largest transaction the mempool admits: one that fills a block alone.
pub const MAX_TX_BYTES: usize = MAX_BLOCK_BYTES;

#[derive(Clone, Debug)]
pub struct LedgerApp {
    pub state: Arc<NodeState>,
    /// Transactions this node proposed, with the height of the block it
    /// proposed them in: not proposed again until that height is executed
    /// (then they either executed, or their block was not the one
    /// finalized at that height). Heights, not clocks, so the
    /// deterministic simulation replays it exactly.
    inflight: Arc<Mutex<HashMap<B256, u64>>>,
    /// Locally admitted transactions for the gossip task (taken once).
    gossip: Arc<Mutex<Option<crate::consensus::gossip::GossipOutbound>>>,
}

impl LedgerApp {
    /// `gossip` yields what the node admitted locally (see
    /// [`NodeState::gossip`]).
    pub fn new(
        state: Arc<NodeState>,
        gossip: Option<crate::consensus::gossip::GossipOutbound>,
    ) -> Self {
        Self {
            state,
            inflight: Arc::default(),
            gossip: Arc::new(Mutex::new(gossip)),
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
        let height = parent.height + 1;
        let executed = *self.state.executed.borrow();
        let txs = {
            let mut inflight = self.inflight.lock().expect("inflight lock");
            inflight.retain(|_, h| *h > executed);
            let mut txs = Vec::new();
            for tx in candidates {
                // A held-back transaction is most likely in the parent, so
                // the sender's later nonces can still follow it here.
                if inflight.contains_key(&tx.id()) {
                    continue;
                }
                inflight.insert(tx.id(), height);
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

    async fn finalized(
        &self,
        header: BlockHeader,
        body: Bytes,
        finalization: Option<Vec<u8>>,
    ) -> Result<(), ApplyFailure> {
        let s = &self.state;
        // A finalized body was verified by a quorum; one that does not
        // decode here means this node is broken, not the block.
        let body = BlockBody::decode(&body).map_err(ApplyFailure::new)?;
        s.chain
            .record(&header, finalization.as_deref())
            .map_err(ApplyFailure::new)?;
        // Model bytes are stored by the ledger (through the Hub) before the
        // block commits; executor draws use the header's verified seed.
        let out = s
            .ledger
            .apply_block(header.height, header.seed.as_ref(), &body.txs)
            .map_err(ApplyFailure::new)?;
        if !out.already_applied {
            s.metrics.blocks.inc();
            s.metrics.txs_applied.inc_by(out.applied as u64);
            s.metrics.txs_failed.inc_by(out.failed as u64);
            s.metrics.receipts.inc_by(out.receipts.len() as u64);
            if !body.txs.is_empty() {
                info!(height = header.height, txs = body.txs.len(), root = %out.root, "executed block");
            }
        }
        self.check_claim(&header);
        s.metrics.height.set(header.height as i64);
        s.prune_mempool(header.height);
        // Included transactions leave the pool even when they failed (a
        // failure pays the fee and uses the nonce); a transaction the
        // ledger skipped for a nonce gap stays.
        {
            let mut pool = s.mempool.lock().expect("mempool lock");
            for t in &body.txs {
                if s.ledger.tx_outcome(&t.id()).ok().flatten().is_some() {
                    pool.remove(&t.id(), &t.tx.from, t.tx.nonce);
                }
            }
        }
        s.executed.send_replace(header.height);
        Ok(())
    }

    fn gossiped(&self, tx: verity_primitives::SignedTx) {
        // Admission can be expensive (a publish's model is inspected): it
        // runs on the node's own runtime, never on consensus's; when that
        // queue is full, the gossiped transaction is dropped.
        if let Some(inbox) = &self.state.gossip_inbox {
            let _ = inbox.try_send(tx);
        }
    }

    fn gossip_outbound(&self) -> Option<crate::consensus::gossip::GossipOutbound> {
        self.gossip.lock().expect("gossip lock").take()
    }

    fn halt(&self, height: u64, cause: &ApplyFailure) {
        self.state
            .halt(format!("could not apply finalized block {height}: {cause}"));
    }
}

impl LedgerApp {
    /// A finalized header's state claim must match this node's own root at
    /// that height; otherwise this node's state diverged from the one the
    /// network finalized, and it stops serving finality.
    fn check_claim(&self, header: &BlockHeader) {
        let claim = header.claim;
        if claim.height == 0 {
            return;
        }
        match self.state.ledger.root_at(claim.height) {
            Ok(Some(root)) if root == claim.root => {}
            Ok(Some(root)) => self.state.halt(format!(
                "state diverged: finalized block {} claims root {:#x} after height {}, this node computed {:#x}",
                header.height, claim.root, claim.height, root
            )),
            Ok(None) => {}
            Err(e) => warn!(%e, "cannot read a state root to check a claim"),
        }
    }
}
