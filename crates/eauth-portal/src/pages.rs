//! The portal's pages (askama, auto-escaped) and the headers they carry.

use askama::Template;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

#[derive(Template)]
#[template(path = "home.html")]
pub(crate) struct Home<'a> {
    pub(crate) portal_name: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) two_factor: bool,
    pub(crate) csrf: String,
}

#[derive(Template)]
#[template(path = "sign_up.html")]
pub(crate) struct SignUp<'a> {
    pub(crate) portal_name: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) csrf: String,
    pub(crate) email: String,
    pub(crate) error: Option<String>,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub(crate) struct SignIn<'a> {
    pub(crate) portal_name: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) csrf: String,
    pub(crate) email: String,
    pub(crate) error: Option<String>,
}

#[derive(Template)]
#[template(path = "popup.html")]
pub(crate) struct Popup<'a> {
    pub(crate) portal_name: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) csrf: String,
    pub(crate) eauth_script: String,
    pub(crate) session_token: String,
    pub(crate) redirect_uri: String,
}

pub(crate) struct Setup {
    pub(crate) qr_data_uri: String,
    pub(crate) secret: String,
}

#[derive(Template)]
#[template(path = "security.html")]
pub(crate) struct Security<'a> {
    pub(crate) portal_name: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) csrf: String,
    pub(crate) email: String,
    pub(crate) enabled: bool,
    pub(crate) setup: Option<Setup>,
    pub(crate) error: Option<String>,
}

/// A rendered page with the portal's policy: its own scripts and eAuthenticator's helper,
/// no framing, no caching of pages that may show secrets.
pub(crate) fn page(template: &impl Template, status: StatusCode, eauth_origin: &str) -> Response {
    let Ok(html) = template.render() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    let mut response = (status, Html(html)).into_response();
    let csp = format!(
        "default-src 'none'; script-src 'self' {eauth_origin}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self' {eauth_origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
