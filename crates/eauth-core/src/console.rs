//! The Domain Console's accounts: passwords and their hashes, the session cookie's token, the
//! sign-in and registration throttles, and the actions the audit log records.
//!
//! Hashing is CPU-heavy on purpose (argon2id): callers run [`hash_password`] and
//! [`verify_password`] off the async executor.

use std::{fmt, net::IpAddr, sync::LazyLock};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier},
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::throttle::source_group;

/// The shortest password accepted (NIST SP 800-63B §3.1.1.2 asks for 8 at least; integrators
/// hold API keys, so more).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: argon2 takes any length, but a megabyte "password" is a way to burn our CPU.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A password that meets the policy, as typed (not trimmed: spaces are characters too).
pub struct Password(SecretString);

/// Why a password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("use at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_CHARS`] characters.
    #[error("use at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
}

impl Password {
    /// Checks a new password against the policy.
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// The password.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of a password, with a
/// fresh random salt. The parameters are the crate's defaults, which are OWASP's
/// recommendation for argon2id; they are recorded in the string, so raising them later
/// leaves old hashes verifiable. Slow by design: call it on a blocking thread.
pub fn hash_password(password: &Password) -> String {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .expect("BUG: argon2 with default parameters hashes any password of policy length")
        .to_string()
}

/// Whether `candidate` is the password `stored` (a PHC string) was made from. A malformed
/// stored hash matches nothing. Slow by design: call it on a blocking thread.
pub fn verify_password(candidate: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(candidate.as_bytes(), stored)
        .is_ok()
}

/// A hash of a random password no one knows, to verify against when the email is unknown:
/// the answer then takes as long as for a known account with a wrong password, so response
/// time does not tell which emails have accounts.
pub fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let unguessable = Password(SecretString::from(hex::encode(bytes)));
        hash_password(&unguessable)
    });
    &DUMMY
}

/// The random token of a console session, sent to the browser in a cookie. The service
/// stores only its SHA-256: a leaked database does not let anyone sign in.
pub struct SessionToken(SecretString);

impl SessionToken {
    /// A fresh token (256 random bits, hex).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        Self(SecretString::from(hex::encode(bytes)))
    }

    /// The token, for the cookie.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// What the service stores and looks sessions up by.
    pub fn hash(&self) -> [u8; 32] {
        Self::hash_of(self.expose())
    }

    /// The hash of a token presented in a cookie.
    pub fn hash_of(presented: &str) -> [u8; 32] {
        Sha256::digest(presented.as_bytes()).into()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// How long a console session lasts without use.
pub const SESSION_IDLE_SECS: i64 = 12 * 3600;
/// How long a console session lasts at most, however busy.
pub const SESSION_MAX_AGE_SECS: i64 = 7 * 24 * 3600;

/// The sign-in throttle: failed sign-ins are counted over this window...
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;
/// ...per account (the email as typed, whether or not it has an account, so that the throttle
/// does not tell which do)...
pub const MAX_FAILURES_PER_ACCOUNT: u32 = 5;
/// ...and per source address, which also catches one address trying many accounts.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;

/// Registrations from one source address counted over the throttle window, whether the email
/// was free or taken: registering signs a new account in at once, so the answer to a taken
/// email cannot look like the answer to a free one, and registration tells which emails have
/// accounts. This bounds how fast one address can ask (and how many accounts it can make).
pub const MAX_REGISTRATIONS_PER_ADDRESS: u32 = 10;

/// The keys failures are counted under: the account as typed, and the source address's group
/// ([`source_group`]: an IPv6 client's whole /64).
pub fn throttle_keys(typed_email: &str, source: IpAddr) -> [String; 2] {
    let mut account: String = typed_email.trim().to_lowercase();
    // Bounded: the key is stored, and an email cannot be longer (RFC 5321).
    if let Some((cut, _)) = account.char_indices().nth(254) {
        account.truncate(cut);
    }
    [
        format!("account:{account}"),
        format!("address:{}", source_group(source)),
    ]
}

/// The key registrations from `source` are counted under.
pub fn registration_throttle_key(source: IpAddr) -> String {
    format!("registration:{}", source_group(source))
}

/// Whether a sign-in must be refused without looking at the password, given the failures
/// counted in the window for its account and its address.
pub fn is_throttled(account_failures: u32, address_failures: u32) -> bool {
    account_failures >= MAX_FAILURES_PER_ACCOUNT || address_failures >= MAX_FAILURES_PER_ADDRESS
}

/// Whether a registration from an address must be refused, given the registrations counted
/// in the window for it.
pub fn is_registration_throttled(registrations: u32) -> bool {
    registrations >= MAX_REGISTRATIONS_PER_ADDRESS
}

/// What the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// An account was created.
    AccountRegistered,
    /// Someone signed in.
    SignedIn,
    /// An application was created.
    ApplicationCreated,
    /// Its settings were changed.
    SettingsChanged,
    /// Its API key was replaced.
    ApiKeyRotated,
    /// Its callback secret was replaced.
    CallbackSecretRotated,
    /// It was activated.
    Activated,
    /// It was deactivated.
    Deactivated,
    /// It was deleted, with everything that belonged to it.
    ApplicationDeleted,
    /// An enrolled user's lock and failures were reset.
    UserUnlocked,
    /// A callback was queued for another delivery attempt.
    CallbackResent,
    /// A user's registered eAuthenticator app was removed.
    DeviceRemoved,
}

impl AuditAction {
    const ALL: [Self; 12] = [
        Self::AccountRegistered,
        Self::SignedIn,
        Self::ApplicationCreated,
        Self::SettingsChanged,
        Self::ApiKeyRotated,
        Self::CallbackSecretRotated,
        Self::Activated,
        Self::Deactivated,
        Self::ApplicationDeleted,
        Self::UserUnlocked,
        Self::CallbackResent,
        Self::DeviceRemoved,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountRegistered => "account.registered",
            Self::SignedIn => "account.signed_in",
            Self::ApplicationCreated => "application.created",
            Self::SettingsChanged => "application.settings_changed",
            Self::ApiKeyRotated => "application.api_key_rotated",
            Self::CallbackSecretRotated => "application.callback_secret_rotated",
            Self::Activated => "application.activated",
            Self::Deactivated => "application.deactivated",
            Self::ApplicationDeleted => "application.deleted",
            Self::UserUnlocked => "user.unlocked",
            Self::CallbackResent => "callback.resent",
            Self::DeviceRemoved => "device.removed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == raw)
    }

    /// In words, for the log's readers.
    pub fn describe(self) -> &'static str {
        match self {
            Self::AccountRegistered => "Registered the account",
            Self::SignedIn => "Signed in",
            Self::ApplicationCreated => "Created the application",
            Self::SettingsChanged => "Changed the settings",
            Self::ApiKeyRotated => "Rotated the API key",
            Self::CallbackSecretRotated => "Rotated the callback secret",
            Self::Activated => "Activated the application",
            Self::Deactivated => "Deactivated the application",
            Self::ApplicationDeleted => "Deleted the application",
            Self::UserUnlocked => "Unlocked a user",
            Self::CallbackResent => "Sent a callback again",
            Self::DeviceRemoved => "Removed a user's device",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_need_twelve_characters_and_not_too_many() {
        assert_eq!(
            Password::parse("eleven char").map(|_| ()),
            Err(PasswordError::TooShort)
        );
        // Characters, not bytes: twelve accented letters are enough.
        assert!(Password::parse("éééééééééééé").is_ok());
        assert!(Password::parse("twelve chars").is_ok());
        assert_eq!(
            Password::parse(&"x".repeat(257)).map(|_| ()),
            Err(PasswordError::TooLong)
        );
        assert_eq!(
            format!("{:?}", Password::parse("twelve chars").expect("ok")),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let password = Password::parse("correct horse battery").expect("ok");
        let hash = hash_password(&password);
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batter", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        // Salted: the same password hashes differently each time.
        assert_ne!(hash, hash_password(&password));
        assert!(!verify_password("correct horse battery", dummy_hash()));
    }

    #[test]
    fn session_tokens_are_stored_as_their_hash() {
        let token = SessionToken::generate();
        assert_eq!(token.expose().len(), 64);
        assert_eq!(token.hash(), SessionToken::hash_of(token.expose()));
        assert_ne!(token.hash(), SessionToken::generate().hash());
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn registrations_are_counted_per_source_group() {
        // How addresses are grouped is `throttle::source_group`'s, tested there.
        let key = |ip: &str| registration_throttle_key(ip.parse().expect("ip"));
        assert_eq!(key("203.0.113.7"), "registration:203.0.113.7");
        assert_eq!(
            key("2001:db8:1:2:aaaa::1"),
            "registration:2001:db8:1:2::/64"
        );
        // Not the sign-in throttle's address key: registering does not lock anyone's sign-in.
        let [_, address] = throttle_keys("x", "203.0.113.7".parse().expect("ip"));
        assert_ne!(key("203.0.113.7"), address);
        assert!(!is_registration_throttled(
            MAX_REGISTRATIONS_PER_ADDRESS - 1
        ));
        assert!(is_registration_throttled(MAX_REGISTRATIONS_PER_ADDRESS));
    }

    #[test]
    fn throttle_keys_normalise_the_account_and_group_ipv6_by_64() {
        let [account, address] =
            throttle_keys("  Jane@Example.com ", "203.0.113.7".parse().expect("ip"));
        assert_eq!(account, "account:jane@example.com");
        assert_eq!(address, "address:203.0.113.7");
        let [_, a] = throttle_keys("x", "2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let [_, b] = throttle_keys("x", "2001:db8:1:2:bbbb::9".parse().expect("ip"));
        assert_eq!(a, "address:2001:db8:1:2::/64");
        assert_eq!(a, b);
        let [_, mapped] = throttle_keys("x", "::ffff:203.0.113.7".parse().expect("ip"));
        assert_eq!(mapped, "address:203.0.113.7");
        let [long, _] = throttle_keys(&"a".repeat(1000), "203.0.113.7".parse().expect("ip"));
        assert_eq!(long.len(), "account:".len() + 254);
    }

    #[test]
    fn the_throttle_closes_at_either_limit() {
        assert!(!is_throttled(4, 19));
        assert!(is_throttled(5, 0));
        assert!(is_throttled(0, 20));
    }

    #[test]
    fn audit_actions_round_trip() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AuditAction::parse("nope"), None);
    }
}
