//! `verity bench --zk`: Verity's prover next to EZKL on the same ONNX models and inputs,
//! in one run: prove time, verify time, proof size and peak memory, with ratios.
//!
//! Verity's numbers: registration once, then the median of `--zk-runs` proofs and
//! verifications in this process; peak memory from a separate `verity prove` process
//! (VmHWM). EZKL's: `scripts/ezkl_baseline.py` (embedded), its documented flow with a
//! locally generated SRS, each step in its own process.

use crate::bench::default_model_dirs;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use verity_prover::{OnnxProver, ProofFile};

const EZKL_SCRIPT: &str = include_str!("../../../scripts/ezkl_baseline.py");
const EZKL_HINT: &str = "pip install \"ezkl==23.*\" onnx numpy";
/// The models compared by default (examples/bench).
const MODELS: [&str; 2] = ["bench_mlp", "bench_cnn"];

#[derive(clap::Args, Debug, Clone)]
pub struct ZkBenchArgs {
    /// Proofs (and verifications) timed per model.
    #[arg(long, default_value_t = 10)]
    pub zk_runs: usize,
    /// Python interpreter that has EZKL (skip EZKL with --no-ezkl).
    #[arg(long, default_value = "python3")]
    pub ezkl_python: PathBuf,
    /// Measure Verity only.
    #[arg(long)]
    pub no_ezkl: bool,
}

/// A table row: name, getter, unit.
type Metric = (&'static str, fn(&Side) -> Option<f64>, &'static str);

#[derive(Default, Debug)]
struct Side {
    setup_s: Option<f64>,
    prove_s: Option<f64>,
    verify_s: Option<f64>,
    proof_bytes: Option<f64>,
    peak_mb: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn verity_side(onnx: &Path, refs: &Path, runs: usize) -> Result<Side> {
    let bytes = std::fs::read(onnx)?;
    let input = crate::flows::read_input(None, Some(refs))?;
    let t = Instant::now();
    let prover = OnnxProver::register(&bytes)?;
    let setup_s = t.elapsed().as_secs_f64();
    let (mut prove, mut verify) = (Vec::new(), Vec::new());
    let mut file: Option<ProofFile> = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let f = prover.prove(&input)?;
        prove.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        f.verify().context("a fresh proof does not verify")?;
        verify.push(t.elapsed().as_secs_f64());
        file = Some(f);
    }
    let proof_bytes = file.map(|f| f.proof.len() as f64);
    // peak memory of a separate `verity prove` process
    let out = tempfile::NamedTempFile::new()?;
    let o = Command::new(std::env::current_exe()?)
        .args(["--json", "prove"])
        .arg(onnx)
        .arg("--input-file")
        .arg(refs)
        .arg("--out")
        .arg(out.path())
        .output()?;
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    Ok(Side {
        setup_s: Some(setup_s),
        prove_s: Some(median(prove)),
        verify_s: Some(median(verify)),
        proof_bytes,
        peak_mb: v["peak_rss_kib"].as_f64().map(|k| k / 1024.0),
    })
}

/// Parses the script's table: `step seconds peakMB result` lines and `proof bytes: N`.
fn parse_ezkl(stdout: &str) -> Side {
    let mut s = Side::default();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok());
        match f.first().copied() {
            Some("setup") => s.setup_s = num(1),
            Some("prove") => {
                s.prove_s = num(1);
                s.peak_mb = num(2);
            }
            Some("verify") => s.verify_s = num(1),
            Some("proof") if f.get(1) == Some(&"bytes:") => s.proof_bytes = num(2),
            _ => {}
        }
    }
    s
}

fn ezkl_side(python: &Path, onnx: &Path, refs: &Path) -> std::result::Result<Side, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let script = dir.path().join("ezkl_baseline.py");
    std::fs::write(&script, EZKL_SCRIPT).map_err(|e| e.to_string())?;
    let o = Command::new(python)
        .arg(&script)
        .arg(onnx)
        .arg(refs)
        .arg(dir.path().join("work"))
        .output()
        .map_err(|e| format!("cannot run `{}` ({e})", python.display()))?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    let s = parse_ezkl(&stdout);
    if !o.status.success() || s.prove_s.is_none() {
        let err = String::from_utf8_lossy(&o.stderr);
        let last = err.lines().chain(stdout.lines()).last().unwrap_or_default();
        return Err(format!(
            "EZKL did not run ({last}); install it with `{EZKL_HINT}`"
        ));
    }
    Ok(s)
}

fn fmt(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "—".into(),
        Some(x) if unit == "s" && x < 1.0 => format!("{:.1} ms", x * 1e3),
        Some(x) if unit == "s" => format!("{x:.2} s"),
        Some(x) if unit == "KB" => format!("{:.1} KB", x / 1000.0),
        Some(x) => format!("{x:.0} {unit}"),
    }
}

pub fn run(args: &ZkBenchArgs, json_out: bool) -> Result<()> {
    let dir = default_model_dirs()?
        .into_iter()
        .find(|d| d.ends_with("bench"))
        .context("no examples/bench folder")?;
    let mut report = Vec::new();
    for name in MODELS {
        let onnx = dir.join(format!("{name}.onnx"));
        let refs = dir.join(format!("{name}.ref0.json"));
        eprintln!("{name}: Verity ({} proofs)", args.zk_runs);
        let ours = verity_side(&onnx, &refs, args.zk_runs)?;
        let theirs = if args.no_ezkl {
            Err("skipped (--no-ezkl)".to_string())
        } else {
            eprintln!("{name}: EZKL (setup and proof can take minutes)");
            ezkl_side(&args.ezkl_python, &onnx, &refs)
        };
        report.push((name, ours, theirs));
    }
    if json_out {
        let side = |s: &Side| {
            json!({"setup_s": s.setup_s, "prove_s": s.prove_s, "verify_s": s.verify_s,
                   "proof_bytes": s.proof_bytes, "peak_mb": s.peak_mb})
        };
        let v: Vec<Value> = report
            .iter()
            .map(|(n, o, t)| {
                json!({"model": n, "verity": side(o),
                       "ezkl": t.as_ref().map(side).unwrap_or_else(|e| json!({"error": e}))})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<10} {:<12} {:>12} {:>12} {:>12}",
        "model", "metric", "verity", "ezkl", "ezkl/verity"
    );
    for (name, o, t) in &report {
        let e = t.as_ref().ok();
        let rows: [Metric; 5] = [
            ("setup", |s| s.setup_s, "s"),
            ("prove", |s| s.prove_s, "s"),
            ("verify", |s| s.verify_s, "s"),
            ("proof size", |s| s.proof_bytes, "KB"),
            ("peak memory", |s| s.peak_mb, "MB"),
        ];
        for (metric, get, unit) in rows {
            let (a, b) = (get(o), e.and_then(get));
            let ratio = match (a, b) {
                (Some(a), Some(b)) if a > 0.0 && b / a < 0.1 => format!("{:.3}x", b / a),
                (Some(a), Some(b)) if a > 0.0 => format!("{:.1}x", b / a),
                _ => "—".into(),
            };
            println!(
                "{:<10} {:<12} {:>12} {:>12} {:>12}",
                name,
                metric,
                fmt(a, unit),
                fmt(b, unit),
                ratio
            );
        }
        if let Err(why) = t {
            println!("{name:<10} ezkl: {why}");
        }
    }
    println!("(Verity: median of the timed runs; setup = registration, i.e. the weight commitment. EZKL: setup = its key generation.)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ezkl_script_table() {
        let out = "step            seconds   peak MB  result\n\
                   gen_settings       0.38        92  True\n\
                   setup              6.37       442  True\n\
                   prove              7.94       643  True\n\
                   verify             0.08       643  True\n\
                   proof bytes: 3072   (peak MB is the largest step so far)\n";
        let s = parse_ezkl(out);
        assert_eq!(s.setup_s, Some(6.37));
        assert_eq!(s.prove_s, Some(7.94));
        assert_eq!(s.peak_mb, Some(643.0));
        assert_eq!(s.verify_s, Some(0.08));
        assert_eq!(s.proof_bytes, Some(3072.0));
        assert!(parse_ezkl("prove FAILED: no module named ezkl")
            .prove_s
            .is_none());
    }
}
