//! `POST /app-api/v1/devices`: the app registers its public key for one enrollment, proving
//! that it holds the TOTP secret with a current code. The code is judged exactly as on the
//! sign-in page (`signin::judge`): it is then used (RFC 6238 §5.2), and a wrong one counts
//! towards the enrollment's throttling and lock (NIST SP 800-63B §5.2.2).

use axum::{extract::State, http::StatusCode, response::Response};
use eauth_core::{
    ClientId, DeviceId, DeviceName, DevicePublicKey, Email, TotpCode, signin::Verdict,
    totp::CodeRejected,
};
use eauth_store::{Device, Registration, StoreError};
use serde::Deserialize;
use serde_json::json;

use super::{
    error::AppApiError,
    signed::{SignedRequest, json},
};
use crate::{api::success, state::AppState, webview::judge_code};

/// What a device is called when the app does not say.
const DEFAULT_NAME: &str = "eAuthenticator app";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    client_id: String,
    email: String,
    public_key: String,
    code: String,
    name: Option<String>,
}

fn invalid(reason: impl ToString) -> AppApiError {
    AppApiError::InvalidRequest(reason.to_string())
}

#[tracing::instrument(name = "register_device", skip_all, fields(client_id))]
pub(crate) async fn register(
    State(state): State<AppState>,
    request: SignedRequest,
) -> Result<Response, AppApiError> {
    let body: RegisterRequest = json(request.body())?;
    let client_id = ClientId::parse(&body.client_id).map_err(invalid)?;
    tracing::Span::current().record("client_id", tracing::field::display(client_id));
    let email = Email::parse(&body.email).map_err(invalid)?;
    let public_key =
        DevicePublicKey::parse(&body.public_key).map_err(|e| invalid(format!("public_key {e}")))?;
    let code = TotpCode::parse(&body.code).map_err(invalid)?;
    let name = DeviceName::parse(body.name.as_deref().unwrap_or(DEFAULT_NAME)).map_err(invalid)?;
    request.by_new_key(&state, &public_key).await?;

    let now = state.clock.now();
    let device = Device {
        id: DeviceId::generate(),
        client_id,
        email,
        public_key,
        name,
        created_at: now,
    };
    let vault = &state.vault;
    let registration = state
        .store
        .register_device(&device, |enrollment| {
            judge_code(vault, enrollment, 0, Some(&code), now)
        })
        .await;
    let verdict = match registration {
        Ok(Registration::Judged(verdict)) => verdict,
        // Indistinguishable from a wrong code: who is enrolled where is not for anyone to ask.
        Ok(Registration::NotEnrolled) => return Err(AppApiError::InvalidCode),
        Err(StoreError::Conflict) => return Err(AppApiError::KeyInUse),
        Err(error) => return Err(error.into()),
    };
    match verdict {
        Verdict::Approved { .. } => {
            tracing::info!(device = %device.id, "device registered");
            let application = state
                .store
                .application(client_id)
                .await?
                .map(|app| app.name.as_str().to_owned());
            let mut response = success(json!({
                "device_id": device.id.to_string(),
                "client_id": client_id.to_string(),
                "email": device.email.as_str(),
                "name": device.name.as_str(),
                "application": application,
            }));
            *response.status_mut() = StatusCode::CREATED;
            Ok(response)
        }
        Verdict::Wrong { locked: true, .. } | Verdict::Locked => Err(AppApiError::Locked),
        Verdict::Wrong {
            reason: CodeRejected::Replayed,
            ..
        } => Err(AppApiError::CodeAlreadyUsed),
        Verdict::Wrong { .. } | Verdict::Exhausted { .. } => Err(AppApiError::InvalidCode),
        Verdict::Throttled { retry_at } => Err(AppApiError::Throttled {
            retry_after: (retry_at - now).max(1),
        }),
    }
}
