//! Every way an API request can fail, and the one place that turns each into the guide's
//! envelope `{"code", "message", "data"}` with its HTTP status.
//!
//! Internal causes travel in the response's extensions to the logging middleware; the client
//! sees only the code and a message written for it.

use std::{net::IpAddr, sync::Arc};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json};

/// Which endpoint failed: the guide words INVALID_REQUEST messages per endpoint
/// ("get session token failed", "toggle failed").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `POST /authen-api/api/v1/session-token`.
    SessionToken,
    /// `POST /authen-api/api/v1/mfa/toggle`.
    Toggle,
    /// `POST /authen-api/api/v1/session-result`.
    SessionResult,
    /// Anything else under `/authen-api`.
    Other,
}

impl Operation {
    fn failed(self) -> &'static str {
        match self {
            Self::SessionToken => "get session token failed",
            Self::Toggle => "toggle failed",
            Self::SessionResult => "get session result failed",
            Self::Other => "request failed",
        }
    }
}

/// What went wrong, in the terms the README documents.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is malformed or a field is invalid; the reason names it.
    #[error("{0}")]
    InvalidRequest(String),
    /// The body is not `application/json`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// The body exceeds the limit.
    #[error("request body is larger than 16 KiB")]
    PayloadTooLarge,
    /// `X-API-Key` is missing, or is not the current key of the application named.
    #[error("invalid API key")]
    InvalidApiKey,
    /// The source address is outside the application's whitelist.
    #[error("address {0} is not in the application's IP whitelist")]
    IpNotAllowed(IpAddr),
    /// The application is inactive.
    #[error("client not active")]
    Inactive,
    /// The user has not enabled 2FA with this application.
    #[error("2FA is not enabled for this user")]
    MfaNotEnabled,
    /// The user's 2FA is locked after too many wrong codes, until it is enabled again.
    #[error(
        "2FA for this user is locked after too many wrong codes; enable it again with mfa/toggle"
    )]
    MfaLocked,
    /// The server is at its concurrency limit.
    #[error("server is overloaded, retry shortly")]
    Overloaded,
    /// No such endpoint.
    #[error("no such endpoint")]
    NotFound,
    /// The endpoint exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The application changed after the copy the request was decided on (see
    /// `auth::answer`, which decides it again and does not let this escape).
    #[error("internal error")]
    ApplicationChanged,
    /// A fault of ours; the cause is logged, never sent.
    #[error("internal error")]
    Unexpected(#[source] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::UnsupportedMediaType | Self::PayloadTooLarge => {
                "INVALID_REQUEST"
            }
            Self::InvalidApiKey => "INVALID_API_KEY",
            Self::IpNotAllowed(_) => "IP_NOT_ALLOWED",
            Self::Inactive => "INACTIVE",
            Self::MfaNotEnabled => "MFA_NOT_ENABLED",
            Self::MfaLocked => "MFA_LOCKED",
            Self::Overloaded => "OVERLOADED",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::ApplicationChanged | Self::Unexpected(_) => "INTERNAL_ERROR",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidApiKey => StatusCode::UNAUTHORIZED,
            Self::IpNotAllowed(_) | Self::Inactive => StatusCode::FORBIDDEN,
            Self::MfaNotEnabled | Self::MfaLocked => StatusCode::CONFLICT,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::ApplicationChanged | Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// This error as answered by `operation`.
    pub(crate) fn during(self, operation: Operation) -> ApiFailure {
        ApiFailure {
            operation,
            error: self,
        }
    }
}

impl From<eauth_store::StoreError> for ApiError {
    fn from(error: eauth_store::StoreError) -> Self {
        match error {
            eauth_store::StoreError::ApplicationChanged => Self::ApplicationChanged,
            error => Self::Unexpected(error.into()),
        }
    }
}

impl From<eauth_core::VaultError> for ApiError {
    fn from(error: eauth_core::VaultError) -> Self {
        Self::Unexpected(error.into())
    }
}

/// An [`ApiError`] with the endpoint it happened at: what handlers return.
#[derive(Debug)]
pub(crate) struct ApiFailure {
    operation: Operation,
    error: ApiError,
}

/// The internal cause of a failed request, for the logging middleware.
#[derive(Debug, Clone)]
pub struct LoggedCause(pub Arc<anyhow::Error>);

#[derive(Serialize)]
struct Envelope<'a> {
    code: &'a str,
    message: String,
    data: Value,
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let ApiFailure { operation, error } = self;
        let (message, data) = match &error {
            // The guide's exact INACTIVE answer: `"data": null`.
            ApiError::Inactive => (error.to_string(), Value::Null),
            ApiError::InvalidRequest(_)
            | ApiError::UnsupportedMediaType
            | ApiError::PayloadTooLarge => (format!("{}: {error}", operation.failed()), json!("")),
            _ => (error.to_string(), json!("")),
        };
        let mut response = envelope(error.status(), error.code(), message, data);
        if let ApiError::Unexpected(cause) = error {
            response
                .extensions_mut()
                .insert(LoggedCause(Arc::new(cause)));
        }
        response
    }
}

/// The guide's SUCCESS envelope around `data`.
pub(crate) fn success(data: Value) -> Response {
    envelope(StatusCode::OK, "SUCCESS", "Success".to_owned(), data)
}

/// The guide's envelope `{"code", "message", "data"}`, which the app API answers in too.
pub(crate) fn envelope(status: StatusCode, code: &str, message: String, data: Value) -> Response {
    (
        status,
        Json(Envelope {
            code,
            message,
            data,
        }),
    )
        .into_response()
}
