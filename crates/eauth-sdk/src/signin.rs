//! Sign-in (guide, Steps 3 to 5): the session token.

use std::fmt;

use subtle::ConstantTimeEq;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> SessionToken {
        SessionToken::from("aaa.bbb.ccc".to_owned())
    }

    #[test]
    fn tokens_compare_by_value_and_never_print() {
        assert_eq!(token(), token());
        assert_ne!(token(), SessionToken::from("aaa.bbb.ccd".to_owned()));
        assert_ne!(token(), SessionToken::from("aaa.bbb.cc".to_owned()));
        assert!(!format!("{:?}", token()).contains("aaa"));
    }
}
