//! The sign-in page's HTML: askama templates (auto-escaped), the security headers every page
//! carries, and the JSON form of the same answers for the page's own script.

use askama::Template;
use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde_json::json;

use crate::html::{html_type, render, secure_headers};

/// The fields the page posts back; all of it came from the query string or the server.
pub(super) struct FormFields {
    pub(super) signin_method: &'static str,
    pub(super) session_token: String,
    pub(super) redirect_uri: Option<String>,
    pub(super) state: Option<String>,
    pub(super) csrf: String,
}

/// The code form.
#[derive(Template)]
#[template(path = "signin.html")]
pub(super) struct SigninPage {
    pub(super) app_name: String,
    pub(super) masked_email: String,
    pub(super) seconds_left: i64,
    pub(super) remaining: String,
    pub(super) digits: u8,
    /// The number to type into the app, when the user has a registered device.
    pub(super) push_number: Option<u8>,
    pub(super) form: FormFields,
    pub(super) error: Option<String>,
}

/// What a popup's outcome posts to the portal, and to which origin.
pub(super) struct PopupMessage {
    /// The JSON of `{session_token, state, error?}`.
    pub(super) message: String,
    pub(super) target_origin: String,
    /// Success posts at once; a failure waits for the user's click on "Sign in".
    pub(super) immediately: bool,
}

/// How a sign-in ended, or why it could not start.
#[derive(Template)]
#[template(path = "outcome_body.html")]
pub(super) struct Outcome {
    pub(super) status: StatusCode,
    pub(super) kind: &'static str,
    pub(super) title: String,
    pub(super) message: String,
    pub(super) sign_in_url: Option<String>,
    pub(super) popup: Option<PopupMessage>,
}

#[derive(Template)]
#[template(path = "outcome.html")]
struct OutcomePage<'a> {
    title: &'a str,
    body: &'a str,
}

impl Outcome {
    /// A failure that cannot lead back to the portal (the portal's address is not trusted).
    pub(super) fn dead_end(status: StatusCode, title: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind: "failure",
            title: title.to_owned(),
            message: message.into(),
            sign_in_url: None,
            popup: None,
        }
    }
}

/// What the page does next.
pub(super) enum Next {
    /// Show the code form (again, with a message, after a refused code).
    Retry(Box<SigninPage>),
    /// Send the browser back to the portal.
    Redirect(String),
    /// Show how it ended.
    Outcome(Outcome),
    /// Still pending: ask again later (the status endpoint's answer; JSON only).
    Wait,
}

/// An answer in the form the client asked for: HTML for the browser's own form posts, JSON
/// for the page's script.
pub(super) struct Answer {
    pub(super) next: Next,
    pub(super) json: bool,
    /// The portal's origin, when the page may send the browser there (CSP `form-action`).
    pub(super) portal_origin: Option<String>,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let rendered = match (self.next, self.json) {
            (Next::Retry(page), false) => {
                // The form itself is a 200; shown again with a complaint, a 422.
                let status = if page.error.is_some() {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::OK
                };
                render(page.as_ref()).map(|html| (status, html_type(), html).into_response())
            }
            (Next::Retry(page), true) => Some(
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "next": "retry", "error": page.error })),
                )
                    .into_response(),
            ),
            (Next::Wait, _) => Some(Json(json!({ "next": "wait" })).into_response()),
            (Next::Redirect(location), false) => Some(Redirect::to(&location).into_response()),
            (Next::Redirect(location), true) => {
                Some(Json(json!({ "next": "redirect", "location": location })).into_response())
            }
            (Next::Outcome(outcome), true) => render(&outcome).map(|body| {
                (
                    outcome.status,
                    Json(json!({ "next": "outcome", "html": body })),
                )
                    .into_response()
            }),
            (Next::Outcome(outcome), false) => render(&outcome)
                .and_then(|body| {
                    render(&OutcomePage {
                        title: &outcome.title,
                        body: &body,
                    })
                })
                .map(|html| (outcome.status, html_type(), html).into_response()),
        };
        let mut response = rendered.unwrap_or_else(|| {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        });
        secure_headers(response.headers_mut(), self.portal_origin.as_deref());
        response
    }
}

/// `m:ss`, as the countdown shows it before the script takes over.
pub(super) fn remaining(seconds: i64) -> String {
    let seconds = seconds.max(0);
    format!("{}:{:02}", seconds / 60, seconds % 60)
}
