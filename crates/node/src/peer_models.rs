//! Fetching a model's bytes from other validators' APIs
//! (`GET /v1/models/{id}/onnx`), for the Hub to refetch a missing or corrupt
//! copy. The Hub checks what comes back against the model id, so a peer
//! can delay a refetch but never change a model.

use std::time::Duration;
use verity_hub::ModelSource;
use verity_primitives::ModelId;

/// Other validators' API base URLs, tried in order.
#[derive(Clone, Debug)]
pub struct PeerModels {
    pub urls: Vec<String>,
    /// Largest model accepted (the network's publish limit).
    pub max_bytes: u64,
}

/// How long one peer may take to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {size} bytes is over the limit of {limit}")]
    TooLarge { url: String, size: u64, limit: u64 },
    #[error("no peer has it ({0})")]
    Nowhere(String),
}

impl PeerModels {
    fn fetch_one(&self, base: &str, id: &ModelId) -> Result<Vec<u8>, FetchError> {
        let url = format!("{base}/v1/models/{id}/onnx");
        let http = |source| FetchError::Http {
            url: url.clone(),
            source,
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(PEER_TIMEOUT)
            .build()
            .map_err(http)?;
        let resp = client.get(&url).send().map_err(http)?;
        if !resp.status().is_success() {
            return Err(FetchError::Status {
                url,
                status: resp.status().as_u16(),
            });
        }
        if let Some(size) = resp.content_length().filter(|s| *s > self.max_bytes) {
            return Err(FetchError::TooLarge {
                url,
                size,
                limit: self.max_bytes,
            });
        }
        let bytes = resp.bytes().map_err(http)?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(FetchError::TooLarge {
                url,
                size: bytes.len() as u64,
                limit: self.max_bytes,
            });
        }
        Ok(bytes.to_vec())
    }
}

impl ModelSource for PeerModels {
    fn fetch(&self, id: &ModelId) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        // The blocking client must not run on an async runtime's thread
        // (the Hub is read from block execution and from the executor), so
        // the requests run on a thread of their own.
        let this = self.clone();
        let id = *id;
        let result = std::thread::spawn(move || {
            let mut errors = Vec::new();
            for base in &this.urls {
                match this.fetch_one(base, &id) {
                    Ok(bytes) if ModelId::of_bytes(&bytes) == id => return Ok(bytes),
                    Ok(_) => errors.push(format!("{base}: other bytes")),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            Err(FetchError::Nowhere(errors.join("; ")))
        })
        .join()
        .map_err(|_| "the fetch thread panicked")?;
        Ok(result?)
    }
}
