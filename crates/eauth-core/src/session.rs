//! Session tokens: the JWT that `session-token` returns and `start-authentication` receives.
//!
//! HS256 with a `kid` header; verification accepts nothing else (RFC 8725 §3.1: a fixed
//! algorithm, no `alg: none`, no key confusion). Expiry is checked against the `now` the
//! caller passes, not the clock, so the rule is testable at any instant.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::{ClientId, Email};

/// Session tokens longer than this are refused unparsed: ours are about 400 bytes.
const MAX_TOKEN_LEN: usize = 2048;

/// The HMAC key that signs session tokens, with its identifier.
pub struct SessionKey {
    kid: String,
    secret: SecretBox<[u8; 32]>,
}

impl SessionKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let mut kid = [0u8; 8];
        rand::fill(&mut kid);
        Self {
            kid: hex::encode(kid),
            secret: SecretBox::new(Box::new(secret)),
        }
    }

    /// Rebuilds a stored key; `None` if the secret is not 32 bytes.
    pub fn from_parts(kid: String, secret: &[u8]) -> Option<Self> {
        let secret: [u8; 32] = secret.try_into().ok()?;
        Some(Self {
            kid,
            secret: SecretBox::new(Box::new(secret)),
        })
    }

    /// The key's identifier, the token header's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The secret, to encrypt for storage.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.secret.expose_secret()
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}, <redacted>)", self.kid)
    }
}

/// What a session token asserts, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    /// The session's unique id (`jti`), the key of its record in the store.
    pub id: Uuid,
    /// The user.
    pub email: Email,
    /// The application (also the token's audience).
    pub client_id: ClientId,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; the token and its session end here.
    pub expires_at: i64,
}

/// Where a sign-in session stands. Only `Pending` can change, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Waiting for the user.
    Pending,
    /// The user proved the second factor.
    Approved,
    /// The user denied, or failed too often.
    Rejected,
    /// Nobody finished it within its lifetime.
    TimedOut,
    /// The service failed while finishing it.
    Error,
}

impl SessionStatus {
    /// The stored and reported spelling (`session-result`'s statuses).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::TimedOut => "TIMEOUT",
            Self::Error => "ERROR",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Approved,
            Self::Rejected,
            Self::TimedOut,
            Self::Error,
        ]
        .into_iter()
        .find(|status| status.as_str() == raw)
    }
}

/// The token's JSON form.
#[derive(Serialize, Deserialize)]
struct WireClaims {
    email: String,
    client_id: String,
    iat: i64,
    exp: i64,
    jti: String,
    iss: String,
    aud: String,
}

/// Why a session token was refused. Deliberately coarse towards the caller: which check failed
/// helps an attacker more than an integrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token we issued: bad form, signature, algorithm, `kid`, issuer or claims.
    #[error("session token is invalid")]
    Invalid,
    /// A genuine token whose lifetime is over.
    #[error("session token has expired")]
    Expired,
}

/// Issues and verifies session tokens for one deployment.
pub struct SessionKeyring {
    key: SessionKey,
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
}

impl SessionKeyring {
    /// A keyring that signs with `key` and names `issuer` (the service's public URL) as `iss`.
    pub fn new(key: SessionKey, issuer: String) -> Self {
        let secret = key.expose_secret();
        let encoding = EncodingKey::from_secret(secret).expect("BUG: a 32-byte HMAC key is valid");
        let decoding = DecodingKey::from_secret(secret).expect("BUG: a 32-byte HMAC key is valid");
        Self {
            key,
            encoding,
            decoding,
            issuer,
        }
    }

    /// Signs a new session `id` for `email` at `client_id`, valid for `ttl_secs` from `now`.
    /// The id must be fresh; time-ordered ones (UUIDv7) keep the sessions' index growing at
    /// its end instead of at random places. Its randomness is not what protects a session:
    /// the token's signature is.
    pub fn issue(
        &self,
        id: Uuid,
        email: &Email,
        client_id: ClientId,
        now: i64,
        ttl_secs: i64,
    ) -> (String, SessionClaims) {
        let claims = SessionClaims {
            id,
            email: email.clone(),
            client_id,
            issued_at: now,
            expires_at: now + ttl_secs,
        };
        (self.token_for(&claims), claims)
    }

    /// The token of a session. HS256 is deterministic, so this gives back the very token
    /// [`issue`](Self::issue) handed out, for callbacks sent when nobody presents it (timeouts).
    pub fn token_for(&self, claims: &SessionClaims) -> String {
        let client_id = claims.client_id;
        let wire = WireClaims {
            email: claims.email.as_str().to_owned(),
            client_id: client_id.to_string(),
            iat: claims.issued_at,
            exp: claims.expires_at,
            jti: claims.id.to_string(),
            iss: self.issuer.clone(),
            aud: client_id.to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key.kid.clone());
        jsonwebtoken::encode(&header, &wire, &self.encoding)
            .expect("BUG: HS256 signing of serialisable claims cannot fail")
    }

    /// Verifies a token presented at `now`: HS256 only, our `kid`, our issuer, audience equal
    /// to its `client_id`, and not expired.
    pub fn verify(&self, token: &str, now: i64) -> Result<SessionClaims, TokenError> {
        let claims = self.decode(token)?;
        if now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Verifies everything [`verify`](Self::verify) does except expiry: for asking about a
    /// session's outcome after its lifetime.
    pub fn decode(&self, token: &str) -> Result<SessionClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid_matches = header
            .kid
            .is_some_and(|kid| bool::from(kid.as_bytes().ct_eq(self.key.kid.as_bytes())));
        if header.alg != Algorithm::HS256 || !kid_matches {
            return Err(TokenError::Invalid);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is ours to check against `now`; the audience is checked against the token's
        // own client_id below, which the library cannot express.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "jti"]);
        let wire = jsonwebtoken::decode::<WireClaims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if wire.aud != wire.client_id {
            return Err(TokenError::Invalid);
        }
        let claims = SessionClaims {
            id: Uuid::parse_str(&wire.jti).map_err(|_| TokenError::Invalid)?,
            email: Email::parse(&wire.email).map_err(|_| TokenError::Invalid)?,
            client_id: ClientId::parse(&wire.client_id).map_err(|_| TokenError::Invalid)?,
            issued_at: wire.iat,
            expires_at: wire.exp,
        };
        Ok(claims)
    }
}

impl fmt::Debug for SessionKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeyring")
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_736_838_342;

    fn keyring() -> SessionKeyring {
        SessionKeyring::new(SessionKey::generate(), "https://eauth.example".into())
    }

    fn unverified_claims(token: &str) -> serde_json::Value {
        let claims = token.split('.').nth(1).expect("claims part");
        let json = data_encoding::BASE64URL_NOPAD
            .decode(claims.as_bytes())
            .expect("base64url");
        serde_json::from_slice(&json).expect("json")
    }

    fn email() -> Email {
        Email::parse("jane@example.com").expect("valid")
    }

    #[test]
    fn an_issued_token_verifies_until_it_expires() {
        let keyring = keyring();
        let client_id = ClientId::generate();
        let (token, issued) = keyring.issue(Uuid::new_v4(), &email(), client_id, NOW, 120);
        assert_eq!(issued.expires_at, NOW + 120);
        assert_eq!(keyring.verify(&token, NOW + 119), Ok(issued.clone()));
        assert_eq!(keyring.verify(&token, NOW + 120), Err(TokenError::Expired));
        assert_eq!(keyring.decode(&token).map(|c| c.id), Ok(issued.id));
    }

    #[test]
    fn a_sessions_token_can_be_rebuilt_from_its_claims() {
        let keyring = keyring();
        let (token, claims) =
            keyring.issue(Uuid::new_v4(), &email(), ClientId::generate(), NOW, 120);
        assert_eq!(keyring.token_for(&claims), token);
    }

    #[test]
    fn tokens_carry_the_documented_header_and_claims() {
        let keyring = keyring();
        let client_id = ClientId::generate();
        let (token, _) = keyring.issue(Uuid::new_v4(), &email(), client_id, NOW, 120);
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.kid.as_deref(), Some(keyring.key.kid()));
        let claims = unverified_claims(&token);
        assert_eq!(claims["email"], "jane@example.com");
        assert_eq!(claims["client_id"], client_id.to_string());
        assert_eq!(claims["aud"], client_id.to_string());
        assert_eq!(claims["iss"], "https://eauth.example");
        assert_eq!(claims["exp"], NOW + 120);
        assert!(
            claims["jti"]
                .as_str()
                .is_some_and(|j| Uuid::parse_str(j).is_ok())
        );
    }

    #[test]
    fn tokens_of_another_key_or_issuer_are_refused() {
        let (token, _) = keyring().issue(Uuid::new_v4(), &email(), ClientId::generate(), NOW, 120);
        assert_eq!(keyring().verify(&token, NOW), Err(TokenError::Invalid));

        let key = SessionKey::generate();
        let same_key =
            SessionKey::from_parts(key.kid().to_owned(), key.expose_secret()).expect("key");
        let other_issuer = SessionKeyring::new(key, "https://elsewhere.example".into());
        let (token, _) =
            other_issuer.issue(Uuid::new_v4(), &email(), ClientId::generate(), NOW, 120);
        let ours = SessionKeyring::new(same_key, "https://eauth.example".into());
        assert_eq!(ours.verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn forged_and_altered_tokens_are_refused() {
        let keyring = keyring();
        let (token, _) = keyring.issue(Uuid::new_v4(), &email(), ClientId::generate(), NOW, 120);
        let [header, claims, signature]: [&str; 3] = token
            .split('.')
            .collect::<Vec<_>>()
            .try_into()
            .expect("three parts");

        // alg: none, with the same claims and no signature.
        let none_header = data_encoding::BASE64URL_NOPAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let none_token = format!("{none_header}.{claims}.");
        // Claims of someone else under the original signature.
        let mut forged = unverified_claims(&token);
        forged["email"] = "mallory@example.com".into();
        let forged_claims = data_encoding::BASE64URL_NOPAD.encode(forged.to_string().as_bytes());
        let swapped = format!("{header}.{forged_claims}.{signature}");

        for bad in [
            none_token.as_str(),
            swapped.as_str(),
            "",
            "a.b.c",
            &"x".repeat(5000),
        ] {
            assert_eq!(
                keyring.verify(bad, NOW),
                Err(TokenError::Invalid),
                "{bad:.40}"
            );
        }
    }
}
