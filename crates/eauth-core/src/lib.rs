//! eAuthenticator's domain: the parsed types every layer passes around, TOTP verification,
//! session tokens and the encryption rules for secrets at rest.
//!
//! Nothing here performs I/O or reads the clock: callers pass `now` in, so every rule is a
//! pure function the tests can drive through any instant.

// Libraries report through `tracing`: a print is a leftover of debugging.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod address;
pub mod application;
pub mod callback;
pub mod console;
pub mod credentials;
pub mod device;
pub mod device_registration;
pub mod email;
pub mod push;
pub mod session;
pub mod signin;
pub mod throttle;
pub mod totp;
pub mod vault;

pub use application::{ApplicationName, CallbackUrl, ClientId, IpAllowList, RedirectUri};
pub use credentials::{ApiKey, ApiKeyHash, CallbackSecret};
pub use device::{DeviceId, DeviceKey, DeviceName, DevicePublicKey};
pub use email::Email;
pub use push::MatchNumber;
pub use session::{SessionClaims, SessionKey, SessionKeyring, SessionStatus, TokenError};
pub use totp::{Algorithm, CodeRejected, TotpCode, TotpParams, TotpSecret};
pub use vault::{MasterKey, Vault, VaultError};
