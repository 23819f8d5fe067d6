//! Test harness: real `verity` node processes on loopback, with helpers to
//! kill (-9) and restart them, pick free ports, and call the HTTP API.
//!
//! Used only by tests; it must never be a dependency of the shipped binary.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use verity_primitives::PrivateKey;

pub mod faulty;
pub mod sim;

pub use verity_node::free_ports;

/// Serializes the tests of one test binary that start multi-validator
/// clusters: on a 2-core machine several 4-validator networks at once starve
/// each other's consensus timeouts. Hold the guard for the whole test.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A blocking HTTP client for one node.
#[derive(Clone, Debug)]
pub struct Api {
    pub url: String,
    http: reqwest::blocking::Client,
}

impl Api {
    pub fn new(url: impl Into<String>) -> Self {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client");
        Self {
            url: url.into(),
            http,
        }
    }

    /// GET; returns (status, JSON body).
    pub fn get(&self, path: &str) -> Result<(u16, Value)> {
        let r = self.http.get(format!("{}{path}", self.url)).send()?;
        let status = r.status().as_u16();
        Ok((status, r.json().unwrap_or(Value::Null)))
    }

    /// POST raw bytes with a content type; returns (status, JSON body).
    pub fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()?;
        let status = r.status().as_u16();
        Ok((status, r.json().unwrap_or(Value::Null)))
    }

    pub fn ok(&self, path: &str) -> Result<Value> {
        let (s, v) = self.get(path)?;
        if s != 200 {
            bail!("GET {path}: {s} {v}");
        }
        Ok(v)
    }

    /// Waits until the node answers `/v1/status`.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if matches!(self.get("/v1/status"), Ok((200, _))) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{} not ready after {timeout:?}", self.url)
    }

    /// Executed height.
    pub fn height(&self) -> Result<u64> {
        self.ok("/v1/status")?["executed_height"]
            .as_u64()
            .context("executed_height")
    }

    /// Waits until the executed height reaches `h`.
    pub fn wait_height(&self, h: u64, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.height().unwrap_or(0) >= h {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("{} did not reach height {h} in {timeout:?}", self.url);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn root_at(&self, h: u64) -> Result<String> {
        Ok(self.ok(&format!("/v1/roots/{h}"))?["root"]
            .as_str()
            .context("root")?
            .to_string())
    }
}

/// A devnet of N validator processes started from a layout written by
/// `verity devnet --init-only`.
pub struct Cluster {
    pub bin: PathBuf,
    pub dir: tempfile::TempDir,
    pub apis: Vec<Api>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    /// Writes the layout and starts every node.
    pub fn start(bin: &Path, validators: usize) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let api = free_ports(2 * validators as u16)?;
        let p2p = api + validators as u16;
        let st = Command::new(bin)
            .args([
                "devnet",
                "--init-only",
                "--validators",
                &validators.to_string(),
            ])
            .args([
                "--api-port",
                &api.to_string(),
                "--p2p-port",
                &p2p.to_string(),
                "--data-dir",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("devnet --init-only failed: {st}");
        }
        let apis = (0..validators)
            .map(|i| Api::new(format!("http://127.0.0.1:{}", api + i as u16)))
            .collect();
        let mut c = Self {
            bin: bin.to_path_buf(),
            dir,
            apis,
            children: (0..validators).map(|_| None).collect(),
        };
        for i in 0..validators {
            c.start_node(i)?;
        }
        for a in &c.apis {
            a.wait_ready(Duration::from_secs(60))?;
        }
        Ok(c)
    }

    pub fn home(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}"))
    }

    pub fn dev_key(&self) -> Result<PathBuf> {
        Ok(self.dir.path().join("dev-account.json"))
    }

    /// Reads the dev account's key (tests sign transactions with it).
    pub fn dev_account(&self) -> Result<PrivateKey> {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(self.dev_key()?)?)?;
        Ok(PrivateKey::from_hex(
            v["secret"].as_str().context("secret")?,
        )?)
    }

    pub fn start_node(&mut self, i: usize) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home(i).join("stderr.log"))?;
        let child = Command::new(&self.bin)
            .args(["node", "--home"])
            .arg(self.home(i))
            .arg("--network")
            .arg(self.dir.path().join("network.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// SIGKILL: no chance to flush or shut down cleanly.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        if let Some(mut c) = self.children[i].take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Runs a CLI command against node 0 with the dev key; returns
    /// (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> Result<(i32, String, String)> {
        let out = Command::new(&self.bin)
            .args(args)
            .env("VERITY_NODE", &self.apis[0].url)
            .env("VERITY_KEY", self.dev_key()?)
            .stdin(Stdio::null())
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            let _ = self.kill9(i);
        }
    }
}
