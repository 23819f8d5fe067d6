//! Failing and silent executors end to end: a failed execution reaches the
//! client within seconds as the engine's own error, and with one validator
//! (and so one executor) killed every request still settles, by
//! reassignment.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::{
    path::Path,
    time::{Duration, Instant},
};
use verity_primitives::{
    codec::Canonical, InferenceRequest, Mode, ModelManifest, Tensors, Tx, TxBody,
};
use verity_testkit::Cluster;

const IRIS: &str = r#"{"X":{"shape":[1,4],"dtype":"float32","data":[5.1,3.4,1.5,0.2]}}"#;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_verity"))
}

#[test]
fn a_failed_execution_reaches_the_client_quickly_with_the_engine_error() -> Result<()> {
    let _serial = verity_testkit::serial();
    let c = Cluster::start(bin(), 1)?;
    // Admission checks the schema; only exact execution finds the value
    // outside the fixed-point range.
    let mut pixels = vec![0.0f32; 64];
    pixels[3] = 1e30;
    let input = json!({"pixels": {"shape": [1, 1, 8, 8], "dtype": "float32", "data": pixels}});
    let start = Instant::now();
    let (code, out, err) = c.cli(&[
        "infer",
        "np_digits_cnn",
        "--mode",
        "exact",
        "--input",
        &input.to_string(),
        "--timeout",
        "60",
    ])?;
    let took = start.elapsed();
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("exact-mode range"),
        "the engine's error: {err}"
    );
    assert!(err.contains("executor 0x"), "names the executor: {err}");
    // Well before the request's expiry (50 blocks of 250 ms after the draw).
    assert!(took < Duration::from_secs(8), "took {took:?}: {err}");
    Ok(())
}

#[test]
fn with_a_validator_killed_every_request_settles() -> Result<()> {
    let _serial = verity_testkit::serial();
    let mut c = Cluster::start(bin(), 4)?;
    let t = Duration::from_secs(60);
    for a in &c.apis {
        a.wait_height(3, t)?;
    }
    c.kill9(3)?;
    let api = &c.apis[0];
    let key = c.dev_account()?;
    let nonce = api.ok(&format!("/v1/accounts/{}", key.address()))?["next_nonce"]
        .as_u64()
        .context("next_nonce")?;
    let chain_id = api.ok("/v1/status")?["chain_id"]
        .as_u64()
        .context("chain_id")?;
    let manifest: ModelManifest = serde_json::from_value(api.ok("/v1/models/sk_iris_logreg")?)?;
    let input = Tensors::from_json_str(IRIS)?;
    // Eight requests: with four executors, some are drawn to the dead one.
    let mut ids = Vec::new();
    for i in 0..8 {
        let tx = Tx {
            chain_id,
            from: key.address(),
            nonce: nonce + i,
            body: TxBody::Infer(InferenceRequest {
                model: manifest.model_id,
                input: input.clone(),
                mode: Mode::Vanilla,
                max_fee: manifest.price,
            }),
        }
        .sign(&key);
        let (code, body) = api.post("/v1/txs", "application/octet-stream", tx.encode())?;
        assert!(code == 200 || code == 202, "{code} {body}");
        ids.push(tx.id());
    }
    let start = Instant::now();
    let mut reassigned = 0;
    for id in &ids {
        let mut was_reassigned = false;
        let v: Value = loop {
            let (code, v) = api.get(&format!("/v1/requests/{id:#x}"))?;
            if code == 200 && !v["reassigned_from"].is_null() {
                was_reassigned = true;
            }
            if code == 200 && (v["final"] == json!(true) || v["status"] == "failed") {
                break v;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(120),
                "request {id:#x} did not settle: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(v["status"], "settled", "request {id:#x}: {v}");
        assert_eq!(v["outputs"]["label"]["data"][0], 0, "{v}");
        reassigned += usize::from(was_reassigned);
    }
    eprintln!(
        "8 requests settled in {:?}, {reassigned} seen reassigned",
        start.elapsed()
    );
    Ok(())
}
