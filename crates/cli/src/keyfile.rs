//! Account key files: JSON `{"version", "address", "secret"}`, mode 0600.
//! The secret is never printed.

use anyhow::{bail, Context, Result};
use std::{io::Write, path::Path};
use verity_primitives::PrivateKey;

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyFile {
    version: u8,
    address: String,
    secret: String,
}

/// Writes `key` to `path` (0600), refusing to overwrite unless `force`.
pub fn write(path: &Path, key: &PrivateKey, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists (use --force to overwrite)",
            path.display()
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let body = serde_json::to_string_pretty(&KeyFile {
        version: 1,
        address: key.address().to_string(),
        secret: key.to_secret_hex(),
    })?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(body.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<PrivateKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let kf: KeyFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Verity key file", path.display()))?;
    if kf.version != 1 {
        bail!(
            "{}: unsupported key file version {}",
            path.display(),
            kf.version
        );
    }
    let key = PrivateKey::from_hex(&kf.secret)
        .with_context(|| format!("{}: bad secret", path.display()))?;
    if key.address().to_string().to_lowercase() != kf.address.to_lowercase() {
        bail!("{}: address does not match the secret", path.display());
    }
    Ok(key)
}
