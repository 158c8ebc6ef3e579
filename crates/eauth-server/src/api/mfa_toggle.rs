//! `POST /authen-api/api/v1/mfa/toggle` (guide, API reference 3 and Step 2.5): the
//! application tells the service that a user enabled 2FA (with the TOTP secret) or disabled it.

use axum::{extract::State, http::HeaderMap, response::Response};
use eauth_core::{Algorithm, Email, TotpParams, TotpSecret};
use eauth_store::{Application, NewEnrollment};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{
    ApiJson, ApiRequest,
    auth::answer,
    error::{ApiError, ApiFailure, Operation, success},
};
use crate::{client_ip::ClientIp, state::AppState};

/// The guide's request body. `secret` is a `SecretString` so that it can never reach a log.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToggleRequest {
    client_id: String,
    email: String,
    secret: Option<SecretString>,
    action: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    algorithm: Option<String>,
    digits: Option<i64>,
    period: Option<i64>,
}

impl ApiRequest for ToggleRequest {
    const OPERATION: Operation = Operation::Toggle;

    fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// What the request asks for, once every field is checked.
enum Toggle {
    Enable {
        secret: TotpSecret,
        params: TotpParams,
    },
    Disable,
}

fn invalid(reason: impl ToString) -> ApiError {
    ApiError::InvalidRequest(reason.to_string())
}

impl ToggleRequest {
    /// ENABLE needs every field of the guide's table; DISABLE needs only `action`, but any
    /// TOTP field it carries must still be valid (a typo should not pass silently).
    fn parse(&self) -> Result<Toggle, ApiError> {
        let enable = match self.action.trim().to_ascii_uppercase().as_str() {
            "ENABLE" => true,
            "DISABLE" => false,
            _ => return Err(invalid("action must be \"ENABLE\" or \"DISABLE\"")),
        };
        let required = |field: &str| invalid(format!("{field} is required to ENABLE"));
        match self.kind.as_deref().map(str::trim) {
            Some(kind) if kind.eq_ignore_ascii_case("TOTP") => {}
            Some(_) => return Err(invalid("type must be \"TOTP\"")),
            None if enable => return Err(required("type")),
            None => {}
        }
        let algorithm = self
            .algorithm
            .as_deref()
            .map(|raw| {
                Algorithm::parse(raw)
                    .ok_or_else(|| invalid("algorithm must be SHA1, SHA256 or SHA512"))
            })
            .transpose()?;
        // The guide's defaults stand in for absent fields only to check the present ones.
        let params = TotpParams::new(
            algorithm.unwrap_or(Algorithm::Sha1),
            self.digits.unwrap_or(6),
            self.period.unwrap_or(30),
        )
        .map_err(invalid)?;
        if !enable {
            return Ok(Toggle::Disable);
        }
        let secret = self.secret.as_ref().ok_or_else(|| required("secret"))?;
        let secret = TotpSecret::parse(secret.expose_secret()).map_err(invalid)?;
        for (field, present) in [
            ("algorithm", algorithm.is_some()),
            ("digits", self.digits.is_some()),
            ("period", self.period.is_some()),
        ] {
            if !present {
                return Err(required(field));
            }
        }
        Ok(Toggle::Enable { secret, params })
    }
}

#[tracing::instrument(name = "mfa_toggle", level = "debug", skip_all, fields(client_id))]
pub(crate) async fn handler(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ToggleRequest>,
) -> Result<Response, ApiFailure> {
    answer(&state, &headers, source, &request, |application| {
        toggle(&state, &request, application)
    })
    .await
}

/// The user's enrollment changed as asked, written only while `application` (maybe a copy:
/// see `auth::answer`) is as it was decided on.
async fn toggle(
    state: &AppState,
    request: &ToggleRequest,
    application: Application,
) -> Result<Response, ApiError> {
    let email = Email::parse(&request.email).map_err(invalid)?;
    let client_id = application.client_id;
    match request.parse()? {
        Toggle::Enable { secret, params } => {
            let sealed_secret = state.vault.seal_totp_secret(client_id, &email, &secret);
            let enrollment = NewEnrollment {
                client_id,
                email,
                sealed_secret,
                params,
            };
            state
                .store
                .upsert_enrollment(&enrollment, state.clock.now(), application.revision)
                .await?;
        }
        // Idempotent: disabling a user who is not enrolled is a success.
        Toggle::Disable => {
            state
                .store
                .delete_enrollment(client_id, &email, application.revision)
                .await?;
        }
    }
    Ok(success(json!("")))
}
