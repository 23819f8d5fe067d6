//! The executor loop: runs the requests the ledger assigned to this node's
//! executor key and submits signed results.

use crate::state::NodeState;
use std::{collections::HashSet, sync::Arc};
use tracing::{info, warn};
use verity_primitives::{
    tx::result_digest, Evidence, InferenceResult, Mode, PrivateKey, Tx, TxBody, B256,
};

/// Runs until the node's `executed` channel closes.
pub async fn run(state: Arc<NodeState>, key: PrivateKey) {
    let me = key.address();
    let mut rx = state.executed.subscribe();
    let mut done: HashSet<B256> = HashSet::new();
    loop {
        let assigned = match state.ledger.assigned_to(&me) {
            Ok(a) => a,
            Err(e) => {
                warn!(%e, "executor cannot read assignments");
                Vec::new()
            }
        };
        done.retain(|id| assigned.iter().any(|(a, _)| a == id));
        for (id, rec) in assigned {
            if done.contains(&id) {
                continue;
            }
            let s = state.clone();
            let output = tokio::task::spawn_blocking(move || -> Result<_, String> {
                let input = s
                    .ledger
                    .input(&id)
                    .map_err(|e| e.to_string())?
                    .ok_or("input missing")?;
                if rec.mode == Mode::Zk {
                    let (out, proof) = s.zk.prove(&rec.model, &input)?;
                    return Ok((out, Some(proof)));
                }
                let onnx = s.hub.get(&rec.model).map_err(|e| e.to_string())?;
                let engine: &dyn verity_engine::Engine = match rec.mode {
                    Mode::Exact => s.exact.as_ref(),
                    _ => s.engine.as_ref(),
                };
                engine
                    .run(rec.model.digest(), &onnx, &input)
                    .map(|o| (o, None))
                    .map_err(|e| e.to_string())
            })
            .await;
            let (output, proof) = match output {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    warn!(request = %id, %e, "inference failed; the request will expire and refund");
                    done.insert(id);
                    continue;
                }
                Err(e) => {
                    warn!(request = %id, %e, "inference task panicked");
                    done.insert(id);
                    continue;
                }
            };
            state.metrics.inferences_executed.inc();
            let signature = key.sign(&result_digest(&id, &output.hash()));
            let tx = Tx {
                chain_id: state.ledger.chain_id(),
                from: me,
                nonce: state.next_nonce(&me),
                body: TxBody::Result(InferenceResult {
                    request_id: id,
                    output,
                    evidence: match proof {
                        Some(proof) => Evidence::ZkProof {
                            executor: me,
                            signature,
                            proof,
                        },
                        None => Evidence::ExecutorSignature {
                            executor: me,
                            signature,
                        },
                    },
                }),
            }
            .sign(&key);
            match state.submit(tx) {
                Ok(tx_id) => {
                    info!(request = %id, tx = %tx_id, "submitted result");
                    done.insert(id);
                }
                Err(e) => warn!(request = %id, %e, "result not admitted; will retry"),
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
