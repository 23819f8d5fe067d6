//! Bad input at every door: malformed bodies, wrong tensors, unknown ids,
//! oversized uploads, bad signatures, wrong chain, replays, unfunded
//! accounts, unusable ONNX files, and the CLI's exit codes. Every rejection
//! must carry the right status and code, name the problem, and leave the
//! ledger untouched.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::{
    io::{Read, Write},
    net::{Shutdown, TcpStream},
    path::Path,
    time::{Duration, Instant},
};
use verity_engine::{Engine, EngineError, Limits, TractEngine};
use verity_primitives::{
    codec::Canonical, InferenceRequest, Mode, ModelId, ModelManifest, PrivateKey, SignedTx,
    Tensors, Tx, TxBody,
};
use verity_testkit::{Api, Cluster};

const IRIS: &str = r#"{"X":{"shape":[1,4],"dtype":"float32","data":[5.1,3.4,1.5,0.2]}}"#;
const OCTET: &str = "application/octet-stream";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_verity"))
}

/// Asserts an API error: status, code, and a message containing every needle.
#[track_caller]
fn expect_err(got: (u16, Value), status: u16, code: &str, needles: &[&str]) {
    let (s, v) = got;
    assert_eq!(s, status, "status of {v}");
    assert_eq!(v["error"]["code"], json!(code), "code of {v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    for n in needles {
        assert!(msg.contains(n), "message `{msg}` should mention `{n}`");
    }
}

/// Runs the CLI; asserts its exit code and that stderr mentions `needle`.
#[track_caller]
fn cli_fails(c: &Cluster, args: &[&str], code: i32, needle: &str) {
    let (got, out, err) = c.cli(args).expect("run the CLI");
    assert_eq!(got, code, "exit code of {args:?}: {out}{err}");
    assert!(
        err.contains(needle),
        "stderr of {args:?} should mention `{needle}`: {err}"
    );
}

/// What a rejected request must not change: the account, models, mempool.
fn snapshot(api: &Api, key: &PrivateKey) -> Result<Value> {
    let acct = api.ok(&format!("/v1/accounts/{}", key.address()))?;
    let models = api.ok("/v1/models")?["models"].clone();
    let mempool = api.ok("/v1/status")?["mempool"].clone();
    Ok(json!([
        acct["nonce"],
        acct["next_nonce"],
        acct["balance"],
        models,
        mempool
    ]))
}

fn wait_until(what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    while !done()? {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: timed out"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Signs transactions for one account against one node.
struct Signer {
    api: Api,
    key: PrivateKey,
    chain_id: u64,
}

impl Signer {
    fn new(api: &Api, key: PrivateKey) -> Result<Self> {
        let chain_id = api.ok("/v1/status")?["chain_id"].as_u64();
        let chain_id = chain_id.context("chain_id")?;
        Ok(Self {
            api: api.clone(),
            key,
            chain_id,
        })
    }

    fn tx(&self, body: TxBody) -> Result<SignedTx> {
        let (chain_id, from) = (self.chain_id, self.key.address());
        let acct = self.api.ok(&format!("/v1/accounts/{from}"))?;
        let nonce = acct["next_nonce"].as_u64().context("next_nonce")?;
        Ok(Tx {
            chain_id,
            from,
            nonce,
            body,
        }
        .sign(&self.key))
    }

    fn post(&self, path: &str, body: TxBody) -> Result<(u16, Value)> {
        self.api.post(path, OCTET, self.tx(body)?.encode())
    }

    fn infer(&self, model: &ModelManifest, input: &str, max_fee: u128) -> Result<(u16, Value)> {
        let input = Tensors::from_json_str(input)?;
        let (model, mode) = (model.model_id, Mode::Vanilla);
        let req = InferenceRequest {
            model,
            input,
            mode,
            max_fee,
        };
        self.post("/v1/infer", TxBody::Infer(req))
    }

    /// Publishes `onnx` with a plausible manifest: `X: float32[1] -> Y`.
    fn publish(&self, name: &str, onnx: Vec<u8>) -> Result<(u16, Value)> {
        let spec = |n| json!({"name": n, "dtype": "float32", "shape": [1]});
        let manifest = serde_json::from_value(json!({
            "model_id": ModelId::of_bytes(&onnx), "name": name, "version": "1",
            "description": "", "size": onnx.len(), "inputs": [spec("X")],
            "outputs": [spec("Y")], "ops": ["ai.onnx:NoSuchOp"],
            "publisher": self.key.address(), "price": 1,
        }))?;
        self.post("/v1/txs", TxBody::Publish { manifest, onnx })
    }
}

fn model(api: &Api, name: &str) -> Result<ModelManifest> {
    Ok(serde_json::from_value(
        api.ok(&format!("/v1/models/{name}"))?,
    )?)
}

/// POSTs `size` zero bytes and reads the answer while still sending, as curl
/// does: the node answers 413 and closes before the body is all in, which a
/// client that reads only after sending (reqwest) sees as a reset at random.
fn post_oversized(api: &Api, path: &str, size: usize) -> Result<(u16, Value)> {
    let addr = api.url.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut writer = stream.try_clone()?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {OCTET}\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let sender = std::thread::spawn(move || {
        let chunk = vec![0u8; 1 << 16];
        let mut ok = writer.write_all(head.as_bytes()).is_ok();
        let mut left = size;
        while ok && left > 0 {
            ok = writer.write_all(&chunk[..left.min(chunk.len())]).is_ok();
            left = left.saturating_sub(chunk.len());
        }
    });
    let (mut buf, mut tmp) = (Vec::new(), [0u8; 4096]);
    let (start, len) = loop {
        let n = stream.read(&mut tmp).context("reading the answer")?;
        anyhow::ensure!(n > 0, "connection closed after {buf:?}");
        buf.extend_from_slice(&tmp[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "));
        let len: usize = len.context("no content-length")?.trim().parse()?;
        if buf.len() >= end + 4 + len {
            break (end + 4, len);
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    let _ = sender.join();
    let status = String::from_utf8_lossy(&buf[9..12]).parse()?;
    Ok((status, serde_json::from_slice(&buf[start..start + len])?))
}

/// Minimal protobuf writer, enough to hand-build an ONNX file.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn int(mut self, field: u64, v: u64) -> Self {
        self.varint(field << 3);
        self.varint(v);
        self
    }
    fn bytes(mut self, field: u64, b: impl AsRef<[u8]>) -> Self {
        self.varint((field << 3) | 2);
        self.varint(b.as_ref().len() as u64);
        self.0.extend_from_slice(b.as_ref());
        self
    }
}

impl AsRef<[u8]> for Pb {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A well-formed ONNX model whose single node is `Y = NoSuchOp(X)`.
fn no_such_op_onnx() -> Vec<u8> {
    let value_info = |name: &str| {
        let shape = Pb::default().bytes(1, Pb::default().int(1, 1)); // dim { dim_value: 1 }
        let tensor = Pb::default().int(1, 1).bytes(2, shape); // elem_type: FLOAT
        Pb::default()
            .bytes(1, name)
            .bytes(2, Pb::default().bytes(1, tensor))
    };
    let node = Pb::default()
        .bytes(1, "X")
        .bytes(2, "Y")
        .bytes(4, "NoSuchOp");
    let graph = Pb::default().bytes(1, node).bytes(2, "g");
    let graph = graph.bytes(11, value_info("X")).bytes(12, value_info("Y"));
    let opset = Pb::default().bytes(1, "").int(2, 13);
    Pb::default().int(1, 8).bytes(7, graph).bytes(8, opset).0
}

#[test]
fn malformed_and_unknown_requests_are_rejected_without_state_change() -> Result<()> {
    let c = Cluster::start(bin(), 1)?;
    let api = &c.apis[0];
    let s = Signer::new(api, c.dev_account()?)?;
    let iris = model(api, "sk_iris_logreg")?;
    let before = snapshot(api, &s.key)?;

    // Bodies that do not parse.
    for path in ["/v1/infer", "/v1/txs"] {
        let r = api.post(path, "application/json", b"{\"tx\": {not json".to_vec())?;
        expect_err(r, 400, "malformed_json", &["request body"]);
        let r = api.post(path, OCTET, b"\x01not a transaction".to_vec())?;
        expect_err(r, 400, "malformed_tx", &["malformed signed transaction"]);
        let r = api.post(path, OCTET, b"\x07".to_vec())?;
        expect_err(r, 400, "malformed_tx", &["version 7"]);
    }

    // Inputs that do not fit the model's schema.
    let price = iris.price;
    let wrong_shape = r#"{"X":{"shape":[1,3],"dtype":"float32","data":[5.1,3.4,1.5]}}"#;
    for (input, needles) in [
        (IRIS.replace("\"X\"", "\"petals\""), ["`petals`", "[\"X\"]"]),
        (wrong_shape.to_string(), ["`X`", "shape [1, 3]"]),
        (IRIS.replace("float32", "float64"), ["`X`", "dtype float64"]),
        ("{}".to_string(), ["missing", "`X`"]),
    ] {
        let r = s.infer(&iris, &input, price)?;
        expect_err(r, 422, "invalid_input", &needles);
    }

    // Unknown things, and ids that are not ids.
    let mut ghost = iris.clone();
    ghost.model_id = ModelId::of_bytes(b"no such model");
    let r = s.infer(&ghost, IRIS, price)?;
    expect_err(r, 404, "unknown_model", &[&ghost.model_id.to_string()]);
    // One row per lookup: path, status, code, a word the message must hold.
    let zero = format!("0x{}", "00".repeat(32));
    let rows = format!(
        "/v1/models/nope 404 unknown_model `nope`
         /v1/receipts/{zero} 404 unknown_receipt {zero}
         /v1/txs/{zero} 404 unknown_tx {zero}
         /v1/requests/{zero} 404 unknown_request {zero}
         /v1/receipts/1234 400 bad_id `1234`
         /v1/receipts/0x1234 400 bad_id digits
         /v1/txs/0x{zz} 400 bad_id character
         /v1/accounts/bob 400 bad_address `bob`
         /v1/nope 404 no_route /openapi.json",
        zz = "zz".repeat(32)
    );
    for row in rows.lines() {
        let f: Vec<&str> = row.split_whitespace().collect();
        expect_err(api.get(f[0])?, f[1].parse()?, f[2], &[f[3]]);
    }

    // Bodies over the route limits (8 MiB for infer, 40 MiB for txs).
    for (path, size) in [("/v1/infer", 9 << 20), ("/v1/txs", 41 << 20)] {
        let (st, v) = post_oversized(api, path, size)?;
        assert_eq!(st, 413, "{size} bytes to {path}: {v}");
        assert!(v["error"]["code"].is_string(), "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("limit"), "{v}");
    }

    assert_eq!(snapshot(api, &s.key)?, before, "state changed");

    // The JSON envelope `{"tx": ...}` carries any transaction (amounts are
    // decimal strings): a wrong shape gets the same 422 as in binary form.
    let input = Tensors::from_json_str(wrong_shape)?;
    let (model, mode) = (iris.model_id, Mode::Vanilla);
    let tx = s.tx(TxBody::Infer(InferenceRequest {
        model,
        input,
        mode,
        max_fee: price,
    }))?;
    let body = serde_json::to_vec(&json!({ "tx": tx }))?;
    let r = api.post("/v1/infer", "application/json", body)?;
    expect_err(r, 422, "invalid_input", &["`X`", "shape"]);
    let back = serde_json::from_value::<SignedTx>(serde_json::to_value(&tx)?);
    assert_eq!(back.ok(), Some(tx), "SignedTx must round-trip JSON");
    // The node still takes good work after all that.
    let (st, v) = s.infer(&iris, IRIS, price)?;
    assert_eq!(st, 202, "{v}");
    Ok(())
}

#[test]
fn bad_signatures_chains_funds_models_and_replays_are_rejected() -> Result<()> {
    let c = Cluster::start(bin(), 1)?;
    let api = &c.apis[0];
    let s = Signer::new(api, c.dev_account()?)?;
    let iris = model(api, "sk_iris_logreg")?;
    let before = snapshot(api, &s.key)?;
    let to = PrivateKey::random().address();
    let transfer = |amount| TxBody::Transfer { to, amount };

    // A flipped signature byte, and a signature by someone else than `from`.
    let mut bytes = s.tx(transfer(1))?.encode();
    let n = bytes.len();
    bytes[n - 40] ^= 0x01;
    let r = api.post("/v1/txs", OCTET, bytes)?;
    expect_err(r, 401, "bad_signature", &["signature"]);
    let mut tx = s.tx(transfer(1))?;
    tx.signature = tx.tx.clone().sign(&PrivateKey::random()).signature;
    let r = api.post("/v1/txs", OCTET, tx.encode())?;
    expect_err(r, 401, "bad_signature", &["signed by"]);

    // Another network's transaction.
    let mut tx = s.tx(transfer(1))?.tx;
    tx.chain_id += 1;
    let r = api.post("/v1/txs", OCTET, tx.sign(&s.key).encode())?;
    let wrong = format!("chain id {}", s.chain_id + 1);
    expect_err(r, 400, "wrong_chain", &[&wrong]);

    // Unfunded: a fresh key, and a max_fee or amount above the whole balance.
    let pauper = Signer::new(api, PrivateKey::random())?;
    let poor_before = snapshot(api, &pauper.key)?;
    let r = pauper.post("/v1/txs", transfer(1))?;
    expect_err(r, 402, "insufficient_balance", &["balance", "have 0"]);
    let r = pauper.infer(&iris, IRIS, iris.price)?;
    expect_err(r, 402, "insufficient_balance", &["have 0"]);
    assert_eq!(snapshot(api, &pauper.key)?, poor_before);
    let balance: u128 = before[2].as_str().context("balance")?.parse()?;
    let have = format!("have {balance}");
    let r = s.infer(&iris, IRIS, balance + 1)?;
    expect_err(r, 402, "insufficient_balance", &[&have]);
    let r = s.post("/v1/txs", transfer(balance))?;
    expect_err(r, 402, "insufficient_balance", &[&have]);

    // Unusable models.
    let engine = TractEngine::new(Limits::default());
    let r = s.publish("not_onnx", b"this is not an ONNX file".to_vec())?;
    expect_err(r, 422, "invalid_model", &["not an ONNX model"]);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/models");
    let real = std::fs::read(format!("{dir}/sk_iris_logreg.onnx"))?;
    let half = real[..real.len() / 2].to_vec();
    assert!(engine.inspect(&half).is_err(), "half a model loads");
    let r = s.publish("half_iris", half)?;
    expect_err(r, 422, "invalid_model", &["not an ONNX model"]);
    let odd = no_such_op_onnx();
    // Precondition: the hand-built file parses; only its operator is wrong.
    let e = engine.inspect(&odd);
    assert!(matches!(&e, Err(EngineError::UnsupportedOp { op, .. }) if op == "ai.onnx:NoSuchOp"));
    let r = s.publish("no_such_op", odd)?;
    expect_err(r, 422, "unsupported_op", &["`ai.onnx:NoSuchOp`"]);
    let r = s.publish("huge", vec![0; (16 << 20) + 1])?;
    expect_err(r, 413, "too_large", &["the limit is 16777216"]);
    let r = s.publish("bad name!", real.clone())?;
    expect_err(r, 422, "invalid_model", &["`bad name!`"]);
    // A new copy of a real model (a doc_string appended, so a new id) whose
    // manifest declares other inputs than its graph has.
    let r = s.publish("iris_copy", [real, vec![0x32, 1, b'x']].concat())?;
    expect_err(r, 422, "invalid_model", &["differ from the ONNX graph"]);

    assert_eq!(snapshot(api, &s.key)?, before, "state changed");

    // Replay: the same bytes again, while pending and once final.
    let tx = s.tx(transfer(5))?;
    let (st, v) = api.post("/v1/txs", OCTET, tx.encode())?;
    assert_eq!(st, 202, "{v}");
    let dup = api.post("/v1/txs", OCTET, tx.encode())?;
    if dup.1["error"]["code"] != json!("nonce_reused") {
        expect_err(dup, 409, "duplicate", &["already pending"]);
    }
    let path = format!("/v1/txs/{:#x}", tx.id());
    wait_until("final", || Ok(api.ok(&path)?["final"] == json!(true)))?;
    assert_eq!(api.ok(&path)?["status"], json!("applied"));
    wait_until(
        "pruned",
        || Ok(api.ok("/v1/status")?["mempool"] == json!(0)),
    )?;
    let after = snapshot(api, &s.key)?;
    let r = api.post("/v1/txs", OCTET, tx.encode())?;
    let used = format!("nonce {} already used", tx.tx.nonce);
    expect_err(r, 409, "nonce_reused", &[&used]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(snapshot(api, &s.key)?, after, "the replay changed state");
    let paid = api.ok(&format!("/v1/accounts/{to}"))?["balance"].clone();
    assert_eq!(paid, json!("5"), "paid twice?");
    Ok(())
}

#[test]
fn cli_exit_codes_name_the_problem() -> Result<()> {
    let c = Cluster::start(bin(), 1)?;
    let api = &c.apis[0];
    let key = c.dev_account()?;
    let before = snapshot(api, &key)?;
    let iris = "sk_iris_logreg";

    cli_fails(
        &c,
        &["infer", "nope", "--input", IRIS],
        4,
        "unknown model `nope`",
    );
    let (code, out, _) = c.cli(&["--json", "infer", "nope", "--input", IRIS])?;
    assert_eq!(code, 4);
    let v: Value = serde_json::from_str(&out)?;
    assert_eq!(v["error"]["code"], json!("rejected"), "{v}");
    cli_fails(
        &c,
        &["infer", iris, "--input", "{bad json"],
        1,
        "not valid JSON",
    );
    let wrong = r#"{"X":{"shape":[1,3],"dtype":"float32","data":[1,2,3]}}"#;
    cli_fails(
        &c,
        &["infer", iris, "--input", wrong],
        4,
        "input `X` has shape",
    );
    cli_fails(&c, &["receipt", "show", "0x1234"], 1, "receipt id");
    let dead = "http://127.0.0.1:1";
    cli_fails(&c, &["--node", dead, "status"], 3, "no node answers at");
    cli_fails(
        &c,
        &["--node", dead, "infer", iris, "--input", IRIS],
        3,
        dead,
    );
    assert_eq!(snapshot(api, &key)?, before, "state changed");

    // A real receipt, then a tampered copy of it.
    let (code, out, err) = c.cli(&["infer", iris, "--input", IRIS, "--json"])?;
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out)?;
    let id = v["receipt_id"].as_str().context("receipt_id")?;
    let (code, bundle, err) = c.cli(&["receipt", "show", id, "--json"])?;
    assert_eq!(code, 0, "{err}");
    let mut bundle: Value = serde_json::from_str(&bundle)?;
    let net = c.dir.path().join("network.json");
    let net = net.to_str().context("path")?;
    let file = c.dir.path().join("receipt.json");
    let file = file.to_str().context("path")?;
    std::fs::write(file, bundle.to_string())?;
    let (code, out, err) = c.cli(&["verify", file, "--network", net])?;
    assert_eq!(code, 0, "the untouched receipt must verify: {out}{err}");

    let fee: u128 = bundle["receipt"]["fee"].as_str().context("fee")?.parse()?;
    bundle["receipt"]["fee"] = json!((fee + 1).to_string());
    std::fs::write(file, bundle.to_string())?;
    cli_fails(
        &c,
        &["verify", file, "--network", net],
        5,
        "receipt id mismatch",
    );
    let (code, out, _) = c.cli(&["--json", "verify", file, "--network", net])?;
    assert_eq!(code, 5);
    let v: Value = serde_json::from_str(&out)?;
    assert_eq!(v["error"]["code"], json!("verification_failed"), "{v}");
    std::fs::write(file, "{\"version\": 1")?;
    cli_fails(
        &c,
        &["verify", file, "--network", net],
        5,
        "malformed receipt file",
    );
    Ok(())
}
