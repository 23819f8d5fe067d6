//! `verity`: one binary for the whole network: devnet, node, keys, models,
//! inference, receipts, offline verification and benchmarks.

mod bench;
mod client;
mod commands;
mod devnet;
mod e2e;
mod flows;
mod keyfile;
mod supervisor;
mod verify;
mod zk;
mod zk_bench;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "verity",
    version,
    about = "Verifiable ONNX inference on a BFT ledger"
)]
struct Cli {
    /// Node API URL.
    #[arg(
        long,
        global = true,
        env = "VERITY_NODE",
        default_value = "http://127.0.0.1:7400"
    )]
    node: String,
    /// Account key file (default: the devnet's dev account).
    #[arg(long, global = true, env = "VERITY_KEY")]
    key: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start a local network with the example models published.
    Devnet(commands::DevnetArgs),
    /// Run one node from its directory and the network file.
    Node(commands::NodeArgs),
    /// Manage account keys.
    #[command(subcommand)]
    Keys(commands::KeysCmd),
    /// Publish and inspect models.
    #[command(subcommand)]
    Model(commands::ModelCmd),
    /// Run a model and wait for its receipt.
    Infer(commands::InferArgs),
    /// Show receipts.
    #[command(subcommand)]
    Receipt(commands::ReceiptCmd),
    /// Verify a receipt offline: hashes, executor signature, Merkle proof, finality certificate.
    Verify(commands::VerifyArgs),
    /// Show the node's height, state root, validators and API address.
    Status,
    /// Prove an exact-mode inference of an ONNX model on a file, without a node.
    Prove(zk::ProveArgs),
    /// Verify a proof file offline (optionally against the ONNX model).
    VerifyProof(zk::VerifyProofArgs),
    /// Benchmarks: engine vs onnxruntime, end-to-end devnet latency, zk proofs vs EZKL.
    Bench(BenchCmd),
}

#[derive(Args, Debug)]
struct BenchCmd {
    #[command(flatten)]
    engine: bench::BenchArgs,
    /// Also measure infer-to-final-receipt latency on fresh 1- and 4-validator devnets.
    #[arg(long)]
    e2e: bool,
    /// Inferences per devnet in the end-to-end benchmark.
    #[arg(long, default_value_t = 20)]
    e2e_runs: usize,
    /// Instead: zk proofs, Verity's prover next to EZKL on examples/bench.
    #[arg(long)]
    zk: bool,
    #[command(flatten)]
    zk_args: zk_bench::ZkBenchArgs,
}

fn main() {
    let cli = Cli::parse();
    let ctx = commands::Ctx {
        node: cli.node.clone(),
        key: cli.key.clone(),
        json: cli.json,
    };
    let result: Result<()> = match cli.cmd {
        Cmd::Devnet(a) => commands::devnet(&ctx, a),
        Cmd::Node(a) => commands::node(&ctx, a),
        Cmd::Keys(k) => commands::keys(&ctx, k),
        Cmd::Model(m) => commands::model(&ctx, m),
        Cmd::Infer(a) => commands::infer(&ctx, a),
        Cmd::Receipt(r) => commands::receipt(&ctx, r),
        Cmd::Verify(a) => commands::verify(&ctx, a),
        Cmd::Status => commands::status(&ctx),
        Cmd::Prove(a) => zk::prove(&ctx, a),
        Cmd::VerifyProof(a) => zk::verify_proof(&ctx, a),
        Cmd::Bench(b) if b.zk => zk_bench::run(&b.zk_args, b.engine.json || ctx.json),
        Cmd::Bench(b) => bench::run_engine_bench(&b.engine).and_then(|_| {
            if b.e2e {
                commands::bench_e2e(&ctx, b.e2e_runs)
            } else {
                Ok(())
            }
        }),
    };
    if let Err(e) = result {
        let code = e
            .downcast_ref::<client::CliError>()
            .map(|c| c.exit_code())
            .unwrap_or(1);
        if ctx.json {
            let kind = match code {
                2 => "usage",
                3 => "unreachable",
                4 => "rejected",
                5 => "verification_failed",
                6 => "timeout",
                _ => "error",
            };
            println!(
                "{}",
                serde_json::json!({"error": {"code": kind, "message": format!("{e:#}")}})
            );
        } else {
            eprintln!("error: {e:#}");
        }
        std::process::exit(code);
    }
}
