//! `spawn_service`: the real eAuthenticator on a free port with a fresh data directory and
//! database (as `eauth-server`'s own `spawn_app`), and SDK clients configured for it.

use std::{net::SocketAddr, time::SystemTime};

use eauth_core::{ClientId, Email};
use eauth_sdk::{Client, Config, Enrollment, Error};
use eauth_server::{
    RunningServer, Settings,
    admin::{Admin, ApplicationInput, Credentials},
};
use eauth_store::{
    Store,
    testing::{Backend, TestDatabase},
};

/// The addresses the tests call from.
pub const LOOPBACK: &[&str] = &["127.0.0.1", "::1"];
/// The one redirect URI test applications register.
pub const REDIRECT_URI: &str = "https://portal.example.com/callback";

/// A running service, and what a test needs to reach it.
pub struct TestService {
    pub base_url: String,
    /// The self-signed certificate it generated (`<data_dir>/tls/cert.pem`).
    pub certificate_pem: Vec<u8>,
    pub settings: Settings,
    pub store: Store,
    _server: RunningServer,
    _data_dir: tempfile::TempDir,
    _database: TestDatabase,
}

/// Starts the service on SQLite. The SDK's own suite does not repeat the server's
/// per-backend runs: what it tests is the client.
pub async fn spawn_service() -> TestService {
    // The server side of the TLS handshake uses the process-wide provider; the SDK does not.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("SQLite database");
    let data_dir = tempfile::tempdir().expect("data dir");
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: data_dir.path().to_path_buf(),
        database_url: Some(database.url().to_owned()),
        // The tests' portals listen on loopback.
        private_callbacks: true,
        ..Settings::defaults()
    };
    let server = RunningServer::start(&settings)
        .await
        .expect("server starts");
    let certificate_pem =
        std::fs::read(data_dir.path().join("tls/cert.pem")).expect("generated certificate");
    let store = Store::connect(database.url()).await.expect("store");
    TestService {
        base_url: format!("https://{}", server.local_addr),
        certificate_pem,
        settings,
        store,
        _server: server,
        _data_dir: data_dir,
        _database: database,
    }
}

impl TestService {
    pub async fn admin(&self) -> Admin {
        Admin::open(&self.settings).await.expect("admin")
    }

    /// Registers an application, as `eauthd admin create-application` does.
    pub async fn register_with(&self, ips: &[&str], callback_url: &str) -> Credentials {
        let admin = self.admin().await;
        let credentials = admin
            .create_application(&ApplicationInput {
                name: "SDK Portal".into(),
                ips: ips.iter().map(|ip| (*ip).to_owned()).collect(),
                callback_url: callback_url.into(),
                redirect_uris: vec![REDIRECT_URI.into()],
                owner: None,
            })
            .await
            .expect("application created");
        admin.close().await;
        credentials
    }

    /// Registers an application whitelisting `ips`.
    pub async fn register_for(&self, ips: &[&str]) -> Credentials {
        self.register_with(ips, "https://portal.example.com/eauth/callback")
            .await
    }

    /// Registers an application reachable from loopback.
    pub async fn register(&self) -> Credentials {
        self.register_for(LOOPBACK).await
    }

    /// The configuration an integrator would write for `credentials`, trusting the
    /// service's certificate.
    pub fn config(&self, credentials: &Credentials) -> Config {
        Config {
            base_url: self.base_url.clone(),
            client_id: credentials.client_id.to_string(),
            api_key: credentials.api_key.expose().into(),
            callback_secret: credentials.callback_secret.expose().into(),
            root_certificates_pem: vec![self.certificate_pem.clone()],
            ..Config::default()
        }
    }

    pub fn client(&self, credentials: &Credentials) -> Client {
        Client::new(self.config(credentials)).expect("client")
    }

    /// A client built from `config` (adjusted by the test).
    pub fn client_with(&self, config: Config) -> Client {
        let shown = format!("{config:?}");
        Client::new(config).unwrap_or_else(|error| panic!("{shown}: {error}"))
    }

    pub async fn is_enrolled(&self, client_id: ClientId, email: &str) -> bool {
        let email = Email::parse(email).expect("email");
        self.store
            .enrollment(client_id, &email)
            .await
            .expect("store")
            .is_some()
    }

    pub async fn session_count(&self, client_id: ClientId) -> u64 {
        self.store.session_count(client_id).await.expect("store")
    }
}

/// Enrolls `email` as a portal does: a fresh enrollment, the app's current code checked, then
/// `mfa/toggle` ENABLE.
pub async fn enroll(client: &Client, email: &str) -> Enrollment {
    let enrollment =
        Enrollment::generate(client.client_id(), "SDK Portal", email).expect("enrollment");
    let now = SystemTime::now();
    enrollment
        .verify(&enrollment.code_at(now), now)
        .expect("the app's code");
    client
        .enable_2fa(enrollment.email(), enrollment.secret())
        .await
        .expect("enabled");
    enrollment
}

/// Serves `app` over plain HTTP on a free loopback port, for as long as the handle lives.
pub async fn serve_on_loopback(app: axum::Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serves");
    });
    (address, task)
}

/// Asserts that `error` is a connection that was never made (refused, or TLS refused).
pub fn assert_not_connected(error: &Error) {
    match error {
        Error::Transport(transport) => assert!(transport.is_connect(), "{error:?}"),
        other => panic!("not a connection failure: {other:?}"),
    }
}
