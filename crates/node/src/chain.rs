//! The node's record of finalized blocks: headers, the certificates it holds
//! and which block first claimed each state height. Receipt bundles are cut
//! from it.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use verity_primitives::{codec::Canonical, BlockHeader};

const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers");
const CERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("certs");
const CLAIMS: TableDefinition<u64, u64> = TableDefinition::new("claims");

/// Errors of the chain store.
#[derive(Debug, thiserror::Error)]
#[error("chain store: {0}")]
pub struct ChainError(pub String);

fn err(e: impl std::fmt::Display) -> ChainError {
    ChainError(e.to_string())
}

/// Headers from a claiming block to a certified one, and the certificate.
pub type CertifiedHeaders = (Vec<BlockHeader>, Vec<u8>);

/// Finalized headers and certificates on redb.
pub struct ChainStore {
    db: Database,
}

impl std::fmt::Debug for ChainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainStore")
    }
}

impl ChainStore {
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        Self::init(Database::create(path).map_err(err)?)
    }

    /// Opens (or creates) the store on a simulated disk.
    pub fn open_on(disk: &verity_ledger::MemoryDisk) -> Result<Self, ChainError> {
        Self::init(
            Database::builder()
                .create_with_backend(disk.backend())
                .map_err(err)?,
        )
    }

    fn init(db: Database) -> Result<Self, ChainError> {
        let w = db.begin_write().map_err(err)?;
        w.open_table(HEADERS).map_err(err)?;
        w.open_table(CERTS).map_err(err)?;
        w.open_table(CLAIMS).map_err(err)?;
        w.commit().map_err(err)?;
        Ok(Self { db })
    }

    /// Records a finalized block (idempotent).
    pub fn record(&self, header: &BlockHeader, cert: Option<&[u8]>) -> Result<(), ChainError> {
        let w = self.db.begin_write().map_err(err)?;
        {
            w.open_table(HEADERS)
                .map_err(err)?
                .insert(header.height, header.encode().as_slice())
                .map_err(err)?;
            if let Some(c) = cert {
                w.open_table(CERTS)
                    .map_err(err)?
                    .insert(header.height, c)
                    .map_err(err)?;
            }
            let mut claims = w.open_table(CLAIMS).map_err(err)?;
            let existing = claims
                .get(header.claim.height)
                .map_err(err)?
                .map(|v| v.value());
            if existing.is_none_or(|h| h > header.height) {
                claims
                    .insert(header.claim.height, header.height)
                    .map_err(err)?;
            }
        }
        w.commit().map_err(err)
    }

    /// Highest recorded finalized height (0 when none).
    pub fn finalized_height(&self) -> Result<u64, ChainError> {
        let r = self.db.begin_read().map_err(err)?;
        let t = r.open_table(HEADERS).map_err(err)?;
        let last = t.last().map_err(err)?.map(|(k, _)| k.value()).unwrap_or(0);
        Ok(last)
    }

    pub fn header(&self, height: u64) -> Result<Option<BlockHeader>, ChainError> {
        let r = self.db.begin_read().map_err(err)?;
        let t = r.open_table(HEADERS).map_err(err)?;
        t.get(height)
            .map_err(err)?
            .map(|v| BlockHeader::decode(v.value()).map_err(err))
            .transpose()
    }

    /// Headers from the first block claiming `state_height` up to the first
    /// certified block at or after it, with that certificate.
    pub fn certified_claim(
        &self,
        state_height: u64,
    ) -> Result<Option<CertifiedHeaders>, ChainError> {
        let r = self.db.begin_read().map_err(err)?;
        let claims = r.open_table(CLAIMS).map_err(err)?;
        let Some(first) = claims.get(state_height).map_err(err)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let headers_t = r.open_table(HEADERS).map_err(err)?;
        let certs = r.open_table(CERTS).map_err(err)?;
        let mut headers = Vec::new();
        for h in first.. {
            let Some(v) = headers_t.get(h).map_err(err)? else {
                return Ok(None);
            };
            headers.push(BlockHeader::decode(v.value()).map_err(err)?);
            if let Some(c) = certs.get(h).map_err(err)? {
                return Ok(Some((headers, c.value().to_vec())));
            }
            if headers.len() > 1024 {
                return Ok(None);
            }
        }
        Ok(None)
    }
}
