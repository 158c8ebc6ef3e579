//! The sign-in webview (guide, Steps 4 and 5): `GET /start-authentication` shows the code
//! form for a session, `POST /start-authentication` verifies a code or records a denial, and
//! the outcome goes back to the portal by redirect or by `postMessage` from a popup.
//!
//! Nothing here trusts the query string: the session token must verify, the session must be
//! pending, `redirect_uri` must be one the application registered, and a post must carry the
//! anti-forgery token of this session and this browser.

mod pages;

use std::time::Duration;

use axum::{
    Form, Router,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use axum_extra::extract::cookie::CookieJar;
use eauth_core::{
    MatchNumber, RedirectUri, SessionClaims, SessionStatus, TotpCode, Vault, VaultError,
    signin::{self, Verdict},
    totp::CodeRejected,
};
use eauth_store::{Application, Attempt, Callback, Enrollment, Session};
use serde::Deserialize;
use serde_json::json;

use self::pages::{Answer, FormFields, Next, Outcome, PopupMessage, SigninPage, remaining};
use crate::{
    client_ip::ClientIp,
    html::{asset, browser_nonce},
    state::AppState,
    worker::{self, Delivery},
};

/// The browser's half of the anti-forgery token. `__Host-` pins it to this origin, https, `/`.
const CSRF_COOKIE: &str = "__Host-eauth-csrf";
/// How long a successful sign-in waits for the first callback attempt before the browser goes on.
const CALLBACK_HEAD_START: Duration = Duration::from_secs(3);
/// `state` is echoed into URLs and pages; integrators use a random string or a hash.
const MAX_STATE_LEN: usize = 512;

/// The sign-in page's routes and its static files.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/start-authentication", get(show).post(submit))
        .route("/start-authentication/status", get(status))
        .route(
            "/assets/webview.css",
            get(|| asset("text/css", include_str!("../../assets/webview.css"))),
        )
        .route(
            "/assets/webview.js",
            get(|| asset("text/javascript", include_str!("../../assets/webview.js"))),
        )
        .route(
            "/sdk/eauth.js",
            get(|| asset("text/javascript", include_str!("../../assets/eauth.js"))),
        )
}

/// The query string of `GET /start-authentication` (and the hidden fields of its form).
#[derive(Debug, Default, Deserialize)]
struct Params {
    signin_method: Option<String>,
    session_token: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// What the form posts.
#[derive(Deserialize)]
struct Submission {
    #[serde(flatten)]
    params: Params,
    csrf: Option<String>,
    action: Option<String>,
    code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Redirect,
    Popup,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Redirect => "redirect",
            Self::Popup => "popup",
        }
    }
}

/// A request whose parameters all checked out.
struct Context {
    method: Method,
    token: String,
    claims: SessionClaims,
    application: Application,
    /// The registered redirect URI the request named, if it named one.
    redirect_uri: Option<RedirectUri>,
    /// Where a popup posts its outcome: the redirect URI's origin, else the application's
    /// only registered origin.
    target_origin: Option<String>,
    state: Option<String>,
}

fn bad_link(message: impl Into<String>) -> Outcome {
    Outcome::dead_end(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        message,
    )
}

/// Checks the parameters. Failures here never lead back to the portal: without a verified
/// session and a registered redirect URI there is no address we may send the browser to.
async fn resolve(state: &AppState, params: Params) -> Result<Context, Outcome> {
    let method = match params.signin_method.as_deref() {
        Some("redirect") => Method::Redirect,
        Some("popup") => Method::Popup,
        Some(_) => return Err(bad_link("signin_method must be \"redirect\" or \"popup\".")),
        None => return Err(bad_link("The link has no signin_method.")),
    };
    let token = params
        .session_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad_link("The link has no session_token."))?;
    // Expiry is judged against the stored session below, which can then end as TIMEOUT.
    let claims = state.keyring.decode(&token).map_err(|_| {
        bad_link("The session_token is not one this service issued, or it was altered.")
    })?;
    if params
        .state
        .as_ref()
        .is_some_and(|s| s.len() > MAX_STATE_LEN)
    {
        return Err(bad_link(format!(
            "state is longer than {MAX_STATE_LEN} characters."
        )));
    }
    let application = state
        .store
        .application(claims.client_id)
        .await
        .map_err(|error| internal_dead_end(&error))?
        .ok_or_else(|| bad_link("The application of this sign-in no longer exists."))?;
    // A deactivated application gets INACTIVE from the API; its pending sign-ins must not be
    // approvable here either.
    if !application.active {
        return Err(bad_link("The application of this sign-in is not active."));
    }
    let redirect_uri = match params.redirect_uri.as_deref().filter(|uri| !uri.is_empty()) {
        Some(raw) => {
            let uri = RedirectUri::parse(raw)
                .ok()
                .filter(|uri| application.redirect_uris.contains(uri))
                .ok_or_else(|| bad_link("redirect_uri is not registered for this application."))?;
            Some(uri)
        }
        None if method == Method::Redirect => {
            return Err(bad_link("The link has no redirect_uri."));
        }
        None => None,
    };
    let target_origin = match (&redirect_uri, method) {
        (Some(uri), _) => Some(uri.origin()),
        (None, Method::Popup) => {
            let mut origins: Vec<String> = application
                .redirect_uris
                .iter()
                .map(RedirectUri::origin)
                .collect();
            origins.dedup();
            match origins.as_slice() {
                [only] => Some(only.clone()),
                _ => {
                    return Err(bad_link(
                        "redirect_uri is required: this application has several origins.",
                    ));
                }
            }
        }
        (None, Method::Redirect) => None,
    };
    Ok(Context {
        method,
        token,
        claims,
        application,
        redirect_uri,
        target_origin,
        state: params.state,
    })
}

fn internal_dead_end(error: &dyn std::fmt::Debug) -> Outcome {
    tracing::error!(?error, "sign-in page failed");
    Outcome::dead_end(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The sign-in service had a problem. Please try again in a moment.",
    )
}

/// The error code the guide gives each unsuccessful ending.
fn error_code(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::TimedOut => "TIMEOUT",
        SessionStatus::Error => "INTERNAL_SERVER_ERROR",
        _ => "REJECT",
    }
}

impl Context {
    /// The portal's URL with our parameters added to its own query.
    fn portal_url(&self, pairs: &[(&str, &str)]) -> Option<String> {
        let mut url = self.redirect_uri.as_ref()?.as_url().clone();
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in pairs {
                query.append_pair(key, value);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
        }
        Some(url.to_string())
    }

    fn popup_message(&self, message: serde_json::Value, immediately: bool) -> Option<PopupMessage> {
        let target_origin = self
            .target_origin
            .clone()
            .filter(|_| self.method == Method::Popup)?;
        Some(PopupMessage {
            message: message.to_string(),
            target_origin,
            immediately,
        })
    }

    /// An unsuccessful ending: the page says so, and its "Sign in" button leads back to the
    /// portal with `error=...` (or posts it, from a popup).
    fn failure(&self, status: SessionStatus, title: &str, message: &str) -> Outcome {
        let code = error_code(status);
        let http_status = match status {
            SessionStatus::Error => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::OK,
        };
        let popup = self.popup_message(
            json!({ "session_token": null, "state": self.state, "error": code }),
            false,
        );
        let sign_in_url = if popup.is_some() {
            None
        } else {
            self.portal_url(&[("error", code)])
        };
        Outcome {
            status: http_status,
            kind: "failure",
            title: title.to_owned(),
            message: message.to_owned(),
            sign_in_url,
            popup,
        }
    }

    /// The page for a session that is already over.
    fn finished(&self, status: SessionStatus) -> Outcome {
        match status {
            SessionStatus::Approved => Outcome {
                status: StatusCode::OK,
                kind: "success",
                title: "Already signed in".into(),
                message: "This sign-in was already completed. You can close this page.".into(),
                sign_in_url: None,
                popup: None,
            },
            SessionStatus::TimedOut => self.failure(
                status,
                "This sign-in has expired",
                "You did not finish in time. Sign in again to get a new code request.",
            ),
            SessionStatus::Error => self.failure(
                status,
                "Something went wrong",
                "The sign-in service had a problem. Please sign in again.",
            ),
            SessionStatus::Rejected | SessionStatus::Pending => self.failure(
                SessionStatus::Rejected,
                "You don't have access",
                "This sign-in was refused.",
            ),
        }
    }

    /// Where an approved sign-in goes: back to the portal with the token (redirect), or the
    /// token posted to the portal's window (popup).
    fn continue_to_portal(&self) -> Next {
        match self.method {
            Method::Redirect => match self.portal_url(&[("session_token", &self.token)]) {
                Some(url) => Next::Redirect(url),
                None => Next::Outcome(bad_link("The link has no redirect_uri.")),
            },
            Method::Popup => Next::Outcome(Outcome {
                status: StatusCode::OK,
                kind: "success",
                title: "You're signed in".into(),
                message: "You can close this window.".into(),
                sign_in_url: None,
                popup: self.popup_message(
                    json!({ "session_token": self.token, "state": self.state }),
                    true,
                ),
            }),
        }
    }

    fn answer(&self, next: Next, headers: &HeaderMap) -> Answer {
        Answer {
            next,
            json: wants_json(headers),
            portal_origin: self.redirect_uri.as_ref().map(RedirectUri::origin),
        }
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"))
}

fn dead_end(outcome: Outcome, headers: &HeaderMap) -> Answer {
    Answer {
        next: Next::Outcome(outcome),
        json: wants_json(headers),
        portal_origin: None,
    }
}

/// Ends a pending session whose lifetime is over as TIMEOUT, so a late visitor sees the same
/// ending the backend is told; returns the session as it now stands.
async fn settle_expiry(
    state: &AppState,
    mut session: Session,
    token: &str,
) -> anyhow::Result<Session> {
    let now = state.clock.now();
    if session.status == SessionStatus::Pending && now >= session.expires_at {
        if state
            .store
            .finish_session(&session, SessionStatus::TimedOut, now, token)
            .await?
        {
            state.wakeup.wake();
        }
        session = state.store.session(session.id).await?.unwrap_or(session);
    }
    Ok(session)
}

/// The checked parameters of a sign-in link, or the dead end (page or JSON) that says why it
/// is not one.
async fn context_of_link(
    state: &AppState,
    query: Result<Query<Params>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<Context, Response> {
    let params = match query {
        Ok(Query(params)) => params,
        Err(rejection) => {
            return Err(dead_end(bad_link(rejection.body_text()), headers).into_response());
        }
    };
    resolve(state, params)
        .await
        .map_err(|outcome| dead_end(outcome, headers).into_response())
}

/// `GET /start-authentication`.
#[tracing::instrument(name = "signin_page", level = "debug", skip_all)]
async fn show(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    jar: CookieJar,
    headers: HeaderMap,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let ctx = match context_of_link(&state, query, &headers).await {
        Ok(ctx) => ctx,
        Err(dead_end) => return dead_end,
    };
    let (jar, nonce) = browser_nonce(jar, CSRF_COOKIE);
    match render_page(&state, &ctx, &nonce, source).await {
        Ok(next) => (jar, ctx.answer(next, &headers)).into_response(),
        Err(error) => dead_end(internal_dead_end(&error), &headers).into_response(),
    }
}

async fn render_page(
    state: &AppState,
    ctx: &Context,
    nonce: &str,
    source: std::net::IpAddr,
) -> anyhow::Result<Next> {
    let Some(session) = state.store.session(ctx.claims.id).await? else {
        return Ok(Next::Outcome(bad_link(
            "This sign-in session does not exist.",
        )));
    };
    let session = settle_expiry(state, session, &ctx.token).await?;
    if session.status != SessionStatus::Pending {
        return Ok(Next::Outcome(ctx.finished(session.status)));
    }
    let enrollment = state
        .store
        .enrollment(session.client_id, &session.email)
        .await?;
    let unusable = match &enrollment {
        None => Some("Two-factor authentication is no longer enabled for this account."),
        Some(enrollment) if enrollment.locked_at.is_some() => Some(
            "Two-factor authentication for this account is locked after too many wrong codes. Ask the site to set it up again.",
        ),
        Some(_) => None,
    };
    if let Some(message) = unusable {
        return reject(state, ctx, &session, message).await;
    }
    state
        .store
        .record_page_open(session.id, ctx.method.as_str(), &source.to_string())
        .await?;
    let session = offer_push(state, session).await?;
    let digits = enrollment.map_or(6, |e| e.params.digits());
    Ok(Next::Retry(Box::new(signin_page(
        state, ctx, &session, nonce, digits, None,
    ))))
}

/// Offers a pending sign-in to the user's registered devices: it gets its number (the first
/// time), and their waiting polls are woken. Users without a device see the code form only.
async fn offer_push(state: &AppState, mut session: Session) -> anyhow::Result<Session> {
    if state
        .store
        .devices_of(session.client_id, &session.email)
        .await?
        .is_empty()
    {
        return Ok(session);
    }
    session.push_number = state
        .store
        .offer_push(session.id, MatchNumber::generate())
        .await?;
    if session.push_number.is_some() {
        state.push.signal(session.client_id, &session.email);
    }
    Ok(session)
}

fn signin_page(
    state: &AppState,
    ctx: &Context,
    session: &Session,
    nonce: &str,
    digits: u8,
    error: Option<String>,
) -> SigninPage {
    let seconds_left = (session.expires_at - state.clock.now()).max(0);
    SigninPage {
        app_name: ctx.application.name.as_str().to_owned(),
        masked_email: session.email.masked(),
        seconds_left,
        remaining: remaining(seconds_left),
        digits,
        push_number: session.push_number.map(MatchNumber::get),
        form: FormFields {
            signin_method: ctx.method.as_str(),
            session_token: ctx.token.clone(),
            redirect_uri: ctx.redirect_uri.as_ref().map(ToString::to_string),
            state: ctx.state.clone(),
            csrf: state.vault.form_token(session.id, nonce),
        },
        error,
    }
}

/// Ends a pending session as REJECT and shows why.
async fn reject(
    state: &AppState,
    ctx: &Context,
    session: &Session,
    message: &str,
) -> anyhow::Result<Next> {
    if state
        .store
        .finish_session(
            session,
            SessionStatus::Rejected,
            state.clock.now(),
            &ctx.token,
        )
        .await?
    {
        state.wakeup.wake();
    }
    Ok(Next::Outcome(ctx.failure(
        SessionStatus::Rejected,
        "You don't have access",
        message,
    )))
}

/// `POST /start-authentication`: verify a code, or deny.
#[tracing::instrument(name = "signin_submit", level = "debug", skip_all)]
async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(submission): Form<Submission>,
) -> Response {
    let ctx = match resolve(&state, submission.params).await {
        Ok(ctx) => ctx,
        Err(outcome) => return dead_end(outcome, &headers).into_response(),
    };
    let genuine = jar
        .get(CSRF_COOKIE)
        .zip(submission.csrf.as_deref())
        .is_some_and(|(cookie, presented)| {
            state
                .vault
                .check_form_token(ctx.claims.id, cookie.value(), presented)
        });
    if !genuine {
        let outcome = Outcome::dead_end(
            StatusCode::FORBIDDEN,
            "Please reload the page",
            "This form was not sent from the sign-in page in this browser, or it is out of date. Reload the page and try again.",
        );
        return ctx.answer(Next::Outcome(outcome), &headers).into_response();
    }
    let nonce = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let result = match submission.action.as_deref() {
        Some("deny") => deny(&state, &ctx).await,
        _ => {
            verify(
                &state,
                &ctx,
                &nonce,
                submission.code.as_deref().unwrap_or_default(),
            )
            .await
        }
    };
    match result {
        Ok(next) => ctx.answer(next, &headers).into_response(),
        Err(error) => {
            tracing::error!(error = ?error, "sign-in failed");
            let next = Next::Outcome(fail_internally(&state, &ctx).await);
            ctx.answer(next, &headers).into_response()
        }
    }
}

/// After a fault of ours: end the session as ERROR if we still can, and say so.
async fn fail_internally(state: &AppState, ctx: &Context) -> Outcome {
    if let Ok(Some(session)) = state.store.session(ctx.claims.id).await
        && let Ok(true) = state
            .store
            .finish_session(
                &session,
                SessionStatus::Error,
                state.clock.now(),
                &ctx.token,
            )
            .await
    {
        state.wakeup.wake();
    }
    ctx.failure(
        SessionStatus::Error,
        "Something went wrong",
        "The sign-in service had a problem. Please sign in again.",
    )
}

async fn deny(state: &AppState, ctx: &Context) -> anyhow::Result<Next> {
    let Some(session) = state.store.session(ctx.claims.id).await? else {
        return Ok(Next::Outcome(bad_link(
            "This sign-in session does not exist.",
        )));
    };
    let session = settle_expiry(state, session, &ctx.token).await?;
    if session.status != SessionStatus::Pending {
        return Ok(Next::Outcome(ctx.finished(session.status)));
    }
    tracing::info!(client_id = %session.client_id, "sign-in denied by the user");
    if state
        .store
        .finish_session(
            &session,
            SessionStatus::Rejected,
            state.clock.now(),
            &ctx.token,
        )
        .await?
    {
        state.wakeup.wake();
    }
    Ok(Next::Outcome(ctx.failure(
        SessionStatus::Rejected,
        "Sign-in denied",
        "You refused this sign-in. If you did not try to sign in, someone may know your password: change it.",
    )))
}

/// Judges a typed code (`None`: not even a code, hence wrong) against an enrollment at `now`,
/// counting `session_failures` wrong codes before it. (A device's registration checks codes
/// too, under its own throttle: `eauth_core::device_registration`.)
fn judge_code(
    vault: &Vault,
    enrollment: &Enrollment,
    session_failures: u32,
    code: Option<&TotpCode>,
    now: i64,
) -> Result<Verdict, VaultError> {
    let secret = vault.open_totp_secret(
        enrollment.client_id,
        &enrollment.email,
        &enrollment.sealed_secret,
    )?;
    let state = enrollment.attempt_state(session_failures);
    Ok(signin::judge(state, now, |last_used| match code {
        Some(code) => secret.verify(
            enrollment.params,
            code,
            u64::try_from(now).unwrap_or(0),
            last_used,
        ),
        None => Err(CodeRejected::Wrong),
    }))
}

async fn verify(state: &AppState, ctx: &Context, nonce: &str, typed: &str) -> anyhow::Result<Next> {
    let now = state.clock.now();
    let code = TotpCode::parse(typed).ok();
    let judging = state.clone();
    let attempt = state
        .store
        .attempt(
            ctx.claims.id,
            now,
            &ctx.token,
            now + worker::LEASE_SECS,
            move |session, enrollment| {
                judge_code(
                    &judging.vault,
                    enrollment,
                    session.failed_attempts,
                    code.as_ref(),
                    now,
                )
            },
        )
        .await?;
    let (verdict, session, digits, callback) = match attempt {
        Attempt::Judged {
            verdict,
            session,
            digits,
            callback,
        } => (verdict, session, digits, callback),
        Attempt::UnknownSession => {
            return Ok(Next::Outcome(bad_link(
                "This sign-in session does not exist.",
            )));
        }
        Attempt::NotPending(session) => {
            let session = settle_expiry(state, session, &ctx.token).await?;
            return Ok(Next::Outcome(ctx.finished(session.status)));
        }
        Attempt::NotEnrolled => {
            let session = state
                .store
                .session(ctx.claims.id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("session vanished"))?;
            return reject(
                state,
                ctx,
                &session,
                "Two-factor authentication is no longer enabled for this account.",
            )
            .await;
        }
    };
    let retry = |message: String| {
        Next::Retry(Box::new(signin_page(
            state,
            ctx,
            &session,
            nonce,
            digits,
            Some(message),
        )))
    };
    Ok(match verdict {
        Verdict::Approved { .. } => {
            tracing::info!(client_id = %session.client_id, "sign-in approved");
            if let Some(callback) = callback {
                deliver_before_the_browser(state, ctx, callback).await;
            }
            ctx.continue_to_portal()
        }
        Verdict::Wrong {
            locked: false,
            reason,
            attempts_left,
        } => {
            let what = match reason {
                CodeRejected::Wrong => "That code is not correct.",
                CodeRejected::Replayed => "That code was already used. Wait for the next code.",
            };
            let left = if attempts_left == 1 {
                "1 attempt left".to_owned()
            } else {
                format!("{attempts_left} attempts left")
            };
            retry(format!("{what} {left}."))
        }
        Verdict::Throttled { retry_at } => {
            let wait = (retry_at - now).max(1);
            let unit = if wait == 1 { "second" } else { "seconds" };
            retry(format!(
                "Too many wrong codes for this account. Try again in {wait} {unit}."
            ))
        }
        Verdict::Wrong { locked: true, .. } | Verdict::Locked => {
            state.wakeup.wake();
            Next::Outcome(ctx.failure(
                SessionStatus::Rejected,
                "You don't have access",
                "Two-factor authentication for this account is locked after too many wrong codes. Ask the site to set it up again.",
            ))
        }
        Verdict::Exhausted { .. } => {
            state.wakeup.wake();
            Next::Outcome(ctx.failure(
                SessionStatus::Rejected,
                "You don't have access",
                "Too many wrong codes. This sign-in was refused.",
            ))
        }
    })
}

/// Attempts the approval's callback, which this request holds, before the browser goes on
/// (for at most [`CALLBACK_HEAD_START`]): the backend usually knows the result before the
/// browser arrives (guide, Step 5.1). Past that the attempt goes on in the background, and the
/// worker retries it if it fails.
async fn deliver_before_the_browser(state: &AppState, ctx: &Context, callback: Callback) {
    let (background, application) = (state.clone(), ctx.application.clone());
    let delivery =
        tokio::spawn(
            async move { worker::deliver_claimed(&background, callback, &application).await },
        );
    let _ = tokio::time::timeout(CALLBACK_HEAD_START, delivery).await;
}

/// Waits until the first attempt to deliver the approved session's callback is over, or
/// until [`CALLBACK_HEAD_START`] after the session finished: the backend usually knows the
/// result before the browser arrives (guide, Step 5.1). Delivers it from here when nobody
/// else is; waits for whoever is (the approving device's request, another process).
async fn give_backend_head_start(state: &AppState, session: &Session) -> anyhow::Result<()> {
    let Some(callback) = state.store.callback_of_session(session.id).await? else {
        return Ok(());
    };
    let elapsed = state.clock.now() - session.finished_at.unwrap_or(i64::MIN);
    let left = CALLBACK_HEAD_START.saturating_sub(Duration::from_secs(
        u64::try_from(elapsed).unwrap_or(u64::MAX),
    ));
    let deadline = tokio::time::Instant::now() + left;
    let background = state.clone();
    let delivery = tokio::spawn(async move { worker::deliver_now(&background, callback.id).await });
    // Past the head start the delivery goes on in the background; the worker retries it
    // if it fails.
    match tokio::time::timeout_at(deadline, delivery).await {
        Ok(Ok(Ok(Delivery::Idle))) => {}
        _ => return Ok(()),
    }
    // Someone else holds it, or it is done: its first attempt is over once it is no longer
    // pending or has failed once.
    while tokio::time::Instant::now() < deadline {
        match state.store.callback_of_session(session.id).await? {
            Some(callback)
                if callback.status == eauth_store::CallbackStatus::Pending
                    && callback.last_error.is_none() =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => break,
        }
    }
    Ok(())
}

/// `GET /start-authentication/status`, with the page's own query: the page's script asks
/// (at most once a second) whether the sign-in was decided elsewhere — on the user's device —
/// and then goes on exactly as after a code: `{"next": "wait"}` while it is pending, else the
/// same answer a form post gets. Nothing here changes the session except its expiry, which
/// the page's countdown shows anyway.
#[tracing::instrument(name = "signin_status", level = "debug", skip_all)]
async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let mut headers = headers;
    headers.insert(
        header::ACCEPT,
        header::HeaderValue::from_static("application/json"),
    );
    let ctx = match context_of_link(&state, query, &headers).await {
        Ok(ctx) => ctx,
        Err(dead_end) => return dead_end,
    };
    match decided(&state, &ctx).await {
        Ok(next) => ctx.answer(next, &headers).into_response(),
        Err(error) => dead_end(internal_dead_end(&error), &headers).into_response(),
    }
}

async fn decided(state: &AppState, ctx: &Context) -> anyhow::Result<Next> {
    let Some(session) = state.store.session(ctx.claims.id).await? else {
        return Ok(Next::Outcome(bad_link(
            "This sign-in session does not exist.",
        )));
    };
    let session = settle_expiry(state, session, &ctx.token).await?;
    Ok(match session.status {
        SessionStatus::Pending => Next::Wait,
        SessionStatus::Approved => {
            give_backend_head_start(state, &session).await?;
            ctx.continue_to_portal()
        }
        finished => Next::Outcome(ctx.finished(finished)),
    })
}
