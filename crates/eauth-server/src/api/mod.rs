//! The server-to-server API under `/authen-api/api/v1`, exactly as the integration guide
//! specifies it: JSON bodies, `X-API-Key`, and the `{"code", "message", "data"}` envelope on
//! every answer, errors included.

mod auth;
mod error;
mod json;
mod mfa_toggle;
mod session_result;
mod session_token;

use axum::{
    Router,
    error_handling::HandleErrorLayer,
    extract::DefaultBodyLimit,
    response::{IntoResponse, Response},
    routing::post,
};
use tower::{BoxError, ServiceBuilder};

pub use error::LoggedCause;
use error::{ApiError, Operation};
pub(crate) use error::{envelope, success};
use json::{ApiJson, ApiRequest};

use crate::state::AppState;

/// Bodies beyond this are refused unread.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The API's routes.
pub fn router(max_concurrent_requests: usize) -> Router<AppState> {
    let routes = Router::new()
        .route("/session-token", post(session_token::handler))
        .route("/mfa/toggle", post(mfa_toggle::handler))
        .route("/session-result", post(session_result::handler))
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed.during(Operation::Other)
        });
    let router = Router::new()
        .nest("/authen-api/api/v1", routes)
        .route("/authen-api/{*rest}", axum::routing::any(not_found))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    limit_concurrency(router, max_concurrent_requests, || {
        ApiError::Overloaded
            .during(Operation::Other)
            .into_response()
    })
}

/// At most `max` requests in flight through `router`; beyond, `overloaded()` at once, with
/// `Retry-After: 1`. Refusing at once instead of queueing requests until their callers time
/// out lets clients retry or fail over.
pub(crate) fn limit_concurrency(
    router: Router<AppState>,
    max: usize,
    overloaded: fn() -> Response,
) -> Router<AppState> {
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |_: BoxError| async move {
                let mut response = overloaded();
                response
                    .headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from_static("1"));
                response
            }))
            .load_shed()
            .concurrency_limit(max),
    )
}

async fn not_found() -> Response {
    ApiError::NotFound.during(Operation::Other).into_response()
}
