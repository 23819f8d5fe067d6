//! Transactions. Every transaction names its sender, chain and nonce and is
//! signed with the sender's secp256k1 key over a domain-separated keccak-256
//! digest of its canonical encoding.

use crate::{
    codec::Canonical,
    keys::{domain_digest, PrivateKey, Signature},
    Address, Amount, Error, InferenceFailure, ModelId, ModelManifest, Tensors, B256,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// How an inference result is checked (DESIGN §3).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Vanilla,
    Exact,
    Quorum,
    Zk,
    Tee,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Vanilla => "vanilla",
            Mode::Exact => "exact",
            Mode::Quorum => "quorum",
            Mode::Zk => "zk",
            Mode::Tee => "tee",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Mode::Vanilla,
            Mode::Exact,
            Mode::Quorum,
            Mode::Zk,
            Mode::Tee,
        ]
        .into_iter()
        .find(|m| m.name() == s.to_ascii_lowercase())
        .ok_or_else(|| format!("unknown mode `{s}` (vanilla, exact, quorum, zk, tee)"))
    }
}

/// A client's request to run a model.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct InferenceRequest {
    pub model: ModelId,
    pub input: Tensors,
    pub mode: Mode,
    /// The most the client pays the executor; the rest is refunded.
    #[serde(with = "crate::codec::amount_serde")]
    pub max_fee: Amount,
}

/// Evidence that a result is right, per mode.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// `vanilla` and `exact`: the executor's signature over [`result_digest`].
    ExecutorSignature {
        executor: Address,
        signature: Signature,
    },
    /// `zk`, in a result transaction: the signature and the proof file
    /// (`verity-prover`'s `ProofFile`: model commitment, input, output, proof).
    ZkProof {
        executor: Address,
        signature: Signature,
        #[serde(with = "crate::merkle::hex_bytes")]
        proof: Vec<u8>,
    },
    /// `zk`, in a receipt: the signature, the digest of the model commitment
    /// the proof was checked against, and the SHA-256 of the proof file.
    ZkReceipt {
        executor: Address,
        signature: Signature,
        commitment: B256,
        proof_hash: B256,
    },
}

impl Evidence {
    /// The executor and its signature over [`result_digest`].
    pub fn signer(&self) -> (&Address, &Signature) {
        match self {
            Evidence::ExecutorSignature {
                executor,
                signature,
            }
            | Evidence::ZkProof {
                executor,
                signature,
                ..
            }
            | Evidence::ZkReceipt {
                executor,
                signature,
                ..
            } => (executor, signature),
        }
    }
}

/// The digest an executor signs: (request id, output hash).
pub fn result_digest(request_id: &B256, output_hash: &B256) -> B256 {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(request_id.as_slice());
    b.extend_from_slice(output_hash.as_slice());
    domain_digest("result", &b)
}

/// An executor's answer to a request.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct InferenceResult {
    pub request_id: B256,
    pub output: Tensors,
    pub evidence: Evidence,
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
/// JSON: externally tagged (`{"infer": {...}}`), which, unlike internal
/// tags, keeps tensor numbers intact through serde's buffering.
#[serde(rename_all = "snake_case")]
pub enum TxBody {
    Transfer {
        to: Address,
        amount: Amount,
    },
    /// Publishes a model; the ONNX bytes travel with the transaction so that
    /// every node's Hub stores them when the block is final.
    Publish {
        manifest: ModelManifest,
        #[serde(with = "crate::merkle::hex_bytes")]
        onnx: Vec<u8>,
    },
    Infer(InferenceRequest),
    Result(InferenceResult),
    /// An assigned executor reports that it could not run the request
    /// (added last, so the encodings of the variants above are unchanged).
    Failure(InferenceFailure),
}

impl TxBody {
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::Transfer { .. } => "transfer",
            TxBody::Publish { .. } => "publish",
            TxBody::Infer(_) => "infer",
            TxBody::Result(_) => "result",
            TxBody::Failure(_) => "failure",
        }
    }
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Tx {
    pub chain_id: u64,
    pub from: Address,
    pub nonce: u64,
    pub body: TxBody,
}

impl Canonical for Tx {
    const WHAT: &'static str = "transaction";
}

impl Tx {
    /// The digest signed by `from`; also the transaction id (and, for
    /// `Infer`, the request id).
    pub fn id(&self) -> B256 {
        domain_digest("tx", &self.encode())
    }

    pub fn sign(self, key: &PrivateKey) -> SignedTx {
        let signature = key.sign(&self.id());
        SignedTx {
            tx: self,
            signature,
        }
    }
}

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTx {
    pub tx: Tx,
    pub signature: Signature,
}

impl Canonical for SignedTx {
    const WHAT: &'static str = "signed transaction";
}

impl SignedTx {
    pub fn id(&self) -> B256 {
        self.tx.id()
    }

    /// Checks that the signature recovers to `tx.from`.
    pub fn verify_signature(&self) -> Result<(), Error> {
        let signer = self.signature.recover(&self.id())?;
        if signer != self.tx.from {
            return Err(Error::Signature(format!(
                "signed by {signer}, but the transaction is from {}",
                self.tx.from
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Tensor, TensorData};

    fn sample(key: &PrivateKey) -> Tx {
        let mut input = Tensors::default();
        input.0.insert(
            "X".into(),
            Tensor::new("X", vec![1, 2], TensorData::F32(vec![1.0, 2.0])).unwrap(),
        );
        Tx {
            chain_id: 7,
            from: key.address(),
            nonce: 3,
            body: TxBody::Infer(InferenceRequest {
                model: ModelId::of_bytes(b"m"),
                input,
                mode: Mode::Vanilla,
                max_fee: 1000,
            }),
        }
    }

    #[test]
    fn signed_tx_round_trip_and_tamper() {
        let key = PrivateKey::from_dev_seed("alice");
        let stx = sample(&key).sign(&key);
        stx.verify_signature().unwrap();
        let back = SignedTx::decode(&stx.encode()).unwrap();
        assert_eq!(back, stx);
        let mut bad = stx.clone();
        bad.tx.nonce = 4;
        assert!(bad.verify_signature().is_err());
        let mut bad = stx.clone();
        bad.tx.chain_id = 8;
        assert!(bad.verify_signature().is_err());
    }

    #[test]
    fn json_round_trip() {
        let key = PrivateKey::from_dev_seed("alice");
        let stx = sample(&key).sign(&key);
        let text = serde_json::to_string(&stx).unwrap();
        assert!(text.contains(r#""max_fee":"1000""#), "{text}");
        assert_eq!(serde_json::from_str::<SignedTx>(&text).unwrap(), stx);
        let t = Tx {
            chain_id: 1,
            from: key.address(),
            nonce: 0,
            body: TxBody::Transfer {
                to: Address::ZERO,
                amount: u128::MAX,
            },
        }
        .sign(&key);
        assert_eq!(
            serde_json::from_str::<SignedTx>(&serde_json::to_string(&t).unwrap()).unwrap(),
            t
        );
    }

    #[test]
    fn encoding_vector() {
        let key = PrivateKey::from_dev_seed("alice");
        let tx = sample(&key);
        // Pins the canonical encoding of transactions (version 1).
        assert_eq!(
            format!("{:#x}", tx.id()),
            "0xac586aacaddd6e880bb0a9b94123120330392a34543c5b8eb354267994f6d9a0"
        );
    }

    #[test]
    fn failure_encoding_vector() {
        let key = PrivateKey::from_dev_seed("exec");
        let tx = Tx {
            chain_id: 7,
            from: key.address(),
            nonce: 3,
            body: TxBody::Failure(InferenceFailure::signed(
                &key,
                B256::repeat_byte(1),
                "execution exceeded the time limit of 30 s",
            )),
        };
        // Pins the canonical encoding of a failure transaction (version 1,
        // `TxBody` variant 4).
        assert_eq!(tx.encode()[1 + 8 + 20 + 8], 4);
        assert_eq!(
            format!("{:#x}", tx.id()),
            "0xecef706fbc3a130e361c80507b90b525e0dc706b72de65a7f8c34e6cd7c059a2"
        );
        let stx = tx.sign(&key);
        assert_eq!(SignedTx::decode(&stx.encode()).unwrap(), stx);
        let text = serde_json::to_string(&stx).unwrap();
        assert!(text.contains(r#""failure":{"request_id""#), "{text}");
        assert_eq!(serde_json::from_str::<SignedTx>(&text).unwrap(), stx);
    }

    #[test]
    fn rejects_wrong_version_and_trailing_bytes() {
        let key = PrivateKey::from_dev_seed("alice");
        let mut enc = sample(&key).sign(&key).encode();
        enc.push(0);
        assert!(SignedTx::decode(&enc).is_err());
        enc.pop();
        enc[0] = 2;
        assert!(matches!(
            SignedTx::decode(&enc),
            Err(Error::Version { found: 2, .. })
        ));
    }
}
