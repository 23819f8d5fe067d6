//! Pending transactions, ordered per sender by nonce. Blocks take, for each
//! sender, the run of consecutive nonces starting at the account's nonce.
//!
//! The pool is a shared resource that anyone can try to fill, so every
//! dimension of it is bounded (DESIGN §8):
//! - a transaction that could never fit in a block is refused at admission
//!   ([`MempoolError::TooLarge`]), and [`Mempool::select`] skips a sender
//!   whose next transaction does not fit *now* instead of ending the block;
//! - each sender holds at most [`MempoolLimits::max_per_sender`]
//!   transactions and [`MempoolLimits::max_sender_bytes`] bytes, and the
//!   fees and escrows of its pending transactions must together fit its
//!   balance, so parking transactions at future nonces locks real funds;
//! - every transaction expires [`MempoolLimits::ttl_blocks`] blocks after it
//!   was admitted;
//! - when the pool is full, a newcomer evicts the lowest-ranked transaction
//!   (parked before ready, then by fee) only if it outranks it, and only a
//!   sender's last transaction is ever evicted, so no run is broken;
//! - results and failure reports of assigned executors live in a reserve of their own
//!   ([`MempoolLimits::max_results`]) that other transactions cannot fill,
//!   and blocks take them first.
//!
//! The pool does not check transactions against the ledger: callers do that
//! (`verity_ledger::Ledger::check_tx`) before [`Mempool::insert`].

use std::collections::{BTreeMap, HashMap, HashSet};
use verity_primitives::{codec::Canonical, Address, Amount, SignedTx, TxBody, B256};

/// Limits of the mempool.
#[derive(Clone, Debug)]
pub struct MempoolLimits {
    /// Transactions other than results.
    pub max_txs: usize,
    /// Bytes of transactions other than results.
    pub max_bytes: usize,
    /// Results of assigned executors (a separate reserve).
    pub max_results: usize,
    /// Bytes of results.
    pub max_result_bytes: usize,
    /// How far ahead of the account nonce a queued transaction may be.
    pub max_nonce_ahead: u64,
    /// Pending transactions per sender.
    pub max_per_sender: usize,
    /// Pending bytes per sender.
    pub max_sender_bytes: usize,
    /// Largest encoded transaction: anything larger could never be included
    /// in a block.
    pub max_tx_bytes: usize,
    /// Blocks after admission at which a pending transaction is dropped.
    pub ttl_blocks: u64,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        Self {
            max_txs: 10_000,
            max_bytes: 256 << 20,
            max_results: 4_096,
            max_result_bytes: 128 << 20,
            max_nonce_ahead: 64,
            max_per_sender: 64,
            max_sender_bytes: 48 << 20,
            max_tx_bytes: crate::application::MAX_TX_BYTES,
            ttl_blocks: 1_200,
        }
    }
}

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("transaction {0:#x} is already pending")]
    Duplicate(B256),
    #[error("another transaction with nonce {0} is already pending for this account")]
    NonceTaken(u64),
    #[error("transaction is {size} bytes; the largest that fits in a block is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("this account already has {count} pending transactions ({bytes} bytes); the limit is {max_count} ({max_bytes} bytes)")]
    SenderLimit {
        count: usize,
        bytes: usize,
        max_count: usize,
        max_bytes: usize,
    },
    #[error("pending transactions of this account need {need}, its balance is {have}")]
    PendingExceedsBalance { need: Amount, have: Amount },
    #[error("mempool is full and this transaction does not outrank any pending one")]
    Full,
}

/// What the caller knows about a transaction's sender and cost when it
/// admits it (from the ledger's state).
#[derive(Clone, Copy, Debug)]
pub struct Admission {
    /// The height the pool is at (the latest executed block).
    pub height: u64,
    pub account_nonce: u64,
    pub balance: Amount,
    /// What the transaction can take from the sender's balance (fee,
    /// escrow, transfer amount).
    pub cost: Amount,
    /// What it pays beyond what every transaction pays: its rank when the
    /// pool is full.
    pub priority: Amount,
}

#[derive(Clone, Debug)]
struct Entry {
    tx: SignedTx,
    size: usize,
    cost: Amount,
    priority: Amount,
    expires: u64,
    result: bool,
}

#[derive(Debug, Default)]
struct SenderQueue {
    txs: BTreeMap<u64, Entry>,
    bytes: usize,
    cost: Amount,
    /// The account nonce as last seen (at admission or pruning).
    account_nonce: u64,
}

/// Counts and bytes of one class of transactions.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    txs: usize,
    bytes: usize,
}

#[derive(Debug, Default)]
pub struct Mempool {
    by_sender: HashMap<Address, SenderQueue>,
    ids: HashSet<B256>,
    general: Usage,
    results: Usage,
    limits: MempoolLimits,
}

/// Results and failure reports: what an assigned executor posts to end a
/// request (they share the results' reserve).
fn is_result(tx: &SignedTx) -> bool {
    matches!(tx.tx.body, TxBody::Result(_) | TxBody::Failure(_))
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            limits,
            ..Default::default()
        }
    }

    pub fn limits(&self) -> &MempoolLimits {
        &self.limits
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Checks that need nothing but the transaction: it must fit in a block.
    pub fn check_size(&self, tx: &SignedTx) -> Result<usize, MempoolError> {
        let size = tx.encode().len();
        if size > self.limits.max_tx_bytes {
            return Err(MempoolError::TooLarge {
                size,
                limit: self.limits.max_tx_bytes,
            });
        }
        Ok(size)
    }

    /// Admits `tx`, evicting a lower-ranked transaction if the pool is full.
    pub fn insert(&mut self, tx: SignedTx, adm: Admission) -> Result<(), MempoolError> {
        let id = tx.id();
        if self.ids.contains(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        let size = self.check_size(&tx)?;
        let result = is_result(&tx);
        let (from, nonce) = (tx.tx.from, tx.tx.nonce);
        if let Some(q) = self.by_sender.get(&from) {
            if q.txs.contains_key(&nonce) {
                return Err(MempoolError::NonceTaken(nonce));
            }
            if q.txs.len() >= self.limits.max_per_sender
                || q.bytes + size > self.limits.max_sender_bytes
            {
                return Err(MempoolError::SenderLimit {
                    count: q.txs.len(),
                    bytes: q.bytes,
                    max_count: self.limits.max_per_sender,
                    max_bytes: self.limits.max_sender_bytes,
                });
            }
            let need = q.cost.saturating_add(adm.cost);
            if need > adm.balance {
                return Err(MempoolError::PendingExceedsBalance {
                    need,
                    have: adm.balance,
                });
            }
        }
        let ready = self.next_nonce(&from, adm.account_nonce) >= nonce;
        self.make_room(result, size, (ready, adm.priority), &from)?;
        let entry = Entry {
            tx,
            size,
            cost: adm.cost,
            priority: adm.priority,
            expires: adm.height.saturating_add(self.limits.ttl_blocks),
            result,
        };
        let q = self.by_sender.entry(from).or_default();
        q.account_nonce = adm.account_nonce;
        q.bytes += size;
        q.cost = q.cost.saturating_add(adm.cost);
        q.txs.insert(nonce, entry);
        self.ids.insert(id);
        let usage = self.usage_mut(result);
        usage.txs += 1;
        usage.bytes += size;
        Ok(())
    }

    fn usage_mut(&mut self, result: bool) -> &mut Usage {
        if result {
            &mut self.results
        } else {
            &mut self.general
        }
    }

    fn is_full(&self, result: bool, extra: usize) -> bool {
        let (u, max_txs, max_bytes) = if result {
            (
                self.results,
                self.limits.max_results,
                self.limits.max_result_bytes,
            )
        } else {
            (self.general, self.limits.max_txs, self.limits.max_bytes)
        };
        u.txs >= max_txs || u.bytes + extra > max_bytes
    }

    /// Evicts senders' last transactions of the same class, lowest rank
    /// first, until `size` more bytes fit, as long as each victim ranks
    /// below `rank`. Refuses without evicting anything if that cannot
    /// make room.
    fn make_room(
        &mut self,
        result: bool,
        size: usize,
        rank: (bool, Amount),
        from: &Address,
    ) -> Result<(), MempoolError> {
        if !self.is_full(result, size) {
            return Ok(());
        }
        // Rank every sender's tail (the only evictable entries).
        let mut tails: Vec<((bool, Amount), Address, u64, usize)> = self
            .by_sender
            .iter()
            .filter(|(a, _)| *a != from)
            .filter_map(|(a, q)| {
                let (n, e) = q.txs.last_key_value()?;
                // A tail is parked when a nonce before it is missing.
                let first = *q.txs.keys().next()?;
                let ready = first == q.account_nonce && (n - first) as usize + 1 == q.txs.len();
                (e.result == result).then_some(((ready, e.priority), *a, *n, e.size))
            })
            .collect();
        tails.sort();
        let mut freed = Usage::default();
        let mut victims = Vec::new();
        for (victim_rank, addr, nonce, vsize) in tails {
            if victim_rank >= rank {
                break;
            }
            victims.push((addr, nonce));
            freed.txs += 1;
            freed.bytes += vsize;
            let u = if result { self.results } else { self.general };
            let (max_txs, max_bytes) = if result {
                (self.limits.max_results, self.limits.max_result_bytes)
            } else {
                (self.limits.max_txs, self.limits.max_bytes)
            };
            if u.txs - freed.txs < max_txs && u.bytes - freed.bytes + size <= max_bytes {
                for (a, n) in victims {
                    self.remove_entry(&a, n);
                }
                return Ok(());
            }
        }
        Err(MempoolError::Full)
    }

    fn remove_entry(&mut self, from: &Address, nonce: u64) -> Option<SignedTx> {
        let q = self.by_sender.get_mut(from)?;
        let e = q.txs.remove(&nonce)?;
        q.bytes -= e.size;
        q.cost = q.cost.saturating_sub(e.cost);
        if q.txs.is_empty() {
            self.by_sender.remove(from);
        }
        self.ids.remove(&e.tx.id());
        let usage = self.usage_mut(e.result);
        usage.txs -= 1;
        usage.bytes -= e.size;
        Some(e.tx)
    }

    /// The next nonce a sender should use, given its account nonce.
    pub fn next_nonce(&self, from: &Address, account_nonce: u64) -> u64 {
        let mut n = account_nonce;
        if let Some(q) = self.by_sender.get(from) {
            while q.txs.contains_key(&n) {
                n += 1;
            }
        }
        n
    }

    /// Transactions for a block: per sender, consecutive nonces from the
    /// account nonce, within `max_bytes`. Senders whose next transaction is
    /// a result go first, then by the priority of their next transaction;
    /// a sender whose next transaction does not fit is skipped, and the
    /// block goes on with the others.
    pub fn select(
        &self,
        account_nonce: impl Fn(&Address) -> u64,
        max_bytes: usize,
    ) -> Vec<SignedTx> {
        let mut heads: Vec<(bool, Amount, Address, u64)> = self
            .by_sender
            .iter()
            .filter_map(|(a, q)| {
                let n = account_nonce(a);
                let e = q.txs.get(&n)?;
                Some((e.result, e.priority, *a, n))
            })
            .collect();
        heads.sort_by(|x, y| (y.0, y.1).cmp(&(x.0, x.1)).then(x.2.cmp(&y.2)));
        let mut out = Vec::new();
        let mut used = 0;
        for (_, _, from, mut n) in heads {
            let q = &self.by_sender[&from];
            while let Some(e) = q.txs.get(&n) {
                if used + e.size > max_bytes {
                    break;
                }
                used += e.size;
                out.push(e.tx.clone());
                n += 1;
            }
        }
        out
    }

    /// Drops transactions whose nonce is below the account nonce, and those
    /// that expired at or before `height`.
    pub fn prune(&mut self, height: u64, account_nonce: impl Fn(&Address) -> u64) {
        let mut drop = Vec::new();
        for (from, q) in self.by_sender.iter_mut() {
            let n = account_nonce(from);
            q.account_nonce = n;
            for (k, e) in &q.txs {
                if *k < n || e.expires <= height {
                    drop.push((*from, *k));
                }
            }
        }
        for (from, n) in drop {
            self.remove_entry(&from, n);
        }
    }

    /// Removes one transaction, if present.
    pub fn remove(&mut self, id: &B256, from: &Address, nonce: u64) {
        if !self.ids.contains(id) {
            return;
        }
        let matches = self
            .by_sender
            .get(from)
            .and_then(|q| q.txs.get(&nonce))
            .is_some_and(|e| e.tx.id() == *id);
        if matches {
            self.remove_entry(from, nonce);
        }
    }

    /// Senders with pending transactions.
    pub fn senders(&self) -> Vec<Address> {
        self.by_sender.keys().copied().collect()
    }

    pub fn contains(&self, id: &B256) -> bool {
        self.ids.contains(id)
    }
}

#[cfg(test)]
#[path = "mempool_tests.rs"]
mod tests;
