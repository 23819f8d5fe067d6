//! The HTTP JSON API (`/v1/...`, `/openapi.json`, `/metrics`).

mod error;
mod handlers;
mod openapi;

pub use error::ApiError;

use crate::state::NodeState;
use axum::{
    extract::{DefaultBodyLimit, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use std::sync::Arc;

/// Largest body of `/v1/txs` (a publish carries the model, hex in JSON).
pub const MAX_TX_BODY: usize = 40 << 20;
/// Largest body of `/v1/infer`.
pub const MAX_INFER_BODY: usize = 8 << 20;

async fn count(State(s): State<Arc<NodeState>>, req: Request, next: Next) -> Response {
    s.metrics.http_requests.inc();
    next.run(req).await
}

/// Requests the API serves at once; more get 503 `busy` at once instead of
/// queueing without bound.
pub const MAX_CONCURRENT_REQUESTS: usize = 512;
/// Requests that may wait for finality (`?wait=true`) at once; beyond it a
/// request is answered with its current status, without waiting.
pub const MAX_WAITING_REQUESTS: usize = 256;

async fn limit_concurrency(
    State(permits): State<Arc<tokio::sync::Semaphore>>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = permits.try_acquire_owned() else {
        return ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("the node is serving {MAX_CONCURRENT_REQUESTS} requests; retry later"),
        )
        .into_response();
    };
    next.run(req).await
}

/// A halted node (its state diverged from the finalized chain, or it could
/// not apply a block) must not present anything as final: every endpoint
/// but `/v1/status` and `/metrics` answers 503 `halted` with the reason.
async fn refuse_when_halted(State(s): State<Arc<NodeState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path != "/v1/status" && path != "/metrics" {
        if let Some(reason) = s.halt_reason() {
            return ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "halted",
                format!("this node stopped serving finality: {reason}"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// The API router.
pub fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/v1/status", get(handlers::status))
        .route("/v1/models", get(handlers::models))
        .route("/v1/models/{id}", get(handlers::model))
        .route("/v1/models/{id}/onnx", get(handlers::model_bytes))
        .route("/v1/accounts/{addr}", get(handlers::account))
        .route(
            "/v1/txs",
            post(handlers::submit_tx).layer(DefaultBodyLimit::max(MAX_TX_BODY)),
        )
        .route("/v1/txs/{id}", get(handlers::tx_status))
        .route(
            "/v1/infer",
            post(handlers::infer).layer(DefaultBodyLimit::max(MAX_INFER_BODY)),
        )
        .route("/v1/requests/{id}", get(handlers::request))
        .route("/v1/receipts/{id}", get(handlers::receipt))
        .route("/v1/roots/{height}", get(handlers::root))
        .route("/openapi.json", get(openapi::document))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_when_halted,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS)),
            limit_concurrency,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}
