//! The integrator's SDK for eAuthenticator: what a web portal's backend needs to add 2FA
//! with the service, following the integration guide step by step.
//!
//! 1. **Enroll** (guide, Step 2): [`Enrollment::generate`] makes a fresh secret; show
//!    [`Enrollment::qr_svg`] (or [`qr_png`](Enrollment::qr_png)) with a code field; check the
//!    typed code with [`Enrollment::verify`]; then [`Client::enable_2fa`]. Later,
//!    [`Client::disable_2fa`].
//! 2. **Sign in** (Steps 3–4): after the password step, [`Client::create_session`] gives a
//!    [`SessionToken`]; store it with the half-finished sign-in and send the browser to
//!    [`Client::authentication_url`] (redirect or popup).
//! 3. **Learn the outcome** (Step 5): the service calls the application's callback URL;
//!    [`Client::verify_callback`] checks its signature and age. [`Client::session_result`]
//!    asks the service directly.
//!
//! ```no_run
//! use std::time::SystemTime;
//! use eauth_sdk::{Client, Config, Enrollment, SignIn};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(Config {
//!     base_url: "https://127.0.0.1:8443".into(),
//!     client_id: "84c2ad6c-62eb-4217-8f46-a66852e6fe92".into(),
//!     api_key: std::env::var("EAUTH_API_KEY")?.into(),
//!     callback_secret: std::env::var("EAUTH_CALLBACK_SECRET")?.into(),
//!     // The dev server's self-signed certificate.
//!     root_certificates_pem: vec![std::fs::read("eauth-data/tls/cert.pem")?],
//!     ..Config::default()
//! })?;
//!
//! // Enrollment: show the QR code, check the code the user typed, then tell the service.
//! let enrollment = Enrollment::generate(client.client_id(), "My Portal", "jane@example.com")?;
//! let svg = enrollment.qr_svg()?;
//! # let typed_code = "123456";
//! enrollment.verify(typed_code, SystemTime::now())?;
//! client.enable_2fa(enrollment.email(), enrollment.secret()).await?;
//!
//! // Sign-in, after the password was checked.
//! let token = client.create_session("jane@example.com").await?;
//! let url = client.authentication_url(&token, &SignIn::Redirect {
//!     redirect_uri: "https://portal.example.com/callback".into(),
//! });
//! // ... store `token`, redirect the browser to `url` ...
//!
//! // The callback endpoint, given the raw query string of the service's request.
//! # let raw_query = "";
//! let callback = client.verify_callback(raw_query, SystemTime::now())?;
//! if callback.approved /* && callback.session_token is a stored, unused session */ {
//!     // let the user in, and forget the stored token
//! }
//! # Ok(()) }
//! ```
//!
//! HTTPS uses rustls with the ring provider, configured by the SDK itself: the application
//! need not install a process-wide provider. Secrets (the API key, the callback secret, TOTP
//! secrets, session tokens) never appear in `Debug` output.

pub mod callback;
mod client;
mod config;
mod enrollment;
mod error;
mod signin;

use std::time::{SystemTime, UNIX_EPOCH};

pub use callback::{CallbackError, CallbackVerifier, VerifiedCallback};
pub use client::Client;
pub use config::{
    Config, ConfigError, DEFAULT_CALLBACK_TOLERANCE, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT,
};
pub use eauth_core::{ClientId, SessionStatus, TotpSecret};
pub use enrollment::{CodeError, Enrollment, EnrollmentError, QrError};
pub use error::{Error, TransportError};
pub use signin::{SessionResult, SessionToken, SignIn};
pub use url::Url;

/// `now` in Unix seconds; a time before 1970 counts as 1970 (no code or callback matches
/// it, and nothing panics).
fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
