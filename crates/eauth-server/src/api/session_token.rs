//! `POST /authen-api/api/v1/session-token` (guide, API reference 1 and Step 3): a signed,
//! short-lived token naming a new sign-in session for an enrolled user.

use axum::{extract::State, http::HeaderMap, response::Response};
use eauth_core::Email;
use eauth_store::{Application, Session};
use serde::Deserialize;
use serde_json::json;

use super::{
    ApiJson, ApiRequest,
    auth::answer,
    error::{ApiError, ApiFailure, Operation, success},
};
use crate::{client_ip::ClientIp, state::AppState};

/// The guide's request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionTokenRequest {
    email: String,
    client_id: String,
}

impl ApiRequest for SessionTokenRequest {
    const OPERATION: Operation = Operation::SessionToken;

    fn client_id(&self) -> &str {
        &self.client_id
    }
}

#[tracing::instrument(name = "session_token", level = "debug", skip_all, fields(client_id))]
pub(crate) async fn handler(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SessionTokenRequest>,
) -> Result<Response, ApiFailure> {
    answer(&state, &headers, source, &request, |application| {
        issue(&state, &request, application)
    })
    .await
}

/// A new session for the user, decided on `application` (maybe a copy: see `auth::answer`).
async fn issue(
    state: &AppState,
    request: &SessionTokenRequest,
    application: Application,
) -> Result<Response, ApiError> {
    let email =
        Email::parse(&request.email).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let now = state.clock.now();
    let (token, claims) = state.keyring.issue(
        uuid::Uuid::now_v7(),
        &email,
        application.client_id,
        now,
        state.session_ttl_secs,
    );
    let session = Session::pending(
        claims.id,
        application.client_id,
        email,
        now,
        claims.expires_at,
    );
    // Durably recorded before SUCCESS: the token is only handed out for a session that exists,
    // and only while the application is as it was decided on.
    let inserted = state
        .store
        .insert_session_if_enrolled(&session, application.revision)
        .await?;
    if !inserted {
        // Only on this rare path: tell a locked user from one without 2FA.
        let locked = state
            .store
            .enrollment(session.client_id, &session.email)
            .await?
            .is_some_and(|enrollment| enrollment.locked_at.is_some());
        return Err(if locked {
            ApiError::MfaLocked
        } else {
            ApiError::MfaNotEnabled
        });
    }
    Ok(success(json!({ "session_token": token })))
}
