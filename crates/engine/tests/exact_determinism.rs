//! Exact outputs do not depend on how they are computed (spec §8): with and
//! without SIMD dispatch, with one or several threads, in a debug or a
//! release build (run this test with and without `--release`), batched or
//! row by row; all equal the committed golden hashes.

use serde_json::Value;
use std::path::{Path, PathBuf};
use verity_engine::{ExactModel, ExactOutput, ExactParams, RunOptions, Tensors};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Same encoding as `exact_golden.rs` (spec §8).
fn canonical(outs: &[ExactOutput]) -> Vec<u8> {
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

fn model_path(name: &str) -> PathBuf {
    let ex = root().join("../../examples");
    if name.starts_with("bench_") {
        ex.join(format!("bench/{name}.onnx"))
    } else {
        ex.join(format!("models/{name}.onnx"))
    }
}

fn ref_path(name: &str, file: &str) -> PathBuf {
    let ex = root().join("../../examples");
    if name.starts_with("bench_") {
        ex.join(format!("bench/{file}"))
    } else {
        ex.join(format!("models/refs/{name}/{file}"))
    }
}

#[test]
fn outputs_are_independent_of_simd_threads_and_build() {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/exact_data/golden.json")).unwrap(),
    )
    .unwrap();
    let options = [
        RunOptions {
            simd: false,
            threads: 1,
            ..RunOptions::default()
        },
        RunOptions {
            simd: true,
            threads: 2,
            ..RunOptions::default()
        },
        RunOptions {
            simd: false,
            threads: 3,
            ..RunOptions::default()
        },
    ];
    for (name, g) in golden["models"].as_object().unwrap() {
        let bytes = std::fs::read(model_path(name)).unwrap();
        let m = ExactModel::compile(&bytes, &ExactParams::default()).unwrap();
        // The first sample of each model (the golden test checks the others
        // with the default options).
        for s in g["samples"].as_array().unwrap().iter().take(1) {
            let file = s["input"].as_str().unwrap();
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(ref_path(name, file)).unwrap())
                    .unwrap();
            let input = Tensors::from_json(&v["inputs"]).unwrap();
            for opt in options {
                let outs = m.run_exact_with(&input, opt).unwrap();
                let h = hex(&verity_primitives::codec::sha256(&canonical(&outs)));
                assert_eq!(
                    h,
                    s["sha256"].as_str().unwrap(),
                    "{name} {file} with {opt:?}"
                );
            }
        }
    }
}

/// A batch gives, row by row, the outputs of its rows run alone.
#[test]
fn batched_rows_equal_single_rows() {
    for name in [
        "np_digits_cnn",
        "sk_digits_mlp",
        "sk_wine_gb",
        "ppocr_mobile_v2_cls",
    ] {
        let bytes = std::fs::read(model_path(name)).unwrap();
        let m = ExactModel::compile(&bytes, &ExactParams::default()).unwrap();
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(ref_path(name, "sample_4.json")).unwrap(),
        )
        .unwrap();
        let input = Tensors::from_json(&v["inputs"]).unwrap();
        let batch = m.run_exact(&input).unwrap();
        let (iname, t) = input.0.iter().next().unwrap();
        let n = t.shape[0];
        let per_row = t.len() / n;
        let data = t.data.to_f64();
        for r in 0..n {
            let mut shape = t.shape.clone();
            shape[0] = 1;
            let row = data[r * per_row..(r + 1) * per_row]
                .iter()
                .map(|x| *x as f32)
                .collect();
            let mut one = Tensors::default();
            one.0.insert(
                iname.clone(),
                verity_engine::Tensor::new(iname, shape, verity_engine::TensorData::F32(row))
                    .unwrap(),
            );
            let single = m.run_exact(&one).unwrap();
            for (b, s) in batch.iter().zip(&single) {
                let k = s.values.len();
                assert_eq!(
                    &b.values[r * k..(r + 1) * k],
                    s.values.as_slice(),
                    "{name} row {r} {}",
                    s.name
                );
            }
        }
    }
}
