//! Block execution: every transaction is fully checked before it writes, so
//! a failing transaction leaves no trace but its recorded outcome. Results
//! and failure reports are in `settle`, draws and expiry in `assign`.

use crate::{
    assign::Executors,
    records::{Account, RequestRecord, RequestStatus, TxOutcome},
    settle::{awaiting, check_failure},
    store::{
        compute_root, read_height, write_height, INPUTS, META, OPEN, PROOFS, ROOTS, STATE, TXS,
    },
    Genesis, Ledger, LedgerError, ModelOracle, Params, TxError, ZkVerifier,
};
use borsh::BorshSerialize;
use redb::{ReadableTable, WriteTransaction};
use verity_primitives::{
    codec::Canonical, merkle, Address, Amount, BlockSeed, Mode, ModelId, ModelManifest, Receipt,
    SignedTx, Tensors, TxBody, B256,
};

/// What executing a block did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockOutcome {
    pub height: u64,
    pub root: B256,
    pub applied: usize,
    pub failed: usize,
    /// Receipts created by this block.
    pub receipts: Vec<B256>,
    /// Whether the block had already been executed (re-delivery).
    pub already_applied: bool,
}

pub(crate) fn key(prefix: &str, id: &[u8]) -> Vec<u8> {
    let mut k = prefix.as_bytes().to_vec();
    k.extend_from_slice(id);
    k
}

pub(crate) fn account_key(a: &Address) -> Vec<u8> {
    key("acct/", a.as_slice())
}
pub(crate) fn model_key(id: &ModelId) -> Vec<u8> {
    key("model/", id.digest())
}
pub(crate) fn name_key(name: &str, version: Option<&str>) -> Vec<u8> {
    match version {
        Some(v) => key("name/", format!("{name}@{v}").as_bytes()),
        None => key("latest/", name.as_bytes()),
    }
}
pub(crate) fn request_key(id: &B256) -> Vec<u8> {
    key("req/", id.as_slice())
}
pub(crate) const EXECUTORS_KEY: &[u8] = b"executors";

/// Reads and writes state entries inside one write transaction.
pub(crate) struct Exec<'a> {
    pub w: &'a WriteTransaction,
    pub height: u64,
    pub params: &'a Params,
    pub chain_id: u64,
    pub zk: Option<&'a dyn ZkVerifier>,
    pub models: Option<&'a dyn ModelOracle>,
}

impl Exec<'_> {
    pub(crate) fn get<T: Canonical>(&self, k: &[u8]) -> Result<Option<T>, LedgerError> {
        let t = self.w.open_table(STATE)?;
        let v = t.get(k)?;
        v.map(|v| T::decode(v.value()).map_err(|e| LedgerError::Corrupt(e.to_string())))
            .transpose()
    }

    pub(crate) fn put<T: Canonical>(&self, k: &[u8], v: &T) -> Result<(), LedgerError> {
        self.w.open_table(STATE)?.insert(k, v.encode().as_slice())?;
        Ok(())
    }

    fn account(&self, a: &Address) -> Result<Account, LedgerError> {
        Ok(self.get(&account_key(a))?.unwrap_or_default())
    }

    pub(crate) fn credit(&self, a: &Address, amount: Amount) -> Result<(), LedgerError> {
        let mut acct = self.account(a)?;
        acct.balance = acct.balance.saturating_add(amount);
        self.put(&account_key(a), &acct)
    }

    /// Checks then applies one transaction.
    ///
    /// The fee rule (DESIGN §8, "nothing is free"): a transaction with a
    /// valid signature and the sender's next nonce pays the transaction fee
    /// (as much of it as the balance holds) and advances the nonce even when
    /// its body fails; only a result that settles, or a valid failure
    /// report, is free: the request paid for it, and only its assigned
    /// executor can end it, once. A transaction without a valid
    /// signature or with another nonce cannot be charged to anyone: it
    /// fails as [`Charge::Unpayable`] (honest proposers never include one;
    /// admission refuses it), and a nonce-gap one is not recorded, so that
    /// it can still apply in a later block.
    fn apply_tx(&self, stx: &SignedTx) -> Result<Option<B256>, Failure> {
        check_static(stx, self.chain_id).map_err(Failure::unpayable)?;
        let tx = &stx.tx;
        let acct = self.account(&tx.from)?;
        if tx.nonce < acct.nonce {
            return Err(Failure::unpayable(TxError::NonceReused {
                expected: acct.nonce,
                got: tx.nonce,
            }));
        }
        if tx.nonce > acct.nonce {
            return Err(Failure::Skip(TxError::NonceGap {
                expected: acct.nonce,
                got: tx.nonce,
            }));
        }
        match self.apply_body(stx, acct.clone()) {
            Err(Failure::Tx(e, Charge::Fee)) => {
                // Failed bodies write nothing; charge the fee, burn the nonce.
                let mut acct = acct;
                acct.balance -= self.params.tx_fee.min(acct.balance);
                acct.nonce += 1;
                self.put(&account_key(&tx.from), &acct)?;
                Err(Failure::Tx(e, Charge::Fee))
            }
            other => other,
        }
    }

    /// Applies a transaction body whose signature and nonce are valid.
    fn apply_body(&self, stx: &SignedTx, mut acct: Account) -> Result<Option<B256>, Failure> {
        let tx = &stx.tx;
        let need = |extra: Amount| -> Result<(), Failure> {
            let need = self.params.tx_fee.saturating_add(extra);
            if acct.balance < need {
                return Err(TxError::InsufficientBalance {
                    need,
                    have: acct.balance,
                }
                .into());
            }
            Ok(())
        };
        acct.nonce += 1;
        match &tx.body {
            TxBody::Transfer { to, amount } => {
                need(*amount)?;
                acct.balance -= self.params.tx_fee + amount;
                self.put(&account_key(&tx.from), &acct)?;
                self.credit(to, *amount)?;
                Ok(None)
            }
            TxBody::Publish { manifest, onnx } => {
                check_publish(self.params, &tx.from, manifest, onnx)?;
                if self
                    .get::<ModelManifest>(&model_key(&manifest.model_id))?
                    .is_some()
                {
                    return Err(TxError::ModelExists(manifest.model_id.to_string()).into());
                }
                let nk = name_key(&manifest.name, Some(&manifest.version));
                if self.w.open_table(STATE)?.get(nk.as_slice())?.is_some() {
                    return Err(TxError::NameTaken(format!(
                        "{}@{}",
                        manifest.name, manifest.version
                    ))
                    .into());
                }
                need(0)?;
                // The expensive check last: the engine loads the bytes.
                check_model_bytes(self.models, manifest, onnx)?;
                acct.balance -= self.params.tx_fee;
                self.put(&account_key(&tx.from), &acct)?;
                if let Some(store) = self.models {
                    // Durable before the block that names the model commits.
                    store
                        .store(&manifest.model_id, onnx)
                        .map_err(LedgerError::from)?;
                }
                self.publish(manifest)?;
                // The once-per-model zk work happens here, at publish,
                // where the bytes just became available to every node.
                if let (Some(zk), Some(_)) = (self.zk, self.models) {
                    self.zk_register(zk, &manifest.model_id)?;
                }
                Ok(None)
            }
            TxBody::Infer(req) => {
                let manifest = self
                    .get::<ModelManifest>(&model_key(&req.model))?
                    .ok_or_else(|| TxError::UnknownModel(req.model.to_string()))?;
                check_request(self.params, &manifest, req)?;
                if req.mode == Mode::Zk {
                    self.zk_commitment(&req.model)?;
                }
                need(req.max_fee)?;
                acct.balance -= self.params.tx_fee + req.max_fee;
                self.put(&account_key(&tx.from), &acct)?;
                let id = stx.id();
                let record = RequestRecord {
                    requester: tx.from,
                    model: req.model,
                    mode: req.mode,
                    input_hash: req.input.hash(),
                    max_fee: req.max_fee,
                    height: self.height,
                    status: RequestStatus::Pending,
                };
                self.put(&request_key(&id), &record)?;
                self.w
                    .open_table(INPUTS)?
                    .insert(id.as_slice(), encode_tensors(&req.input).as_slice())?;
                self.w
                    .open_table(OPEN)?
                    .insert(id.as_slice(), self.height)?;
                Ok(None)
            }
            TxBody::Result(res) => {
                let receipt = self.settle(&tx.from, res)?;
                self.bump_nonce(&tx.from, acct.nonce)?;
                Ok(Some(receipt))
            }
            TxBody::Failure(f) => {
                // Free like a settling result: the request's own infer
                // transaction paid for its space, and only its assigned
                // executor can end it, once.
                self.fail_request(&tx.from, f)?;
                self.bump_nonce(&tx.from, acct.nonce)?;
                Ok(None)
            }
        }
    }

    /// Sets `a`'s nonce, keeping the balance as it is now (a settlement may
    /// have credited it).
    fn bump_nonce(&self, a: &Address, nonce: u64) -> Result<(), LedgerError> {
        self.put(
            &account_key(a),
            &Account {
                nonce,
                ..self.account(a)?
            },
        )
    }

    pub(crate) fn publish(&self, manifest: &ModelManifest) -> Result<(), LedgerError> {
        self.put(&model_key(&manifest.model_id), manifest)?;
        let mut t = self.w.open_table(STATE)?;
        let id = manifest.model_id.to_cid_bytes();
        t.insert(
            name_key(&manifest.name, Some(&manifest.version)).as_slice(),
            id.as_slice(),
        )?;
        t.insert(name_key(&manifest.name, None).as_slice(), id.as_slice())?;
        Ok(())
    }
}

/// Whether a failed transaction can be charged to its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Charge {
    /// Authentic and in nonce order: pays the fee, advances the nonce.
    Fee,
    /// No sender to charge (bad signature, wrong chain, used nonce).
    Unpayable,
}

/// A transaction failed: the transaction's fault (and whether it pays), a
/// transaction that cannot apply yet, or the ledger's own failure.
pub(crate) enum Failure {
    Tx(TxError, Charge),
    /// Not this block's to decide (a nonce gap): no effect, not recorded.
    Skip(TxError),
    Ledger(LedgerError),
}
impl Failure {
    pub(crate) fn unpayable(e: TxError) -> Self {
        Failure::Tx(e, Charge::Unpayable)
    }
}
impl From<TxError> for Failure {
    fn from(e: TxError) -> Self {
        Failure::Tx(e, Charge::Fee)
    }
}
impl From<LedgerError> for Failure {
    fn from(e: LedgerError) -> Self {
        Failure::Ledger(e)
    }
}
macro_rules! failure_from_redb {
    ($($t:ty),*) => {$( impl From<$t> for Failure { fn from(e: $t) -> Self { Failure::Ledger(e.into()) } } )*};
}
failure_from_redb!(redb::TableError, redb::StorageError);

pub(crate) fn encode_tensors(t: &Tensors) -> Vec<u8> {
    let mut b = vec![verity_primitives::codec::VERSION];
    BorshSerialize::serialize(t, &mut b).expect("vec write");
    b
}

pub(crate) use crate::checks::{check_model_bytes, check_publish, check_request, check_static};

pub(crate) fn init_genesis(w: &WriteTransaction, g: &Genesis) -> Result<(), LedgerError> {
    let ex = Exec {
        w,
        height: 0,
        params: &g.params,
        chain_id: g.chain_id,
        zk: None,
        models: None,
    };
    for (addr, amount) in &g.accounts {
        ex.credit(addr, *amount)?;
    }
    ex.put(EXECUTORS_KEY, &Executors(g.executors.clone()))?;
    for m in &g.models {
        ex.publish(m)?;
    }
    Ok(())
}

impl Ledger {
    /// Admission check for the mempool: everything [`Ledger::apply_block`]
    /// would check, except that the nonce may be ahead (up to `max_ahead`)
    /// of the account's, for transactions queued behind others.
    pub fn check_tx(&self, stx: &SignedTx, max_ahead: u64) -> Result<(), TxError> {
        let internal = |e: LedgerError| TxError::InvalidResult(format!("ledger unavailable: {e}"));
        check_static(stx, self.genesis.chain_id)?;
        let tx = &stx.tx;
        let acct = self.account(&tx.from).map_err(internal)?;
        if tx.nonce < acct.nonce {
            return Err(TxError::NonceReused {
                expected: acct.nonce,
                got: tx.nonce,
            });
        }
        if tx.nonce > acct.nonce + max_ahead {
            return Err(TxError::NonceGap {
                expected: acct.nonce,
                got: tx.nonce,
            });
        }
        let p = &self.genesis.params;
        let need = |extra: Amount| {
            let need = p.tx_fee.saturating_add(extra);
            if acct.balance < need {
                return Err(TxError::InsufficientBalance {
                    need,
                    have: acct.balance,
                });
            }
            Ok(())
        };
        match &tx.body {
            TxBody::Transfer { amount, .. } => need(*amount),
            TxBody::Publish { manifest, onnx } => {
                check_publish(p, &tx.from, manifest, onnx)?;
                if self.model(&manifest.model_id).map_err(internal)?.is_some() {
                    return Err(TxError::ModelExists(manifest.model_id.to_string()));
                }
                if self
                    .resolve_model(&manifest.name, Some(&manifest.version))
                    .map_err(internal)?
                    .is_some()
                {
                    return Err(TxError::NameTaken(format!(
                        "{}@{}",
                        manifest.name, manifest.version
                    )));
                }
                need(0)?;
                check_model_bytes(self.models.as_deref(), manifest, onnx)
            }
            TxBody::Infer(req) => {
                let m = self
                    .model(&req.model)
                    .map_err(internal)?
                    .ok_or_else(|| TxError::UnknownModel(req.model.to_string()))?;
                check_request(p, &m, req)?;
                if req.mode == Mode::Zk {
                    self.zk_admission(&req.model)?;
                }
                need(req.max_fee)
            }
            TxBody::Result(res) => {
                // Only the assigned executor of an open request may post
                // (and so have the pool hold) a result for it.
                let record = self.open_request(&res.request_id)?;
                awaiting(&record, &tx.from)
            }
            TxBody::Failure(f) => {
                let record = self.open_request(&f.request_id)?;
                check_failure(&record, &tx.from, f)
            }
        }
    }

    fn open_request(&self, rid: &B256) -> Result<RequestRecord, TxError> {
        self.request(rid)
            .map_err(|e| TxError::InvalidResult(format!("ledger unavailable: {e}")))?
            .ok_or_else(|| TxError::UnknownRequest(format!("{rid:#x}")))
    }

    /// What `body` can take from its sender's balance, and what it pays
    /// beyond the flat fee (its rank in a full mempool).
    pub fn tx_cost(&self, body: &TxBody) -> (Amount, Amount) {
        let fee = self.genesis.params.tx_fee;
        match body {
            TxBody::Transfer { amount, .. } => (fee.saturating_add(*amount), 0),
            TxBody::Infer(req) => (fee.saturating_add(req.max_fee), req.max_fee),
            TxBody::Publish { .. } => (fee, 0),
            TxBody::Result(_) | TxBody::Failure(_) => (0, 0),
        }
    }

    /// Executes finalized block `height`. Re-delivery of an executed height
    /// is a no-op; a gap is an error.
    pub fn apply_block(
        &self,
        height: u64,
        seed: Option<&BlockSeed>,
        txs: &[SignedTx],
    ) -> Result<BlockOutcome, LedgerError> {
        let w = self.db.begin_write()?;
        let current = read_height(&w.open_table(META)?)?;
        if height <= current {
            let root = self
                .root_at(height)?
                .ok_or_else(|| LedgerError::Corrupt("missing root".into()))?;
            return Ok(BlockOutcome {
                height,
                root,
                applied: 0,
                failed: 0,
                receipts: vec![],
                already_applied: true,
            });
        }
        if height != current + 1 {
            return Err(LedgerError::OutOfOrder {
                expected: current + 1,
                got: height,
            });
        }
        let ex = Exec {
            w: &w,
            height,
            params: &self.genesis.params,
            chain_id: self.genesis.chain_id,
            zk: self.zk.as_deref(),
            models: self.models.as_deref(),
        };
        let (mut applied, mut failed, mut receipts) = (0, 0, Vec::new());
        for stx in txs {
            // A transaction re-included by a later block is skipped: its
            // first outcome stands.
            if w.open_table(TXS)?.get(stx.id().as_slice())?.is_some() {
                continue;
            }
            let outcome = match ex.apply_tx(stx) {
                Ok(r) => {
                    applied += 1;
                    receipts.extend(r);
                    TxOutcome {
                        height,
                        error: None,
                        code: None,
                    }
                }
                Err(Failure::Tx(e, _)) => {
                    failed += 1;
                    TxOutcome {
                        height,
                        error: Some(e.to_string()),
                        code: Some(e.code().into()),
                    }
                }
                Err(Failure::Skip(e)) => {
                    tracing::debug!(tx = %stx.id(), %e, "skipped: cannot apply yet");
                    continue;
                }
                Err(Failure::Ledger(e)) => return Err(e),
            };
            w.open_table(TXS)?
                .insert(stx.id().as_slice(), outcome.encode().as_slice())?;
        }
        ex.assign_and_expire(seed)?;
        let (root, leaves, keys) = compute_root(&w)?;
        for rid in &receipts {
            let k = Receipt::state_key(rid);
            let idx = keys
                .binary_search(&k)
                .map_err(|_| LedgerError::Corrupt("receipt not in state".into()))?;
            let steps = merkle::prove(&leaves, idx);
            let proof = crate::query::StoredProof {
                height,
                steps: steps.into_iter().map(|s| (s.sibling.0, s.left)).collect(),
            };
            w.open_table(PROOFS)?.insert(
                rid.as_slice(),
                borsh::to_vec(&proof).expect("vec").as_slice(),
            )?;
        }
        w.open_table(ROOTS)?.insert(height, root.as_slice())?;
        write_height(&w, height)?;
        w.commit()?;
        Ok(BlockOutcome {
            height,
            root,
            applied,
            failed,
            receipts,
            already_applied: false,
        })
    }
}
