//! The API as integrators use it: the real server on a free port, over HTTPS, against
//! SQLite and (when `EAUTH_TEST_DATABASE_URL` is set) PostgreSQL.

// The helpers are `pub` for the sibling modules of this one test binary.
#![allow(unreachable_pub)]

mod console;
mod health;
mod helpers;
mod mfa_toggle;
mod push;
mod push_devices;
mod receiver;
mod session_result;
mod session_token;
mod transport;
mod webview;
