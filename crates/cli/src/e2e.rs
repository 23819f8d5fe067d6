//! End-to-end benchmark: latency from submitting `infer` to holding a final,
//! certified receipt, on fresh 1- and 4-validator devnets on loopback.

use crate::{client::Client, commands::Ctx, keyfile};
use anyhow::{bail, Context, Result};
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use verity_primitives::{
    codec::Canonical, InferenceRequest, Mode, ModelManifest, Tensors, Tx, TxBody,
};

fn one_devnet(validators: usize, runs: usize) -> Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let api = verity_node::free_ports(2 * validators as u16)?;
    let p2p = api + validators as u16;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "devnet",
            "--validators",
            &validators.to_string(),
            "--api-port",
            &api.to_string(),
            "--p2p-port",
            &p2p.to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| -> Result<Vec<Duration>> {
        let c = Client::new(&format!("http://127.0.0.1:{api}"))?;
        let start = Instant::now();
        while c.get("/v1/status").is_err() {
            if start.elapsed() > Duration::from_secs(90) {
                bail!("devnet did not start");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let key = keyfile::read(&dir.path().join("dev-account.json"))?;
        let chain_id = c.get("/v1/status")?["chain_id"]
            .as_u64()
            .context("chain id")?;
        let m: ModelManifest = serde_json::from_value(c.get("/v1/models/sk_iris_logreg")?)?;
        let input = Tensors::from_json_str(
            r#"{"X": {"shape": [1, 4], "dtype": "float32", "data": [5.9, 3.0, 5.1, 1.8]}}"#,
        )?;
        let first_nonce = c.get(&format!("/v1/accounts/{}", key.address()))?["next_nonce"]
            .as_u64()
            .context("nonce")?;
        let mut out = Vec::new();
        for nonce in first_nonce..first_nonce + runs as u64 {
            let tx = Tx {
                chain_id,
                from: key.address(),
                nonce,
                body: TxBody::Infer(InferenceRequest {
                    model: m.model_id,
                    input: input.clone(),
                    mode: Mode::Vanilla,
                    max_fee: m.price,
                }),
            }
            .sign(&key);
            let t = Instant::now();
            let v = c.post_bytes("/v1/infer?wait=true&timeout_ms=60000", tx.encode())?;
            if v["final"] != serde_json::json!(true) {
                bail!("inference did not finalize: {v}");
            }
            out.push(t.elapsed());
        }
        Ok(out)
    })();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    result
}

pub fn run(_ctx: &Ctx, runs: usize) -> Result<()> {
    println!("\nend-to-end: infer submitted -> final certified receipt (sk_iris_logreg, {runs} sequential requests)");
    println!(
        "{:<14} {:>10} {:>10} {:>10}",
        "devnet", "p10 ms", "median ms", "p90 ms"
    );
    for v in [1usize, 4] {
        let mut d = one_devnet(v, runs)?;
        d.sort();
        let pct = |p: f64| d[((d.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
        println!(
            "{:<14} {:>10.1} {:>10.1} {:>10.1}",
            format!("{v} validator(s)"),
            pct(0.1),
            pct(0.5),
            pct(0.9)
        );
    }
    Ok(())
}
