//! Block headers as the application sees them. The consensus block digest is
//! `sha256(header.encode())`, so an auditor who holds a header can link a
//! finalization certificate (which signs the digest) to the state root the
//! header claims.

use crate::{codec::sha256, codec::Canonical, SignedTx, B256};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The state root after executing every finalized block up to `height`.
/// Blocks carry the latest claim their proposer has executed (lagging the
/// block itself), so execution only ever happens on finalized blocks.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct StateClaim {
    pub height: u64,
    pub root: B256,
}

/// The threshold-BLS VRF seed of a consensus view, carried in the next
/// block: `signature` is the group's signature over the view's round, which
/// no coalition below the threshold can compute or predict, and which every
/// verifier checks against the network identity before voting.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockSeed {
    /// The view whose seed this is (the parent block's view).
    pub view: u64,
    /// The encoded seed signature.
    #[serde(with = "crate::merkle::hex_bytes")]
    pub signature: Vec<u8>,
}

impl BlockSeed {
    /// Largest encoded seed signature accepted (a BLS12-381 G2 point).
    pub const MAX_SIGNATURE: usize = 96;

    /// The randomness this seed gives: sha256 of the signature.
    pub fn randomness(&self) -> B256 {
        B256::from(sha256(&self.signature))
    }
}

/// A block header.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Digest of the parent block (all zero for genesis).
    pub parent: B256,
    pub height: u64,
    /// Proposer's clock in milliseconds since the Unix epoch; checked to be
    /// monotone and not far in the future by verifiers.
    pub timestamp_ms: u64,
    pub claim: StateClaim,
    /// sha256 of the canonical [`BlockBody`] encoding.
    pub body_hash: B256,
    /// The seed of the parent block's view (`None` only on the child of
    /// genesis). Executor draws use it (DESIGN §2.3).
    pub seed: Option<BlockSeed>,
}

impl Canonical for BlockHeader {
    const WHAT: &'static str = "block header";
}

impl BlockHeader {
    /// The consensus digest of the block.
    pub fn digest(&self) -> B256 {
        B256::from(sha256(&self.encode()))
    }
}

/// The transactions of a block.
#[derive(Clone, Debug, Default, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct BlockBody {
    pub txs: Vec<SignedTx>,
}

impl Canonical for BlockBody {
    const WHAT: &'static str = "block body";
}

impl BlockBody {
    pub fn hash(&self) -> B256 {
        B256::from(sha256(&self.encode()))
    }
}
