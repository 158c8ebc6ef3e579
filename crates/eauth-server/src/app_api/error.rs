//! Every way an app request can fail, and the one place that turns each into the envelope
//! `{"code", "message", "data"}` with its HTTP status (docs/app-api.md lists them).

use std::sync::Arc;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use eauth_core::SessionStatus;
use serde_json::{Value, json};

use crate::api::{LoggedCause, envelope};

/// What went wrong, in the terms `docs/app-api.md` documents.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppApiError {
    /// The body or a parameter is malformed; the reason names it.
    #[error("{0}")]
    InvalidRequest(String),
    /// The body exceeds the limit.
    #[error("request body is larger than 16 KiB")]
    PayloadTooLarge,
    /// A signature header is missing or malformed.
    #[error("{0}")]
    Unsigned(String),
    /// The timestamp is more than 60 s from the service's clock.
    #[error("the request's timestamp is more than 60 seconds from the service's clock")]
    Stale,
    /// The nonce was used before.
    #[error("this request was already received (nonce used before)")]
    Replayed,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// No device has this id (any more).
    #[error("this device is not registered (2FA may have been set up again): register it again")]
    UnknownDevice,
    /// Registration: the code is wrong, or nobody is enrolled with this client_id and email.
    #[error("the code is not correct, or 2FA is not enabled for this account")]
    InvalidCode,
    /// Registration: the code's time step was used already.
    #[error("the code was already used: wait for the next one")]
    CodeAlreadyUsed,
    /// Registration: too many wrong codes lately.
    #[error("too many wrong codes for this account: try again later")]
    Throttled {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// The enrollment is locked after too many wrong codes.
    #[error("2FA for this account is locked after too many wrong codes")]
    Locked,
    /// Registration: this public key belongs to a registered device already.
    #[error("this public key is registered already: generate a new key")]
    KeyInUse,
    /// No such endpoint, or no such sign-in for this device.
    #[error("not found")]
    NotFound,
    /// The endpoint exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The number is not the one the sign-in page shows.
    #[error("that is not the number shown in the browser")]
    WrongNumber {
        /// Numbers the sign-in still takes (0: it was refused).
        attempts_left: u32,
        /// The sign-in's status after this one: PENDING, or REJECTED after the last.
        status: SessionStatus,
    },
    /// The sign-in is over.
    #[error("this sign-in is over")]
    SigninFinished(SessionStatus),
    /// The server is at its concurrency limit.
    #[error("server is overloaded, retry shortly")]
    Overloaded,
    /// A fault of ours; the cause is logged, never sent.
    #[error("internal error")]
    Unexpected(#[source] anyhow::Error),
}

impl AppApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::PayloadTooLarge => "INVALID_REQUEST",
            Self::Unsigned(_) => "UNSIGNED",
            Self::Stale => "STALE_REQUEST",
            Self::Replayed => "REPLAYED_REQUEST",
            Self::BadSignature => "BAD_SIGNATURE",
            Self::UnknownDevice => "UNKNOWN_DEVICE",
            Self::InvalidCode => "INVALID_CODE",
            Self::CodeAlreadyUsed => "CODE_ALREADY_USED",
            Self::Throttled { .. } => "THROTTLED",
            Self::Locked => "LOCKED",
            Self::KeyInUse => "KEY_IN_USE",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::WrongNumber { .. } => "WRONG_NUMBER",
            Self::SigninFinished(_) => "SIGNIN_FINISHED",
            Self::Overloaded => "OVERLOADED",
            Self::Unexpected(_) => "INTERNAL_ERROR",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unsigned(_)
            | Self::Stale
            | Self::Replayed
            | Self::BadSignature
            | Self::UnknownDevice => StatusCode::UNAUTHORIZED,
            Self::InvalidCode | Self::Locked => StatusCode::FORBIDDEN,
            Self::CodeAlreadyUsed | Self::KeyInUse | Self::SigninFinished(_) => {
                StatusCode::CONFLICT
            }
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::WrongNumber { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn data(&self) -> Value {
        match self {
            Self::Throttled { retry_after } => json!({ "retry_after": retry_after }),
            Self::WrongNumber {
                attempts_left,
                status,
            } => json!({ "attempts_left": attempts_left, "status": status.as_str() }),
            Self::SigninFinished(status) => json!({ "status": status.as_str() }),
            _ => json!(""),
        }
    }
}

impl From<eauth_store::StoreError> for AppApiError {
    fn from(error: eauth_store::StoreError) -> Self {
        Self::Unexpected(error.into())
    }
}

impl IntoResponse for AppApiError {
    fn into_response(self) -> Response {
        let mut response = envelope(self.status(), self.code(), self.to_string(), self.data());
        if let Self::Throttled { retry_after } = &self
            && let Ok(value) = retry_after.to_string().parse()
        {
            response.headers_mut().insert("retry-after", value);
        }
        if let Self::Unexpected(cause) = self {
            response
                .extensions_mut()
                .insert(LoggedCause(Arc::new(cause)));
        }
        response
    }
}
