//! The integrator's SDK for eAuthenticator: what a web portal's backend needs to add 2FA
//! with the service, following the integration guide step by step.
//!
//! 1. **Enroll** (guide, Step 2): [`Enrollment::generate`] makes a fresh secret; show
//!    [`Enrollment::qr_svg`] (or [`qr_png`](Enrollment::qr_png)) with a code field; check the
//!    typed code with [`Enrollment::verify`].
//! 2. **Learn the outcome** (Step 5): the service calls the application's callback URL;
//!    [`CallbackVerifier::verify`] checks its signature and age.

pub mod callback;
mod config;
mod enrollment;
mod signin;

use std::time::{SystemTime, UNIX_EPOCH};

pub use callback::{CallbackError, CallbackVerifier, VerifiedCallback};
pub use config::{
    Config, ConfigError, DEFAULT_CALLBACK_TOLERANCE, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT,
};
pub use eauth_core::{ClientId, TotpSecret};
pub use enrollment::{CodeError, Enrollment, EnrollmentError, QrError};
pub use signin::SessionToken;

/// `now` in Unix seconds; a time before 1970 counts as 1970 (no code or callback matches
/// it, and nothing panics).
fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
