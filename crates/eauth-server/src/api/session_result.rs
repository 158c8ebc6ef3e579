//! `POST /authen-api/api/v1/session-result`: a session's outcome, for backends that confirm a
//! result instead of, or besides, waiting for the callback.

use axum::{extract::State, http::HeaderMap, response::Response};
use eauth_store::Application;
use serde::Deserialize;
use serde_json::json;

use super::{
    ApiJson, ApiRequest,
    auth::answer,
    error::{ApiError, ApiFailure, Operation, success},
};
use crate::{client_ip::ClientIp, state::AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionResultRequest {
    client_id: String,
    session_token: String,
}

impl ApiRequest for SessionResultRequest {
    const OPERATION: Operation = Operation::SessionResult;

    fn client_id(&self) -> &str {
        &self.client_id
    }
}

#[tracing::instrument(name = "session_result", level = "debug", skip_all, fields(client_id))]
pub(crate) async fn handler(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SessionResultRequest>,
) -> Result<Response, ApiFailure> {
    answer(&state, &headers, source, &request, |application| {
        result(&state, &request, application)
    })
    .await
}

/// The session's outcome, if it is `application`'s (maybe a copy: see `auth::answer`).
async fn result(
    state: &AppState,
    request: &SessionResultRequest,
    application: Application,
) -> Result<Response, ApiError> {
    let unknown =
        || ApiError::InvalidRequest("session_token is not a session of this application".into());
    // A finished session is asked about after its token expired: the signature is what counts.
    let claims = state
        .keyring
        .decode(&request.session_token)
        .map_err(|_| unknown())?;
    if claims.client_id != application.client_id {
        return Err(unknown());
    }
    // Read with the application's revision: a copy overtaken by a change learns nothing.
    let session = state
        .store
        .session_of(claims.id, &application)
        .await?
        .ok_or_else(unknown)?;
    Ok(success(json!({
        "status": session.status.as_str(),
        "email": session.email.as_str(),
        "finished_at": session.finished_at,
    })))
}
