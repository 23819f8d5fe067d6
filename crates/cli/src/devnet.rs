//! `verity devnet` and `verity node`: the on-disk network layout, the
//! embedded example models, and running one node or N node processes.

use crate::keyfile;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};
use verity_engine::{Engine, Limits, TractEngine};
use verity_hub::Hub;
use verity_ledger::{Genesis, Params};
use verity_node::{
    consensus::{dev_genesis, parse_public_key, public_key_hex, NetworkIdentity, ValidatorKeys},
    service::{start_node, NodeConfig},
};
use verity_primitives::{Address, ModelId, ModelManifest, PrivateKey};

/// The example models, embedded so that an installed binary needs no files.
pub const EXAMPLES: &[(&str, &str, &[u8])] = &[
    (
        "sk_iris_logreg",
        "LogisticRegression on iris (4 features, 3 classes)",
        include_bytes!("../../../examples/models/sk_iris_logreg.onnx"),
    ),
    (
        "sk_digits_mlp",
        "MLPClassifier 64-64-32-10 on 8x8 digits",
        include_bytes!("../../../examples/models/sk_digits_mlp.onnx"),
    ),
    (
        "sk_breast_cancer_rf",
        "RandomForest (25 trees) on breast cancer (30 features)",
        include_bytes!("../../../examples/models/sk_breast_cancer_rf.onnx"),
    ),
    (
        "sk_wine_gb",
        "GradientBoosting on wine (13 features, 3 classes)",
        include_bytes!("../../../examples/models/sk_wine_gb.onnx"),
    ),
    (
        "np_digits_cnn",
        "Tiny CNN on 8x8 digits",
        include_bytes!("../../../examples/models/np_digits_cnn.onnx"),
    ),
    (
        "magika_standard_v3_3",
        "Google Magika file-type classifier (214 types)",
        include_bytes!("../../../examples/models/magika_standard_v3_3.onnx"),
    ),
    (
        "ppocr_mobile_v2_cls",
        "PaddleOCR text-direction classifier (0/180 degrees)",
        include_bytes!("../../../examples/models/ppocr_mobile_v2_cls.onnx"),
    ),
    (
        "bench_cnn",
        "Fixed-weight CNN: Conv 8x3x3, ReLU, MaxPool, Gemm on 28x28 (provable in zk mode)",
        include_bytes!("../../../examples/bench/bench_cnn.onnx"),
    ),
];

/// Fee an example model charges per inference.
pub const EXAMPLE_PRICE: u128 = 100;
/// Balance of the devnet's dev account.
pub const DEV_FUNDS: u128 = 1_000_000_000_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeEntry {
    pub public_key: String,
    pub p2p: SocketAddr,
    pub api: SocketAddr,
}

/// `network.json`: what every node of a network shares.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkFile {
    pub version: u8,
    pub genesis: Genesis,
    /// The validator set and threshold public polynomial.
    pub identity: serde_json::Value,
    pub nodes: Vec<NodeEntry>,
}

impl NetworkFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let f: Self =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if f.version != 1 {
            bail!(
                "{}: unsupported network file version {}",
                path.display(),
                f.version
            );
        }
        Ok(f)
    }

    pub fn identity(&self) -> Result<NetworkIdentity> {
        NetworkIdentity::from_json(&self.identity.to_string()).context("network identity")
    }
}

/// Manifest of an embedded example, from the engine's inspection.
pub fn example_manifest(
    engine: &TractEngine,
    name: &str,
    desc: &str,
    bytes: &[u8],
    publisher: Address,
) -> Result<ModelManifest> {
    let info = engine
        .inspect(bytes)
        .with_context(|| format!("inspecting example {name}"))?;
    Ok(ModelManifest {
        model_id: ModelId::of_bytes(bytes),
        name: name.into(),
        version: "1".into(),
        description: desc.into(),
        size: bytes.len() as u64,
        inputs: info.inputs,
        outputs: info.outputs,
        ops: info.ops,
        publisher,
        price: EXAMPLE_PRICE,
    })
}

/// Options of a new devnet.
pub struct DevnetSpec {
    pub validators: usize,
    pub chain_id: u64,
    pub api_port: u16,
    pub p2p_port: u16,
}

fn executor_key(i: usize) -> PrivateKey {
    PrivateKey::from_dev_seed(&format!("verity-devnet-executor-{i}"))
}

/// Writes a fresh devnet layout under `dir`.
pub fn create(dir: &Path, spec: &DevnetSpec) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (keys, identity) = dev_genesis(spec.validators, 0);
    let dev = PrivateKey::random();
    keyfile::write(&dir.join("dev-account.json"), &dev, true)?;
    let engine = TractEngine::new(Limits::default());
    let models = EXAMPLES
        .iter()
        .map(|(n, d, b)| example_manifest(&engine, n, d, b, Address::ZERO))
        .collect::<Result<Vec<_>>>()?;
    let genesis = Genesis {
        chain_id: spec.chain_id,
        params: Params {
            exact_params: verity_engine::ExactParams::default().to_bytes(),
            ..Params::default()
        },
        accounts: vec![(dev.address(), DEV_FUNDS)],
        executors: (0..spec.validators)
            .map(|i| executor_key(i).address())
            .collect(),
        models,
    };
    let mut nodes = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let node_dir = dir.join(format!("node-{i}"));
        std::fs::create_dir_all(&node_dir)?;
        write_private(&node_dir.join("validator.json"), &k.to_json())?;
        keyfile::write(&node_dir.join("executor.json"), &executor_key(i), true)?;
        let hub = Hub::open(node_dir.join("hub"))?;
        for (_, _, b) in EXAMPLES {
            hub.put(b)?;
        }
        nodes.push(NodeEntry {
            public_key: public_key_hex(&k.public_key()),
            p2p: SocketAddr::from(([127, 0, 0, 1], spec.p2p_port + i as u16)),
            api: SocketAddr::from(([127, 0, 0, 1], spec.api_port + i as u16)),
        });
    }
    let file = NetworkFile {
        version: 1,
        genesis,
        identity: serde_json::from_str(&identity.to_json())?,
        nodes,
    };
    std::fs::write(
        dir.join("network.json"),
        serde_json::to_string_pretty(&file)?,
    )?;
    Ok(())
}

fn write_private(path: &Path, body: &str) -> Result<()> {
    std::fs::write(path, body)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Builds the config of the node whose files are in `home`.
pub fn node_config(home: &Path, network: &NetworkFile) -> Result<NodeConfig> {
    let keys = ValidatorKeys::from_json(
        &std::fs::read_to_string(home.join("validator.json"))
            .with_context(|| format!("reading {}/validator.json", home.display()))?,
    )
    .context("validator key file")?;
    let me = public_key_hex(&keys.public_key());
    let entry = network
        .nodes
        .iter()
        .find(|n| n.public_key == me)
        .with_context(|| format!("validator {me} is not in the network file"))?;
    let peers = network
        .nodes
        .iter()
        .map(|n| Ok((parse_public_key(&n.public_key)?, n.p2p)))
        .collect::<Result<Vec<_>>>()?;
    let executor_path = home.join("executor.json");
    let executor = if executor_path.exists() {
        Some(keyfile::read(&executor_path)?)
    } else {
        None
    };
    Ok(NodeConfig {
        dir: home.to_path_buf(),
        genesis: network.genesis.clone(),
        keys,
        network: network.identity()?,
        peers,
        p2p_listen: SocketAddr::from(([0, 0, 0, 0], entry.p2p.port())),
        api_listen: entry.api,
        executor,
        engine_limits: Limits::default(),
        peer_apis: network
            .nodes
            .iter()
            .filter(|n| n.public_key != me)
            .map(|n| format!("http://{}", n.api))
            .collect(),
    })
}

/// Runs one node until Ctrl-C / SIGTERM.
pub fn run_node_blocking(
    home: &Path,
    network: &NetworkFile,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let cfg = node_config(home, network)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (node, halted) = rt.block_on(async move {
        let node = start_node(cfg).await?;
        on_ready(node.api_addr);
        // A node that cannot apply a finalized block, or whose state
        // diverged, stops loudly; a restart resumes from its last
        // committed height.
        let halted = tokio::select! {
            _ = shutdown_signal() => None,
            reason = node.halted() => Some(reason),
        };
        anyhow::Ok((node, halted))
    })?;
    // Consensus owns its own runtime, which must not be dropped from inside
    // an async context.
    node.stop();
    if let Some(reason) = halted {
        anyhow::bail!("node halted: {reason}");
    }
    Ok(())
}

pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The default data directory of the devnet.
pub fn default_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("verity")
        .join("devnet")
}
