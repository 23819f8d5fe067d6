//! `verity devnet --validators 4` survives the crash of a validator: it
//! reports the exit, the other validators keep finalizing, and the one that
//! died is restarted and catches up. SIGTERM still stops every child.

use anyhow::{bail, Context, Result};
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use verity_testkit::Api;

/// Child process ids of `pid` (Linux: /proc/PID/task/*/children).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

/// The pid of the `verity node` child running from `node-{i}`.
fn node_pid(devnet: u32, i: usize) -> Option<u32> {
    let home = format!("node-{i}");
    children(devnet).into_iter().find(|p| {
        std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.iter().any(|a| *a == b"node")
                && args
                    .iter()
                    .any(|a| Path::new(std::str::from_utf8(a).unwrap_or("")).ends_with(&home))
        })
    })
}

fn alive(pid: u32) -> bool {
    // A zombie has exited: only a live process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn kill(sig: &str, pid: u32) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

/// Kills the devnet and whatever nodes it left, whatever the test's outcome.
struct Guard {
    devnet: Child,
    nodes: Vec<u32>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut pids = children(self.devnet.id());
        pids.extend(&self.nodes);
        let _ = self.devnet.kill();
        let _ = self.devnet.wait();
        for p in pids {
            if alive(p) {
                kill("-9", p);
            }
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

#[test]
fn devnet_reports_and_restarts_a_killed_validator() -> Result<()> {
    let n = 4;
    let dir = tempfile::tempdir()?;
    let api = verity_node::free_ports(2 * n as u16)?;
    let p2p = api + n as u16;
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_verity"))
        .args(["devnet", "--validators", &n.to_string()])
        .args([
            "--api-port",
            &api.to_string(),
            "--p2p-port",
            &p2p.to_string(),
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = devnet.stdout.take().context("stdout")?;
    let stderr = devnet.stderr.take().context("stderr")?;
    let mut g = Guard {
        devnet,
        nodes: Vec::new(),
    };
    let out = Arc::new(Mutex::new(String::new()));
    for pipe in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let out = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut o = out.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        });
    }
    let text = || out.lock().unwrap().clone();
    let apis: Vec<Api> = (0..n)
        .map(|i| Api::new(format!("http://127.0.0.1:{}", api + i as u16)))
        .collect();
    let t = Duration::from_secs(90);
    wait_for("the banner", t, || text().contains("Press Ctrl-C"))?;
    for a in &apis {
        a.wait_height(3, t)?;
    }
    let devnet_pid = g.devnet.id();
    g.nodes = (0..n).filter_map(|i| node_pid(devnet_pid, i)).collect();
    assert_eq!(g.nodes.len(), n, "node processes: {:?}", g.nodes);

    // kill -9 validator 2.
    let victim = node_pid(devnet_pid, 2).context("node 2's pid")?;
    kill("-9", victim);
    wait_for("the exit report", t, || text().contains("node 2 exited")).with_context(text)?;
    let report = text();
    assert!(
        report.contains("signal: 9") && report.contains("node-2/node.log"),
        "{report}"
    );
    assert!(
        g.devnet.try_wait()?.is_none(),
        "the devnet died with its validator:\n{}",
        text()
    );
    // The other three keep finalizing.
    let before = apis[0].height()?;
    for a in [&apis[0], &apis[1], &apis[3]] {
        a.wait_height(before + 5, t)?;
    }
    // Validator 2 is restarted, and catches up.
    wait_for("the restart report", t, || {
        text().contains("node 2 restarted")
    })
    .with_context(text)?;
    let again = node_pid(devnet_pid, 2).context("node 2 restarted")?;
    assert_ne!(again, victim);
    g.nodes.push(again);
    apis[2].wait_ready(t)?;
    let target = apis[0].height()?;
    apis[2].wait_height(target, t)?;
    assert!(g.devnet.try_wait()?.is_none(), "{}", text());

    // SIGTERM stops the devnet and every node.
    let nodes: Vec<u32> = (0..n).filter_map(|i| node_pid(devnet_pid, i)).collect();
    assert_eq!(nodes.len(), n);
    kill("-TERM", devnet_pid);
    wait_for("the devnet to stop", t, || {
        matches!(g.devnet.try_wait(), Ok(Some(_)))
    })?;
    wait_for("every node to stop", Duration::from_secs(10), || {
        nodes.iter().all(|p| !alive(*p))
    })
    .with_context(|| format!("nodes left running: {nodes:?}"))?;
    Ok(())
}
