//! Node wiring: the consensus engine (commonware simplex + marshal + p2p),
//! the mempool, the consensus application that executes finalized blocks on
//! the ledger, the executor loop, the HTTP API and metrics.
//!
//! Business rules belong in `verity-ledger`; this crate only connects parts
//! and must not decide what a valid transaction is.

pub mod api;
pub mod application;
pub mod audit;
pub mod chain;
pub mod consensus;
pub mod executor;
pub mod mempool;
pub mod metrics;
pub mod service;
pub mod state;
