//! The JSON body extractor of the API: like axum's `Json`, but every rejection (wrong content
//! type, too large, malformed, missing or unknown field) is answered in the guide's envelope
//! with a reason a developer can act on.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request, rejection::BytesRejection},
    http::{StatusCode, header},
};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiFailure, Operation};

/// A request body type, and the endpoint it belongs to.
pub(crate) trait ApiRequest: DeserializeOwned {
    /// The endpoint, for error messages.
    const OPERATION: Operation;

    /// The `client_id` the request names, unparsed.
    fn client_id(&self) -> &str;
}

/// A parsed JSON body.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: ApiRequest> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let fail = |error: ApiError| error.during(T::OPERATION);
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(fail(ApiError::UnsupportedMediaType));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|rejection: BytesRejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    fail(ApiError::PayloadTooLarge)
                } else {
                    fail(ApiError::InvalidRequest(format!(
                        "cannot read body: {}",
                        rejection.body_text()
                    )))
                }
            })?;
        serde_json::from_slice(&body).map(ApiJson).map_err(|error| {
            fail(ApiError::InvalidRequest(format!(
                "invalid JSON body: {error}"
            )))
        })
    }
}
