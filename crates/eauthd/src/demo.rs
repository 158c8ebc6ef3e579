//! `eauthd serve --demo`: the service plus the example portal, already registered with it, so
//! that the whole 2FA flow can be tried in a browser a minute after cloning.

use std::{fs, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use anyhow::Context;
use eauth_portal::{PortalConfig, RunningPortal};
use eauth_server::{
    RunningServer, Settings,
    admin::{Admin, ApplicationInput},
};
use serde::{Deserialize, Serialize};

/// Where the portal listens, and the address its pages use.
const PORTAL_LISTEN: &str = "127.0.0.1:3000";
const PORTAL_URL: &str = "http://localhost:3000";

/// The demo application's credentials, kept (mode 0600) so that restarts reuse it.
#[derive(Serialize, Deserialize)]
struct DemoCredentials {
    client_id: String,
    api_key: String,
    callback_secret: String,
}

/// Registers the demo application once, and starts the portal against `server`.
pub(crate) async fn start(
    settings: &Settings,
    server: &RunningServer,
) -> anyhow::Result<RunningPortal> {
    let dir = settings.data_dir.join("demo");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let credentials = credentials(settings, &dir.join("credentials.json")).await?;
    let certificate = settings
        .tls_cert
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("tls/cert.pem"));
    let root_certificates_pem = if settings.insecure_http {
        Vec::new()
    } else {
        vec![fs::read(&certificate)?]
    };
    RunningPortal::start(PortalConfig {
        listen: PORTAL_LISTEN.parse().expect("BUG: a valid address"),
        public_url: PORTAL_URL.parse().expect("BUG: a valid URL"),
        data_dir: dir,
        name: "Demo Portal".into(),
        eauth: eauth_sdk::Config {
            base_url: server.public_url.as_str().trim_end_matches('/').to_owned(),
            client_id: credentials.client_id,
            api_key: credentials.api_key.into(),
            callback_secret: credentials.callback_secret.into(),
            root_certificates_pem,
            ..eauth_sdk::Config::default()
        },
    })
    .await
    .context("cannot start the demo portal on 127.0.0.1:3000 (is the port taken?)")
}

async fn credentials(settings: &Settings, path: &Path) -> anyhow::Result<DemoCredentials> {
    let admin = Admin::open(settings).await?;
    let stored: Option<DemoCredentials> = fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    // Reuse the stored application if the database still has it (it may have been reset).
    if let Some(stored) = stored {
        let known = admin
            .list_applications()
            .await?
            .iter()
            .any(|app| app.client_id.to_string() == stored.client_id);
        if known {
            admin.close().await;
            return Ok(stored);
        }
    }
    let created = admin
        .create_application(&ApplicationInput {
            name: "Demo Portal".into(),
            ips: vec!["127.0.0.1".into(), "::1".into()],
            callback_url: format!("{PORTAL_URL}/eauth/callback"),
            redirect_uris: vec![format!("{PORTAL_URL}/callback")],
            owner: None,
        })
        .await?;
    admin.close().await;
    let credentials = DemoCredentials {
        client_id: created.client_id.to_string(),
        api_key: created.api_key.expose().to_owned(),
        callback_secret: created.callback_secret.expose().to_owned(),
    };
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(&serde_json::to_vec_pretty(&credentials)?)?;
    Ok(credentials)
}

/// What to do next, printed once both are up.
pub(crate) fn instructions(service: &str) -> String {
    format!(
        "
Demo: an example portal protected by eAuthenticator is running at {PORTAL_URL}

  1. Open {service}/healthz once and accept the self-signed certificate
     (the sign-in page and the popup helper are served from there).
  2. Open {PORTAL_URL}, create an account, and on the Security page set up
     two-factor authentication: scan the QR code with any authenticator app, or save
     a screenshot and run `cargo run --bin eauth -- add --qr screenshot.png`,
     then type the code it shows (`cargo run --bin eauth -- code`).
  3. Sign out, and sign in again: after the password, eAuthenticator asks for a code,
     on its own page (redirect) or in a popup — your choice on the sign-in form.
  4. Try a wrong code five times, or \"Deny\", to see a refused sign-in.

Press Ctrl-C to stop.
"
    )
}
