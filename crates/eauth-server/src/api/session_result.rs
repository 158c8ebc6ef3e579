//! `POST /authen-api/api/v1/session-result`: a session's outcome, for backends that confirm a
//! result instead of, or besides, waiting for the callback.

use axum::{extract::State, http::HeaderMap, response::Response};
use serde::Deserialize;
use serde_json::json;

use super::{
    ApiJson, ApiRequest,
    auth::authenticated,
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
}

#[tracing::instrument(name = "session_result", level = "debug", skip_all, fields(client_id))]
pub(crate) async fn handler(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SessionResultRequest>,
) -> Result<Response, ApiFailure> {
    result(&state, &headers, source, request)
        .await
        .map_err(|error| error.during(Operation::SessionResult))
}

async fn result(
    state: &AppState,
    headers: &HeaderMap,
    source: std::net::IpAddr,
    request: SessionResultRequest,
) -> Result<Response, ApiError> {
    let request = &request;
    authenticated(
        state,
        headers,
        source,
        &request.client_id,
        |application| async move {
            let unknown = || {
                ApiError::InvalidRequest(
                    "session_token is not a session of this application".into(),
                )
            };
            // A finished session is asked about after its token expired: the signature is what
            // counts.
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
        },
    )
    .await
}
