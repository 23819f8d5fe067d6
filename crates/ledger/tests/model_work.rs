//! The ledger's model work through its oracles: publishes checked against
//! what the engine reads in the bytes, bytes stored before commit, zk
//! registration once at publish, and crashes of the simulated disk.

mod common;

use common::{manifest, outcome_code, seed, World};
use verity_ledger::{Ledger, TxError};
use verity_primitives::{InferenceRequest, Mode, ModelId, PrivateKey, Tensors, TxBody, B256};

/// Records what it stores; fails while `fail` is set.
#[derive(Default)]
struct TestStore {
    stored: std::sync::Mutex<Vec<ModelId>>,
    fail: std::sync::atomic::AtomicBool,
}

impl verity_ledger::ModelOracle for TestStore {
    /// Every model "declares" the test manifest's schema; `b"not a model"`
    /// does not load.
    fn inspect(
        &self,
        bytes: &[u8],
    ) -> Result<verity_ledger::ModelShape, verity_ledger::InspectError> {
        if bytes == b"not a model" {
            return Err(verity_ledger::InspectError {
                code: "invalid_model",
                source: "not an ONNX model".into(),
            });
        }
        let m = manifest(&PrivateKey::from_dev_seed("any"), bytes, "any");
        Ok(verity_ledger::ModelShape {
            inputs: m.inputs,
            outputs: m.outputs,
            ops: m.ops,
        })
    }

    fn store(&self, id: &ModelId, _bytes: &[u8]) -> Result<(), verity_ledger::ModelStoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(verity_ledger::ModelStoreError {
                model: id.to_string(),
                source: "disk full".into(),
            });
        }
        self.stored.lock().unwrap().push(*id);
        Ok(())
    }
}

#[test]
fn model_bytes_are_stored_before_commit_and_only_for_valid_publishes() {
    let mut w = World::new();
    let store = std::sync::Arc::new(TestStore::default());
    let l = w.ledger().with_models(store.clone());
    let bytes = b"stored-model".to_vec();
    let m = manifest(&w.alice, &bytes, "m3");
    let mut lying = m.clone();
    lying.size += 1;
    let bad = w.tx(
        &w.alice,
        0,
        TxBody::Publish {
            manifest: lying,
            onnx: bytes.clone(),
        },
    );
    w.block(&l, std::slice::from_ref(&bad));
    assert_eq!(outcome_code(&l, &bad).as_deref(), Some("invalid_model"));
    assert!(
        store.stored.lock().unwrap().is_empty(),
        "a failing publish stores nothing"
    );
    let good = w.tx(
        &w.alice,
        1,
        TxBody::Publish {
            manifest: m.clone(),
            onnx: bytes,
        },
    );
    // The store fails: the block does not commit, and can be applied again.
    store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let height = w.height;
    let err = l
        .apply_block(
            height + 1,
            Some(&seed(height + 1)),
            std::slice::from_ref(&good),
        )
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(l.height().unwrap(), height, "nothing committed");
    assert_eq!(l.model(&m.model_id).unwrap(), None);
    store.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    w.block(&l, std::slice::from_ref(&good));
    assert_eq!(*store.stored.lock().unwrap(), vec![m.model_id]);
    assert!(l.model(&m.model_id).unwrap().is_some());
}

#[test]
fn a_crash_loses_nothing_committed_on_the_memory_disk() {
    let mut w = World::new();
    let disk = verity_ledger::MemoryDisk::new();
    let l = Ledger::open_on(&disk, w.genesis.clone()).unwrap();
    let req = w.infer(0, 500);
    w.block(&l, std::slice::from_ref(&req));
    let root = l.root_at(1).unwrap().unwrap();
    // A failing disk: the block is refused and nothing is committed.
    disk.set_failing(true);
    assert!(l.apply_block(2, Some(&seed(2)), &[]).is_err());
    disk.set_failing(false);
    drop(l);
    disk.crash();
    let l = Ledger::open_on(&disk, w.genesis.clone()).unwrap();
    assert_eq!(l.height().unwrap(), 1, "the committed block survived");
    assert_eq!(l.root_at(1).unwrap().unwrap(), root);
    assert!(l.request(&req.id()).unwrap().is_some());
    // And the chain goes on from there.
    l.apply_block(2, Some(&seed(2)), &[]).unwrap();
}

#[test]
fn a_lying_manifest_or_non_model_bytes_fail_in_block_execution_too() {
    // A Byzantine proposer includes publishes that admission would refuse.
    let mut w = World::new();
    let store = std::sync::Arc::new(TestStore::default());
    let l = w.ledger().with_models(store.clone());
    let bytes = b"a model".to_vec();
    let mut lying = manifest(&w.alice, &bytes, "liar");
    lying.ops = vec!["ai.onnx:Relu".into()];
    let lie = w.tx(
        &w.alice,
        0,
        TxBody::Publish {
            manifest: lying,
            onnx: bytes,
        },
    );
    match l.check_tx(&lie, 16) {
        Err(TxError::InvalidModel(m)) => assert!(m.contains("ops differ"), "{m}"),
        other => panic!("{other:?}"),
    }
    let junk = b"not a model".to_vec();
    let not_onnx = w.tx(
        &w.alice,
        1,
        TxBody::Publish {
            manifest: manifest(&w.alice, &junk, "junk"),
            onnx: junk,
        },
    );
    w.block(&l, &[lie.clone(), not_onnx.clone()]);
    assert_eq!(outcome_code(&l, &lie).as_deref(), Some("invalid_model"));
    let e = l.tx_outcome(&not_onnx.id()).unwrap().unwrap();
    assert!(e.error.unwrap().contains("not an ONNX model"));
    assert!(store.stored.lock().unwrap().is_empty(), "nothing stored");
    assert_eq!(l.models().unwrap().len(), 1, "only the genesis model");
    // Both paid the fee.
    assert_eq!(l.account(&w.alice.address()).unwrap().balance, 10_000 - 20);
}

/// Counts registrations; every model is provable with a fixed commitment.
#[derive(Default)]
struct CountingZk {
    registered: std::sync::atomic::AtomicUsize,
}

impl verity_ledger::ZkVerifier for CountingZk {
    fn register(
        &self,
        _model: &ModelId,
    ) -> Result<verity_ledger::Registration, verity_ledger::ZkError> {
        self.registered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(verity_ledger::Registration::Ready(B256::repeat_byte(0xc0)))
    }

    fn verify(
        &self,
        _commitment: &B256,
        _compiled_model: &B256,
        _input: &Tensors,
        _output: &Tensors,
        _proof: &[u8],
    ) -> Result<(), verity_ledger::ZkError> {
        Err(verity_ledger::ZkError::Rejected("not in this test".into()))
    }
}

#[test]
fn zk_registration_happens_once_at_publish() {
    let mut w = World::new();
    let zk = std::sync::Arc::new(CountingZk::default());
    let l = w
        .ledger()
        .with_models(std::sync::Arc::new(TestStore::default()))
        .with_zk(zk.clone());
    let bytes = b"zk model".to_vec();
    let m = manifest(&w.alice, &bytes, "zkm");
    let publish = w.tx(
        &w.alice,
        0,
        TxBody::Publish {
            manifest: m.clone(),
            onnx: bytes,
        },
    );
    w.block(&l, &[publish]);
    assert_eq!(zk.registered.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        l.zk_status(&m.model_id).unwrap(),
        Some(verity_ledger::ZkStatus::Ready {
            commitment: B256::repeat_byte(0xc0)
        })
    );
    // A zk request for it does no registration work, at admission or in
    // its block.
    let req = w.tx(
        &w.alice,
        1,
        TxBody::Infer(InferenceRequest {
            model: m.model_id,
            input: World::input([1.0, 2.0]),
            mode: Mode::Zk,
            max_fee: 500,
        }),
    );
    l.check_tx(&req, 16).unwrap();
    w.block(&l, &[req]);
    assert_eq!(zk.registered.load(std::sync::atomic::Ordering::SeqCst), 1);
}
