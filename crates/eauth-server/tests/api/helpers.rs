//! `spawn_app`: a fresh database, data directory and server per test, and typed calls.

use std::{net::SocketAddr, time::Duration};

use eauth_core::{ClientId, Email};
use eauth_server::{
    RunningServer, Settings,
    admin::{Admin, ApplicationInput, Credentials},
};
use eauth_store::{
    Store,
    testing::{Backend, TestDatabase},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Declares each async test once per backend, as `sqlite::name` and `postgres::name`. The
/// PostgreSQL variant returns early, with a note, when no test database is configured. With
/// `with CLOSURE;` first, each server starts with its settings adjusted by the closure.
#[macro_export]
macro_rules! backend_tests {
    (@spawn $spawn:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() {
                if let Some(app) = ($spawn)(eauth_store::testing::Backend::Sqlite).await {
                    super::$name(app).await;
                }
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() {
                if let Some(app) = ($spawn)(eauth_store::testing::Backend::Postgres).await {
                    super::$name(app).await;
                }
            })*
        }
    };
    (with $configure:expr; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(
            @spawn |backend| $crate::helpers::spawn_app_with(backend, $configure);
            $($name),*
        );
    };
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests!(@spawn $crate::helpers::spawn_app; $($name),*);
    };
}

/// A running service with its own database, and an HTTPS client that trusts its certificate.
pub struct TestApp {
    pub address: SocketAddr,
    pub base_url: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub settings: Settings,
    _server: RunningServer,
    _data_dir: tempfile::TempDir,
    _database: TestDatabase,
}

pub fn install_crypto_provider() {
    // Every test binary shares one process-wide provider; the first test installs it.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Starts a server on a fresh database; `None` for PostgreSQL when it is not configured.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with settings adjusted by `configure` before start.
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    install_crypto_provider();
    let Some(database) = TestDatabase::create(backend).await else {
        eprintln!("EAUTH_TEST_DATABASE_URL is not set: skipping the PostgreSQL variant");
        return None;
    };
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: data_dir.path().to_path_buf(),
        database_url: Some(database.url().to_owned()),
        // The tests' callback receivers listen on loopback.
        private_callbacks: true,
        ..Settings::defaults()
    };
    configure(&mut settings);
    let server = RunningServer::start(&settings)
        .await
        .expect("server starts");
    let address = server.local_addr;
    let certificate =
        std::fs::read(data_dir.path().join("tls/cert.pem")).expect("generated certificate");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&certificate).expect("PEM"))
        .build()
        .expect("client");
    let store = Store::connect(database.url()).await.expect("store");
    Some(TestApp {
        address,
        base_url: format!("https://{address}"),
        client,
        store,
        settings,
        _server: server,
        _data_dir: data_dir,
        _database: database,
    })
}

/// What the service answered a browser.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }
}

/// The session id (`jti`) inside a session token.
pub fn token_id(token: &str) -> uuid::Uuid {
    let claims = token.split('.').nth(1).expect("claims");
    let claims: Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(claims.as_bytes())
            .expect("b64"),
    )
    .expect("json");
    uuid::Uuid::parse_str(claims["jti"].as_str().expect("jti")).expect("uuid")
}

/// An application's credentials, as the tests use them.
pub struct TestApplication {
    pub client_id: ClientId,
    pub api_key: String,
    pub callback_secret: Option<String>,
}

impl From<Credentials> for TestApplication {
    fn from(credentials: Credentials) -> Self {
        Self {
            client_id: credentials.client_id,
            api_key: credentials.api_key.expose().to_owned(),
            callback_secret: Some(credentials.callback_secret.expose().to_owned()),
        }
    }
}

/// What the API answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("<no code>")
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("<no message>")
    }
}

pub const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

impl TestApp {
    /// The callback of the session behind `token` once `ready` holds for it (within 10 s): a
    /// delivery's result is recorded on a task of its own, just after the request that made it.
    pub async fn callback_once(
        &self,
        token: &str,
        ready: impl Fn(&eauth_store::Callback) -> bool,
    ) -> eauth_store::Callback {
        let mut last = None;
        for _ in 0..100 {
            let callback = self
                .store
                .callback_of_session(token_id(token))
                .await
                .expect("store")
                .expect("callback");
            if ready(&callback) {
                return callback;
            }
            last = Some(callback);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the callback never got there: {last:?}");
    }

    pub async fn admin(&self) -> Admin {
        Admin::open(&self.settings).await.expect("admin")
    }

    /// A browser's HTTP client: trusts the service's certificate, keeps cookies, and does not
    /// follow redirects (the tests look at them).
    pub fn browser_client(&self) -> reqwest::Client {
        self.browser_builder().build().expect("client")
    }

    /// A browser whose requests come through a proxy that names `source` as the client
    /// (believed where the test's settings trust 127.0.0.1 as a proxy).
    pub fn browser_client_from(&self, source: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", source.parse().expect("a header value"));
        self.browser_builder()
            .default_headers(headers)
            .build()
            .expect("client")
    }

    fn browser_builder(&self) -> reqwest::ClientBuilder {
        let certificate =
            std::fs::read(self.settings.data_dir.join("tls/cert.pem")).expect("certificate");
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&certificate).expect("PEM"))
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
    }

    /// Registers an application whitelisting the given addresses.
    pub async fn create_application_for(&self, ips: &[&str]) -> TestApplication {
        self.register(ApplicationInput {
            name: "Test Portal".into(),
            ips: ips.iter().map(|ip| (*ip).to_owned()).collect(),
            callback_url: "https://portal.example.com/eauth/callback".into(),
            redirect_uris: vec!["https://portal.example.com/callback".into()],
            owner: None,
        })
        .await
    }

    /// Registers an application as described.
    pub async fn register(&self, input: ApplicationInput) -> TestApplication {
        let admin = self.admin().await;
        let credentials = admin
            .create_application(&input)
            .await
            .expect("application created");
        admin.close().await;
        credentials.into()
    }

    /// A second server on the same database and data directory: another `eauthd` process, as
    /// far as the service can tell. Processes of one service share one public URL.
    pub async fn spawn_twin(&self) -> (RunningServer, String) {
        let settings = Settings {
            listen: "127.0.0.1:0".parse().expect("address"),
            public_url: Some(self.base_url.parse().expect("url")),
            ..self.settings.clone()
        };
        let server = RunningServer::start(&settings).await.expect("twin starts");
        let url = format!("https://{}", server.local_addr);
        (server, url)
    }

    /// Registers an application reachable from loopback.
    pub async fn create_application(&self) -> TestApplication {
        self.create_application_for(&["127.0.0.1", "::1"]).await
    }

    /// POSTs a raw body with the given headers.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let content_type = response.headers().get("content-type").cloned();
        let text = response.text().await.expect("body");
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "every answer is JSON: {status} {text}"
        );
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        Answer { status, body }
    }

    /// POSTs JSON with an API key.
    pub async fn post(&self, path: &str, api_key: &str, body: &Value) -> Answer {
        self.post_raw(
            path,
            &[("x-api-key", api_key), ("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    pub async fn session_token(&self, app: &TestApplication, email: &str) -> Answer {
        self.post(
            "/authen-api/api/v1/session-token",
            &app.api_key,
            &json!({ "email": email, "client_id": app.client_id.to_string() }),
        )
        .await
    }

    /// The token of a new session of `email`, which must be issued.
    pub async fn issued_token(&self, app: &TestApplication, email: &str) -> String {
        let answer = self.session_token(app, email).await;
        assert_eq!(answer.code(), "SUCCESS", "{}", answer.body);
        answer.body["data"]["session_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Rotates the application's API key as `eauthd admin` does, in a process of its own (a
    /// store beside the service's); the application with its new key.
    pub async fn rotate_key(&self, app: &TestApplication) -> TestApplication {
        let admin = self.admin().await;
        let key = admin
            .rotate_api_key(&app.client_id.to_string())
            .await
            .expect("rotate");
        admin.close().await;
        TestApplication {
            client_id: app.client_id,
            api_key: key.expose().to_owned(),
            callback_secret: app.callback_secret.clone(),
        }
    }

    /// The guide's ENABLE request with its example values, adjusted by `edit`.
    pub fn enable_body(app: &TestApplication, email: &str) -> Value {
        json!({
            "email": email,
            "client_id": app.client_id.to_string(),
            "secret": SECRET,
            "action": "ENABLE",
            "type": "TOTP",
            "algorithm": "SHA1",
            "digits": 6,
            "period": 30,
        })
    }

    pub async fn toggle(&self, app: &TestApplication, body: &Value) -> Answer {
        self.post("/authen-api/api/v1/mfa/toggle", &app.api_key, body)
            .await
    }

    pub async fn enable(&self, app: &TestApplication, email: &str) -> Answer {
        self.toggle(app, &Self::enable_body(app, email)).await
    }

    pub async fn disable(&self, app: &TestApplication, email: &str) -> Answer {
        let body =
            json!({ "email": email, "client_id": app.client_id.to_string(), "action": "DISABLE" });
        self.toggle(app, &body).await
    }

    /// The user's enrollment as stored; it must exist.
    pub async fn enrollment(&self, app: &TestApplication, email: &str) -> eauth_store::Enrollment {
        let email = Email::parse(email).expect("email");
        self.store
            .enrollment(app.client_id, &email)
            .await
            .expect("store")
            .expect("enrolled")
    }

    /// How many devices the user has registered.
    pub async fn device_count(&self, app: &TestApplication, email: &str) -> usize {
        let email = Email::parse(email).expect("email");
        self.store
            .devices_of(app.client_id, &email)
            .await
            .expect("store")
            .len()
    }

    pub async fn is_enrolled(&self, app: &TestApplication, email: &str) -> bool {
        let email = Email::parse(email).expect("email");
        self.store
            .enrollment(app.client_id, &email)
            .await
            .expect("store")
            .is_some()
    }
}
