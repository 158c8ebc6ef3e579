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
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::{CallbackSecret, ClientId, Email, SessionKey, TotpSecret};

const NONCE_LEN: usize = 12;

/// The 256-bit root secret of a deployment, from which every encryption key is derived.
pub struct MasterKey(SecretBox<[u8; 32]>);

/// Why a master key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the master key must be 64 hexadecimal characters (32 bytes), e.g. from `openssl rand -hex 32`"
)]
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
enum Purpose {
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

/// Seals and opens secrets for storage, and makes the anti-forgery tokens of the sign-in page
/// and the console.
pub struct Vault {
    totp: Aes256Gcm,
    callback: Aes256Gcm,
    session: Aes256Gcm,
    form_key: SecretBox<[u8; 32]>,
    console_form_key: SecretBox<[u8; 32]>,
}

impl Vault {
    /// Derives the per-purpose keys.
    pub fn new(master: &MasterKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, master.0.expose_secret());
        let expand = |label: &[u8]| {
            let mut key = [0u8; 32];
            hkdf.expand(label, &mut key)
                .expect("BUG: 32 bytes is a valid HKDF-SHA256 output length");
            key
        };
        let derive = |purpose: Purpose| Aes256Gcm::new(&expand(purpose.label()).into());
        Self {
            totp: derive(Purpose::TotpSecret),
            callback: derive(Purpose::CallbackSecret),
            session: derive(Purpose::SessionKey),
            form_key: SecretBox::new(Box::new(expand(b"eauth/v1/form-token"))),
            console_form_key: SecretBox::new(Box::new(expand(b"eauth/v1/console-form-token"))),
        }
    }

    fn cipher(&self, purpose: Purpose) -> &Aes256Gcm {
        match purpose {
            Purpose::TotpSecret => &self.totp,
            Purpose::CallbackSecret => &self.callback,
            Purpose::SessionKey => &self.session,
        }
    }

    /// Seals a user's TOTP secret, bound to the application and the user.
    pub fn seal_totp_secret(
        &self,
        client_id: ClientId,
        email: &Email,
        secret: &TotpSecret,
    ) -> Vec<u8> {
        self.seal(
            Purpose::TotpSecret,
            &user_context(client_id, email),
            secret.expose_bytes(),
        )
    }

    /// Opens what [`seal_totp_secret`](Self::seal_totp_secret) sealed for the same user.
    pub fn open_totp_secret(
        &self,
        client_id: ClientId,
        email: &Email,
        sealed: &[u8],
    ) -> Result<TotpSecret, VaultError> {
        self.open(Purpose::TotpSecret, &user_context(client_id, email), sealed)
            .map(TotpSecret::from_bytes)
    }

    /// Seals an application's callback secret, bound to the application.
    pub fn seal_callback_secret(&self, client_id: ClientId, secret: &CallbackSecret) -> Vec<u8> {
        self.seal(
            Purpose::CallbackSecret,
            client_id.to_string().as_bytes(),
            secret.expose().as_bytes(),
        )
    }

    /// Opens what [`seal_callback_secret`](Self::seal_callback_secret) sealed for the same
    /// application.
    pub fn open_callback_secret(
        &self,
        client_id: ClientId,
        sealed: &[u8],
    ) -> Result<CallbackSecret, VaultError> {
        let bytes = self.open(
            Purpose::CallbackSecret,
            client_id.to_string().as_bytes(),
            sealed,
        )?;
        String::from_utf8(bytes)
            .map(CallbackSecret::from_stored)
            .map_err(|_| VaultError)
    }

    /// Seals the session-signing key, bound to its `kid`.
    pub fn seal_session_key(&self, key: &SessionKey) -> Vec<u8> {
        self.seal(
            Purpose::SessionKey,
            key.kid().as_bytes(),
            key.expose_secret(),
        )
    }

    /// Opens what [`seal_session_key`](Self::seal_session_key) sealed under `kid`.
    pub fn open_session_key(&self, kid: String, sealed: &[u8]) -> Result<SessionKey, VaultError> {
        let secret = self.open(Purpose::SessionKey, kid.as_bytes(), sealed)?;
        SessionKey::from_parts(kid, &secret).ok_or(VaultError)
    }

    /// The anti-forgery token of the sign-in page's forms: an HMAC over the session and a random
    /// value the browser holds in a cookie. A form posted from another site lacks the cookie,
    /// and one built by someone holding only the session token lacks the victim's cookie.
    pub fn form_token(&self, session_id: Uuid, browser_nonce: &str) -> String {
        hmac_hex(
            &self.form_key,
            &[session_id.as_bytes(), browser_nonce.as_bytes()],
        )
    }

    /// Whether `presented` is the form token of this session and browser, compared in
    /// constant time.
    pub fn check_form_token(&self, session_id: Uuid, browser_nonce: &str, presented: &str) -> bool {
        constant_time_eq(&self.form_token(session_id, browser_nonce), presented)
    }

    /// The anti-forgery token of the Domain Console's forms, bound to what the browser holds:
    /// the hash of its console session, or, before sign-in, a random value in a cookie. Under
    /// its own key, so that no sign-in page token is ever a console token.
    pub fn console_form_token(&self, binding: &[u8]) -> String {
        hmac_hex(&self.console_form_key, &[binding])
    }

    /// Whether `presented` is the console form token for `binding`, compared in constant time.
    pub fn check_console_form_token(&self, binding: &[u8], presented: &str) -> bool {
        constant_time_eq(&self.console_form_token(binding), presented)
    }

    /// Encrypts `plaintext` bound to `context`; the result is the nonce followed by the
    /// ciphertext and tag. A random 96-bit nonce per value is safe for far more values than
    /// a deployment will ever seal under one key (NIST SP 800-38D §8.3).
    fn seal(&self, purpose: Purpose, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = Nonce::generate();
        let ciphertext = self
            .cipher(purpose)
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("BUG: AES-GCM encryption of an in-memory buffer cannot fail");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same purpose and context.
    fn open(&self, purpose: Purpose, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| VaultError)?;
        self.cipher(purpose)
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| VaultError)
    }
}

/// HMAC-SHA256 of the concatenated `parts`, in hex.
fn hmac_hex(key: &SecretBox<[u8; 32]>, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret())
        .expect("BUG: HMAC accepts 32-byte keys");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn constant_time_eq(expected: &str, presented: &str) -> bool {
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// The associated data of a user's secret. NUL cannot occur in a client id or an email, so
/// no two users share a context.
fn user_context(client_id: ClientId, email: &Email) -> Vec<u8> {
    format!("{client_id}\0{email}").into_bytes()
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

    fn email(raw: &str) -> Email {
        Email::parse(raw).expect("email")
    }

    #[test]
    fn a_sealed_totp_secret_opens_for_its_user_only() {
        let vault = vault();
        let (app, other_app) = (ClientId::generate(), ClientId::generate());
        let secret = TotpSecret::generate();
        let sealed = vault.seal_totp_secret(app, &email("jane@example.com"), &secret);
        assert!(
            !sealed
                .windows(secret.expose_bytes().len())
                .any(|w| w == secret.expose_bytes())
        );

        let opened = vault
            .open_totp_secret(app, &email("jane@example.com"), &sealed)
            .expect("opens");
        assert_eq!(opened.expose_bytes(), secret.expose_bytes());
        // Moved to another user's row, or another application's.
        assert!(
            vault
                .open_totp_secret(app, &email("john@example.com"), &sealed)
                .is_err()
        );
        assert!(
            vault
                .open_totp_secret(other_app, &email("jane@example.com"), &sealed)
                .is_err()
        );
        assert!(
            vault
                .open_totp_secret(app, &email("jane@example.com"), &sealed[..5])
                .is_err()
        );
    }

    #[test]
    fn sealed_values_do_not_open_as_another_kind_of_secret() {
        let vault = vault();
        let app = ClientId::generate();
        let callback = CallbackSecret::generate();
        let sealed = vault.seal_callback_secret(app, &callback);
        assert_eq!(
            vault
                .open_callback_secret(app, &sealed)
                .expect("opens")
                .expose(),
            callback.expose()
        );
        assert!(
            vault
                .open_callback_secret(ClientId::generate(), &sealed)
                .is_err()
        );
        // The same bytes and context under another purpose's key.
        assert!(vault.open_session_key(app.to_string(), &sealed).is_err());
    }

    #[test]
    fn another_master_key_cannot_open() {
        let key = SessionKey::generate();
        let sealed = vault().seal_session_key(&key);
        assert!(
            vault()
                .open_session_key(key.kid().to_owned(), &sealed)
                .is_err()
        );
        let vault = vault();
        let sealed = vault.seal_session_key(&key);
        let opened = vault
            .open_session_key(key.kid().to_owned(), &sealed)
            .expect("opens");
        assert_eq!(opened.expose_secret(), key.expose_secret());
        assert!(vault.open_session_key("other-kid".into(), &sealed).is_err());
    }

    #[test]
    fn form_tokens_bind_the_session_and_the_browser() {
        let vault = vault();
        let session = Uuid::new_v4();
        let token = vault.form_token(session, "browser-a");
        assert!(vault.check_form_token(session, "browser-a", &token));
        assert!(!vault.check_form_token(session, "browser-b", &token));
        assert!(!vault.check_form_token(Uuid::new_v4(), "browser-a", &token));
        assert!(!vault.check_form_token(session, "browser-a", ""));
    }

    #[test]
    fn console_form_tokens_bind_their_session_and_are_not_sign_in_tokens() {
        let vault = vault();
        let token = vault.console_form_token(b"session-hash");
        assert!(vault.check_console_form_token(b"session-hash", &token));
        assert!(!vault.check_console_form_token(b"other-session", &token));
        assert!(!vault.check_console_form_token(b"session-hash", ""));
        let session = Uuid::new_v4();
        assert_ne!(
            vault.console_form_token(session.as_bytes()),
            vault.form_token(session, "")
        );
        // Another deployment's token is worthless here.
        assert!(!self::vault().check_console_form_token(b"session-hash", &token));
    }

    #[test]
    fn master_keys_are_64_hex_characters() {
        let (_, hex) = MasterKey::generate();
        assert!(MasterKey::parse_hex(&hex).is_ok());
        assert_eq!(
            MasterKey::parse_hex("abcd").map(|_| ()),
            Err(MasterKeyError)
        );
        assert_eq!(
            MasterKey::parse_hex(&"zz".repeat(32)).map(|_| ()),
            Err(MasterKeyError)
        );
    }
}
