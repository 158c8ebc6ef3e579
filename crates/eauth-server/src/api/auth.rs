//! Who is calling: the application named by `client_id`, proven by its current API key and
//! its whitelisted address.

use std::net::IpAddr;

use axum::http::HeaderMap;
use eauth_core::{ApiKeyHash, ClientId};
use eauth_store::Application;

use super::error::ApiError;
use crate::state::AppState;

/// Authenticates an API call, in this order: a well-formed `client_id`; `X-API-Key` equal to
/// that application's current key; the source address in its whitelist; the application
/// active. Only a caller that holds the key learns whether the application is inactive.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    source: IpAddr,
    client_id: &str,
) -> Result<Application, ApiError> {
    let client_id =
        ClientId::parse(client_id).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    // Recorded only once parsed: raw request text does not go into logs.
    tracing::Span::current().record("client_id", tracing::field::display(client_id));
    let presented = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let application = state.store.application(client_id).await?;
    let Some(application) = application else {
        // Same work as for a known application, so response time does not reveal which
        // client ids exist.
        let _ = ApiKeyHash::of("").matches(presented);
        return Err(ApiError::InvalidApiKey);
    };
    if !application.api_key_hash.matches(presented) {
        return Err(ApiError::InvalidApiKey);
    }
    if !application.ip_allow_list.allows(source) {
        return Err(ApiError::IpNotAllowed(source));
    }
    if !application.active {
        return Err(ApiError::Inactive);
    }
    Ok(application)
}
