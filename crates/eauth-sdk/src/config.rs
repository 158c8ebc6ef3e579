//! What a [`Client`](crate::Client) needs: where the service is, the application's
//! credentials, and the few knobs an integrator may turn.

use std::{fmt, time::Duration};

use secrecy::SecretString;

/// The default time a call may take, per attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default tolerance between a callback's timestamp and the portal's clock, either way.
pub const DEFAULT_CALLBACK_TOLERANCE: Duration = Duration::from_secs(300);
/// The default number of attempts of a call that may be retried (see
/// [`Client`](crate::Client) for which are).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The settings of a [`Client`](crate::Client).
///
/// The four credentials come from registering the application (`eauthd admin
/// create-application` prints them); the rest have defaults:
///
/// ```
/// use std::time::Duration;
/// use eauth_sdk::Config;
///
/// let config = Config {
///     base_url: "https://127.0.0.1:8443".into(),
///     client_id: "84c2ad6c-62eb-4217-8f46-a66852e6fe92".into(),
///     api_key: "eak_example".into(),
///     callback_secret: "ecs_example".into(),
///     timeout: Duration::from_secs(5),
///     ..Config::default()
/// };
/// // Secrets never reach logs through `Debug`.
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("eak_example") && !shown.contains("ecs_example"));
/// ```
#[derive(Clone)]
pub struct Config {
    /// The service's base URL, e.g. `https://127.0.0.1:8443` (a path prefix is kept:
    /// `https://example.com/eauth`). `https`, or `http` to a loopback address only.
    pub base_url: String,
    /// The application's `client_id` (a UUID).
    pub client_id: String,
    /// The application's API key, sent as `X-API-Key`. Surrounding white space is ignored.
    pub api_key: SecretString,
    /// The secret that signs the callbacks this application receives, exactly as shown at
    /// registration. Surrounding white space is ignored.
    pub callback_secret: SecretString,
    /// The callback URL as registered, needed only when it has a query string of its own:
    /// the service keeps those parameters in front of its four, and callbacks are then
    /// expected to carry them with their registered values (see
    /// [`CallbackVerifier::with_callback_url`](crate::CallbackVerifier::with_callback_url)).
    pub callback_url: Option<String>,
    /// Extra root certificates to trust, in PEM, besides the system's: the dev server's
    /// self-signed `<data_dir>/tls/cert.pem`, or a private CA.
    pub root_certificates_pem: Vec<Vec<u8>>,
    /// How long one attempt of a call may take, connection included. Default 10 s.
    pub timeout: Duration,
    /// How far a callback's timestamp may be from the portal's clock, either way. Default
    /// 300 s.
    pub callback_tolerance: Duration,
    /// Attempts of a call that may be retried, the first included (at least 1). Default 3.
    pub max_attempts: u32,
}

impl Default for Config {
    /// Empty credentials (which [`Client::new`](crate::Client::new) refuses) and the
    /// default knobs: fill in the credentials with `..Config::default()`.
    fn default() -> Self {
        Self {
            base_url: String::new(),
            client_id: String::new(),
            api_key: SecretString::from(""),
            callback_secret: SecretString::from(""),
            callback_url: None,
            root_certificates_pem: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            callback_tolerance: DEFAULT_CALLBACK_TOLERANCE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("api_key", &"<redacted>")
            .field("callback_secret", &"<redacted>")
            .field("callback_url", &self.callback_url)
            .field("root_certificates_pem", &self.root_certificates_pem.len())
            .field("timeout", &self.timeout)
            .field("callback_tolerance", &self.callback_tolerance)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// Why a [`Config`] cannot make a [`Client`](crate::Client).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `base_url` is not an absolute `https` URL (or `http` to loopback), or carries
    /// credentials, a query or a fragment.
    #[error("base_url: {0}")]
    BaseUrl(String),
    /// `client_id` is not a UUID.
    #[error("client_id: {0}")]
    ClientId(#[from] eauth_core::application::ClientIdError),
    /// `api_key` is empty or cannot be sent as a header.
    #[error("api_key is empty or contains characters a header cannot carry")]
    ApiKey,
    /// `callback_secret` is empty.
    #[error("callback_secret is empty")]
    CallbackSecret,
    /// `callback_url` is not an absolute URL, or its query has a parameter twice or one of
    /// the four the service adds.
    #[error("callback_url: {0}")]
    CallbackUrl(String),
    /// `timeout` is zero.
    #[error("timeout must be longer than zero")]
    Timeout,
    /// A PEM in `root_certificates_pem` holds no certificate, or a certificate rustls refuses.
    #[error("root_certificates_pem: {0}")]
    Certificate(String),
    /// The TLS or HTTP client could not be built (for instance: no root certificates at all).
    #[error("cannot set up HTTPS: {0}")]
    Tls(String),
}
