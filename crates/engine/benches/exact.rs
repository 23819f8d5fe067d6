//! Exact mode vs tract float vs onnxruntime (single thread), on every
//! example and bench model, from one run: `cargo bench -p verity-engine
//! --bench exact`. onnxruntime runs through `scripts/ort_bench.py` with the
//! Python named by `VERITY_PYTHON` (default `python3`; needs
//! `pip install -r scripts/requirements-bench.txt`); without it that column
//! reads n/a. Each engine: 5 warm-up runs, then up to `RUNS` runs or
//! `MAX_SECONDS`, median in ms. Exact mode is timed end to end (input
//! quantization and output conversion included); tract and onnxruntime time
//! the plan/session run only. `VERITY_BENCH_ONLY=a,b` restricts the models.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use verity_engine::{ExactModel, ExactParams, RunOptions, Tensors, TractEngine};

const RUNS: usize = 200;
const MAX_SECONDS: f64 = 5.0;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn models() -> Vec<(String, PathBuf, PathBuf)> {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
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
        v.push((
            m.into(),
            ex.join(format!("models/{m}.onnx")),
            ex.join(format!("models/refs/{m}/sample_0.json")),
        ));
    }
    for m in ["bench_mlp", "bench_cnn", "bench_mlp_large"] {
        v.push((
            m.into(),
            ex.join(format!("bench/{m}.onnx")),
            ex.join(format!("bench/{m}.ref0.json")),
        ));
    }
    v
}

fn time(mut f: impl FnMut()) -> f64 {
    for _ in 0..5 {
        f();
    }
    let start = Instant::now();
    let mut s = vec![];
    while s.len() < RUNS {
        let t = Instant::now();
        f();
        s.push(t.elapsed());
        if start.elapsed().as_secs_f64() > MAX_SECONDS {
            break;
        }
    }
    median(s)
}

fn ort(models: &[(String, PathBuf, PathBuf)]) -> Option<Value> {
    let py = std::env::var("VERITY_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ort_bench.py");
    let mut cmd = Command::new(py);
    cmd.arg(script).args([
        "--runs",
        &RUNS.to_string(),
        "--warmup",
        "5",
        "--max-seconds",
        &MAX_SECONDS.to_string(),
    ]);
    for (name, onnx, input) in models {
        cmd.arg("--model").arg(name).arg(onnx).arg(input);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        eprintln!(
            "onnxruntime: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn main() {
    let only = std::env::var("VERITY_BENCH_ONLY").ok();
    let models: Vec<_> = models()
        .into_iter()
        .filter(|m| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|x| x == m.0))
        })
        .collect();
    let ort = ort(&models);
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10} {:>11} {:>11}",
        "model", "exact", "exact-mt2", "tract", "ort", "exact/ort", "exact/tract"
    );
    let load = |onnx: &PathBuf, input: &PathBuf| {
        let bytes = std::fs::read(onnx).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(input).unwrap()).unwrap();
        (bytes, Tensors::from_json(&v["inputs"]).unwrap())
    };
    // Exact mode first, for every model, then tract: tract's AVX-512 kernels
    // can leave the vector registers' upper halves dirty, which slowed later
    // AVX2 code down about 3.5x on the benchmark machine. The executor now
    // clears that state itself (`clear_simd_state`); the order is kept so
    // that the two measurements never interact.
    let mut exact_ms = vec![];
    for (_, onnx, input) in &models {
        let (bytes, input) = load(onnx, input);
        let exact = ExactModel::compile(&bytes, &ExactParams::default()).unwrap();
        let te = time(|| {
            exact.run_exact(&input).unwrap();
        });
        let mt = RunOptions {
            simd: true,
            threads: 2,
            ..RunOptions::default()
        };
        let te2 = time(|| {
            exact.run_exact_with(&input, mt).unwrap();
        });
        exact_ms.push((te, te2));
    }
    for (i, (name, onnx, input)) in models.iter().enumerate() {
        let (bytes, input) = load(onnx, input);
        let (te, te2) = exact_ms[i];
        // A fresh engine per model: nothing of the previous models stays in memory.
        let tract = TractEngine::default();
        let key = [i as u8; 32];
        let plan = tract.prepare(&key, &bytes, &input).unwrap();
        let tt = plan
            .time_runs(&input, RUNS, Duration::from_secs_f64(MAX_SECONDS))
            .unwrap()
            .median()
            .as_secs_f64()
            * 1e3;
        let to = ort.as_ref().and_then(|o| {
            o["models"]
                .as_array()?
                .iter()
                .find(|m| m["name"] == name.as_str())?["median_ms"]
                .as_f64()
        });
        let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.4}"));
        println!(
            "{:<22} {:>10.4} {:>10.4} {:>10.4} {:>10} {:>11} {:>11.2}",
            name,
            te,
            te2,
            tt,
            fmt(to),
            to.map_or("n/a".into(), |o| format!("{:.2}", te / o)),
            te / tt
        );
    }
    if let Some(o) = &ort {
        println!("onnxruntime {} (python {})", o["onnxruntime"], o["python"]);
    }
    println!(
        "times: median ms of up to {RUNS} runs (5 warm-up); ratios < 1 mean exact mode is faster"
    );
}
