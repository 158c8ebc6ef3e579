//! The pending sign-ins of a device's user, and the decisions on them: `GET /signins` (with
//! long polling), `POST /signins/{id}/approve` with the number the browser shows, and
//! `POST /signins/{id}/deny`. A device sees and decides only the sign-ins of its own
//! enrollment; any other id is NOT_FOUND, whether it exists or not.

use std::time::Duration;

use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    response::Response,
};
use eauth_core::push::{self, PushDecision, PushVerdict, RejectReason};
use eauth_store::{Callback, Device, PendingSignin, PushAttempt};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;
use uuid::Uuid;

use super::{
    error::AppApiError,
    signed::{SignedRequest, json},
};
use crate::{api::success, state::AppState, worker};

/// The longest a poll is held. Below the usual 30 s idle timeouts of proxies and mobile
/// networks; the app asks again.
pub(crate) const MAX_WAIT_SECS: u64 = 25;
/// How often a held poll looks for sign-ins offered by other processes.
const RECHECK: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Seconds to wait for a sign-in when there is none.
    wait: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveRequest {
    number: i64,
}

fn signin_json(signin: &PendingSignin) -> serde_json::Value {
    json!({
        "id": signin.id.to_string(),
        "application": signin.application.as_str(),
        "created_at": signin.created_at,
        "expires_at": signin.expires_at,
        "source_ip": signin.source_ip,
    })
}

/// `GET /app-api/v1/signins[?wait=SECONDS]`: the pending sign-ins of the device's user that
/// show a number, oldest first. With `wait`, an empty answer is held until one appears or
/// the time is up: woken at once by an offer in this process, and looking at the database
/// once a second for offers made by others — never a busy loop.
#[tracing::instrument(name = "list_signins", level = "debug", skip_all, fields(client_id))]
pub(crate) async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
    request: SignedRequest,
) -> Result<Response, AppApiError> {
    let Query(query) =
        query.map_err(|rejection| AppApiError::InvalidRequest(rejection.body_text()))?;
    let (device, _) = request.by_device(&state).await?;
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let deadline = tokio::time::Instant::now() + wait;
    let listener = state.push.listen(device.client_id, &device.email);
    let signins = loop {
        let offered = listener.notify().notified();
        tokio::pin!(offered);
        // Registered before the look at the database: an offer in between still wakes us.
        offered.as_mut().enable();
        let signins = state
            .store
            .pending_signins(device.client_id, &device.email, state.clock.now())
            .await?;
        let now = tokio::time::Instant::now();
        if !signins.is_empty() || now >= deadline {
            break signins;
        }
        tokio::select! {
            () = offered => {}
            () = tokio::time::sleep(RECHECK.min(deadline - now)) => {}
        }
    };
    Ok(success(json!({
        "signins": signins.iter().map(signin_json).collect::<Vec<_>>(),
    })))
}

/// `POST /app-api/v1/signins/{id}/approve` with `{"number": N}`.
#[tracing::instrument(name = "approve_signin", level = "debug", skip_all, fields(client_id))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, AppApiError> {
    let (device, body) = request.by_device(&state).await?;
    let ApproveRequest { number } = json(&body)?;
    decide(&state, &device, &id, PushDecision::Approve(number)).await
}

/// `POST /app-api/v1/signins/{id}/deny`, with an empty body or `{}`.
#[tracing::instrument(name = "deny_signin", level = "debug", skip_all, fields(client_id))]
pub(crate) async fn deny(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, AppApiError> {
    let (device, body) = request.by_device(&state).await?;
    let _: Option<IgnoredAny> = json(&body)?;
    decide(&state, &device, &id, PushDecision::Deny).await
}

async fn decide(
    state: &AppState,
    device: &Device,
    id: &str,
    decision: PushDecision,
) -> Result<Response, AppApiError> {
    let id = Uuid::parse_str(id).map_err(|_| AppApiError::NotFound)?;
    let Some(session) = state.store.session(id).await? else {
        return Err(AppApiError::NotFound);
    };
    // The callback carries the session's token; HS256 rebuilds it from the session.
    let token = state.keyring.token_for(&session.claims());
    let now = state.clock.now();
    let attempt = state
        .store
        .push_decision(
            id,
            device.id,
            now,
            &token,
            now + worker::LEASE_SECS,
            move |number, session, enrollment| {
                push::judge(
                    number,
                    session.push_failures,
                    enrollment.locked_at.is_some(),
                    decision,
                )
            },
        )
        .await?;
    let (verdict, session, callback) = match attempt {
        PushAttempt::DeviceGone => return Err(AppApiError::UnknownDevice),
        PushAttempt::NotFound => return Err(AppApiError::NotFound),
        PushAttempt::NotPending(session) => {
            // It may have just been finished as TIMEOUT, with a callback to send.
            state.wakeup.wake();
            return Err(AppApiError::SigninFinished(session.status));
        }
        PushAttempt::Judged {
            verdict,
            session,
            callback,
        } => (verdict, session, callback),
    };
    if let Some(callback) = callback {
        tracing::info!(
            client_id = %session.client_id,
            ?verdict,
            status = session.status.as_str(),
            "sign-in decided on a device"
        );
        deliver(state, callback);
    }
    match verdict {
        PushVerdict::Approved | PushVerdict::Rejected(RejectReason::Denied) => {
            Ok(success(json!({ "status": session.status.as_str() })))
        }
        PushVerdict::WrongNumber { attempts_left } => Err(AppApiError::WrongNumber {
            attempts_left,
            status: session.status,
        }),
        PushVerdict::Rejected(RejectReason::WrongNumbers) => Err(AppApiError::WrongNumber {
            attempts_left: 0,
            status: session.status,
        }),
        PushVerdict::Rejected(RejectReason::Locked) => Err(AppApiError::Locked),
    }
}

/// Starts sending the finished sign-in's callback at once, as the sign-in page does after a
/// code: it was written claimed with the decision, so nobody else sends it meanwhile. The
/// page, polling, waits for this first attempt before it moves on.
fn deliver(state: &AppState, callback: Callback) {
    let background = state.clone();
    tokio::spawn(async move {
        let now = background.clock.now();
        if let Err(error) = worker::attempt(&background, callback, now).await {
            tracing::error!(error = ?error, "cannot deliver a callback now; the worker retries");
            background.wakeup.wake();
        }
    });
}
