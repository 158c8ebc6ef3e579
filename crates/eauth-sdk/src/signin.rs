//! Sign-in (guide, Steps 3 to 5): the session token, the URL that sends the user to the
//! service's sign-in page, and the session's outcome as `session-result` reports it.

use std::fmt;

use eauth_core::SessionStatus;
use subtle::ConstantTimeEq;
use url::Url;

/// A session token from [`Client::create_session`](crate::Client::create_session).
///
/// Store it with the user's half-finished sign-in (the guide: at least 2 minutes), and accept
/// the one callback that carries it. Its `Debug` does not print it, so it stays out of logs;
/// equality is checked in constant time.
///
/// ```
/// use eauth_sdk::SessionToken;
///
/// let stored = SessionToken::from("eyJhbGciOiJIUzI1NiJ9.e30.sig".to_owned());
/// let received = SessionToken::from("eyJhbGciOiJIUzI1NiJ9.e30.sig".to_owned());
/// assert_eq!(stored, received);
/// assert_eq!(format!("{stored:?}"), "SessionToken(<redacted>)");
/// ```
#[derive(Clone, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// The token, to store or to compare.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for SessionToken {
    /// A token read back from where the portal stored it.
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl PartialEq for SessionToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// How the user is sent to the sign-in page (guide, Step 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// Navigate the browser to the page; the service redirects back to `redirect_uri` (one of
    /// the application's registered redirect URIs) with `session_token` on success or `error`
    /// on failure.
    Redirect {
        /// Where the browser comes back to.
        redirect_uri: String,
    },
    /// Open the page in a popup; it posts the outcome to the opener with `postMessage`.
    Popup {
        /// The portal's origin, the only `targetOrigin` the page will post to (recommended).
        redirect_uri: Option<String>,
        /// A fresh random value the portal's page keeps (e.g. in `sessionStorage`) and
        /// compares with the `state` of the message it receives, refusing a mismatch: without
        /// this, another site's popup could feed the page a result (CSRF).
        state: String,
    },
}

/// Builds `{start}?signin_method=...&session_token=...&redirect_uri=...&state=...`, each value
/// form-encoded.
pub(crate) fn authentication_url(start: &Url, token: &SessionToken, sign_in: &SignIn) -> Url {
    let mut url = start.clone();
    {
        let mut query = url.query_pairs_mut();
        match sign_in {
            SignIn::Redirect { redirect_uri } => {
                query
                    .append_pair("signin_method", "redirect")
                    .append_pair("session_token", token.as_str())
                    .append_pair("redirect_uri", redirect_uri);
            }
            SignIn::Popup {
                redirect_uri,
                state,
            } => {
                query
                    .append_pair("signin_method", "popup")
                    .append_pair("session_token", token.as_str());
                if let Some(redirect_uri) = redirect_uri {
                    query.append_pair("redirect_uri", redirect_uri);
                }
                query.append_pair("state", state);
            }
        }
    }
    url
}

/// A session's outcome, from [`Client::session_result`](crate::Client::session_result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionResult {
    /// Where the session stands.
    pub status: SessionStatus,
    /// The user the session is for, as the service normalised it (lower case).
    pub email: String,
    /// When the session finished, in Unix seconds; `None` while it is pending.
    pub finished_at: Option<i64>,
}

impl SessionResult {
    /// Whether the user passed the second factor: the only status that lets them in.
    pub fn is_approved(&self) -> bool {
        self.status == SessionStatus::Approved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Url {
        Url::parse("https://auth.example.com/start-authentication").expect("url")
    }

    fn token() -> SessionToken {
        SessionToken::from("aaa.bbb.ccc".to_owned())
    }

    fn pairs(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn the_redirect_url_has_the_guides_parameters_in_order() {
        let url = authentication_url(
            &start(),
            &token(),
            &SignIn::Redirect {
                redirect_uri: "https://portal.example.com/callback".into(),
            },
        );
        assert_eq!(
            url.as_str(),
            "https://auth.example.com/start-authentication?signin_method=redirect\
             &session_token=aaa.bbb.ccc&redirect_uri=https%3A%2F%2Fportal.example.com%2Fcallback"
        );
    }

    #[test]
    fn popup_values_with_reserved_characters_survive_the_round_trip() {
        let state = "a b&c=d+e/f?g#h%i";
        let url = authentication_url(
            &start(),
            &token(),
            &SignIn::Popup {
                redirect_uri: Some("https://portal.example.com/app?x=1&y=2".into()),
                state: state.into(),
            },
        );
        assert_eq!(url.fragment(), None);
        assert_eq!(
            pairs(&url),
            [
                ("signin_method".into(), "popup".into()),
                ("session_token".into(), "aaa.bbb.ccc".into()),
                (
                    "redirect_uri".into(),
                    "https://portal.example.com/app?x=1&y=2".into()
                ),
                ("state".into(), state.into()),
            ]
        );
        let without_redirect = authentication_url(
            &start(),
            &token(),
            &SignIn::Popup {
                redirect_uri: None,
                state: "s".into(),
            },
        );
        assert_eq!(
            without_redirect.query(),
            Some("signin_method=popup&session_token=aaa.bbb.ccc&state=s")
        );
    }

    #[test]
    fn tokens_compare_by_value_and_never_print() {
        assert_eq!(token(), token());
        assert_ne!(token(), SessionToken::from("aaa.bbb.ccd".to_owned()));
        assert_ne!(token(), SessionToken::from("aaa.bbb.cc".to_owned()));
        assert!(!format!("{:?}", token()).contains("aaa"));
    }
}
