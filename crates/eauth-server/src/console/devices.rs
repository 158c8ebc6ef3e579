//! Users' registered eAuthenticator apps (push approval's devices, issue 5): the Users page
//! lists them, and here one is removed, after a confirmation. A removed device's requests are
//! refused from that moment (`UNKNOWN_DEVICE`); the user still signs in with a code and can
//! register the app again with one.
//!
//! The device is looked up and removed through the application that [`owned`] checked, and the
//! store's delete is scoped by that application too: a device id of another application —
//! another account's, or another of this account's — is "not found" and stays.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use eauth_core::{DeviceId, console::AuditAction};
use eauth_store::{Application, Device};

use super::{
    accounts::Nothing,
    applications::{ConfirmPage, nav, owned},
    audit,
    session::{Account, Posted},
    views::{ConsoleError, page, see_other, time},
};
use crate::{client_ip::ClientIp, state::AppState};

/// The address of the page that removes `device` of `app`.
pub(super) fn removal_path(app: &Application, device: DeviceId) -> String {
    format!("/console/apps/{}/devices/{device}/remove", app.client_id)
}

/// This account's application `app_id` and the device id `id`, or [`ConsoleError::NotFound`].
/// Whether the device is that application's is the caller's to check: each scopes its read or
/// its delete by the application.
async fn owned_app_and_device_id(
    state: &AppState,
    account: &Account,
    app_id: &str,
    id: &str,
) -> Result<(Application, DeviceId), ConsoleError> {
    let app = owned(state, account, app_id).await?;
    let id = DeviceId::parse(id).map_err(|_| ConsoleError::NotFound)?;
    Ok((app, id))
}

/// "Device “eauth on laptop” of user jane@example.com", for the audit log.
fn describe(device: &Device) -> String {
    format!("Device “{}” of user {}", device.name.as_str(), device.email)
}

/// `GET /console/apps/{id}/devices/{device}/remove`: what will be removed, and the button.
pub(super) async fn confirm_removal(
    State(state): State<AppState>,
    account: Account,
    Path((app_id, device_id)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let (app, id) = owned_app_and_device_id(&state, &account, &app_id, &device_id).await?;
    let device = state
        .store
        .device(id)
        .await?
        .filter(|device| device.client_id == app.client_id)
        .ok_or(ConsoleError::NotFound)?;
    let message = format!(
        "“{}”, registered {}, is the eAuthenticator app of {}. Once removed it can no longer \
         approve this user's sign-ins: its requests are refused at once. The user still signs \
         in with a code, and can register the app again with one.",
        device.name.as_str(),
        time(device.created_at),
        device.email,
    );
    let confirm = ConfirmPage {
        chrome: account.chrome(&state),
        nav: nav(&app, "users"),
        title: "Remove this device?",
        message,
        action: removal_path(&app, device.id),
        button: "Remove the device",
        cancel: format!("/console/apps/{}/users", app.client_id),
        type_name: None,
        error: None,
    };
    Ok(page(StatusCode::OK, &confirm))
}

/// `POST /console/apps/{id}/devices/{device}/remove`.
pub(super) async fn remove(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    Path((app_id, device_id)): Path<(String, String)>,
    Posted { account, .. }: Posted<Nothing>,
) -> Result<Response, ConsoleError> {
    let (app, id) = owned_app_and_device_id(&state, &account, &app_id, &device_id).await?;
    let removed = state
        .store
        .delete_device(app.client_id, id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    audit(
        &state,
        &account.email,
        AuditAction::DeviceRemoved,
        Some(&app),
        Some(&describe(&removed)),
        source,
    )
    .await?;
    tracing::info!(client_id = %app.client_id, device = %removed.id, "device removed in the console");
    Ok(see_other(&format!(
        "/console/apps/{}/users?notice=device-removed",
        app.client_id
    )))
}
