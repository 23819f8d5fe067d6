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
pub mod hub_store;
pub mod mempool;
pub mod metrics;
pub mod peer_models;
pub mod service;
pub mod state;
pub mod zk;

/// The first of `n` consecutive loopback ports that are free right now (for
/// devnets started by tests and benchmarks).
pub fn free_ports(n: u16) -> std::io::Result<u16> {
    for _ in 0..100 {
        let base = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if base > 65000 - n {
            continue;
        }
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return Ok(base);
        }
    }
    Err(std::io::Error::other(format!(
        "no {n} consecutive free ports"
    )))
}
