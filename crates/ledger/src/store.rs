//! redb storage: the state table (the only thing the root covers) plus
//! indexes and payloads that are derived from the same blocks and written in
//! the same transaction.

use crate::{Genesis, LedgerError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::path::Path;
use verity_primitives::{codec::keccak, merkle, B256};

pub(crate) const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
pub(crate) const INPUTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("inputs");
pub(crate) const OUTPUTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outputs");
pub(crate) const PROOFS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("proofs");
/// zk proof files of settled requests, by request id.
pub(crate) const ZK_PROOFS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("zk_proofs");
pub(crate) const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("txs");
pub(crate) const ROOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("roots");
pub(crate) const OPEN: TableDefinition<&[u8], u64> = TableDefinition::new("open");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const META_HEIGHT: &str = "height";
const META_GENESIS: &str = "genesis";
const STORAGE_VERSION: u8 = 1;

/// The ledger: a redb database holding the state and its indexes.
pub struct Ledger {
    pub(crate) db: Database,
    pub(crate) genesis: Genesis,
    pub(crate) zk: Option<std::sync::Arc<dyn crate::ZkVerifier>>,
    pub(crate) models: Option<std::sync::Arc<dyn crate::ModelOracle>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("chain_id", &self.genesis.chain_id)
            .finish()
    }
}

impl Ledger {
    /// Enables zk mode: proofs are checked with `zk`.
    pub fn with_zk(mut self, zk: std::sync::Arc<dyn crate::ZkVerifier>) -> Self {
        self.zk = Some(zk);
        self
    }

    /// Checks publishes against what `models` finds in their bytes, and
    /// stores those bytes through it before each block that publishes them
    /// commits. A node always sets it; without one, bytes are neither
    /// inspected nor stored (ledger unit tests).
    pub fn with_models(mut self, models: std::sync::Arc<dyn crate::ModelOracle>) -> Self {
        self.models = Some(models);
        self
    }

    /// Opens (or creates from `genesis`) the ledger at `path`. Refuses a
    /// database created from a different genesis.
    pub fn open(path: &Path, genesis: Genesis) -> Result<Self, LedgerError> {
        Self::open_database(
            Database::create(path)?,
            &path.display().to_string(),
            genesis,
        )
    }

    /// Opens (or creates) the ledger on a simulated disk (see
    /// [`crate::MemoryDisk`]): the deterministic simulation's storage.
    pub fn open_on(disk: &crate::MemoryDisk, genesis: Genesis) -> Result<Self, LedgerError> {
        let db = Database::builder().create_with_backend(disk.backend())?;
        Self::open_database(db, "memory disk", genesis)
    }

    fn open_database(db: Database, name: &str, genesis: Genesis) -> Result<Self, LedgerError> {
        let genesis_hash = {
            let mut b = vec![STORAGE_VERSION];
            b.extend_from_slice(
                keccak(&serde_json::to_vec(&genesis).expect("genesis serializes")).as_slice(),
            );
            b
        };
        let ledger = Self {
            db,
            genesis,
            zk: None,
            models: None,
        };
        let read = ledger.db.begin_read()?;
        let existing = match read.open_table(META) {
            Ok(t) => t.get(META_GENESIS)?.map(|v| v.value().to_vec()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        drop(read);
        match existing {
            Some(g) if g == genesis_hash => Ok(ledger),
            Some(_) => Err(LedgerError::Genesis(format!(
                "{name} was created from another genesis (or storage version)"
            ))),
            None => {
                let w = ledger.db.begin_write()?;
                // Create every table so that readers never find one missing.
                w.open_table(STATE)?;
                w.open_table(INPUTS)?;
                w.open_table(OUTPUTS)?;
                w.open_table(PROOFS)?;
                w.open_table(ZK_PROOFS)?;
                w.open_table(TXS)?;
                w.open_table(OPEN)?;
                w.open_table(ROOTS)?;
                crate::apply::init_genesis(&w, &ledger.genesis)?;
                {
                    let mut meta = w.open_table(META)?;
                    meta.insert(META_GENESIS, genesis_hash.as_slice())?;
                    meta.insert(META_HEIGHT, 0u64.to_le_bytes().as_slice())?;
                }
                let root = compute_root(&w)?.0;
                w.open_table(ROOTS)?.insert(0, root.as_slice())?;
                w.commit()?;
                Ok(ledger)
            }
        }
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub fn chain_id(&self) -> u64 {
        self.genesis.chain_id
    }

    /// The last executed height (0 = genesis).
    pub fn height(&self) -> Result<u64, LedgerError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        read_height(&t)
    }

    /// The state root after executing `height`.
    pub fn root_at(&self, height: u64) -> Result<Option<B256>, LedgerError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(ROOTS)?;
        Ok(t.get(height)?.map(|v| B256::from_slice(v.value())))
    }
}

pub(crate) fn read_height(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<u64, LedgerError> {
    let v = t
        .get(META_HEIGHT)?
        .ok_or_else(|| LedgerError::Corrupt("no height".into()))?;
    let b: [u8; 8] = v
        .value()
        .try_into()
        .map_err(|_| LedgerError::Corrupt("height".into()))?;
    Ok(u64::from_le_bytes(b))
}

pub(crate) fn write_height(w: &WriteTransaction, h: u64) -> Result<(), LedgerError> {
    w.open_table(META)?
        .insert(META_HEIGHT, h.to_le_bytes().as_slice())?;
    Ok(())
}

/// A state root with the sorted leaf hashes and keys it was built from.
pub(crate) type RootPass = (B256, Vec<B256>, Vec<Vec<u8>>);

/// Root over the whole state table, plus the sorted leaf hashes and keys
/// (so proofs for new entries can be cut from the same pass).
pub(crate) fn compute_root(w: &WriteTransaction) -> Result<RootPass, LedgerError> {
    let t = w.open_table(STATE)?;
    let mut leaves = Vec::new();
    let mut keys = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        leaves.push(merkle::leaf_hash(k.value(), v.value()));
        keys.push(k.value().to_vec());
    }
    Ok((merkle::root(&leaves), leaves, keys))
}
