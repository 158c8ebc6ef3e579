//! Registering, signing in and signing out (guide, Step 1: "Register an Account and Sign in
//! to the Domain Console").
//!
//! A wrong password and an unknown email get the same answer in the same time (the unknown
//! email is checked against a dummy hash), and failures are counted per account and per
//! source address: past the limit, sign-ins are refused for a while without looking at the
//! password.

use anyhow::Context;
use askama::Template;
use axum::{
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use axum_extra::extract::cookie::CookieJar;
use eauth_core::{
    Email,
    console::{
        AuditAction, Password, THROTTLE_WINDOW_SECS, dummy_hash, hash_password,
        is_registration_throttled, is_throttled, registration_throttle_key, throttle_keys,
        verify_password,
    },
};
use eauth_store::StoreError;
use serde::Deserialize;

use super::{
    audit,
    session::{Account, Posted, PreSession, pre_session_token, safe_next, start_session},
    views::{Chrome, ConsoleError, page, see_other},
};
use crate::{client_ip::ClientIp, state::AppState};

/// What the sign-in page says to a wrong email and to a wrong password alike.
const WRONG_CREDENTIALS: &str = "The email or password is not correct.";
const THROTTLED: &str = "Too many failed sign-ins for this account or from this address. Wait 15 minutes and try again.";
// Counted are attempts, taken emails too: it cannot say accounts were made.
const TOO_MANY_REGISTRATIONS: &str =
    "Too many registrations from this address. Wait 15 minutes and try again.";

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    email: String,
    next: Option<String>,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "console/register.html")]
struct RegisterPage {
    chrome: Chrome,
    csrf: String,
    email: String,
    email_error: Option<String>,
    password_error: Option<String>,
    /// About the whole form.
    error: Option<&'static str>,
}

#[derive(Default, Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// `GET /console/sign-in`.
pub(super) async fn sign_in_form(
    State(state): State<AppState>,
    signed_in: Result<Account, ConsoleError>,
    jar: CookieJar,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    let next = query.map(|Query(q)| q).unwrap_or_default().next;
    let next = safe_next(next.as_deref());
    if signed_in.is_ok() {
        return see_other(next.as_deref().unwrap_or("/console"));
    }
    let (jar, csrf) = pre_session_token(&state, jar);
    let form = SignInPage {
        chrome: Chrome::anonymous(),
        csrf,
        email: String::new(),
        next,
        error: None,
    };
    (jar, page(StatusCode::OK, &form)).into_response()
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /console/sign-in`.
#[tracing::instrument(name = "console_sign_in", level = "debug", skip_all)]
pub(super) async fn sign_in(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    PreSession { jar, form }: PreSession<SignInForm>,
) -> Result<Response, ConsoleError> {
    let next = safe_next(Some(&form.next));
    let now = state.clock.now();
    let keys = throttle_keys(&form.email, source);
    let since = now - THROTTLE_WINDOW_SECS;
    let account_failures = state.store.signin_failures(&keys[0], since).await?;
    let address_failures = state.store.signin_failures(&keys[1], since).await?;

    let (jar, csrf) = pre_session_token(&state, jar);
    let again = |status: StatusCode, error: &'static str| {
        let form = SignInPage {
            chrome: Chrome::anonymous(),
            csrf: csrf.clone(),
            email: form.email.trim().to_owned(),
            next: next.clone(),
            error: Some(error),
        };
        page(status, &form)
    };
    if is_throttled(account_failures, address_failures) {
        tracing::warn!(%source, "console sign-in refused: too many failures");
        return Ok((jar, again(StatusCode::TOO_MANY_REQUESTS, THROTTLED)).into_response());
    }

    let account = match Email::parse(&form.email) {
        Ok(email) => state.store.account(&email).await?,
        Err(_) => None,
    };
    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let password = form.password.clone();
    // Argon2 is slow on purpose: off the async executor, so other requests go on meanwhile.
    let verified = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => verify_password(&password, &hash),
        None => {
            // The same work for an unknown email: response time tells nothing.
            let _ = verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .context("password check panicked")?;

    match account {
        Some(account) if verified => {
            state.store.clear_signin_failures(&keys[0]).await?;
            let jar = start_session(&state, jar, &account.email).await?;
            audit(
                &state,
                &account.email,
                AuditAction::SignedIn,
                None,
                None,
                source,
            )
            .await?;
            tracing::info!("console sign-in");
            Ok((jar, see_other(next.as_deref().unwrap_or("/console"))).into_response())
        }
        _ => {
            state.store.record_signin_failure(&keys, now).await?;
            state.store.prune_signin_failures(since).await?;
            Ok((jar, again(StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS)).into_response())
        }
    }
}

/// `GET /console/register`.
pub(super) async fn register_form(
    State(state): State<AppState>,
    signed_in: Result<Account, ConsoleError>,
    jar: CookieJar,
) -> Response {
    if signed_in.is_ok() {
        return see_other("/console");
    }
    let (jar, csrf) = pre_session_token(&state, jar);
    let form = RegisterPage {
        chrome: Chrome::anonymous(),
        csrf,
        email: String::new(),
        email_error: None,
        password_error: None,
        error: None,
    };
    (jar, page(StatusCode::OK, &form)).into_response()
}

#[derive(Deserialize)]
pub(super) struct RegisterForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/register`: creates the account and signs it in.
///
/// A taken email is said to be taken. The neutral answer that would hide it ("check your
/// inbox", the same for a free and a taken email) needs email verification, which the console
/// does not have: a new account is signed in at once, and a taken email cannot be, so the two
/// answers differ whatever this page says. What the console does instead is take as long for
/// both (the password is hashed before the insert finds the email taken) and count every
/// registration from an address, free or taken, refusing more than
/// [`MAX_REGISTRATIONS_PER_ADDRESS`](eauth_core::console::MAX_REGISTRATIONS_PER_ADDRESS) in the throttle window.
#[tracing::instrument(name = "console_register", level = "debug", skip_all)]
pub(super) async fn register(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    PreSession { jar, form }: PreSession<RegisterForm>,
) -> Result<Response, ConsoleError> {
    let email = Email::parse(&form.email);
    let password = Password::parse(&form.password);
    let (jar, csrf) = pre_session_token(&state, jar);
    let again = |status: StatusCode,
                 email_error: Option<String>,
                 password_error: Option<String>,
                 error: Option<&'static str>| {
        let form = RegisterPage {
            chrome: Chrome::anonymous(),
            csrf: csrf.clone(),
            email: form.email.trim().to_owned(),
            email_error,
            password_error,
            error,
        };
        page(status, &form)
    };
    let (email, password) = match (email, password) {
        (Ok(email), Ok(password)) => (email, password),
        (email, password) => {
            let email_error = email.err().map(|e| capitalised(&e.to_string()));
            let password_error = password.err().map(|e| format!("Password: {e}."));
            return Ok((
                jar,
                again(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    email_error,
                    password_error,
                    None,
                ),
            )
                .into_response());
        }
    };
    // Counted in the sign-in throttle's table, under a key of its own; a malformed form
    // above tells nothing about any account, so it is not counted.
    let now = state.clock.now();
    let key = registration_throttle_key(source);
    let registrations = state
        .store
        .signin_failures(&key, now - THROTTLE_WINDOW_SECS)
        .await?;
    if is_registration_throttled(registrations) {
        tracing::warn!(%source, "console registration refused: too many from this address");
        return Ok((
            jar,
            again(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                None,
                Some(TOO_MANY_REGISTRATIONS),
            ),
        )
            .into_response());
    }
    state
        .store
        .record_signin_failure(std::slice::from_ref(&key), now)
        .await?;
    state
        .store
        .prune_signin_failures(now - THROTTLE_WINDOW_SECS)
        .await?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .context("password hashing panicked")?;
    match state.store.insert_account(&email, &hash, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            let taken = "An account with this email exists already. Sign in instead.";
            return Ok((
                jar,
                again(StatusCode::CONFLICT, Some(taken.to_owned()), None, None),
            )
                .into_response());
        }
        Err(error) => return Err(error.into()),
    }
    let jar = start_session(&state, jar, &email).await?;
    audit(
        &state,
        &email,
        AuditAction::AccountRegistered,
        None,
        None,
        source,
    )
    .await?;
    tracing::info!("console account registered");
    Ok((jar, see_other("/console")).into_response())
}

/// The sign-out form has nothing but its token.
#[derive(Deserialize)]
pub(super) struct Nothing {}

/// `POST /console/sign-out`: ends the session here and now.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    jar: CookieJar,
    Posted { account, .. }: Posted<Nothing>,
) -> Result<Response, ConsoleError> {
    let jar = account.sign_out(&state, jar).await?;
    Ok((jar, see_other("/console/sign-in")).into_response())
}

/// "email is empty" → "Email is empty."
fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}
