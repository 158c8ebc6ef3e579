//! Who is calling: the application named by `client_id`, proven by its current API key and
//! its whitelisted address.

use std::net::IpAddr;

use axum::{http::HeaderMap, response::Response};
use eauth_core::{ApiKeyHash, ClientId};
use eauth_store::Application;

use super::{
    ApiRequest,
    error::{ApiError, ApiFailure},
};
use crate::state::AppState;

/// How many times a request is decided on the application as read before it fails, each time
/// the application changed between the read and the call's write: once in a long while, three
/// in a row only if something is badly wrong.
const DECISIONS: usize = 3;

/// The calling application's id, parsed, and the key it presented.
fn credentials<'h>(
    headers: &'h HeaderMap,
    client_id: &str,
) -> Result<(ClientId, &'h str), ApiError> {
    let client_id =
        ClientId::parse(client_id).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    // Recorded only once parsed: raw request text does not go into logs.
    tracing::Span::current().record("client_id", tracing::field::display(client_id));
    let presented = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    Ok((client_id, presented))
}

/// Checks, in this order: `presented` equal to the application's key; the source address in
/// its whitelist; the application active. Only a caller that holds the key learns whether the
/// application is inactive.
fn admit(
    application: Option<Application>,
    presented: &str,
    source: IpAddr,
) -> Result<Application, ApiError> {
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

/// Answers an API request, in the envelope of its endpoint: authenticates it (a well-formed
/// `client_id`, then [`admit`]) and has `decide` answer it on the calling application, first
/// on this process's copy of it if it keeps one (`Store::application_copy`, which spares a
/// read on PostgreSQL).
///
/// On a copy, `decide` must write and read only through store calls that check the copy's
/// revision, and answer only what those confirmed. What a copy cannot settle is decided again
/// on the application as the database holds it: a refusal (the key may have been rotated to
/// the one presented, the application activated), a decision that found the application
/// changed, and a malformed request (refused before any store call checked the copy).
pub(crate) async fn answer<R, F>(
    state: &AppState,
    headers: &HeaderMap,
    source: IpAddr,
    request: &R,
    // Not `AsyncFn`: the compiler cannot yet prove its futures `Send`, as axum needs.
    decide: impl Fn(Application) -> F,
) -> Result<Response, ApiFailure>
where
    R: ApiRequest,
    F: Future<Output = Result<Response, ApiError>>,
{
    let answered = async {
        let (client_id, presented) = credentials(headers, request.client_id())?;
        if let Some(copy) = state.store.application_copy(client_id)
            && let Ok(copy) = admit(Some(copy), presented, source)
        {
            match decide(copy).await {
                // A malformed request is refused before any store call checked the copy: the
                // key it was admitted with may be rotated already, and must be refused as such.
                Err(ApiError::ApplicationChanged | ApiError::InvalidRequest(_)) => {}
                answer => return answer,
            }
        }
        for _ in 0..DECISIONS {
            let application = admit(state.store.application(client_id).await?, presented, source)?;
            match decide(application).await {
                Err(ApiError::ApplicationChanged) => {}
                answer => return answer,
            }
        }
        Err(ApiError::Unexpected(anyhow::anyhow!(
            "the application changed under each of {DECISIONS} decisions of one request"
        )))
    };
    answered.await.map_err(|error| error.during(R::OPERATION))
}
