//! The portal's secrets at rest and in cookies: TOTP secrets sealed with AES-256-GCM under a
//! key of its own, passwords as argon2id hashes, and random tokens stored only as hashes.

use std::{fs, io::Write, os::unix::fs::OpenOptionsExt, path::Path, sync::LazyLock};

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, Generate, KeyInit},
};
use anyhow::Context;
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use sha2::{Digest, Sha256};

/// Seals TOTP secrets for the portal's database.
pub(crate) struct Sealer(Aes256Gcm);

impl Sealer {
    /// The key in `<dir>/portal.key` (mode 0600), made on first use.
    pub(crate) fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("portal.key");
        if !path.exists() {
            let mut key = [0u8; 32];
            rand::fill(&mut key);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            file.write_all(hex::encode(key).as_bytes())?;
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key)
            .context("portal.key is not 64 hex characters")?;
        Ok(Self(Aes256Gcm::new(&key.into())))
    }

    /// Nonce, then ciphertext and tag.
    pub(crate) fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Nonce::generate();
        let ciphertext = self
            .0
            .encrypt(&nonce, plaintext)
            .expect("BUG: in-memory AES-GCM cannot fail");
        [nonce.as_slice(), &ciphertext].concat()
    }

    /// What `seal` sealed.
    pub(crate) fn open(&self, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(sealed.len() > 12, "sealed value too short");
        let (nonce, ciphertext) = sealed.split_at(12);
        let nonce = Nonce::try_from(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        self.0
            .decrypt(&nonce, ciphertext)
            .map_err(|_| anyhow::anyhow!("cannot decrypt a stored secret"))
    }
}

/// An argon2id hash, on a blocking thread: it takes tens of milliseconds by design.
pub(crate) async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash a password: {e}"))
    })
    .await?
}

/// A hash of a password nobody has, checked when the email is unknown so that the answer
/// takes as long as for a known one.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut password = [0u8; 32];
    rand::fill(&mut password);
    Argon2::default()
        .hash_password(&password)
        .map(|hash| hash.to_string())
        .expect("BUG: hashing with default parameters cannot fail")
});

/// Whether `password` matches `hash` (or, with `None`, spends the same time and says no).
pub(crate) async fn check_password(password: String, hash: Option<String>) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
        && known
}

/// A fresh random token (for cookies) and the hash the database keeps.
pub(crate) fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = hex::encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a token or session token: random values need no slow hash.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
