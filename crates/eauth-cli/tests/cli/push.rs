//! Push approval as a user does it: `eauth add --server` registers against a real service
//! started by the test (HTTPS with its self-signed certificate, SQLite), the sign-in page
//! shows a number, `eauth approve` / `eauth deny` decide the sign-in, and `eauth remove`
//! unregisters the device.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use eauth_core::{ClientId, Email, SessionStatus};
use eauth_server::{
    RunningServer, Settings,
    admin::{Admin, ApplicationInput},
};
use eauth_store::{
    Store,
    testing::{Backend, TestDatabase},
};
use serde_json::json;
use uuid::Uuid;

use super::{Run, SEED, Sandbox, mode};

const EMAIL: &str = "jane@example.com";
const PORTAL: &str = "https://portal.example.com/callback";

/// A running service with one application and one enrolled user, and an async runtime the
/// test's own HTTP calls run on (the `eauth` processes it starts are blocking).
struct Service {
    runtime: tokio::runtime::Runtime,
    url: String,
    cert: PathBuf,
    client: reqwest::Client,
    store: Store,
    client_id: ClientId,
    api_key: String,
    server: Option<RunningServer>,
    _data_dir: tempfile::TempDir,
    _database: TestDatabase,
}

impl Service {
    fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let data_dir = tempfile::tempdir().expect("data dir");
        let (server, database, settings) = runtime.block_on(async {
            let database = TestDatabase::create(Backend::Sqlite).await.expect("SQLite");
            let settings = Settings {
                listen: "127.0.0.1:0".parse().expect("address"),
                data_dir: data_dir.path().to_path_buf(),
                database_url: Some(database.url().to_owned()),
                private_callbacks: true,
                ..Settings::defaults()
            };
            let server = RunningServer::start(&settings)
                .await
                .expect("server starts");
            (server, database, settings)
        });
        let cert = data_dir.path().join("tls/cert.pem");
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&cert).expect("cert")).expect("PEM"),
            )
            .build()
            .expect("client");
        let (store, credentials) = runtime.block_on(async {
            let admin = Admin::open(&settings).await.expect("admin");
            let credentials = admin
                .create_application(&ApplicationInput {
                    name: "Portal".into(),
                    ips: vec!["127.0.0.1".into()],
                    callback_url: "http://127.0.0.1:9/callback".into(),
                    redirect_uris: vec![PORTAL.into()],
                    owner: None,
                })
                .await
                .expect("application");
            admin.close().await;
            let store = Store::connect(database.url()).await.expect("store");
            (store, credentials)
        });
        let service = Self {
            url: format!("https://{}", server.local_addr),
            runtime,
            cert,
            client,
            store,
            client_id: credentials.client_id,
            api_key: credentials.api_key.expose().to_owned(),
            server: Some(server),
            _data_dir: data_dir,
            _database: database,
        };
        service.enable();
        service
    }

    /// Enables 2FA for the user (again: a new history, and no devices).
    fn enable(&self) {
        let enabled = self.call(
            "/authen-api/api/v1/mfa/toggle",
            json!({
                "client_id": self.client_id.to_string(), "email": EMAIL, "secret": SEED,
                "action": "ENABLE", "type": "TOTP", "algorithm": "SHA1", "digits": 6, "period": 30,
            }),
        );
        assert_eq!(enabled["code"], "SUCCESS", "{enabled}");
    }

    /// Stops the service: its address then refuses connections (the database stays readable).
    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown()).expect("shutdown");
        }
    }

    fn call(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        self.runtime.block_on(async {
            self.client
                .post(format!("{}{path}", self.url))
                .header("x-api-key", &self.api_key)
                .json(&body)
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("JSON")
        })
    }

    /// The portal's URI for the user, as its QR code carries it.
    fn uri(&self) -> String {
        format!(
            "otpauth://totp/Portal:{EMAIL}?secret={SEED}&issuer=Portal&client_id={}&email={EMAIL}",
            self.client_id
        )
    }

    fn session_token(&self) -> String {
        let answer = self.call(
            "/authen-api/api/v1/session-token",
            json!({ "client_id": self.client_id.to_string(), "email": EMAIL }),
        );
        answer["data"]["session_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Opens the sign-in page as the browser does; returns the number it shows.
    fn open_page(&self, token: &str) -> Option<u8> {
        let url = url::Url::parse_with_params(
            &format!("{}/start-authentication", self.url),
            [
                ("signin_method", "redirect"),
                ("session_token", token),
                ("redirect_uri", PORTAL),
            ],
        )
        .expect("url");
        let page = self.runtime.block_on(async {
            self.client
                .get(url)
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("HTML")
        });
        let after = page.split("class=\"push-number\"").nth(1)?;
        after
            .split('>')
            .nth(1)?
            .split('<')
            .next()?
            .trim()
            .parse()
            .ok()
    }

    fn status_of(&self, token: &str) -> SessionStatus {
        let claims = token.split('.').nth(1).expect("claims");
        let claims: serde_json::Value = serde_json::from_slice(
            &data_encoding::BASE64URL_NOPAD
                .decode(claims.as_bytes())
                .expect("base64url"),
        )
        .expect("JSON");
        let id = Uuid::parse_str(claims["jti"].as_str().expect("jti")).expect("uuid");
        self.runtime.block_on(async {
            self.store
                .session(id)
                .await
                .expect("store")
                .expect("session")
                .status
        })
    }

    fn devices(&self) -> usize {
        let email = Email::parse(EMAIL).expect("email");
        self.runtime.block_on(async {
            self.store
                .devices_of(self.client_id, &email)
                .await
                .expect("store")
                .len()
        })
    }

    /// `eauth add URI --server ... --ca-cert ...` in `sandbox`.
    fn add(&self, sandbox: &Sandbox) -> Run {
        sandbox.run(&[
            "add",
            &self.uri(),
            "--server",
            &self.url,
            "--ca-cert",
            self.cert.to_str().expect("UTF-8"),
        ])
    }
}

#[test]
fn eauth_add_with_a_server_registers_and_eauth_approve_signs_in_with_the_number() {
    let service = Service::start();
    let sandbox = Sandbox::new();
    let added = service.add(&sandbox).ok();
    assert_eq!(
        added.stdout,
        format!("added Portal:{EMAIL} (registered for push approval)\n")
    );
    assert_eq!(service.devices(), 1);
    assert_eq!(mode(&sandbox.accounts), 0o600);
    let stored: serde_json::Value = serde_json::from_slice(&sandbox.file_bytes()).expect("JSON");
    assert_eq!(stored["version"], 2);
    let device = &stored["accounts"][0]["device"];
    assert_eq!(device["server"], format!("{}/", service.url));
    assert!(
        device["key"].as_str().is_some_and(|k| k.len() == 43),
        "{device}"
    );
    assert!(
        device["ca_cert"]
            .as_str()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );

    let token = service.session_token();
    let number = service.open_page(&token).expect("the page shows a number");
    let listed = sandbox
        .run(&["approve", "--number", &number.to_string()])
        .ok();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{listed:?}");
    assert!(
        lines[0].contains(&format!("Portal  Portal:{EMAIL}  from 127.0.0.1  at ")),
        "{listed:?}"
    );
    assert_eq!(lines[1], "approved Portal");
    assert_eq!(service.status_of(&token), SessionStatus::Approved);

    // The code is still the way in, and `eauth list` still reads the file.
    sandbox.run(&["list"]).ok();
}

#[test]
fn eauth_deny_and_wrong_numbers_end_the_sign_in_as_reject() {
    let service = Service::start();
    let sandbox = Sandbox::new();
    service.add(&sandbox).ok();

    let token = service.session_token();
    service.open_page(&token).expect("number");
    let denied = sandbox.run(&["deny"]).ok();
    assert!(denied.stdout.ends_with("denied Portal\n"), "{denied:?}");
    assert_eq!(service.status_of(&token), SessionStatus::Rejected);
    sandbox
        .run(&["deny"])
        .refused(2, "no sign-in is waiting for approval");

    let token = service.session_token();
    let number = service.open_page(&token).expect("number");
    let wrong = if number == 99 { 10 } else { number + 1 }.to_string();
    for expected in [
        "2 attempts left",
        "1 attempt left",
        "the sign-in was refused",
    ] {
        let run = sandbox.run(&["approve", "--number", &wrong]);
        assert_eq!(run.code, Some(2), "{run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
        assert!(run.stderr.contains(expected), "{expected}: {run:?}");
    }
    assert_eq!(service.status_of(&token), SessionStatus::Rejected);
}

#[test]
fn eauth_approve_wait_waits_for_the_next_sign_in() {
    let service = Service::start();
    let sandbox = Sandbox::new();
    service.add(&sandbox).ok();
    let token = service.session_token();

    // The number is read from the page once it is open, and typed on standard input.
    let mut child = sandbox
        .command()
        .args(["approve", "--wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eauth starts");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().expect("status").is_none(), "still waiting");
    let number = service.open_page(&token).expect("number");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(format!("{number}\n").as_bytes())
        .expect("typed");
    let started = Instant::now();
    let run = Run::from_output(child.wait_with_output().expect("eauth ends"));
    assert!(started.elapsed() < Duration::from_secs(10));
    let run = run.ok();
    assert!(run.stdout.ends_with("approved Portal\n"), "{run:?}");
    assert!(
        run.stderr.contains("Number shown in the browser"),
        "{run:?}"
    );
    assert_eq!(service.status_of(&token), SessionStatus::Approved);
}

#[test]
fn bad_push_input_is_refused_with_one_line_and_nothing_changed() {
    let service = Service::start();
    let sandbox = Sandbox::new();
    sandbox
        .run(&["approve", "--number", "42"])
        .refused(2, "no account is registered for push approval");
    sandbox
        .run(&["add", &service.uri(), "--server", "ftp://example.com"])
        .refused(2, "--server must be an https:// URL");
    sandbox
        .run(&[
            "add",
            &format!("otpauth://totp/Other:bob?secret={SEED}"),
            "--server",
            &service.url,
        ])
        .refused(2, "its URI has no client_id and email");
    sandbox
        .run(&[
            "add",
            &service.uri(),
            "--server",
            &service.url,
            "--ca-cert",
            "/nonexistent.pem",
        ])
        .refused(2, "cannot use the certificate /nonexistent.pem");
    // Without --ca-cert the self-signed certificate is not trusted.
    sandbox
        .run(&["add", &service.uri(), "--server", &service.url])
        .refused(1, "cannot reach");
    assert_eq!(
        sandbox.file_bytes(),
        Vec::<u8>::new(),
        "nothing was written"
    );
    assert_eq!(service.devices(), 0);

    service.add(&sandbox).ok();
    let token = service.session_token();
    service.open_page(&token).expect("number");
    sandbox
        .run(&["approve", "--number", "7"])
        .refused(2, "has two digits (10 to 99)");
    sandbox
        .run(&["deny", "ffffffff"])
        .refused(2, "no waiting sign-in has the id \"ffffffff\"");
    assert_eq!(service.status_of(&token), SessionStatus::Pending);
    // A second add of the same account is a duplicate, and registers nothing.
    service.add(&sandbox).refused(2, "is already an account");
    assert_eq!(service.devices(), 1);
}

#[test]
fn a_default_server_registers_portal_accounts_and_leaves_others_alone() {
    let service = Service::start();
    let sandbox = Sandbox::new();
    let with_default = |args: &[&str]| {
        Run::from_output(
            sandbox
                .command()
                .env("EAUTH_SERVER", &service.url)
                .env("EAUTH_CA_CERT", &service.cert)
                .args(args)
                .output()
                .expect("eauth runs"),
        )
    };
    let added = with_default(&["add", &service.uri()]).ok();
    assert!(
        added.stdout.ends_with("(registered for push approval)\n"),
        "{added:?}"
    );
    assert_eq!(service.devices(), 1);
    let other = with_default(&["add", &format!("otpauth://totp/Other:bob?secret={SEED}")]).ok();
    assert_eq!(other.stdout, "added Other:bob\n");
}

#[test]
fn eauth_remove_unregisters_the_device_before_it_forgets_the_account() {
    let service = Service::start();
    let sandbox = Sandbox::new();
    service.add(&sandbox).ok();
    sandbox.add(&super::uri("Other", "bob"));
    assert_eq!(service.devices(), 1);

    let removed = sandbox.run(&["remove", "portal"]).ok();
    assert_eq!(
        removed.stdout,
        format!(
            "removed Portal:{EMAIL} (unregistered from {})\n",
            service.url
        )
    );
    assert_eq!(removed.stderr, "");
    assert_eq!(service.devices(), 0, "the service forgot the device");
    assert_eq!(sandbox.labels(), ["Other:bob"]);
    // An account without a device is removed as ever.
    assert_eq!(
        sandbox.run(&["remove", "other"]).ok().stdout,
        "removed Other:bob\n"
    );
}

#[test]
fn eauth_remove_keeps_the_account_while_the_service_cannot_be_reached_unless_told_local() {
    let mut service = Service::start();
    let sandbox = Sandbox::new();
    service.add(&sandbox).ok();
    let before = sandbox.file_bytes();
    service.stop();

    let refused = sandbox
        .run(&["remove", "portal"])
        .refused(1, "nothing was removed");
    for expected in [
        &format!("cannot unregister Portal:{EMAIL} from {}", service.url),
        "cannot reach",
        &format!("eauth remove --local \"Portal:{EMAIL}\""),
    ] {
        assert!(refused.stderr.contains(expected), "{expected}: {refused:?}");
    }
    assert_eq!(
        sandbox.file_bytes(),
        before,
        "the account and its key are kept"
    );

    let removed = sandbox.run(&["remove", "--local", "portal"]).ok();
    assert_eq!(removed.stdout, format!("removed Portal:{EMAIL}\n"));
    assert_eq!(removed.stderr.lines().count(), 1, "{removed:?}");
    assert!(
        removed.stderr.starts_with(&format!(
            "eauth: warning: its device is still registered at {}",
            service.url
        )),
        "{removed:?}"
    );
    assert!(sandbox.labels().is_empty());
    assert_eq!(service.devices(), 1, "the service was not told");
}

#[test]
fn eauth_remove_of_a_device_the_service_already_forgot_removes_the_account() {
    let service = Service::start();
    let sandbox = Sandbox::new();
    service.add(&sandbox).ok();
    // The portal sets up 2FA again: the service drops the user's devices.
    service.enable();
    assert_eq!(service.devices(), 0);

    let removed = sandbox.run(&["remove", "portal"]).ok();
    assert_eq!(
        removed.stdout,
        format!(
            "removed Portal:{EMAIL} ({} had already forgotten its device)\n",
            service.url
        )
    );
    assert!(sandbox.labels().is_empty());
}
