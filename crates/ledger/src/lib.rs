//! The deterministic ledger state machine: accounts, fees, models, inference
//! requests, results, failure reports, reassignments and receipts, with a Merkle root over the state after
//! every block, persisted in redb.
//!
//! It executes only finalized blocks, in height order, each in one atomic
//! redb transaction, so a crash at any moment leaves the last committed
//! height intact. It must not spawn tasks, read clocks (time comes from
//! block headers), or know about consensus, networking or model execution
//! (zk proofs are checked through the [`ZkVerifier`] trait).

mod apply;
mod assign;
mod checks;
mod error;
mod genesis;
mod memory_disk;
mod models;
mod query;
mod records;
mod settle;
mod store;
mod zk;

pub use apply::BlockOutcome;
pub use assign::{draw_executor, draw_reassignment};
pub use error::{LedgerError, TxError};
pub use genesis::{Genesis, Params};
pub use memory_disk::{MemoryBackend, MemoryDisk};
pub use models::{InspectError, ModelOracle, ModelShape, ModelStoreError};
pub use query::ReceiptProof;
pub use records::{Account, RequestRecord, RequestStatus, TxOutcome};
pub use store::Ledger;
pub use zk::{Registration, ZkError, ZkStatus, ZkVerifier};
