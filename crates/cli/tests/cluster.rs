//! Multi-process networks on loopback: agreement on state roots, liveness
//! with a validator killed (-9), catch-up after restart, and durability of
//! everything the API reported final across a crash.

use anyhow::{Context, Result};
use std::{path::Path, time::Duration};
use verity_testkit::{Api, Cluster};

const IRIS: &str = r#"{"X":{"shape":[1,4],"dtype":"float32","data":[5.1,3.4,1.5,0.2]}}"#;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_verity"))
}

/// Runs an inference through the CLI against `api`; returns the receipt id.
fn infer(c: &Cluster, api: &Api) -> Result<String> {
    let out = std::process::Command::new(bin())
        .args([
            "--node",
            &api.url,
            "infer",
            "sk_iris_logreg",
            "--input",
            IRIS,
            "--json",
            "--timeout",
            "90",
        ])
        .env("VERITY_KEY", c.dev_key()?)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "infer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["outputs"]["label"]["data"][0], 0, "{v}");
    Ok(v["receipt_id"].as_str().context("receipt_id")?.to_string())
}

fn verify(c: &Cluster, receipt: &str) -> Result<()> {
    let net = c.dir.path().join("network.json");
    let (code, out, err) = c.cli(&["verify", receipt, "--network", net.to_str().unwrap()])?;
    anyhow::ensure!(code == 0, "verify {receipt}: {out}{err}");
    Ok(())
}

fn assert_same_roots(apis: &[&Api], upto: u64) -> Result<()> {
    for h in 1..=upto {
        let roots: Vec<String> = apis.iter().map(|a| a.root_at(h)).collect::<Result<_>>()?;
        assert!(
            roots.windows(2).all(|w| w[0] == w[1]),
            "roots differ at height {h}: {roots:?}"
        );
    }
    Ok(())
}

#[test]
fn four_validators_agree_survive_a_kill_and_catch_up() -> Result<()> {
    let _serial = verity_testkit::serial();
    let mut c = Cluster::start(bin(), 4)?;
    let t = Duration::from_secs(60);
    for a in &c.apis {
        a.wait_height(3, t)?;
    }
    let r1 = infer(&c, &c.apis[0])?;
    verify(&c, &r1)?;
    let h = c
        .apis
        .iter()
        .map(|a| a.height())
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .min()
        .unwrap();
    assert_same_roots(&c.apis.iter().collect::<Vec<_>>(), h)?;

    // 3 of 4 keep finalizing without node 3.
    c.kill9(3)?;
    let before = c.apis[0].height()?;
    for a in &c.apis[..3] {
        a.wait_height(before + 8, t)?;
    }
    // Node 3 restarts from its storage and catches up.
    c.start_node(3)?;
    c.apis[3].wait_ready(t)?;
    let target = c.apis[0].height()?;
    c.apis[3].wait_height(target, Duration::from_secs(90))?;
    assert_same_roots(&c.apis.iter().collect::<Vec<_>>(), target)?;
    // The restarted node serves and settles new work, and still has old receipts.
    let r2 = infer(&c, &c.apis[3])?;
    let (code, _, err) = c.cli(&["receipt", "show", &r1])?;
    assert_eq!(code, 0, "{err}");
    verify(&c, &r2)?;
    // A model published through node 0 reaches every hub through consensus:
    // whichever validator is drawn as executor can run it.
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bench/bench_mlp.onnx");
    let (code, out, err) =
        c.cli(&["model", "publish", model.to_str().unwrap(), "--name", "mlp"])?;
    assert_eq!(code, 0, "{out}{err}");
    let refs =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bench/bench_mlp.ref0.json");
    for api in [&c.apis[1], &c.apis[2], &c.apis[3], &c.apis[0]] {
        let out = std::process::Command::new(bin())
            .args([
                "--node",
                &api.url,
                "infer",
                "mlp",
                "--input-file",
                refs.to_str().unwrap(),
                "--json",
            ])
            .env("VERITY_KEY", c.dev_key()?)
            .output()?;
        assert!(
            out.status.success(),
            "infer via {}: {}",
            api.url,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for h in [&c.apis[0], &c.apis[3]] {
        assert!(h.ok("/v1/models/mlp").is_ok());
    }
    Ok(())
}

#[test]
fn kill9_loses_nothing_reported_final() -> Result<()> {
    let _serial = verity_testkit::serial();
    let mut c = Cluster::start(bin(), 1)?;
    let api = c.apis[0].clone();
    let mut receipts = Vec::new();
    for _ in 0..3 {
        receipts.push(infer(&c, &api)?);
    }
    let height = api.height()?;
    let root = api.root_at(height)?;
    // Kill while the chain is running, twice, with work in between.
    c.kill9(0)?;
    c.start_node(0)?;
    api.wait_ready(Duration::from_secs(60))?;
    receipts.push(infer(&c, &api)?);
    c.kill9(0)?;
    c.start_node(0)?;
    api.wait_ready(Duration::from_secs(60))?;
    assert!(api.height()? >= height);
    assert_eq!(api.root_at(height)?, root, "history changed across a crash");
    for r in &receipts {
        verify(&c, r)?;
    }
    api.wait_height(api.height()? + 3, Duration::from_secs(60))?;
    Ok(())
}

#[test]
fn transactions_reach_every_validator_and_survive_their_entry_node() -> Result<()> {
    let _serial = verity_testkit::serial();
    use verity_primitives::{codec::Canonical, Address, Tx, TxBody};
    let mut c = Cluster::start(bin(), 4)?;
    let t = Duration::from_secs(60);
    for a in &c.apis {
        a.wait_height(3, t)?;
    }
    let key = c.dev_account()?;
    let v = c.apis[0].ok(&format!("/v1/accounts/{}", key.address()))?;
    let nonce = v["next_nonce"].as_u64().context("next_nonce")?;
    let chain_id = c.apis[0].ok("/v1/status")?["chain_id"]
        .as_u64()
        .context("chain_id")?;
    let to = Address::repeat_byte(0x77);
    let txs: Vec<_> = (0..5)
        .map(|i| {
            Tx {
                chain_id,
                from: key.address(),
                nonce: nonce + i,
                body: TxBody::Transfer { to, amount: 1 },
            }
            .sign(&key)
        })
        .collect();
    // Sent to node 3 only, which is then killed.
    for tx in &txs {
        let (code, body) = c.apis[3].post("/v1/txs", "application/octet-stream", tx.encode())?;
        assert!(code == 200 || code == 202, "{code} {body}");
    }
    // The others hear of them by gossip (without it they never would)...
    let start = std::time::Instant::now();
    for tx in &txs {
        loop {
            let (code, _) = c.apis[1].get(&format!("/v1/txs/{:#x}", tx.id()))?;
            if code == 200 {
                break;
            }
            anyhow::ensure!(start.elapsed() < t, "{:#x} never reached node 1", tx.id());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // ...and include them after their entry node is gone.
    c.kill9(3)?;
    let start = std::time::Instant::now();
    for tx in &txs {
        loop {
            let (code, v) = c.apis[1].get(&format!("/v1/txs/{:#x}", tx.id()))?;
            if code == 200 && v["status"] == "applied" {
                break;
            }
            anyhow::ensure!(start.elapsed() < t, "{:#x} never applied: {v}", tx.id());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let bal = c.apis[0].ok(&format!("/v1/accounts/{to}"))?;
    assert_eq!(bal["balance"], "5", "{bal}");
    Ok(())
}

#[test]
fn a_lost_model_file_is_refetched_from_a_peer() -> Result<()> {
    let _serial = verity_testkit::serial();
    let c = Cluster::start(bin(), 2)?;
    let t = Duration::from_secs(60);
    for a in &c.apis {
        a.wait_height(2, t)?;
    }
    let id = c.apis[0].ok("/v1/models/np_digits_cnn")?["model_id"]
        .as_str()
        .context("model_id")?
        .to_string();
    let file = c.home(1).join("hub").join(format!("{id}.onnx"));
    let original = std::fs::read(&file)?;
    std::fs::remove_file(&file)?;
    // Nodes serve only their own copy to each other (no fetch loops).
    let (code, _) = c.apis[1].get(&format!("/v1/models/{id}/onnx"))?;
    assert_eq!(code, 404);
    // Node 1 needs the bytes (exact-mode admission compiles the model): it
    // fetches them from node 0, checks them and stores them again.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/models/refs/np_digits_cnn/sample_4.json");
    let out = std::process::Command::new(bin())
        .args([
            "--node",
            &c.apis[1].url,
            "infer",
            "np_digits_cnn",
            "--mode",
            "exact",
        ])
        .arg("--input-file")
        .arg(&sample)
        .args(["--json", "--timeout", "90"])
        .env("VERITY_KEY", c.dev_key()?)
        .output()?;
    assert!(
        out.status.success(),
        "infer via node 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&file)?, original, "the file is back, intact");
    Ok(())
}
