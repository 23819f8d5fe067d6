//! Read-only queries over the last committed state.

use crate::{
    apply::{account_key, model_key, name_key, request_key, EXECUTORS_KEY},
    assign::Executors,
    records::{Account, RequestRecord, TxOutcome},
    store::{INPUTS, OPEN, OUTPUTS, PROOFS, STATE, TXS},
    Ledger, LedgerError,
};
use borsh::{BorshDeserialize, BorshSerialize};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use verity_primitives::{
    codec::Canonical,
    merkle::{MerkleProof, Step},
    Address, ModelId, ModelManifest, Receipt, Tensors, B256,
};

#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) struct StoredProof {
    pub height: u64,
    pub steps: Vec<([u8; 32], bool)>,
}

/// A receipt with its inclusion proof in the state root of `height`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiptProof {
    pub receipt: Receipt,
    pub height: u64,
    pub root: B256,
    pub proof: MerkleProof,
}

fn corrupt(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(e.to_string())
}

impl Ledger {
    fn raw(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        k: &[u8],
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(table)?;
        Ok(t.get(k)?.map(|v| v.value().to_vec()))
    }

    fn state<T: Canonical>(&self, k: &[u8]) -> Result<Option<T>, LedgerError> {
        self.raw(STATE, k)?
            .map(|v| T::decode(&v).map_err(corrupt))
            .transpose()
    }

    pub fn account(&self, a: &Address) -> Result<Account, LedgerError> {
        Ok(self.state(&account_key(a))?.unwrap_or_default())
    }

    pub fn executors(&self) -> Result<Vec<Address>, LedgerError> {
        Ok(self
            .state::<Executors>(EXECUTORS_KEY)?
            .map(|e| e.0)
            .unwrap_or_default())
    }

    pub fn model(&self, id: &ModelId) -> Result<Option<ModelManifest>, LedgerError> {
        self.state(&model_key(id))
    }

    /// Resolves `name` (latest version) or `name@version` to an id.
    pub fn resolve_model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<ModelId>, LedgerError> {
        let Some(cid) = self.raw(STATE, &name_key(name, version))? else {
            return Ok(None);
        };
        let digest: [u8; 32] = cid
            .get(4..)
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| corrupt("name index"))?;
        Ok(Some(ModelId::of_digest(digest)))
    }

    /// Every published model, ordered by id.
    pub fn models(&self) -> Result<Vec<ModelManifest>, LedgerError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(STATE)?;
        let mut out = Vec::new();
        for item in t.range(b"model/".as_slice()..b"model0".as_slice())? {
            let (_, v) = item?;
            out.push(ModelManifest::decode(v.value()).map_err(corrupt)?);
        }
        Ok(out)
    }

    pub fn request(&self, id: &B256) -> Result<Option<RequestRecord>, LedgerError> {
        self.state(&request_key(id))
    }

    pub fn receipt(&self, id: &B256) -> Result<Option<Receipt>, LedgerError> {
        self.state(&Receipt::state_key(id))
    }

    pub fn tx_outcome(&self, id: &B256) -> Result<Option<TxOutcome>, LedgerError> {
        self.raw(TXS, id.as_slice())?
            .map(|v| TxOutcome::decode(&v).map_err(corrupt))
            .transpose()
    }

    fn tensors(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        id: &B256,
    ) -> Result<Option<Tensors>, LedgerError> {
        self.raw(table, id.as_slice())?
            .map(|v| {
                v.split_first()
                    .and_then(|(_, rest)| borsh::from_slice(rest).ok())
                    .ok_or_else(|| corrupt("stored tensors"))
            })
            .transpose()
    }

    /// The input of a request.
    pub fn input(&self, request_id: &B256) -> Result<Option<Tensors>, LedgerError> {
        self.tensors(INPUTS, request_id)
    }

    /// The zk proof file of a settled zk-mode request.
    pub fn zk_proof(&self, request_id: &B256) -> Result<Option<Vec<u8>>, LedgerError> {
        let r = self.db.begin_read()?;
        match r.open_table(crate::store::ZK_PROOFS) {
            Ok(t) => Ok(t.get(request_id.as_slice())?.map(|v| v.value().to_vec())),
            // a ledger created before zk mode existed
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A model's zk registration, if it has been registered.
    pub fn zk_status(
        &self,
        model: &verity_primitives::ModelId,
    ) -> Result<Option<crate::ZkStatus>, LedgerError> {
        self.state(&crate::zk::zk_key(model))
    }

    /// The output of a settled request.
    pub fn output(&self, request_id: &B256) -> Result<Option<Tensors>, LedgerError> {
        self.tensors(OUTPUTS, request_id)
    }

    /// Requests currently assigned to `executor` and not yet settled.
    pub fn assigned_to(
        &self,
        executor: &Address,
    ) -> Result<Vec<(B256, RequestRecord)>, LedgerError> {
        let ids: Vec<B256> = {
            let r = self.db.begin_read()?;
            let t = r.open_table(OPEN)?;
            let mut v = Vec::new();
            for item in t.iter()? {
                v.push(B256::from_slice(item?.0.value()));
            }
            v
        };
        let mut out = Vec::new();
        for id in ids {
            if let Some(rec) = self.request(&id)? {
                if rec.status.assignee() == Some(executor) {
                    out.push((id, rec));
                }
            }
        }
        Ok(out)
    }

    /// A receipt with its Merkle proof into the root of the height that
    /// settled it.
    pub fn receipt_proof(&self, id: &B256) -> Result<Option<ReceiptProof>, LedgerError> {
        let Some(receipt) = self.receipt(id)? else {
            return Ok(None);
        };
        let stored: StoredProof = match self.raw(PROOFS, id.as_slice())? {
            Some(v) => borsh::from_slice(&v).map_err(corrupt)?,
            None => return Err(corrupt("receipt without proof")),
        };
        let root = self
            .root_at(stored.height)?
            .ok_or_else(|| corrupt("missing root"))?;
        let proof = MerkleProof {
            key: Receipt::state_key(id),
            value: receipt.encode(),
            steps: stored
                .steps
                .into_iter()
                .map(|(s, left)| Step {
                    sibling: B256::from(s),
                    left,
                })
                .collect(),
        };
        Ok(Some(ReceiptProof {
            receipt,
            height: stored.height,
            root,
            proof,
        }))
    }
}
