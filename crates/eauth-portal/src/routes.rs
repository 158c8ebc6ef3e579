//! The portal's routes: accounts, the Security page, and sign-in with the second factor.

use std::{sync::Arc, time::SystemTime};

use axum::{
    Form, Router,
    extract::{Query, RawQuery, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use eauth_sdk::{Enrollment, SessionToken, SignIn, TotpSecret};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::{
    Portal,
    db::User,
    pages::{self, Home, Popup, Security, Setup},
    secrets::{check_password, hash_password, new_token, token_hash},
};

const BROWSER_COOKIE: &str = "portal_browser";
const SESSION_COOKIE: &str = "portal_session";
const SESSION_SECS: i64 = 12 * 3600;
/// Longer than eAuthenticator's session lifetime: the user may come back late and be told so.
const PENDING_SECS: i64 = 600;

type Shared = Arc<Portal>;

pub(crate) fn router(portal: Shared) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/sign-up", get(sign_up_page).post(sign_up))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-in/finish", post(finish_popup))
        .route("/callback", get(come_back))
        .route("/eauth/callback", get(eauth_callback))
        .route("/sign-out", post(sign_out))
        .route("/security", get(security))
        .route("/security/enable", post(enable_start))
        .route("/security/confirm", post(enable_confirm))
        .route("/security/disable", post(disable))
        .route(
            "/static/portal.css",
            get(|| asset("text/css", include_str!("../static/portal.css"))),
        )
        .route(
            "/static/portal.js",
            get(|| asset("text/javascript", include_str!("../static/portal.js"))),
        )
        .with_state(portal)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

impl Portal {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn eauth_origin(&self) -> String {
        url::Url::parse(&self.config.eauth.base_url)
            .map_or_else(|_| String::new(), |u| u.origin().ascii_serialization())
    }

    fn secure_cookies(&self) -> bool {
        self.config.public_url.scheme() == "https"
    }

    fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure_cookies())
            .same_site(SameSite::Lax)
            .build()
    }

    fn render(&self, template: &impl askama::Template, status: StatusCode) -> Response {
        pages::page(template, status, &self.eauth_origin())
    }

    fn url(&self, path: &str) -> String {
        self.config
            .public_url
            .join(path)
            .map_or_else(|_| path.to_owned(), String::from)
    }
}

/// The browser's random id, in a cookie set on its first visit: it binds pending sign-ins to
/// the browser that started them and keys the anti-forgery token of its forms.
fn browser(portal: &Portal, jar: CookieJar) -> (CookieJar, String) {
    if let Some(id) = jar
        .get(BROWSER_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 64)
    {
        return (jar, id);
    }
    let (id, _) = new_token();
    (jar.add(portal.cookie(BROWSER_COOKIE, id.clone())), id)
}

/// The anti-forgery token of this browser's forms: another site can neither read the cookie
/// nor compute this from it.
fn csrf_of(browser: &str) -> String {
    hex::encode(token_hash(&format!("csrf:{browser}")))
}

fn csrf_ok(jar: &CookieJar, presented: &str) -> bool {
    jar.get(BROWSER_COOKIE)
        .is_some_and(|c| bool::from(csrf_of(c.value()).as_bytes().ct_eq(presented.as_bytes())))
}

async fn current_user(portal: &Portal, jar: &CookieJar) -> Option<User> {
    let token = jar.get(SESSION_COOKIE)?;
    portal
        .db
        .web_session_user(&token_hash(token.value()), now())
        .await
        .ok()
        .flatten()
}

#[derive(Deserialize)]
struct NoticeQuery {
    error: Option<String>,
}

async fn home(State(portal): State<Shared>, jar: CookieJar) -> Response {
    let (jar, id) = browser(&portal, jar);
    let user = current_user(&portal, &jar).await;
    let page = Home {
        portal_name: portal.name(),
        notice: None,
        two_factor: user.as_ref().is_some_and(|u| u.sealed_secret.is_some()),
        email: user.map(|u| u.email),
        csrf: csrf_of(&id),
    };
    (jar, portal.render(&page, StatusCode::OK)).into_response()
}

#[derive(Deserialize)]
struct Credentials {
    csrf: String,
    email: String,
    password: String,
    method: Option<String>,
}

async fn sign_up_page(State(portal): State<Shared>, jar: CookieJar) -> Response {
    let (jar, id) = browser(&portal, jar);
    let page = pages::SignUp {
        portal_name: portal.name(),
        notice: None,
        csrf: csrf_of(&id),
        email: String::new(),
        error: None,
    };
    (jar, portal.render(&page, StatusCode::OK)).into_response()
}

async fn sign_up(
    State(portal): State<Shared>,
    jar: CookieJar,
    Form(form): Form<Credentials>,
) -> Response {
    let (jar, id) = browser(&portal, jar);
    let email = form.email.trim().to_lowercase();
    let again = |error: &str| {
        let page = pages::SignUp {
            portal_name: portal.name(),
            notice: None,
            csrf: csrf_of(&id),
            email: email.clone(),
            error: Some(error.to_owned()),
        };
        portal.render(&page, StatusCode::UNPROCESSABLE_ENTITY)
    };
    if !csrf_ok(&jar, &form.csrf) {
        return (jar, again("The form expired. Please try again.")).into_response();
    }
    if !email.contains('@') || email.len() > 254 {
        return (jar, again("Enter a valid email address.")).into_response();
    }
    if form.password.chars().count() < 12 {
        return (jar, again("Choose a password of at least 12 characters.")).into_response();
    }
    let created = match hash_password(form.password).await {
        Ok(hash) => portal.db.create_user(&email, &hash, now()).await,
        Err(error) => Err(error),
    };
    match created {
        Ok(true) => match start_web_session(&portal, jar, &email).await {
            Ok(jar) => (jar, Redirect::to("/security")).into_response(),
            Err(error) => internal(&error),
        },
        Ok(false) => (
            jar,
            again("An account with this email exists already. Sign in instead."),
        )
            .into_response(),
        Err(error) => internal(&error),
    }
}

fn internal(error: &anyhow::Error) -> Response {
    tracing::error!(error = ?error, "portal request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong. Please try again.",
    )
        .into_response()
}

async fn start_web_session(
    portal: &Portal,
    jar: CookieJar,
    email: &str,
) -> anyhow::Result<CookieJar> {
    let user = portal
        .db
        .user_by_email(email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("user vanished"))?;
    let (token, hash) = new_token();
    portal
        .db
        .create_web_session(&hash, user.id, now() + SESSION_SECS)
        .await?;
    Ok(jar.add(portal.cookie(SESSION_COOKIE, token)))
}

fn sign_in_notice(error: Option<&str>) -> Option<String> {
    Some(
        match error? {
            "REJECT" => "The sign-in was refused at the second step. Try again.",
            "TIMEOUT" => "The second step took too long. Sign in again.",
            "INTERNAL_SERVER_ERROR" => "eAuthenticator had a problem. Sign in again.",
            _ => "The sign-in did not complete. Sign in again.",
        }
        .to_owned(),
    )
}

async fn sign_in_page(
    State(portal): State<Shared>,
    jar: CookieJar,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let (jar, id) = browser(&portal, jar);
    let page = pages::SignIn {
        portal_name: portal.name(),
        notice: sign_in_notice(query.error.as_deref()),
        csrf: csrf_of(&id),
        email: String::new(),
        error: None,
    };
    (jar, portal.render(&page, StatusCode::OK)).into_response()
}

async fn sign_in(
    State(portal): State<Shared>,
    jar: CookieJar,
    Form(form): Form<Credentials>,
) -> Response {
    let (jar, id) = browser(&portal, jar);
    let email = form.email.trim().to_lowercase();
    let again = |error: &str| {
        let page = pages::SignIn {
            portal_name: portal.name(),
            notice: None,
            csrf: csrf_of(&id),
            email: email.clone(),
            error: Some(error.to_owned()),
        };
        portal.render(&page, StatusCode::UNPROCESSABLE_ENTITY)
    };
    if !csrf_ok(&jar, &form.csrf) {
        return (jar, again("The form expired. Please try again.")).into_response();
    }
    let user = match portal.db.user_by_email(&email).await {
        Ok(user) => user,
        Err(error) => return internal(&error),
    };
    // An unknown email is checked against a dummy hash: the answer takes as long either way.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let matches = check_password(form.password, hash).await;
    let Some(user) = user.filter(|_| matches) else {
        return (jar, again("Wrong email or password.")).into_response();
    };
    if user.sealed_secret.is_none() {
        return match start_web_session(&portal, jar, &email).await {
            Ok(jar) => (jar, Redirect::to("/")).into_response(),
            Err(error) => internal(&error),
        };
    }
    // Guide, Step 3: a session token for the user, kept with this half-finished sign-in.
    let token = match portal.eauth.create_session(&user.email).await {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, "eAuthenticator refused a session");
            return (
                jar,
                again("Two-factor authentication is unavailable right now. Try again shortly."),
            )
                .into_response();
        }
    };
    if let Err(error) = portal
        .db
        .create_pending(
            &token_hash(token.as_str()),
            user.id,
            &id,
            now() + PENDING_SECS,
        )
        .await
    {
        return internal(&error);
    }
    let come_back = portal.url("/callback");
    match form.method.as_deref() {
        Some("popup") => {
            let page = Popup {
                portal_name: portal.name(),
                notice: None,
                csrf: csrf_of(&id),
                eauth_script: format!("{}/sdk/eauth.js", portal.eauth_origin()),
                session_token: token.into_string(),
                redirect_uri: come_back,
            };
            (jar, portal.render(&page, StatusCode::OK)).into_response()
        }
        // Guide, Step 4, option 1.
        _ => {
            let url = portal.eauth.authentication_url(
                &token,
                &SignIn::Redirect {
                    redirect_uri: come_back,
                },
            );
            (jar, Redirect::to(url.as_str())).into_response()
        }
    }
}

/// Finishes a sign-in of this browser only if this backend knows eAuthenticator approved it:
/// from a verified callback, or else by asking `session-result` (the callback may still be on
/// its way). Each pending sign-in finishes once.
async fn finish(portal: &Portal, jar: CookieJar, token: &str) -> Response {
    let (jar, id) = browser(portal, jar);
    let pending = match portal.db.take_pending(&token_hash(token), &id, now()).await {
        Ok(pending) => pending,
        Err(error) => return internal(&error),
    };
    let Some((user_id, verdict)) = pending else {
        return (jar, Redirect::to("/sign-in?error=UNKNOWN")).into_response();
    };
    let approved = match verdict {
        Some(approved) => approved,
        None => match portal
            .eauth
            .session_result(&SessionToken::from(token.to_owned()))
            .await
        {
            Ok(result) => result.is_approved(),
            Err(error) => {
                tracing::warn!(%error, "cannot confirm a sign-in with eAuthenticator");
                false
            }
        },
    };
    let user = portal.db.user(user_id).await.ok().flatten();
    match user {
        Some(user) if approved => match start_web_session(portal, jar, &user.email).await {
            Ok(jar) => (jar, Redirect::to("/")).into_response(),
            Err(error) => internal(&error),
        },
        _ => (jar, Redirect::to("/sign-in?error=REJECT")).into_response(),
    }
}

#[derive(Deserialize)]
struct ComeBack {
    session_token: Option<String>,
    error: Option<String>,
}

/// The redirect back from eAuthenticator (guide, Step 5.2, option 1).
async fn come_back(
    State(portal): State<Shared>,
    jar: CookieJar,
    Query(query): Query<ComeBack>,
) -> Response {
    match (query.session_token, query.error) {
        (Some(token), None) => finish(&portal, jar, &token).await,
        (_, error) => Redirect::to(&format!(
            "/sign-in?error={}",
            failure_code(error.as_deref())
        ))
        .into_response(),
    }
}

/// The failure the sign-in page reported (guide, Step 5.2), passed on to the sign-in form only
/// if it is one of the guide's codes.
fn failure_code(error: Option<&str>) -> &'static str {
    match error {
        None | Some("REJECT") => "REJECT",
        Some("TIMEOUT") => "TIMEOUT",
        Some("INTERNAL_SERVER_ERROR") => "INTERNAL_SERVER_ERROR",
        Some(_) => "UNKNOWN",
    }
}

#[derive(Deserialize)]
struct FinishForm {
    csrf: String,
    session_token: String,
}

/// The popup's result, posted by the portal's page (guide, Step 5.2, option 2).
async fn finish_popup(
    State(portal): State<Shared>,
    jar: CookieJar,
    Form(form): Form<FinishForm>,
) -> Response {
    if !csrf_ok(&jar, &form.csrf) {
        return Redirect::to("/sign-in?error=UNKNOWN").into_response();
    }
    finish(&portal, jar, &form.session_token).await
}

/// The server-to-server callback (guide, API reference 2). Only a correctly signed, fresh
/// callback is recorded; anything else is refused and changes nothing.
async fn eauth_callback(State(portal): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let verified = match portal
        .eauth
        .verify_callback(query.as_deref().unwrap_or_default(), SystemTime::now())
    {
        Ok(verified) => verified,
        Err(error) => {
            tracing::warn!(%error, "refused a callback");
            return (StatusCode::BAD_REQUEST, "refused").into_response();
        }
    };
    match portal
        .db
        .record_verdict(
            &token_hash(verified.session_token.as_str()),
            verified.approved,
        )
        .await
    {
        // A callback for a sign-in already finished (or never started here) is acknowledged:
        // retrying it would change nothing.
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(error) => internal(&error),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

async fn sign_out(
    State(portal): State<Shared>,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if csrf_ok(&jar, &form.csrf)
        && let Some(token) = jar.get(SESSION_COOKIE)
        && let Err(error) = portal
            .db
            .delete_web_session(&token_hash(token.value()))
            .await
    {
        return internal(&error);
    }
    (jar.remove(Cookie::from(SESSION_COOKIE)), Redirect::to("/")).into_response()
}

async fn security_page(
    portal: &Portal,
    jar: CookieJar,
    user: &User,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (jar, id) = browser(portal, jar);
    let setup = match (&user.sealed_secret, &user.sealed_pending_secret) {
        (None, Some(sealed)) => match pending_enrollment(portal, user, sealed) {
            Ok(enrollment) => Some(Setup {
                qr_data_uri: format!(
                    "data:image/svg+xml;base64,{}",
                    data_encoding::BASE64
                        .encode(enrollment.qr_svg().unwrap_or_default().as_bytes())
                ),
                secret: enrollment.secret().to_base32(),
            }),
            Err(error) => return internal(&error),
        },
        _ => None,
    };
    let page = Security {
        portal_name: portal.name(),
        notice: None,
        csrf: csrf_of(&id),
        email: user.email.clone(),
        enabled: user.sealed_secret.is_some(),
        setup,
        error,
    };
    (jar, portal.render(&page, status)).into_response()
}

fn pending_enrollment(portal: &Portal, user: &User, sealed: &[u8]) -> anyhow::Result<Enrollment> {
    let secret = TotpSecret::from_bytes(portal.sealer.open(sealed)?);
    Ok(Enrollment::from_secret(
        portal.eauth.client_id(),
        portal.name(),
        &user.email,
        secret,
    )?)
}

async fn security(State(portal): State<Shared>, jar: CookieJar) -> Response {
    match current_user(&portal, &jar).await {
        Some(user) => security_page(&portal, jar, &user, None, StatusCode::OK).await,
        None => Redirect::to("/sign-in").into_response(),
    }
}

/// Guide, Step 2.2: a fresh secret, shown as a QR code until the user confirms a code.
async fn enable_start(
    State(portal): State<Shared>,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let Some(user) = current_user(&portal, &jar)
        .await
        .filter(|_| csrf_ok(&jar, &form.csrf))
    else {
        return Redirect::to("/sign-in").into_response();
    };
    let secret = TotpSecret::generate();
    if let Err(error) = portal
        .db
        .set_pending_secret(user.id, Some(&portal.sealer.seal(secret.expose_bytes())))
        .await
    {
        return internal(&error);
    }
    Redirect::to("/security").into_response()
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    code: String,
}

/// Guide, Steps 2.4 and 2.5: the first code proves the app has the secret; then the service
/// is told.
async fn enable_confirm(
    State(portal): State<Shared>,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(user) = current_user(&portal, &jar)
        .await
        .filter(|_| csrf_ok(&jar, &form.csrf))
    else {
        return Redirect::to("/sign-in").into_response();
    };
    let Some(sealed) = user.sealed_pending_secret.clone() else {
        return Redirect::to("/security").into_response();
    };
    let enrollment = match pending_enrollment(&portal, &user, &sealed) {
        Ok(enrollment) => enrollment,
        Err(error) => return internal(&error),
    };
    if enrollment.verify(&form.code, SystemTime::now()).is_err() {
        let error = Some("That code is not correct. Enter the code your app shows now.".to_owned());
        return security_page(&portal, jar, &user, error, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    if let Err(error) = portal
        .eauth
        .enable_2fa(&user.email, enrollment.secret())
        .await
    {
        tracing::error!(%error, "eAuthenticator refused to enable 2FA");
        let error = Some(
            "eAuthenticator could not enable two-factor authentication. Try again.".to_owned(),
        );
        return security_page(&portal, jar, &user, error, StatusCode::BAD_GATEWAY).await;
    }
    if let Err(error) = portal.db.set_secret(user.id, Some(&sealed)).await {
        return internal(&error);
    }
    Redirect::to("/security").into_response()
}

/// Turning 2FA off takes a current code, so that a stolen session alone cannot do it.
async fn disable(
    State(portal): State<Shared>,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(user) = current_user(&portal, &jar)
        .await
        .filter(|_| csrf_ok(&jar, &form.csrf))
    else {
        return Redirect::to("/sign-in").into_response();
    };
    let Some(sealed) = user.sealed_secret.clone() else {
        return Redirect::to("/security").into_response();
    };
    let enrollment = match pending_enrollment(&portal, &user, &sealed) {
        Ok(enrollment) => enrollment,
        Err(error) => return internal(&error),
    };
    if enrollment.verify(&form.code, SystemTime::now()).is_err() {
        let error = Some("That code is not correct.".to_owned());
        return security_page(&portal, jar, &user, error, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    if let Err(error) = portal.eauth.disable_2fa(&user.email).await {
        tracing::error!(%error, "eAuthenticator refused to disable 2FA");
        let error = Some(
            "eAuthenticator could not turn off two-factor authentication. Try again.".to_owned(),
        );
        return security_page(&portal, jar, &user, error, StatusCode::BAD_GATEWAY).await;
    }
    if let Err(error) = portal.db.set_secret(user.id, None).await {
        return internal(&error);
    }
    Redirect::to("/security").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_of_the_sign_in_page_keeps_its_own_message() {
        for code in ["REJECT", "TIMEOUT", "INTERNAL_SERVER_ERROR"] {
            assert_eq!(failure_code(Some(code)), code);
        }
        let messages: Vec<_> = ["REJECT", "TIMEOUT", "INTERNAL_SERVER_ERROR", "UNKNOWN"]
            .map(|code| sign_in_notice(Some(code)))
            .into_iter()
            .collect();
        for (i, message) in messages.iter().enumerate() {
            assert!(message.is_some());
            assert!(!messages[..i].contains(message), "{message:?} is repeated");
        }
        assert_eq!(failure_code(None), "REJECT");
        assert_eq!(failure_code(Some("<script>")), "UNKNOWN");
        assert_eq!(failure_code(Some("reject")), "UNKNOWN");
    }
}
