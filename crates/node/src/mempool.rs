//! Pending transactions, ordered per sender by nonce. Blocks take, for each
//! sender, the run of consecutive nonces starting at the account's nonce.

use std::collections::{BTreeMap, HashSet};
use verity_primitives::{codec::Canonical, Address, SignedTx, B256};

/// Limits of the mempool.
#[derive(Clone, Debug)]
pub struct MempoolLimits {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// How far ahead of the account nonce a queued transaction may be.
    pub max_nonce_ahead: u64,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        Self {
            max_txs: 10_000,
            max_bytes: 256 << 20,
            max_nonce_ahead: 64,
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
    #[error("mempool is full")]
    Full,
}

#[derive(Debug, Default)]
pub struct Mempool {
    by_sender: BTreeMap<Address, BTreeMap<u64, (SignedTx, usize)>>,
    ids: HashSet<B256>,
    bytes: usize,
    limits: MempoolLimits,
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

    pub fn insert(&mut self, tx: SignedTx) -> Result<(), MempoolError> {
        let id = tx.id();
        if self.ids.contains(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        let size = tx.encode().len();
        if self.ids.len() >= self.limits.max_txs || self.bytes + size > self.limits.max_bytes {
            return Err(MempoolError::Full);
        }
        let queue = self.by_sender.entry(tx.tx.from).or_default();
        if queue.contains_key(&tx.tx.nonce) {
            return Err(MempoolError::NonceTaken(tx.tx.nonce));
        }
        queue.insert(tx.tx.nonce, (tx, size));
        self.ids.insert(id);
        self.bytes += size;
        Ok(())
    }

    /// The next nonce a sender should use, given its account nonce.
    pub fn next_nonce(&self, from: &Address, account_nonce: u64) -> u64 {
        let mut n = account_nonce;
        if let Some(q) = self.by_sender.get(from) {
            while q.contains_key(&n) {
                n += 1;
            }
        }
        n
    }

    /// Transactions for a block: per sender, consecutive nonces from the
    /// account nonce, within `max_bytes`.
    pub fn select(
        &self,
        account_nonce: impl Fn(&Address) -> u64,
        max_bytes: usize,
    ) -> Vec<SignedTx> {
        let mut out = Vec::new();
        let mut used = 0;
        for (from, q) in &self.by_sender {
            let mut n = account_nonce(from);
            while let Some((tx, size)) = q.get(&n) {
                if used + size > max_bytes {
                    return out;
                }
                used += size;
                out.push(tx.clone());
                n += 1;
            }
        }
        out
    }

    /// Drops transactions whose nonce is below the account nonce.
    pub fn prune(&mut self, account_nonce: impl Fn(&Address) -> u64) {
        let mut bytes = self.bytes;
        let ids = &mut self.ids;
        self.by_sender.retain(|from, q| {
            let n = account_nonce(from);
            let stale: Vec<u64> = q.range(..n).map(|(k, _)| *k).collect();
            for k in stale {
                if let Some((tx, size)) = q.remove(&k) {
                    ids.remove(&tx.id());
                    bytes -= size;
                }
            }
            !q.is_empty()
        });
        self.bytes = bytes;
    }

    /// Removes one transaction, if present.
    pub fn remove(&mut self, id: &B256, from: &Address, nonce: u64) {
        if !self.ids.contains(id) {
            return;
        }
        if let Some(q) = self.by_sender.get_mut(from) {
            if q.get(&nonce).is_some_and(|(t, _)| t.id() == *id) {
                if let Some((_, size)) = q.remove(&nonce) {
                    self.bytes -= size;
                    self.ids.remove(id);
                }
            }
            if q.is_empty() {
                self.by_sender.remove(from);
            }
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
mod tests {
    use super::*;
    use verity_primitives::{PrivateKey, Tx, TxBody};

    fn tx(k: &PrivateKey, nonce: u64) -> SignedTx {
        Tx {
            chain_id: 1,
            from: k.address(),
            nonce,
            body: TxBody::Transfer {
                to: Address::ZERO,
                amount: 1,
            },
        }
        .sign(k)
    }

    #[test]
    fn selects_consecutive_nonces_and_prunes() {
        let (a, b) = (
            PrivateKey::from_dev_seed("a"),
            PrivateKey::from_dev_seed("b"),
        );
        let mut m = Mempool::new(MempoolLimits::default());
        for n in [0, 1, 3] {
            m.insert(tx(&a, n)).unwrap();
        }
        m.insert(tx(&b, 5)).unwrap();
        assert_eq!(
            m.insert(tx(&a, 0)),
            Err(MempoolError::Duplicate(tx(&a, 0).id()))
        );
        assert_eq!(m.next_nonce(&a.address(), 0), 2);
        // a: 0,1 (3 waits for 2); b: its account nonce is 5.
        let nonce = |x: &Address| if *x == b.address() { 5 } else { 0 };
        let picked: Vec<u64> = m
            .select(nonce, usize::MAX)
            .iter()
            .map(|t| t.tx.nonce)
            .collect();
        assert_eq!(picked.len(), 3, "{picked:?}");
        assert!(m.select(nonce, 10).is_empty(), "byte limit respected");
        m.prune(|x| if *x == a.address() { 2 } else { 6 });
        assert_eq!(m.len(), 1);
        assert_eq!(m.next_nonce(&a.address(), 2), 2);
    }

    #[test]
    fn full_pool_refuses() {
        let a = PrivateKey::from_dev_seed("a");
        let mut m = Mempool::new(MempoolLimits {
            max_txs: 1,
            ..Default::default()
        });
        m.insert(tx(&a, 0)).unwrap();
        assert_eq!(m.insert(tx(&a, 1)), Err(MempoolError::Full));
    }
}
