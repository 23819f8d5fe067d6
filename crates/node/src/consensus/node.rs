//! Running a validator: p2p (authenticated discovery over TCP, ed25519 peer
//! keys), the engine, and a query handle.
//!
//! [`run_validator`] is generic over the commonware runtime. [`start`] runs
//! it on a dedicated thread with the commonware tokio runtime, storing all
//! consensus data under `<dir>/consensus`.

use super::{
    app::{Application, FinalizedBlock},
    block::Block,
    consensus_namespace,
    engine::{start_engine, Channels, EngineConfig},
    keys::{NetworkIdentity, ValidatorKeys},
    p2p_namespace, ConsensusError, MarshalMailbox, PublicKey, EPOCH,
};
use commonware_codec::Encode;
use commonware_consensus::types::Height;
use commonware_consensus::{marshal, Heightable};
use commonware_cryptography::Digestible;
use commonware_p2p::{authenticated::discovery, Ingress, Manager};
use commonware_parallel::Sequential;
use commonware_runtime::{
    tokio as cw_tokio, BufferPooler, Clock, Handle, Metrics, Network as RNetwork,
    Resolver as RResolver, Runner as _, Spawner, Storage,
};
use commonware_utils::{channel::oneshot, NZU32};
use futures::future::{select, Either};
use governor::Quota;
use rand::{CryptoRng, Rng};
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};
use tracing::{info, warn};
use verity_primitives::B256;

const VOTES_CHANNEL: u64 = 0;
const CERTIFICATES_CHANNEL: u64 = 1;
const RESOLVER_CHANNEL: u64 = 2;
const BROADCAST_CHANNEL: u64 = 3;
const MARSHAL_CHANNEL: u64 = 4;
const TX_CHANNEL: u64 = 5;
/// How long [`ValidatorService::stop`] waits for actors to wind down.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Time given to aborted tasks to be dropped before the runtime is.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);
/// Messages queued per channel before the network applies backpressure.
const MESSAGE_BACKLOG: usize = 1024;

/// Consensus timing. [`Timeouts::devnet`] suits a loopback or LAN devnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long to wait for the leader's proposal before voting to skip.
    pub leader_timeout: Duration,
    /// How long to wait for a notarization before voting to skip.
    pub certification_timeout: Duration,
    /// How often to re-broadcast a skip vote while stuck.
    pub timeout_retry: Duration,
    /// Timeout of a request for missing certificates.
    pub fetch_timeout: Duration,
    /// Views of votes kept around behind the finalized tip.
    pub activity_timeout_views: u64,
    /// Views a leader may be inactive before it is skipped immediately.
    pub skip_timeout_views: u64,
    /// Concurrent certificate fetches.
    pub fetch_concurrent: usize,
    /// Minimum time between a block's parent timestamp and the block.
    pub block_interval: Duration,
    /// Largest accepted lead of a block timestamp over the local clock.
    pub max_future_skew: Duration,
}

impl Timeouts {
    /// Blocks every ~250 ms; a crashed leader costs ~1 s.
    pub const fn devnet() -> Self {
        Self {
            leader_timeout: Duration::from_secs(1),
            certification_timeout: Duration::from_secs(2),
            timeout_retry: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(1),
            activity_timeout_views: 64,
            skip_timeout_views: 16,
            fetch_concurrent: 4,
            block_interval: Duration::from_millis(250),
            max_future_skew: Duration::from_millis(500),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConsensusError> {
        let bad = |m: &str| Err(ConsensusError::Config(m.into()));
        if self.leader_timeout.is_zero() || self.certification_timeout < self.leader_timeout {
            return bad("need 0 < leader_timeout <= certification_timeout");
        }
        if self.block_interval * 2 >= self.leader_timeout {
            return bad("block_interval must be under half the leader_timeout");
        }
        if self.skip_timeout_views == 0 || self.skip_timeout_views > self.activity_timeout_views {
            return bad("need 0 < skip_timeout_views <= activity_timeout_views");
        }
        if self.fetch_concurrent == 0 || self.fetch_timeout.is_zero() {
            return bad("fetch_concurrent and fetch_timeout must be non-zero");
        }
        Ok(())
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::devnet()
    }
}

/// Everything needed to run one validator.
#[derive(Clone, Debug)]
pub struct ValidatorConfig {
    /// Node directory; consensus stores under `<dir>/consensus` (used by
    /// [`start`]; [`run_validator`] uses the runtime's storage as is).
    pub dir: PathBuf,
    /// Chain id: fixes the signing and p2p namespaces.
    pub chain_id: String,
    pub keys: ValidatorKeys,
    pub network: NetworkIdentity,
    /// Validators and their dialable addresses (our own entry, if present,
    /// is the address we advertise).
    pub peers: Vec<(PublicKey, SocketAddr)>,
    /// Socket to listen on.
    pub listen: SocketAddr,
    pub timeouts: Timeouts,
    /// Largest block body accepted from the network.
    pub max_body_bytes: usize,
    /// Tokio worker threads (used by [`start`]).
    pub worker_threads: usize,
    pub mailbox_size: usize,
}

impl ValidatorConfig {
    /// A config with devnet defaults.
    pub fn new(
        dir: impl Into<PathBuf>,
        chain_id: impl Into<String>,
        keys: ValidatorKeys,
        network: NetworkIdentity,
        peers: Vec<(PublicKey, SocketAddr)>,
        listen: SocketAddr,
    ) -> Self {
        Self {
            dir: dir.into(),
            chain_id: chain_id.into(),
            keys,
            network,
            peers,
            listen,
            timeouts: Timeouts::devnet(),
            max_body_bytes: super::DEFAULT_MAX_BODY_BYTES,
            worker_threads: 2,
            mailbox_size: 1024,
        }
    }
}

/// Hex of a validator public key (as written in key and peer files).
pub fn public_key_hex(key: &PublicKey) -> String {
    hex::encode(key.encode())
}

/// Parses a hex validator public key.
pub fn parse_public_key(s: &str) -> Result<PublicKey, ConsensusError> {
    use commonware_codec::DecodeExt;
    let bytes = hex::decode(s.trim_start_matches("0x"))
        .map_err(|e| ConsensusError::Keys(format!("hex: {e}")))?;
    PublicKey::decode(bytes.as_slice()).map_err(|e| ConsensusError::Keys(e.to_string()))
}

/// One line of a peers file: a validator key (hex) and its address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerEntry {
    pub public_key: String,
    pub address: SocketAddr,
}

/// Serializes a peer list as JSON (`[{"public_key": hex, "address": "ip:port"}]`).
pub fn peers_to_json(peers: &[(PublicKey, SocketAddr)]) -> String {
    let entries: Vec<PeerEntry> = peers
        .iter()
        .map(|(k, a)| PeerEntry {
            public_key: public_key_hex(k),
            address: *a,
        })
        .collect();
    serde_json::to_string_pretty(&entries).expect("plain struct serializes")
}

/// Parses a peer list written by [`peers_to_json`].
pub fn peers_from_json(json: &str) -> Result<Vec<(PublicKey, SocketAddr)>, ConsensusError> {
    let entries: Vec<PeerEntry> =
        serde_json::from_str(json).map_err(|e| ConsensusError::Config(format!("peers: {e}")))?;
    entries
        .into_iter()
        .map(|e| Ok((parse_public_key(&e.public_key)?, e.address)))
        .collect()
}

/// Queries against a running validator. Cheap to clone; usable from any
/// async runtime.
#[derive(Clone)]
pub struct ConsensusHandle {
    marshal: MarshalMailbox,
    tip: Arc<AtomicU64>,
    processed: Arc<AtomicU64>,
}

impl std::fmt::Debug for ConsensusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsensusHandle")
            .field("finalized_tip", &self.finalized_tip())
            .field("processed_height", &self.processed_height())
            .finish()
    }
}

impl ConsensusHandle {
    pub(crate) fn new(
        marshal: MarshalMailbox,
        tip: Arc<AtomicU64>,
        processed: Arc<AtomicU64>,
    ) -> Self {
        Self {
            marshal,
            tip,
            processed,
        }
    }

    /// Highest finalized height this node has seen a certificate for (it
    /// may not hold every block below it yet).
    pub fn finalized_tip(&self) -> u64 {
        self.tip.load(Ordering::Relaxed)
    }

    /// Highest height delivered to (and processed by) the application.
    pub fn processed_height(&self) -> u64 {
        self.processed.load(Ordering::Relaxed)
    }

    /// Height and digest of the highest finalized block held locally.
    pub async fn latest_finalized(&self) -> Option<(u64, B256)> {
        self.marshal
            .get_info(marshal::Identifier::Latest)
            .await
            .map(|(height, digest)| (height.get(), B256::from(digest.0)))
    }

    /// The finalized block at `height` (with its certificate if held).
    /// Height 0 is the fixed genesis block, which has no certificate.
    pub async fn finalized_block(&self, height: u64) -> Option<FinalizedBlock> {
        if height == 0 {
            let (header, body) = Block::genesis().into_parts();
            return Some(FinalizedBlock {
                header,
                body,
                finalization: None,
            });
        }
        let block = self.marshal.get_block(Height::new(height)).await?;
        if block.height().get() != height {
            return None;
        }
        let finalization = self
            .marshal
            .get_finalization(Height::new(height))
            .await
            .filter(|f| f.proposal.payload == block.digest())
            .map(|f| f.encode().to_vec());
        let (header, body) = block.into_parts();
        Some(FinalizedBlock {
            header,
            body,
            finalization,
        })
    }

    /// The first finalized block at or above `height` that has a
    /// certificate, looking at most `max_scan` heights and not past the
    /// latest finalized block.
    pub async fn certified_block_at_or_after(
        &self,
        height: u64,
        max_scan: u64,
    ) -> Option<FinalizedBlock> {
        let (latest, _) = self.latest_finalized().await?;
        let end = latest.min(height.saturating_add(max_scan));
        for h in height.max(1)..=end {
            if let Some(block) = self.finalized_block(h).await {
                if block.finalization.is_some() {
                    return Some(block);
                }
            }
        }
        None
    }
}

/// Runs a validator on the given runtime context: authenticated-discovery
/// p2p on `config.listen`, then the engine. Returns the query handle and
/// the handle of the task that owns everything (abort it to stop the node).
pub async fn run_validator<E, A>(
    context: E,
    config: ValidatorConfig,
    app: A,
) -> Result<(ConsensusHandle, Handle<()>), ConsensusError>
where
    E: Spawner + BufferPooler + Clock + Rng + CryptoRng + RNetwork + RResolver + Metrics + Storage,
    A: Application,
{
    config.timeouts.validate()?;
    let me = config.keys.public_key();
    // Refuse keys that do not belong to this network before opening sockets.
    config
        .network
        .signer_scheme(&consensus_namespace(&config.chain_id), &config.keys)?;
    let max_message = u32::try_from(config.max_body_bytes.saturating_add(64 * 1024))
        .map_err(|_| ConsensusError::Config("max_body_bytes too large".into()))?;
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = context.with_label("node").spawn(move |context| async move {
        let dialable = config
            .peers
            .iter()
            .find(|(k, _)| *k == me)
            .map(|(_, a)| *a)
            .unwrap_or(config.listen);
        let bootstrappers = config
            .peers
            .iter()
            .filter(|(k, _)| *k != me)
            .map(|(k, a)| (k.clone(), Ingress::Socket(*a)))
            .collect();
        let mut p2p_cfg = discovery::Config::local(
            config.keys.signer.clone(),
            &p2p_namespace(&config.chain_id),
            config.listen,
            dialable,
            bootstrappers,
            max_message,
        );
        p2p_cfg.mailbox_size = config.mailbox_size;
        let (mut network, mut oracle) =
            discovery::Network::new(context.with_label("network"), p2p_cfg);
        oracle
            .track(EPOCH.get(), config.network.participant_set().clone())
            .await;
        let fast = Quota::per_second(NZU32!(256));
        let votes = network.register(VOTES_CHANNEL, fast, MESSAGE_BACKLOG);
        let certificates = network.register(CERTIFICATES_CHANNEL, fast, MESSAGE_BACKLOG);
        let resolver = network.register(RESOLVER_CHANNEL, fast, MESSAGE_BACKLOG);
        let broadcast = network.register(BROADCAST_CHANNEL, fast, MESSAGE_BACKLOG);
        let backfill = network.register(MARSHAL_CHANNEL, fast, MESSAGE_BACKLOG);
        let (tx_sender, tx_receiver) = network.register(TX_CHANNEL, fast, MESSAGE_BACKLOG);
        let network_handle = network.start();
        if let Some(outbound) = app.gossip_outbound() {
            let app = app.clone();
            context
                .with_label("gossip")
                .spawn(move |_| super::gossip::run(app, tx_sender, tx_receiver, outbound));
        }

        let marshal_resolver = marshal::resolver::p2p::init(
            &context.with_label("backfill"),
            marshal::resolver::p2p::Config {
                public_key: me.clone(),
                peer_provider: oracle.clone(),
                blocker: oracle.clone(),
                mailbox_size: config.mailbox_size,
                initial: Duration::from_millis(500),
                timeout: Duration::from_secs(2),
                fetch_retry_timeout: Duration::from_millis(100),
                priority_requests: false,
                priority_responses: false,
            },
            backfill,
        );
        let engine_cfg = EngineConfig {
            blocker: oracle.clone(),
            provider: oracle,
            partition_prefix: "verity".to_string(),
            keys: config.keys.clone(),
            network: config.network.clone(),
            namespace: consensus_namespace(&config.chain_id),
            timeouts: config.timeouts,
            max_body_bytes: config.max_body_bytes,
            mailbox_size: config.mailbox_size,
            deque_size: 16,
            freezer_table_initial_size: 2u32.pow(16),
            strategy: Sequential,
        };
        let channels = Channels {
            votes,
            certificates,
            resolver,
            broadcast,
            marshal: marshal_resolver,
        };
        let (handle, engine) =
            match start_engine(context.with_label("engine"), engine_cfg, app, channels).await {
                Ok(started) => started,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
        info!(public_key = %public_key_hex(&me), listen = %config.listen, "validator started");
        if ready_tx.send(Ok(handle)).is_err() {
            return;
        }
        match select(network_handle, engine).await {
            Either::Left((r, _)) => warn!(?r, "p2p network stopped"),
            Either::Right((r, _)) => warn!(?r, "consensus engine stopped"),
        }
    });
    match ready_rx.await {
        Ok(Ok(handle)) => Ok((handle, task)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ConsensusError::Stopped),
    }
}

/// A validator running on its own thread and tokio runtime.
#[derive(Debug)]
pub struct ValidatorService {
    handle: ConsensusHandle,
    stop: Option<futures::channel::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ValidatorService {
    pub fn handle(&self) -> &ConsensusHandle {
        &self.handle
    }

    /// Stops the validator and waits for its runtime to shut down (all its
    /// tasks are cancelled; storage is crash-safe, so this is equivalent to
    /// a crash as far as recovery is concerned).
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Blocks until the validator stops on its own (it normally does not).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ValidatorService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a validator over TCP on a dedicated thread running the commonware
/// tokio runtime, with storage under `<config.dir>/consensus`. Returns once
/// storage is recovered and the node is running.
///
/// This blocks the calling thread during recovery (and [`ValidatorService`]
/// blocks on stop/drop), so from async code call it via `spawn_blocking`.
/// The returned [`ConsensusHandle`] works from any executor. A node killed
/// at any point (even `kill -9`) resumes from its directory.
pub fn start<A: Application>(
    config: ValidatorConfig,
    app: A,
) -> Result<ValidatorService, ConsensusError> {
    let storage = config.dir.join("consensus");
    std::fs::create_dir_all(&storage)?;
    // Report an unusable listen address here rather than from inside p2p.
    drop(std::net::TcpListener::bind(config.listen)?);
    let runtime_cfg = cw_tokio::Config::new()
        .with_worker_threads(config.worker_threads.max(1))
        .with_storage_directory(storage)
        .with_tcp_nodelay(Some(true))
        .with_catch_panics(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("verity-consensus".into())
        .spawn(move || {
            let keep_alive = cw_tokio::Runner::new(runtime_cfg).start(|context| async move {
                let keep_alive = context.clone();
                match run_validator(context.clone(), config, app).await {
                    Ok((handle, task)) => {
                        let _ = ready_tx.send(Ok(handle));
                        if let Either::Right((r, _)) = select(stop_rx, task).await {
                            warn!(?r, "validator task ended");
                        }
                        // Ask every actor to wind down, then cancel the rest
                        // (returning from here aborts all tasks).
                        if let Err(e) = context.stop(0, Some(STOP_TIMEOUT)).await {
                            warn!(?e, "validator did not stop in time");
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
                keep_alive
            });
            // commonware-runtime 2026.3's tokio runner does not wait for
            // aborted tasks: if the last of them dropped the runtime from a
            // worker thread, tokio would panic. Hold a context (and so the
            // runtime) until they are gone and drop it on this plain thread.
            std::thread::sleep(SHUTDOWN_GRACE);
            drop(keep_alive);
        })?;
    let handle = match ready_rx.recv() {
        Ok(result) => result?,
        Err(_) => {
            let _ = thread.join();
            return Err(ConsensusError::Stopped);
        }
    };
    Ok(ValidatorService {
        handle,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}
