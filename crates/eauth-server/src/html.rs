//! What every HTML page of the service shares: rendering askama templates (auto-escaped),
//! the content type, the security headers, the static files, and the random value a browser
//! keeps in a cookie for anti-forgery tokens.

use askama::Template;
use axum::{
    http::{HeaderMap, HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// The rendered template; `None`, logged, if it fails (a bug: templates are checked at build).
pub(crate) fn render(template: &impl Template) -> Option<String> {
    template
        .render()
        .inspect_err(|error| tracing::error!(%error, "cannot render a page"))
        .ok()
}

/// `Content-Type: text/html; charset=utf-8`.
pub(crate) fn html_type() -> [(HeaderName, HeaderValue); 1] {
    [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    )]
}

/// A page's policy: its own scripts and styles only, no framing, no Referer, nothing cached,
/// forms posted only to us — or, for the sign-in page, through the redirect that follows a
/// post, to the portal's registered origin (`extra_form_action`).
pub(crate) fn secure_headers(headers: &mut HeaderMap, extra_form_action: Option<&str>) {
    let form_action = match extra_form_action {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    // An origin is ASCII (url's serialisation), so the header value is valid.
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// A static file compiled into the binary, cacheable for a few minutes.
pub(crate) async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The browser's random value in the cookie `name` (`__Host-`: this origin, https, `/`;
/// `HttpOnly`, `SameSite=Strict`), set now if it has none; anti-forgery tokens are bound to it.
pub(crate) fn browser_nonce(jar: CookieJar, name: &'static str) -> (CookieJar, String) {
    if let Some(cookie) = jar.get(name).filter(|c| c.value().len() == 64) {
        let nonce = cookie.value().to_owned();
        return (jar, nonce);
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let nonce = hex::encode(bytes);
    let cookie = Cookie::build((name, nonce.clone()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .build();
    (jar.add(cookie), nonce)
}
