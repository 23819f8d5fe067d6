//! Subcommands that manage keys and run nodes; client flows are in `flows`.

use crate::{
    client::Client,
    devnet::{self, DevnetSpec, NetworkFile},
    keyfile,
    supervisor::{self, Supervisor},
};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};
use verity_primitives::PrivateKey;

pub use crate::flows::{bench_e2e, infer, model, receipt, InferArgs, ModelCmd, ReceiptCmd};
pub use crate::verify::{verify, VerifyArgs};

/// Global options.
pub struct Ctx {
    pub node: String,
    pub key: Option<PathBuf>,
    pub json: bool,
}

impl Ctx {
    pub fn client(&self) -> Result<Client> {
        Client::new(&self.node)
    }

    /// The account key: --key / VERITY_KEY, else the devnet's dev account.
    pub fn account(&self) -> Result<PrivateKey> {
        let path = self
            .key
            .clone()
            .unwrap_or_else(|| devnet::default_dir().join("dev-account.json"));
        keyfile::read(&path).with_context(|| "no account key (pass --key FILE or set VERITY_KEY; `verity devnet` creates a funded one)".to_string())
    }

    pub fn print(&self, v: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).expect("json"));
        } else {
            println!("{}", human());
        }
    }
}

#[derive(Args, Debug)]
pub struct DevnetArgs {
    /// Number of validator processes (1 runs in this process).
    #[arg(long, default_value_t = 1)]
    pub validators: usize,
    /// Where the network's data lives (default: your data directory, verity/devnet).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Wipe the data directory first.
    #[arg(long)]
    pub reset: bool,
    /// API port of node 0 (node i uses port + i).
    #[arg(long, default_value_t = 7400)]
    pub api_port: u16,
    /// P2P port of node 0 (node i uses port + i).
    #[arg(long, default_value_t = 7500)]
    pub p2p_port: u16,
    #[arg(long, default_value_t = 1337)]
    pub chain_id: u64,
    /// Only write the network layout (keys, genesis, network.json), then exit.
    #[arg(long)]
    pub init_only: bool,
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's directory (validator.json, executor.json, data).
    #[arg(long)]
    pub home: PathBuf,
    /// The network file shared by all nodes.
    #[arg(long)]
    pub network: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Create a new key file (0600).
    New {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Show the address of a key file (never the secret).
    Show,
    /// Import a 32-byte hex secret read from a file or standard input.
    Import {
        #[arg(long)]
        out: PathBuf,
        /// File holding the hex secret (default: standard input).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        #[arg(long)]
        force: bool,
    },
}

pub fn keys(ctx: &Ctx, cmd: KeysCmd) -> Result<()> {
    let (key, path) = match cmd {
        KeysCmd::New { out, force } => {
            let k = PrivateKey::random();
            keyfile::write(&out, &k, force)?;
            (k, out)
        }
        KeysCmd::Show => {
            let k = ctx.account()?;
            (
                k,
                ctx.key
                    .clone()
                    .unwrap_or_else(|| devnet::default_dir().join("dev-account.json")),
            )
        }
        KeysCmd::Import {
            out,
            secret_file,
            force,
        } => {
            let text = match secret_file {
                Some(f) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?,
                None => std::io::read_to_string(std::io::stdin())?,
            };
            let k = PrivateKey::from_hex(&text).context("the secret must be 32 bytes of hex")?;
            keyfile::write(&out, &k, force)?;
            (k, out)
        }
    };
    let v = json!({"address": key.address().to_string(), "key_file": path});
    ctx.print(&v, || {
        format!("address:  {}\nkey file: {}", key.address(), path.display())
    });
    Ok(())
}

pub fn status(ctx: &Ctx) -> Result<()> {
    let v = ctx.client()?.get("/v1/status")?;
    ctx.print(&v, || {
        let vals: Vec<String> = v["validators"].as_array().into_iter().flatten().map(|x| format!("  {}", x.as_str().unwrap_or(""))).collect();
        format!(
            "chain id:        {}\nheight:          {} (executed {})\nstate root:      {} (finalized at height {})\nvalidators ({}):\n{}\nidentity:        {}…\napi:             {}",
            v["chain_id"], v["height"], v["executed_height"], v["finalized_state"]["root"].as_str().unwrap_or(""),
            v["finalized_state"]["height"], vals.len(), vals.join("\n"), &v["identity"].as_str().unwrap_or("")[..24.min(v["identity"].as_str().unwrap_or("").len())], v["api"].as_str().unwrap_or("")
        )
    });
    Ok(())
}

fn init_logs(file: &Path) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("VERITY_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(f))
        .try_init();
    Ok(())
}

pub fn node(_ctx: &Ctx, a: NodeArgs) -> Result<()> {
    let net = NetworkFile::load(&a.network)?;
    init_logs(&a.home.join("node.log"))?;
    devnet::run_node_blocking(&a.home, &net, |addr| eprintln!("node API on http://{addr}"))
}

pub fn devnet(ctx: &Ctx, a: DevnetArgs) -> Result<()> {
    if a.validators == 0 || a.validators > 32 {
        bail!("--validators must be between 1 and 32");
    }
    let dir = a.data_dir.clone().unwrap_or_else(devnet::default_dir);
    if a.reset && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let net_path = dir.join("network.json");
    if !net_path.exists() {
        devnet::create(
            &dir,
            &DevnetSpec {
                validators: a.validators,
                chain_id: a.chain_id,
                api_port: a.api_port,
                p2p_port: a.p2p_port,
            },
        )?;
    }
    let net = NetworkFile::load(&net_path)?;
    if net.nodes.len() != a.validators {
        bail!(
            "{} holds a {}-validator devnet; pass --reset to start a {}-validator one",
            dir.display(),
            net.nodes.len(),
            a.validators
        );
    }
    if a.init_only {
        let v = json!({"data_dir": dir, "network": net_path, "validators": net.nodes.len()});
        ctx.print(&v, || format!("wrote {}", net_path.display()));
        return Ok(());
    }
    let api = format!("http://{}", net.nodes[0].api);
    let banner = |pids: &[Option<u32>]| {
        let mode = if pids.is_empty() {
            "in-process"
        } else {
            "processes"
        };
        let nodes: Vec<Value> = pids.iter().enumerate().map(|(i, pid)| json!({"node": i, "pid": pid,
            "api": format!("http://{}", net.nodes[i].api), "log": supervisor::home(&dir, i).join("node.log")})).collect();
        let v = json!({"status": "running", "mode": mode, "api": api, "data_dir": dir, "validators": net.nodes.len(), "nodes": nodes,
            "chain_id": net.genesis.chain_id, "dev_account_key_file": dir.join("dev-account.json"),
            "models": net.genesis.models.iter().map(|m| json!({"name": m.name, "id": m.model_id})).collect::<Vec<_>>()});
        ctx.print(&v, || {
            let models: Vec<String> = net.genesis.models.iter().map(|m| format!("  {:<22} {}", m.name, m.model_id)).collect();
            let procs: String = pids.iter().enumerate().map(|(i, p)| format!("  node {i}:       pid {}, API http://{}\n", p.unwrap_or_default(), net.nodes[i].api)).collect();
            format!(
                "Verity devnet running ({} validator{}, chain id {})\n  API:          {api}\n  data dir:     {}\n  dev account:  {} (key file: {})\n  logs:         {}/node-*/node.log\n{procs}models:\n{}\n{}Press Ctrl-C to stop.",
                net.nodes.len(), if net.nodes.len() == 1 { "" } else { "s" }, net.genesis.chain_id, dir.display(),
                net.genesis.accounts[0].0, dir.join("dev-account.json").display(), dir.display(), models.join("\n"),
                if pids.is_empty() { "" } else { "A node that exits is reported and restarted; the others keep running.\n" }
            )
        });
    };
    if a.validators == 1 {
        let home = dir.join("node-0");
        init_logs(&home.join("node.log"))?;
        return devnet::run_node_blocking(&home, &net, |_| banner(&[]));
    }
    // Signal handlers first: a Ctrl-C / SIGTERM at any point stops every child.
    let stop = supervisor::install_shutdown()?;
    let homes = (0..net.nodes.len())
        .map(|i| supervisor::home(&dir, i))
        .collect();
    let mut sup = Supervisor::new(std::env::current_exe()?, net_path.clone(), homes, ctx.json);
    let apis: Vec<String> = net
        .nodes
        .iter()
        .map(|n| format!("http://{}", n.api))
        .collect();
    let result = sup.start_all().and_then(|()| {
        supervisor::run(&mut sup, &stop, &apis, Duration::from_secs(60), |s| {
            banner(&s.pids())
        })
    });
    sup.stop_all();
    result
}
