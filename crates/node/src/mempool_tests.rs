//! Mempool attacks: a transaction that never fits, parked future nonces from
//! many keys, a full pool, executors' results crowded out.

use super::*;
use verity_primitives::{
    Evidence, InferenceResult, PrivateKey, Signature, Tensors, Tx, TxBody, B256,
};

fn transfer(k: &PrivateKey, nonce: u64) -> SignedTx {
    Tx {
        chain_id: 1,
        from: k.address(),
        nonce,
        body: TxBody::Transfer {
            to: Address::ZERO,
            amount: 1,
        },
    }
    .sign(k)
}

/// A publish-shaped transaction of about `bytes` bytes.
fn big(k: &PrivateKey, nonce: u64, bytes: usize) -> SignedTx {
    let manifest = verity_primitives::ModelManifest {
        model_id: verity_primitives::ModelId::of_bytes(b"x"),
        name: "m".into(),
        version: "1".into(),
        description: String::new(),
        size: bytes as u64,
        inputs: vec![],
        outputs: vec![],
        ops: vec![],
        publisher: k.address(),
        price: 0,
    };
    Tx {
        chain_id: 1,
        from: k.address(),
        nonce,
        body: TxBody::Publish {
            manifest,
            onnx: vec![7; bytes],
        },
    }
    .sign(k)
}

fn result(k: &PrivateKey, nonce: u64) -> SignedTx {
    Tx {
        chain_id: 1,
        from: k.address(),
        nonce,
        body: TxBody::Result(InferenceResult {
            request_id: B256::repeat_byte(nonce as u8),
            output: Tensors::default(),
            evidence: Evidence::ExecutorSignature {
                executor: k.address(),
                signature: Signature([0; 65]),
            },
        }),
    }
    .sign(k)
}

fn adm(account_nonce: u64) -> Admission {
    Admission {
        height: 0,
        account_nonce,
        balance: 1_000_000,
        cost: 10,
        priority: 0,
    }
}

fn key(i: usize) -> PrivateKey {
    PrivateKey::from_dev_seed(&format!("k{i}"))
}

#[test]
fn selects_consecutive_nonces_and_prunes() {
    let (a, b) = (key(0), key(1));
    let mut m = Mempool::new(MempoolLimits::default());
    for n in [0, 1, 3] {
        m.insert(transfer(&a, n), adm(0)).unwrap();
    }
    m.insert(transfer(&b, 5), adm(5)).unwrap();
    assert_eq!(
        m.insert(transfer(&a, 0), adm(0)),
        Err(MempoolError::Duplicate(transfer(&a, 0).id()))
    );
    assert_eq!(m.next_nonce(&a.address(), 0), 2);
    let nonce = |x: &Address| if *x == b.address() { 5 } else { 0 };
    let picked = m.select(nonce, usize::MAX);
    assert_eq!(picked.len(), 3, "a: 0,1 (3 waits for 2); b: 5");
    assert!(m.select(nonce, 10).is_empty(), "byte limit respected");
    m.prune(0, |x| if *x == a.address() { 2 } else { 6 });
    assert_eq!(m.len(), 1);
    assert_eq!(m.next_nonce(&a.address(), 2), 2);
}

#[test]
fn a_transaction_larger_than_a_block_is_refused() {
    let a = key(0);
    let mut m = Mempool::new(MempoolLimits {
        max_tx_bytes: 10_000,
        ..Default::default()
    });
    let err = m.insert(big(&a, 0, 20_000), adm(0)).unwrap_err();
    assert!(
        matches!(err, MempoolError::TooLarge { limit: 10_000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("10000"), "names the limit: {err}");
    assert!(m.is_empty());
}

#[test]
fn select_skips_what_does_not_fit_and_goes_on() {
    // One large transaction sorted first must not empty the block.
    let mut m = Mempool::new(MempoolLimits::default());
    let keys: Vec<PrivateKey> = (0..6).map(key).collect();
    for k in &keys {
        m.insert(transfer(k, 0), adm(0)).unwrap();
    }
    let whale = key(99);
    m.insert(
        big(&whale, 0, 50_000),
        Admission {
            priority: 1_000,
            ..adm(0)
        },
    )
    .unwrap();
    let picked = m.select(|_| 0, 40_000);
    assert_eq!(picked.len(), 6, "every small transaction still goes in");
    assert!(picked.iter().all(|t| t.tx.from != whale.address()));
}

#[test]
fn per_sender_caps_and_balance() {
    let a = key(0);
    let mut m = Mempool::new(MempoolLimits {
        max_per_sender: 3,
        ..Default::default()
    });
    for n in 0..3 {
        m.insert(transfer(&a, n), adm(0)).unwrap();
    }
    assert!(matches!(
        m.insert(transfer(&a, 3), adm(0)),
        Err(MempoolError::SenderLimit { max_count: 3, .. })
    ));
    // Pending costs must fit the balance together.
    let b = key(1);
    let poor = Admission {
        balance: 25,
        ..adm(0)
    };
    m.insert(transfer(&b, 0), poor).unwrap();
    m.insert(transfer(&b, 1), poor).unwrap();
    assert_eq!(
        m.insert(transfer(&b, 2), poor),
        Err(MempoolError::PendingExceedsBalance { need: 30, have: 25 })
    );
}

#[test]
fn transactions_expire() {
    let a = key(0);
    let mut m = Mempool::new(MempoolLimits {
        ttl_blocks: 10,
        ..Default::default()
    });
    m.insert(transfer(&a, 5), adm(0)).unwrap();
    m.prune(9, |_| 0);
    assert_eq!(m.len(), 1);
    m.prune(10, |_| 0);
    assert!(m.is_empty(), "expired at admission height + ttl");
}

#[test]
fn parked_spam_from_fresh_keys_cannot_fill_the_pool() {
    let mut m = Mempool::new(MempoolLimits {
        max_txs: 50,
        ..Default::default()
    });
    // 50 keys park transactions at future nonces.
    for i in 0..50 {
        m.insert(transfer(&key(i), 10), adm(0)).unwrap();
    }
    // Another parked one does not outrank them.
    assert_eq!(
        m.insert(transfer(&key(500), 10), adm(0)),
        Err(MempoolError::Full)
    );
    // Honest, ready transactions still get in, evicting parked ones.
    for i in 100..120 {
        m.insert(transfer(&key(i), 0), adm(0)).unwrap();
    }
    assert_eq!(m.len(), 50);
    let picked = m.select(|_| 0, usize::MAX);
    assert_eq!(picked.len(), 20, "all honest transactions are selectable");
    // A ready transaction only evicts by outranking: equal ready ones stay.
    let mut full = Mempool::new(MempoolLimits {
        max_txs: 2,
        ..Default::default()
    });
    full.insert(transfer(&key(1), 0), adm(0)).unwrap();
    full.insert(transfer(&key(2), 0), adm(0)).unwrap();
    assert_eq!(
        full.insert(transfer(&key(3), 0), adm(0)),
        Err(MempoolError::Full)
    );
    let rich = Admission {
        priority: 5,
        ..adm(0)
    };
    full.insert(transfer(&key(3), 0), rich).unwrap();
    assert_eq!(full.len(), 2, "evicted the lowest-paying one");
}

#[test]
fn results_have_a_reserve_and_go_first() {
    let mut m = Mempool::new(MempoolLimits {
        max_txs: 5,
        ..Default::default()
    });
    for i in 0..5 {
        m.insert(
            transfer(&key(i), 0),
            Admission {
                priority: 1_000,
                ..adm(0)
            },
        )
        .unwrap();
    }
    let executor = key(42);
    m.insert(result(&executor, 0), adm(0)).unwrap();
    let picked = m.select(|_| 0, usize::MAX);
    assert_eq!(picked.len(), 6);
    assert_eq!(picked[0].tx.from, executor.address(), "results first");
    // A block with room for one transaction takes the result.
    let size = result(&executor, 0).encode().len();
    let picked = m.select(|_| 0, size);
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0].tx.from, executor.address());
}
