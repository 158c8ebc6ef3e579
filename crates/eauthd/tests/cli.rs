//! The `eauthd` binary as operators run it: admin commands, start-up, TLS, signals, and two
//! processes sharing one PostgreSQL database.

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const EAUTHD: &str = env!("CARGO_BIN_EXE_eauthd");

/// `eauthd` with a clean environment: only what the test sets.
fn eauthd(data_dir: &Path, database_url: Option<&str>) -> Command {
    let mut command = Command::new(EAUTHD);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
        .env("EAUTH_DATA_DIR", data_dir)
        .env("EAUTH_LISTEN", "127.0.0.1:0")
        // The tests' callback receivers listen on loopback.
        .env("EAUTH_PRIVATE_CALLBACKS", "true");
    if let Some(url) = database_url {
        command.env("EAUTH_DATABASE_URL", url);
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("eauthd runs")
}

fn create_application(data_dir: &Path, database_url: Option<&str>) -> Value {
    let output = run(eauthd(data_dir, database_url).args([
        "admin",
        "create-application",
        "--name",
        "Portal",
        "--ip",
        "127.0.0.1",
        "--ip",
        "::1",
        "--callback-url",
        "https://portal.example.com/eauth/callback",
        "--redirect-uri",
        "https://portal.example.com/callback",
        "--json",
    ]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("exactly one JSON object on stdout")
}

#[test]
fn create_application_json_prints_exactly_the_three_credentials() {
    let dir = tempfile::tempdir().expect("dir");
    let created = create_application(dir.path(), None);
    let object = created.as_object().expect("object");
    let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["api_key", "callback_secret", "client_id"]);
    assert!(uuid::Uuid::parse_str(created["client_id"].as_str().expect("client_id")).is_ok());

    let listed = run(eauthd(dir.path(), None).args(["admin", "list-applications", "--json"]));
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listed[0]["client_id"], created["client_id"]);
    assert_eq!(listed[0]["active"], true);
    let text = String::from_utf8(listed.to_string().into_bytes()).expect("utf-8");
    assert!(
        !text.contains(created["api_key"].as_str().expect("key")),
        "keys are never listed"
    );
}

#[test]
fn bad_arguments_exit_2_with_a_message_and_write_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let base = [
        "admin",
        "create-application",
        "--name",
        "Portal",
        "--callback-url",
    ];
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "https://p.example/cb",
                "--ip",
                "10.0.0.0/33",
                "--redirect-uri",
                "https://p.example/r",
            ],
            "--ip",
        ),
        (
            &[
                "https://p.example/cb",
                "--ip",
                "example.com",
                "--redirect-uri",
                "https://p.example/r",
            ],
            "--ip",
        ),
        (
            &[
                "http://p.example/cb",
                "--ip",
                "10.0.0.1",
                "--redirect-uri",
                "https://p.example/r",
            ],
            "https",
        ),
        (
            &[
                "https://p.example/cb",
                "--ip",
                "10.0.0.1",
                "--redirect-uri",
                "not a url",
            ],
            "--redirect-uri",
        ),
        (
            &[
                "https://p.example/cb",
                "--ip",
                "10.0.0.1",
                "--redirect-uri",
                "https://p.example/r",
                "--owner",
                "x",
            ],
            "--owner",
        ),
        (
            &[
                "https://p.example/cb",
                "--redirect-uri",
                "https://p.example/r",
            ],
            "--ip",
        ),
    ];
    for (rest, mentions) in cases {
        let output = run(eauthd(dir.path(), None).args(base).args(rest));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{rest:?}: {stderr}");
        assert!(stderr.contains(mentions), "{rest:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{rest:?}");
    }
    for args in [
        &["admin", "set-active", "not-a-uuid", "true"][..],
        &[
            "admin",
            "set-active",
            "84c2ad6c-62eb-4217-8f46-a66852e6fe92",
            "false",
        ],
        &[
            "admin",
            "set-active",
            "84c2ad6c-62eb-4217-8f46-a66852e6fe92",
            "maybe",
        ],
        &[
            "admin",
            "rotate-api-key",
            "84c2ad6c-62eb-4217-8f46-a66852e6fe92",
        ],
    ] {
        let output = run(eauthd(dir.path(), None).args(args));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let listed = run(eauthd(dir.path(), None).args(["admin", "list-applications", "--json"]));
    assert_eq!(
        serde_json::from_slice::<Value>(&listed.stdout).expect("JSON"),
        json!([])
    );
}

/// A started `eauthd serve`, killed on drop.
struct Served {
    child: Child,
    url: String,
    client: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `eauthd` and waits for its start-up line, which names the URL it serves.
async fn serve(data_dir: &Path, database_url: Option<&str>) -> Served {
    serve_command(eauthd(data_dir, database_url), data_dir).await
}

/// Starts the prepared `eauthd serve` command and waits for its start-up line.
async fn serve_command(mut command: Command, data_dir: &Path) -> Served {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut child = command
        .env("EAUTH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("eauthd starts");
    let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().expect("stdout"))
        .expect("async stdout");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("start-up line within a minute")
    .expect("read stdout");
    let url = line
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("unexpected start-up line: {line:?}"))
        .to_owned();
    assert!(
        line.contains(&data_dir.display().to_string()),
        "the line says where data lives: {line}"
    );
    let certificate = std::fs::read(data_dir.join("tls/cert.pem")).expect("certificate");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&certificate).expect("PEM"))
        .build()
        .expect("client");
    Served { child, url, client }
}

impl Served {
    async fn post(&self, path: &str, key: &str, body: Value) -> Value {
        self.client
            .post(format!("{}{path}", self.url))
            .header("x-api-key", key)
            .json(&body)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON")
    }
}

#[tokio::test]
async fn a_fresh_data_directory_serves_the_guides_examples_over_https_only() {
    let dir = tempfile::tempdir().expect("dir");
    let data_dir = dir.path().join("data");
    let created = create_application(&data_dir, None);
    let served = serve(&data_dir, None).await;
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let (key, client_id) = (
        created["api_key"].as_str().expect("key"),
        created["client_id"].as_str().expect("id"),
    );

    let enabled = served
        .post(
            "/authen-api/api/v1/mfa/toggle",
            key,
            json!({ "email": "user@example.com", "client_id": client_id, "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                    "action": "ENABLE", "type": "TOTP", "algorithm": "SHA1", "digits": 6, "period": 30 }),
        )
        .await;
    assert_eq!(enabled["code"], "SUCCESS");
    let token = served
        .post(
            "/authen-api/api/v1/session-token",
            key,
            json!({ "email": "user@example.com", "client_id": client_id }),
        )
        .await;
    assert_eq!(token["code"], "SUCCESS", "{token}");

    // Plain HTTP to the same port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(served.url.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.is_err() || !plain.expect("response").status().is_success());

    let mode = |path: &Path| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path).expect("exists").permissions(),
        )
    };
    for private in [
        data_dir.clone(),
        data_dir.join("master.key"),
        data_dir.join("tls/key.pem"),
    ] {
        assert_eq!(
            mode(&private) & 0o077,
            0,
            "{} must be private",
            private.display()
        );
    }
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().expect("dir");
    let mut served = serve(dir.path(), None).await;
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = tokio::task::spawn_blocking(move || served.child.wait().expect("wait"))
        .await
        .expect("join");
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn two_processes_on_one_postgres_database_behave_as_one_service() {
    let Some(database) =
        eauth_store::testing::TestDatabase::create(eauth_store::testing::Backend::Postgres).await
    else {
        eprintln!("EAUTH_TEST_DATABASE_URL is not set: skipping");
        return;
    };
    let url = Some(database.url());
    // Two processes, each with its own data directory (certificate) but the same master key.
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let created = create_application(dir_a.path(), url);
    std::fs::copy(
        dir_a.path().join("master.key"),
        dir_b.path().join("master.key"),
    )
    .expect("share master key");
    let (a, b) = tokio::join!(serve(dir_a.path(), url), serve(dir_b.path(), url));
    let (key, client_id) = (
        created["api_key"].as_str().expect("key"),
        created["client_id"].as_str().expect("id"),
    );

    let enable = json!({ "email": "user@example.com", "client_id": client_id, "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                         "action": "ENABLE", "type": "TOTP", "algorithm": "SHA1", "digits": 6, "period": 30 });
    assert_eq!(
        a.post("/authen-api/api/v1/mfa/toggle", key, enable).await["code"],
        "SUCCESS"
    );
    let session = json!({ "email": "user@example.com", "client_id": client_id });
    let from_b = b
        .post("/authen-api/api/v1/session-token", key, session.clone())
        .await;
    assert_eq!(
        from_b["code"], "SUCCESS",
        "B knows the enrollment A stored: {from_b}"
    );
    let from_a = a
        .post("/authen-api/api/v1/session-token", key, session.clone())
        .await;
    let kid = |answer: &Value| {
        let token = answer["data"]["session_token"]
            .as_str()
            .expect("token")
            .to_owned();
        let header = token.split('.').next().expect("header").to_owned();
        let header: Value = serde_json::from_slice(
            &data_encoding::BASE64URL_NOPAD
                .decode(header.as_bytes())
                .expect("b64"),
        )
        .expect("json");
        header["kid"].clone()
    };
    assert_eq!(
        kid(&from_a),
        kid(&from_b),
        "both processes sign with the one shared key"
    );

    let rotated =
        run(eauthd(dir_a.path(), url).args(["admin", "rotate-api-key", client_id, "--json"]));
    assert!(rotated.status.success());
    for server in [&a, &b] {
        assert_eq!(
            server
                .post("/authen-api/api/v1/session-token", key, session.clone())
                .await["code"],
            "INVALID_API_KEY"
        );
    }
}

/// A callback endpoint that accepts connections and, until `answer` is set, never replies:
/// a delivery in flight for as long as the test wants.
struct StallingReceiver {
    url: String,
    answer: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl StallingReceiver {
    async fn start() -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncWriteExt;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://127.0.0.1:{}/cb",
            listener.local_addr().expect("address").port()
        );
        let answer = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, connections) = tokio::sync::mpsc::unbounded_channel();
        let answering = answer.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (answering, seen) = (answering.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut request = vec![0u8; 8192];
                    let read = tokio::io::AsyncReadExt::read(&mut stream, &mut request)
                        .await
                        .unwrap_or(0);
                    let line = String::from_utf8_lossy(&request[..read])
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    if answering.load(Ordering::SeqCst) {
                        let _ = seen.send(line);
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await;
                    } else {
                        let _ = seen.send(format!("stalled {line}"));
                        // Hold the connection open without a word.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                });
            }
        });
        Self {
            url,
            answer,
            connections,
        }
    }

    async fn next(&mut self, within: Duration) -> String {
        tokio::time::timeout(within, self.connections.recv())
            .await
            .expect("a callback in time")
            .expect("open")
    }
}

#[tokio::test]
async fn a_callback_cut_off_by_sigkill_is_delivered_after_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let mut receiver = StallingReceiver::start().await;
    let created = {
        let output = run(eauthd(dir.path(), None).args([
            "admin",
            "create-application",
            "--name",
            "Portal",
            "--ip",
            "127.0.0.1",
            "--callback-url",
            &receiver.url,
            "--redirect-uri",
            "https://portal.example.com/callback",
            "--json",
        ]));
        assert!(output.status.success());
        serde_json::from_slice::<Value>(&output.stdout).expect("JSON")
    };
    let (key, client_id) = (
        created["api_key"].as_str().expect("key"),
        created["client_id"].as_str().expect("id"),
    );

    // A session that nobody finishes ends as TIMEOUT after 2 s; its callback stalls in flight.
    let mut first = eauthd(dir.path(), None);
    first.env("EAUTH_SESSION_TTL_SECS", "2");
    let served = serve_command(first, dir.path()).await;
    let enable = json!({ "email": "user@example.com", "client_id": client_id, "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                         "action": "ENABLE", "type": "TOTP", "algorithm": "SHA1", "digits": 6, "period": 30 });
    assert_eq!(
        served
            .post("/authen-api/api/v1/mfa/toggle", key, enable)
            .await["code"],
        "SUCCESS"
    );
    let answer = served
        .post(
            "/authen-api/api/v1/session-token",
            key,
            json!({ "email": "user@example.com", "client_id": client_id }),
        )
        .await;
    let token = answer["data"]["session_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let stalled = receiver.next(Duration::from_secs(15)).await;
    assert!(
        stalled.starts_with("stalled GET /cb?result=false"),
        "{stalled}"
    );

    // Killed mid-delivery: no chance to record anything.
    drop(served);
    receiver
        .answer
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let _restarted = serve(dir.path(), None).await;
    let delivered = receiver.next(Duration::from_secs(40)).await;
    assert!(
        delivered.starts_with("GET /cb?result=false&session_token="),
        "{delivered}"
    );
    assert!(delivered.contains(&token), "the callback names the session");
}
