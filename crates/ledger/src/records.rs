//! Records stored in the state.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use verity_primitives::{codec::Canonical, Address, Amount, BlockSeed, Mode, ModelId, B256};

#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Account {
    pub balance: Amount,
    /// The next nonce this account must use.
    pub nonce: u64,
}

impl Canonical for Account {
    const WHAT: &'static str = "account";
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RequestStatus {
    /// Ordered, waiting for an executor to be drawn from a later block.
    Pending,
    /// Assigned; the result is due by `deadline` (half the request timeout
    /// after the draw, see `Params::reassign_after`), after which the
    /// request is reassigned once. `seed` is the block seed the executor
    /// was drawn with (see `draw_executor`).
    Assigned {
        executor: Address,
        deadline: u64,
        seed: BlockSeed,
    },
    Settled {
        receipt_id: B256,
    },
    Failed {
        reason: String,
    },
    /// Reassigned once: `silent` posted nothing by its deadline, and
    /// `executor` was drawn with `seed` from the other executors (see
    /// `draw_reassignment`); the result is due by `deadline`, after which
    /// the request expires. (Added last: the encodings of the states above
    /// are unchanged.)
    Reassigned {
        executor: Address,
        deadline: u64,
        seed: BlockSeed,
        silent: Address,
    },
}

impl RequestStatus {
    /// The state's name, as in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Assigned { .. } => "assigned",
            RequestStatus::Settled { .. } => "settled",
            RequestStatus::Failed { .. } => "failed",
            RequestStatus::Reassigned { .. } => "reassigned",
        }
    }

    /// The executor whose result (or failure report) is awaited, if any.
    pub fn assignee(&self) -> Option<&Address> {
        match self {
            RequestStatus::Assigned { executor, .. }
            | RequestStatus::Reassigned { executor, .. } => Some(executor),
            _ => None,
        }
    }
}

/// An inference request in the state.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RequestRecord {
    pub requester: Address,
    pub model: ModelId,
    pub mode: Mode,
    pub input_hash: B256,
    /// Escrowed from the requester.
    pub max_fee: Amount,
    pub height: u64,
    pub status: RequestStatus,
}

impl Canonical for RequestRecord {
    const WHAT: &'static str = "request record";
}

/// What happened to a transaction that was included in a block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxOutcome {
    pub height: u64,
    /// `None` when it applied; otherwise why it was skipped.
    pub error: Option<String>,
    pub code: Option<String>,
}

impl Canonical for TxOutcome {
    const WHAT: &'static str = "transaction outcome";
}
