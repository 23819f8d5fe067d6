//! HTTP client for the node API, with errors that keep the API's code.

use anyhow::Result;
use serde_json::Value;
use std::time::Duration;

/// An error the CLI maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("no node answers at {url}: {reason}\n(start one with `verity devnet`, or point --node / VERITY_NODE at a running node)")]
    Unreachable { url: String, reason: String },
    #[error("node refused the request ({status}, {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    #[error("verification failed: {0}")]
    Verify(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Refused(String),
    /// A missing or unusable argument (exit 2, like clap's own usage errors).
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// Exit codes: 2 usage, 3 unreachable, 4 rejected, 5 verification failed, 6 timeout.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Unreachable { .. } => 3,
            CliError::Rejected { .. } => 4,
            CliError::Verify(_) => 5,
            CliError::Timeout(_) => 6,
            CliError::Refused(_) => 4,
            CliError::Usage(_) => 2,
        }
    }
}

pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new(base: &str) -> Result<Self> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(330))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    fn handle(&self, r: reqwest::Result<reqwest::blocking::Response>) -> Result<Value> {
        let resp = r.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_client_error() || status.is_server_error() {
            let code = v["error"]["code"].as_str().unwrap_or("unknown").to_string();
            let message = v["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            return Err(CliError::Rejected {
                status: status.as_u16(),
                code,
                message,
            }
            .into());
        }
        Ok(v)
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.handle(self.http.get(format!("{}{path}", self.base)).send())
    }

    pub fn post_bytes(&self, path: &str, body: Vec<u8>) -> Result<Value> {
        self.handle(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/octet-stream")
                .body(body)
                .send(),
        )
    }
}
