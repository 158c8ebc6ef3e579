//! Who is asking: the console session behind the request's cookie, and the anti-forgery
//! token every form that changes something must carry.
//!
//! The cookie holds a random token (`__Host-`: this origin only, https, path `/`;
//! `HttpOnly`, `SameSite=Lax`); the database holds only its SHA-256, with the times that end
//! it (12 hours unused, 7 days at most). Sign-out deletes the row, so a copied cookie dies
//! with it. Form tokens are an HMAC of the session's hash — or, before sign-in, of a random
//! value in a cookie of their own — so a page of another site cannot make a form this
//! browser would send with a valid token.

use axum::{
    Form,
    extract::{FromRequest, FromRequestParts, Request},
    http::{Method, request::Parts},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use eauth_core::{
    Email,
    console::{SESSION_IDLE_SECS, SESSION_MAX_AGE_SECS, SessionToken},
};
use eauth_store::SessionCutoffs;
use serde::{Deserialize, de::DeserializeOwned};

use super::views::{Chrome, ConsoleError};
use crate::{html::browser_nonce, state::AppState};

/// The console session's cookie.
const SESSION_COOKIE: &str = "__Host-eauth-console";
/// The anti-forgery cookie of the register and sign-in forms (no session yet).
const PRE_SESSION_COOKIE: &str = "__Host-eauth-console-pre";
/// `next` longer than this is not a page of ours anyone would bookmark.
const MAX_NEXT_LEN: usize = 512;

/// The instants before which sessions are over.
pub(super) fn cutoffs(now: i64) -> SessionCutoffs {
    SessionCutoffs {
        last_seen_after: now - SESSION_IDLE_SECS,
        created_after: now - SESSION_MAX_AGE_SECS,
    }
}

/// A signed-in account.
pub(super) struct Account {
    /// Its email.
    pub(super) email: Email,
    /// The hash of its session's token: what its forms' tokens are bound to.
    session: [u8; 32],
}

fn session_binding(session: &[u8; 32]) -> Vec<u8> {
    [b"session:".as_slice(), session].concat()
}

impl Account {
    /// The anti-forgery token of this session's forms.
    pub(super) fn csrf(&self, state: &AppState) -> String {
        state
            .vault
            .console_form_token(&session_binding(&self.session))
    }

    /// The frame of this account's pages.
    pub(super) fn chrome(&self, state: &AppState) -> Chrome {
        Chrome {
            account: Some(self.email.to_string()),
            csrf: self.csrf(state),
        }
    }

    /// Ends this session.
    pub(super) async fn sign_out(
        &self,
        state: &AppState,
        jar: CookieJar,
    ) -> Result<CookieJar, ConsoleError> {
        state.store.delete_console_session(&self.session).await?;
        Ok(jar.remove(session_cookie(String::new())))
    }
}

impl FromRequestParts<AppState> for Account {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let session = jar
            .get(SESSION_COOKIE)
            .map(|cookie| SessionToken::hash_of(cookie.value()));
        let now = state.clock.now();
        let email = match session {
            Some(hash) => {
                state
                    .store
                    .touch_console_session(&hash, now, cutoffs(now))
                    .await?
            }
            None => None,
        };
        match (email, session) {
            (Some(email), Some(session)) => Ok(Self { email, session }),
            _ => {
                // After signing in, a page asked for comes back; a form post does not resume.
                let next = (parts.method == Method::GET)
                    .then(|| parts.uri.path_and_query().map(|pq| pq.as_str().to_owned()))
                    .flatten()
                    .and_then(|next| safe_next(Some(&next)));
                Err(ConsoleError::SignInRequired { next })
            }
        }
    }
}

/// Starts a session for `email` and returns the cookie jar that carries it.
pub(super) async fn start_session(
    state: &AppState,
    jar: CookieJar,
    email: &Email,
) -> Result<CookieJar, ConsoleError> {
    let now = state.clock.now();
    let token = SessionToken::generate();
    state
        .store
        .insert_console_session(&token.hash(), email, now)
        .await?;
    // Sessions are looked up by hash, so expired ones cost nothing but space: forget them now
    // and then, here, rather than in a background job.
    state.store.prune_console_sessions(cutoffs(now)).await?;
    Ok(jar.add(session_cookie(token.expose().to_owned())))
}

/// The session cookie with `value`. Its removal at sign-out is this cookie too: a browser
/// takes a `__Host-` cookie, its removal included, only with `Secure` and `Path=/`, and
/// would otherwise keep the old one.
fn session_cookie(value: String) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        // No Max-Age: the browser forgets it when it closes; the server ends it anyway.
        .build()
}

/// The form token of the register and sign-in forms, and the jar with the cookie it is bound
/// to (set now if the browser has none).
pub(super) fn pre_session_token(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    let (jar, nonce) = browser_nonce(jar, PRE_SESSION_COOKIE);
    let token = state.vault.console_form_token(&pre_binding(&nonce));
    (jar, token)
}

fn pre_binding(nonce: &str) -> Vec<u8> {
    [b"pre-session:".as_slice(), nonce.as_bytes()].concat()
}

/// A register or sign-in form, taken only with this browser's anti-forgery token (a page of
/// another site could otherwise sign the browser in to an account of the attacker's).
pub(super) struct PreSession<T> {
    /// The browser's cookies.
    pub(super) jar: CookieJar,
    pub(super) form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for PreSession<T> {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(request.headers());
        let WithToken { csrf, form } = read_form(request, state).await?;
        let genuine = jar.get(PRE_SESSION_COOKIE).is_some_and(|cookie| {
            state
                .vault
                .check_console_form_token(&pre_binding(cookie.value()), &csrf)
        });
        if !genuine {
            tracing::warn!("console sign-in or registration refused: wrong anti-forgery token");
            return Err(ConsoleError::Forbidden);
        }
        Ok(Self { jar, form })
    }
}

/// A form posted by a signed-in account, with its anti-forgery token checked before the
/// handler runs: a handler that takes `Posted<T>` cannot forget the check.
pub(super) struct Posted<T> {
    pub(super) account: Account,
    pub(super) form: T,
}

#[derive(Deserialize)]
struct WithToken<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

async fn read_form<T: DeserializeOwned + Send>(
    request: Request,
    state: &AppState,
) -> Result<WithToken<T>, ConsoleError> {
    let Form(form) = Form::<WithToken<T>>::from_request(request, state)
        .await
        .map_err(|_| ConsoleError::BadRequest)?;
    Ok(form)
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let account = Account::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let WithToken { csrf, form } = read_form(request, state).await?;
        let binding = session_binding(&account.session);
        if !state.vault.check_console_form_token(&binding, &csrf) {
            tracing::warn!("console form refused: wrong anti-forgery token");
            return Err(ConsoleError::Forbidden);
        }
        Ok(Self { account, form })
    }
}

/// Where to go after signing in: `next` if it is a console page of this site (a path, never
/// an address elsewhere: no open redirect), else `None`.
pub(super) fn safe_next(next: Option<&str>) -> Option<String> {
    let next = next?;
    let console_page =
        next == "/console" || next.starts_with("/console/") || next.starts_with("/console?");
    // `//host` and `/\host` are addresses elsewhere to browsers; control characters and
    // spaces have no place in a path we made.
    let plain = next.len() <= MAX_NEXT_LEN
        && next.chars().all(|c| c.is_ascii_graphic())
        && !next.contains("//")
        && !next.contains('\\')
        && !next.contains("/..");
    (console_page && plain).then(|| next.to_owned())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_only_ever_a_console_path() {
        for good in [
            "/console",
            "/console/apps/84c2ad6c-62eb-4217-8f46-a66852e6fe92/users?q=a&page=2",
            "/console?notice=saved",
        ] {
            assert_eq!(safe_next(Some(good)).as_deref(), Some(good), "{good}");
        }
        for bad in [
            "https://evil.example/console",
            "//evil.example/console",
            "/\\evil.example",
            "/console//evil.example",
            "/console\\@evil.example",
            "/consolex",
            "/console/../start-authentication",
            "javascript:alert(1)",
            "/console/a b",
            "/console/\t",
            "console",
            "",
            "/",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_next(None), None);
        assert_eq!(
            safe_next(Some(&format!("/console/{}", "a".repeat(600)))),
            None
        );
    }
}
