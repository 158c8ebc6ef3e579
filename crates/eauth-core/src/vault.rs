//! Encryption of secrets at rest: AES-256-GCM under keys derived from the master key.
//!
//! Each kind of secret has its own key (HKDF-SHA256 with a purpose label), and each ciphertext
//! is bound to the row it belongs to through the associated data: a TOTP secret copied to
//! another user's row, or a callback secret to another application, fails to decrypt instead
//! of silently working there.

use std::fmt;

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, Generate, KeyInit, Payload},
};
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

const NONCE_LEN: usize = 12;

/// The 256-bit root secret of a deployment, from which every encryption key is derived.
pub struct MasterKey(SecretBox<[u8; 32]>);

/// Why a master key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the master key must be 64 hexadecimal characters (32 bytes), e.g. from `openssl rand -hex 32`")]
pub struct MasterKeyError;

impl MasterKey {
    /// Parses the hex form used in `EAUTH_MASTER_KEY` and the key file.
    pub fn parse_hex(raw: &str) -> Result<Self, MasterKeyError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(raw.trim(), &mut bytes).map_err(|_| MasterKeyError)?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// A fresh random key and its hex form, for first start.
    pub fn generate() -> (Self, String) {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let hex = hex::encode(bytes);
        (Self(SecretBox::new(Box::new(bytes))), hex)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// What a sealed value is; each purpose has its own derived key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A user's TOTP secret; associated data: client_id and email.
    TotpSecret,
    /// An application's callback signing secret; associated data: client_id.
    CallbackSecret,
    /// The HMAC key that signs session tokens; associated data: its `kid`.
    SessionKey,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::TotpSecret => b"eauth/v1/totp-secret",
            Self::CallbackSecret => b"eauth/v1/callback-secret",
            Self::SessionKey => b"eauth/v1/session-key",
        }
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored secret could not be decrypted (wrong master key, or data moved or corrupted)")]
pub struct VaultError;

/// Seals and opens secrets for storage.
pub struct Vault {
    totp: Aes256Gcm,
    callback: Aes256Gcm,
    session: Aes256Gcm,
}

impl Vault {
    /// Derives the per-purpose keys.
    pub fn new(master: &MasterKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, master.0.expose_secret());
        let derive = |purpose: Purpose| {
            let mut key = [0u8; 32];
            hkdf.expand(purpose.label(), &mut key)
                .expect("BUG: 32 bytes is a valid HKDF-SHA256 output length");
            Aes256Gcm::new(&key.into())
        };
        Self {
            totp: derive(Purpose::TotpSecret),
            callback: derive(Purpose::CallbackSecret),
            session: derive(Purpose::SessionKey),
        }
    }

    fn cipher(&self, purpose: Purpose) -> &Aes256Gcm {
        match purpose {
            Purpose::TotpSecret => &self.totp,
            Purpose::CallbackSecret => &self.callback,
            Purpose::SessionKey => &self.session,
        }
    }

    /// Encrypts `plaintext` bound to `context`; the result is the nonce followed by the
    /// ciphertext and tag. A random 96-bit nonce per value is safe for far more values than
    /// a deployment will ever seal under one key (NIST SP 800-38D §8.3).
    pub fn seal(&self, purpose: Purpose, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = Nonce::generate();
        let ciphertext = self
            .cipher(purpose)
            .encrypt(&nonce, Payload { msg: plaintext, aad: context })
            .expect("BUG: AES-GCM encryption of an in-memory buffer cannot fail");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same purpose and context.
    pub fn open(&self, purpose: Purpose, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| VaultError)?;
        self.cipher(purpose)
            .decrypt(&nonce, Payload { msg: ciphertext, aad: context })
            .map_err(|_| VaultError)
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(<keys redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::new(&MasterKey::generate().0)
    }

    #[test]
    fn sealed_values_open_with_the_same_purpose_and_context() {
        let vault = vault();
        let sealed = vault.seal(Purpose::TotpSecret, b"app|jane@example.com", b"secret bytes");
        assert!(!sealed.windows(12).any(|w| w == b"secret bytes"));
        let opened = vault.open(Purpose::TotpSecret, b"app|jane@example.com", &sealed);
        assert_eq!(opened.as_deref(), Ok(&b"secret bytes"[..]));
    }

    #[test]
    fn a_value_moved_to_another_row_or_purpose_does_not_open() {
        let vault = vault();
        let sealed = vault.seal(Purpose::TotpSecret, b"app|jane@example.com", b"secret");
        assert_eq!(vault.open(Purpose::TotpSecret, b"app|john@example.com", &sealed), Err(VaultError));
        assert_eq!(vault.open(Purpose::CallbackSecret, b"app|jane@example.com", &sealed), Err(VaultError));
        assert_eq!(vault.open(Purpose::TotpSecret, b"app|jane@example.com", &sealed[..5]), Err(VaultError));
    }

    #[test]
    fn another_master_key_cannot_open() {
        let sealed = vault().seal(Purpose::SessionKey, b"kid", b"key");
        assert_eq!(vault().open(Purpose::SessionKey, b"kid", &sealed), Err(VaultError));
    }

    #[test]
    fn master_keys_are_64_hex_characters() {
        let (_, hex) = MasterKey::generate();
        assert!(MasterKey::parse_hex(&hex).is_ok());
        assert_eq!(MasterKey::parse_hex("abcd").map(|_| ()), Err(MasterKeyError));
        assert_eq!(MasterKey::parse_hex(&"zz".repeat(32)).map(|_| ()), Err(MasterKeyError));
    }
}
