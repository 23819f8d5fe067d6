//! State machine tests on a real redb file.

mod common;

use common::{manifest, outcome_code, seed, World, CHAIN};
use verity_ledger::{Ledger, RequestStatus, TxError};
use verity_primitives::{
    tx::result_digest, Evidence, InferenceRequest, InferenceResult, Mode, ModelId, PrivateKey,
    Tensor, TensorData, Tensors, Tx, TxBody, B256,
};

#[test]
fn inference_settles_with_provable_receipt_and_fees() {
    let mut w = World::new();
    let l = w.ledger();
    let req = w.infer(0, 500);
    w.block(&l, std::slice::from_ref(&req));
    let rid = req.id();
    assert_eq!(
        l.request(&rid).unwrap().unwrap().status,
        RequestStatus::Pending
    );
    assert_eq!(
        l.account(&w.alice.address()).unwrap().balance,
        10_000 - 10 - 500
    );
    // The next block carries the seed of the view that ordered the
    // request, which its proposer may know: no draw from it.
    w.block(&l, &[]);
    assert_eq!(
        l.request(&rid).unwrap().unwrap().status,
        RequestStatus::Pending
    );
    w.block(&l, &[]);
    let RequestStatus::Assigned {
        executor,
        seed: used,
        ..
    } = l.request(&rid).unwrap().unwrap().status
    else {
        panic!("assigned two blocks after ordering")
    };
    // Anyone recomputes the draw from the recorded seed.
    assert_eq!(used, seed(w.height));
    assert_eq!(
        verity_ledger::draw_executor(&[w.exec.address()], &used.randomness(), &rid),
        Some(executor)
    );
    assert_eq!(l.assigned_to(&w.exec.address()).unwrap().len(), 1);
    let res = w.result(0, rid, 3.5);
    let out = w.block(&l, &[res]);
    assert_eq!(out.receipts.len(), 1, "{out:?}");
    let RequestStatus::Settled { receipt_id } = l.request(&rid).unwrap().unwrap().status else {
        panic!()
    };
    let proof = l.receipt_proof(&receipt_id).unwrap().unwrap();
    assert_eq!(proof.proof.root(), proof.root);
    assert_eq!(l.root_at(w.height).unwrap().unwrap(), proof.root);
    assert_eq!(proof.receipt.id(), receipt_id);
    assert_eq!(proof.receipt.input_hash, World::input([1.0, 2.0]).hash());
    // Fee 100 to the executor, 400 refunded.
    assert_eq!(l.account(&w.exec.address()).unwrap().balance, 100);
    assert_eq!(
        l.account(&w.alice.address()).unwrap().balance,
        10_000 - 10 - 100
    );
    assert!(l.output(&rid).unwrap().is_some());
}

#[test]
fn exact_receipts_bind_the_compiled_model_and_other_modes_wait() {
    let mut w = World::new();
    w.genesis.params.exact_params = vec![1, 2, 3];
    let l = w.ledger();
    let exact = |nonce, mode| {
        w.tx(
            &w.alice,
            nonce,
            TxBody::Infer(InferenceRequest {
                model: w.model.model_id,
                input: World::input([1.0, 2.0]),
                mode,
                max_fee: 500,
            }),
        )
    };
    assert!(matches!(
        l.check_tx(&exact(0, Mode::Zk), 16),
        Err(TxError::UnsupportedMode(_))
    ));
    // zk mode proves one sample at a time: a batch of 2 on the symbolic dimension is refused
    let mut batch = Tensors::default();
    batch.0.insert(
        "X".into(),
        Tensor::new("X", vec![2, 2], TensorData::F32(vec![1.0, 2.0, 3.0, 4.0])).unwrap(),
    );
    let zk_batch = w.tx(
        &w.alice,
        0,
        TxBody::Infer(InferenceRequest {
            model: w.model.model_id,
            input: batch,
            mode: Mode::Zk,
            max_fee: 500,
        }),
    );
    match l.check_tx(&zk_batch, 16) {
        Err(TxError::InvalidInput(m)) => assert!(m.contains("one sample"), "{m}"),
        other => panic!("{other:?}"),
    }
    let req = exact(0, Mode::Exact);
    w.block(&l, std::slice::from_ref(&req));
    w.block(&l, &[]);
    w.block(&l, &[]);
    // Exact-mode float outputs are the exact float64 of the fixed-point value.
    let float32 = w.result(0, req.id(), 1.0);
    let out = w.block(&l, std::slice::from_ref(&float32));
    assert!(
        out.receipts.is_empty(),
        "float32 output must be refused in exact mode"
    );
    let mut output = Tensors::default();
    output.0.insert(
        "Y".into(),
        Tensor::new("Y", vec![1], TensorData::F64(vec![1.0])).unwrap(),
    );
    let signature = w.exec.sign(&result_digest(&req.id(), &output.hash()));
    // The refused result used the executor's nonce 0 (failures pay).
    let exact_result = w.tx(
        &w.exec,
        1,
        TxBody::Result(InferenceResult {
            request_id: req.id(),
            output,
            evidence: Evidence::ExecutorSignature {
                executor: w.exec.address(),
                signature,
            },
        }),
    );
    let out = w.block(&l, &[exact_result]);
    let r = l.receipt(&out.receipts[0]).unwrap().unwrap();
    assert_eq!(r.mode, Mode::Exact);
    assert_eq!(
        r.compiled_model,
        Some(verity_primitives::receipt::exact_model_id(
            &w.model.model_id,
            &[1, 2, 3]
        ))
    );
}

#[test]
fn replay_underfunded_wrong_chain_and_bad_signature_are_rejected() {
    let mut w = World::new();
    let l = w.ledger();
    let t = |n, amount| {
        w.tx(
            &w.alice,
            n,
            TxBody::Transfer {
                to: w.exec.address(),
                amount,
            },
        )
    };
    let ok = t(0, 5);
    let (fill, ahead) = (t(2, 1), t(3, 1));
    w.block(&l, std::slice::from_ref(&ok));
    assert_eq!(outcome_code(&l, &ok), None);
    let root_before = l.root_at(w.height).unwrap();
    // Replay of the same transaction.
    let replay = ok.clone();
    assert!(matches!(
        l.check_tx(&replay, 16),
        Err(TxError::NonceReused { .. })
    ));
    let poor = w.tx(
        &w.alice,
        1,
        TxBody::Transfer {
            to: w.exec.address(),
            amount: 1_000_000,
        },
    );
    assert!(matches!(
        l.check_tx(&poor, 16),
        Err(TxError::InsufficientBalance { .. })
    ));
    let mut wrong_chain = Tx {
        chain_id: 7,
        from: w.alice.address(),
        nonce: 1,
        body: TxBody::Transfer {
            to: w.exec.address(),
            amount: 1,
        },
    }
    .sign(&w.alice);
    assert!(matches!(
        l.check_tx(&wrong_chain, 16),
        Err(TxError::WrongChain { .. })
    ));
    wrong_chain.tx.chain_id = CHAIN; // now the signature no longer matches
    assert!(matches!(
        l.check_tx(&wrong_chain, 16),
        Err(TxError::BadSignature(_))
    ));
    // Included anyway (by a Byzantine proposer), the ones nobody can be
    // charged for change nothing but their outcome.
    w.block(&l, &[replay, wrong_chain.clone()]);
    assert_eq!(
        outcome_code(&l, &wrong_chain).as_deref(),
        Some("bad_signature")
    );
    assert_eq!(l.account(&w.alice.address()).unwrap().balance, 10_000 - 15);
    assert_eq!(
        l.root_at(w.height).unwrap(),
        root_before,
        "unpayable transactions must not change state"
    );
    // An authentic, in-order transaction that fails pays the fee and uses
    // its nonce: block space is never free.
    w.block(&l, std::slice::from_ref(&poor));
    assert_eq!(
        outcome_code(&l, &poor).as_deref(),
        Some("insufficient_balance")
    );
    let alice = l.account(&w.alice.address()).unwrap();
    assert_eq!(alice.balance, 10_000 - 15 - 10);
    assert_eq!(alice.nonce, 2);
    // A transaction ahead of the account nonce is skipped, not recorded:
    // it can still apply once the gap is filled.
    w.block(&l, std::slice::from_ref(&ahead));
    assert_eq!(l.tx_outcome(&ahead.id()).unwrap(), None);
    w.block(&l, &[fill, ahead.clone()]);
    assert_eq!(outcome_code(&l, &ahead), None);
    assert_eq!(l.account(&w.alice.address()).unwrap().nonce, 4);
}

#[test]
fn results_are_admitted_only_from_the_assigned_executor() {
    let mut w = World::new();
    let l = w.ledger();
    let req = w.infer(0, 500);
    // Not yet assigned: nobody's result is admitted.
    w.block(&l, std::slice::from_ref(&req));
    let early = w.result(0, req.id(), 1.0);
    match l.check_tx(&early, 16) {
        Err(TxError::InvalidResult(m)) => assert!(m.contains("not awaiting"), "{m}"),
        other => panic!("{other:?}"),
    }
    w.block(&l, &[]);
    w.block(&l, &[]);
    l.check_tx(&early, 16).unwrap();
    // A fresh key cannot post a result for it.
    let stranger = PrivateKey::from_dev_seed("stranger");
    let forged = w.tx(&stranger, 0, early.tx.body.clone());
    match l.check_tx(&forged, 16) {
        Err(TxError::InvalidResult(m)) => assert!(m.contains("assigned to"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Nor for an unknown request.
    let unknown = w.result(0, B256::repeat_byte(9), 1.0);
    assert!(matches!(
        l.check_tx(&unknown, 16),
        Err(TxError::UnknownRequest(_))
    ));
}

#[test]
fn bad_requests_and_results_are_refused() {
    let mut w = World::new();
    let l = w.ledger();
    let unknown = w.tx(
        &w.alice,
        0,
        TxBody::Infer(InferenceRequest {
            model: ModelId::of_bytes(b"nope"),
            input: World::input([0.0, 0.0]),
            mode: Mode::Vanilla,
            max_fee: 500,
        }),
    );
    assert!(matches!(
        l.check_tx(&unknown, 16),
        Err(TxError::UnknownModel(_))
    ));
    let mut bad_shape = World::input([0.0, 0.0]);
    bad_shape.0.insert(
        "X".into(),
        Tensor::new("X", vec![3], TensorData::F32(vec![0.0; 3])).unwrap(),
    );
    let bad = w.tx(
        &w.alice,
        0,
        TxBody::Infer(InferenceRequest {
            model: w.model.model_id,
            input: bad_shape,
            mode: Mode::Vanilla,
            max_fee: 500,
        }),
    );
    let e = l.check_tx(&bad, 16).unwrap_err();
    assert!(e.to_string().contains("shape [3]"), "{e}");
    let cheap = w.infer(0, 1);
    assert!(matches!(
        l.check_tx(&cheap, 16),
        Err(TxError::FeeTooLow { .. })
    ));
    // A result from someone who is not the assigned executor.
    let req = w.infer(0, 500);
    w.block(&l, std::slice::from_ref(&req));
    w.block(&l, &[]);
    w.block(&l, &[]);
    let mut forged = w.result(0, req.id(), 1.0);
    forged.tx.from = w.alice.address();
    let forged = Tx {
        nonce: 1,
        ..forged.tx
    }
    .sign(&w.alice);
    w.block(&l, std::slice::from_ref(&forged));
    assert_eq!(outcome_code(&l, &forged).as_deref(), Some("invalid_result"));
}

#[test]
fn unanswered_requests_expire_and_refund() {
    let mut w = World::new();
    let l = w.ledger();
    w.block(&l, &[w.infer(0, 500)]);
    for _ in 0..6 {
        w.block(&l, &[]);
    }
    assert_eq!(l.account(&w.alice.address()).unwrap().balance, 10_000 - 10);
}

#[test]
fn state_survives_reopen_and_rejects_gaps_and_other_genesis() {
    let mut w = World::new();
    let root = {
        let l = w.ledger();
        w.block(
            &l,
            &[w.tx(
                &w.alice,
                0,
                TxBody::Transfer {
                    to: w.exec.address(),
                    amount: 7,
                },
            )],
        );
        l.root_at(1).unwrap().unwrap()
    };
    let l = w.ledger();
    assert_eq!(l.height().unwrap(), 1);
    assert_eq!(l.root_at(1).unwrap().unwrap(), root);
    assert_eq!(l.account(&w.exec.address()).unwrap().balance, 7);
    // Re-delivery is a no-op, a gap is an error.
    assert!(l.apply_block(1, None, &[]).unwrap().already_applied);
    assert!(l.apply_block(5, None, &[]).is_err());
    drop(l);
    let mut other = w.genesis.clone();
    other.chain_id = 1;
    assert!(Ledger::open(&w.path, other).is_err());
}

#[test]
fn publish_checks_cid_and_names() {
    let mut w = World::new();
    let l = w.ledger();
    let bytes = b"other-model".to_vec();
    let m = manifest(&w.alice, &bytes, "m2");
    let mut lying = m.clone();
    lying.model_id = ModelId::of_bytes(b"x");
    let bad = w.tx(
        &w.alice,
        0,
        TxBody::Publish {
            manifest: lying,
            onnx: bytes.clone(),
        },
    );
    assert!(matches!(
        l.check_tx(&bad, 16),
        Err(TxError::InvalidModel(_))
    ));
    let taken = w.tx(
        &w.alice,
        0,
        TxBody::Publish {
            manifest: manifest(&w.alice, &bytes, "m"),
            onnx: bytes.clone(),
        },
    );
    assert!(matches!(l.check_tx(&taken, 16), Err(TxError::NameTaken(_))));
    let good = w.tx(
        &w.alice,
        0,
        TxBody::Publish {
            manifest: m.clone(),
            onnx: bytes,
        },
    );
    l.check_tx(&good, 16).unwrap();
    w.block(&l, &[good]);
    assert_eq!(l.resolve_model("m2", None).unwrap(), Some(m.model_id));
    assert_eq!(l.resolve_model("m2", Some("1")).unwrap(), Some(m.model_id));
    assert_eq!(l.models().unwrap().len(), 2);
}
