//! Every example model runs and matches its onnxruntime reference outputs:
//! floats within 1e-4 of the output's largest magnitude, integers exactly.
//! `inspect` agrees with the manifest (inputs, outputs, operators).

use serde_json::Value;
use std::path::{Path, PathBuf};
use verity_engine::{DType, Dim, Engine, TensorData, Tensors, TractEngine};

const TOLERANCE: f64 = 1e-4;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A stand-in content key (the tests only need distinct keys).
fn key(name: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in name.bytes().enumerate() {
        k[i % 32] ^= b.wrapping_add(i as u8);
    }
    k[31] = name.len() as u8;
    k
}

struct Case {
    name: String,
    model: PathBuf,
    refs: Vec<PathBuf>,
}

fn cases() -> Vec<Case> {
    let mut cases = vec![];
    let models = examples().join("models");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&models)
        .expect("examples/models")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    for model in files {
        let name = model.file_stem().unwrap().to_string_lossy().to_string();
        let mut refs: Vec<PathBuf> = std::fs::read_dir(models.join("refs").join(&name))
            .expect("refs folder")
            .map(|e| e.unwrap().path())
            .collect();
        refs.sort();
        cases.push(Case { name, model, refs });
    }
    let bench = examples().join("bench");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&bench)
        .expect("examples/bench")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    for model in files {
        let name = model.file_stem().unwrap().to_string_lossy().to_string();
        let refs = vec![bench.join(format!("{name}.ref0.json"))];
        cases.push(Case { name, model, refs });
    }
    cases
}

fn load_ref(p: &Path) -> (Tensors, Tensors) {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    (
        Tensors::from_json(&v["inputs"]).unwrap(),
        Tensors::from_json(&v["outputs"]).unwrap(),
    )
}

/// Largest error relative to the reference's largest magnitude (floats), or
/// an explanation of the mismatch.
fn compare(got: &Tensors, want: &Tensors) -> Result<f64, String> {
    let names = |t: &Tensors| t.0.keys().cloned().collect::<Vec<_>>();
    if names(got) != names(want) {
        return Err(format!(
            "outputs {:?}, expected {:?}",
            names(got),
            names(want)
        ));
    }
    let mut worst = 0f64;
    for (name, w) in &want.0 {
        let g = &got.0[name];
        if g.shape != w.shape || g.dtype() != w.dtype() {
            return Err(format!(
                "`{name}`: got {}{:?}, expected {}{:?}",
                g.dtype(),
                g.shape,
                w.dtype(),
                w.shape
            ));
        }
        match (&g.data, &w.data) {
            (TensorData::F32(_), _) | (TensorData::F64(_), _) => {
                let (gv, wv) = (g.data.to_f64(), w.data.to_f64());
                let scale = wv
                    .iter()
                    .fold(0f64, |m, x| m.max(x.abs()))
                    .max(f64::MIN_POSITIVE);
                for (a, b) in gv.iter().zip(&wv) {
                    let e = (a - b).abs() / scale;
                    if e.is_nan() || e > TOLERANCE {
                        return Err(format!("`{name}`: {a} vs {b} (relative error {e:e})"));
                    }
                    worst = worst.max(e);
                }
            }
            _ => {
                if g.data != w.data {
                    return Err(format!("`{name}`: {:?} vs {:?}", g.data, w.data));
                }
            }
        }
    }
    Ok(worst)
}

#[test]
fn every_example_model_matches_its_references() {
    let engine = TractEngine::default();
    let cases = cases();
    assert!(cases.len() >= 10, "found only {} models", cases.len());
    let mut table = vec![];
    let mut failures = vec![];
    for case in &cases {
        let bytes = std::fs::read(&case.model).unwrap();
        let k = key(&case.name);
        let mut worst = 0f64;
        let mut ok = true;
        for r in &case.refs {
            let (input, want) = load_ref(r);
            let res = engine
                .run(&k, &bytes, &input)
                .map_err(|e| e.to_string())
                .and_then(|got| compare(&got, &want));
            match res {
                Ok(e) => worst = worst.max(e),
                Err(e) => {
                    ok = false;
                    failures.push(format!("{} {}: {e}", case.name, r.display()));
                }
            }
        }
        table.push(format!(
            "| {:<24} | {:>7} | {:>12.3e} | {:<4} |",
            case.name,
            case.refs.len(),
            worst,
            if ok { "ok" } else { "FAIL" }
        ));
    }
    println!("| model                    | samples | max rel. err | pass |");
    println!("|--------------------------|---------|--------------|------|");
    for row in &table {
        println!("{row}");
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

fn dims(v: &Value) -> Vec<Option<u64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().filter(|_| d.is_u64()))
        .collect()
}

#[test]
fn inspect_agrees_with_the_manifest() {
    let engine = TractEngine::default();
    let dir = examples().join("models");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    for m in manifest["models"].as_array().unwrap() {
        let bytes = std::fs::read(dir.join(m["file"].as_str().unwrap())).unwrap();
        let info = engine.inspect(&bytes).unwrap();
        let mut ops: Vec<String> = m["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                format!(
                    "{}:{}",
                    o["domain"].as_str().unwrap(),
                    o["op_type"].as_str().unwrap()
                )
            })
            .collect();
        ops.sort();
        assert_eq!(info.ops, ops, "{}", m["name"]);
        for (specs, declared) in [(&info.inputs, &m["inputs"]), (&info.outputs, &m["outputs"])] {
            let declared = declared.as_array().unwrap();
            assert_eq!(specs.len(), declared.len());
            for (s, d) in specs.iter().zip(declared) {
                assert_eq!(s.name, d["name"].as_str().unwrap());
                assert_eq!(
                    Some(s.dtype),
                    DType::from_name(d["dtype"].as_str().unwrap())
                );
                let got: Vec<Option<u64>> = s
                    .shape
                    .iter()
                    .map(|d| match d {
                        Dim::Fixed(n) => Some(*n),
                        Dim::Symbolic(_) => None,
                    })
                    .collect();
                assert_eq!(got, dims(&d["shape"]), "{} {}", m["name"], s.name);
            }
        }
    }
}
