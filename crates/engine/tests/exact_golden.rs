//! Golden test vectors of exact mode (spec §8): for every example and bench
//! model, the exact integer outputs of the stored reference inputs, their
//! sha256, and the compiled-model id are committed in
//! `tests/exact_data/golden.json`. Any change of the semantics fails here.
//!
//! To regenerate after a deliberate change of the semantics (which must
//! also bump `ExactParams::VERSION` and the spec):
//! `VERITY_BLESS=1 cargo test -p verity-engine --test exact_golden`.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use verity_engine::{compiled_id, ExactModel, ExactOutput, ExactParams, Tensors};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Canonical bytes of exact outputs (spec §8): per output in model order,
/// `u32 LE name length, name, u32 LE rank, u64 LE dims, i8 has_frac,
/// i32 LE frac (0 when absent), u64 LE count, i64 LE values`.
pub fn canonical(outs: &[ExactOutput]) -> Vec<u8> {
    let mut b = vec![];
    for o in outs {
        b.extend((o.name.len() as u32).to_le_bytes());
        b.extend(o.name.as_bytes());
        b.extend((o.shape.len() as u32).to_le_bytes());
        for d in &o.shape {
            b.extend((*d as u64).to_le_bytes());
        }
        b.push(o.frac.is_some() as u8);
        b.extend(o.frac.unwrap_or(0).to_le_bytes());
        b.extend((o.values.len() as u64).to_le_bytes());
        for v in &o.values {
            b.extend(v.to_le_bytes());
        }
    }
    b
}

fn sha256(b: &[u8]) -> [u8; 32] {
    verity_primitives::codec::sha256(b)
}

fn cases() -> Vec<(String, PathBuf, Vec<PathBuf>)> {
    let ex = root().join("../../examples");
    let mut v = vec![];
    for m in [
        "sk_digits_mlp",
        "sk_iris_logreg",
        "sk_breast_cancer_rf",
        "sk_wine_gb",
        "np_digits_cnn",
        "magika_standard_v3_3",
        "ppocr_mobile_v2_cls",
    ] {
        let refs = (0..5)
            .map(|i| ex.join(format!("models/refs/{m}/sample_{i}.json")))
            .collect();
        v.push((m.to_string(), ex.join(format!("models/{m}.onnx")), refs));
    }
    for m in ["bench_mlp", "bench_cnn", "bench_mlp_large"] {
        v.push((
            m.to_string(),
            ex.join(format!("bench/{m}.onnx")),
            vec![ex.join(format!("bench/{m}.ref0.json"))],
        ));
    }
    v
}

fn compute() -> Value {
    let params = ExactParams::default();
    let mut models = serde_json::Map::new();
    for (name, path, refs) in cases() {
        let bytes = std::fs::read(path).unwrap();
        let m = ExactModel::compile(&bytes, &params).unwrap();
        assert_eq!(m.id(), compiled_id(&bytes, &params));
        let mut samples = vec![];
        for r in refs {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&r).unwrap()).unwrap();
            let input = Tensors::from_json(&v["inputs"]).unwrap();
            let outs = m.run_exact(&input).unwrap();
            let outputs: Vec<Value> = outs
                .iter()
                .map(|o| json!({"name": o.name, "shape": o.shape, "frac": o.frac, "values": o.values}))
                .collect();
            samples.push(json!({
                "input": r.file_name().unwrap().to_string_lossy(),
                "input_hash": hex(input.hash().as_slice()),
                "sha256": hex(&sha256(&canonical(&outs))),
                "outputs": outputs,
            }));
        }
        models.insert(
            name,
            json!({"compiled_id": hex(&m.id()), "samples": samples}),
        );
    }
    json!({"params": hex(&params.to_bytes()), "models": models})
}

#[test]
fn exact_outputs_match_the_golden_vectors() {
    let file = root().join("tests/exact_data/golden.json");
    let got = compute();
    if std::env::var_os("VERITY_BLESS").is_some() {
        std::fs::write(&file, serde_json::to_string(&got).unwrap()).unwrap();
        return;
    }
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("golden.json")).unwrap();
    assert_eq!(got["params"], want["params"], "parameters changed");
    for (name, w) in want["models"].as_object().unwrap() {
        let g = &got["models"][name];
        assert_eq!(g["compiled_id"], w["compiled_id"], "{name}: compiled id");
        for (gs, ws) in g["samples"]
            .as_array()
            .unwrap()
            .iter()
            .zip(w["samples"].as_array().unwrap())
        {
            assert_eq!(gs["input_hash"], ws["input_hash"], "{name}: input changed");
            assert_eq!(
                gs["outputs"], ws["outputs"],
                "{name} {}: outputs",
                ws["input"]
            );
            assert_eq!(
                gs["sha256"], ws["sha256"],
                "{name} {}: output hash",
                ws["input"]
            );
        }
    }
    assert_eq!(
        got["models"].as_object().unwrap().len(),
        want["models"].as_object().unwrap().len()
    );
}

/// The canonical encoding itself is pinned (a change here changes every hash).
#[test]
fn canonical_encoding_is_pinned() {
    let o = ExactOutput {
        name: "y".into(),
        shape: vec![2],
        frac: Some(16),
        values: vec![1, -1],
    };
    assert_eq!(
        hex(&canonical(&[o])),
        "0100000079010000000200000000000000011000000002000000000000000100000000000000ffffffffffffffff"
    );
}
