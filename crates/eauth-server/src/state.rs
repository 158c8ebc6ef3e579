//! What every request handler shares: the store, the vault, the session keyring and the
//! settings that shape answers. Built once at start and shared read-only.

use std::{ops::Deref, sync::Arc};

use anyhow::Context;

use eauth_core::{SessionKey, SessionKeyring, Vault};
use eauth_store::{Store, StoredSessionKey};
use ipnet::IpNet;
use url::Url;

/// Reads the clock. Handlers take `now` from here and pass it down, so the domain never reads
/// the clock itself.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock, in Unix seconds.
    pub fn system() -> Self {
        Self(Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| {
                    i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
                })
        }))
    }

    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

/// The shared state behind [`AppState`].
pub struct Shared {
    /// The database.
    pub store: Store,
    /// Seals and opens stored secrets.
    pub vault: Vault,
    /// Issues and verifies session tokens.
    pub keyring: SessionKeyring,
    /// The base URL browsers and integrators use.
    pub public_url: Url,
    /// Lifetime of new sessions.
    pub session_ttl_secs: i64,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The clock.
    pub clock: Clock,
    /// Wakes the callback worker.
    pub wakeup: crate::worker::Wakeup,
    /// Sends callbacks.
    pub callbacks: crate::outbound::Callbacks,
    /// Wakes the app's long polls when this process offers a sign-in to a user's devices.
    pub push: crate::app_api::PushSignals,
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared state.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Loads the session-signing key every process on this database shares, creating it on the
/// very first start.
pub async fn load_session_keyring(
    store: &Store,
    vault: &Vault,
    public_url: &Url,
    now: i64,
) -> anyhow::Result<SessionKeyring> {
    let candidate = SessionKey::generate();
    let sealed = vault.seal_session_key(&candidate);
    let stored = store
        .ensure_session_key(
            StoredSessionKey {
                kid: candidate.kid().to_owned(),
                sealed_secret: sealed,
            },
            now,
        )
        .await
        .context("cannot load the session signing key")?;
    let key = vault.open_session_key(stored.kid, &stored.sealed_secret).context(
        "cannot decrypt the session signing key: is this the master key the database was created with?",
    )?;
    // The issuer is the public URL without a trailing slash, as integrators write it.
    let issuer = public_url.as_str().trim_end_matches('/').to_owned();
    Ok(SessionKeyring::new(key, issuer))
}
