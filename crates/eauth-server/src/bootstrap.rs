//! What a fresh checkout needs and does not have: a data directory, a master key and a TLS
//! certificate. Generated once, with owner-only permissions, and reused afterwards.
//!
//! Several processes may start at once on the same data directory, so every generated file
//! is written under a temporary name and moved into place with an operation that fails if
//! the target exists (a hard link for a file, a rename for a directory): the first process
//! wins and the others read what it wrote, never a half-written file.

use std::{
    fs::{self, OpenOptions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use eauth_core::MasterKey;
use secrecy::ExposeSecret;

use crate::config::Settings;

const MASTER_KEY_FILE: &str = "master.key";
const TLS_DIR: &str = "tls";

/// Creates the data directory (mode 0700) if it does not exist.
pub fn ensure_data_dir(settings: &Settings) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&settings.data_dir)
        .with_context(|| {
            format!(
                "cannot create data directory {}",
                settings.data_dir.display()
            )
        })
}

/// The master key: `master_key`, else the file `master_key_file`, else `<data_dir>/master.key`,
/// generated on first use.
pub fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(key) = &settings.master_key {
        return MasterKey::parse_hex(key.expose_secret()).context("EAUTH_MASTER_KEY");
    }
    if let Some(path) = &settings.master_key_file {
        return read_master_key(path);
    }
    let path = settings.data_dir.join(MASTER_KEY_FILE);
    if !path.exists() {
        let (_, hex) = MasterKey::generate();
        if publish_file(&path, hex.as_bytes())? {
            tracing::warn!(
                path = %path.display(),
                "generated a master key for this data directory; production must supply its own \
                 EAUTH_MASTER_KEY (or EAUTH_MASTER_KEY_FILE) and keep it safe: losing it loses every \
                 stored secret"
            );
        }
    }
    read_master_key(&path)
}

fn read_master_key(path: &Path) -> anyhow::Result<MasterKey> {
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the master key file is readable by other users; run: chmod 600 {}", path.display());
    }
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    MasterKey::parse_hex(&text).with_context(|| format!("invalid master key in {}", path.display()))
}

/// The certificate and key files: the configured ones, or a self-signed pair for localhost,
/// 127.0.0.1 and ::1 generated into `<data_dir>/tls/` on first use.
pub fn tls_files(settings: &Settings) -> anyhow::Result<(PathBuf, PathBuf)> {
    if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
        return Ok((cert.clone(), key.clone()));
    }
    let dir = settings.data_dir.join(TLS_DIR);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !dir.exists() {
        generate_self_signed(&settings.data_dir, &dir)?;
    }
    if !cert.exists() || !key.exists() {
        bail!(
            "{} exists but lacks cert.pem or key.pem; remove it to regenerate",
            dir.display()
        );
    }
    Ok((cert, key))
}

fn generate_self_signed(data_dir: &Path, dir: &Path) -> anyhow::Result<()> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let generated =
        rcgen::generate_simple_self_signed(names).context("cannot generate a TLS certificate")?;
    let staging = data_dir.join(format!(".tls-{}", uuid::Uuid::new_v4().simple()));
    fs::DirBuilder::new().mode(0o700).create(&staging)?;
    write_private(
        &staging.join("key.pem"),
        generated.signing_key.serialize_pem().as_bytes(),
    )?;
    write_private(&staging.join("cert.pem"), generated.cert.pem().as_bytes())?;
    match fs::rename(&staging, dir) {
        Ok(()) => {
            tracing::warn!(
                dir = %dir.display(),
                "generated a self-signed TLS certificate for localhost; production must supply its \
                 own with EAUTH_TLS_CERT and EAUTH_TLS_KEY"
            );
            Ok(())
        }
        // Another process got there first: use its pair.
        Err(_) if dir.exists() => Ok(fs::remove_dir_all(&staging)?),
        Err(error) => Err(error).with_context(|| format!("cannot create {}", dir.display())),
    }
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Writes `contents` to `path` (mode 0600) unless it exists; `true` if this call created it.
fn publish_file(path: &Path, contents: &[u8]) -> anyhow::Result<bool> {
    let staging = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    write_private(&staging, contents)
        .with_context(|| format!("cannot write {}", staging.display()))?;
    let published = match fs::hard_link(&staging, path) {
        Ok(()) => true,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => false,
        Err(error) => {
            return Err(error).with_context(|| format!("cannot create {}", path.display()));
        }
    };
    fs::remove_file(&staging)?;
    Ok(published)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> Settings {
        Settings {
            data_dir: dir.to_path_buf(),
            ..Settings::defaults()
        }
    }

    #[test]
    fn generated_files_are_private_and_reused() {
        let dir = tempfile::tempdir().expect("dir");
        let settings = settings(&dir.path().join("data"));
        ensure_data_dir(&settings).expect("data dir");
        master_key(&settings).expect("generated");
        let key_path = settings.data_dir.join(MASTER_KEY_FILE);
        let first = fs::read_to_string(&key_path).expect("key file");
        master_key(&settings).expect("reused");
        assert_eq!(fs::read_to_string(&key_path).expect("key file"), first);

        let (cert, key) = tls_files(&settings).expect("generated");
        let cert_pem = fs::read(&cert).expect("cert");
        tls_files(&settings).expect("reused");
        assert_eq!(fs::read(&cert).expect("cert"), cert_pem);

        for path in [&settings.data_dir, &key_path, &key] {
            let mode = fs::metadata(path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
        }
        let leftovers: Vec<_> = fs::read_dir(&settings.data_dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }
}
