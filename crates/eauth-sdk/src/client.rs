//! The client of the service's API (`/authen-api/api/v1`): HTTPS on rustls with the ring
//! provider, the application's key in `X-API-Key`, the guide's envelope decoded into
//! [`Error`], and retries where repeating a request cannot do harm.

use std::{fmt, sync::Arc, time::Duration};

use eauth_core::{ClientId, SessionStatus, TotpSecret, application::parse_secure_url};
use reqwest::{
    Response, StatusCode,
    header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER},
};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use url::Url;

use crate::{
    CallbackError, CallbackVerifier, Config, ConfigError, Error, SessionResult, SessionToken,
    SignIn, VerifiedCallback,
    error::{decode_answer, malformed},
    signin,
};

/// Answers longer than this are refused: the service's are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The first pause between attempts; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between attempts, whatever `Retry-After` asks: a user is waiting.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Whether an endpoint may be called again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Repeating the request has the effect of sending it once (`mfa/toggle` sets a state,
    /// `session-result` reads one): retry on any transport failure, timeouts included, and on
    /// `OVERLOADED`.
    Idempotent,
    /// Each request creates something (`session-token` creates a session): retry only when
    /// the service certainly did not process it — the connection was never made, or it
    /// answered `OVERLOADED` — never after a timeout, which may have come after the work.
    IfUnprocessed,
}

impl Retry {
    fn allows(self, error: &Error) -> bool {
        match error {
            Error::Overloaded { .. } => true,
            Error::Transport(transport) => self == Self::Idempotent || transport.is_connect(),
            Error::Timeout => self == Self::Idempotent,
            _ => false,
        }
    }
}

/// The endpoints, resolved once against the base URL.
#[derive(Debug, Clone)]
struct Endpoints {
    toggle: Url,
    session_token: Url,
    session_result: Url,
    start_authentication: Url,
}

impl Endpoints {
    fn new(base: &Url) -> Result<Self, ConfigError> {
        let at = |segments: &[&str]| -> Result<Url, ConfigError> {
            let mut url = base.clone();
            url.path_segments_mut()
                .map_err(|()| ConfigError::BaseUrl("cannot be a base URL".into()))?
                .pop_if_empty()
                .extend(segments);
            Ok(url)
        };
        let api = ["authen-api", "api", "v1"];
        Ok(Self {
            toggle: at(&[&api[..], &["mfa", "toggle"]].concat())?,
            session_token: at(&[&api[..], &["session-token"]].concat())?,
            session_result: at(&[&api[..], &["session-result"]].concat())?,
            start_authentication: at(&["start-authentication"])?,
        })
    }
}

/// The application's client of eAuthenticator: cheap to clone (clones share connections),
/// safe to share between tasks.
///
/// Calls that may be repeated safely are retried a few times (see [`Config::max_attempts`])
/// with a short back-off: `mfa/toggle` and `session-result` after any transport failure,
/// timeout or `OVERLOADED`; `session-token`, which creates a session, only when it certainly
/// was not processed (connection not made, or `OVERLOADED`), never after a timeout.
///
/// ```
/// use eauth_sdk::{Client, Config};
///
/// let client = Client::new(Config {
///     base_url: "https://127.0.0.1:8443".into(),
///     client_id: "84c2ad6c-62eb-4217-8f46-a66852e6fe92".into(),
///     api_key: "eak_example".into(),
///     callback_secret: "ecs_example".into(),
///     ..Config::default()
/// })?;
/// assert_eq!(client.client_id().to_string(), "84c2ad6c-62eb-4217-8f46-a66852e6fe92");
/// let shown = format!("{client:?}");
/// assert!(!shown.contains("eak_example") && !shown.contains("ecs_example"));
/// # Ok::<(), eauth_sdk::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    client_id: ClientId,
    base_url: Url,
    endpoints: Arc<Endpoints>,
    callbacks: CallbackVerifier,
    max_attempts: u32,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url.as_str())
            .field("client_id", &self.client_id)
            .field("api_key", &"<redacted>")
            .field("callbacks", &self.callbacks)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl Client {
    /// Checks the configuration and sets up HTTPS. Nothing is sent yet.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let base_url = parse_secure_url(&config.base_url)
            .map_err(|error| ConfigError::BaseUrl(error.to_string()))?;
        if base_url.query().is_some() {
            return Err(ConfigError::BaseUrl(
                "the service's URL cannot have a query string".into(),
            ));
        }
        let client_id = ClientId::parse(&config.client_id)?;
        let api_key = config.api_key.expose_secret().trim();
        let mut api_key = HeaderValue::from_str(api_key)
            .ok()
            .filter(|_| !api_key.is_empty())
            .ok_or(ConfigError::ApiKey)?;
        api_key.set_sensitive(true);
        let mut callbacks = CallbackVerifier::new(config.callback_secret.expose_secret())?
            .with_tolerance(config.callback_tolerance);
        if let Some(registered) = &config.callback_url {
            callbacks = callbacks.with_callback_url(registered)?;
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::Timeout);
        }

        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", api_key);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(&config.root_certificates_pem)?)
            .default_headers(headers)
            .timeout(config.timeout)
            // The API never redirects; following one would send the key somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("eauth-sdk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ConfigError::Tls(error.to_string()))?;
        Ok(Self {
            http,
            client_id,
            endpoints: Arc::new(Endpoints::new(&base_url)?),
            base_url,
            callbacks,
            max_attempts: config.max_attempts.max(1),
        })
    }

    /// The application's `client_id`.
    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    /// Tells the service that `email` enabled 2FA with `secret` (guide, Step 2.5: `mfa/toggle`
    /// with `ENABLE`, TOTP, SHA1, 6 digits, 30 s). Call it only after
    /// [`Enrollment::verify`](crate::Enrollment::verify) accepted the user's code. Enabling an
    /// enrolled user again replaces the secret.
    ///
    /// ```no_run
    /// # async fn example(client: eauth_sdk::Client, enrollment: eauth_sdk::Enrollment) -> Result<(), eauth_sdk::Error> {
    /// client.enable_2fa(enrollment.email(), enrollment.secret()).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "eauth_sdk::enable_2fa", skip_all)]
    pub async fn enable_2fa(&self, email: &str, secret: &TotpSecret) -> Result<(), Error> {
        self.toggle(email, Some(secret)).await
    }

    /// Tells the service that `email` disabled 2FA (`mfa/toggle` with `DISABLE`): it forgets
    /// the secret, and sessions can no longer be created for the user. Disabling a user who
    /// is not enrolled succeeds.
    ///
    /// ```no_run
    /// # async fn example(client: eauth_sdk::Client) -> Result<(), eauth_sdk::Error> {
    /// client.disable_2fa("jane@example.com").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "eauth_sdk::disable_2fa", skip_all)]
    pub async fn disable_2fa(&self, email: &str) -> Result<(), Error> {
        self.toggle(email, None).await
    }

    /// `mfa/toggle` with the guide's body: ENABLE with the secret, or DISABLE without one.
    /// Both carry the guide's TOTP fields (its table marks them required either way).
    async fn toggle(&self, email: &str, secret: Option<&TotpSecret>) -> Result<(), Error> {
        let mut body = json!({
            "client_id": self.client_id.to_string(),
            "email": email,
            "action": if secret.is_some() { "ENABLE" } else { "DISABLE" },
            "type": "TOTP",
            "algorithm": "SHA1",
            "digits": 6,
            "period": 30,
        });
        if let Some(secret) = secret {
            body["secret"] = Value::String(secret.to_base32());
        }
        self.call(&self.endpoints.toggle, &body, Retry::Idempotent)
            .await
            .map(drop)
    }

    /// Creates a sign-in session for `email` after the password step (guide, Step 3:
    /// `session-token`), and returns its token. Fails with [`Error::MfaNotEnabled`] for a
    /// user who has not enabled 2FA.
    ///
    /// ```no_run
    /// # async fn example(client: eauth_sdk::Client) -> Result<(), eauth_sdk::Error> {
    /// let token = client.create_session("jane@example.com").await?;
    /// // Store `token.as_str()` with the half-finished sign-in, then send the user on.
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "eauth_sdk::create_session", skip_all)]
    pub async fn create_session(&self, email: &str) -> Result<SessionToken, Error> {
        let body = json!({ "email": email, "client_id": self.client_id.to_string() });
        let (status, data) = self
            .call(&self.endpoints.session_token, &body, Retry::IfUnprocessed)
            .await?;
        match data.get("session_token").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => Ok(SessionToken::from(token.to_owned())),
            _ => Err(malformed(status, "no session_token in data".into())),
        }
    }

    /// The URL of the sign-in page for a session (guide, Step 4):
    /// `{base_url}/start-authentication?signin_method=...&session_token=...&redirect_uri=...&state=...`,
    /// every value encoded.
    ///
    /// ```
    /// use eauth_sdk::{Client, Config, SessionToken, SignIn};
    ///
    /// let client = Client::new(Config {
    ///     base_url: "https://127.0.0.1:8443".into(),
    ///     client_id: "84c2ad6c-62eb-4217-8f46-a66852e6fe92".into(),
    ///     api_key: "eak_example".into(),
    ///     callback_secret: "ecs_example".into(),
    ///     ..Config::default()
    /// })?;
    /// let token = SessionToken::from("eyJhbGciOiJIUzI1NiJ9.e30.sig".to_owned());
    ///
    /// let redirect = client.authentication_url(&token, &SignIn::Redirect {
    ///     redirect_uri: "https://portal.example.com/callback".into(),
    /// });
    /// assert_eq!(
    ///     redirect.as_str(),
    ///     "https://127.0.0.1:8443/start-authentication?signin_method=redirect\
    ///      &session_token=eyJhbGciOiJIUzI1NiJ9.e30.sig\
    ///      &redirect_uri=https%3A%2F%2Fportal.example.com%2Fcallback"
    /// );
    ///
    /// let popup = client.authentication_url(&token, &SignIn::Popup {
    ///     redirect_uri: Some("https://portal.example.com".into()),
    ///     state: "k7Qx2&z".into(),
    /// });
    /// assert!(popup.as_str().ends_with("&state=k7Qx2%26z"));
    /// # Ok::<(), eauth_sdk::ConfigError>(())
    /// ```
    pub fn authentication_url(&self, token: &SessionToken, sign_in: &SignIn) -> Url {
        signin::authentication_url(&self.endpoints.start_authentication, token, sign_in)
    }

    /// Verifies the service's callback (guide, API reference 2) from its raw query string:
    /// exactly `result`, `session_token`, `timestamp` and `signature`, each once; the
    /// signature checked in constant time with the callback secret; the timestamp within
    /// [`Config::callback_tolerance`] of `now`.
    ///
    /// **Why:** the session token passes through the user's browser, so an unsigned callback
    /// would let anyone who knows only the password (enough to start a session) call the
    /// portal's callback with `result=true` and skip the second factor. Act only on an `Ok`,
    /// and only once per session token: look the token up among the sessions the portal
    /// created. Delivery is at least once, so answer a verified repeat with a 2xx too. See
    /// [the `callback` module](crate::callback) for the contract.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use eauth_sdk::{CallbackError, CallbackVerifier, Client, Config};
    ///
    /// let client = Client::new(Config {
    ///     base_url: "https://127.0.0.1:8443".into(),
    ///     client_id: "84c2ad6c-62eb-4217-8f46-a66852e6fe92".into(),
    ///     api_key: "eak_example".into(),
    ///     callback_secret: "ecs_example".into(),
    ///     ..Config::default()
    /// })?;
    /// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
    ///
    /// // As the service would sign it, 100 s ago:
    /// let query = CallbackVerifier::new("ecs_example")?
    ///     .signed_query(true, "eyJhbGciOiJIUzI1NiJ9.e30.sig", 1_700_000_000);
    /// let callback = client.verify_callback(&query, now)?;
    /// assert!(callback.approved);
    ///
    /// // What a user who knows only the password could send: refused.
    /// let forged = "result=true&session_token=eyJhbGciOiJIUzI1NiJ9.e30.sig";
    /// assert_eq!(
    ///     client.verify_callback(forged, now),
    ///     Err(CallbackError::Missing("timestamp".into()))
    /// );
    ///
    /// // A genuine callback replayed an hour later: refused.
    /// let later = now + Duration::from_secs(3600);
    /// assert!(matches!(
    ///     client.verify_callback(&query, later),
    ///     Err(CallbackError::OutsideTolerance { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_callback(
        &self,
        query: &str,
        now: std::time::SystemTime,
    ) -> Result<VerifiedCallback, CallbackError> {
        self.callbacks.verify(query, now)
    }

    /// Like [`verify_callback`](Self::verify_callback), for query parameters the web
    /// framework already decoded, in order and with duplicates kept (a map has lost them:
    /// prefer the raw query string).
    pub fn verify_callback_pairs<K, V>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
        now: std::time::SystemTime,
    ) -> Result<VerifiedCallback, CallbackError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.callbacks.verify_pairs(pairs, now)
    }

    /// Asks the service where a session stands (`session-result`): a second way to learn the
    /// outcome, when no callback arrived or to confirm one.
    ///
    /// ```no_run
    /// # async fn example(client: eauth_sdk::Client, token: eauth_sdk::SessionToken) -> Result<(), eauth_sdk::Error> {
    /// let result = client.session_result(&token).await?;
    /// if result.is_approved() {
    ///     // let the user in
    /// }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "eauth_sdk::session_result", skip_all)]
    pub async fn session_result(&self, token: &SessionToken) -> Result<SessionResult, Error> {
        let body = json!({
            "client_id": self.client_id.to_string(),
            "session_token": token.as_str(),
        });
        let (status, data) = self
            .call(&self.endpoints.session_result, &body, Retry::Idempotent)
            .await?;
        parse_session_result(&data).map_err(|reason| malformed(status, reason))
    }

    /// POSTs `body` until it succeeds, fails for good, or the attempts run out.
    async fn call(
        &self,
        url: &Url,
        body: &Value,
        retry: Retry,
    ) -> Result<(StatusCode, Value), Error> {
        let body = body.to_string();
        let mut attempt = 1;
        loop {
            match self.send(url, body.clone()).await {
                Err(error) if attempt < self.max_attempts && retry.allows(&error) => {
                    let pause = backoff(attempt, &error);
                    tracing::debug!(attempt, ?pause, %error, "retrying");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn send(&self, url: &Url, body: String) -> Result<(StatusCode, Value), Error> {
        let response = self.http.post(url.clone()).body(body).send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
            .map(Duration::from_secs);
        let body = read_limited(response).await?;
        decode_answer(status, retry_after, &body).map(|data| (status, data))
    }
}

/// The pause before attempt `attempt + 1`: what `Retry-After` asked for, or 100 ms doubling,
/// at most [`MAX_BACKOFF`].
fn backoff(attempt: u32, error: &Error) -> Duration {
    let pause = match error {
        Error::Overloaded {
            retry_after: Some(asked),
        } => *asked,
        _ => FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))),
    };
    pause.min(MAX_BACKOFF)
}

/// Reads an answer's body, refusing one longer than [`MAX_ANSWER_BYTES`].
async fn read_limited(mut response: Response) -> Result<Vec<u8>, Error> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(malformed(status, "answer longer than 64 KiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `data` of `session-result`: `{"status", "email", "finished_at"}`.
fn parse_session_result(data: &Value) -> Result<SessionResult, String> {
    let status = data
        .get("status")
        .and_then(Value::as_str)
        .ok_or("no status in data")?;
    let status =
        SessionStatus::parse(status).ok_or_else(|| format!("unknown session status {status:?}"))?;
    let email = data
        .get("email")
        .and_then(Value::as_str)
        .ok_or("no email in data")?
        .to_owned();
    let finished_at = match data.get("finished_at") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_i64()
                .filter(|seconds| *seconds >= 0)
                .ok_or("finished_at is not Unix seconds")?,
        ),
    };
    Ok(SessionResult {
        status,
        email,
        finished_at,
    })
}

/// TLS on the ring provider, trusting the system's roots and `extra_pems`.
///
/// Built here rather than by reqwest so that the SDK never depends on, nor installs, a
/// process-wide rustls provider: with `rustls-no-provider`, reqwest would otherwise panic in
/// an application that has not installed one.
fn tls_config(extra_pems: &[Vec<u8>]) -> Result<rustls::ClientConfig, ConfigError> {
    let mut extra_roots = Vec::new();
    for pem in extra_pems {
        let before = extra_roots.len();
        for certificate in CertificateDer::pem_slice_iter(pem) {
            extra_roots
                .push(certificate.map_err(|error| ConfigError::Certificate(error.to_string()))?);
        }
        if extra_roots.len() == before {
            return Err(ConfigError::Certificate(
                "a PEM holds no CERTIFICATE block".into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
            .map_err(|error| ConfigError::Tls(error.to_string()))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ConfigError::Tls(error.to_string()))?
        // "dangerous" only in that the verifier is ours to choose: this one is the platform
        // verifier reqwest itself uses, full WebPKI validation included.
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: &str) -> Config {
        Config {
            base_url: base_url.into(),
            client_id: "84c2ad6c-62eb-4217-8f46-a66852e6fe92".into(),
            api_key: "eak_test".into(),
            callback_secret: "ecs_test".into(),
            ..Config::default()
        }
    }

    #[test]
    fn endpoints_keep_the_base_urls_path_prefix() {
        for (base, toggle, start) in [
            (
                "https://auth.example.com",
                "https://auth.example.com/authen-api/api/v1/mfa/toggle",
                "https://auth.example.com/start-authentication",
            ),
            (
                "https://auth.example.com:8443/",
                "https://auth.example.com:8443/authen-api/api/v1/mfa/toggle",
                "https://auth.example.com:8443/start-authentication",
            ),
            (
                "https://example.com/eauth/",
                "https://example.com/eauth/authen-api/api/v1/mfa/toggle",
                "https://example.com/eauth/start-authentication",
            ),
        ] {
            let client = Client::new(config(base)).expect("client");
            assert_eq!(client.endpoints.toggle.as_str(), toggle);
            assert_eq!(client.endpoints.start_authentication.as_str(), start);
            assert!(
                client
                    .endpoints
                    .session_token
                    .as_str()
                    .ends_with("/authen-api/api/v1/session-token")
            );
            assert!(
                client
                    .endpoints
                    .session_result
                    .as_str()
                    .ends_with("/authen-api/api/v1/session-result")
            );
        }
    }

    /// Whether an error is the one a case expects.
    type IsExpected = fn(&ConfigError) -> bool;

    #[test]
    fn bad_configurations_are_refused_with_their_reason() {
        let cases: [(Config, IsExpected); 10] = [
            (config("http://auth.example.com"), |e| {
                matches!(e, ConfigError::BaseUrl(_))
            }),
            (config("auth.example.com"), |e| {
                matches!(e, ConfigError::BaseUrl(_))
            }),
            (config("https://u:p@auth.example.com"), |e| {
                matches!(e, ConfigError::BaseUrl(_))
            }),
            (config("https://auth.example.com/?a=b"), |e| {
                matches!(e, ConfigError::BaseUrl(_))
            }),
            (
                Config {
                    client_id: "not-a-uuid".into(),
                    ..config("https://a.example")
                },
                |e| matches!(e, ConfigError::ClientId(_)),
            ),
            (
                Config {
                    api_key: " ".into(),
                    ..config("https://a.example")
                },
                |e| matches!(e, ConfigError::ApiKey),
            ),
            (
                Config {
                    api_key: "eak\nx".into(),
                    ..config("https://a.example")
                },
                |e| matches!(e, ConfigError::ApiKey),
            ),
            (
                Config {
                    callback_secret: "".into(),
                    ..config("https://a.example")
                },
                |e| matches!(e, ConfigError::CallbackSecret),
            ),
            (
                Config {
                    timeout: Duration::ZERO,
                    ..config("https://a.example")
                },
                |e| matches!(e, ConfigError::Timeout),
            ),
            (
                Config {
                    root_certificates_pem: vec![b"not a certificate".to_vec()],
                    ..config("https://a.example")
                },
                |e| matches!(e, ConfigError::Certificate(_)),
            ),
        ];
        for (config, expected) in cases {
            let shown = format!("{config:?}");
            match Client::new(config) {
                Err(error) => assert!(expected(&error), "{shown}: {error:?}"),
                Ok(_) => panic!("accepted: {shown}"),
            }
        }
        // Plain http is for a service on this machine only.
        assert!(Client::new(config("http://127.0.0.1:8080")).is_ok());
        assert!(Client::new(config("http://localhost:8080")).is_ok());
    }

    #[tokio::test]
    async fn no_process_wide_crypto_provider_is_needed() {
        // reqwest with `rustls-no-provider` panics in an application that installed none,
        // unless handed a TLS config: this binary installs none, and the handshake still runs.
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let hang_up = tokio::spawn(async move {
            // Read the ClientHello, then hang up: the handshake was attempted.
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut hello = [0u8; 5];
            let read = tokio::io::AsyncReadExt::read(&mut stream, &mut hello).await;
            read.map(|n| n > 0 && hello[0] == 0x16).unwrap_or(false)
        });
        let client = Client::new(Config {
            max_attempts: 1,
            ..config(&format!("https://{address}"))
        })
        .expect("client");
        let error = client
            .disable_2fa("a@example.com")
            .await
            .expect_err("no TLS server");
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
        assert!(hang_up.await.expect("task"), "a TLS ClientHello was sent");
    }

    #[test]
    fn session_results_are_read_strictly() {
        let ok = parse_session_result(
            &json!({"status": "APPROVED", "email": "a@example.com", "finished_at": 1_700_000_000}),
        )
        .expect("valid");
        assert!(ok.is_approved());
        assert_eq!(ok.finished_at, Some(1_700_000_000));
        let pending = parse_session_result(
            &json!({"status": "PENDING", "email": "a@example.com", "finished_at": null}),
        )
        .expect("valid");
        assert_eq!(pending.status, SessionStatus::Pending);
        assert_eq!(pending.finished_at, None);
        for (raw, status) in [
            ("REJECTED", SessionStatus::Rejected),
            ("TIMEOUT", SessionStatus::TimedOut),
            ("ERROR", SessionStatus::Error),
        ] {
            let result =
                parse_session_result(&json!({"status": raw, "email": "a@example.com"})).expect(raw);
            assert_eq!(result.status, status);
            assert!(!result.is_approved());
        }
        for bad in [
            json!({"status": "approved", "email": "a@example.com"}),
            json!({"status": "MAYBE", "email": "a@example.com"}),
            json!({"email": "a@example.com"}),
            json!({"status": "APPROVED"}),
            json!({"status": "APPROVED", "email": "a@example.com", "finished_at": -1}),
            json!({"status": "APPROVED", "email": "a@example.com", "finished_at": "now"}),
            json!(""),
        ] {
            assert!(parse_session_result(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_follow_what_each_endpoint_can_bear() {
        let overloaded = Error::Overloaded { retry_after: None };
        for retry in [Retry::Idempotent, Retry::IfUnprocessed] {
            assert!(retry.allows(&overloaded));
            assert!(!retry.allows(&Error::Internal));
            assert!(!retry.allows(&Error::InvalidApiKey));
            assert!(!retry.allows(&malformed(StatusCode::BAD_GATEWAY, "html".into())));
        }
        assert!(Retry::Idempotent.allows(&Error::Timeout));
        assert!(!Retry::IfUnprocessed.allows(&Error::Timeout));
    }

    #[test]
    fn backoff_doubles_honours_retry_after_and_stays_short() {
        assert_eq!(backoff(1, &Error::Timeout), Duration::from_millis(100));
        assert_eq!(backoff(2, &Error::Timeout), Duration::from_millis(200));
        assert_eq!(backoff(40, &Error::Timeout), MAX_BACKOFF);
        let asked = |secs| Error::Overloaded {
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(backoff(1, &asked(1)), Duration::from_secs(1));
        assert_eq!(backoff(1, &asked(3600)), MAX_BACKOFF);
    }
}
