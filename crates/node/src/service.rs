//! Starting a full node: ledger, hub, engine, chain store, consensus,
//! executor and API, from files written by `verity devnet` or an operator.

use crate::{
    api,
    application::LedgerApp,
    chain::ChainStore,
    consensus::{
        self, public_key_hex, NetworkIdentity, PublicKey, ValidatorConfig, ValidatorKeys,
        ValidatorService,
    },
    executor,
    mempool::{Mempool, MempoolLimits},
    metrics::Metrics,
    state::{NodeInfo, NodeState},
};
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
};
use tracing::info;
use verity_engine::{ExactEngine, ExactParams, Limits, TractEngine};
use verity_hub::Hub;
use verity_ledger::{Genesis, Ledger};
use verity_primitives::PrivateKey;

/// Admitted transactions queued for gossip before new ones are dropped from
/// it (they still enter this node's pool).
const GOSSIP_QUEUE: usize = 1024;

/// Everything a node needs to start.
pub struct NodeConfig {
    /// Node directory: ledger.redb, chain.redb, hub/, consensus/.
    pub dir: PathBuf,
    pub genesis: Genesis,
    pub keys: ValidatorKeys,
    pub network: NetworkIdentity,
    /// Every validator's p2p address (ours included).
    pub peers: Vec<(PublicKey, SocketAddr)>,
    pub p2p_listen: SocketAddr,
    pub api_listen: SocketAddr,
    /// The executor key, when this node executes inferences.
    pub executor: Option<PrivateKey>,
    pub engine_limits: Limits,
    /// Other validators' API URLs: a missing or corrupt model is fetched
    /// again from them.
    pub peer_apis: Vec<String>,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("dir", &self.dir)
            .field("api", &self.api_listen)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Start(String),
}

fn start_err(what: &str) -> impl Fn(&dyn std::fmt::Display) -> NodeError + '_ {
    move |e| NodeError::Start(format!("{what}: {e}"))
}

/// A running node.
pub struct RunningNode {
    pub state: Arc<NodeState>,
    pub api_addr: SocketAddr,
    consensus: Option<ValidatorService>,
    api_task: tokio::task::JoinHandle<()>,
    executor_task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("api", &self.api_addr)
            .finish()
    }
}

impl RunningNode {
    /// Resolves with the reason once the node halts (it could not apply a
    /// finalized block, or its state diverged from the network's): the
    /// process should stop, and a restart resumes from the last committed
    /// height.
    pub async fn halted(&self) -> String {
        let mut rx = self.state.halted.subscribe();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r;
            }
            if rx.changed().await.is_err() {
                return "node state dropped".into();
            }
        }
    }

    /// Stops consensus, the executor and the API.
    pub fn stop(mut self) {
        self.api_task.abort();
        if let Some(t) = self.executor_task.take() {
            t.abort();
        }
        if let Some(c) = self.consensus.take() {
            c.stop();
        }
    }
}

/// The network's exact-mode compile parameters, from genesis.
fn exact_params(g: &Genesis) -> Result<ExactParams, NodeError> {
    match g.params.exact_params.as_slice() {
        [ExactParams::VERSION, frac_bits, weight_bits] => {
            let p = ExactParams {
                frac_bits: *frac_bits,
                weight_bits: *weight_bits,
            };
            p.validate()
                .map_err(|e| start_err("exact parameters")(&e))?;
            Ok(p)
        }
        other => Err(NodeError::Start(format!(
            "genesis exact_params {other:?} are not version {} parameters",
            ExactParams::VERSION
        ))),
    }
}

/// Admits what other validators gossiped, one at a time, off the async
/// threads; a refusal is normal (a peer's view of nonces may be ahead).
async fn admit_gossiped(
    state: Arc<NodeState>,
    mut inbox: tokio::sync::mpsc::Receiver<verity_primitives::SignedTx>,
) {
    while let Some(tx) = inbox.recv().await {
        let id = tx.id();
        if state.mempool.lock().expect("mempool lock").contains(&id) {
            continue;
        }
        let s = state.clone();
        match tokio::task::spawn_blocking(move || s.admit(tx)).await {
            Ok(Ok(_)) => tracing::debug!(tx = %id, "admitted a gossiped transaction"),
            Ok(Err(e)) => tracing::debug!(tx = %id, %e, "gossiped transaction not admitted"),
            Err(e) => tracing::warn!(tx = %id, %e, "admitting a gossiped transaction panicked"),
        }
    }
}

/// Wires a node's shared state from its storage: the zk verifier and the
/// Hub-backed model store go into the ledger, the engines are created, the
/// mempool starts empty. Gossip is left unconnected (the caller wires it).
/// Used by [`start_node`] and by the deterministic simulation.
pub fn assemble_state(
    ledger: Ledger,
    hub: Hub,
    chain: ChainStore,
    genesis: &Genesis,
    info: NodeInfo,
    executor: Option<PrivateKey>,
    engine_limits: Limits,
) -> Result<NodeState, NodeError> {
    let executed = ledger.height().map_err(|e| start_err("ledger")(&e))?;
    let params = exact_params(genesis)?;
    let zk = Arc::new(crate::zk::ZkService::new(hub.clone(), params.clone()));
    let engine: Arc<dyn verity_engine::Engine> = Arc::new(TractEngine::new(engine_limits.clone()));
    let ledger = ledger
        .with_zk(zk.clone())
        .with_models(Arc::new(crate::hub_store::NodeModels {
            hub: hub.clone(),
            engine: engine.clone(),
        }));
    Ok(NodeState {
        ledger,
        hub,
        zk,
        engine,
        exact: Arc::new(ExactEngine::with_limits(params, engine_limits)),
        chain,
        mempool: Mutex::new(Mempool::new(MempoolLimits::default())),
        executor,
        info,
        metrics: Metrics::default(),
        executed: tokio::sync::watch::channel(executed).0,
        halted: tokio::sync::watch::channel(None).0,
        gossip: None,
        gossip_inbox: None,
    })
}

/// Opens storage and starts every service. Must be called inside a tokio
/// runtime (the API and executor run on it; consensus runs on its own).
pub async fn start_node(cfg: NodeConfig) -> Result<RunningNode, NodeError> {
    std::fs::create_dir_all(&cfg.dir).map_err(|e| start_err("node dir")(&e))?;
    let ledger = Ledger::open(&cfg.dir.join("ledger.redb"), cfg.genesis.clone())
        .map_err(|e| start_err("ledger")(&e))?;
    let mut hub = Hub::open(cfg.dir.join("hub")).map_err(|e| start_err("hub")(&e))?;
    if !cfg.peer_apis.is_empty() {
        hub = hub.with_source(Arc::new(crate::peer_models::PeerModels {
            urls: cfg.peer_apis.clone(),
            max_bytes: cfg.genesis.params.max_model_bytes,
        }));
    }
    for m in &cfg.genesis.models {
        if !hub.contains(&m.model_id) {
            return Err(NodeError::Start(format!(
                "genesis model {} ({}) is missing from the hub",
                m.name, m.model_id
            )));
        }
    }
    let chain =
        ChainStore::open(&cfg.dir.join("chain.redb")).map_err(|e| start_err("chain store")(&e))?;
    let listener = tokio::net::TcpListener::bind(cfg.api_listen)
        .await
        .map_err(|e| start_err("API listen")(&e))?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| start_err("API address")(&e))?;
    let info = NodeInfo {
        chain_id: cfg.genesis.chain_id,
        identity: cfg.network.identity_hex(),
        validators: cfg
            .network
            .participants()
            .iter()
            .map(public_key_hex)
            .collect(),
        validator: public_key_hex(&cfg.keys.public_key()),
        api: format!("http://{api_addr}"),
    };
    let mut state = assemble_state(
        ledger,
        hub,
        chain,
        &cfg.genesis,
        info,
        cfg.executor.clone(),
        cfg.engine_limits.clone(),
    )?;
    let executed = *state.executed.borrow();
    let (gossip_tx, gossip_rx) = futures::channel::mpsc::channel(GOSSIP_QUEUE);
    let (inbox_tx, inbox_rx) = tokio::sync::mpsc::channel(GOSSIP_QUEUE);
    state.gossip = Some(gossip_tx);
    state.gossip_inbox = Some(inbox_tx);
    let state = Arc::new(state);
    tokio::spawn(admit_gossiped(state.clone(), inbox_rx));
    let router = api::router(state.clone());
    let api_task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(%e, "API server stopped");
        }
    });
    let executor_task = cfg
        .executor
        .clone()
        .map(|k| tokio::spawn(executor::run(state.clone(), k)));
    let mut vcfg = ValidatorConfig::new(
        &cfg.dir,
        cfg.genesis.chain_id.to_string(),
        cfg.keys,
        cfg.network,
        cfg.peers,
        cfg.p2p_listen,
    );
    // Room for the largest publish transaction (a 16 MiB model).
    vcfg.max_body_bytes = crate::application::MAX_BLOCK_BYTES + (1 << 20);
    let app = LedgerApp::new(state.clone(), Some(gossip_rx));
    let consensus = tokio::task::spawn_blocking(move || consensus::start(vcfg, app))
        .await
        .map_err(|e| start_err("consensus")(&e))?
        .map_err(|e| start_err("consensus")(&e))?;
    info!(api = %api_addr, height = executed, "node started");
    Ok(RunningNode {
        state,
        api_addr,
        consensus: Some(consensus),
        api_task,
        executor_task,
    })
}
