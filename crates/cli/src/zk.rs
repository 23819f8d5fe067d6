//! `verity prove` and `verity verify-proof`: zk proofs on files, without a node.

use crate::client::CliError;
use crate::commands::Ctx;
use crate::flows::read_input;
use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use verity_prover::{OnnxProver, ProofFile, ZkError};

#[derive(Args, Debug)]
pub struct ProveArgs {
    /// The ONNX model file.
    pub model: PathBuf,
    /// Input tensors as JSON.
    #[arg(
        long,
        conflicts_with = "input_file",
        required_unless_present = "input_file"
    )]
    pub input: Option<String>,
    /// Input tensors from a JSON file (a `{"inputs": ...}` reference file works too).
    #[arg(long)]
    pub input_file: Option<PathBuf>,
    /// Where to write the proof file.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct VerifyProofArgs {
    /// The proof file.
    pub proof: PathBuf,
    /// Also check that the proof's model commitment and id are this ONNX model's.
    #[arg(long)]
    pub model: Option<PathBuf>,
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn register(path: &PathBuf) -> Result<OnnxProver> {
    let onnx = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    OnnxProver::register(&onnx).map_err(|e| match e {
        ZkError::Lower(l) => CliError::Refused(format!("{}: {l}", path.display())).into(),
        e => anyhow::Error::new(e).context(format!("{}", path.display())),
    })
}

fn output_json(f: &ProofFile) -> serde_json::Value {
    f.output_tensors()
        .map(|t| t.to_json())
        .unwrap_or(json!(null))
}

pub fn prove(ctx: &Ctx, a: ProveArgs) -> Result<()> {
    let input = read_input(a.input.as_deref(), a.input_file.as_deref())?;
    let t0 = Instant::now();
    let prover = register(&a.model)?;
    let register_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = Instant::now();
    let file = prover.prove(&input).map_err(|e| match e {
        ZkError::Engine(e) => anyhow::Error::new(e).context("input"),
        e => anyhow::Error::new(e),
    })?;
    let prove_ms = t1.elapsed().as_secs_f64() * 1e3;
    let bytes = file.to_bytes();
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    let v = json!({
        "proof_file": a.out.display().to_string(),
        "file_bytes": bytes.len(),
        "proof_bytes": file.proof.len(),
        "model_id": format!("0x{}", hex::encode(file.model_id)),
        "commitment": format!("0x{}", hex::encode(file.commitment.digest())),
        "register_ms": register_ms,
        "prove_ms": prove_ms,
        "peak_rss_kib": peak_rss_kib(),
        "output": output_json(&file),
    });
    ctx.print(&v, || {
        format!(
            "proved {} -> {} ({} KiB proof)\n  model commitment 0x{}\n  register {:.0} ms, prove {:.0} ms\n  output {}",
            a.model.display(),
            a.out.display(),
            file.proof.len() / 1024,
            hex::encode(file.commitment.digest()),
            register_ms,
            prove_ms,
            v["output"]
        )
    });
    Ok(())
}

pub fn verify_proof(ctx: &Ctx, a: VerifyProofArgs) -> Result<()> {
    let bytes =
        std::fs::read(&a.proof).with_context(|| format!("reading {}", a.proof.display()))?;
    let file = ProofFile::from_bytes(&bytes)
        .map_err(|e| CliError::Verify(format!("{}: {e}", a.proof.display())))?;
    if let Some(m) = &a.model {
        let p = register(m)?;
        if p.commitment() != &file.commitment {
            return Err(CliError::Verify(format!(
                "the proof's model commitment is not {}'s",
                m.display()
            ))
            .into());
        }
        if p.exact().id() != file.model_id {
            return Err(
                CliError::Verify(format!("the proof's model id is not {}'s", m.display())).into(),
            );
        }
    }
    let t = Instant::now();
    file.verify()
        .map_err(|e| CliError::Verify(format!("{}: {e}", a.proof.display())))?;
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;
    let v = json!({
        "verified": true,
        "model_id": format!("0x{}", hex::encode(file.model_id)),
        "commitment": format!("0x{}", hex::encode(file.commitment.digest())),
        "model_checked": a.model.is_some(),
        "verify_ms": verify_ms,
        "output": output_json(&file),
    });
    ctx.print(&v, || {
        format!(
            "proof verified in {:.1} ms\n  model id 0x{}{}\n  model commitment 0x{}\n  output {}",
            verify_ms,
            hex::encode(file.model_id),
            if a.model.is_some() {
                " (matches the ONNX file)"
            } else {
                ""
            },
            hex::encode(file.commitment.digest()),
            v["output"]
        )
    });
    Ok(())
}
