//! `eauth`, a command-line TOTP authenticator: it adds accounts from `otpauth://totp/` URIs
//! (typed, piped or read from a QR code image), keeps them in a private JSON file, and shows
//! their codes, once or live.

pub mod account;
pub mod qr;
pub mod store;
pub mod uri;
