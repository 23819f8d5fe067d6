//! Runtime-generic wiring of one validator: the block buffer (broadcast of
//! full blocks), marshal (finalized block/certificate archives, backfill,
//! in-order delivery), the inline verification wrapper around the
//! application, and the simplex consensus engine.
//!
//! Everything here is generic over commonware runtime traits, so the same
//! code runs on the tokio runtime and on the deterministic simulator.

use super::{
    app::{run_finalizer, Adapter, Application, BlockTiming},
    block::Block,
    keys::{NetworkIdentity, ValidatorKeys},
    node::{ConsensusHandle, Timeouts},
    seed::{SeedCache, SeedReporter},
    ConsensusError, Finalization, MarshalMailbox, PublicKey, Scheme, EPOCH, EPOCH_LENGTH,
};
use commonware_broadcast::buffered;
use commonware_consensus::{
    marshal::{self, core::Actor as MarshalActor, resolver::handler, standard::Inline},
    simplex::{self, elector::Random},
    types::{FixedEpocher, ViewDelta},
};
use commonware_cryptography::{certificate::ConstantProvider, sha256::Digest};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Strategy;
use commonware_resolver::Resolver;
use commonware_runtime::{
    buffer::paged::CacheRef, BufferPooler, Clock, Handle, Metrics, Spawner, Storage,
};
use commonware_storage::archive::immutable;
use commonware_utils::{
    channel::{mpsc, oneshot},
    NZUsize, NZU16, NZU64,
};
use futures::future::try_join_all;
use rand::{CryptoRng, Rng};
use std::{
    num::{NonZeroU16, NonZeroU64, NonZeroUsize},
    sync::{atomic::AtomicU64, Arc},
};
use tracing::{error, warn};

const PRUNABLE_ITEMS_PER_SECTION: NonZeroU64 = NZU64!(4_096);
const IMMUTABLE_ITEMS_PER_SECTION: NonZeroU64 = NZU64!(262_144);
const FREEZER_TABLE_RESIZE_FREQUENCY: u8 = 4;
const FREEZER_TABLE_RESIZE_CHUNK_SIZE: u32 = 2u32.pow(16);
const FREEZER_JOURNAL_TARGET_SIZE: u64 = 1024 * 1024 * 1024;
const REPLAY_BUFFER: NonZeroUsize = NZUsize!(8 * 1024 * 1024);
const WRITE_BUFFER: NonZeroUsize = NZUsize!(1024 * 1024);
const PAGE_CACHE_PAGE_SIZE: NonZeroU16 = NZU16!(4_096);
const PAGE_CACHE_CAPACITY: NonZeroUsize = NZUsize!(2_048);
const MAX_REPAIR: NonZeroUsize = NZUsize!(20);
const MAX_PENDING_ACKS: NonZeroUsize = NZUsize!(16);
/// Marshal keeps blocks this many times the activity timeout behind tip.
const VIEW_RETENTION_MULTIPLIER: u64 = 10;

/// The marshal-driven application wrapper (inline verification: our block
/// does not carry its consensus context).
type Marshaled<E, A> = Inline<E, Scheme, Adapter<A>, Block, FixedEpocher>;

/// Everything one validator engine needs besides its network channels.
pub struct EngineConfig<B, P, S> {
    pub blocker: B,
    pub provider: P,
    /// Prefix of every storage partition of this validator.
    pub partition_prefix: String,
    pub keys: ValidatorKeys,
    pub network: NetworkIdentity,
    /// Signing namespace (see [`super::consensus_namespace`]).
    pub namespace: Vec<u8>,
    pub timeouts: Timeouts,
    pub max_body_bytes: usize,
    pub mailbox_size: usize,
    pub deque_size: usize,
    /// Initial size of the freezer tables (entries, power of two).
    pub freezer_table_initial_size: u32,
    pub strategy: S,
}

/// The network channels the engine runs on.
pub struct Channels<S1, R1, S2, R2, S3, R3, S4, R4, RS> {
    pub votes: (S1, R1),
    pub certificates: (S2, R2),
    pub resolver: (S3, R3),
    pub broadcast: (S4, R4),
    pub marshal: (mpsc::Receiver<handler::Message<Digest>>, RS),
}

fn archive_config<C>(
    prefix: &str,
    name: &str,
    page_cache: &CacheRef,
    table_size: u32,
    codec_config: C,
) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: table_size,
        freezer_table_resize_frequency: FREEZER_TABLE_RESIZE_FREQUENCY,
        freezer_table_resize_chunk_size: FREEZER_TABLE_RESIZE_CHUNK_SIZE,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_key_write_buffer: WRITE_BUFFER,
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_write_buffer: WRITE_BUFFER,
        freezer_value_target_size: FREEZER_JOURNAL_TARGET_SIZE,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        ordinal_write_buffer: WRITE_BUFFER,
        items_per_section: IMMUTABLE_ITEMS_PER_SECTION,
        codec_config,
        replay_buffer: REPLAY_BUFFER,
    }
}

/// Initializes storage and actors for one validator and starts them on
/// `channels`. Returns the query handle and the handle of the task that
/// supervises every actor of this validator (aborting it stops them all;
/// it completes only if an actor stops).
pub async fn start_engine<E, B, P, S, A, S1, R1, S2, R2, S3, R3, S4, R4, RS>(
    context: E,
    cfg: EngineConfig<B, P, S>,
    app: A,
    channels: Channels<S1, R1, S2, R2, S3, R3, S4, R4, RS>,
) -> Result<(ConsensusHandle, Handle<()>), ConsensusError>
where
    E: BufferPooler + Clock + Rng + CryptoRng + Spawner + Storage + Metrics,
    B: Blocker<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    S: Strategy,
    A: Application,
    S1: Sender<PublicKey = PublicKey>,
    R1: Receiver<PublicKey = PublicKey>,
    S2: Sender<PublicKey = PublicKey>,
    R2: Receiver<PublicKey = PublicKey>,
    S3: Sender<PublicKey = PublicKey>,
    R3: Receiver<PublicKey = PublicKey>,
    S4: Sender<PublicKey = PublicKey>,
    R4: Receiver<PublicKey = PublicKey>,
    RS: Resolver<Key = handler::Request<Digest>, PublicKey = PublicKey>,
{
    cfg.timeouts.validate()?;
    let scheme = cfg.network.signer_scheme(&cfg.namespace, &cfg.keys)?;
    let (ready_tx, ready_rx) = oneshot::channel();
    // Every actor is created inside this task, so that they are all its
    // descendants and aborting it stops the whole validator.
    let task = context
        .with_label("validator")
        .spawn(move |context| run(context, cfg, scheme, app, channels, ready_tx));
    match ready_rx.await {
        Ok(Ok(handle)) => Ok((handle, task)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ConsensusError::Stopped),
    }
}

async fn run<E, B, P, S, A, S1, R1, S2, R2, S3, R3, S4, R4, RS>(
    context: E,
    cfg: EngineConfig<B, P, S>,
    scheme: Scheme,
    app: A,
    channels: Channels<S1, R1, S2, R2, S3, R3, S4, R4, RS>,
    ready: oneshot::Sender<Result<ConsensusHandle, ConsensusError>>,
) where
    E: BufferPooler + Clock + Rng + CryptoRng + Spawner + Storage + Metrics,
    B: Blocker<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    S: Strategy,
    A: Application,
    S1: Sender<PublicKey = PublicKey>,
    R1: Receiver<PublicKey = PublicKey>,
    S2: Sender<PublicKey = PublicKey>,
    R2: Receiver<PublicKey = PublicKey>,
    S3: Sender<PublicKey = PublicKey>,
    R3: Receiver<PublicKey = PublicKey>,
    S4: Sender<PublicKey = PublicKey>,
    R4: Receiver<PublicKey = PublicKey>,
    RS: Resolver<Key = handler::Request<Digest>, PublicKey = PublicKey>,
{
    let me = cfg.keys.public_key();
    let prefix = cfg.partition_prefix.clone();
    // Block buffer: broadcasts full blocks and caches recent ones.
    let (buffer, buffer_mailbox) = buffered::Engine::new(
        context.with_label("buffer"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: cfg.mailbox_size,
            deque_size: cfg.deque_size,
            priority: true,
            codec_config: cfg.max_body_bytes,
            peer_provider: cfg.provider,
        },
    );

    // Finalized archives.
    let page_cache = CacheRef::from_pooler(&context, PAGE_CACHE_PAGE_SIZE, PAGE_CACHE_CAPACITY);
    let finalizations = immutable::Archive::<_, Digest, Finalization>::init(
        context.with_label("finalizations_by_height"),
        archive_config(
            &prefix,
            "finalizations",
            &page_cache,
            cfg.freezer_table_initial_size,
            (),
        ),
    )
    .await;
    let finalizations = match finalizations {
        Ok(archive) => archive,
        Err(e) => {
            let _ = ready.send(Err(ConsensusError::Config(format!(
                "finalizations archive: {e}"
            ))));
            return;
        }
    };
    let blocks = immutable::Archive::<_, Digest, Block>::init(
        context.with_label("finalized_blocks"),
        archive_config(
            &prefix,
            "blocks",
            &page_cache,
            cfg.freezer_table_initial_size,
            cfg.max_body_bytes,
        ),
    )
    .await;
    let blocks = match blocks {
        Ok(archive) => archive,
        Err(e) => {
            let _ = ready.send(Err(ConsensusError::Config(format!("blocks archive: {e}"))));
            return;
        }
    };

    // Marshal.
    let epocher = FixedEpocher::new(EPOCH_LENGTH);
    let t = cfg.timeouts;
    let (marshal, marshal_mailbox, _processed): (_, MarshalMailbox, _) = MarshalActor::init(
        context.with_label("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::new(scheme.clone()),
            epocher: epocher.clone(),
            partition_prefix: prefix.clone(),
            mailbox_size: cfg.mailbox_size,
            view_retention_timeout: ViewDelta::new(
                t.activity_timeout_views
                    .saturating_mul(VIEW_RETENTION_MULTIPLIER),
            ),
            prunable_items_per_section: PRUNABLE_ITEMS_PER_SECTION,
            replay_buffer: REPLAY_BUFFER,
            key_write_buffer: WRITE_BUFFER,
            value_write_buffer: WRITE_BUFFER,
            block_codec_config: cfg.max_body_bytes,
            max_repair: MAX_REPAIR,
            max_pending_acks: MAX_PENDING_ACKS,
            page_cache: page_cache.clone(),
            strategy: cfg.strategy.clone(),
        },
    )
    .await;

    // Application adapter and the in-order delivery task.
    let tip = Arc::new(AtomicU64::new(0));
    let processed = Arc::new(AtomicU64::new(0));
    let timing = BlockTiming {
        min_interval: t.block_interval,
        max_future: t.max_future_skew,
        max_body_bytes: cfg.max_body_bytes,
    };
    let seeds = SeedCache::default();
    let (adapter, finalized_rx) = Adapter::new(
        app.clone(),
        timing,
        MAX_PENDING_ACKS.get() * 4,
        tip.clone(),
        seeds.clone(),
        scheme.clone(),
    );
    let marshaled: Marshaled<E, A> = Inline::new(
        context.with_label("marshaled"),
        adapter.clone(),
        marshal_mailbox.clone(),
        epocher,
    );

    // Consensus.
    let consensus = simplex::Engine::new(
        context.with_label("consensus"),
        simplex::Config {
            epoch: EPOCH,
            scheme,
            automaton: marshaled.clone(),
            relay: marshaled.clone(),
            reporter: SeedReporter {
                inner: marshal_mailbox.clone(),
                seeds,
            },
            partition: format!("{prefix}-consensus"),
            mailbox_size: cfg.mailbox_size,
            leader_timeout: t.leader_timeout,
            certification_timeout: t.certification_timeout,
            timeout_retry: t.timeout_retry,
            fetch_timeout: t.fetch_timeout,
            activity_timeout: ViewDelta::new(t.activity_timeout_views),
            skip_timeout: ViewDelta::new(t.skip_timeout_views),
            fetch_concurrent: t.fetch_concurrent,
            replay_buffer: REPLAY_BUFFER,
            write_buffer: WRITE_BUFFER,
            blocker: cfg.blocker,
            page_cache,
            elector: Random,
            strategy: cfg.strategy,
        },
    );

    let handle = ConsensusHandle::new(marshal_mailbox.clone(), tip, processed.clone());
    if ready.send(Ok(handle)).is_err() {
        return;
    }
    let finalizer = context.with_label("finalizer").spawn(move |runtime| {
        run_finalizer(runtime, app, marshal_mailbox, finalized_rx, processed)
    });
    let buffer_handle = buffer.start(channels.broadcast);
    // Start marshal (and thus the application) before consensus so that
    // replayed consensus events can be handled on restart.
    let marshal_handle = marshal.start(adapter, buffer_mailbox, channels.marshal);
    let consensus_handle =
        consensus.start(channels.votes, channels.certificates, channels.resolver);
    match try_join_all(vec![
        finalizer,
        buffer_handle,
        marshal_handle,
        consensus_handle,
    ])
    .await
    {
        Ok(_) => warn!("validator engine stopped"),
        Err(e) => error!(?e, "validator engine failed"),
    }
}
