//! The HTTP JSON API (`/v1/...`, `/openapi.json`, `/metrics`).

mod error;
mod handlers;
mod openapi;

pub use error::ApiError;

use crate::state::NodeState;
use axum::{
    extract::{DefaultBodyLimit, Request, State},
    middleware::{self, Next},
    response::Response,
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

/// The API router.
pub fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/v1/status", get(handlers::status))
        .route("/v1/models", get(handlers::models))
        .route("/v1/models/{id}", get(handlers::model))
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
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}
