//! The boundary between consensus and the application (the ledger).
//!
//! [`Application`] is what the node implements. [`Adapter`] turns it into the
//! commonware `Application`/`VerifyingApplication`/`Reporter` that marshal's
//! inline wrapper drives, builds headers (height, parent, timestamp from the
//! runtime clock, body hash), and delivers finalized blocks in height order
//! from a dedicated task, together with the encoded finalization
//! certificate when the node holds one.

use super::{
    block::Block,
    seed::{check_seed, SeedCache},
    Context, MarshalMailbox, Scheme,
};
use bytes::Bytes;
use commonware_codec::Encode;
use commonware_consensus::{
    marshal::{
        ancestry::{AncestorStream, BlockProvider},
        Update,
    },
    types::Height,
    Heightable, Reporter,
};
use commonware_cryptography::Digestible;
use commonware_runtime::{Clock, Metrics, Spawner};
use commonware_utils::{acknowledgement::Exact, channel::mpsc, Acknowledgement, SystemTimeExt};
use futures::StreamExt;
use rand::Rng;
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use tracing::{debug, error, warn};
use verity_primitives::{codec::sha256, BlockHeader, StateClaim, B256};

/// What the node plugs into consensus.
pub trait Application: Clone + Send + Sync + 'static {
    /// Builds the claim and the body of a new block on `parent`. Consensus
    /// fills in height, parent digest, timestamp and body hash.
    fn propose(&self, parent: &BlockHeader) -> impl Future<Output = (StateClaim, Bytes)> + Send;

    /// Checks a proposed block on `parent` (height, parent link, timestamp
    /// monotonicity and body hash are already checked). `false` votes
    /// against it; only return `false` for blocks that are invalid for good.
    fn verify(
        &self,
        parent: &BlockHeader,
        block: &BlockHeader,
        body: &Bytes,
    ) -> impl Future<Output = bool> + Send;

    /// Called for every finalized block from height 1 upward, in order, at
    /// least once each (after a restart a block may be delivered again; the
    /// application must be idempotent). `finalization` is the encoded
    /// certificate for this block when the node has one (blocks finalized
    /// implicitly by a descendant's certificate have none).
    ///
    /// An `Err` means the block could not be processed (storage failure,
    /// a missing model file): the block is not acknowledged; the finalizer
    /// retries it and, if it keeps failing, calls [`Application::halt`].
    fn finalized(
        &self,
        header: BlockHeader,
        body: Bytes,
        finalization: Option<Vec<u8>>,
    ) -> impl Future<Output = Result<(), ApplyFailure>> + Send;

    /// Block `height` could not be processed after every retry: the node
    /// must stop serving and stop (a restart resumes from the last
    /// committed height, and the block is delivered again).
    fn halt(&self, height: u64, cause: &ApplyFailure);

    /// A transaction another validator gossiped: admit it like one from
    /// the API (without gossiping it again). Default: ignore.
    fn gossiped(&self, _tx: verity_primitives::SignedTx) {}

    /// The stream of locally admitted transactions to gossip to the other
    /// validators; taken once, when the validator starts. Default: none.
    fn gossip_outbound(&self) -> Option<super::gossip::GossipOutbound> {
        None
    }
}

/// A finalized block that the application could not process.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyFailure(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl ApplyFailure {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(e))
    }
}

/// How often the finalizer tries a block before halting, and the pause
/// before the first retry (doubled each time).
pub const APPLY_ATTEMPTS: u32 = 5;
pub const APPLY_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// A finalized block with its certificate, if the node holds one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedBlock {
    pub header: BlockHeader,
    pub body: Bytes,
    /// Encoded finalization certificate of this block (see
    /// [`super::verify_finalization`]).
    pub finalization: Option<Vec<u8>>,
}

/// Header timing rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockTiming {
    /// A proposer waits until `parent.timestamp + min_interval`.
    pub min_interval: Duration,
    /// Verifiers refuse timestamps further than this ahead of their clock.
    pub max_future: Duration,
    /// Bodies larger than this are not proposed (peers would not decode them).
    pub max_body_bytes: usize,
}

/// Adapts an [`Application`] to commonware's marshal interfaces.
#[derive(Clone)]
pub(crate) struct Adapter<A> {
    app: A,
    genesis: Block,
    timing: BlockTiming,
    finalized_tx: mpsc::Sender<(Block, Exact)>,
    tip: Arc<AtomicU64>,
    /// Seeds of the views this node has seen certificates for.
    seeds: SeedCache,
    /// Checks header seeds against the group identity.
    scheme: Scheme,
}

/// How long a proposer waits for its parent view's seed to be reported.
const SEED_WAIT: Duration = Duration::from_secs(1);

impl<A: Application> Adapter<A> {
    /// Creates the adapter and the receiving end of the finalized-block
    /// queue, to be drained by [`run_finalizer`].
    pub(crate) fn new(
        app: A,
        timing: BlockTiming,
        queue: usize,
        tip: Arc<AtomicU64>,
        seeds: SeedCache,
        scheme: Scheme,
    ) -> (Self, mpsc::Receiver<(Block, Exact)>) {
        let (finalized_tx, finalized_rx) = mpsc::channel(queue);
        let adapter = Self {
            app,
            genesis: Block::genesis(),
            timing,
            finalized_tx,
            tip,
            seeds,
            scheme,
        };
        (adapter, finalized_rx)
    }
}

impl<E, A> commonware_consensus::Application<E> for Adapter<A>
where
    E: Rng + Spawner + Metrics + Clock,
    A: Application,
{
    type SigningScheme = Scheme;
    type Context = Context;
    type Block = Block;

    async fn genesis(&mut self) -> Block {
        self.genesis.clone()
    }

    async fn propose<P: BlockProvider<Block = Block>>(
        &mut self,
        (runtime, context): (E, Context),
        mut ancestry: AncestorStream<P, Block>,
    ) -> Option<Block> {
        let parent = ancestry.next().await?;
        let parent = parent.header();
        let height = parent.height.checked_add(1)?;

        // The parent view's seed: reported with its notarization, which
        // this node holds since it builds on it.
        let parent_view = context.parent.0.get();
        let seed = if parent.height == 0 {
            None
        } else {
            let deadline = runtime.current() + SEED_WAIT;
            loop {
                if let Some(seed) = self.seeds.get(parent_view) {
                    break Some(seed);
                }
                if runtime.current() >= deadline {
                    warn!(
                        view = parent_view,
                        "no seed for the parent view; not proposing"
                    );
                    return None;
                }
                runtime.sleep(Duration::from_millis(10)).await;
            }
        };

        // Pace block production: consensus starts the next view as soon as
        // the previous one is notarized, which on a LAN would be a block every
        // few milliseconds.
        let earliest = parent
            .timestamp_ms
            .saturating_add(self.timing.min_interval.as_millis() as u64);
        let now = runtime.current().epoch_millis();
        if now < earliest {
            runtime.sleep(Duration::from_millis(earliest - now)).await;
        }

        let (claim, body) = self.app.propose(parent).await;
        if body.len() > self.timing.max_body_bytes {
            warn!(
                size = body.len(),
                max = self.timing.max_body_bytes,
                "application proposed an oversized body; skipping proposal"
            );
            return None;
        }
        let timestamp_ms = runtime
            .current()
            .epoch_millis()
            .max(parent.timestamp_ms.saturating_add(1));
        let header = BlockHeader {
            parent: parent.digest(),
            height,
            timestamp_ms,
            claim,
            body_hash: B256::from(sha256(&body)),
            seed,
        };
        match Block::new(header, body) {
            Ok(block) => Some(block),
            Err(e) => {
                warn!(error = %e, "failed to build block");
                None
            }
        }
    }
}

impl<E, A> commonware_consensus::VerifyingApplication<E> for Adapter<A>
where
    E: Rng + Spawner + Metrics + Clock,
    A: Application,
{
    async fn verify<P: BlockProvider<Block = Block>>(
        &mut self,
        (runtime, context): (E, Context),
        mut ancestry: AncestorStream<P, Block>,
    ) -> bool {
        let Some(block) = ancestry.next().await else {
            return false;
        };
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        // Parent digest and height are checked by marshal's inline wrapper;
        // body hash by `Block::new` / decoding. Re-check the cheap ones anyway.
        let (header, parent_header) = (block.header(), parent.header());
        if header.parent != parent_header.digest()
            || Some(header.height) != parent_header.height.checked_add(1)
        {
            return false;
        }
        if header.timestamp_ms <= parent_header.timestamp_ms {
            debug!(height = header.height, "timestamp not after parent");
            return false;
        }
        let now = runtime.current().epoch_millis();
        if header.timestamp_ms > now.saturating_add(self.timing.max_future.as_millis() as u64) {
            debug!(height = header.height, "timestamp too far in the future");
            return false;
        }
        if let Err(e) = check_seed(
            &self.scheme,
            parent_header.height,
            context.parent.0.get(),
            header.seed.as_ref(),
        ) {
            warn!(height = header.height, error = %e, "rejecting block: seed");
            return false;
        }
        self.app.verify(parent_header, header, block.body()).await
    }
}

impl<A: Application> Reporter for Adapter<A> {
    type Activity = Update<Block>;

    async fn report(&mut self, activity: Self::Activity) {
        match activity {
            Update::Tip(_, height, _) => {
                self.tip.fetch_max(height.get(), Ordering::Relaxed);
            }
            Update::Block(block, ack) => {
                // The queue is larger than marshal's pending-ack window, so
                // this does not block marshal. If the finalizer is gone the
                // ack is dropped, which stops marshal (shutdown).
                let _ = self.finalized_tx.send((block, ack)).await;
            }
        }
    }
}

/// Delivers finalized blocks to the application in order, attaching the
/// certificate, and acknowledges each to marshal once the application has
/// processed it (so a crash before the ack re-delivers the block). A block
/// the application fails on is retried with backoff; it is never
/// acknowledged unprocessed: after [`APPLY_ATTEMPTS`] the application is
/// halted and the finalizer stops.
pub(crate) async fn run_finalizer<E: Clock, A: Application>(
    runtime: E,
    app: A,
    marshal: MarshalMailbox,
    mut queue: mpsc::Receiver<(Block, Exact)>,
    processed: Arc<AtomicU64>,
) {
    while let Some((block, ack)) = queue.recv().await {
        let height: Height = block.height();
        let finalization = marshal
            .get_finalization(height)
            .await
            .filter(|f| f.proposal.payload == block.digest())
            .map(|f| f.encode().to_vec());
        let (header, body) = block.into_parts();
        let mut pause = APPLY_RETRY_PAUSE;
        let mut attempt = 1;
        loop {
            match app
                .finalized(header.clone(), body.clone(), finalization.clone())
                .await
            {
                Ok(()) => break,
                Err(e) if attempt < APPLY_ATTEMPTS => {
                    warn!(height = height.get(), attempt, error = %e, "processing a finalized block failed; retrying");
                    runtime.sleep(pause).await;
                    pause = pause.saturating_mul(2);
                    attempt += 1;
                }
                Err(e) => {
                    error!(height = height.get(), error = %e, "processing a finalized block failed for good; halting (a restart resumes from the last committed height)");
                    app.halt(height.get(), &e);
                    // The ack is dropped, never given: marshal redelivers
                    // this block after a restart.
                    return;
                }
            }
        }
        processed.fetch_max(height.get(), Ordering::Relaxed);
        ack.acknowledge();
    }
}
