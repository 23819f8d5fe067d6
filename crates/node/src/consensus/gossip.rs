//! Transaction gossip among validators.
//!
//! A transaction one validator admits (from a client or from its executor)
//! is sent to every other validator on its own p2p channel, so that its
//! inclusion does not depend on the node it was sent to being the next
//! leader, or staying up. A validator that receives one runs the same
//! admission checks as its API does ([`Application::gossiped`]) before it
//! enters its pool; it does not forward it again (validators form a full
//! mesh). Messages are bounded by the channel's rate quota and by
//! [`GOSSIP_MAX_BYTES`]; an undecodable one is dropped.

use super::{app::Application, PublicKey};
use bytes::Bytes;
use commonware_p2p::{Receiver, Recipients, Sender};
use futures::{
    channel::mpsc,
    future::{select, Either},
    StreamExt,
};
use std::pin::pin;
use tracing::{debug, warn};
use verity_primitives::{codec::Canonical, SignedTx};

/// Largest gossiped transaction (the largest the mempool admits).
pub const GOSSIP_MAX_BYTES: usize = crate::application::MAX_TX_BYTES;

/// Transactions admitted locally, waiting to be sent to the other
/// validators (bounded: when full, the newest are not gossiped).
pub type GossipOutbound = mpsc::Receiver<Bytes>;

/// Sends what `outbound` yields to every validator, and hands what peers
/// send to `app`. Ends when both sides are closed.
pub async fn run<A, S, R>(app: A, mut sender: S, mut receiver: R, mut outbound: GossipOutbound)
where
    A: Application,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    loop {
        let next = {
            let out = pin!(outbound.next());
            let inb = pin!(receiver.recv());
            match select(out, inb).await {
                Either::Left((msg, _)) => Either::Left(msg),
                Either::Right((msg, _)) => Either::Right(msg),
            }
        };
        match next {
            Either::Left(Some(tx)) => {
                if let Err(e) = sender.send(Recipients::All, tx, false).await {
                    debug!(?e, "gossip send failed");
                }
            }
            Either::Left(None) => {
                // Nothing more to send; keep receiving.
                while let Ok((peer, msg)) = receiver.recv().await {
                    deliver(&app, &peer, msg.as_ref());
                }
                return;
            }
            Either::Right(Ok((peer, msg))) => deliver(&app, &peer, msg.as_ref()),
            Either::Right(Err(e)) => {
                warn!(?e, "gossip channel closed");
                return;
            }
        }
    }
}

fn deliver<A: Application>(app: &A, peer: &PublicKey, msg: &[u8]) {
    if msg.len() > GOSSIP_MAX_BYTES {
        debug!(%peer, size = msg.len(), "dropping an oversized gossiped transaction");
        return;
    }
    match SignedTx::decode(msg) {
        Ok(tx) => app.gossiped(tx),
        Err(e) => debug!(%peer, %e, "dropping an undecodable gossiped transaction"),
    }
}
