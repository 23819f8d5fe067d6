//! `verify` trusts only an identity the user holds: without one it fails
//! closed, a receipt of another network fails against this one's file, an
//! incomplete bundle is not reported as verified, and exact-mode parameters
//! come from the network file.

use anyhow::{Context, Result};
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};
use verity_testkit::Cluster;

const IRIS: &str = r#"{"X":{"shape":[1,4],"dtype":"float32","data":[5.1,3.4,1.5,0.2]}}"#;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_verity"))
}

/// Runs the CLI with its data directory (where the devnet's network.json
/// would be) under `data_home`, so nothing of the user's own devnet leaks in.
fn run(c: &Cluster, data_home: &Path, args: &[&str]) -> Result<(i32, String, String)> {
    let out = Command::new(bin())
        .args(args)
        .env("HOME", data_home)
        .env("XDG_DATA_HOME", data_home.join("share"))
        .env_remove("VERITY_NETWORK")
        .env("VERITY_NODE", &c.apis[0].url)
        .env("VERITY_KEY", c.dev_key()?)
        .stdin(Stdio::null())
        .output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `verity devnet --init-only` of another network; returns its network file.
fn other_network(dir: &Path, extra: &[&str]) -> Result<PathBuf> {
    let st = Command::new(bin())
        .args(["devnet", "--init-only", "--data-dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(st.success(), "devnet --init-only {extra:?}: {st}");
    Ok(dir.join("network.json"))
}

fn p(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn verify_trusts_only_an_identity_the_user_holds() -> Result<()> {
    let c = Cluster::start(bin(), 1)?;
    let tmp = tempfile::tempdir()?;
    let empty = tmp.path().join("empty-home");
    std::fs::create_dir_all(&empty)?;
    let net = c.dir.path().join("network.json");
    let receipt = tmp.path().join("receipt.json");
    let (code, out, err) = run(
        &c,
        &empty,
        &[
            "infer",
            "sk_iris_logreg",
            "--input",
            IRIS,
            "--receipt-out",
            p(&receipt),
        ],
    )?;
    assert_eq!(code, 0, "{out}{err}");

    // No identity anywhere: fail closed, saying what to pass.
    let (code, out, err) = run(&c, &empty, &["verify", p(&receipt)])?;
    assert_eq!(code, 2, "verified with no trusted identity: {out}{err}");
    assert!(!out.contains("is valid"), "{out}");
    assert!(
        err.contains("--network FILE") && err.contains("--identity HEX"),
        "{err}"
    );
    let (code, out, _) = run(&c, &empty, &["--json", "verify", p(&receipt)])?;
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out)?;
    assert_eq!(v["error"]["code"], "usage", "{v}");

    // The happy paths: a network file, an identity, the local devnet's file.
    let (code, out, err) = run(&c, &empty, &["verify", p(&receipt), "--network", p(&net)])?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is valid") && out.contains(p(&net)), "{out}");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&net)?)?;
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(&receipt)?)?;
    let identity = bundle["identity"].as_str().context("identity")?;
    let (code, out, err) = run(&c, &empty, &["verify", p(&receipt), "--identity", identity])?;
    assert_eq!(code, 0, "{out}{err}");
    let home = tmp.path().join("devnet-home");
    let default = home.join("share/verity/devnet");
    std::fs::create_dir_all(&default)?;
    std::fs::copy(&net, default.join("network.json"))?;
    let (code, out, err) = run(&c, &home, &["--json", "verify", p(&receipt)])?;
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out)?;
    assert_eq!(v["trusted"]["source"], "devnet_default", "{v}");
    assert_eq!(
        v["trusted"]["network_file"],
        p(&default.join("network.json"))
    );
    assert_eq!(v["complete"], true, "{v}");

    // A receipt of this network checked against another network's file fails:
    // another validator set (another identity) ...
    let b = other_network(&tmp.path().join("b"), &["--validators", "2"])?;
    let (code, out, err) = run(&c, &empty, &["verify", p(&receipt), "--network", p(&b)])?;
    assert_eq!(code, 5, "{out}{err}");
    assert!(err.contains("identity"), "{err}");
    // ... or the same development validator set on another chain.
    let chain = other_network(&tmp.path().join("c"), &["--chain-id", "4242"])?;
    let (code, out, err) = run(&c, &empty, &["verify", p(&receipt), "--network", p(&chain)])?;
    assert_eq!(
        code, 5,
        "a receipt of chain 1337 passed as chain 4242: {out}{err}"
    );
    assert!(err.contains("chain"), "{err}");

    // Exact-mode parameters come from the network file.
    let exact = tmp.path().join("exact.json");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/models/refs/np_digits_cnn/sample_4.json");
    let (code, out, err) = run(
        &c,
        &empty,
        &[
            "infer",
            "np_digits_cnn",
            "--mode",
            "exact",
            "--input-file",
            p(&sample),
            "--receipt-out",
            p(&exact),
        ],
    )?;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&c, &empty, &["verify", p(&exact), "--network", p(&net)])?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("exact-mode parameters"), "{out}");
    let mut q12 = file.clone();
    q12["genesis"]["params"]["exact_params"] = Value::String("0x010c10".into());
    let q12_path = tmp.path().join("q12.json");
    std::fs::write(&q12_path, serde_json::to_string(&q12)?)?;
    let (code, out, err) = run(
        &c,
        &empty,
        &["verify", p(&exact), "--network", p(&q12_path)],
    )?;
    assert_eq!(code, 5, "{out}{err}");
    assert!(err.contains("exact-mode parameters"), "{err}");

    // A bundle without its input is not a full check: it fails unless a
    // partial check is asked for, and then says what was skipped.
    let mut partial = bundle.clone();
    partial["input"] = Value::Null;
    let partial_path = tmp.path().join("partial.json");
    std::fs::write(&partial_path, serde_json::to_string(&partial)?)?;
    let (code, out, err) = run(
        &c,
        &empty,
        &["verify", p(&partial_path), "--network", p(&net)],
    )?;
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        err.contains("input") && err.contains("--allow-partial"),
        "{err}"
    );
    let (code, out, err) = run(
        &c,
        &empty,
        &[
            "--json",
            "verify",
            p(&partial_path),
            "--network",
            p(&net),
            "--allow-partial",
        ],
    )?;
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out)?;
    assert_eq!(v["complete"], false, "{v}");
    assert!(
        v["skipped"][0]
            .as_str()
            .is_some_and(|s| s.contains("input")),
        "{v}"
    );
    Ok(())
}
