//! Validator consensus: commonware simplex (threshold BLS12-381 VRF, MinSig),
//! `marshal` for block dissemination, backfill and in-order delivery of
//! finalized blocks, `authenticated::discovery` p2p (ed25519 peer keys) and
//! commonware storage in a per-node directory.
//!
//! Layout:
//! - [`block`]: the consensus block (`BlockHeader` + body bytes); its digest is
//!   the header digest, so a finalization certificate links to a header.
//! - [`keys`]: validator key material, the network identity (group key) and
//!   the development dealer [`dev_genesis`].
//! - [`certificate`]: offline checks of finalization certificates.
//! - [`app`]: the [`Application`] boundary to the ledger.
//! - [`engine`]: the runtime-generic wiring of consensus, marshal and buffer.
//! - [`node`]: [`start`] (a validator over TCP on the tokio runtime) and the
//!   runtime-generic [`run_validator`].
//!
//! Signatures are domain separated by [`consensus_namespace`] of the chain id.
//! The network runs in a single epoch ([`EPOCH`]): there is no reconfiguration.

pub mod app;
pub mod block;
pub mod certificate;
pub mod engine;
pub mod gossip;
pub mod keys;
pub mod node;
pub mod seed;

#[cfg(test)]
mod tests;

use commonware_consensus::{
    marshal::{core::Mailbox, standard::Standard},
    simplex::{
        scheme::bls12381_threshold::vrf,
        types::{Context as SimplexContext, Finalization as SimplexFinalization},
    },
    types::Epoch,
};
use commonware_cryptography::{
    bls12381::primitives::variant::{MinSig, Variant},
    ed25519, sha256,
};
use commonware_utils::NZU64;
use std::num::NonZeroU64;

pub use app::{Application, ApplyFailure, FinalizedBlock};
pub use block::{genesis_header, Block, DEFAULT_MAX_BODY_BYTES};
pub use certificate::{seed_of, verify_finalization, FinalizedInfo};
pub use keys::{dev_genesis, NetworkIdentity, ValidatorKeys};
pub use node::{
    parse_public_key, peers_from_json, peers_to_json, public_key_hex, run_validator, start,
    ConsensusHandle, PeerEntry, Timeouts, ValidatorConfig, ValidatorService,
};
pub use seed::{check_seed, SeedError};

/// Validator (peer) public key: ed25519.
pub type PublicKey = ed25519::PublicKey;
/// The signing scheme: threshold BLS12-381 with a per-view VRF seed.
pub type Scheme = vrf::Scheme<PublicKey, MinSig>;
/// The group public key ("identity") that checks every certificate.
pub type Identity = <MinSig as Variant>::Public;
/// A finalization certificate for a block digest.
pub type Finalization = SimplexFinalization<Scheme, sha256::Digest>;
/// The consensus context handed to proposers and verifiers.
pub type Context = SimplexContext<sha256::Digest, PublicKey>;
/// Mailbox of the marshal actor (finalized blocks and certificates).
pub type MarshalMailbox = Mailbox<Scheme, Standard<Block>>;

/// The only epoch: the validator set is fixed at genesis.
pub const EPOCH: Epoch = Epoch::zero();
/// Epoch length (effectively infinite: no epoch boundary is ever reached).
pub const EPOCH_LENGTH: NonZeroU64 = NZU64!(u64::MAX);

/// The namespace that domain-separates consensus signatures for a chain.
/// Certificates are only valid under the namespace of the chain they were
/// made on.
pub fn consensus_namespace(chain_id: &str) -> Vec<u8> {
    format!("verity/{chain_id}/consensus").into_bytes()
}

/// The namespace of the p2p handshake for a chain.
pub fn p2p_namespace(chain_id: &str) -> Vec<u8> {
    format!("verity/{chain_id}/p2p").into_bytes()
}

/// Errors of the consensus layer.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    #[error("invalid group identity: {0}")]
    Identity(String),
    #[error("invalid finalization certificate encoding: {0}")]
    CertificateDecode(String),
    #[error("certificate finalizes {found}, not the expected block {expected}")]
    DigestMismatch { expected: String, found: String },
    #[error("certificate is for epoch {0}, this network only has epoch 0")]
    WrongEpoch(u64),
    #[error("certificate signature does not verify against the group identity")]
    BadSignature,
    #[error("invalid key material: {0}")]
    Keys(String),
    #[error("invalid block: {0}")]
    Block(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the consensus service stopped")]
    Stopped,
}
