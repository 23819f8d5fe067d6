//! Accuracy of exact mode against float onnxruntime (spec §7): top-1
//! agreement and largest absolute error of the probabilities, per example
//! model, on every row of the data set each classifier was trained on
//! (`tests/exact_data/accuracy_*.json`, made by `make_accuracy_refs.py`),
//! and on the stored reference samples of every example model. Fails below
//! the floors set here; prints the table.

use serde_json::Value;
use std::path::{Path, PathBuf};
use verity_engine::{ExactModel, ExactParams, Tensor, TensorData, Tensors};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn examples() -> PathBuf {
    root().join("../../examples")
}

fn argmax(v: &[f64]) -> usize {
    let mut b = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[b] {
            b = i;
        }
    }
    b
}

struct Row {
    model: String,
    rows: usize,
    agree: usize,
    max_err: f64,
}

/// (model, minimum top-1 agreement, largest allowed absolute error).
const FLOORS: &[(&str, f64, f64)] = &[
    ("sk_digits_mlp", 0.995, 1e-3),
    ("np_digits_cnn", 0.995, 1e-3),
    ("sk_iris_logreg", 0.99, 1e-3),
    // A random forest averages 25 votes: an input within 2^-17 of a split
    // threshold can move one vote (1/25 = 0.04) or two.
    ("sk_breast_cancer_rf", 0.99, 0.081),
    ("sk_wine_gb", 0.99, 1e-3),
    ("magika_standard_v3_3", 1.0, 5e-3),
    ("ppocr_mobile_v2_cls", 1.0, 1e-3),
    ("bench_mlp", 1.0, 1e-3),
    ("bench_cnn", 1.0, 1e-3),
    ("bench_mlp_large", 1.0, 1e-3),
];

fn dataset_rows(file: &str) -> Vec<Row> {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/exact_data").join(file)).unwrap(),
    )
    .unwrap();
    let rows = v["rows"].as_u64().unwrap() as usize;
    let feats = v["features"].as_u64().unwrap() as usize;
    let x: Vec<f32> = v["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap() as f32)
        .collect();
    let mut out = vec![];
    for (model, m) in v["models"].as_object().unwrap() {
        let bytes = std::fs::read(examples().join(format!("models/{model}.onnx"))).unwrap();
        let exact = ExactModel::compile(&bytes, &ExactParams::default()).unwrap();
        let shape: Vec<usize> = m["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let labels: Vec<i64> = m["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_i64().unwrap())
            .collect();
        let probs: Vec<f64> = m["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_f64().unwrap())
            .collect();
        let c = m["classes"].as_u64().unwrap() as usize;
        let name = m["input"].as_str().unwrap();
        let (mut agree, mut max_err) = (0, 0f64);
        let batch = 64;
        for start in (0..rows).step_by(batch) {
            let n = batch.min(rows - start);
            let mut s = vec![n];
            s.extend(&shape);
            let data = x[start * feats..(start + n) * feats].to_vec();
            let mut input = Tensors::default();
            input.0.insert(
                name.into(),
                Tensor::new(name, s, TensorData::F32(data)).unwrap(),
            );
            let got = exact.run(&input).unwrap();
            let gl = got.0["label"].data.to_f64();
            let gp = got.0["probabilities"].data.to_f64();
            for r in 0..n {
                if gl[r] as i64 == labels[start + r] {
                    agree += 1;
                }
                for j in 0..c {
                    max_err = max_err.max((gp[r * c + j] - probs[(start + r) * c + j]).abs());
                }
            }
        }
        out.push(Row {
            model: model.clone(),
            rows,
            agree,
            max_err,
        });
    }
    out
}

fn reference_rows(model: &str, file: PathBuf, refs: Vec<PathBuf>) -> Row {
    let bytes = std::fs::read(file).unwrap();
    let exact = ExactModel::compile(&bytes, &ExactParams::default()).unwrap();
    let (mut rows, mut agree, mut max_err) = (0, 0, 0f64);
    for r in refs {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(r).unwrap()).unwrap();
        let input = Tensors::from_json(&v["inputs"]).unwrap();
        let want = Tensors::from_json(&v["outputs"]).unwrap();
        let got = exact.run(&input).unwrap();
        for (k, w) in &want.0 {
            let (g, wv) = (got.0[k].data.to_f64(), w.data.to_f64());
            if matches!(w.data, TensorData::F32(_)) {
                for (a, b) in g.iter().zip(&wv) {
                    max_err = max_err.max((a - b).abs());
                }
                // Top-1 agreement per row of the float output.
                let c = *w.shape.last().unwrap();
                for i in 0..wv.len() / c {
                    rows += 1;
                    if argmax(&g[i * c..(i + 1) * c]) == argmax(&wv[i * c..(i + 1) * c]) {
                        agree += 1;
                    }
                }
            }
        }
    }
    Row {
        model: model.into(),
        rows,
        agree,
        max_err,
    }
}

#[test]
fn exact_accuracy_against_onnxruntime() {
    let mut table = vec![];
    for f in [
        "accuracy_digits.json",
        "accuracy_iris.json",
        "accuracy_breast_cancer.json",
        "accuracy_wine.json",
    ] {
        table.extend(dataset_rows(f));
    }
    for m in ["magika_standard_v3_3", "ppocr_mobile_v2_cls"] {
        let refs = (0..5)
            .map(|i| examples().join(format!("models/refs/{m}/sample_{i}.json")))
            .collect();
        table.push(reference_rows(
            m,
            examples().join(format!("models/{m}.onnx")),
            refs,
        ));
    }
    for m in ["bench_mlp", "bench_cnn", "bench_mlp_large"] {
        let refs = vec![examples().join(format!("bench/{m}.ref0.json"))];
        table.push(reference_rows(
            m,
            examples().join(format!("bench/{m}.onnx")),
            refs,
        ));
    }
    println!(
        "{:<24} {:>6} {:>10} {:>12}",
        "model", "rows", "top-1", "max |err|"
    );
    let mut failures = vec![];
    for r in &table {
        let rate = r.agree as f64 / r.rows as f64;
        println!(
            "{:<24} {:>6} {:>9.2}% {:>12.3e}",
            r.model,
            r.rows,
            100.0 * rate,
            r.max_err
        );
        let (_, min_rate, max_err) = FLOORS.iter().find(|f| f.0 == r.model).copied().unwrap();
        if rate < min_rate || r.max_err > max_err {
            failures.push(format!(
                "{}: top-1 {rate} (floor {min_rate}), max error {} (limit {max_err})",
                r.model, r.max_err
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
