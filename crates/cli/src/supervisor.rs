//! The validator processes of `verity devnet --validators N`: each exit is
//! reported (which node, its status, its logs), the others keep running, and
//! the node that exited is restarted with backoff, until it fails too often
//! right after starting. Ctrl-C / SIGTERM stops them all.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// When and how often a node that exited is started again.
#[derive(Clone, Debug)]
pub struct RestartPolicy {
    /// A node that exits sooner than this after starting failed quickly.
    pub quick: Duration,
    /// Give up on a node after this many quick failures in a row.
    pub max_quick_failures: u32,
    /// Delay before the first restart; doubled after each quick failure.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            quick: Duration::from_secs(30),
            max_quick_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RestartPolicy {
    /// Delay before restarting a node that has just failed quickly
    /// `failures` times in a row (0: it ran a while first), or `None` to
    /// give up on it.
    pub fn delay(&self, failures: u32) -> Option<Duration> {
        if failures >= self.max_quick_failures {
            return None;
        }
        Some((self.base_delay * (1u32 << failures.min(16))).min(self.max_delay))
    }
}

/// Sets a flag on Ctrl-C or SIGTERM. The handlers are installed before this
/// returns, so no signal can take the process down before its children.
pub fn install_shutdown() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let f = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{signal, SignalKind};
                    let (mut term, mut int) = match (
                        signal(SignalKind::terminate()),
                        signal(SignalKind::interrupt()),
                    ) {
                        (Ok(t), Ok(i)) => (t, i),
                        (Err(e), _) | (_, Err(e)) => {
                            let _ = tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(()));
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                #[cfg(not(unix))]
                {
                    let _ = tx.send(Ok(()));
                    let _ = tokio::signal::ctrl_c().await;
                }
            });
            f.store(true, Ordering::SeqCst);
        })?;
    rx.recv()
        .context("signal thread")?
        .map_err(|e| anyhow::anyhow!("installing signal handlers: {e}"))?;
    Ok(flag)
}

struct Slot {
    home: PathBuf,
    child: Option<Child>,
    started: Instant,
    /// Exits within `RestartPolicy::quick` of starting, in a row.
    failures: u32,
    restarts: u32,
    restart_at: Option<Instant>,
    gave_up: bool,
}

/// N `verity node` processes of one network.
pub struct Supervisor {
    exe: PathBuf,
    network: PathBuf,
    policy: RestartPolicy,
    json: bool,
    slots: Vec<Slot>,
}

fn describe(st: &ExitStatus) -> (String, Option<i32>, Option<i32>) {
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(st);
    #[cfg(not(unix))]
    let signal = None;
    (st.to_string(), st.code(), signal)
}

impl Supervisor {
    pub fn new(exe: PathBuf, network: PathBuf, homes: Vec<PathBuf>, json: bool) -> Self {
        let slots = homes
            .into_iter()
            .map(|home| Slot {
                home,
                child: None,
                started: Instant::now(),
                failures: 0,
                restarts: 0,
                restart_at: None,
                gave_up: false,
            })
            .collect();
        Self {
            exe,
            network,
            policy: RestartPolicy::default(),
            json,
            slots,
        }
    }

    /// Process ids of the running nodes (`None` while one is down).
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.slots
            .iter()
            .map(|s| s.child.as_ref().map(Child::id))
            .collect()
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let s = &mut self.slots[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(s.home.join("stderr.log"))
            .with_context(|| format!("opening {}/stderr.log", s.home.display()))?;
        let child = Command::new(&self.exe)
            .args(["node", "--home"])
            .arg(&s.home)
            .arg("--network")
            .arg(&self.network)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {i}"))?;
        s.child = Some(child);
        s.started = Instant::now();
        s.restart_at = None;
        Ok(())
    }

    pub fn start_all(&mut self) -> Result<()> {
        (0..self.slots.len()).try_for_each(|i| self.spawn(i))
    }

    fn event(&self, v: serde_json::Value, human: String) {
        if self.json {
            println!("{v}");
        } else {
            println!("{human}");
        }
    }

    /// Reports exits and restarts nodes whose delay is over. Fails when
    /// every node has been given up on.
    pub fn poll(&mut self) -> Result<()> {
        for i in 0..self.slots.len() {
            let exited = match self.slots[i].child.as_mut() {
                Some(c) => c.try_wait()?,
                None => None,
            };
            if let Some(st) = exited {
                self.on_exit(i, &st);
            }
            let due = self.slots[i]
                .restart_at
                .is_some_and(|t| Instant::now() >= t);
            if due {
                self.slots[i].restarts += 1;
                if let Err(e) = self.spawn(i) {
                    self.slots[i].gave_up = true;
                    self.event(
                        json!({"event": "node_gave_up", "node": i, "error": format!("{e:#}")}),
                        format!("node {i} could not be restarted: {e:#}; not restarting it"),
                    );
                    continue;
                }
                let pid = self.slots[i].child.as_ref().map(Child::id);
                let n = self.slots[i].restarts;
                self.event(
                    json!({"event": "node_restarted", "node": i, "pid": pid, "restart": n}),
                    format!(
                        "node {i} restarted (pid {}, restart {n})",
                        pid.unwrap_or_default()
                    ),
                );
            }
        }
        if self.slots.iter().all(|s| s.gave_up) {
            bail!("every node failed repeatedly; see the node-*/node.log and stderr.log files");
        }
        Ok(())
    }

    fn on_exit(&mut self, i: usize, st: &ExitStatus) {
        let policy = self.policy.clone();
        let s = &mut self.slots[i];
        s.child = None;
        let ran = s.started.elapsed();
        if ran < policy.quick {
            s.failures += 1;
        } else {
            s.failures = 0;
        }
        let delay = policy.delay(s.failures);
        let (status, code, signal) = describe(st);
        let log = s.home.join("node.log");
        let stderr = s.home.join("stderr.log");
        let next = match delay {
            Some(d) => {
                s.restart_at = Some(Instant::now() + d);
                format!("restarting in {}s", d.as_secs_f64())
            }
            None => {
                s.gave_up = true;
                format!(
                    "it exited within {}s of starting {} times in a row: not restarting it; \
                     the other nodes keep running",
                    policy.quick.as_secs(),
                    s.failures
                )
            }
        };
        let v = json!({"event": "node_exited", "node": i, "status": status, "exit_code": code,
            "signal": signal, "ran_ms": ran.as_millis() as u64, "log": log, "stderr_log": stderr,
            "restart_in_ms": delay.map(|d| d.as_millis() as u64), "gave_up": delay.is_none()});
        self.event(
            v,
            format!(
                "node {i} exited ({status}) after {:.0}s; log: {}, stderr: {}; {next}",
                ran.as_secs_f64(),
                log.display(),
                stderr.display()
            ),
        );
    }

    /// SIGTERM to every node, then SIGKILL to those still running after a
    /// grace period.
    pub fn stop_all(&mut self) {
        let mut running: Vec<Child> = self
            .slots
            .iter_mut()
            .filter_map(|s| s.child.take())
            .collect();
        #[cfg(unix)]
        for c in &running {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            running.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
            if running.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for c in &mut running {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs until `stop` is set: polls the nodes, and calls `on_ready` once
/// every API in `apis` answers (failing if they do not within `startup`).
pub fn run(
    sup: &mut Supervisor,
    stop: &AtomicBool,
    apis: &[String],
    startup: Duration,
    on_ready: impl FnOnce(&Supervisor),
) -> Result<()> {
    let clients = apis
        .iter()
        .map(|u| crate::client::Client::new(u))
        .collect::<Result<Vec<_>>>()?;
    let mut on_ready = Some(on_ready);
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        sup.poll()?;
        if on_ready.is_some() {
            if clients.iter().all(|c| c.get("/v1/status").is_ok()) {
                (on_ready.take().expect("once"))(sup);
            } else if started.elapsed() > startup {
                return Err(crate::client::CliError::Timeout(format!(
                    "the nodes did not all start within {startup:?}"
                ))
                .into());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// The home directory of node `i` of the devnet in `dir`.
pub fn home(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node-{i}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_and_give_up_after_repeated_quick_failures() {
        let p = RestartPolicy::default();
        let delays: Vec<Option<u64>> = (0..6).map(|f| p.delay(f).map(|d| d.as_secs())).collect();
        assert_eq!(
            delays,
            vec![Some(1), Some(2), Some(4), Some(8), Some(16), None]
        );
        let p = RestartPolicy {
            max_quick_failures: 10,
            ..p
        };
        assert_eq!(p.delay(7), Some(Duration::from_secs(30)));
    }
}
