//! What every console page shares: the frame around it (account, sign-out, application tabs),
//! pagination, times in words, the one error type of the console's handlers and the error
//! pages it becomes.

use std::sync::Arc;

use askama::Template;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use url::form_urlencoded;

use crate::{
    api::LoggedCause,
    html::{html_type, render, secure_headers},
};

/// The top bar: who is signed in, and the sign-out form's token.
pub(super) struct Chrome {
    /// The account's email; `None` on the register and sign-in pages.
    pub(super) account: Option<String>,
    /// The anti-forgery token of the sign-out form.
    pub(super) csrf: String,
}

impl Chrome {
    /// The frame of a page for someone not signed in.
    pub(super) fn anonymous() -> Self {
        Self {
            account: None,
            csrf: String::new(),
        }
    }
}

/// The header and tabs of an application's pages.
pub(super) struct AppNav {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) active: bool,
    /// Which tab is open (the path segment after the id, `""` for the overview).
    pub(super) tab: &'static str,
}

impl AppNav {
    /// The tabs, as (path segment, label).
    pub(super) fn tabs(&self) -> [(&'static str, &'static str); 8] {
        [
            ("", "Overview"),
            ("users", "Users"),
            ("sign-ins", "Sign-ins"),
            ("callbacks", "Callbacks"),
            ("integration", "Integration"),
            ("settings", "Settings"),
            ("keys", "Keys & status"),
            ("audit", "Audit log"),
        ]
    }

    /// Whether `tab` is the open one.
    pub(super) fn is_current(&self, tab: &str) -> bool {
        self.tab == tab
    }

    /// A tab's address.
    pub(super) fn href(&self, tab: &str) -> String {
        if tab.is_empty() {
            format!("/console/apps/{}", self.id)
        } else {
            format!("/console/apps/{}/{tab}", self.id)
        }
    }
}

/// Rows per page of every list.
pub(super) const PAGE_SIZE: u32 = 25;

/// Where a list stands, and the links to its neighbours (keeping the list's filters).
pub(super) struct Pager {
    pub(super) page: u64,
    pub(super) pages: u64,
    pub(super) total: u64,
    pub(super) prev: Option<String>,
    pub(super) next: Option<String>,
}

impl Pager {
    /// The pager of page `page` (from 1) of `total` rows at `path`, whose links carry
    /// `filters` (empty values are left out).
    pub(super) fn new(path: &str, filters: &[(&str, &str)], page: u64, total: u64) -> Self {
        let pages = total.div_ceil(u64::from(PAGE_SIZE)).max(1);
        let link = |to: u64| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (key, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
                query.append_pair(key, value);
            }
            if to > 1 {
                query.append_pair("page", &to.to_string());
            }
            let query = query.finish();
            if query.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{query}")
            }
        };
        Self {
            page,
            pages,
            total,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        }
    }
}

/// The page number of a query (`?page=N`, from 1), and the rows it covers.
pub(super) fn page_request(page: Option<&str>) -> (u64, eauth_store::PageRequest) {
    let page = page
        .and_then(|p| p.parse::<u64>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1);
    (
        page,
        eauth_store::PageRequest {
            offset: (page - 1) * u64::from(PAGE_SIZE),
            limit: PAGE_SIZE,
        },
    )
}

/// A Unix time as `2026-11-29 19:31:05 UTC` (seconds: callbacks are retried seconds apart,
/// and the audit log's entries of one minute are told apart by them). The space before `UTC`
/// does not break, so a narrow table column wraps between the date and the time only.
pub(super) fn time(unix: i64) -> String {
    let (date, seconds) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(date);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}\u{a0}UTC",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// An optional time, or a word for its absence.
pub(super) fn time_or(unix: Option<i64>, otherwise: &str) -> String {
    unix.map_or_else(|| otherwise.to_owned(), time)
}

/// The date of a day counted from 1970-01-01 (H. Hinnant's `civil_from_days`).
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// A rendered page with the console's headers: the strict CSP, no framing, no Referer, and
/// `no-store` (pages carry personal data, and some carry secrets).
pub(super) fn page(status: StatusCode, template: &impl Template) -> Response {
    let mut response = match render(template) {
        Some(html) => (status, html_type(), html).into_response(),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    };
    secure_headers(response.headers_mut(), None);
    response
}

/// A 303 to `location` (after a form post, or to the sign-in page).
pub(super) fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConsoleError {
    /// Not signed in (or the session ended); GETs come back to `next` afterwards.
    #[error("sign-in required")]
    SignInRequired {
        /// The page asked for.
        next: Option<String>,
    },
    /// No such page, or an application (user, callback) that is not this account's.
    #[error("not found")]
    NotFound,
    /// A form without this browser's anti-forgery token.
    #[error("form token missing or wrong")]
    Forbidden,
    /// A form that does not parse.
    #[error("malformed form")]
    BadRequest,
    /// A fault of ours; logged, never shown.
    #[error("internal error")]
    Unexpected(#[source] anyhow::Error),
}

impl From<eauth_store::StoreError> for ConsoleError {
    fn from(error: eauth_store::StoreError) -> Self {
        Self::Unexpected(error.into())
    }
}

impl From<anyhow::Error> for ConsoleError {
    fn from(error: anyhow::Error) -> Self {
        Self::Unexpected(error)
    }
}

/// An error page.
#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    title: &'a str,
    message: &'a str,
}

/// An error page with a title and a message.
pub(super) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        &ErrorPage {
            chrome: Chrome::anonymous(),
            title,
            message,
        },
    )
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            Self::SignInRequired { next } => {
                let location = match next {
                    Some(next) => format!(
                        "/console/sign-in?{}",
                        form_urlencoded::Serializer::new(String::new())
                            .append_pair("next", &next)
                            .finish()
                    ),
                    None => "/console/sign-in".to_owned(),
                };
                see_other(&location)
            }
            Self::NotFound => error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such page, or it belongs to another account.",
            ),
            Self::Forbidden => error_page(
                StatusCode::FORBIDDEN,
                "Please reload the page",
                "This form is out of date or was not sent from the console in this browser. \
                 Go back, reload the page and try again.",
            ),
            Self::BadRequest => error_page(
                StatusCode::BAD_REQUEST,
                "Something is missing",
                "The form that was sent is incomplete. Go back and try again.",
            ),
            Self::Unexpected(cause) => {
                let mut response = error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The console had a problem. Please try again in a moment.",
                );
                response
                    .extensions_mut()
                    .insert(LoggedCause(Arc::new(cause)));
                response
            }
        }
    }
}

/// Unknown console paths.
pub(super) async fn not_found() -> ConsoleError {
    ConsoleError::NotFound
}

/// The messages a page shows after a redirect (`?notice=...`). Fixed texts only: nothing from
/// the query string is echoed into the page.
pub(super) fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "The application was created.",
        "saved" => "Settings saved.",
        "activated" => "The application is active: the API accepts its key again.",
        "deactivated" => {
            "The application is inactive: the API answers INACTIVE to it until you activate it."
        }
        "deleted" => "The application was deleted, with its users, sign-ins and callbacks.",
        "unlocked" => "The user was unlocked and can sign in again.",
        "not-locked" => "That user is not enrolled any more.",
        "resent" => "The callback will be sent again in a moment.",
        "device-removed" => {
            "The device was removed: it can no longer approve sign-ins. The user signs in with a code."
        }
        "not-resent" => "That callback was delivered already, or is being sent right now.",
        _ => return None,
    })
}

/// Adds `Cache-Control: no-store` explicitly (pages that show secrets), on top of
/// [`page`]'s headers, so that a change there cannot make them cacheable.
pub(super) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        let time = |unix| time(unix).replace('\u{a0}', " ");
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(time(1_800_000_000), "2027-01-15 08:00:00 UTC");
        assert_eq!(time(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(time(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(time_or(None, "never"), "never");
    }

    #[test]
    fn pagers_link_their_neighbours_with_the_filters() {
        let pager = Pager::new("/x", &[("q", "a b"), ("outcome", "")], 2, 60);
        assert_eq!((pager.page, pager.pages, pager.total), (2, 3, 60));
        assert_eq!(pager.prev.as_deref(), Some("/x?q=a+b"));
        assert_eq!(pager.next.as_deref(), Some("/x?q=a+b&page=3"));
        let single = Pager::new("/x", &[], 1, 0);
        assert_eq!((single.pages, single.prev, single.next), (1, None, None));
    }

    #[test]
    fn page_numbers_are_read_leniently() {
        assert_eq!(page_request(None).0, 1);
        assert_eq!(page_request(Some("0")).0, 1);
        assert_eq!(page_request(Some("-3")).0, 1);
        assert_eq!(page_request(Some("x")).0, 1);
        let (page, rows) = page_request(Some("3"));
        assert_eq!((page, rows.offset, rows.limit), (3, 50, 25));
    }

    #[test]
    fn only_known_notices_are_shown() {
        assert_eq!(notice(Some("saved")), Some("Settings saved."));
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }
}
