//! The Domain Console under `/console` (guide, Step 1): integrators register an account, sign
//! in, create applications and receive their credentials, and see what happened — who is
//! enrolled, every sign-in and callback, outcomes over time, and an audit log of what the
//! account did.
//!
//! Server-rendered askama pages (auto-escaped) with one stylesheet and one small script for
//! copy buttons; every page works without the script. Accounts have server-side sessions
//! (`session.rs`); each application page loads the application through
//! [`eauth_store::Store::owned_application`], so another account's application, whatever its
//! id, is "not found" before anything is read or changed.

mod accounts;
mod activity;
mod applications;
mod chart;
mod devices;
mod session;
mod views;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{any, get, post},
};

use std::net::IpAddr;

use eauth_core::{Email, console::AuditAction};
use eauth_store::{Application, NewAuditEntry};

use self::{applications::Confirm, views::ConsoleError};
use crate::{html::asset, state::AppState};

/// Forms are a few fields and lists of addresses; nothing legitimate comes near this.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The console's routes and its static files.
pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/console", get(applications::list))
        .route("/console/", get(|| async { views::see_other("/console") }))
        .route(
            "/console/register",
            get(accounts::register_form).post(accounts::register),
        )
        .route(
            "/console/sign-in",
            get(accounts::sign_in_form).post(accounts::sign_in),
        )
        .route("/console/sign-out", post(accounts::sign_out))
        .route("/console/audit", get(activity::account_audit))
        .route(
            "/console/apps/new",
            get(applications::new_form).post(applications::create),
        )
        .route("/console/apps/{id}", get(applications::overview))
        .route(
            "/console/apps/{id}/settings",
            get(applications::settings_form).post(applications::save_settings),
        )
        .route("/console/apps/{id}/keys", get(applications::keys))
        .route(
            "/console/apps/{id}/rotate-api-key",
            applications::confirm(Confirm::RotateApiKey).post(applications::rotate_api_key),
        )
        .route(
            "/console/apps/{id}/rotate-callback-secret",
            applications::confirm(Confirm::RotateCallbackSecret)
                .post(applications::rotate_callback_secret),
        )
        .route(
            "/console/apps/{id}/activation",
            post(applications::set_activation),
        )
        .route(
            "/console/apps/{id}/delete",
            applications::confirm(Confirm::Delete).post(applications::delete),
        )
        .route(
            "/console/apps/{id}/integration",
            get(applications::integration),
        )
        .route("/console/apps/{id}/users", get(activity::users))
        .route("/console/apps/{id}/users/unlock", post(activity::unlock))
        .route(
            "/console/apps/{id}/devices/{device}/remove",
            get(devices::confirm_removal).post(devices::remove),
        )
        .route("/console/apps/{id}/sign-ins", get(activity::sign_ins))
        .route("/console/apps/{id}/callbacks", get(activity::callbacks))
        .route(
            "/console/apps/{id}/callbacks/{callback}/resend",
            post(activity::resend),
        )
        .route("/console/apps/{id}/audit", get(activity::app_audit))
        // Unknown console paths get the console's own page, not an empty 404.
        .route("/console/{*rest}", any(views::not_found))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES));
    pages
        .route(
            "/assets/console.css",
            get(|| asset("text/css", include_str!("../../assets/console.css"))),
        )
        .route(
            "/assets/console.js",
            get(|| asset("text/javascript", include_str!("../../assets/console.js"))),
        )
        .route(
            "/assets/console-icon.svg",
            get(|| {
                asset(
                    "image/svg+xml",
                    include_str!("../../assets/console-icon.svg"),
                )
            }),
        )
}

/// Notes in the audit log that `actor` did `action` (to `application`), from `source`.
async fn audit(
    state: &AppState,
    actor: &Email,
    action: AuditAction,
    application: Option<&Application>,
    detail: Option<&str>,
    source: IpAddr,
) -> Result<(), ConsoleError> {
    let entry = NewAuditEntry {
        actor,
        action,
        application: application.map(|app| (app.client_id, &app.name)),
        detail,
        source_ip: source,
    };
    state.store.insert_audit(&entry, state.clock.now()).await?;
    Ok(())
}
