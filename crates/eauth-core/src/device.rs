//! The devices of the eAuthenticator app and how their requests are signed: Ed25519 keys
//! (RFC 8032), the canonical string a signature covers, and the freshness rule that, with a
//! nonce the service remembers, makes a captured request worthless.
//!
//! The protocol is this service's own; `docs/app-api.md` documents it for app writers and
//! must change with it. Nothing here reads the clock: freshness is judged at the `now` the
//! caller passes.

use std::fmt;

use data_encoding::BASE64URL_NOPAD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A request is refused when its timestamp is further than this from the service's clock, in
/// either direction: old enough to be a replay, or from a clock that is badly wrong.
pub const MAX_SKEW_SECS: i64 = 60;
/// The first line of every canonical string: the version of this signing scheme.
pub const SIGNING_SCHEME: &str = "eauth-app-v1";

/// The header naming the signing device (absent when registering).
pub const DEVICE_HEADER: &str = "x-eauth-device";
/// The header with the request's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-eauth-timestamp";
/// The header with the request's random nonce.
pub const NONCE_HEADER: &str = "x-eauth-nonce";
/// The header with the Ed25519 signature, base64url without padding.
pub const SIGNATURE_HEADER: &str = "x-eauth-signature";

/// A registered device's identifier, given by the service at registration.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId(Uuid);

/// Why a string is not a [`DeviceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device id is not a UUID")]
pub struct DeviceIdError;

impl DeviceId {
    /// A fresh random identifier.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses the hyphenated UUID form, the only one the service writes.
    pub fn parse(raw: &str) -> Result<Self, DeviceIdError> {
        if raw.len() != 36 {
            return Err(DeviceIdError);
        }
        Uuid::parse_str(raw).map(Self).map_err(|_| DeviceIdError)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

/// What the user calls a device (`eauth on laptop`), shown where devices are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName(String);

/// Why a string is not a [`DeviceName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device name must be 1 to 64 characters, without control characters")]
pub struct DeviceNameError;

impl DeviceName {
    /// Trimmed, 1 to 64 characters, no control characters (it is shown in lists and logs).
    pub fn parse(raw: &str) -> Result<Self, DeviceNameError> {
        let name = raw.trim();
        let length = name.chars().count();
        if !(1..=64).contains(&length) || name.chars().any(char::is_control) {
            return Err(DeviceNameError);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a key, signature or nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// Not base64url without padding.
    #[error("is not base64url without padding")]
    NotBase64Url,
    /// Decodes to the wrong number of bytes.
    #[error("has the wrong length")]
    Length,
}

fn decode_fixed<const N: usize>(raw: &str) -> Result<[u8; N], EncodingError> {
    let bytes = BASE64URL_NOPAD
        .decode(raw.trim().as_bytes())
        .map_err(|_| EncodingError::NotBase64Url)?;
    bytes.try_into().map_err(|_| EncodingError::Length)
}

/// A device's Ed25519 public key, as registered.
#[derive(Clone, PartialEq, Eq)]
pub struct DevicePublicKey([u8; 32]);

impl DevicePublicKey {
    /// Parses the 32-byte key in base64url without padding (43 characters), as sent.
    pub fn parse(raw: &str) -> Result<Self, EncodingError> {
        decode_fixed(raw).map(Self)
    }

    /// Rebuilds a stored key; `None` if it is not 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The base64url form the app sends.
    pub fn to_base64url(&self) -> String {
        BASE64URL_NOPAD.encode(&self.0)
    }

    /// Whether `signature` is this key's signature of `message` (RFC 8032 Ed25519, strict
    /// as ring implements it: non-canonical encodings are refused).
    pub fn verifies(&self, message: &[u8], signature: &DeviceSignature) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, &signature.0)
            .is_ok()
    }
}

impl fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevicePublicKey({})", self.to_base64url())
    }
}

/// An Ed25519 signature as sent in [`SIGNATURE_HEADER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSignature([u8; 64]);

impl DeviceSignature {
    /// Parses the 64-byte signature in base64url without padding (86 characters).
    pub fn parse(raw: &str) -> Result<Self, EncodingError> {
        decode_fixed(raw).map(Self)
    }

    /// The base64url form.
    pub fn to_base64url(&self) -> String {
        BASE64URL_NOPAD.encode(&self.0)
    }
}

/// A device's private key: the 32-byte Ed25519 seed (RFC 8032 §5.1.5). Its `Debug` shows
/// only the public half.
pub struct DeviceKey {
    seed: SecretBox<[u8; 32]>,
    pair: Ed25519KeyPair,
}

impl DeviceKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        Self::from_seed(seed)
    }

    fn from_seed(seed: [u8; 32]) -> Self {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .expect("BUG: every 32-byte string is an Ed25519 seed");
        Self {
            seed: SecretBox::new(Box::new(seed)),
            pair,
        }
    }

    /// Rebuilds a stored key from its base64url seed.
    pub fn parse(raw: &str) -> Result<Self, EncodingError> {
        decode_fixed(raw).map(Self::from_seed)
    }

    /// The seed in base64url, to store. It is the whole secret.
    pub fn expose_base64url(&self) -> String {
        BASE64URL_NOPAD.encode(self.seed.expose_secret())
    }

    /// The public half, to register.
    pub fn public_key(&self) -> DevicePublicKey {
        let bytes = self.pair.public_key().as_ref();
        DevicePublicKey::from_bytes(bytes).expect("BUG: Ed25519 public keys are 32 bytes")
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> DeviceSignature {
        let signature = self.pair.sign(message);
        DeviceSignature(
            signature
                .as_ref()
                .try_into()
                .expect("BUG: Ed25519 signatures are 64 bytes"),
        )
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({:?}, <seed redacted>)", self.public_key())
    }
}

/// A request's nonce: 128 random bits or more, in base64url (22 to 64 characters). The
/// service remembers each one a device used for as long as the request could be fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestNonce(String);

/// Why a string is not a [`RequestNonce`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nonce must be 22 to 64 base64url characters")]
pub struct RequestNonceError;

impl RequestNonce {
    /// A fresh random nonce of 128 bits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes);
        Self(BASE64URL_NOPAD.encode(&bytes))
    }

    /// Accepts 22 to 64 characters of the base64url alphabet: long enough to be unguessable,
    /// short enough to store.
    pub fn parse(raw: &str) -> Result<Self, RequestNonceError> {
        let valid = (22..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(RequestNonceError)
        }
    }

    /// The nonce.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a signature covers: every part of a request that changes what it does.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalRequest<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The path with its query, exactly as in the request line (`/app-api/v1/signins?wait=25`).
    pub path_and_query: &'a str,
    /// Unix seconds, as in [`TIMESTAMP_HEADER`].
    pub timestamp: i64,
    /// As in [`NONCE_HEADER`].
    pub nonce: &'a RequestNonce,
    /// As in [`DEVICE_HEADER`]; `None` when registering.
    pub device: Option<DeviceId>,
    /// The body's bytes, exactly as sent (empty for a GET).
    pub body: &'a [u8],
}

impl CanonicalRequest<'_> {
    /// The signed bytes: seven lines joined by `\n`, no trailing newline —
    /// `eauth-app-v1`, the upper-case method, the path with query, the timestamp in decimal,
    /// the nonce, the device id (empty when registering), and the lowercase hex SHA-256 of the
    /// body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let device = self.device.map(|id| id.to_string()).unwrap_or_default();
        [
            SIGNING_SCHEME,
            &self.method.to_ascii_uppercase(),
            self.path_and_query,
            &self.timestamp.to_string(),
            self.nonce.as_str(),
            &device,
            &hex::encode(Sha256::digest(self.body)),
        ]
        .join("\n")
        .into_bytes()
    }

    /// Signs the request with `key`.
    pub fn sign(&self, key: &DeviceKey) -> DeviceSignature {
        key.sign(&self.to_bytes())
    }

    /// Whether `signature` is `key`'s signature of this request.
    pub fn is_signed_by(&self, key: &DevicePublicKey, signature: &DeviceSignature) -> bool {
        key.verifies(&self.to_bytes(), signature)
    }
}

/// Whether a request stamped `timestamp` may be accepted at `now`: at most
/// [`MAX_SKEW_SECS`] old, and at most that far in the future.
pub fn is_fresh(timestamp: i64, now: i64) -> bool {
    now.checked_sub(timestamp)
        .is_some_and(|age| (-MAX_SKEW_SECS..=MAX_SKEW_SECS).contains(&age))
}

/// Until when a nonce must be remembered: while its request is still fresh. After that a
/// replay is refused as stale, so the nonce can be forgotten.
pub fn nonce_expires_at(timestamp: i64) -> i64 {
    timestamp.saturating_add(MAX_SKEW_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn request<'a>(nonce: &'a RequestNonce, body: &'a [u8]) -> CanonicalRequest<'a> {
        CanonicalRequest {
            method: "post",
            path_and_query: "/app-api/v1/signins/x/approve?a=1",
            timestamp: NOW,
            nonce,
            device: Some(DeviceId::parse("0b5a6d3c-3a57-4a0e-9d52-6f3b0f1c2d3e").expect("id")),
            body,
        }
    }

    #[test]
    fn the_canonical_string_is_the_documented_seven_lines() {
        let nonce = RequestNonce::parse("AAAAAAAAAAAAAAAAAAAAAA").expect("nonce");
        let text = String::from_utf8(request(&nonce, b"{}").to_bytes()).expect("UTF-8");
        assert_eq!(
            text,
            "eauth-app-v1\nPOST\n/app-api/v1/signins/x/approve?a=1\n1800000000\n\
             AAAAAAAAAAAAAAAAAAAAAA\n0b5a6d3c-3a57-4a0e-9d52-6f3b0f1c2d3e\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let registering = CanonicalRequest {
            device: None,
            body: b"",
            ..request(&nonce, b"")
        };
        let text = String::from_utf8(registering.to_bytes()).expect("UTF-8");
        assert!(text.ends_with(
            "AAAAAAAAAAAAAAAAAAAAAA\n\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ));
    }

    #[test]
    fn a_signature_covers_every_part_of_the_request() {
        let key = DeviceKey::generate();
        let nonce = RequestNonce::generate();
        let original = request(&nonce, b"{\"number\":42}");
        let signature = original.sign(&key);
        assert!(original.is_signed_by(&key.public_key(), &signature));

        let other_nonce = RequestNonce::generate();
        let altered = [
            CanonicalRequest {
                method: "GET",
                ..original
            },
            CanonicalRequest {
                path_and_query: "/app-api/v1/signins/y/approve?a=1",
                ..original
            },
            CanonicalRequest {
                timestamp: NOW + 1,
                ..original
            },
            CanonicalRequest {
                nonce: &other_nonce,
                ..original
            },
            CanonicalRequest {
                device: Some(DeviceId::generate()),
                ..original
            },
            CanonicalRequest {
                body: b"{\"number\":43}",
                ..original
            },
        ];
        for request in altered {
            assert!(
                !request.is_signed_by(&key.public_key(), &signature),
                "{request:?}"
            );
        }
        let stranger = DeviceKey::generate();
        assert!(!original.is_signed_by(&stranger.public_key(), &signature));
    }

    #[test]
    fn keys_signatures_and_nonces_round_trip_through_their_text_forms() {
        let key = DeviceKey::generate();
        let again = DeviceKey::parse(&key.expose_base64url()).expect("seed");
        assert_eq!(again.public_key(), key.public_key());
        let public = DevicePublicKey::parse(&key.public_key().to_base64url()).expect("key");
        assert_eq!(public, key.public_key());
        let signature = key.sign(b"m");
        assert_eq!(
            DeviceSignature::parse(&signature.to_base64url()),
            Ok(signature)
        );
        assert!(!format!("{key:?}").contains(&key.expose_base64url()));

        assert_eq!(
            DevicePublicKey::parse("not base64!"),
            Err(EncodingError::NotBase64Url)
        );
        assert_eq!(DevicePublicKey::parse("AAAA"), Err(EncodingError::Length));
        assert!(RequestNonce::parse(RequestNonce::generate().as_str()).is_ok());
        for bad in ["short", "has spaces in it, 22+ chars", &"a".repeat(65)] {
            assert_eq!(RequestNonce::parse(bad), Err(RequestNonceError), "{bad}");
        }
    }

    #[test]
    fn requests_are_fresh_for_sixty_seconds_either_way() {
        for (timestamp, fresh) in [
            (NOW, true),
            (NOW - 60, true),
            (NOW - 61, false),
            (NOW + 60, true),
            (NOW + 61, false),
            (i64::MIN, false),
            (i64::MAX, false),
        ] {
            assert_eq!(is_fresh(timestamp, NOW), fresh, "{timestamp}");
        }
        // A nonce outlives the last instant its request is fresh.
        assert!(is_fresh(NOW, nonce_expires_at(NOW)));
        assert!(!is_fresh(NOW, nonce_expires_at(NOW) + 1));
    }

    #[test]
    fn device_names_are_short_printable_text() {
        assert_eq!(
            DeviceName::parse("  eauth on laptop ").map(|n| n.as_str().to_owned()),
            Ok("eauth on laptop".to_owned())
        );
        for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
            assert_eq!(DeviceName::parse(bad), Err(DeviceNameError), "{bad:?}");
        }
    }
}
