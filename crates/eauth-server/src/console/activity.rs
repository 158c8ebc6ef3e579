//! What happened to an application: its enrolled users (and unlocking one), its sign-ins,
//! its callback deliveries (and sending one again), and the audit log of the account's own
//! actions.

use std::collections::HashMap;

use askama::Template;
use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
};
use eauth_core::{Email, SessionStatus, console::AuditAction};
use eauth_store::{Application, CallbackStatus, SessionFilter};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    accounts::Nothing,
    applications::{nav, owned},
    audit, chart,
    devices::removal_path,
    session::{Account, Posted},
    views::{
        AppNav, Chrome, ConsoleError, Pager, notice, page, page_request, see_other, time, time_or,
    },
};
use crate::{client_ip::ClientIp, state::AppState};

/// The query of the lists: filters, page, and a notice after a redirect.
#[derive(Default, Deserialize)]
pub(super) struct ListQuery {
    q: Option<String>,
    outcome: Option<String>,
    email: Option<String>,
    page: Option<String>,
    notice: Option<String>,
}

fn list_query(query: Result<Query<ListQuery>, QueryRejection>) -> ListQuery {
    query.map(|Query(q)| q).unwrap_or_default()
}

struct UserRow {
    email: String,
    enabled: String,
    last_signin: String,
    locked: bool,
    can_unlock: bool,
    status: String,
    devices: Vec<DeviceRow>,
}

/// A user's registered eAuthenticator app.
struct DeviceRow {
    name: String,
    registered: String,
    /// Its removal's confirmation page.
    remove: String,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    chrome: Chrome,
    nav: AppNav,
    notice: Option<&'static str>,
    q: String,
    users: Vec<UserRow>,
    pager: Pager,
}

/// `GET /console/apps/{id}/users?q=&page=`.
pub(super) async fn users(
    State(state): State<AppState>,
    account: Account,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let query = list_query(query);
    let q = query.q.unwrap_or_default().trim().to_owned();
    let (number, rows) = page_request(query.page.as_deref());
    let found = state
        .store
        .enrolled_users(app.client_id, Some(&q), rows)
        .await?;
    let emails: Vec<Email> = found.items.iter().map(|user| user.email.clone()).collect();
    let mut devices: HashMap<Email, Vec<DeviceRow>> = HashMap::new();
    for device in state.store.devices_of_users(app.client_id, &emails).await? {
        devices.entry(device.email).or_default().push(DeviceRow {
            name: device.name.as_str().to_owned(),
            registered: time(device.created_at),
            remove: removal_path(&app, device.id),
        });
    }
    let users = found
        .items
        .into_iter()
        .map(|user| UserRow {
            devices: devices.remove(&user.email).unwrap_or_default(),
            email: user.email.to_string(),
            enabled: time(user.enabled_at),
            last_signin: time_or(user.last_signin_at, "never"),
            locked: user.locked_at.is_some(),
            can_unlock: user.locked_at.is_some() || user.consecutive_failures > 0,
            status: match (user.locked_at, user.consecutive_failures) {
                (Some(at), _) => format!("Locked since {}", time(at)),
                (None, 0) => "OK".to_owned(),
                (None, 1) => "1 wrong code in a row".to_owned(),
                (None, n) => format!("{n} wrong codes in a row"),
            },
        })
        .collect();
    let path = format!("/console/apps/{}/users", app.client_id);
    Ok(page(
        StatusCode::OK,
        &UsersPage {
            chrome: account.chrome(&state),
            nav: nav(&app, "users"),
            notice: notice(query.notice.as_deref()),
            pager: Pager::new(&path, &[("q", &q)], number, found.total),
            q,
            users,
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct UnlockForm {
    #[serde(default)]
    email: String,
}

/// `POST /console/apps/{id}/users/unlock`: clears a user's wrong codes and lock.
pub(super) async fn unlock(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    Path(id): Path<String>,
    Posted { account, form }: Posted<UnlockForm>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let email = Email::parse(&form.email).map_err(|_| ConsoleError::BadRequest)?;
    let unlocked = state.store.unlock_enrollment(app.client_id, &email).await?;
    if unlocked {
        let detail = format!("User {email}");
        audit(
            &state,
            &account.email,
            AuditAction::UserUnlocked,
            Some(&app),
            Some(&detail),
            source,
        )
        .await?;
    }
    let notice = if unlocked { "unlocked" } else { "not-locked" };
    Ok(see_other(&format!(
        "/console/apps/{}/users?notice={notice}",
        app.client_id
    )))
}

struct SignInRow {
    time: String,
    email: String,
    method: String,
    outcome: &'static str,
    class: &'static str,
    source: String,
}

#[derive(Template)]
#[template(path = "console/sign_ins.html")]
struct SignInsPage {
    chrome: Chrome,
    nav: AppNav,
    outcome: String,
    email: String,
    outcomes: Vec<(&'static str, &'static str)>,
    rows: Vec<SignInRow>,
    pager: Pager,
}

impl SignInsPage {
    fn is_selected(&self, value: &str) -> bool {
        self.outcome == value
    }
}

/// `GET /console/apps/{id}/sign-ins?outcome=&email=&page=`.
pub(super) async fn sign_ins(
    State(state): State<AppState>,
    account: Account,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let query = list_query(query);
    let status = query.outcome.as_deref().and_then(SessionStatus::parse);
    let outcome = status.map(SessionStatus::as_str).unwrap_or_default();
    let email = query.email.unwrap_or_default().trim().to_owned();
    let (number, rows) = page_request(query.page.as_deref());
    let filter = SessionFilter {
        status,
        email: Some(email.clone()),
    };
    let found = state
        .store
        .sessions_of(app.client_id, &filter, rows)
        .await?;
    let rows = found
        .items
        .into_iter()
        .map(|session| SignInRow {
            time: time(session.created_at),
            email: session.email.to_string(),
            method: session.signin_method.unwrap_or_else(|| "—".to_owned()),
            outcome: chart::label(session.status),
            class: chart::class(session.status),
            source: session.source_ip.unwrap_or_else(|| "—".to_owned()),
        })
        .collect();
    let mut outcomes: Vec<_> = chart::OUTCOMES
        .iter()
        .chain([SessionStatus::Pending].iter())
        .map(|&s| (s.as_str(), chart::label(s)))
        .collect();
    outcomes.insert(0, ("", "All outcomes"));
    let path = format!("/console/apps/{}/sign-ins", app.client_id);
    Ok(page(
        StatusCode::OK,
        &SignInsPage {
            chrome: account.chrome(&state),
            nav: nav(&app, "sign-ins"),
            pager: Pager::new(
                &path,
                &[("outcome", outcome), ("email", &email)],
                number,
                found.total,
            ),
            outcome: outcome.to_owned(),
            email,
            outcomes,
            rows,
        },
    ))
}

struct CallbackRow {
    id: String,
    created: String,
    email: String,
    result: &'static str,
    status: &'static str,
    class: &'static str,
    delivered: Option<String>,
    attempts: u32,
    last_error: String,
    next_retry: String,
    can_resend: bool,
}

#[derive(Template)]
#[template(path = "console/callbacks.html")]
struct CallbacksPage {
    chrome: Chrome,
    nav: AppNav,
    notice: Option<&'static str>,
    callback_url: String,
    rows: Vec<CallbackRow>,
    pager: Pager,
}

/// `GET /console/apps/{id}/callbacks?page=`.
pub(super) async fn callbacks(
    State(state): State<AppState>,
    account: Account,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let query = list_query(query);
    let (number, rows) = page_request(query.page.as_deref());
    let found = state.store.callbacks_of(app.client_id, rows).await?;
    let rows = found
        .items
        .into_iter()
        .map(|entry| {
            let callback = entry.callback;
            let (status, class, next_retry) = match callback.status {
                CallbackStatus::Pending => ("Pending", "pending", time(callback.next_attempt_at)),
                CallbackStatus::Delivered => ("Delivered", "approved", "—".to_owned()),
                CallbackStatus::Failed => ("Failed", "rejected", "given up".to_owned()),
            };
            CallbackRow {
                id: callback.id.to_string(),
                created: time(callback.created_at),
                email: entry.email.to_string(),
                result: if callback.approved { "true" } else { "false" },
                status,
                class,
                delivered: callback.delivered_at.map(time),
                attempts: callback.attempts,
                last_error: callback.last_error.unwrap_or_default(),
                next_retry,
                can_resend: callback.status != CallbackStatus::Delivered,
            }
        })
        .collect();
    let path = format!("/console/apps/{}/callbacks", app.client_id);
    Ok(page(
        StatusCode::OK,
        &CallbacksPage {
            chrome: account.chrome(&state),
            nav: nav(&app, "callbacks"),
            notice: notice(query.notice.as_deref()),
            callback_url: app.callback_url.to_string(),
            pager: Pager::new(&path, &[], number, found.total),
            rows,
        },
    ))
}

/// `POST /console/apps/{id}/callbacks/{callback}/resend`: a pending or given-up callback is
/// due now, and the worker is woken for it.
pub(super) async fn resend(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    Path((id, callback)): Path<(String, String)>,
    Posted { account, .. }: Posted<Nothing>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let callback = Uuid::parse_str(&callback).map_err(|_| ConsoleError::NotFound)?;
    let requeued = state
        .store
        .requeue_callback(app.client_id, callback, state.clock.now())
        .await?;
    if requeued {
        state.wakeup.wake();
        audit(
            &state,
            &account.email,
            AuditAction::CallbackResent,
            Some(&app),
            None,
            source,
        )
        .await?;
    }
    let notice = if requeued { "resent" } else { "not-resent" };
    Ok(see_other(&format!(
        "/console/apps/{}/callbacks?notice={notice}",
        app.client_id
    )))
}

struct AuditRow {
    time: String,
    what: &'static str,
    application: Option<String>,
    /// The application's page, while it exists and is the account's.
    link: Option<String>,
    detail: String,
    source: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    nav: Option<AppNav>,
    account: String,
    rows: Vec<AuditRow>,
    pager: Pager,
}

/// `GET /console/audit`: everything the account did.
pub(super) async fn account_audit(
    State(state): State<AppState>,
    account: Account,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    audit_page(&state, &account, None, list_query(query)).await
}

/// `GET /console/apps/{id}/audit`: what the account did to one application.
pub(super) async fn app_audit(
    State(state): State<AppState>,
    account: Account,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    audit_page(&state, &account, Some(&app), list_query(query)).await
}

async fn audit_page(
    state: &AppState,
    account: &Account,
    app: Option<&Application>,
    query: ListQuery,
) -> Result<Response, ConsoleError> {
    let (number, rows) = page_request(query.page.as_deref());
    let found = state
        .store
        .audit_log(&account.email, app.map(|app| app.client_id), rows)
        .await?;
    let existing: Vec<String> = state
        .store
        .applications_of(&account.email)
        .await?
        .iter()
        .map(|app| app.client_id.to_string())
        .collect();
    let rows = found
        .items
        .into_iter()
        .map(|entry| {
            let id = entry.client_id.map(|id| id.to_string());
            AuditRow {
                time: time(entry.at),
                what: entry.action.describe(),
                link: id
                    .filter(|id| {
                        existing.contains(id) && entry.action != AuditAction::ApplicationDeleted
                    })
                    .map(|id| format!("/console/apps/{id}")),
                application: entry.application_name,
                detail: entry.detail.unwrap_or_default(),
                source: entry.source_ip,
            }
        })
        .collect();
    let path = match app {
        Some(app) => format!("/console/apps/{}/audit", app.client_id),
        None => "/console/audit".to_owned(),
    };
    Ok(page(
        StatusCode::OK,
        &AuditPage {
            chrome: account.chrome(state),
            nav: app.map(|app| nav(app, "audit")),
            account: account.email.to_string(),
            pager: Pager::new(&path, &[], number, found.total),
            rows,
        },
    ))
}
