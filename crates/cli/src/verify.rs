//! `verity verify`: checks a receipt bundle offline against a network
//! identity the user trusts — never against the key the bundle names.

use crate::{
    client::{CliError, Client},
    commands::Ctx,
    devnet::{self, NetworkFile},
};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use verity_node::audit::verify_bundle;
use verity_primitives::{
    ids::parse_hex32, receipt::exact_model_id, Evidence, ModelId, ReceiptBundle,
};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A receipt file (from `receipt show --json`) or a receipt id to fetch.
    pub receipt: String,
    /// Trusted network file (default: the local devnet's network.json, when it exists).
    #[arg(long, env = "VERITY_NETWORK")]
    pub network: Option<PathBuf>,
    /// Trusted network identity (hex), instead of a network file.
    #[arg(long)]
    pub identity: Option<String>,
    /// Check that this ONNX file is the receipt's model.
    #[arg(long)]
    pub model_file: Option<PathBuf>,
    /// Accept a bundle without its input or output; the checks skipped are listed.
    #[arg(long)]
    pub allow_partial: bool,
}

/// The identity the certificate is checked against, and where it came from.
struct Trust {
    /// `network_file`, `identity` or `devnet_default`.
    source: &'static str,
    identity: Vec<u8>,
    network_file: Option<PathBuf>,
    chain_id: Option<u64>,
    exact_params: Option<Vec<u8>>,
}

fn usage(m: String) -> anyhow::Error {
    CliError::Usage(m).into()
}

fn from_file(path: &Path, source: &'static str) -> Result<Trust> {
    let f = NetworkFile::load(path)?;
    Ok(Trust {
        source,
        identity: f.identity()?.identity_bytes(),
        network_file: Some(path.to_path_buf()),
        chain_id: Some(f.genesis.chain_id),
        exact_params: Some(f.genesis.params.exact_params.clone()),
    })
}

/// `--network`, else `--identity`, else the local devnet's network.json if
/// it exists; with none of them there is nothing to trust, and no check.
fn trust(a: &VerifyArgs) -> Result<Trust> {
    let identity = a
        .identity
        .as_deref()
        .map(|h| {
            hex::decode(h.trim().trim_start_matches("0x"))
                .map_err(|_| usage("--identity must be hex".into()))
        })
        .transpose()?;
    let t = match (&a.network, identity) {
        (Some(p), given) => {
            let t = from_file(p, "network_file")?;
            if given.is_some_and(|g| g != t.identity) {
                return Err(usage(format!(
                    "--identity is not the identity of {}; pass one of them",
                    p.display()
                )));
            }
            t
        }
        (None, Some(identity)) => Trust {
            source: "identity",
            identity,
            network_file: None,
            chain_id: None,
            exact_params: None,
        },
        (None, None) => {
            let p = devnet::default_dir().join("network.json");
            if !p.exists() {
                return Err(usage(format!(
                    "no trusted network identity: pass --network FILE (the network's network.json, \
                     or set VERITY_NETWORK) or --identity HEX; a receipt cannot vouch for itself \
                     (no local devnet network file at {})",
                    p.display()
                )));
            }
            from_file(&p, "devnet_default")?
        }
    };
    Ok(t)
}

/// `[version, frac_bits, weight_bits]` in words.
fn describe_params(p: &[u8]) -> String {
    match p {
        [1, frac, weight] => format!("frac_bits {frac}, weight_bits {weight}"),
        [] => "none (exact mode disabled)".into(),
        other => format!("0x{}", hex::encode(other)),
    }
}

/// The checks that tie the receipt to the trusted network beyond its
/// certificate: its chain, and the exact-mode parameters of its compiled model.
fn network_checks(b: &ReceiptBundle, t: &Trust, checks: &mut Vec<String>) -> Result<()> {
    let r = &b.receipt;
    if let Some(chain) = t.chain_id {
        if r.chain_id != chain {
            return Err(CliError::Verify(format!(
                "chain id mismatch: the receipt is for chain {}, the trusted network is chain {chain}",
                r.chain_id
            ))
            .into());
        }
        checks.push(format!(
            "receipt is for the trusted network's chain {chain}"
        ));
    }
    let (Some(compiled), Some(params)) = (&r.compiled_model, &t.exact_params) else {
        return Ok(());
    };
    if exact_model_id(&r.model, params) != *compiled {
        return Err(CliError::Verify(format!(
            "compiled model mismatch: {compiled:#x} is not {} compiled with the network's \
             exact-mode parameters ({})",
            r.model,
            describe_params(params)
        ))
        .into());
    }
    // The audit code checks zk proofs at the network's Q16 activations; a
    // network with other parameters cannot be checked here.
    let default = verity_engine::ExactParams::default().to_bytes();
    if matches!(r.evidence, Evidence::ZkReceipt { .. }) && *params != default {
        return Err(CliError::Verify(format!(
            "the network's exact-mode parameters ({}) are not the ones this verifier checks zk \
             proofs with ({})",
            describe_params(params),
            describe_params(&default)
        ))
        .into());
    }
    checks.push(format!(
        "compiled model matches the network's exact-mode parameters ({})",
        describe_params(params)
    ));
    Ok(())
}

fn read_bundle(ctx: &Ctx, receipt: &str) -> Result<ReceiptBundle> {
    let text = if Path::new(receipt).exists() {
        std::fs::read_to_string(receipt).with_context(|| format!("reading {receipt}"))?
    } else if receipt.starts_with("0x") {
        parse_hex32(receipt).context("receipt id")?;
        ctx.client()
            .and_then(|c: Client| c.get(&format!("/v1/receipts/{receipt}")))?
            .to_string()
    } else {
        return Err(usage(format!(
            "`{receipt}` is neither a receipt file nor a 0x receipt id"
        )));
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Verify(format!("malformed receipt file: {e}")).into())
}

fn trusted_line(t: &Trust) -> String {
    match (t.source, &t.network_file) {
        ("devnet_default", Some(p)) => format!("local devnet network file {}", p.display()),
        (_, Some(p)) => format!("network file {}", p.display()),
        _ => {
            let h = hex::encode(&t.identity);
            format!("--identity 0x{}…", &h[..h.len().min(24)])
        }
    }
}

pub fn verify(ctx: &Ctx, a: VerifyArgs) -> Result<()> {
    let t = trust(&a)?;
    let bundle = read_bundle(ctx, &a.receipt)?;
    if let Some(f) = &a.model_file {
        let id = ModelId::of_bytes(
            &std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        );
        if id != bundle.receipt.model {
            return Err(CliError::Verify(format!(
                "model mismatch: {} is {id}, the receipt names {}",
                f.display(),
                bundle.receipt.model
            ))
            .into());
        }
    }
    let mut ok = verify_bundle(&bundle, Some(&t.identity)).map_err(|e| CliError::Verify(e.0))?;
    network_checks(&bundle, &t, &mut ok.checks)?;
    let mut skipped = Vec::new();
    if bundle.input.is_none() {
        skipped.push("input matches input_hash (the bundle carries no input)");
    }
    if bundle.output.is_none() {
        skipped.push("output matches output_hash (the bundle carries no output)");
    }
    let mut notes = Vec::new();
    if bundle.receipt.compiled_model.is_some() && t.exact_params.is_none() {
        notes.push("exact-mode parameters not pinned: no network file (pass --network FILE)");
    }
    if !skipped.is_empty() && !a.allow_partial {
        return Err(CliError::Verify(format!(
            "incomplete bundle, not checked: {}; pass --allow-partial to accept a partial check",
            skipped.join("; ")
        ))
        .into());
    }
    let mut v = serde_json::to_value(&ok)?;
    v["trusted"] = json!({"source": t.source, "network_file": t.network_file,
        "identity": format!("0x{}", hex::encode(&t.identity)), "chain_id": t.chain_id});
    v["complete"] = Value::Bool(skipped.is_empty());
    v["skipped"] = json!(skipped);
    v["notes"] = json!(notes);
    ctx.print(&v, || {
        let mut s = format!(
            "receipt {} is {}valid:\n",
            ok.receipt_id,
            if skipped.is_empty() { "" } else { "partially " }
        );
        for c in &ok.checks {
            s += &format!("  ✓ {c}\n");
        }
        for c in &skipped {
            s += &format!("  - skipped: {c}\n");
        }
        for n in &notes {
            s += &format!("  ! {n}\n");
        }
        s += &format!("trusted identity: {}", trusted_line(&t));
        s
    });
    Ok(())
}
