//! Settlement of zk results on a real ledger with the node's real proof verifier: the
//! lies of a deliberately wrong executor (`verity_testkit::faulty`) are refused, the
//! honest proof settles, and the receipt names its hash and the model commitment.

use std::sync::Arc;
use verity_engine::{Engine, ExactParams, Limits, TractEngine};
use verity_hub::Hub;
use verity_ledger::{Genesis, Ledger, Params, RequestStatus, ZkVerifier};
use verity_node::zk::ZkService;
use verity_primitives::{
    codec::sha256, tx::result_digest, Evidence, InferenceRequest, InferenceResult, Mode, ModelId,
    ModelManifest, PrivateKey, SignedTx, Tensors, Tx, TxBody, B256,
};
use verity_testkit::faulty::{zk_lie, ZkLie};

const CHAIN: u64 = 7;

fn tx(key: &PrivateKey, nonce: u64, body: TxBody) -> SignedTx {
    Tx {
        chain_id: CHAIN,
        from: key.address(),
        nonce,
        body,
    }
    .sign(key)
}

#[test]
fn wrong_zk_results_are_refused_and_the_honest_proof_settles() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let onnx = std::fs::read(root.join("examples/bench/bench_cnn.onnx")).unwrap();
    let hub = Hub::open(dir.path().join("hub")).unwrap();
    hub.put(&onnx).unwrap();
    let alice = PrivateKey::from_dev_seed("alice");
    let exec = PrivateKey::from_dev_seed("exec");
    let info = TractEngine::new(Limits::default()).inspect(&onnx).unwrap();
    let manifest = ModelManifest {
        model_id: ModelId::of_bytes(&onnx),
        name: "cnn".into(),
        version: "1".into(),
        description: String::new(),
        size: onnx.len() as u64,
        inputs: info.inputs,
        outputs: info.outputs,
        ops: info.ops,
        publisher: alice.address(),
        price: 100,
    };
    let params = ExactParams::default();
    let genesis = Genesis {
        chain_id: CHAIN,
        params: Params {
            exact_params: params.to_bytes(),
            ..Params::default()
        },
        accounts: vec![(alice.address(), 1_000_000)],
        executors: vec![exec.address()],
        models: vec![manifest.clone()],
    };
    let zk = Arc::new(ZkService::new(hub, params));
    let ledger = Ledger::open(&dir.path().join("l.redb"), genesis)
        .unwrap()
        .with_zk(zk.clone());
    let refs = std::fs::read_to_string(root.join("examples/bench/bench_cnn.ref0.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&refs).unwrap();
    let input = Tensors::from_json(&v["inputs"]).unwrap();
    let infer = tx(
        &alice,
        0,
        TxBody::Infer(InferenceRequest {
            model: manifest.model_id,
            input: input.clone(),
            mode: Mode::Zk,
            max_fee: 1000,
        }),
    );
    ledger.check_tx(&infer, 0).unwrap();
    let rid = infer.id();
    let mut height = 0;
    let mut block = |txs: &[SignedTx]| {
        height += 1;
        ledger
            .apply_block(
                height,
                Some(&verity_primitives::BlockSeed {
                    view: height,
                    signature: vec![height as u8; 48],
                }),
                txs,
            )
            .unwrap()
    };
    block(&[infer]);
    block(&[]);
    block(&[]);
    assert!(matches!(
        ledger.request(&rid).unwrap().unwrap().status,
        RequestStatus::Assigned { .. }
    ));
    let commitment = match zk.register(&manifest.model_id).unwrap() {
        verity_ledger::Registration::Ready(c) => c,
        verity_ledger::Registration::Refused(e) => panic!("{e}"),
    };
    let (output, proof) = zk.prove(&manifest.model_id, &input).unwrap();
    // Every refused result uses a nonce (failed transactions pay).
    let nonce = std::cell::Cell::new(0);
    let result = |output: Tensors, evidence_proof: Option<Vec<u8>>| {
        nonce.set(nonce.get() + 1);
        let signature = exec.sign(&result_digest(&rid, &output.hash()));
        let evidence = match evidence_proof {
            Some(proof) => Evidence::ZkProof {
                executor: exec.address(),
                signature,
                proof,
            },
            None => Evidence::ExecutorSignature {
                executor: exec.address(),
                signature,
            },
        };
        tx(
            &exec,
            nonce.get() - 1,
            TxBody::Result(InferenceResult {
                request_id: rid,
                output,
                evidence,
            }),
        )
    };
    let lies = [
        ZkLie::WrongOutput,
        ZkLie::WrongOutputRestated,
        ZkLie::DamagedProof,
        ZkLie::OtherInput,
    ];
    for lie in lies {
        let (o, p) = zk_lie(lie, &output, &proof);
        let t = result(o, Some(p));
        let out = block(std::slice::from_ref(&t));
        assert_eq!(out.failed, 1, "{lie:?} was accepted");
        let outcome = ledger.tx_outcome(&t.id()).unwrap().unwrap();
        assert!(
            outcome
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("zk proof rejected"),
            "{lie:?}: {outcome:?}"
        );
    }
    // no proof at all
    let t = result(output.clone(), None);
    assert_eq!(block(std::slice::from_ref(&t)).failed, 1);
    // the honest result settles
    let t = result(output.clone(), Some(proof.clone()));
    let out = block(std::slice::from_ref(&t));
    assert_eq!((out.applied, out.receipts.len()), (1, 1), "{out:?}");
    let receipt = ledger.receipt(&out.receipts[0]).unwrap().unwrap();
    match receipt.evidence {
        Evidence::ZkReceipt {
            commitment: c,
            proof_hash,
            ..
        } => {
            assert_eq!(c, commitment);
            assert_eq!(proof_hash, B256::from(sha256(&proof)));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(ledger.zk_proof(&rid).unwrap().unwrap(), proof);
}
