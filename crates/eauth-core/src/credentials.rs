//! The credentials an application receives at registration: its API key and the secret that
//! signs the callbacks it receives.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in each credential: 160 bits, above RFC 4226's 128-bit floor for shared secrets.
const CREDENTIAL_BYTES: usize = 20;

fn random_token(prefix: &str) -> SecretString {
    let mut bytes = [0u8; CREDENTIAL_BYTES];
    rand::fill(&mut bytes);
    // Lower-case base32 survives copy-paste, shells and URLs without quoting; the prefix makes
    // a leaked key recognisable to secret scanners and to the person who finds it.
    let encoded = BASE32_NOPAD.encode(&bytes).to_ascii_lowercase();
    SecretString::from(format!("{prefix}{encoded}"))
}

/// An application's API key, sent by its backend as `X-API-Key`.
///
/// The service keeps only its [`ApiKeyHash`]; the key itself exists in memory just long enough
/// to be shown to the integrator once.
pub struct ApiKey(SecretString);

impl ApiKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(random_token("eak_"))
    }

    /// The key, to show to the integrator.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// What the service stores.
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash::of(self.expose())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// SHA-256 of an API key.
///
/// A plain hash is enough here, unlike for passwords: keys carry 160 random bits, so there is
/// no dictionary to try, and a slow hash would cost CPU on every API request.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyHash([u8; 32]);

impl ApiKeyHash {
    /// The hash of a presented key.
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }

    /// Rebuilds a stored hash; `None` if it is not 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `presented` is the key this is the hash of, in time that does not depend on
    /// where the two differ.
    pub fn matches(&self, presented: &str) -> bool {
        ApiKeyHash::of(presented).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyHash(..)")
    }
}

/// The secret that keys the HMAC on the callbacks an application receives.
///
/// The service needs it in clear to sign, so it is stored encrypted (see [`crate::Vault`]),
/// not hashed.
#[derive(Clone)]
pub struct CallbackSecret(SecretString);

impl CallbackSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        Self(random_token("ecs_"))
    }

    /// Rebuilds a secret decrypted from storage.
    pub fn from_stored(secret: String) -> Self {
        Self(SecretString::from(secret))
    }

    /// The secret, exactly as shown to the integrator.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for CallbackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_carry_160_bits() {
        let (a, b) = (ApiKey::generate(), ApiKey::generate());
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("eak_"));
        assert_eq!(a.expose().len(), 4 + 32);
    }

    #[test]
    fn a_hash_matches_its_key_and_nothing_else() {
        let key = ApiKey::generate();
        let hash = key.hash();
        assert!(hash.matches(key.expose()));
        assert!(!hash.matches(ApiKey::generate().expose()));
        assert!(!hash.matches(""));
        assert_eq!(ApiKeyHash::from_bytes(hash.as_bytes()), Some(hash));
    }

    #[test]
    fn secrets_never_print() {
        let key = ApiKey::generate();
        let secret = CallbackSecret::generate();
        let shown = format!("{key:?} {secret:?} {:?}", key.hash());
        assert!(!shown.contains(key.expose()));
        assert!(!shown.contains(secret.expose()));
    }
}
