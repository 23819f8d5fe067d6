//! Every field of a saved receipt bundle is covered: changing any one of
//! them makes `verify` fail and say what did not match.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;
use verity_node::audit::verify_bundle;
use verity_primitives::ReceiptBundle;
use verity_testkit::Cluster;

/// Paths to every leaf of a JSON value.
fn leaves(v: &Value, path: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, c)| leaves(c, format!("{path}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| leaves(c, format!("{path}/{i}"), out)),
        _ => out.push(path),
    }
}

fn mutate(v: &mut Value) {
    *v = match v.take() {
        Value::Number(n) if n.is_u64() => Value::from(n.as_u64().unwrap() ^ 1),
        Value::Number(n) => Value::from(n.as_f64().unwrap() + 0.5),
        Value::Bool(b) => Value::Bool(!b),
        Value::Null => Value::String(format!("0x{}", "11".repeat(32))),
        Value::String(s) => {
            // Flip the last hex digit (or change the text).
            let mut c: Vec<char> = s.chars().collect();
            match c.last_mut() {
                Some(ch) if ch.is_ascii_hexdigit() => *ch = if *ch == '0' { '1' } else { '0' },
                _ => c.push('x'),
            }
            Value::String(c.into_iter().collect())
        }
        other => other,
    };
}

#[test]
fn any_tampered_field_fails_verification() -> Result<()> {
    let c = Cluster::start(Path::new(env!("CARGO_BIN_EXE_verity")), 1)?;
    let net = c.dir.path().join("network.json");
    let (code, out, err) = c.cli(&[
        "infer",
        "sk_digits_mlp",
        "--json",
        "--input-file",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/models/refs/sk_digits_mlp/sample_0.json")
            .to_str()
            .unwrap(),
    ])?;
    assert_eq!(code, 0, "{out}{err}");
    let id = serde_json::from_str::<Value>(&out)?["receipt_id"]
        .as_str()
        .context("id")?
        .to_string();
    let (code, text, err) = c.cli(&["receipt", "show", &id, "--json"])?;
    assert_eq!(code, 0, "{err}");
    let original: Value = serde_json::from_str(&text)?;
    let identity = hex::decode(
        original["identity"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
    )?;
    let bundle: ReceiptBundle = serde_json::from_value(original.clone())?;
    verify_bundle(&bundle, Some(&identity)).expect("the untouched bundle verifies");

    let mut paths = Vec::new();
    leaves(&original, String::new(), &mut paths);
    assert!(paths.len() > 30, "{paths:?}");
    for p in &paths {
        let mut v = original.clone();
        mutate(v.pointer_mut(p).unwrap());
        let Ok(b) = serde_json::from_value::<ReceiptBundle>(v) else {
            continue; // rejected as malformed before any check
        };
        let e = verify_bundle(&b, Some(&identity)).err();
        assert!(e.is_some(), "changing {p} was not detected");
    }
    // Through the CLI: a tampered output names the mismatch and exits 5.
    let dir = tempfile::tempdir()?;
    let mut v = original.clone();
    mutate(v.pointer_mut("/output/probabilities/data/0").unwrap());
    let f = dir.path().join("forged.json");
    std::fs::write(&f, serde_json::to_string(&v)?)?;
    let (code, out, err) = c.cli(&[
        "verify",
        f.to_str().unwrap(),
        "--network",
        net.to_str().unwrap(),
    ])?;
    assert_eq!(code, 5, "{out}{err}");
    assert!(err.contains("output hash mismatch"), "{err}");
    let mut v = original.clone();
    mutate(v.pointer_mut("/finalization").unwrap());
    std::fs::write(&f, serde_json::to_string(&v)?)?;
    let (code, _, err) = c.cli(&[
        "verify",
        f.to_str().unwrap(),
        "--network",
        net.to_str().unwrap(),
    ])?;
    assert_eq!(code, 5);
    assert!(err.contains("certificate"), "{err}");
    Ok(())
}
