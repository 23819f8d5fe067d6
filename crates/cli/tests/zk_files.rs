//! `verity prove` / `verity verify-proof` on files, as a user runs them: a proof of the CNN
//! benchmark model verifies (also against its ONNX file), a tampered or truncated proof, a
//! proof checked against another model, and a model with uncovered operators are refused
//! with the right exit codes and messages.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn verity(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_verity"))
        .args(args)
        .output()
        .expect("run verity");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn prove_and_verify_proof_files() {
    let dir = tempfile::tempdir().unwrap();
    let proof = dir.path().join("cnn.vproof");
    let (cnn, cnn_ref) = (
        repo("examples/bench/bench_cnn.onnx"),
        repo("examples/bench/bench_cnn.ref0.json"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (code, out, err) = verity(&[
        "--json",
        "prove",
        &s(&cnn),
        "--input-file",
        &s(&cnn_ref),
        "--out",
        &s(&proof),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    // the proven output is exact mode's: close to onnxruntime's reference
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(&cnn_ref).unwrap()).unwrap();
    let want = reference["outputs"]["output"]["data"].as_array().unwrap();
    let got = v["output"]["output"]["data"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g.as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-3);
    }

    let (code, out, err) = verity(&["verify-proof", &s(&proof), "--model", &s(&cnn)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("proof verified"), "{out}");

    // one flipped byte in the proof body
    let mut bytes = std::fs::read(&proof).unwrap();
    let n = bytes.len();
    bytes[n - 5000] ^= 0x40;
    let bad = dir.path().join("bad.vproof");
    std::fs::write(&bad, &bytes).unwrap();
    let (code, _, err) = verity(&["verify-proof", &s(&bad)]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("verification failed"), "{err}");

    // truncated
    std::fs::write(&bad, &bytes[..100]).unwrap();
    let (code, _, err) = verity(&["verify-proof", &s(&bad)]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("decode error"), "{err}");

    // the right proof, the wrong model
    let mlp = repo("examples/bench/bench_mlp.onnx");
    let (code, _, err) = verity(&["verify-proof", &s(&proof), "--model", &s(&mlp)]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("model commitment"), "{err}");

    // uncovered operators are named
    let digits = repo("examples/models/sk_iris_logreg.onnx");
    let input = repo("examples/models/refs/sk_iris_logreg/sample_0.json");
    let (code, _, err) = verity(&[
        "prove",
        &s(&digits),
        "--input-file",
        &s(&input),
        "--out",
        &s(&bad),
    ]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("ai.onnx.ml:Normalizer"), "{err}");

    // a wrong input shape is an input error naming the tensor
    let (code, _, err) = verity(&[
        "prove",
        &s(&cnn),
        "--input",
        r#"{"input":{"shape":[1,3],"dtype":"float32","data":[1,2,3]}}"#,
        "--out",
        &s(&bad),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("input"), "{err}");
}
