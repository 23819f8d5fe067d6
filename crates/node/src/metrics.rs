//! Prometheus metrics served at `/metrics`.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};
use std::sync::Mutex;

pub struct Metrics {
    registry: Mutex<Registry>,
    pub blocks: Counter,
    pub height: Gauge,
    pub txs_submitted: Counter,
    pub txs_rejected: Counter,
    pub txs_applied: Counter,
    pub txs_failed: Counter,
    pub receipts: Counter,
    pub inferences_executed: Counter,
    pub inferences_failed: Counter,
    pub http_requests: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::with_prefix("verity");
        let m = Self {
            registry: Mutex::new(Registry::default()),
            blocks: Counter::default(),
            height: Gauge::default(),
            txs_submitted: Counter::default(),
            txs_rejected: Counter::default(),
            txs_applied: Counter::default(),
            txs_failed: Counter::default(),
            receipts: Counter::default(),
            inferences_executed: Counter::default(),
            inferences_failed: Counter::default(),
            http_requests: Counter::default(),
        };
        r.register(
            "blocks_executed",
            "Finalized blocks executed",
            m.blocks.clone(),
        );
        r.register("height", "Last executed height", m.height.clone());
        r.register(
            "txs_submitted",
            "Transactions admitted to the mempool",
            m.txs_submitted.clone(),
        );
        r.register(
            "txs_rejected",
            "Transactions refused at admission",
            m.txs_rejected.clone(),
        );
        r.register(
            "txs_applied",
            "Transactions applied by the ledger",
            m.txs_applied.clone(),
        );
        r.register(
            "txs_failed",
            "Included transactions the ledger refused",
            m.txs_failed.clone(),
        );
        r.register("receipts", "Receipts settled", m.receipts.clone());
        r.register(
            "inferences_executed",
            "Inferences run by this node's executor",
            m.inferences_executed.clone(),
        );
        r.register(
            "inferences_failed",
            "Inferences this node's executor reported as failed",
            m.inferences_failed.clone(),
        );
        r.register(
            "http_requests",
            "HTTP API requests",
            m.http_requests.clone(),
        );
        *m.registry.lock().expect("registry lock") = r;
        m
    }
}

impl Metrics {
    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let r = self.registry.lock().expect("registry lock");
        encode(&mut out, &r).expect("writing to a String");
        out
    }
}
