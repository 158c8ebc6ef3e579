//! Why a call to the service failed: one variant per code of the guide's envelope
//! (`{"code", "message", "data"}`, see the README's API table), and the failures around it —
//! no answer at all, no answer in time, or an answer that is not the envelope.

use std::{fmt, time::Duration};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

/// Why an API call failed.
///
/// The service's codes each have a variant; a code this version of the SDK does not know
/// arrives as [`Error::Other`] rather than being guessed at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `INVALID_REQUEST`: a field was refused (an invalid email or secret, ...). The message is
    /// the service's, naming the field, e.g. `get session token failed: email is not a valid
    /// address`.
    #[error("the service refused the request: {message}")]
    InvalidRequest {
        /// The service's explanation.
        message: String,
    },
    /// `INVALID_API_KEY`: the key is wrong, was rotated, or is another application's.
    #[error("the service refused the API key (wrong, rotated, or of another application)")]
    InvalidApiKey,
    /// `IP_NOT_ALLOWED`: this server's address is not in the application's IP whitelist. The
    /// message names the address the service saw, which is what to whitelist.
    #[error("the service refused this server's address: {message}")]
    IpNotAllowed {
        /// The service's explanation.
        message: String,
    },
    /// `INACTIVE`: the application is deactivated.
    #[error("the application is deactivated (client not active)")]
    Inactive,
    /// `MFA_NOT_ENABLED`: a session was asked for a user who has not enabled 2FA with this
    /// application.
    #[error("the user has not enabled 2FA with this application")]
    MfaNotEnabled,
    /// `MFA_LOCKED`: the user's 2FA is locked after too many wrong codes; enable it again
    /// (a new secret) to unlock it.
    #[error("2FA is locked for this user after too many wrong codes")]
    MfaLocked,
    /// `OVERLOADED`, still after the retries the call allows.
    #[error("the service is overloaded; retry later")]
    Overloaded {
        /// How long the service asked callers to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
    },
    /// `NOT_FOUND`: the service has no such endpoint; usually a wrong `base_url`.
    #[error("the service has no such endpoint (is base_url right?)")]
    NotFound,
    /// `METHOD_NOT_ALLOWED`.
    #[error("the service does not allow this method on the endpoint")]
    MethodNotAllowed,
    /// `INTERNAL_ERROR`: a fault of the service; its log has the cause.
    #[error("the service failed internally")]
    Internal,
    /// A code this SDK does not know.
    #[error("the service answered {code}: {message}")]
    Other {
        /// The envelope's `code`.
        code: String,
        /// The envelope's `message`.
        message: String,
    },
    /// No answer within the configured timeout. The request may or may not have been
    /// processed.
    #[error("the service did not answer in time")]
    Timeout,
    /// No answer: the connection could not be made (refused, DNS, TLS) or broke.
    #[error("cannot reach the service")]
    Transport(#[source] TransportError),
    /// An answer that is not the guide's envelope, or whose `data` is not what the endpoint
    /// promises (a proxy's error page, a different service at `base_url`, ...).
    #[error("unexpected answer from the service (HTTP {status}): {reason}")]
    MalformedResponse {
        /// The HTTP status of the answer.
        status: u16,
        /// What was wrong with it.
        reason: String,
    },
}

/// A failure below HTTP: connecting, TLS, or reading the answer.
///
/// Opaque so that the HTTP client behind it can change without changing this API; its
/// [`source`](std::error::Error::source) chain has the details.
pub struct TransportError(reqwest::Error);

impl TransportError {
    /// Whether the connection was never made, so the request certainly was not processed.
    pub fn is_connect(&self) -> bool {
        self.0.is_connect()
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<reqwest::Error> for Error {
    fn from(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout
        } else {
            Self::Transport(TransportError(error))
        }
    }
}

/// The guide's envelope.
#[derive(Deserialize)]
struct Envelope {
    code: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Value,
}

/// Reads an answer: the envelope's `data` on `SUCCESS`, the matching [`Error`] otherwise.
pub(crate) fn decode_answer(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Value, Error> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|error| malformed(status, format!("not the service's JSON envelope ({error})")))?;
    let message = envelope.message.unwrap_or_default();
    Err(match envelope.code.as_str() {
        "SUCCESS" if status.is_success() => return Ok(envelope.data),
        "SUCCESS" => malformed(status, "SUCCESS with an error status".to_owned()),
        "INVALID_REQUEST" => Error::InvalidRequest { message },
        "INVALID_API_KEY" => Error::InvalidApiKey,
        "IP_NOT_ALLOWED" => Error::IpNotAllowed { message },
        "INACTIVE" => Error::Inactive,
        "MFA_NOT_ENABLED" => Error::MfaNotEnabled,
        "MFA_LOCKED" => Error::MfaLocked,
        "OVERLOADED" => Error::Overloaded { retry_after },
        "NOT_FOUND" => Error::NotFound,
        "METHOD_NOT_ALLOWED" => Error::MethodNotAllowed,
        "INTERNAL_ERROR" => Error::Internal,
        _ => Error::Other {
            code: envelope.code,
            message,
        },
    })
}

/// A [`Error::MalformedResponse`].
pub(crate) fn malformed(status: StatusCode, reason: String) -> Error {
    Error::MalformedResponse {
        status: status.as_u16(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: &Value) -> Result<Value, Error> {
        let status = StatusCode::from_u16(status).expect("status");
        decode_answer(
            status,
            Some(Duration::from_secs(1)),
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn success_yields_the_data() {
        let data = answer(
            200,
            &json!({"code": "SUCCESS", "message": "Success", "data": {"session_token": "t"}}),
        )
        .expect("success");
        assert_eq!(data, json!({"session_token": "t"}));
    }

    /// Whether an error is the one a case expects.
    type IsExpected = fn(&Error) -> bool;

    #[test]
    fn every_code_of_the_readme_has_its_variant() {
        let envelope =
            |code: &str, message: &str| json!({"code": code, "message": message, "data": ""});
        let cases: [(u16, Value, IsExpected); 11] = [
            (
                400,
                envelope("INVALID_REQUEST", "toggle failed: email is empty"),
                |e| matches!(e, Error::InvalidRequest { message } if message == "toggle failed: email is empty"),
            ),
            (401, envelope("INVALID_API_KEY", "invalid API key"), |e| {
                matches!(e, Error::InvalidApiKey)
            }),
            (
                403,
                envelope("IP_NOT_ALLOWED", "address 192.0.2.1 is not allowed"),
                |e| matches!(e, Error::IpNotAllowed { message } if message.contains("192.0.2.1")),
            ),
            (
                403,
                json!({"code": "INACTIVE", "message": "client not active", "data": null}),
                |e| matches!(e, Error::Inactive),
            ),
            (
                409,
                envelope("MFA_NOT_ENABLED", "2FA is not enabled"),
                |e| matches!(e, Error::MfaNotEnabled),
            ),
            (409, envelope("MFA_LOCKED", "2FA is locked"), |e| {
                matches!(e, Error::MfaLocked)
            }),
            (
                503,
                envelope("OVERLOADED", "busy"),
                |e| matches!(e, Error::Overloaded { retry_after: Some(d) } if *d == Duration::from_secs(1)),
            ),
            (404, envelope("NOT_FOUND", "no such endpoint"), |e| {
                matches!(e, Error::NotFound)
            }),
            (
                405,
                envelope("METHOD_NOT_ALLOWED", "method not allowed"),
                |e| matches!(e, Error::MethodNotAllowed),
            ),
            (500, envelope("INTERNAL_ERROR", "internal error"), |e| {
                matches!(e, Error::Internal)
            }),
            (
                418,
                envelope("TEAPOT", "short and stout"),
                |e| matches!(e, Error::Other { code, message } if code == "TEAPOT" && message == "short and stout"),
            ),
        ];
        for (status, body, expected) in cases {
            let error = answer(status, &body).expect_err("an error");
            assert!(expected(&error), "{body} gave {error:?}");
        }
    }

    #[test]
    fn anything_but_the_envelope_is_a_malformed_response() {
        let status = StatusCode::BAD_GATEWAY;
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"{}",
            b"{\"code\": 5}",
            b"[\"SUCCESS\"]",
        ] {
            assert!(
                matches!(
                    decode_answer(status, None, body),
                    Err(Error::MalformedResponse { status: 502, .. })
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let ok_code_bad_status = json!({"code": "SUCCESS", "message": "Success", "data": ""});
        assert!(matches!(
            answer(500, &ok_code_bad_status),
            Err(Error::MalformedResponse { status: 500, .. })
        ));
    }
}
