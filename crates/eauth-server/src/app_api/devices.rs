//! `POST /app-api/v1/devices`: the app registers its public key for one enrollment, proving
//! that it holds the TOTP secret with a current code, which is then used (RFC 6238 §5.2).
//! `DELETE /app-api/v1/device`: a registered device removes itself.
//!
//! Registration needs no password, so its wrong codes are counted by a throttle of their own
//! (`eauth_core::device_registration`: per user and per source address), never towards the
//! enrollment's sign-in lock, and an unenrolled user gets exactly the answers of an enrolled
//! one with a wrong code.

use axum::{extract::State, http::StatusCode, response::Response};
use eauth_core::{
    ClientId, CodeRejected, DeviceId, DeviceName, DevicePublicKey, Email, TotpCode,
    device_registration::{self, EnrolledState, RegistrationState, ThrottleKeys, Verdict},
};
use eauth_store::{Device, StoreError};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;

use super::{
    error::AppApiError,
    signed::{SignedRequest, json},
};
use crate::{api::success, client_ip::ClientIp, state::AppState};

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

#[tracing::instrument(name = "register_device", level = "debug", skip_all, fields(client_id))]
pub(crate) async fn register(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
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
    let keys = ThrottleKeys::new(client_id, &device.email, source);
    // The judge runs where the store writes (on SQLite, its writer's thread): it owns what it
    // uses.
    let judging = state.clone();
    let judged = state
        .store
        .register_device(&device, &keys, move |user, address, enrollment| {
            let vault = &judging.vault;
            let secret = enrollment
                .map(|e| vault.open_totp_secret(e.client_id, &e.email, &e.sealed_secret))
                .transpose()?;
            let state = RegistrationState {
                user,
                address,
                enrollment: enrollment.map(|e| EnrolledState {
                    locked: e.locked_at.is_some(),
                    last_used_step: e.last_used_step,
                }),
            };
            Ok(device_registration::judge(state, now, |last_used| {
                match (secret, enrollment) {
                    (Some(secret), Some(e)) => {
                        secret.verify(e.params, &code, u64::try_from(now).unwrap_or(0), last_used)
                    }
                    _ => Err(CodeRejected::Wrong),
                }
            }))
        })
        .await;
    let verdict = match judged {
        Ok(verdict) => verdict,
        Err(StoreError::Conflict) => return Err(AppApiError::KeyInUse),
        Err(error) => return Err(error.into()),
    };
    match verdict {
        Verdict::Approved { .. } => {
            tracing::info!(%client_id, device = %device.id, "device registered");
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
        // Only the holder of a right code hears of a replay or a lock: a guesser cannot.
        Verdict::Refused(CodeRejected::Replayed) => Err(AppApiError::CodeAlreadyUsed),
        Verdict::Refused(CodeRejected::Wrong) => {
            tracing::info!(%client_id, %source, "device registration refused: wrong code or not enrolled");
            Err(AppApiError::InvalidCode)
        }
        Verdict::Locked => Err(AppApiError::Locked),
        Verdict::Throttled { retry_at } => {
            tracing::warn!(%client_id, %source, "device registration throttled: too many wrong codes");
            Err(AppApiError::Throttled {
                retry_after: (retry_at - now).max(1),
            })
        }
    }
}

/// `DELETE /app-api/v1/device`, with an empty body or `{}`: the signing device unregisters
/// itself (the app's account is being removed). Only ever the device that signed: a device
/// cannot name another. Its key is refused from this moment.
#[tracing::instrument(name = "remove_device", level = "debug", skip_all, fields(client_id))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    request: SignedRequest,
) -> Result<Response, AppApiError> {
    let (device, body) = request.by_device(&state).await?;
    let _: Option<IgnoredAny> = json(&body)?;
    // Gone between the signature check and now (mfa/toggle, a concurrent removal): as if it
    // had been gone before.
    let removed = state
        .store
        .delete_device(device.client_id, device.id)
        .await?;
    if removed.is_none() {
        return Err(AppApiError::UnknownDevice);
    }
    tracing::info!(client_id = %device.client_id, device = %device.id, "device removed by itself");
    Ok(success(json!({ "device_id": device.id.to_string() })))
}
