//! `eauth`, a command-line TOTP authenticator: it adds accounts from `otpauth://totp/` URIs
//! (typed, piped or read from a QR code image), keeps them in a private JSON file, and shows
//! their codes, once or live.
//!
//! The binary (`src/main.rs`) parses arguments and prints; everything it calls is here. Codes
//! come from `eauth-core`'s TOTP, the same the service verifies with.

pub mod account;
pub mod app;
pub mod qr;
pub mod render;
pub mod store;
pub mod uri;
pub mod watch;
