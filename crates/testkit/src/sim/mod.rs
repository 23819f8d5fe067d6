//! Deterministic simulation of the real node application.
//!
//! Each simulated validator runs the real [`LedgerApp`] (ledger, mempool,
//! gossip admission, chain store) under the real consensus engine
//! (simplex + marshal, [`start_engine`]) on commonware's `deterministic`
//! runtime and `p2p::simulated` network. The ledger and the chain store run
//! on [`MemoryDisk`]s, which keep a durable image at each sync and revert
//! to it on a simulated crash, so a crash at any point is a real recovery.
//! Only adversaries are mocks ([`byzantine`]).
//!
//! A [`Sim`] is driven from inside `deterministic::Runner::start`: the same
//! seed gives the same execution, state roots and auditor digest.

pub mod byzantine;
pub mod check;
pub mod executor;

use commonware_consensus::marshal;
use commonware_p2p::{
    simulated::{self, Link, Network, Oracle},
    Manager,
};
use commonware_parallel::Sequential;
use commonware_runtime::{deterministic, Clock, Handle, Metrics, Spawner};
use commonware_utils::{ordered::Set, NZU32};
use governor::Quota;
use std::{sync::Arc, time::Duration};
use verity_hub::Hub;
use verity_ledger::{Genesis, Ledger, MemoryDisk, Params};
use verity_node::{
    application::LedgerApp,
    chain::ChainStore,
    consensus::{
        consensus_namespace, dev_genesis,
        engine::{start_engine, Channels, EngineConfig},
        gossip, public_key_hex, NetworkIdentity, PublicKey, Timeouts, ValidatorKeys,
    },
    service::assemble_state,
    state::{NodeInfo, NodeState},
};
use verity_primitives::{Address, PrivateKey};

pub use byzantine::{Attack, ByzantineApp};
pub use executor::{Behaviour, Submitted};

/// The runtime context of a simulation.
pub type Ctx = deterministic::Context;

/// The chain id of simulated networks.
pub const SIM_CHAIN: u64 = 9_009;
const QUOTA: Quota = Quota::per_second(NZU32!(u32::MAX));
/// Largest block body in the simulation (bounded by the simulated network's
/// message size).
const SIM_MAX_BODY: usize = 4 << 20;

/// Funds of every simulated client account.
pub const CLIENT_FUNDS: u128 = 1_000_000_000;

/// The model published at genesis in every simulation (the iris logistic
/// regression example, 4 float inputs).
pub const SIM_MODEL: &[u8] = include_bytes!("../../../../examples/models/sk_iris_logreg.onnx");

/// The provable model published at genesis (the benchmark CNN): zk
/// requests in the simulation use it.
pub const SIM_ZK_MODEL: &[u8] = include_bytes!("../../../../examples/bench/bench_cnn.onnx");

/// The manifest of [`SIM_MODEL`], from the real engine's inspection.
pub fn sim_model_manifest() -> verity_primitives::ModelManifest {
    manifest_of("iris", SIM_MODEL)
}

/// The manifest of `bytes`, from the real engine's inspection.
pub fn manifest_of(name: &str, bytes: &[u8]) -> verity_primitives::ModelManifest {
    use verity_engine::Engine;
    let info = verity_engine::TractEngine::new(verity_engine::Limits::default())
        .inspect(bytes)
        .expect("the example model loads");
    verity_primitives::ModelManifest {
        model_id: verity_primitives::ModelId::of_bytes(bytes),
        name: name.into(),
        version: "1".into(),
        description: String::new(),
        size: bytes.len() as u64,
        inputs: info.inputs,
        outputs: info.outputs,
        ops: info.ops,
        publisher: Address::ZERO,
        price: 100,
    }
}

/// The network's accounts and parameters.
pub fn sim_genesis(clients: &[Address], executors: &[Address]) -> Genesis {
    Genesis {
        chain_id: SIM_CHAIN,
        params: Params {
            exact_params: verity_engine::ExactParams::default().to_bytes(),
            ..Params::default()
        },
        accounts: clients.iter().map(|a| (*a, CLIENT_FUNDS)).collect(),
        executors: executors.to_vec(),
        models: vec![sim_model_manifest(), manifest_of("cnn", SIM_ZK_MODEL)],
    }
}

/// One simulated validator: its disks, hub, and (while running) its state
/// and the task that owns its engine.
pub struct SimNode {
    pub ledger_disk: MemoryDisk,
    pub chain_disk: MemoryDisk,
    hub_dir: tempfile::TempDir,
    pub state: Option<Arc<NodeState>>,
    task: Option<Handle<()>>,
    aux: Vec<Handle<()>>,
    generation: usize,
    /// The attack this validator runs when it proposes, if any.
    pub attack: Option<Attack>,
    /// This validator's executor, if it runs one.
    pub executor: Option<Behaviour>,
    /// The result transactions its executor submitted.
    pub submitted: Submitted,
}

/// A simulated network.
pub struct Sim {
    pub context: Ctx,
    pub oracle: Oracle<PublicKey, Ctx>,
    pub keys: Vec<ValidatorKeys>,
    pub identity: NetworkIdentity,
    pub genesis: Genesis,
    pub nodes: Vec<SimNode>,
    pub participants: Vec<PublicKey>,
}

impl Sim {
    /// Starts `n` validators linked by `link`; `clients` are funded.
    pub async fn start(
        context: Ctx,
        n: usize,
        seed: u64,
        link: Link,
        clients: &[Address],
        attacks: Vec<Option<Attack>>,
    ) -> Self {
        Self::start_with_executors(context, n, seed, link, clients, attacks, vec![]).await
    }

    /// As [`Sim::start`], with validator `i` running an executor that
    /// behaves as `behaviours[i]` (none where absent).
    pub async fn start_with_executors(
        context: Ctx,
        n: usize,
        seed: u64,
        link: Link,
        clients: &[Address],
        attacks: Vec<Option<Attack>>,
        behaviours: Vec<Option<Behaviour>>,
    ) -> Self {
        let (network, oracle) = Network::new(
            context.with_label("network"),
            simulated::Config {
                max_size: (SIM_MAX_BODY + (64 << 10)) as u32,
                disconnect_on_block: true,
                tracked_peer_sets: Some(1),
            },
        );
        network.start();
        let (keys, identity) = dev_genesis(n, seed);
        let participants: Vec<PublicKey> = identity.participants().to_vec();
        oracle
            .manager()
            .track(0, Set::from_iter_dedup(participants.clone()))
            .await;
        let executors: Vec<Address> = (0..n).map(|i| executor_key(i).address()).collect();
        let genesis = sim_genesis(clients, &executors);
        let mut sim = Self {
            context,
            oracle,
            keys,
            identity,
            genesis,
            nodes: Vec::new(),
            participants,
        };
        sim.link_all(link).await;
        for i in 0..n {
            sim.nodes.push(SimNode {
                ledger_disk: MemoryDisk::new(),
                chain_disk: MemoryDisk::new(),
                hub_dir: tempfile::tempdir().expect("hub dir"),
                state: None,
                task: None,
                aux: Vec::new(),
                generation: 0,
                attack: attacks.get(i).cloned().flatten(),
                executor: behaviours.get(i).copied().flatten(),
                submitted: Submitted::default(),
            });
            sim.start_node(i).await;
        }
        sim
    }

    /// Links every pair of validators with `link` (replacing old links).
    pub async fn link_all(&mut self, link: Link) {
        let all: Vec<usize> = (0..self.participants.len()).collect();
        self.link_groups(&[all], link).await;
    }

    /// Links validators within each group only: a partition.
    pub async fn link_groups(&mut self, groups: &[Vec<usize>], link: Link) {
        for a in &self.participants {
            for b in &self.participants {
                if a != b {
                    let _ = self.oracle.remove_link(a.clone(), b.clone()).await;
                }
            }
        }
        for g in groups {
            for &i in g {
                for &j in g {
                    if i != j {
                        self.oracle
                            .add_link(
                                self.participants[i].clone(),
                                self.participants[j].clone(),
                                link.clone(),
                            )
                            .await
                            .expect("link");
                    }
                }
            }
        }
    }

    /// Starts (or restarts) validator `i` from its disks.
    pub async fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.generation += 1;
        let ledger = Ledger::open_on(&node.ledger_disk, self.genesis.clone()).expect("ledger");
        let chain = ChainStore::open_on(&node.chain_disk).expect("chain store");
        let hub = Hub::open(node.hub_dir.path()).expect("hub");
        hub.put(SIM_MODEL).expect("genesis model");
        hub.put(SIM_ZK_MODEL).expect("genesis model");
        let info = NodeInfo {
            chain_id: SIM_CHAIN,
            identity: self.identity.identity_hex(),
            validators: self.participants.iter().map(public_key_hex).collect(),
            validator: public_key_hex(&self.participants[i]),
            api: String::new(),
        };
        let mut state = assemble_state(
            ledger,
            hub,
            chain,
            &self.genesis,
            info,
            None,
            verity_engine::Limits::default(),
        )
        .expect("state");
        let (gossip_tx, gossip_rx) = futures::channel::mpsc::channel(1024);
        let (inbox_tx, mut inbox_rx) = tokio::sync::mpsc::channel(1024);
        state.gossip = Some(gossip_tx);
        state.gossip_inbox = Some(inbox_tx);
        let state = Arc::new(state);
        let uid = format!("v{i}");
        let context = self
            .context
            .with_label(&format!("{uid}_gen{}", node.generation));
        // Gossiped transactions are admitted by the same code as the API's.
        let admit_state = state.clone();
        let admitter = context.with_label("admit").spawn(move |_| async move {
            while let Some(tx) = inbox_rx.recv().await {
                let _ = admit_state.admit(tx);
            }
        });
        let app = LedgerApp::new(state.clone(), None);
        let me = self.keys[i].public_key();
        let control = self.oracle.control(me.clone());
        let votes = control.register(0, QUOTA).await.expect("register");
        let certificates = control.register(1, QUOTA).await.expect("register");
        let resolver = control.register(2, QUOTA).await.expect("register");
        let broadcast = control.register(3, QUOTA).await.expect("register");
        let backfill = control.register(4, QUOTA).await.expect("register");
        let (tx_sender, tx_receiver) = control.register(5, QUOTA).await.expect("register");
        let marshal = marshal::resolver::p2p::init(
            &context.with_label("backfill"),
            marshal::resolver::p2p::Config {
                public_key: me.clone(),
                peer_provider: self.oracle.manager(),
                blocker: control.clone(),
                mailbox_size: 1024,
                initial: Duration::from_millis(500),
                timeout: Duration::from_secs(2),
                fetch_retry_timeout: Duration::from_millis(100),
                priority_requests: false,
                priority_responses: false,
            },
            backfill,
        );
        let cfg = EngineConfig {
            blocker: control,
            provider: self.oracle.manager(),
            partition_prefix: uid,
            keys: self.keys[i].clone(),
            network: self.identity.clone(),
            namespace: consensus_namespace(&SIM_CHAIN.to_string()),
            timeouts: Timeouts::devnet(),
            max_body_bytes: SIM_MAX_BODY,
            mailbox_size: 1024,
            deque_size: 10,
            freezer_table_initial_size: 2u32.pow(12),
            strategy: Sequential,
        };
        let channels = Channels {
            votes,
            certificates,
            resolver,
            broadcast,
            marshal,
        };
        let gossip_task;
        let task = match node.attack.clone() {
            Some(attack) => {
                let app = ByzantineApp::new(app, attack, state.clone());
                gossip_task = context.with_label("gossip").spawn({
                    let app = app.clone();
                    move |_| gossip::run(app, tx_sender, tx_receiver, gossip_rx)
                });
                start_engine(context.with_label("engine"), cfg, app, channels)
                    .await
                    .expect("engine")
                    .1
            }
            None => {
                gossip_task = context.with_label("gossip").spawn({
                    let app = app.clone();
                    move |_| gossip::run(app, tx_sender, tx_receiver, gossip_rx)
                });
                start_engine(context.with_label("engine"), cfg, app, channels)
                    .await
                    .expect("engine")
                    .1
            }
        };
        node.aux = vec![admitter, gossip_task];
        if let Some(behaviour) = node.executor {
            let (state, submitted) = (state.clone(), node.submitted.clone());
            node.aux
                .push(context.with_label("executor").spawn(move |ctx| {
                    executor::run(ctx, state, executor_key(i), behaviour, submitted)
                }));
        }
        node.state = Some(state);
        node.task = Some(task);
    }

    /// Crashes validator `i`: its tasks stop and its disks lose whatever
    /// was not synced.
    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(t) = node.task.take() {
            t.abort();
        }
        for t in node.aux.drain(..) {
            t.abort();
        }
        node.state = None;
        node.ledger_disk.crash();
        node.chain_disk.crash();
    }

    /// The running state of validator `i`.
    pub fn state(&self, i: usize) -> &Arc<NodeState> {
        self.nodes[i].state.as_ref().expect("node is running")
    }

    /// Executed heights of the running validators.
    pub fn heights(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter_map(|n| n.state.as_ref())
            .map(|s| s.ledger.height().unwrap_or(0))
            .collect()
    }

    /// Waits until every validator in `which` has executed `height`.
    /// Returns false if `limit` of simulated time passes first.
    pub async fn wait_height(&self, which: &[usize], height: u64, limit: Duration) -> bool {
        let start = self.context.current();
        loop {
            let done = which.iter().all(|&i| {
                self.nodes[i]
                    .state
                    .as_ref()
                    .is_some_and(|s| s.ledger.height().unwrap_or(0) >= height)
            });
            if done {
                return true;
            }
            if self
                .context
                .current()
                .duration_since(start)
                .unwrap_or_default()
                > limit
            {
                return false;
            }
            self.context.sleep(Duration::from_millis(50)).await;
        }
    }

    /// Submits `tx` through validator `i`'s admission (as its API would).
    pub fn submit(
        &self,
        i: usize,
        tx: verity_primitives::SignedTx,
    ) -> Result<verity_primitives::B256, verity_node::state::SubmitError> {
        self.state(i).submit(tx)
    }
}

/// The executor key of validator `i`.
pub fn executor_key(i: usize) -> PrivateKey {
    PrivateKey::from_dev_seed(&format!("sim-executor-{i}"))
}

/// A reliable, fast link.
pub fn lan() -> Link {
    Link {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(3),
        success_rate: 1.0,
    }
}

/// A slow link (200 ms ± 150 ms) that delivers each message with
/// probability `delivery`.
pub fn lossy(delivery: f64) -> Link {
    Link {
        latency: Duration::from_millis(200),
        jitter: Duration::from_millis(150),
        success_rate: delivery,
    }
}
