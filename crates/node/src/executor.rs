//! The executor loop: runs the requests the ledger assigned to this node's
//! executor key and submits signed results, or signed failure reports.
//!
//! - Requests run concurrently, at most [`ExecutorConfig::workers`] at a
//!   time, each on a blocking thread, so one slow model does not hold up
//!   the executor's other requests; a request already running is not
//!   started again.
//! - Every run has [`ExecutorConfig::time_limit`] (the engine limits'
//!   `max_exec_time`): the float and exact engines stop themselves at it,
//!   and anything still running past it (a zk proof) is abandoned and
//!   reported as failed. An abandoned run keeps its worker slot until it
//!   ends, so abandoned work never exceeds the worker count.
//! - An engine error (the model refuses the input, a limit is exceeded,
//!   the prover refuses) is posted as a signed failure report with the
//!   engine's message, so the client learns the cause at once and gets its
//!   escrow back. A local fault (this node cannot read the request's input
//!   or the model file) is only logged: the request is then reassigned to
//!   another executor by the ledger.
//! - Results and reports are signed and submitted by the loop itself, one
//!   at a time, so that their nonces never collide; one the pool refuses is
//!   retried at the next block while the request is still assigned here.

use crate::state::NodeState;
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};
use tokio::sync::{mpsc, Semaphore};
use tracing::{info, warn};
use verity_ledger::RequestRecord;
use verity_primitives::{
    tx::result_digest, Evidence, InferenceFailure, InferenceResult, Mode, PrivateKey, Tensors, Tx,
    TxBody, B256,
};

/// How the executor runs requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// Requests run at the same time, at most.
    pub workers: usize,
    /// The time one request may take, in any mode.
    pub time_limit: Duration,
}

impl ExecutorConfig {
    /// The node's engine time limit, and one worker per core (at least 2).
    pub fn for_node(state: &NodeState) -> Self {
        Self {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
            time_limit: state.exact.limits().max_exec_time,
        }
    }
}

/// Why a run produced no output.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RunError {
    /// The engine or prover refused or failed: reported, signed.
    #[error("{0}")]
    Engine(String),
    /// This node could not run it (storage): not reported; the ledger
    /// reassigns the request.
    #[error("local fault: {0}")]
    Local(String),
}

/// What a run came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The output, and the proof file in zk mode.
    Output {
        output: Tensors,
        proof: Option<Vec<u8>>,
    },
    /// Reported as a signed failure with this message.
    Failed(String),
    /// Nothing to post.
    Local(String),
}

/// Runs `job` on a blocking thread once a worker slot is free, for at most
/// `limit` from when it starts. The slot is held by the job itself, so a job
/// abandoned at its limit keeps it until it really ends.
pub async fn run_limited<F>(workers: Arc<Semaphore>, limit: Duration, job: F) -> Outcome
where
    F: FnOnce() -> Result<(Tensors, Option<Vec<u8>>), RunError> + Send + 'static,
{
    let Ok(permit) = workers.acquire_owned().await else {
        return Outcome::Local("the executor is shutting down".into());
    };
    let handle = tokio::task::spawn_blocking(move || {
        let _slot = permit;
        job()
    });
    match tokio::time::timeout(limit, handle).await {
        Err(_) => Outcome::Failed(format!(
            "execution exceeded the time limit of {} s",
            limit.as_secs_f64()
        )),
        Ok(Err(e)) if e.is_panic() => Outcome::Failed("the engine panicked on this request".into()),
        Ok(Err(e)) => Outcome::Local(format!("execution task: {e}")),
        Ok(Ok(Err(RunError::Engine(e)))) => Outcome::Failed(e),
        Ok(Ok(Err(RunError::Local(e)))) => Outcome::Local(e),
        Ok(Ok(Ok((output, proof)))) => Outcome::Output { output, proof },
    }
}

/// Runs one request with the engine its mode needs.
fn execute(
    s: &NodeState,
    id: &B256,
    rec: &RequestRecord,
) -> Result<(Tensors, Option<Vec<u8>>), RunError> {
    let local = |e: &dyn std::fmt::Display| RunError::Local(e.to_string());
    let input = s
        .ledger
        .input(id)
        .map_err(|e| local(&e))?
        .ok_or_else(|| RunError::Local("request input missing".into()))?;
    if rec.mode == Mode::Zk {
        if !s.hub.contains(&rec.model) {
            return Err(RunError::Local(format!(
                "model {} is not in the hub",
                rec.model
            )));
        }
        let (out, proof) = s.zk.prove(&rec.model, &input).map_err(RunError::Engine)?;
        return Ok((out, Some(proof)));
    }
    let onnx = s.hub.get(&rec.model).map_err(|e| local(&e))?;
    let engine: &dyn verity_engine::Engine = match rec.mode {
        Mode::Exact => s.exact.as_ref(),
        _ => s.engine.as_ref(),
    };
    engine
        .run(rec.model.digest(), &onnx, &input)
        .map(|o| (o, None))
        .map_err(|e| RunError::Engine(e.to_string()))
}

/// The transaction body that posts `outcome` for request `id`, if any.
fn body(key: &PrivateKey, id: B256, outcome: &Outcome) -> Option<TxBody> {
    let me = key.address();
    match outcome {
        Outcome::Output { output, proof } => {
            let signature = key.sign(&result_digest(&id, &output.hash()));
            let evidence = match proof {
                Some(proof) => Evidence::ZkProof {
                    executor: me,
                    signature,
                    proof: proof.clone(),
                },
                None => Evidence::ExecutorSignature {
                    executor: me,
                    signature,
                },
            };
            Some(TxBody::Result(InferenceResult {
                request_id: id,
                output: output.clone(),
                evidence,
            }))
        }
        Outcome::Failed(e) => Some(TxBody::Failure(InferenceFailure::signed(key, id, e))),
        Outcome::Local(_) => None,
    }
}

/// Runs until the node's `executed` channel closes.
pub async fn run(state: Arc<NodeState>, key: PrivateKey) {
    let cfg = ExecutorConfig::for_node(&state);
    run_with(state, key, cfg).await
}

/// [`run`] with an explicit configuration.
pub async fn run_with(state: Arc<NodeState>, key: PrivateKey, cfg: ExecutorConfig) {
    let me = key.address();
    let mut blocks = state.executed.subscribe();
    let workers = Arc::new(Semaphore::new(cfg.workers.max(1)));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(B256, Outcome)>();
    let mut running: HashSet<B256> = HashSet::new();
    // Finished runs: `Some` while waiting to be submitted, `None` once
    // submitted (or nothing to submit).
    let mut finished: HashMap<B256, Option<TxBody>> = HashMap::new();
    loop {
        let assigned = match state.ledger.assigned_to(&me) {
            Ok(a) => a,
            Err(e) => {
                warn!(%e, "executor cannot read assignments");
                Vec::new()
            }
        };
        finished.retain(|id, _| assigned.iter().any(|(a, _)| a == id));
        for (id, pending) in finished.iter_mut() {
            let Some(body) = pending.clone() else {
                continue;
            };
            let tx = Tx {
                chain_id: state.ledger.chain_id(),
                from: me,
                nonce: state.next_nonce(&me),
                body,
            }
            .sign(&key);
            let kind = tx.tx.body.kind();
            match state.submit(tx) {
                Ok(tx_id) => {
                    info!(request = %id, tx = %tx_id, kind, "submitted");
                    *pending = None;
                }
                Err(e) => warn!(request = %id, %e, kind, "not admitted; will retry"),
            }
        }
        for (id, rec) in assigned {
            if running.contains(&id) || finished.contains_key(&id) {
                continue;
            }
            running.insert(id);
            let (s, done, workers) = (state.clone(), done_tx.clone(), workers.clone());
            tokio::spawn(async move {
                let outcome =
                    run_limited(workers, cfg.time_limit, move || execute(&s, &id, &rec)).await;
                let _ = done.send((id, outcome));
            });
        }
        tokio::select! {
            changed = blocks.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            Some((id, outcome)) = done_rx.recv() => {
                running.remove(&id);
                match &outcome {
                    Outcome::Output { .. } => {
                        state.metrics.inferences_executed.inc();
                    }
                    Outcome::Failed(e) => {
                        warn!(request = %id, %e, "inference failed; reporting it");
                        state.metrics.inferences_failed.inc();
                    }
                    Outcome::Local(e) => {
                        warn!(request = %id, %e, "cannot run this request here; it will be reassigned");
                    }
                }
                finished.insert(id, body(&key, id, &outcome));
            }
        }
    }
}

#[cfg(test)]
#[path = "executor_tests.rs"]
mod tests;
