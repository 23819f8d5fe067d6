//! `--mode exact` end to end: the receipt binds the compiled model, and the
//! same request gives the same output bits every time.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;
use verity_testkit::Cluster;

#[test]
fn exact_mode_settles_deterministic_outputs_with_compiled_model_id() -> Result<()> {
    let c = Cluster::start(Path::new(env!("CARGO_BIN_EXE_verity")), 1)?;
    let net = c.dir.path().join("network.json");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/models/refs/np_digits_cnn/sample_4.json");
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(&sample)?)?;
    let mut hashes = Vec::new();
    for _ in 0..2 {
        let (code, out, err) = c.cli(&[
            "infer",
            "np_digits_cnn",
            "--mode",
            "exact",
            "--json",
            "--input-file",
            sample.to_str().unwrap(),
        ])?;
        assert_eq!(code, 0, "{out}{err}");
        let v: Value = serde_json::from_str(&out)?;
        // Exact mode agrees with float onnxruntime on every label of the batch.
        assert_eq!(
            v["outputs"]["label"]["data"], reference["outputs"]["label"]["data"],
            "{v}"
        );
        let id = v["receipt_id"].as_str().context("receipt id")?.to_string();
        let (code, bundle, err) = c.cli(&["receipt", "show", &id, "--json"])?;
        assert_eq!(code, 0, "{err}");
        let b: Value = serde_json::from_str(&bundle)?;
        assert_eq!(b["receipt"]["mode"], "exact");
        assert!(
            b["receipt"]["compiled_model"]
                .as_str()
                .is_some_and(|s| s.len() == 66),
            "{b}"
        );
        hashes.push(b["receipt"]["output_hash"].clone());
        let (code, _, err) = c.cli(&["verify", &id, "--network", net.to_str().unwrap()])?;
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(
        hashes[0], hashes[1],
        "exact mode must give identical output bits"
    );
    // Modes without an implementation yet are refused up front.
    let (code, _, err) = c.cli(&[
        "infer",
        "np_digits_cnn",
        "--mode",
        "tee",
        "--input-file",
        sample.to_str().unwrap(),
    ])?;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("unsupported_mode"), "{err}");
    Ok(())
}
