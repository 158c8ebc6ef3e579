//! An example portal that adds eAuthenticator 2FA the way the integration guide describes,
//! using only the SDK (`eauth-sdk`) on its backend and `/sdk/eauth.js` in its pages.
//!
//! It has its own users (email and password), a Security page that enables 2FA with a QR code
//! and a first code, and a sign-in that, after the password, sends the user to eAuthenticator
//! by redirect or by popup. It lets a user in only when its own backend holds a verified
//! approval for that sign-in: from the signed callback, or from `session-result`. The redirect
//! back, or a message from the popup, is never proof by itself.

mod db;
mod pages;
mod routes;
mod secrets;

use std::{net::SocketAddr, os::unix::fs::DirBuilderExt, path::PathBuf, sync::Arc};

use anyhow::Context;
use eauth_sdk::Client;
use url::Url;

pub use db::Db;

/// How the portal runs.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The URL browsers use for it, e.g. `http://localhost:3000`.
    pub public_url: Url,
    /// Where its SQLite file and key live.
    pub data_dir: PathBuf,
    /// Its name, shown on its pages and as the issuer in authenticator apps.
    pub name: String,
    /// How to reach eAuthenticator.
    pub eauth: eauth_sdk::Config,
}

/// Shared by the handlers.
pub(crate) struct Portal {
    pub(crate) config: PortalConfig,
    pub(crate) db: Db,
    pub(crate) eauth: Client,
    pub(crate) sealer: secrets::Sealer,
}

/// A running portal.
pub struct RunningPortal {
    /// The address bound.
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningPortal {
    /// Opens the data and serves in the background.
    pub async fn start(config: PortalConfig) -> anyhow::Result<Self> {
        // Private, like the service's: it holds password hashes and the key of the sealed secrets.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
        let db = Db::open(&config.data_dir).await?;
        let sealer = secrets::Sealer::load_or_create(&config.data_dir)?;
        let eauth = Client::new(config.eauth.clone()).context("eAuthenticator settings")?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let portal = Arc::new(Portal {
            config,
            db,
            eauth,
            sealer,
        });
        let app = routes::router(portal).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { local_addr, task })
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn a_new_data_directory_is_readable_by_its_owner_only() {
        let root = tempfile::tempdir().expect("temporary directory");
        let dir = root.path().join("portal-data");
        let portal = RunningPortal::start(PortalConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            public_url: "http://localhost:3000".parse().expect("URL"),
            data_dir: dir.clone(),
            name: "Test Portal".into(),
            eauth: eauth_sdk::Config {
                base_url: "https://127.0.0.1:8443".into(),
                client_id: "84c2ad6c-62eb-4217-8f46-a66852e6fe92".into(),
                api_key: "key".into(),
                callback_secret: "secret".into(),
                ..eauth_sdk::Config::default()
            },
        })
        .await
        .expect("the portal starts");
        portal.stop();
        let mode = std::fs::metadata(&dir)
            .expect("data directory")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "mode {mode:o}");
        assert!(dir.join("portal.db").exists());
    }
}
