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
    #[error("model {id}: {local}, and fetching it from peers failed: {reason}")]
    Refetch {
        id: ModelId,
        local: String,
        reason: String,
    },
    #[error("hub i/o at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Somewhere else a model's bytes can be had by id (other nodes). What it
/// returns is checked against the id before it is stored or served.
pub trait ModelSource: Send + Sync {
    fn fetch(&self, id: &ModelId) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;
}

/// A content-addressed directory of model files.
#[derive(Clone)]
pub struct Hub {
    dir: PathBuf,
    source: Option<std::sync::Arc<dyn ModelSource>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("dir", &self.dir).finish()
    }
}

impl Hub {
    /// Opens (creating if needed) the store at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, HubError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| HubError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir, source: None })
    }

    /// Refetches a missing or corrupt model from `source` on read.
    pub fn with_source(mut self, source: std::sync::Arc<dyn ModelSource>) -> Self {
        self.source = Some(source);
        self
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
        if path.exists() && self.get_local(&id).is_ok() {
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

    /// Reads a model and checks it against its id; a missing or corrupt
    /// copy is fetched again from the source (other nodes), checked against
    /// the id, and stored.
    pub fn get(&self, id: &ModelId) -> Result<Vec<u8>, HubError> {
        let local = self.get_local(id);
        let (Err(err @ (HubError::NotFound(_) | HubError::Corrupt { .. })), Some(source)) =
            (&local, &self.source)
        else {
            return local;
        };
        match source.fetch(id) {
            Ok(bytes) if ModelId::of_bytes(&bytes) == *id => {
                self.put(&bytes)?;
                Ok(bytes)
            }
            Ok(bytes) => Err(HubError::Refetch {
                id: *id,
                local: err.to_string(),
                reason: format!("peers sent bytes of model {}", ModelId::of_bytes(&bytes)),
            }),
            Err(e) => Err(HubError::Refetch {
                id: *id,
                local: err.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Reads a model from this store only (checked against its id), never
    /// from peers: what this node serves to other nodes, so that two nodes
    /// lacking a model never ask each other in a loop.
    pub fn get_local(&self, id: &ModelId) -> Result<Vec<u8>, HubError> {
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

    /// Serves fixed bytes for any id.
    struct Peer(Vec<u8>);
    impl ModelSource for Peer {
        fn fetch(
            &self,
            _id: &ModelId,
        ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn missing_or_corrupt_models_are_refetched_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let plain = Hub::open(d.path()).unwrap();
        let id = plain.put(b"model").unwrap();
        let hub = plain
            .clone()
            .with_source(std::sync::Arc::new(Peer(b"model".to_vec())));
        fs::remove_file(hub.path(&id)).unwrap();
        assert!(matches!(plain.get(&id), Err(HubError::NotFound(_))));
        assert_eq!(hub.get(&id).unwrap(), b"model", "refetched");
        assert_eq!(plain.get(&id).unwrap(), b"model", "and stored again");
        fs::write(hub.path(&id), b"tampered").unwrap();
        assert_eq!(
            hub.get(&id).unwrap(),
            b"model",
            "a corrupt copy is replaced"
        );
        // A peer serving other bytes is not believed.
        let liar = plain.with_source(std::sync::Arc::new(Peer(b"other".to_vec())));
        fs::remove_file(liar.path(&id)).unwrap();
        let e = liar.get(&id).unwrap_err();
        assert!(matches!(e, HubError::Refetch { .. }), "{e}");
        assert!(!liar.contains(&id));
    }
}
