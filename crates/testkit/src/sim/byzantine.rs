//! Byzantine validators for the simulation: the real [`LedgerApp`] with one
//! behaviour changed, one mock per attack.

use bytes::Bytes;
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};
use verity_node::{
    application::LedgerApp,
    consensus::{gossip::GossipOutbound, Application, ApplyFailure},
    state::NodeState,
};
use verity_primitives::{
    block::BlockBody, codec::Canonical, Address, BlockHeader, PrivateKey, SignedTx, StateClaim, Tx,
    TxBody, B256,
};

/// What a Byzantine proposer does to the blocks it proposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Adds transactions with a bad signature or another chain's: honest
    /// validators vote against the whole block.
    ForgedTransactions,
    /// Adds transactions that are authentic but must not apply, or must
    /// pay: an unfunded sender's, a nonce gap, a duplicate, and a payable
    /// one that fails.
    UnpaidTransactions,
    /// Claims a state root that nobody computed.
    LyingStateClaim,
}

/// A proposer running [`Attack`]; verifies and executes honestly.
#[derive(Clone)]
pub struct ByzantineApp {
    inner: LedgerApp,
    attack: Attack,
    state: Arc<NodeState>,
    nonce: Arc<AtomicU64>,
}

impl ByzantineApp {
    pub fn new(inner: LedgerApp, attack: Attack, state: Arc<NodeState>) -> Self {
        Self {
            inner,
            attack,
            state,
            nonce: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The key whose failing transactions this proposer includes (funded in
    /// the simulations that use this attack).
    pub fn spammer() -> PrivateKey {
        PrivateKey::from_dev_seed("sim-byzantine-spammer")
    }

    fn junk(&self, chain_id: u64, real: &[SignedTx]) -> Vec<SignedTx> {
        let spammer = Self::spammer();
        let broke = PrivateKey::from_dev_seed("sim-unfunded");
        let tx = |key: &PrivateKey, chain_id, nonce, amount| {
            Tx {
                chain_id,
                from: key.address(),
                nonce,
                body: TxBody::Transfer {
                    to: Address::repeat_byte(0xbb),
                    amount,
                },
            }
            .sign(key)
        };
        let next = self
            .state
            .ledger
            .account(&spammer.address())
            .map(|a| a.nonce)
            .unwrap_or(0);
        self.nonce.fetch_add(1, Ordering::Relaxed);
        if self.attack == Attack::ForgedTransactions {
            let mut bad_sig = tx(&spammer, chain_id, next, 1);
            bad_sig.tx.nonce += 1_000;
            return vec![bad_sig, tx(&spammer, chain_id + 1, next, 1)];
        }
        let mut out = vec![
            tx(&broke, chain_id, 0, 5),
            tx(&spammer, chain_id, next + 10, 1),
            // Payable, and fails: the amount exceeds the balance.
            tx(&spammer, chain_id, next, u128::MAX / 2),
        ];
        out.extend(real.first().cloned());
        out
    }
}

impl Application for ByzantineApp {
    async fn propose(&self, parent: &BlockHeader) -> (StateClaim, Bytes) {
        let (claim, body) = self.inner.propose(parent).await;
        match self.attack {
            Attack::ForgedTransactions | Attack::UnpaidTransactions => {
                let mut body = BlockBody::decode(&body).unwrap_or_default();
                let junk = self.junk(self.state.ledger.chain_id(), &body.txs);
                body.txs.extend(junk);
                (claim, Bytes::from(body.encode()))
            }
            Attack::LyingStateClaim => {
                let lie = StateClaim {
                    height: claim.height.max(1),
                    root: B256::repeat_byte(0x66),
                };
                (lie, body)
            }
        }
    }

    async fn verify(&self, parent: &BlockHeader, block: &BlockHeader, body: &Bytes) -> bool {
        self.inner.verify(parent, block, body).await
    }

    async fn finalized(
        &self,
        header: BlockHeader,
        body: Bytes,
        finalization: Option<Vec<u8>>,
    ) -> Result<(), ApplyFailure> {
        self.inner.finalized(header, body, finalization).await
    }

    fn halt(&self, height: u64, cause: &ApplyFailure) {
        self.inner.halt(height, cause)
    }

    fn gossiped(&self, tx: SignedTx) {
        self.inner.gossiped(tx)
    }

    fn gossip_outbound(&self) -> Option<GossipOutbound> {
        self.inner.gossip_outbound()
    }
}
