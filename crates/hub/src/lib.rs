//! The Model Hub's local store: ONNX files kept on disk under their content
//! id (CIDv1, sha2-256), written atomically and checked against their id on
//! every read, so a corrupted or swapped file is never served.
//!
//! Model bytes reach every node inside the publish transaction, and each
//! node stores them here when the block is final. This crate must not know
//! about consensus or the ledger; manifests live in the ledger state.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};
use thiserror::Error;
use verity_primitives::ModelId;

#[derive(Debug, Error)]
pub enum HubError {
    #[error("model {0} is not in the hub")]
    NotFound(ModelId),
    #[error("model {id} on disk is corrupt (its bytes hash to {actual})")]
    Corrupt { id: ModelId, actual: ModelId },
    #[error("hub i/o at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A content-addressed directory of model files.
#[derive(Clone, Debug)]
pub struct Hub {
    dir: PathBuf,
}

impl Hub {
    /// Opens (creating if needed) the store at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, HubError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| HubError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    fn path(&self, id: &ModelId) -> PathBuf {
        self.dir.join(format!("{id}.onnx"))
    }

    pub fn contains(&self, id: &ModelId) -> bool {
        self.path(id).exists()
    }

    /// Stores `bytes` and returns their id, durably: the file and the
    /// directory entry are synced before it returns. Idempotent; a corrupt
    /// copy already on disk is replaced.
    pub fn put(&self, bytes: &[u8]) -> Result<ModelId, HubError> {
        let id = ModelId::of_bytes(bytes);
        let path = self.path(&id);
        if path.exists() && self.get(&id).is_ok() {
            return Ok(id);
        }
        let io = |source| HubError::Io {
            path: path.clone(),
            source,
        };
        let tmp = self.dir.join(format!(".{id}.tmp"));
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)?;
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(id)
    }

    /// Reads a model and checks it against its id.
    pub fn get(&self, id: &ModelId) -> Result<Vec<u8>, HubError> {
        let path = self.path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HubError::NotFound(*id))
            }
            Err(source) => return Err(HubError::Io { path, source }),
        };
        let actual = ModelId::of_bytes(&bytes);
        if actual != *id {
            return Err(HubError::Corrupt { id: *id, actual });
        }
        Ok(bytes)
    }

    /// The directory backing the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_detect_corruption() {
        let d = tempfile::tempdir().unwrap();
        let hub = Hub::open(d.path()).unwrap();
        let id = hub.put(b"onnx bytes").unwrap();
        assert_eq!(hub.put(b"onnx bytes").unwrap(), id);
        assert_eq!(hub.get(&id).unwrap(), b"onnx bytes");
        let other = ModelId::of_bytes(b"missing");
        assert!(matches!(hub.get(&other), Err(HubError::NotFound(_))));
        fs::write(hub.path(&id), b"tampered").unwrap();
        assert!(matches!(hub.get(&id), Err(HubError::Corrupt { .. })));
        // Storing the model again repairs the corrupt copy.
        assert_eq!(hub.put(b"onnx bytes").unwrap(), id);
        assert_eq!(hub.get(&id).unwrap(), b"onnx bytes");
    }
}
