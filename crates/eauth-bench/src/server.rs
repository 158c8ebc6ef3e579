//! The `eauthd` under test: built with cargo, run as its own process on a fresh data directory
//! and database, its application registered with `eauthd admin`, its users seeded, its peak
//! memory read from `/proc`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use eauth_core::MasterKey;
use eauth_store::testing::TestDatabase;
use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::{scenarios::Plan, seed};

/// Set it to run against PostgreSQL (a fresh schema in that database, dropped afterwards).
pub(crate) const DATABASE_ENV: &str = "EAUTH_BENCH_DATABASE_URL";
/// Passed to the service as `EAUTH_LOG` (its log goes to `target/bench/eauthd-*.log`).
const LOG_ENV: &str = "EAUTH_BENCH_LOG";
/// Where the sign-in page may send the browser back to; never contacted.
pub(crate) const REDIRECT_URI: &str = "https://portal.example.com/callback";
/// The longest session lifetime the service allows: sessions prepared before a scenario must
/// still be pending when it runs, and none may time out (and call back) in the middle.
const SESSION_TTL_SECS: &str = "3600";

/// `CARGO_TARGET_DIR`, else the workspace's `target/`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `sqlite` or `postgres`, as chosen by the environment.
pub(crate) fn backend_name() -> &'static str {
    if std::env::var_os(DATABASE_ENV).is_some() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// Builds `eauthd` in release mode and returns the path cargo reports for it.
pub(crate) fn build_release_eauthd() -> anyhow::Result<PathBuf> {
    eprintln!("eauth-bench: cargo build --release --bin eauthd");
    let output = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args([
            "build",
            "--release",
            "--bin",
            "eauthd",
            "--message-format=json",
        ])
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!("cargo build --release --bin eauthd failed");
    }
    #[derive(Deserialize)]
    struct Message {
        reason: String,
        executable: Option<PathBuf>,
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Message>(line).ok())
        .filter(|m| m.reason == "compiler-artifact")
        .find_map(|m| m.executable)
        .context("cargo reported no eauthd executable")
}

/// What `eauthd admin create-application --json` prints.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Credentials {
    pub(crate) client_id: String,
    pub(crate) api_key: String,
}

/// Fails unless valgrind's callgrind can be run, for `--instructions`.
pub(crate) async fn check_callgrind() -> anyhow::Result<()> {
    let found = Command::new("callgrind_control")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success());
    anyhow::ensure!(
        found,
        "--instructions needs valgrind (Debian's package valgrind: apt-get install valgrind)"
    );
    Ok(())
}

/// A running `eauthd` and everything it owns.
pub(crate) struct Eauthd {
    child: Child,
    pub(crate) pid: u32,
    /// `https://127.0.0.1:PORT`.
    pub(crate) base_url: String,
    /// The self-signed certificate it generated, to trust.
    pub(crate) certificate: Vec<u8>,
    pub(crate) credentials: Credentials,
    /// Enrolled users, seeded before it started.
    pub(crate) users: u64,
    pub(crate) seed_time: Duration,
    log: PathBuf,
    _data_dir: tempfile::TempDir,
    database: Option<TestDatabase>,
    /// Where callgrind writes its counts, when the service runs under it.
    callgrind: Option<PathBuf>,
}

impl Eauthd {
    /// A fresh data directory and database, an application whose callbacks go to
    /// `callback_url`, `users` enrolled users, and the service started on a free port.
    pub(crate) async fn start(
        binary: &Path,
        out: &Path,
        plan: &Plan,
        callback_url: &str,
    ) -> anyhow::Result<Self> {
        let users = plan.users;
        // On the real disk next to the reports, not in a tmpfs: commits must really reach it.
        let data_dir = tempfile::Builder::new()
            .prefix("data-")
            .tempdir_in(out)
            .context("cannot create a data directory")?;
        let (database_url, database) = match std::env::var(DATABASE_ENV) {
            Ok(base) => {
                let db = TestDatabase::postgres_schema(&base, "bench")
                    .await
                    .with_context(|| format!("cannot create a schema in {DATABASE_ENV}"))?;
                (db.url().to_owned(), Some(db))
            }
            Err(_) => (
                format!("sqlite://{}", data_dir.path().join("eauth.db").display()),
                None,
            ),
        };
        let (master_key, master_hex) = MasterKey::generate();
        let configure = |command: &mut Command| {
            // Nothing of the caller's own eauthd settings may leak into the service under test.
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("EAUTH_") {
                    command.env_remove(name);
                }
            }
            command
                .env("EAUTH_DATA_DIR", data_dir.path())
                .env("EAUTH_DATABASE_URL", &database_url)
                .env("EAUTH_MASTER_KEY", &master_hex)
                .env("EAUTH_LISTEN", "127.0.0.1:0")
                .env("EAUTH_SESSION_TTL_SECS", SESSION_TTL_SECS)
                // The portal's callback endpoint is the generator's, on loopback.
                .env("EAUTH_PRIVATE_CALLBACKS", "true")
                .kill_on_drop(true);
            // The service's own log filter, for profiling (e.g. `eauth_store=trace`).
            if let Some(filter) = std::env::var_os(LOG_ENV) {
                command.env("EAUTH_LOG", filter);
            }
        };

        let mut admin = Command::new(binary);
        admin.args([
            "admin",
            "create-application",
            "--json",
            "--name",
            "Benchmark Portal",
            "--ip",
            "127.0.0.1",
            "--callback-url",
            callback_url,
            "--redirect-uri",
            REDIRECT_URI,
        ]);
        configure(&mut admin);
        let created = admin
            .output()
            .await
            .with_context(|| format!("cannot run {}", binary.display()))?;
        if !created.status.success() {
            bail!(
                "eauthd admin create-application failed: {}",
                String::from_utf8_lossy(&created.stderr)
            );
        }
        let credentials: Credentials = serde_json::from_slice(&created.stdout)
            .context("eauthd admin create-application --json printed no credentials")?;

        let started = Instant::now();
        seed::enroll(&database_url, &master_key, &credentials.client_id, users).await?;
        let seed_time = started.elapsed();

        let log = out.join(format!("eauthd-{}-{users}.log", backend_name()));
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let callgrind = plan.instructions.then(|| out.join("callgrind"));
        let mut serve = match &callgrind {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let mut valgrind = Command::new("valgrind");
                valgrind
                    .arg("--tool=callgrind")
                    .arg("--dump-instr=no")
                    .arg(format!(
                        "--callgrind-out-file={}",
                        dir.join("callgrind.%p").display()
                    ))
                    .arg(binary);
                valgrind
            }
            None => Command::new(binary),
        };
        serve.arg("serve");
        configure(&mut serve);
        let mut child = serve
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id().context("eauthd exited at once")?;
        let stdout = child.stdout.take().context("BUG: stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let base_url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("eauthd serving ") {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    return Ok(url.to_owned());
                }
            }
            bail!("eauthd exited before serving (see {})", log.display())
        })
        .await
        .context("eauthd did not start within 60 s")??;
        // Keep reading stdout so that the service never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let certificate = std::fs::read(data_dir.path().join("tls/cert.pem"))
            .context("eauthd generated no certificate")?;
        Ok(Self {
            child,
            pid,
            base_url,
            certificate,
            credentials,
            users,
            seed_time,
            log,
            _data_dir: data_dir,
            database,
            callgrind,
        })
    }

    /// Under callgrind, starts counting the service's instructions afresh.
    pub(crate) async fn count_instructions_from_now(&self) {
        if self.callgrind.is_some() {
            self.callgrind_control("--zero").await;
        }
    }

    /// Under callgrind, the instructions the service executed since
    /// [`Eauthd::count_instructions_from_now`]: callgrind writes them to a file of their own.
    pub(crate) async fn instructions_counted(&self) -> Option<u64> {
        let dir = self.callgrind.as_ref()?;
        self.callgrind_control("--dump").await;
        // Dumps are numbered callgrind.<pid>.<n>: the newest one is this scenario's.
        let prefix = format!("callgrind.{}.", self.pid);
        let newest = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let part: u64 = name.strip_prefix(&prefix)?.parse().ok()?;
                Some((part, name))
            })
            .max()?;
        let dump = std::fs::read_to_string(dir.join(newest.1)).ok()?;
        dump.lines()
            .find_map(|line| line.strip_prefix("summary:"))
            .and_then(|count| count.trim().parse().ok())
    }

    async fn callgrind_control(&self, action: &str) {
        let done = Command::new("callgrind_control")
            .arg(action)
            .arg(self.pid.to_string())
            .stdout(Stdio::null())
            .status()
            .await;
        if !done.is_ok_and(|status| status.success()) {
            eprintln!("eauth-bench: callgrind_control {action} failed");
        }
    }

    /// The highest resident set size of the service so far (`VmHWM`), in KiB.
    pub(crate) fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The service's log.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// Stops the service with SIGTERM (as an operator would), and drops its database.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await.context("cannot stop eauthd")?;
        }
        if let Some(database) = self.database.take() {
            database
                .drop_schema()
                .await
                .context("cannot drop the benchmark's schema")?;
        }
        Ok(())
    }
}
