//! The load generator: one reqwest client per simulated connection (HTTP/1.1 keep-alive over
//! rustls on ring), each sending its next request as soon as the last one was answered, for a
//! fixed time; latencies go into an HDR histogram. Also the portal's callback endpoint, so that
//! approved sign-ins are delivered somewhere real.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use hdrhistogram::Histogram;

/// One request to make, resolving to whether it succeeded.
pub(crate) type Request = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Makes the next request for a connection, or `None` when there is no more work prepared.
pub(crate) type Job = Arc<dyn Fn(&reqwest::Client, &mut Rng) -> Option<Request> + Send + Sync>;

/// The splitmix64 step: a fast, good-enough generator for picking users.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Each connection's own random numbers.
pub(crate) struct Rng(u64);

impl Rng {
    /// A number in `0..bound`.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        splitmix64(&mut self.0) % bound.max(1)
    }
}

/// One keep-alive HTTPS connection per client, trusting the service's certificate only.
pub(crate) async fn connect(
    count: usize,
    certificate: &[u8],
    base_url: &str,
) -> anyhow::Result<Vec<reqwest::Client>> {
    let root = reqwest::Certificate::from_pem(certificate).context("the service's certificate")?;
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let client = reqwest::Client::builder()
            .tls_certs_only([root.clone()])
            .http1_only()
            .pool_max_idle_per_host(1)
            // The sign-in page answers a verified code with a 303: that is the result to check.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build an HTTPS client")?;
        clients.push(client);
    }
    // Open every connection (TCP and TLS handshakes) before anything is measured.
    let health = format!("{base_url}/healthz");
    for client in &clients {
        let response = client
            .get(&health)
            .send()
            .await
            .context("cannot reach the service")?;
        anyhow::ensure!(
            response.status().is_success(),
            "/healthz answered {}",
            response.status()
        );
        response.bytes().await?;
    }
    Ok(clients)
}

/// What one scenario measured.
pub(crate) struct Measured {
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    /// Microseconds.
    pub(crate) latency: Histogram<u64>,
    /// The prepared work ran out before the time was up.
    pub(crate) exhausted: bool,
}

impl Measured {
    /// Nothing measured yet.
    pub(crate) fn empty() -> Self {
        Self {
            errors: 0,
            elapsed: Duration::ZERO,
            latency: histogram(),
            exhausted: false,
        }
    }

    /// Requests answered, each with its latency recorded.
    pub(crate) fn requests(&self) -> u64 {
        self.latency.len()
    }

    /// Adds what another window (or load task) of the same scenario measured.
    pub(crate) fn add(&mut self, other: &Self) {
        self.latency
            .add(&other.latency)
            .expect("BUG: histograms with the same bounds add");
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.exhausted |= other.exhausted;
    }
}

/// The kernel's unit for `/proc/<pid>/stat` times, fixed at 100 on x86 and ARM whatever the
/// kernel's own tick rate.
const USER_HZ: f64 = 100.0;

/// The CPU time `process` (`"self"` or a pid) has used so far, all its threads, user and
/// kernel, from `/proc/<process>/stat`; `None` where there is no such file.
pub(crate) fn cpu_time(process: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields are counted after it, from
    // the state (field 3); utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = |index: usize| fields.get(index)?.parse::<u64>().ok();
    let (user, kernel) = (ticks(11)?, ticks(12)?);
    Some(Duration::from_secs_f64((user + kernel) as f64 / USER_HZ))
}

/// Sends `job`'s requests on every connection at once until `duration` has passed or the work
/// runs out, and measures each request from its start to its answer.
pub(crate) async fn drive(clients: &[reqwest::Client], duration: Duration, job: Job) -> Measured {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(index, client)| {
            let (client, job) = (client.clone(), job.clone());
            tokio::spawn(async move {
                let mut rng = Rng(0xBE4C_u64.wrapping_mul(index as u64 + 1) ^ now_nanos());
                let mut latency = histogram();
                let (mut errors, mut exhausted) = (0, false);
                while Instant::now() < deadline {
                    let Some(request) = job(&client, &mut rng) else {
                        exhausted = true;
                        break;
                    };
                    let sent = Instant::now();
                    let ok = request.await;
                    let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    latency.saturating_record(micros.max(1));
                    errors += u64::from(!ok);
                }
                (latency, errors, exhausted)
            })
        })
        .collect();
    let mut measured = Measured::empty();
    for task in tasks {
        let (latency, errors, exhausted) = task.await.expect("BUG: a load task panicked");
        measured.add(&Measured {
            errors,
            elapsed: Duration::ZERO,
            latency,
            exhausted,
        });
    }
    measured.elapsed = started.elapsed();
    measured
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("BUG: valid histogram bounds")
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into())
}

/// The portal's callback endpoint: plain HTTP on loopback (which the service allows for
/// loopback hosts), answering every delivery with 204 and counting them.
pub(crate) struct CallbackReceiver {
    address: std::net::SocketAddr,
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CallbackReceiver {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let app = axum::Router::new().route(
            "/callback",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                async { axum::http::StatusCode::NO_CONTENT }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            received,
            task,
        })
    }

    /// The callback URL to register.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/callback", self.address)
    }

    /// Deliveries so far.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for CallbackReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
