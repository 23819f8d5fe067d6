//! `--mode zk` end to end on a devnet: the executor proves, every validator verifies the
//! proof before settling, the receipt names the proof's hash and the model commitment, and
//! `verity verify` checks the proof again offline, for the benchmark CNN and an example
//! classifier with Softmax/ArgMax heads. A model with operators the proof does not cover is
//! refused at submission, naming them.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;
use verity_testkit::Cluster;

#[test]
fn zk_mode_proves_settles_and_verifies_offline() -> Result<()> {
    let c = Cluster::start(Path::new(env!("CARGO_BIN_EXE_verity")), 1)?;
    let net = c.dir.path().join("network.json");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sample = root.join("examples/bench/bench_cnn.ref0.json");
    let dir = tempfile::tempdir()?;
    let receipt = dir.path().join("zk.json");
    let (code, out, err) = c.cli(&[
        "infer",
        "bench_cnn",
        "--mode",
        "zk",
        "--json",
        "--input-file",
        sample.to_str().unwrap(),
        "--receipt-out",
        receipt.to_str().unwrap(),
    ])?;
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out)?;
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(&sample)?)?;
    let want = reference["outputs"]["output"]["data"]
        .as_array()
        .context("ref")?;
    let got = v["outputs"]["output"]["data"]
        .as_array()
        .context("output")?;
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-3,
            "{v}"
        );
    }
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(&receipt)?)?;
    let r = &bundle["receipt"];
    assert_eq!(r["mode"], "zk");
    assert_eq!(r["evidence"]["kind"], "zk_receipt", "{r}");
    assert!(r["evidence"]["proof_hash"]
        .as_str()
        .is_some_and(|s| s.len() == 66));
    assert!(r["compiled_model"].as_str().is_some_and(|s| s.len() == 66));
    let proof = bundle["zk_proof"]
        .as_str()
        .context("bundle carries the proof")?;
    assert!(proof.len() > 100_000, "a proof of a few hundred KB");

    let (code, out, err) = c.cli(&[
        "--json",
        "verify",
        receipt.to_str().unwrap(),
        "--network",
        net.to_str().unwrap(),
    ])?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("zk proof verified"), "{out}");

    // a proof file that is not the one the receipt names
    let mut forged = bundle.clone();
    let mut p = proof.to_string();
    let at = p.len() - 4000;
    let flipped = if &p[at..at + 1] == "0" { "1" } else { "0" };
    p.replace_range(at..at + 1, flipped);
    forged["zk_proof"] = Value::String(p);
    let forged_path = dir.path().join("forged.json");
    std::fs::write(&forged_path, serde_json::to_string(&forged)?)?;
    let (code, _, err) = c.cli(&[
        "verify",
        forged_path.to_str().unwrap(),
        "--network",
        net.to_str().unwrap(),
    ])?;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("proof hash"), "{err}");

    // an example classifier (Softmax and ArgMax heads, two outputs) proves and settles too,
    // with onnxruntime's label
    let digits = root.join("examples/models/refs/np_digits_cnn/sample_0.json");
    let (code, out, err) = c.cli(&[
        "infer",
        "np_digits_cnn",
        "--mode",
        "zk",
        "--json",
        "--input-file",
        digits.to_str().unwrap(),
    ])?;
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out)?;
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(&digits)?)?;
    assert_eq!(
        v["outputs"]["label"]["data"], reference["outputs"]["label"]["data"],
        "{v}"
    );
    let id = v["receipt_id"].as_str().context("receipt id")?.to_string();
    let (code, out, err) = c.cli(&["--json", "verify", &id, "--network", net.to_str().unwrap()])?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("zk proof verified"), "{out}");

    // a model the proof does not cover is refused up front, by operator name
    let iris = root.join("examples/models/refs/sk_iris_logreg/sample_0.json");
    let (code, _, err) = c.cli(&[
        "infer",
        "sk_iris_logreg",
        "--mode",
        "zk",
        "--input-file",
        iris.to_str().unwrap(),
    ])?;
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("zk_unsupported") && err.contains("ai.onnx.ml:Normalizer"),
        "{err}"
    );
    assert!(err.contains("422"), "{err}");
    Ok(())
}
