//! Runs the README's walkthrough verbatim against a fresh devnet.

use anyhow::{Context, Result};
use std::{path::Path, process::Command};
use verity_testkit::Cluster;

#[test]
fn readme_walkthrough_runs_verbatim() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let block = readme
        .split("<!-- walkthrough:start -->")
        .nth(1)
        .and_then(|s| s.split("<!-- walkthrough:end -->").next())
        .context("README has no walkthrough block")?;
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(script.contains("verity model publish") && script.contains("verity verify"));
    let c = Cluster::start(Path::new(env!("CARGO_BIN_EXE_verity")), 1)?;
    let work = tempfile::tempdir()?;
    std::os::unix::fs::symlink(
        root.join("examples").canonicalize()?,
        work.path().join("examples"),
    )?;
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_verity"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(work.path())
        .env("PATH", path)
        .env("VERITY_NODE", &c.apis[0].url)
        .env("VERITY_KEY", c.dev_key()?)
        .env("VERITY_NETWORK", c.dir.path().join("network.json"))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walkthrough failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("is valid"), "{stdout}");
    Ok(())
}
