//! `eauthd` as a library: configuration, first-start bootstrap, the HTTPS service with its
//! API, and the operator commands. The binary only parses arguments and calls in here, so
//! tests start the real service in-process.

// Libraries report through `tracing`: a print is a leftover of debugging.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod admin;
pub mod api;
pub mod app_api;
pub mod bootstrap;
pub mod client_ip;
pub mod config;
pub mod console;
pub mod health;
mod html;
pub mod outbound;
pub mod registration;
pub mod server;
pub mod state;
pub mod webview;
pub mod worker;

pub use config::Settings;
pub use server::RunningServer;
