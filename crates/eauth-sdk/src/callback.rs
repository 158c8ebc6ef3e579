//! The server-to-server callback (guide, API reference 2), and why it must be verified.
//!
//! When a sign-in finishes, the service calls the application's registered callback URL:
//!
//! ```text
//! GET {callback_url}?result=true|false&session_token=T&timestamp=UNIX&signature=HEX
//! ```
//!
//! where `signature` is the lowercase hex of HMAC-SHA256, keyed with the callback secret's
//! UTF-8 bytes, over `"{timestamp}.{result}.{session_token}"` — computed here by
//! `eauth_core::callback`, the code the service signs with. A registered callback URL's own
//! query parameters stay in front of these four; tell the verifier about them with
//! [`with_callback_url`](CallbackVerifier::with_callback_url).
//!
//! **Why the signature matters.** The session token is no secret from the user: it passes
//! through their browser (the sign-in URL carries it, and the redirect brings it back). The
//! guide's unsigned callback would therefore let someone who knows only the user's password —
//! enough to get the portal to create a session — call the portal's callback URL themselves
//! with `result=true` and their session token, and be let in without the second factor. The
//! signature proves the service sent the result; the timestamp bounds how long a captured
//! callback stays usable; and the portal acting on each session token's result once makes a
//! replay inside that window worthless.
//!
//! The service delivers at least once (it retries until it gets a 2xx, for a day), so the
//! same genuine callback may come twice: answer a verified repeat with a 2xx as well, without
//! acting on it again. Refused callbacks may get a 4xx.

use std::time::{Duration, SystemTime};

use eauth_core::{CallbackSecret, callback::signature};
use subtle::ConstantTimeEq;
use url::Url;

use crate::{SessionToken, config::ConfigError, unix_seconds};

/// The parameters a callback carries, all required, each once.
const RESULT: &str = "result";
const SESSION_TOKEN: &str = "session_token";
const TIMESTAMP: &str = "timestamp";
const SIGNATURE: &str = "signature";
/// The four, in the order of `verify_pairs`'s slots.
const SIGNED: [&str; 4] = [RESULT, SESSION_TOKEN, TIMESTAMP, SIGNATURE];

/// Query strings longer than this are refused unparsed: a real callback is about 600 bytes.
const MAX_QUERY_LEN: usize = 8 * 1024;
/// Session tokens longer than this are refused: the service's are about 400 bytes.
const MAX_TOKEN_LEN: usize = 2048;

/// A callback whose signature and timestamp were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCallback {
    /// Whether the user passed the second factor (`result=true`).
    pub approved: bool,
    /// The session the result is for: compare it with the token stored when the session was
    /// created, and accept it once.
    pub session_token: SessionToken,
    /// When the service signed the callback, in Unix seconds.
    pub timestamp: i64,
}

/// Why a callback was refused. Every refusal means: do not act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The query string is implausibly long.
    #[error("the callback's query string is too long")]
    TooLong,
    /// A required parameter is absent: one of the four, or one of the registered callback
    /// URL's own.
    #[error("the callback has no {0} parameter")]
    Missing(String),
    /// A parameter is given more than once (which value would the signature cover?).
    #[error("the callback has the {0} parameter more than once")]
    Duplicate(String),
    /// A parameter that callbacks do not carry, or one of the registered callback URL's own
    /// with another value (its name, shortened).
    #[error("the callback has an unexpected parameter {0:?}")]
    Unexpected(String),
    /// A parameter's value is not of its form: `result` not `true`/`false`, `timestamp` not
    /// decimal seconds, `signature` not 64 lowercase hex digits, `session_token` empty or
    /// too long.
    #[error("the callback's {0} parameter is malformed")]
    Malformed(&'static str),
    /// The signature is not the callback secret's over these values: forged or tampered
    /// with, or signed with another secret.
    #[error("the callback's signature is not valid")]
    BadSignature,
    /// Signed too long ago (or too far in the future) for the configured tolerance.
    #[error("the callback's timestamp {timestamp} is too far from now ({now})")]
    OutsideTolerance {
        /// The callback's timestamp, Unix seconds.
        timestamp: i64,
        /// The portal's clock, Unix seconds.
        now: i64,
    },
}

/// Checks callbacks with the application's callback secret.
///
/// [`Client::verify_callback`](crate::Client::verify_callback) uses one; this type is for a
/// callback endpoint that runs without a client.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use eauth_sdk::{CallbackError, CallbackVerifier};
///
/// let verifier = CallbackVerifier::new("ecs_example")?;
/// let token = "eyJhbGciOiJIUzI1NiJ9.e30.sig";
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
///
/// // What the service sends (built here with the same secret, as a test would).
/// let query = verifier.signed_query(true, token, 1_700_000_000);
/// let callback = verifier.verify(&query, now)?;
/// assert!(callback.approved);
/// assert_eq!(callback.session_token.as_str(), token);
///
/// // The same values with the result flipped no longer match the signature.
/// let forged = query.replace("result=true", "result=false");
/// assert_eq!(verifier.verify(&forged, now), Err(CallbackError::BadSignature));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CallbackVerifier {
    /// Its `Debug` is redacted.
    secret: CallbackSecret,
    tolerance: Duration,
    /// The registered callback URL's own query parameters, which every callback carries too.
    registered: Vec<(String, String)>,
}

impl CallbackVerifier {
    /// A verifier for `secret` (surrounding white space ignored) with the default tolerance
    /// of 300 s; refuses an empty secret.
    pub fn new(secret: &str) -> Result<Self, ConfigError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(ConfigError::CallbackSecret);
        }
        Ok(Self {
            secret: CallbackSecret::from_stored(secret.to_owned()),
            tolerance: crate::config::DEFAULT_CALLBACK_TOLERANCE,
            registered: Vec::new(),
        })
    }

    /// The same verifier with another tolerance between a callback's timestamp and `now`.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The same verifier for an application whose registered callback URL has a query string
    /// of its own (`https://portal.example.com/eauth?tenant=7`): the service keeps those
    /// parameters in front of its four, so callbacks must carry them too, each once and with
    /// its registered value. They are not signed: compare, never trust, anything read from
    /// them. A URL without a query changes nothing.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use eauth_sdk::CallbackVerifier;
    ///
    /// let verifier = CallbackVerifier::new("ecs_example")?
    ///     .with_callback_url("https://portal.example.com/eauth?tenant=7")?;
    /// let signed = verifier.signed_query(true, "a.b.c", 1_700_000_000);
    /// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// assert!(verifier.verify(&format!("tenant=7&{signed}"), now).is_ok());
    /// assert!(verifier.verify(&format!("tenant=8&{signed}"), now).is_err());
    /// assert!(verifier.verify(&signed, now).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_callback_url(mut self, registered: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::CallbackUrl(reason.to_owned());
        let url = Url::parse(registered.trim()).map_err(|_| invalid("not an absolute URL"))?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in url.query_pairs() {
            if SIGNED.contains(&name.as_ref()) {
                return Err(invalid(
                    "its query has a parameter the service adds to callbacks",
                ));
            }
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(invalid("its query has a parameter more than once"));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        self.registered = pairs;
        Ok(self)
    }

    /// Verifies a callback from its raw query string (with or without the leading `?`),
    /// as the web framework hands it over (`axum::extract::RawQuery`, `Uri::query`, ...).
    ///
    /// Prefer this to [`verify_pairs`](Self::verify_pairs): a query string already parsed
    /// into a map has lost its duplicate parameters, which this check refuses.
    pub fn verify(&self, query: &str, now: SystemTime) -> Result<VerifiedCallback, CallbackError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        if query.len() > MAX_QUERY_LEN {
            return Err(CallbackError::TooLong);
        }
        self.verify_pairs(url::form_urlencoded::parse(query.as_bytes()), now)
    }

    /// Verifies a callback from its decoded query parameters, in order.
    ///
    /// Exactly `result`, `session_token`, `timestamp` and `signature` (and the registered
    /// callback URL's own parameters, if any), each once: anything else is refused. Then the
    /// signature is checked (in constant time), then the timestamp against `now` and the
    /// tolerance.
    pub fn verify_pairs<K, V>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
        now: SystemTime,
    ) -> Result<VerifiedCallback, CallbackError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut values: [Option<String>; 4] = Default::default();
        let mut registered_seen = vec![false; self.registered.len()];
        for (name, value) in pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            if let Some(slot) = SIGNED.iter().position(|signed| *signed == name) {
                if values[slot].is_some() {
                    return Err(CallbackError::Duplicate(name.to_owned()));
                }
                values[slot] = Some(value.to_owned());
                continue;
            }
            match self.registered.iter().position(|(known, _)| known == name) {
                Some(i) if registered_seen[i] => {
                    return Err(CallbackError::Duplicate(name.to_owned()));
                }
                Some(i) if self.registered[i].1 == value => registered_seen[i] = true,
                _ => return Err(CallbackError::Unexpected(name.chars().take(40).collect())),
            }
        }
        if let Some(i) = registered_seen.iter().position(|seen| !seen) {
            return Err(CallbackError::Missing(self.registered[i].0.clone()));
        }
        let [result, session_token, timestamp, signature] = values;
        let missing = |name: &str| CallbackError::Missing(name.to_owned());
        let result = result.ok_or_else(|| missing(RESULT))?;
        let session_token = session_token.ok_or_else(|| missing(SESSION_TOKEN))?;
        let timestamp = timestamp.ok_or_else(|| missing(TIMESTAMP))?;
        let signature = signature.ok_or_else(|| missing(SIGNATURE))?;

        let approved = match result.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(CallbackError::Malformed(RESULT)),
        };
        if session_token.is_empty() || session_token.len() > MAX_TOKEN_LEN {
            return Err(CallbackError::Malformed(SESSION_TOKEN));
        }
        let timestamp = parse_timestamp(&timestamp)?;
        if !is_lowercase_hex_sha256(&signature) {
            return Err(CallbackError::Malformed(SIGNATURE));
        }

        // Compared in constant time, so a forger learns nothing from how long a refusal
        // takes. The values are canonical (checked above), so signing them again gives the
        // very string the service signed.
        let expected = self.sign(approved, &session_token, timestamp);
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return Err(CallbackError::BadSignature);
        }

        let now = i64::try_from(unix_seconds(now)).unwrap_or(i64::MAX);
        if now.abs_diff(timestamp) > self.tolerance.as_secs() {
            return Err(CallbackError::OutsideTolerance { timestamp, now });
        }
        Ok(VerifiedCallback {
            approved,
            session_token: SessionToken::from(session_token),
            timestamp,
        })
    }

    /// The signature the service puts on a callback: lowercase hex of HMAC-SHA256 over
    /// `"{timestamp}.{result}.{session_token}"`, by the service's own code
    /// (`eauth_core::callback::signature`), so the two sides cannot drift apart.
    pub fn sign(&self, approved: bool, session_token: &str, timestamp: i64) -> String {
        signature(&self.secret, timestamp, approved, session_token)
    }

    /// The query string of a callback as the service sends it (without the registered URL's
    /// own parameters), signed with this secret: to test a callback endpoint without the
    /// service.
    pub fn signed_query(&self, approved: bool, session_token: &str, timestamp: i64) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair(RESULT, if approved { "true" } else { "false" })
            .append_pair(SESSION_TOKEN, session_token)
            .append_pair(TIMESTAMP, &timestamp.to_string())
            .append_pair(SIGNATURE, &self.sign(approved, session_token, timestamp))
            .finish()
    }
}

/// Decimal Unix seconds as the service writes them: digits only (no sign, no white space), no
/// leading zero, within `i64`.
fn parse_timestamp(raw: &str) -> Result<i64, CallbackError> {
    let canonical = !raw.is_empty()
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    if !canonical {
        return Err(CallbackError::Malformed(TIMESTAMP));
    }
    raw.parse().map_err(|_| CallbackError::Malformed(TIMESTAMP))
}

/// 64 lowercase hex digits, the contract's spelling.
fn is_lowercase_hex_sha256(raw: &str) -> bool {
    raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const SECRET: &str = "ecs_kzq2c7x4m3d5v6b7n8p9q2r3s4t5u6v7";
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJqdGkiOiIxIn0.c2lnbmF0dXJl";
    const SIGNED_AT: i64 = 1_700_000_000;

    fn at(seconds: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).expect("after 1970"))
    }

    fn verifier() -> CallbackVerifier {
        CallbackVerifier::new(SECRET).expect("secret")
    }

    fn valid_query(approved: bool) -> String {
        verifier().signed_query(approved, TOKEN, SIGNED_AT)
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_the_contracts_string_in_lowercase_hex() {
        // Computed independently: printf '%s' '1700000000.true.TOKEN' |
        //   openssl dgst -sha256 -hmac 'ecs_kzq2c7x4m3d5v6b7n8p9q2r3s4t5u6v7'
        let expected = "ba33554ab041d31b4f48f598c5402969486ca726d97582dfc69b13aba04247ea";
        assert_eq!(verifier().sign(true, TOKEN, SIGNED_AT), expected);
    }

    #[test]
    fn a_valid_callback_is_accepted_with_its_values() {
        for approved in [true, false] {
            let callback = verifier()
                .verify(&valid_query(approved), at(SIGNED_AT + 5))
                .expect("valid");
            assert_eq!(
                callback,
                VerifiedCallback {
                    approved,
                    session_token: SessionToken::from(TOKEN.to_owned()),
                    timestamp: SIGNED_AT,
                }
            );
        }
    }

    #[test]
    fn parameters_may_come_in_any_order_and_with_a_leading_question_mark() {
        let signature = verifier().sign(true, TOKEN, SIGNED_AT);
        let query = format!(
            "?signature={signature}&timestamp={SIGNED_AT}&session_token={TOKEN}&result=true"
        );
        assert!(verifier().verify(&query, at(SIGNED_AT)).is_ok());
    }

    #[test]
    fn a_callback_signed_with_another_secret_is_forged() {
        let forger = CallbackVerifier::new("ecs_guessed").expect("secret");
        let query = forger.signed_query(true, TOKEN, SIGNED_AT);
        assert_eq!(
            verifier().verify(&query, at(SIGNED_AT)),
            Err(CallbackError::BadSignature)
        );
    }

    #[test]
    fn a_callback_with_any_value_changed_is_refused() {
        let query = valid_query(false);
        let tampered = [
            query.replace("result=false", "result=true"),
            query.replace(TOKEN, "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiIyIn0.b3RoZXI"),
            query.replace(&SIGNED_AT.to_string(), &(SIGNED_AT + 1).to_string()),
        ];
        for query in tampered {
            assert_eq!(
                verifier().verify(&query, at(SIGNED_AT)),
                Err(CallbackError::BadSignature),
                "{query}"
            );
        }
    }

    #[test]
    fn the_timestamp_must_be_within_the_tolerance_either_way() {
        let query = valid_query(true);
        let v = verifier();
        assert!(v.verify(&query, at(SIGNED_AT + 300)).is_ok());
        assert!(v.verify(&query, at(SIGNED_AT - 300)).is_ok());
        for now in [SIGNED_AT + 301, SIGNED_AT - 301, 0] {
            assert_eq!(
                v.verify(&query, at(now)),
                Err(CallbackError::OutsideTolerance {
                    timestamp: SIGNED_AT,
                    now
                })
            );
        }
        let strict = verifier().with_tolerance(Duration::from_secs(10));
        assert!(strict.verify(&query, at(SIGNED_AT + 10)).is_ok());
        assert!(strict.verify(&query, at(SIGNED_AT + 11)).is_err());
    }

    #[test]
    fn missing_duplicated_and_unexpected_parameters_are_refused() {
        let query = valid_query(true);
        let without = |name: &str| {
            query
                .split('&')
                .filter(|pair| !pair.starts_with(&format!("{name}=")))
                .collect::<Vec<_>>()
                .join("&")
        };
        for (name, expected) in [
            (RESULT, CallbackError::Missing(RESULT.into())),
            (SESSION_TOKEN, CallbackError::Missing(SESSION_TOKEN.into())),
            (TIMESTAMP, CallbackError::Missing(TIMESTAMP.into())),
            (SIGNATURE, CallbackError::Missing(SIGNATURE.into())),
        ] {
            assert_eq!(
                verifier().verify(&without(name), at(SIGNED_AT)),
                Err(expected)
            );
        }
        let cases = [
            (
                format!("{query}&result=true"),
                CallbackError::Duplicate(RESULT.into()),
            ),
            (
                format!("result=false&{query}"),
                CallbackError::Duplicate(RESULT.into()),
            ),
            (
                format!("{query}&session_token=other"),
                CallbackError::Duplicate(SESSION_TOKEN.into()),
            ),
            (
                format!("{query}&timestamp=1"),
                CallbackError::Duplicate(TIMESTAMP.into()),
            ),
            (
                format!("{query}&signature=00"),
                CallbackError::Duplicate(SIGNATURE.into()),
            ),
            (
                format!("{query}&email=victim@example.com"),
                CallbackError::Unexpected("email".into()),
            ),
            (
                format!("{query}&Result=true"),
                CallbackError::Unexpected("Result".into()),
            ),
            (String::new(), CallbackError::Missing(RESULT.into())),
            ("x".repeat(MAX_QUERY_LEN + 1), CallbackError::TooLong),
        ];
        for (query, expected) in cases {
            assert_eq!(
                verifier().verify(&query, at(SIGNED_AT)),
                Err(expected),
                "{query:.80}"
            );
        }
    }

    #[test]
    fn malformed_values_are_refused_before_the_signature_is_checked() {
        let v = verifier();
        let signature = v.sign(true, TOKEN, SIGNED_AT);
        let query = |result: &str, token: &str, timestamp: &str, signature: &str| {
            format!(
                "result={result}&session_token={token}&timestamp={timestamp}&signature={signature}"
            )
        };
        let ts = SIGNED_AT.to_string();
        let long_token = "a".repeat(MAX_TOKEN_LEN + 1);
        let cases = [
            (query("TRUE", TOKEN, &ts, &signature), RESULT),
            (query("1", TOKEN, &ts, &signature), RESULT),
            (query("", TOKEN, &ts, &signature), RESULT),
            (query("true", "", &ts, &signature), SESSION_TOKEN),
            (query("true", &long_token, &ts, &signature), SESSION_TOKEN),
            (query("true", TOKEN, "", &signature), TIMESTAMP),
            (query("true", TOKEN, "%2B1700000000", &signature), TIMESTAMP),
            (query("true", TOKEN, "-1", &signature), TIMESTAMP),
            (
                query("true", TOKEN, &format!("0{ts}"), &signature),
                TIMESTAMP,
            ),
            (query("true", TOKEN, "1.7e9", &signature), TIMESTAMP),
            (
                query("true", TOKEN, "99999999999999999999", &signature),
                TIMESTAMP,
            ),
            (
                query("true", TOKEN, &ts, &signature.to_uppercase()),
                SIGNATURE,
            ),
            (query("true", TOKEN, &ts, &signature[..63]), SIGNATURE),
            (
                query("true", TOKEN, &ts, &format!("{signature}00")),
                SIGNATURE,
            ),
            (query("true", TOKEN, &ts, &"g".repeat(64)), SIGNATURE),
            (query("true", TOKEN, &ts, ""), SIGNATURE),
        ];
        for (query, parameter) in cases {
            assert_eq!(
                v.verify(&query, at(SIGNED_AT)),
                Err(CallbackError::Malformed(parameter)),
                "{query:.120}"
            );
        }
    }

    #[test]
    fn already_parsed_pairs_are_checked_the_same_way() {
        let v = verifier();
        let signature = v.sign(true, TOKEN, SIGNED_AT);
        let ts = SIGNED_AT.to_string();
        let pairs = vec![
            ("result", "true"),
            ("session_token", TOKEN),
            ("timestamp", ts.as_str()),
            ("signature", signature.as_str()),
        ];
        assert!(v.verify_pairs(pairs.clone(), at(SIGNED_AT)).is_ok());
        let mut doubled = pairs.clone();
        doubled.push(("result", "true"));
        assert_eq!(
            v.verify_pairs(doubled, at(SIGNED_AT)),
            Err(CallbackError::Duplicate(RESULT.into()))
        );
    }

    #[test]
    fn a_registered_callback_urls_own_parameters_are_expected_with_their_values() {
        // The service keeps the registered URL's query in front of the four it adds.
        let v = verifier()
            .with_callback_url("https://portal.example.com/eauth/callback?tenant=7&env=prod")
            .expect("url");
        let signed = valid_query(true);
        assert!(
            v.verify(&format!("tenant=7&env=prod&{signed}"), at(SIGNED_AT))
                .is_ok()
        );
        let cases = [
            (signed.clone(), CallbackError::Missing("tenant".into())),
            (
                format!("tenant=7&{signed}"),
                CallbackError::Missing("env".into()),
            ),
            (
                format!("tenant=8&env=prod&{signed}"),
                CallbackError::Unexpected("tenant".into()),
            ),
            (
                format!("tenant=7&tenant=7&env=prod&{signed}"),
                CallbackError::Duplicate("tenant".into()),
            ),
            (
                format!("tenant=7&env=prod&other=1&{signed}"),
                CallbackError::Unexpected("other".into()),
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(
                v.verify(&query, at(SIGNED_AT)),
                Err(expected),
                "{query:.60}"
            );
        }
        // Without a query, the registered URL changes nothing.
        let plain = verifier()
            .with_callback_url("https://portal.example.com/eauth/callback")
            .expect("url");
        assert!(plain.verify(&signed, at(SIGNED_AT)).is_ok());
    }

    #[test]
    fn a_registered_url_that_could_not_work_is_refused() {
        for url in [
            "not a url",
            "https://portal.example.com/cb?result=true",
            "https://portal.example.com/cb?signature=x",
            "https://portal.example.com/cb?a=1&a=2",
        ] {
            assert!(
                matches!(
                    verifier().with_callback_url(url),
                    Err(ConfigError::CallbackUrl(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let v = verifier();
        for query in [
            "%",
            "%ff%fe=%00",
            "result=%E2%82",
            "&&&&",
            "=",
            "result",
            "result=true&session_token",
            "\u{0}\u{1}",
            "résult=vrai",
        ] {
            assert!(v.verify(query, at(SIGNED_AT)).is_err(), "{query:?}");
        }
    }

    #[test]
    fn an_empty_secret_is_refused_and_the_secret_never_prints() {
        assert!(matches!(
            CallbackVerifier::new("  \n"),
            Err(ConfigError::CallbackSecret)
        ));
        assert!(!format!("{:?}", verifier()).contains(SECRET));
        // A secret pasted with its newline still verifies the service's signatures.
        let pasted = CallbackVerifier::new(&format!("{SECRET}\n")).expect("secret");
        assert!(pasted.verify(&valid_query(true), at(SIGNED_AT)).is_ok());
    }
}
