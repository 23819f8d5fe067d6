//! The test world shared by the ledger's integration tests: a real redb
//! ledger, a funded client, one executor (or more), a published model, and
//! blocks applied by hand.
#![allow(dead_code)]

use verity_ledger::{Genesis, Ledger, Params};
use verity_primitives::{
    tx::result_digest, BlockSeed, DType, Dim, Evidence, InferenceFailure, InferenceRequest,
    InferenceResult, Mode, ModelId, ModelManifest, PrivateKey, SignedTx, Tensor, TensorData,
    TensorSpec, Tensors, Tx, TxBody, B256,
};

pub const CHAIN: u64 = 42;

pub struct World {
    pub _dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub genesis: Genesis,
    pub alice: PrivateKey,
    /// The first executor (the only one unless built by `with_executors`).
    pub exec: PrivateKey,
    /// Every executor, in genesis order.
    pub execs: Vec<PrivateKey>,
    pub model: ModelManifest,
    pub height: u64,
}

pub fn manifest(publisher: &PrivateKey, bytes: &[u8], name: &str) -> ModelManifest {
    let spec = |n: &str, dims: Vec<Dim>| TensorSpec {
        name: n.into(),
        dtype: DType::Float32,
        shape: dims,
    };
    ModelManifest {
        model_id: ModelId::of_bytes(bytes),
        name: name.into(),
        version: "1".into(),
        description: String::new(),
        size: bytes.len() as u64,
        inputs: vec![spec("X", vec![Dim::Symbolic("N".into()), Dim::Fixed(2)])],
        outputs: vec![spec("Y", vec![Dim::Symbolic("N".into())])],
        ops: vec![],
        publisher: publisher.address(),
        price: 100,
    }
}

impl World {
    pub fn new() -> Self {
        Self::with_executors(1)
    }

    /// A world with `n` executors (the first is `exec`).
    pub fn with_executors(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let alice = PrivateKey::from_dev_seed("alice");
        let execs: Vec<PrivateKey> = (0..n)
            .map(|i| match i {
                0 => PrivateKey::from_dev_seed("exec"),
                i => PrivateKey::from_dev_seed(&format!("exec-{i}")),
            })
            .collect();
        let exec = execs[0].clone();
        let model = manifest(&alice, b"model-bytes", "m");
        let genesis = Genesis {
            chain_id: CHAIN,
            params: Params {
                request_timeout: 3,
                ..Params::default()
            },
            accounts: vec![(alice.address(), 10_000)],
            executors: execs.iter().map(|k| k.address()).collect(),
            models: vec![model.clone()],
        };
        Self {
            _dir: dir,
            path,
            genesis,
            alice,
            exec,
            execs,
            model,
            height: 0,
        }
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::open(&self.path, self.genesis.clone()).unwrap()
    }

    pub fn block(&mut self, l: &Ledger, txs: &[SignedTx]) -> verity_ledger::BlockOutcome {
        self.height += 1;
        l.apply_block(self.height, Some(&seed(self.height)), txs)
            .unwrap()
    }

    pub fn tx(&self, key: &PrivateKey, nonce: u64, body: TxBody) -> SignedTx {
        Tx {
            chain_id: CHAIN,
            from: key.address(),
            nonce,
            body,
        }
        .sign(key)
    }

    pub fn input(v: [f32; 2]) -> Tensors {
        let mut t = Tensors::default();
        t.0.insert(
            "X".into(),
            Tensor::new("X", vec![1, 2], TensorData::F32(v.to_vec())).unwrap(),
        );
        t
    }

    pub fn infer(&self, nonce: u64, max_fee: u128) -> SignedTx {
        self.tx(
            &self.alice,
            nonce,
            TxBody::Infer(InferenceRequest {
                model: self.model.model_id,
                input: Self::input([1.0, 2.0]),
                mode: Mode::Vanilla,
                max_fee,
            }),
        )
    }

    pub fn result(&self, nonce: u64, request_id: B256, y: f32) -> SignedTx {
        self.result_from(&self.exec, nonce, request_id, y)
    }

    /// A result signed by `key`.
    pub fn result_from(&self, key: &PrivateKey, nonce: u64, request_id: B256, y: f32) -> SignedTx {
        let mut output = Tensors::default();
        output.0.insert(
            "Y".into(),
            Tensor::new("Y", vec![1], TensorData::F32(vec![y])).unwrap(),
        );
        let signature = key.sign(&result_digest(&request_id, &output.hash()));
        self.tx(
            key,
            nonce,
            TxBody::Result(InferenceResult {
                request_id,
                output,
                evidence: Evidence::ExecutorSignature {
                    executor: key.address(),
                    signature,
                },
            }),
        )
    }

    /// A failure report for `request_id` signed by `key`.
    pub fn failure(&self, key: &PrivateKey, nonce: u64, request_id: B256, error: &str) -> SignedTx {
        self.tx(
            key,
            nonce,
            TxBody::Failure(InferenceFailure::signed(key, request_id, error)),
        )
    }

    /// The executor key behind `address`.
    pub fn key_of(&self, address: &verity_primitives::Address) -> &PrivateKey {
        self.execs
            .iter()
            .find(|k| k.address() == *address)
            .expect("an executor")
    }
}

/// A stand-in block seed (the ledger takes seeds as verified by consensus).
pub fn seed(view: u64) -> BlockSeed {
    BlockSeed {
        view,
        signature: vec![view as u8; 48],
    }
}

pub fn outcome_code(l: &Ledger, tx: &SignedTx) -> Option<String> {
    l.tx_outcome(&tx.id()).unwrap().unwrap().code
}
