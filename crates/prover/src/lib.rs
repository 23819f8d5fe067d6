//! `verity-prover`: succinct proofs that an output is the exact-mode (fixed-point integer)
//! result of a committed model on an input, for Verity's `zk` verification mode.
//!
//! What it does:
//! - proves runs of an integer-layer IR ([`model::Layer`]: MatMul, Conv, Rescale, ReLU,
//!   MaxPool, constant Add, table lookups) with sumcheck (matrix products, gathers, zero
//!   checks), linear checks (limb decompositions), a logUp lookup argument proved by a
//!   fractional-sum GKR (rescale remainders, range checks, ReLU and table functions), and a
//!   transparent Ligero-style multilinear polynomial commitment (Reed–Solomon over
//!   Goldilocks, BLAKE3 Merkle trees: no trusted setup, nothing downloaded);
//! - lowers exact-mode graphs ([`exact`]) to that IR, naming what it cannot cover, and
//!   proves ONNX models end to end ([`OnnxProver`], [`ProofFile`]);
//! - commits to a model's weights once, at registration ([`ProverModel::new`]), and binds
//!   how the output is read (each output's name, shape and scale, in order) and the
//!   compiled-model id into the commitment ([`ProverModel::bind`], [`OutputLayout`]); the
//!   verifier needs only the [`ModelCommitment`];
//! - derives every challenge by Fiat–Shamir from a transcript that absorbs the model
//!   commitment (its output layout included), the input, the output and every prover
//!   message;
//! - verifies bytes from the network without panicking: [`verify`] and [`settle`]'s entry
//!   points run under a panic guard and return typed errors; decoding bounds every length.
//!
//! Field and DFT arithmetic come from Plonky3 (`p3-goldilocks`, `p3-field`, `p3-dft`); the
//! protocol code is ours. The protocol, its soundness argument and parameters are written
//! down in `docs/proof-system.md`.
//!
//! What it must not do: depend on node, ledger or network code (it uses the engine only for
//! exact mode's compiled graph and reference run), do I/O, read clocks or spawn tasks. Proofs are succinct and sound,
//! **not** zero-knowledge.

mod builder;
pub mod claims;
mod encode;
pub mod error;
pub mod exact;
mod exec;
pub mod field;
pub mod file;
mod heads;
pub mod layout;
pub mod logup;
pub mod merkle;
pub mod mle;
pub mod model;
pub mod onnx;
pub mod pcs;
mod plan;
pub mod protocol;
mod relations;
pub mod settle;
pub mod sumcheck;
mod tables;
#[cfg(test)]
mod tamper_tests;
pub mod transcript;

pub use error::{DecodeError, ModelError, ProveError, VerifyError};
pub use file::ProofFile;
pub use layout::{OutputLayout, OutputSpec};
pub use model::{Layer, LayerSpec, LookupTable, ModelCommitment, ProverModel, Rounding, Window};
pub use onnx::{OnnxProver, ZkError};
pub use pcs::PcsParams;
pub use protocol::{prove, verify, Proof, PROOF_VERSION};
pub use settle::{SettleError, StatementError};
