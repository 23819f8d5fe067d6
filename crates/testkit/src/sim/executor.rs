//! Executors in the simulation: each follows its validator's ledger, runs
//! what it is assigned with the real engines and prover, and submits signed
//! results through its validator's admission. A lying one posts a
//! [`ZkLie`] instead of its honest zk result.

use crate::faulty::{zk_lie, ZkLie};
use commonware_runtime::{Clock, Spawner};
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};
use verity_node::state::NodeState;
use verity_primitives::{
    tx::result_digest, Evidence, InferenceResult, Mode, PrivateKey, Tx, TxBody, B256,
};

/// How an executor behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// Posts this lie for every zk request it is assigned.
    Lying(ZkLie),
}

/// Result transactions an executor submitted (to check what became of them).
pub type Submitted = Arc<Mutex<Vec<B256>>>;

/// Runs `key`'s executor on `state` until the task is aborted.
pub async fn run(
    context: impl Clock + Spawner,
    state: Arc<NodeState>,
    key: PrivateKey,
    behaviour: Behaviour,
    submitted: Submitted,
) {
    let me = key.address();
    let mut done: HashSet<B256> = HashSet::new();
    loop {
        context.sleep(Duration::from_millis(200)).await;
        let Ok(assigned) = state.ledger.assigned_to(&me) else {
            continue;
        };
        for (id, rec) in assigned {
            if !done.insert(id) {
                continue;
            }
            let Ok(Some(input)) = state.ledger.input(&id) else {
                continue;
            };
            let (output, evidence_proof) = match rec.mode {
                Mode::Zk => match state.zk.prove(&rec.model, &input) {
                    Ok((output, proof)) => match behaviour {
                        Behaviour::Honest => (output, Some(proof)),
                        Behaviour::Lying(lie) => {
                            let (o, p) = zk_lie(lie, &output, &proof);
                            (o, Some(p))
                        }
                    },
                    Err(_) => continue,
                },
                _ => {
                    let Ok(onnx) = state.hub.get(&rec.model) else {
                        continue;
                    };
                    let engine: &dyn verity_engine::Engine = match rec.mode {
                        Mode::Exact => state.exact.as_ref(),
                        _ => state.engine.as_ref(),
                    };
                    match engine.run(rec.model.digest(), &onnx, &input) {
                        Ok(o) => (o, None),
                        Err(_) => continue,
                    }
                }
            };
            let signature = key.sign(&result_digest(&id, &output.hash()));
            let evidence = match evidence_proof {
                Some(proof) => Evidence::ZkProof {
                    executor: me,
                    signature,
                    proof,
                },
                None => Evidence::ExecutorSignature {
                    executor: me,
                    signature,
                },
            };
            let tx = Tx {
                chain_id: state.ledger.chain_id(),
                from: me,
                nonce: state.next_nonce(&me),
                body: TxBody::Result(InferenceResult {
                    request_id: id,
                    output,
                    evidence,
                }),
            }
            .sign(&key);
            if let Ok(tx_id) = state.submit(tx) {
                submitted.lock().expect("lock").push(tx_id);
            }
        }
    }
}
