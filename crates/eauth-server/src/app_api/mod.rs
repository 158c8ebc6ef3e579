//! The eAuthenticator app's API under `/app-api/v1` (documented for app writers in
//! `docs/app-api.md`): a device registers with a TOTP code, lists the pending sign-ins of its
//! user, approves one with the number the browser shows, or denies it, and unregisters
//! itself when its account is removed from the app.
//!
//! Every request is signed with the device's Ed25519 key ([`signed`]); answers use the
//! integration API's envelope `{"code", "message", "data"}`.

mod devices;
mod error;
mod signals;
mod signed;
mod signins;

use axum::{
    Router,
    response::{IntoResponse, Response},
    routing::{any, delete, get, post},
};

use self::error::AppApiError;
pub use self::signals::PushSignals;
use crate::{api::limit_concurrency, state::AppState};

/// The app API's routes. Long polls count towards `max_concurrent_requests` like any request.
pub fn router(max_concurrent_requests: usize) -> Router<AppState> {
    let routes = Router::new()
        .route("/devices", post(devices::register))
        .route("/device", delete(devices::remove))
        .route("/signins", get(signins::list))
        .route("/signins/{id}/approve", post(signins::approve))
        .route("/signins/{id}/deny", post(signins::deny))
        .method_not_allowed_fallback(|| async { AppApiError::MethodNotAllowed });
    let router = Router::new()
        .nest("/app-api/v1", routes)
        .route("/app-api/{*rest}", any(not_found));
    limit_concurrency(router, max_concurrent_requests, || {
        AppApiError::Overloaded.into_response()
    })
}

async fn not_found() -> Response {
    AppApiError::NotFound.into_response()
}
