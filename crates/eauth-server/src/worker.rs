//! The background work of a finished sign-in: finishing sessions that ran out of time
//! (TIMEOUT) and delivering every finished session's signed callback to its application; and
//! forgetting the nonces of app requests that can no longer be fresh and the device
//! registration throttle's windows that ended.
//!
//! Each is a step the tests can drive ([`sweep_expired`], [`deliver_next`],
//! [`prune_nonces`]); [`run`] is the loop around them. Callbacks are claimed from the durable outbox under a lease, so with
//! several processes each is sent by one at a time, and a crash only delays it.

use std::time::Duration;

use eauth_core::{SessionStatus, callback};
use eauth_store::{Application, Callback, DeliveryResult};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::{
    outbound::{self, CallError},
    state::AppState,
};

/// How long one delivery may take (the 5 s), and how long a claim holds beyond it.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const LEASE_SECS: i64 = 15;
/// How often the loop looks for expired sessions and due callbacks written by other processes.
const POLL: Duration = Duration::from_secs(1);

/// What one delivery step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing was due.
    Idle,
    /// A callback was attempted, with this result.
    Attempted(DeliveryResult),
}

/// Wakes the worker when this process writes a callback, instead of waiting for the next poll.
#[derive(Debug, Default)]
pub struct Wakeup(Notify);

impl Wakeup {
    /// There is work.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// The client for callbacks (see [`outbound`]), with the 5 s timeout of a delivery; to private
/// networks only if `private_allowed`.
pub fn callbacks_client(private_allowed: bool) -> outbound::Callbacks {
    outbound::Callbacks::new(DELIVERY_TIMEOUT, private_allowed)
}

/// Finishes, as TIMEOUT, every pending session whose lifetime is over; returns how many.
pub async fn sweep_expired(state: &AppState, now: i64) -> anyhow::Result<usize> {
    let mut finished = 0;
    for session in state.store.expired_sessions(now, 100).await? {
        let token = state.keyring.token_for(&session.claims());
        if state
            .store
            .finish_session(&session, SessionStatus::TimedOut, now, &token)
            .await?
        {
            finished += 1;
        }
    }
    if finished > 0 {
        tracing::info!(finished, "sessions timed out");
        state.wakeup.wake();
    }
    Ok(finished)
}

/// Forgets the nonces of app requests too old to be accepted at `now`: a replay of one is
/// refused as stale, so remembering it longer protects nothing.
/// Also forgets the registration throttle's windows that ended before `now`, which count
/// nothing any more. Returns how many rows went.
pub async fn prune_nonces(state: &AppState, now: i64) -> anyhow::Result<u64> {
    let nonces = state.store.prune_nonces(now).await?;
    Ok(nonces + state.store.prune_registration_failures(now).await?)
}

/// Claims the callback due soonest and attempts it.
pub async fn deliver_next(state: &AppState, now: i64) -> anyhow::Result<Delivery> {
    match state
        .store
        .claim_due_callback(now, now + LEASE_SECS)
        .await?
    {
        Some(callback) => Ok(Delivery::Attempted(attempt(state, callback, now).await?)),
        None => Ok(Delivery::Idle),
    }
}

/// Attempts one callback now, if nobody else holds it: the sign-in page does this so that the
/// backend usually knows the result before the browser arrives (guide, Step 5.1).
pub async fn deliver_now(state: &AppState, id: Uuid) -> anyhow::Result<Delivery> {
    let now = state.clock.now();
    match state
        .store
        .claim_callback(id, now, now + LEASE_SECS)
        .await?
    {
        Some(callback) => Ok(Delivery::Attempted(attempt(state, callback, now).await?)),
        None => Ok(Delivery::Idle),
    }
}

/// Delivers a callback that the caller holds already (written claimed with its session, see
/// `Store::attempt`) to `application`, whose callback it is. The result is recorded in the
/// background: whoever waits for the backend to be told need not wait for that write too,
/// and until it is written the claim keeps other workers off.
#[tracing::instrument(level = "debug", skip_all, fields(client_id = %callback.client_id, attempt = callback.attempts))]
pub(crate) async fn deliver_claimed(
    state: &AppState,
    callback: Callback,
    application: &Application,
) {
    let now = state.clock.now();
    let result = result_of(
        &callback,
        send(state, application, &callback, now).await,
        now,
    );
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(error) = state
            .store
            .record_delivery(&callback, &result, state.clock.now())
            .await
        {
            // The claim runs out and the worker attempts it again: at least once, still.
            tracing::error!(error = ?error, "cannot record a callback delivery");
        }
    });
}

/// Delivers a callback that the caller holds (claimed), and records the result.
#[tracing::instrument(level = "debug", skip_all, fields(client_id = %callback.client_id, attempt = callback.attempts))]
pub(crate) async fn attempt(
    state: &AppState,
    callback: Callback,
    now: i64,
) -> anyhow::Result<DeliveryResult> {
    let outcome = match state.store.application(callback.client_id).await {
        Ok(Some(application)) => send(state, &application, &callback, now).await,
        Ok(None) => Err("the application no longer exists".to_owned()),
        Err(error) => Err(format!("cannot load the application: {error}")),
    };
    let result = result_of(&callback, outcome, now);
    state
        .store
        .record_delivery(&callback, &result, state.clock.now())
        .await?;
    Ok(result)
}

/// What an attempt's outcome means for the callback, logged.
fn result_of(callback: &Callback, outcome: Result<(), String>, now: i64) -> DeliveryResult {
    let result = match outcome {
        Ok(()) => DeliveryResult::Delivered,
        Err(error) if now - callback.created_at >= callback::RETRY_FOR_SECS => {
            DeliveryResult::GaveUp { error }
        }
        Err(error) => DeliveryResult::Retry {
            next_attempt_at: now + callback::retry_delay(callback.attempts),
            error,
        },
    };
    // Every approval is delivered: the successes are in the console, not the log.
    let (client_id, attempt) = (callback.client_id, callback.attempts);
    match &result {
        DeliveryResult::Delivered => tracing::debug!(%client_id, attempt, "callback delivered"),
        DeliveryResult::Retry {
            error,
            next_attempt_at,
        } => {
            tracing::warn!(%client_id, attempt, %error, retry_in = next_attempt_at - now, "callback failed; will retry");
        }
        DeliveryResult::GaveUp { error } => {
            tracing::error!(%client_id, attempt, %error, "callback failed for a day; given up")
        }
    }
    result
}

/// Sends the signed GET; `Err` carries the reason in words for the log and the console.
async fn send(
    state: &AppState,
    application: &Application,
    callback: &Callback,
    now: i64,
) -> Result<(), String> {
    let secret = state
        .vault
        .open_callback_secret(callback.client_id, &application.sealed_callback_secret)
        .map_err(|e| e.to_string())?;
    let url = callback::signed_url(
        &application.callback_url,
        &secret,
        now,
        callback.approved,
        &callback.session_token,
    );
    let response = state.callbacks.get(url).await.map_err(failure)?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the callback URL answered HTTP {}",
            response.status().as_u16()
        ))
    }
}

/// Why a callback request failed, in words for the log and the console.
fn failure(error: CallError) -> String {
    match error {
        CallError::NotPublic => CallError::NotPublic.to_string(),
        CallError::Request(error) if error.is_timeout() => {
            format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs())
        }
        CallError::Request(error) if error.is_connect() => {
            "cannot connect to the callback URL".to_owned()
        }
        // Without the URL: it carries the session token.
        CallError::Request(error) => format!("request failed: {}", error.without_url()),
    }
}

/// Sweeps and delivers until `shutdown` turns true. A delivery in progress finishes first.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = state.clock.now();
        if let Err(error) = sweep_expired(&state, now).await {
            tracing::error!(error = ?error, "cannot finish expired sessions");
        }
        if let Err(error) = prune_nonces(&state, now).await {
            tracing::error!(error = ?error, "cannot forget stale app request nonces or throttle windows");
        }
        loop {
            match deliver_next(&state, state.clock.now()).await {
                Ok(Delivery::Attempted(_)) if !*shutdown.borrow() => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::error!(error = ?error, "cannot deliver callbacks");
                    break;
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            () = state.wakeup.0.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
