//! The SDK as an integrator's backend uses it: against the real service started in-process
//! (HTTPS, its own SQLite database per test), and against a scripted fake for the failures
//! the real one cannot be made to produce on demand (overload, slowness, garbage).

// The helpers are `pub` for the sibling modules of this one test binary.
#![allow(unreachable_pub)]

mod app;
mod fake;
mod receiver;
mod retries;
mod service;
mod signin;
mod support;
