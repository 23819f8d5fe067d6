//! Route handlers.

use super::error::ApiError;
use crate::{audit, state::NodeState};
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, Query, State},
    http::{header::CONTENT_TYPE, HeaderMap, StatusCode},
    response::IntoResponse,
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::{str::FromStr, sync::Arc, time::Duration};
use verity_ledger::RequestStatus;
use verity_primitives::{
    codec::Canonical, ids::parse_hex32, Address, ModelId, ModelManifest, SignedTx, TxBody, B256,
};

type S = State<Arc<NodeState>>;

pub async fn status(State(s): S) -> Result<Json<Value>, ApiError> {
    let height = s.ledger.height()?;
    let finalized = s.chain.finalized_height().map_err(ApiError::internal)?;
    let claim = s
        .chain
        .header(finalized)
        .map_err(ApiError::internal)?
        .map(|h| h.claim)
        .unwrap_or_default();
    Ok(Json(json!({
        "chain_id": s.info.chain_id,
        "height": finalized,
        "executed_height": height,
        "state_root": format!("{:#x}", s.ledger.root_at(height)?.unwrap_or_default()),
        "finalized_state": {"height": claim.height, "root": format!("{:#x}", claim.root)},
        "identity": s.info.identity,
        "validators": s.info.validators,
        "validator": s.info.validator,
        "executors": s.ledger.executors()?.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "mempool": s.mempool.lock().expect("mempool lock").len(),
        "api": s.info.api,
        "halted": s.halt_reason(),
    })))
}

pub async fn metrics(State(s): S) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

pub fn resolve(s: &NodeState, key: &str) -> Result<ModelManifest, ApiError> {
    let unknown = || ApiError::not_found("unknown_model", format!("unknown model `{key}`"));
    let id = if ModelId::looks_like_cid(key) {
        ModelId::from_str(key).map_err(|e| ApiError::bad_request("bad_model_id", e.to_string()))?
    } else {
        let (name, version) = match key.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (key, None),
        };
        s.ledger.resolve_model(name, version)?.ok_or_else(unknown)?
    };
    s.ledger.model(&id)?.ok_or_else(unknown)
}

pub async fn models(State(s): S) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"models": s.ledger.models()?})))
}

pub async fn model(State(s): S, Path(key): Path<String>) -> Result<Json<ModelManifest>, ApiError> {
    Ok(Json(resolve(&s, &key)?))
}

/// A published model's ONNX bytes, from this node's Hub only (other nodes
/// refetch missing models from here; see `verity_hub::Hub::get_local`).
pub async fn model_bytes(
    State(s): S,
    Path(key): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let manifest = resolve(&s, &key)?;
    let s2 = s.clone();
    let bytes = tokio::task::spawn_blocking(move || s2.hub.get_local(&manifest.model_id))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            verity_hub::HubError::NotFound(_) | verity_hub::HubError::Corrupt { .. } => {
                ApiError::not_found("model_unavailable", e.to_string())
            }
            other => ApiError::internal(other),
        })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )
        .into_response())
}

pub async fn account(State(s): S, Path(addr): Path<String>) -> Result<Json<Value>, ApiError> {
    let a = Address::from_str(&addr).map_err(|_| {
        ApiError::bad_request(
            "bad_address",
            format!("`{addr}` is not a 0x-prefixed 20-byte address"),
        )
    })?;
    let acct = s.ledger.account(&a)?;
    Ok(Json(json!({
        "address": a.to_string(),
        "balance": acct.balance.to_string(),
        "nonce": acct.nonce,
        "next_nonce": s.next_nonce(&a),
    })))
}

/// Decodes a signed transaction: canonical bytes (octet-stream) or
/// `{"tx": ...}` JSON.
fn decode_tx(headers: &HeaderMap, body: &[u8]) -> Result<SignedTx, ApiError> {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/octet-stream") {
        return SignedTx::decode(body)
            .map_err(|e| ApiError::bad_request("malformed_tx", e.to_string()));
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Envelope {
        tx: SignedTx,
    }
    let env: Envelope = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("request body: {e}")))?;
    Ok(env.tx)
}

fn submit(s: &NodeState, tx: SignedTx) -> Result<B256, ApiError> {
    s.submit(tx).map_err(|e| {
        s.metrics.txs_rejected.inc();
        ApiError::from(e)
    })
}

type Body = Result<Bytes, BytesRejection>;

fn body_bytes(b: Body, limit: usize) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                e.status(),
                "too_large",
                format!("request body exceeds the limit of {limit} bytes"),
            )
        } else {
            ApiError::new(e.status(), "body_rejected", e.body_text())
        }
    })
}

pub async fn submit_tx(
    State(s): S,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let tx = decode_tx(&headers, &body_bytes(body, super::MAX_TX_BODY)?)?;
    let kind = tx.tx.body.kind();
    let s2 = s.clone();
    let id = tokio::task::spawn_blocking(move || submit(&s2, tx))
        .await
        .map_err(ApiError::internal)??;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"tx_id": format!("{id:#x}"), "kind": kind, "status": "pending"})),
    ))
}

pub async fn tx_status(State(s): S, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    if let Some(o) = s.ledger.tx_outcome(&id)? {
        let status = if o.error.is_some() {
            "failed"
        } else {
            "applied"
        };
        return Ok(Json(
            json!({"tx_id": format!("{id:#x}"), "status": status, "final": true,
            "height": o.height, "error": o.error.map(|m| json!({"code": o.code, "message": m}))}),
        ));
    }
    if s.mempool.lock().expect("mempool lock").contains(&id) {
        return Ok(Json(
            json!({"tx_id": format!("{id:#x}"), "status": "pending", "final": false}),
        ));
    }
    Err(ApiError::not_found(
        "unknown_tx",
        format!("transaction {id:#x} is not known to this node"),
    ))
}

fn parse_id(s: &str) -> Result<B256, ApiError> {
    parse_hex32(s).map_err(|e| ApiError::bad_request("bad_id", e.to_string()))
}

#[derive(Deserialize)]
pub struct WaitQuery {
    #[serde(default)]
    wait: bool,
    timeout_ms: Option<u64>,
}

pub async fn infer(
    State(s): S,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::response::Response, ApiError> {
    let tx = decode_tx(&headers, &body_bytes(body, super::MAX_INFER_BODY)?)?;
    if !matches!(tx.tx.body, TxBody::Infer(_)) {
        return Err(ApiError::bad_request(
            "wrong_tx_kind",
            format!("expected an infer transaction, got {}", tx.tx.body.kind()),
        ));
    }
    let s2 = s.clone();
    let id = tokio::task::spawn_blocking(move || submit(&s2, tx))
        .await
        .map_err(ApiError::internal)??;
    if !q.wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"request_id": format!("{id:#x}"), "status": "pending", "final": false})),
        )
            .into_response());
    }
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(60_000).min(300_000));
    let view = wait_request(&s, id, timeout).await?;
    let status = if view["final"] == json!(true) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(view)).into_response())
}

/// Waits until the request is final (receipt certified) or failed.
async fn wait_request(s: &Arc<NodeState>, id: B256, timeout: Duration) -> Result<Value, ApiError> {
    static WAITERS: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
        std::sync::LazyLock::new(|| {
            Arc::new(tokio::sync::Semaphore::new(super::MAX_WAITING_REQUESTS))
        });
    let Ok(_permit) = WAITERS.clone().try_acquire_owned() else {
        // Too many waiters: answer with the current status (clients poll).
        return request_view(s, &id);
    };
    let mut rx = s.executed.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let v = request_view(s, &id)?;
        if v["final"] == json!(true) || v["status"] == json!("failed") {
            return Ok(v);
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return Ok(v);
        }
    }
}

fn request_view(s: &NodeState, id: &B256) -> Result<Value, ApiError> {
    let idh = format!("{id:#x}");
    let Some(rec) = s.ledger.request(id)? else {
        if let Some(o) = s.ledger.tx_outcome(id)? {
            return Ok(json!({"request_id": idh, "status": "failed", "final": true,
                "error": {"code": o.code, "message": o.error}}));
        }
        if s.mempool.lock().expect("mempool lock").contains(id) {
            return Ok(json!({"request_id": idh, "status": "pending", "final": false}));
        }
        return Err(ApiError::not_found(
            "unknown_request",
            format!("request {idh} is not known to this node"),
        ));
    };
    let mut v = json!({"request_id": idh, "model": rec.model, "mode": rec.mode, "height": rec.height, "final": false});
    match &rec.status {
        RequestStatus::Pending => v["status"] = json!("ordered"),
        RequestStatus::Assigned {
            executor,
            deadline,
            seed,
        } => {
            v["status"] = json!("assigned");
            v["executor"] = json!(executor);
            v["deadline"] = json!(deadline);
            v["draw_seed"] = json!(seed);
        }
        RequestStatus::Reassigned {
            executor,
            deadline,
            seed,
            silent,
        } => {
            // Still awaiting a result, from a second executor.
            v["status"] = json!("assigned");
            v["executor"] = json!(executor);
            v["deadline"] = json!(deadline);
            v["draw_seed"] = json!(seed);
            v["reassigned_from"] = json!(silent);
        }
        RequestStatus::Failed { reason } => {
            v["status"] = json!("failed");
            v["final"] = json!(true);
            v["error"] = json!({"code": "request_failed", "message": reason});
        }
        RequestStatus::Settled { receipt_id } => {
            v["receipt_id"] = json!(format!("{receipt_id:#x}"));
            v["outputs"] = s
                .ledger
                .output(id)?
                .map(|o| o.to_json())
                .unwrap_or(Value::Null);
            match audit::receipt_bundle(s, receipt_id) {
                Ok(bundle) => {
                    v["status"] = json!("settled");
                    v["final"] = json!(true);
                    v["receipt"] = serde_json::to_value(&bundle).map_err(ApiError::internal)?;
                }
                Err(audit::BundleError::NotFinal(_)) => {
                    v["status"] = json!("settled_pending_certificate")
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(v)
}

pub async fn request(
    State(s): S,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    if q.wait {
        let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(60_000).min(300_000));
        return Ok(Json(wait_request(&s, id, timeout).await?));
    }
    Ok(Json(request_view(&s, &id)?))
}

pub async fn receipt(State(s): S, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let bundle = audit::receipt_bundle(&s, &id)?;
    Ok(Json(
        serde_json::to_value(&bundle).map_err(ApiError::internal)?,
    ))
}

/// The state root after executing `height`, and the finalized header there.
pub async fn root(State(s): S, Path(height): Path<u64>) -> Result<Json<Value>, ApiError> {
    let root = s.ledger.root_at(height)?.ok_or_else(|| {
        ApiError::not_found(
            "unknown_height",
            format!("height {height} is not executed yet"),
        )
    })?;
    let header = s.chain.header(height).map_err(ApiError::internal)?;
    Ok(Json(
        json!({"height": height, "root": format!("{root:#x}"), "header": header}),
    ))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no_route", "no such endpoint; see /openapi.json")
}
