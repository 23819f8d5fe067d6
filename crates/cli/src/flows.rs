//! Client flows: publish, list, infer, receipts (verification is in `verify`).

use crate::{
    client::{CliError, Client},
    commands::Ctx,
};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};
use verity_engine::{Engine, Limits, TractEngine};
use verity_primitives::{
    codec::Canonical, ids::parse_hex32, InferenceRequest, Mode, ModelId, ModelManifest, PrivateKey,
    Tensors, Tx, TxBody,
};

#[derive(Subcommand, Debug)]
pub enum ModelCmd {
    /// Validate an ONNX file, store it content-addressed and publish it.
    Publish {
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "1")]
        version: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Fee per inference paid to the executor.
        #[arg(long, default_value_t = 100)]
        price: u128,
    },
    /// List published models.
    List,
    /// Show a manifest by id, name or name@version.
    Show { model: String },
}

#[derive(Args, Debug)]
pub struct InferArgs {
    /// Model id, name or name@version.
    pub model: String,
    /// Input tensors as JSON: {"name": {"shape", "dtype", "data"}}.
    #[arg(
        long,
        conflicts_with = "input_file",
        required_unless_present = "input_file"
    )]
    pub input: Option<String>,
    #[arg(long)]
    pub input_file: Option<PathBuf>,
    #[arg(long, default_value = "vanilla")]
    pub mode: Mode,
    /// Most you pay (default: the model's price).
    #[arg(long)]
    pub max_fee: Option<u128>,
    /// Seconds to wait for the final receipt.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Write the receipt bundle (the file `verify` checks) here.
    #[arg(long)]
    pub receipt_out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ReceiptCmd {
    /// Print a receipt bundle (with --json: the file `verify` accepts).
    Show {
        id: String,
        /// Also write the bundle to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn sign_and_send(
    ctx: &Ctx,
    c: &Client,
    key: &PrivateKey,
    body: TxBody,
    path: &str,
) -> Result<Value> {
    let status = c.get("/v1/status")?;
    let chain_id = status["chain_id"]
        .as_u64()
        .context("status has no chain_id")?;
    let acct = c.get(&format!("/v1/accounts/{}", key.address()))?;
    let nonce = acct["next_nonce"]
        .as_u64()
        .context("account has no next_nonce")?;
    let _ = ctx;
    let tx = Tx {
        chain_id,
        from: key.address(),
        nonce,
        body,
    }
    .sign(key);
    c.post_bytes(path, tx.encode())
}

fn wait_tx(c: &Client, id: &str, timeout: Duration) -> Result<Value> {
    let start = Instant::now();
    loop {
        let v = c.get(&format!("/v1/txs/{id}"))?;
        if v["final"] == json!(true) {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            return Err(
                CliError::Timeout(format!("transaction {id} not final after {timeout:?}")).into(),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn describe(m: &ModelManifest) -> String {
    let specs = |s: &[verity_primitives::TensorSpec]| {
        s.iter()
            .map(|t| t.describe())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{}@{}  {}\n  description: {}\n  inputs:      {}\n  outputs:     {}\n  size:        {} bytes, price {}\n  ops:         {}",
        m.name, m.version, m.model_id, m.description, specs(&m.inputs), specs(&m.outputs), m.size, m.price, m.ops.join(" ")
    )
}

pub fn model(ctx: &Ctx, cmd: ModelCmd) -> Result<()> {
    let c = ctx.client()?;
    match cmd {
        ModelCmd::Publish {
            file,
            name,
            version,
            description,
            price,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let limit = Limits::default()
                .max_model_bytes
                .min(verity_ledger::Params::default().max_model_bytes as usize);
            if bytes.len() > limit {
                bail!(
                    "{} is {} bytes; the model size limit is {limit}",
                    file.display(),
                    bytes.len()
                );
            }
            let info = TractEngine::new(Limits::default())
                .inspect(&bytes)
                .with_context(|| format!("{} is not a usable ONNX model", file.display()))?;
            let key = ctx.account()?;
            let manifest = ModelManifest {
                model_id: ModelId::of_bytes(&bytes),
                name,
                version,
                description,
                size: bytes.len() as u64,
                inputs: info.inputs,
                outputs: info.outputs,
                ops: info.ops,
                publisher: key.address(),
                price,
            };
            manifest.validate_fields().map_err(anyhow::Error::msg)?;
            let id = manifest.model_id;
            let sent = sign_and_send(
                ctx,
                &c,
                &key,
                TxBody::Publish {
                    manifest: manifest.clone(),
                    onnx: bytes,
                },
                "/v1/txs",
            )?;
            let tx_id = sent["tx_id"].as_str().context("no tx_id")?.to_string();
            let done = wait_tx(&c, &tx_id, Duration::from_secs(120))?;
            if done["status"] != json!("applied") {
                let e = &done["error"];
                return Err(CliError::Rejected {
                    status: 0,
                    code: e["code"].as_str().unwrap_or("failed").into(),
                    message: e["message"].as_str().unwrap_or("").into(),
                }
                .into());
            }
            let v = json!({"model_id": id, "name": manifest.name, "version": manifest.version, "tx_id": tx_id, "height": done["height"]});
            ctx.print(&v, || id.to_string());
        }
        ModelCmd::List => {
            let v = c.get("/v1/models")?;
            ctx.print(&v, || {
                let ms: Vec<ModelManifest> =
                    serde_json::from_value(v["models"].clone()).unwrap_or_default();
                ms.iter()
                    .map(|m| format!("{:<24} {:<8} {}", m.name, m.version, m.model_id))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ModelCmd::Show { model } => {
            let v = c.get(&format!("/v1/models/{model}"))?;
            let m: ModelManifest = serde_json::from_value(v.clone())?;
            ctx.print(&v, || describe(&m));
        }
    }
    Ok(())
}

/// Input tensors from `--input JSON` or `--input-file FILE` (reference files wrap them in
/// `{"inputs": ...}`; that is accepted too).
pub fn read_input(input: Option<&str>, file: Option<&std::path::Path>) -> Result<Tensors> {
    let text = match (input, file) {
        (Some(s), _) => s.to_string(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        _ => bail!("pass --input JSON or --input-file FILE"),
    };
    let parsed: Value = serde_json::from_str(&text).context("input is not valid JSON")?;
    let tensors_json = parsed.get("inputs").cloned().unwrap_or(parsed);
    Tensors::from_json(&tensors_json).context("input tensors")
}

pub fn infer(ctx: &Ctx, a: InferArgs) -> Result<()> {
    let c = ctx.client()?;
    let input = read_input(a.input.as_deref(), a.input_file.as_deref())?;
    let manifest: ModelManifest =
        serde_json::from_value(c.get(&format!("/v1/models/{}", a.model))?)?;
    let key = ctx.account()?;
    let body = TxBody::Infer(InferenceRequest {
        model: manifest.model_id,
        input,
        mode: a.mode,
        max_fee: a.max_fee.unwrap_or(manifest.price),
    });
    let timeout_ms = a.timeout * 1000;
    let v = sign_and_send(
        ctx,
        &c,
        &key,
        body,
        &format!("/v1/infer?wait=true&timeout_ms={timeout_ms}"),
    )?;
    if v["status"] == json!("failed") {
        return Err(CliError::Rejected {
            status: 0,
            code: v["error"]["code"].as_str().unwrap_or("failed").into(),
            message: v["error"]["message"].as_str().unwrap_or("").into(),
        }
        .into());
    }
    if v["final"] != json!(true) {
        return Err(CliError::Timeout(format!(
            "request {} is {} after {}s (check later with `verity receipt show`)",
            v["request_id"], v["status"], a.timeout
        ))
        .into());
    }
    if let Some(path) = &a.receipt_out {
        std::fs::write(path, serde_json::to_string_pretty(&v["receipt"])?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let out = json!({"outputs": v["outputs"], "receipt_id": v["receipt_id"], "request_id": v["request_id"], "model": manifest.model_id});
    ctx.print(&out, || {
        let outs = Tensors::from_json(&v["outputs"]).unwrap_or_default();
        let lines: Vec<String> = outs
            .0
            .iter()
            .map(|(n, t)| {
                format!(
                    "  {n} {}{:?} = {}",
                    t.dtype(),
                    t.shape,
                    serde_json::to_string(&t.to_json()["data"]).unwrap_or_default()
                )
            })
            .collect();
        format!(
            "outputs:\n{}\nreceipt: {}",
            lines.join("\n"),
            v["receipt_id"].as_str().unwrap_or("")
        )
    });
    Ok(())
}

pub fn receipt(ctx: &Ctx, cmd: ReceiptCmd) -> Result<()> {
    let ReceiptCmd::Show { id, out } = cmd;
    parse_hex32(&id).context("receipt id")?;
    let v = ctx.client()?.get(&format!("/v1/receipts/{id}"))?;
    if v.get("receipt").is_none() {
        return Err(CliError::Timeout(format!("receipt {id} is not final yet")).into());
    }
    if let Some(path) = out {
        std::fs::write(&path, serde_json::to_string_pretty(&v)?)?;
    }
    ctx.print(&v, || {
        let r = &v["receipt"];
        format!(
            "receipt {}\n  request:   {}\n  model:     {}{}\n  mode:      {}\n  requester: {}\n  executor:  {}\n  input:     {}\n  output:    {}\n  fee:       {}\n  settled at height {} (state root {} certified by block {})",
            v["receipt_id"].as_str().unwrap_or(""), r["request_id"].as_str().unwrap_or(""), r["model"].as_str().unwrap_or(""),
            r["compiled_model"].as_str().map(|c| format!("\n  compiled:  {c} (exact mode)")).unwrap_or_default(),
            r["mode"].as_str().unwrap_or(""), r["requester"].as_str().unwrap_or(""), r["evidence"]["executor"].as_str().unwrap_or(""),
            r["input_hash"].as_str().unwrap_or(""), r["output_hash"].as_str().unwrap_or(""), r["fee"], r["settled_height"],
            v["headers"][0]["claim"]["root"].as_str().unwrap_or(""), v["headers"].as_array().and_then(|h| h.last()).map(|h| h["height"].clone()).unwrap_or_default()
        )
    });
    Ok(())
}

/// End-to-end latency from `infer` to final receipt against a running node.
pub fn bench_e2e(ctx: &Ctx, runs: usize) -> Result<()> {
    crate::e2e::run(ctx, runs)
}
