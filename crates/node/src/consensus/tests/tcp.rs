//! Four validators over real loopback TCP on the tokio runtime, each started
//! from key files. Validator 0 runs in a child process and is killed with
//! SIGKILL; the rest keep finalizing; validator 0 is restarted from its
//! directory, resumes from storage and catches up.

use super::{assert_same_chain, TestApp};
use crate::consensus::{
    dev_genesis, peers_from_json, peers_to_json, start, NetworkIdentity, ValidatorConfig,
    ValidatorKeys,
};
use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const CHAIN: &str = "verity-tcp";
const CHILD_ENV: &str = "VERITY_CONSENSUS_TEST_CHILD_DIR";
const CHILD_TEST: &str = "consensus::tests::tcp::child_validator_process";

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// The files a CLI would write for one node.
fn write_node_files(
    dir: &Path,
    keys: &ValidatorKeys,
    network: &NetworkIdentity,
    peers: &[(crate::consensus::PublicKey, SocketAddr)],
    listen: SocketAddr,
) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("keys.json"), keys.to_json()).expect("write");
    std::fs::write(dir.join("network.json"), network.to_json()).expect("write");
    std::fs::write(dir.join("peers.json"), peers_to_json(peers)).expect("write");
    std::fs::write(dir.join("listen"), listen.to_string()).expect("write");
}

fn config_from_files(dir: &Path) -> ValidatorConfig {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("read");
    let keys = ValidatorKeys::from_json(&read("keys.json")).expect("keys");
    let network = NetworkIdentity::from_json(&read("network.json")).expect("network");
    let peers = peers_from_json(&read("peers.json")).expect("peers");
    let listen: SocketAddr = read("listen").trim().parse().expect("listen");
    let mut cfg = ValidatorConfig::new(dir, CHAIN, keys, network, peers, listen);
    cfg.worker_threads = 1;
    cfg
}

/// Not a test on its own: the kill test runs it in a child process.
#[test]
#[ignore = "helper run as a child process by tcp_validators_survive_kill_and_restart"]
fn child_validator_process() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let service = start(config_from_files(Path::new(&dir)), TestApp::default()).expect("start");
    // Run until SIGKILLed by the parent (bounded in case the parent died).
    std::thread::sleep(Duration::from_secs(120));
    service.stop();
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tcp_validators_survive_kill_and_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let (keys, network) = dev_genesis(4, 42);
    let ports = free_ports(4);
    let peers: Vec<_> = keys
        .iter()
        .zip(&ports)
        .map(|(k, p)| (k.public_key(), SocketAddr::from(([127, 0, 0, 1], *p))))
        .collect();
    let dirs: Vec<PathBuf> = (0..4)
        .map(|i| root.path().join(format!("node{i}")))
        .collect();
    for (i, dir) in dirs.iter().enumerate() {
        write_node_files(dir, &keys[i], &network, &peers, peers[i].1);
    }

    // Validator 0 in a separate process.
    let log = std::fs::File::create(root.path().join("child.log")).expect("log");
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([CHILD_TEST, "--exact", "--ignored", "--test-threads=1"])
        .env(CHILD_ENV, &dirs[0])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn child validator");
    let mut child = KillOnDrop(child);

    // Validators 1..3 in this process.
    let apps: Vec<TestApp> = (0..3).map(|_| TestApp::default()).collect();
    let services: Vec<_> = apps
        .iter()
        .zip(&dirs[1..])
        .map(|(app, dir)| start(config_from_files(dir), app.clone()).expect("start"))
        .collect();
    let min_height = |apps: &[TestApp]| apps.iter().map(TestApp::height).min().unwrap_or(0);
    let max_height = |apps: &[TestApp]| apps.iter().map(TestApp::height).max().unwrap_or(0);
    wait_until(Duration::from_secs(60), "initial finalization", || {
        min_height(&apps) >= 8
    });

    // kill -9 validator 0: the other three (a quorum) keep finalizing.
    child.0.kill().expect("kill");
    child.0.wait().expect("reap");
    let at_kill = max_height(&apps);
    wait_until(
        Duration::from_secs(40),
        "progress without validator 0",
        || min_height(&apps) >= at_kill + 5,
    );

    // Restart validator 0 from its directory, in this process.
    let app0 = TestApp::default();
    let service0 = start(config_from_files(&dirs[0]), app0.clone()).expect("restart");
    let resumed = futures::executor::block_on(service0.handle().latest_finalized());
    let (resumed, _) = resumed.expect("validator 0 recovered finalized blocks from storage");
    assert!(resumed >= 1);
    let target = max_height(&apps);
    wait_until(Duration::from_secs(40), "validator 0 to catch up", || {
        app0.height() >= target
    });
    // It resumed where it left off rather than replaying from height 1
    // (its application sees only blocks after its last acknowledged one).
    let first = app0.delivered().first().map(|d| d.height).unwrap_or(0);
    assert!(first > 1, "restarted node replayed from genesis");

    // Graceful in-process stop of validator 1 (frees its port and storage),
    // then restart from the same directory: it resumes and catches up.
    let mut services: Vec<Option<_>> = services.into_iter().map(Some).collect();
    services[0].take().expect("running").stop();
    let live = [apps[1].clone(), apps[2].clone(), app0.clone()];
    let before = max_height(&live);
    wait_until(
        Duration::from_secs(40),
        "progress without validator 1",
        || min_height(&live) >= before + 3,
    );
    let app1 = TestApp::default();
    services[0] = Some(start(config_from_files(&dirs[1]), app1.clone()).expect("restart 1"));
    let target = max_height(&live);
    wait_until(Duration::from_secs(40), "validator 1 to catch up", || {
        app1.height() >= target
    });
    assert!(app1.delivered().first().map_or(0, |d| d.height) > 1);

    // Everyone agrees, certificates verify, queries work.
    let mut delivered: Vec<_> = apps.iter().map(TestApp::delivered).collect();
    delivered.push(app0.delivered());
    delivered.push(app1.delivered());
    assert_same_chain(&delivered, &network.identity_bytes(), CHAIN);
    let handle = services[1].as_ref().expect("running").handle();
    let block = futures::executor::block_on(handle.certified_block_at_or_after(2, 1000))
        .expect("certified block");
    crate::consensus::verify_finalization(
        &network.identity_bytes(),
        CHAIN,
        block.finalization.as_deref().expect("certificate"),
        &block.header.digest().0,
    )
    .expect("certificate verifies");

    service0.stop();
    for s in services.into_iter().flatten() {
        s.stop();
    }
}
