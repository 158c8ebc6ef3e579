//! The scenarios, in the order they run, each measured for the plan's duration on every
//! connection: the baseline, then the integrator's API calls and the browser's sign-in page.
//! Work that must be fresh (sessions nobody has opened, codes nobody has used) is prepared
//! before a scenario's clock starts.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::{
    load::{self, Job, Measured, Request},
    seed,
    server::{Eauthd, REDIRECT_URI},
};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) users: u64,
    pub(crate) connections: usize,
    pub(crate) duration: Duration,
    /// eauthd runs under callgrind, which counts its instructions (`--instructions`).
    pub(crate) instructions: bool,
}

/// What a scenario sends, and how many prepared requests it has, if it has a set number.
type Scenario = (Job, Option<usize>);

/// Turns each service takes in `--scale`'s scenarios (see [`run_scale`]).
const SCALE_ROUNDS: usize = 5;

/// One scenario's numbers.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScenarioResult {
    pub(crate) name: &'static str,
    pub(crate) request: &'static str,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) seconds: f64,
    pub(crate) requests_per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) ratio_to_baseline: f64,
    /// CPU time eauthd used during the scenario (all its threads, user and kernel), per
    /// request: on a machine whose cores are all busy, what a request costs is what sets its
    /// rate, and unlike the rate this hardly depends on what else the machine is doing.
    pub(crate) server_cpu_us_per_request: Option<f64>,
    /// The same for the load generator, which shares the cores.
    pub(crate) generator_cpu_us_per_request: Option<f64>,
    /// Instructions eauthd executed during the scenario per request, under `--instructions`.
    pub(crate) server_instructions_per_request: Option<f64>,
    pub(crate) note: Option<String>,
}

pub(crate) const BASELINE: &str = "baseline";
pub(crate) const SESSION_TOKEN: &str = "session-token";
pub(crate) const CODE_VERIFICATION: &str = "code verification";

/// The browser's anti-forgery cookie, one for every simulated browser: the page accepts a
/// well-formed one it did not set, and binds its form token to it.
const CSRF_COOKIE: &str = "__Host-eauth-csrf";
const BROWSER_NONCE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Never more prepared sessions than this for the page scenario.
const MAX_PAGE_SESSIONS: usize = 300_000;

/// The service as the scenarios call it.
struct Api {
    base_url: String,
    client_id: String,
    api_key: String,
    users: u64,
}

impl Api {
    fn post_json(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: String,
    ) -> reqwest::RequestBuilder {
        client
            .post(format!("{}/authen-api/api/v1/{path}", self.base_url))
            .header("x-api-key", &self.api_key)
            .header("content-type", "application/json")
            .body(body)
    }

    fn session_token(&self, client: &reqwest::Client, user: u64) -> reqwest::RequestBuilder {
        self.post_json(
            client,
            "session-token",
            format!(
                r#"{{"email":"{}","client_id":"{}"}}"#,
                seed::email(user),
                self.client_id
            ),
        )
    }

    fn page_url(&self, token: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("signin_method", "redirect")
            .append_pair("session_token", token)
            .append_pair("redirect_uri", REDIRECT_URI)
            .finish();
        format!("{}/start-authentication?{query}", self.base_url)
    }
}

/// A session prepared for the sign-in page: its token, and for a code, its form token and user.
#[derive(Debug, Clone)]
struct Prepared {
    token: String,
    csrf: String,
    user: u64,
}

/// One service as the scenarios drive it: its process, keep-alive connections and API.
struct Target<'s> {
    server: &'s Eauthd,
    clients: Vec<reqwest::Client>,
    api: Arc<Api>,
}

impl<'s> Target<'s> {
    async fn connect(server: &'s Eauthd, plan: &Plan) -> anyhow::Result<Self> {
        Ok(Self {
            server,
            clients: load::connect(plan.connections, &server.certificate, &server.base_url).await?,
            api: Arc::new(Api {
                base_url: server.base_url.clone(),
                client_id: server.credentials.client_id.clone(),
                api_key: server.credentials.api_key.clone(),
                users: server.users,
            }),
        })
    }
}

/// Runs every scenario against `server`.
pub(crate) async fn run(server: &Eauthd, plan: &Plan) -> anyhow::Result<Vec<ScenarioResult>> {
    let target = Target::connect(server, plan).await?;
    let api = &target.api;
    let secs = plan.duration.as_secs_f64();
    let mut results = Vec::new();

    let baseline = measure(&target, plan, BASELINE, "GET /healthz", None, healthz(api)).await;
    let baseline_rps = baseline.requests_per_second;
    results.push(baseline);
    let session_token_result = measure(
        &target,
        plan,
        SESSION_TOKEN,
        "POST session-token",
        Some(baseline_rps),
        session_token(api),
    )
    .await;
    // Sessions are prepared through session-token, so its rate says how long preparing takes.
    // The page does little more than session-token and verifying a code does more: these
    // pools outlast the scenarios unless they get much faster than session-token.
    let sessions_per_run = session_token_result.requests_per_second * secs;
    results.push(session_token_result);
    results.push(
        measure(
            &target,
            plan,
            "mfa/toggle",
            "POST mfa/toggle ENABLE",
            Some(baseline_rps),
            toggle(api),
        )
        .await,
    );
    let wanted = ((sessions_per_run * 2.0) as usize).clamp(plan.connections * 4, MAX_PAGE_SESSIONS);
    let users = api.users;
    let pages = prepare(&target, wanted, false, move |_, rng| rng.below(users)).await?;
    let mut finished_sessions: Vec<String> = pages.iter().map(|p| p.token.clone()).collect();
    results.push(
        measure(
            &target,
            plan,
            "sign-in page",
            "GET /start-authentication",
            Some(baseline_rps),
            page(api, pages),
        )
        .await,
    );
    // A distinct user for every code, so that no code is refused as a replay.
    let wanted = ((sessions_per_run * 1.5) as u64).clamp(1, users) as usize;
    let codes = prepare(&target, wanted, true, move |k, _| {
        (k as u64 * users) / wanted as u64
    })
    .await?;
    finished_sessions.extend(codes.iter().map(|p| p.token.clone()));
    results.push(
        measure(
            &target,
            plan,
            CODE_VERIFICATION,
            "POST /start-authentication (code)",
            Some(baseline_rps),
            verify(api, codes),
        )
        .await,
    );
    results.push(
        measure(
            &target,
            plan,
            "session-result",
            "POST session-result",
            Some(baseline_rps),
            session_result(api, finished_sessions),
        )
        .await,
    );
    Ok(results)
}

/// `--scale`: the baseline, session-token and code verification on two services at once,
/// `few` and `many` users, measured in turns ([`SCALE_ROUNDS`] each) so that both see the
/// same minutes of a machine whose speed changes from one minute to the next: measured one
/// after the other, the two baselines differed by a third and decided the comparison.
/// Codes: each service verifies the same number, as many as the smaller one has users (a
/// user's code counts once), a share in each turn.
pub(crate) async fn run_scale(
    few: &Eauthd,
    many: &Eauthd,
    plan: &Plan,
) -> anyhow::Result<[Vec<ScenarioResult>; 2]> {
    let targets = [
        Target::connect(few, plan).await?,
        Target::connect(many, plan).await?,
    ];
    let window = plan.duration / SCALE_ROUNDS as u32;
    let timed = |job: fn(&Arc<Api>) -> Scenario| {
        (0..SCALE_ROUNDS)
            .map(|_| targets.iter().map(|t| (job(&t.api).0, window)).collect())
            .collect::<Vec<_>>()
    };
    let baselines = measure_in_turns(
        &targets,
        BASELINE,
        "GET /healthz",
        [None, None],
        timed(healthz),
        [None, None],
    )
    .await;
    let base = [
        Some(baselines[0].requests_per_second),
        Some(baselines[1].requests_per_second),
    ];
    let tokens = measure_in_turns(
        &targets,
        SESSION_TOKEN,
        "POST session-token",
        base,
        timed(session_token),
        [None, None],
    )
    .await;
    let count = few.users.min(many.users) as usize;
    let mut prepared = Vec::new();
    for target in &targets {
        let users = target.api.users;
        let codes = prepare(target, count, true, move |k, _| {
            (k as u64 * users) / count as u64
        })
        .await?;
        prepared.push(codes);
    }
    let share = count.div_ceil(SCALE_ROUNDS).max(1);
    let rounds = (0..SCALE_ROUNDS)
        .map(|round| {
            targets
                .iter()
                .zip(&prepared)
                .map(|(target, codes)| {
                    let turn = codes
                        .iter()
                        .skip(round * share)
                        .take(share)
                        .cloned()
                        .collect();
                    // Until its share is done: the turns of the two are of equal work.
                    (verify(&target.api, turn).0, 10 * plan.duration)
                })
                .collect()
        })
        .collect();
    let codes = measure_in_turns(
        &targets,
        CODE_VERIFICATION,
        "POST /start-authentication (code)",
        base,
        rounds,
        [None, None],
    )
    .await;
    let [few_baseline, many_baseline] = baselines;
    let [few_tokens, many_tokens] = tokens;
    let [few_codes, many_codes] = codes;
    Ok([
        vec![few_baseline, few_tokens, few_codes],
        vec![many_baseline, many_tokens, many_codes],
    ])
}

/// Drives `job` for the plan's duration and summarises it.
async fn measure(
    target: &Target<'_>,
    plan: &Plan,
    name: &'static str,
    request: &'static str,
    baseline_rps: Option<f64>,
    (job, prepared): Scenario,
) -> ScenarioResult {
    let [result] = measure_in_turns(
        std::array::from_ref(target),
        name,
        request,
        [baseline_rps],
        vec![vec![(job, plan.duration)]],
        [prepared],
    )
    .await;
    result
}

/// Drives a scenario on each of `targets` in turns: in round `r`, `rounds[r][t]` (what to send,
/// and for how long at most) on target `t`, one target after the other. Each target's windows
/// add up to its result.
async fn measure_in_turns<const N: usize>(
    targets: &[Target<'_>; N],
    name: &'static str,
    request: &'static str,
    baselines: [Option<f64>; N],
    rounds: Vec<Vec<(Job, Duration)>>,
    prepared: [Option<usize>; N],
) -> [ScenarioResult; N] {
    eprintln!(
        "eauth-bench: {name} ({request}) in {} turn(s) on {} service(s)",
        rounds.len(),
        targets.len()
    );
    let mut measured: [Measured; N] = std::array::from_fn(|_| Measured::empty());
    let mut spent: [Spent; N] = std::array::from_fn(|_| Spent::nothing());
    for round in rounds {
        for (((target, (job, duration)), measured), spent) in
            targets.iter().zip(round).zip(&mut measured).zip(&mut spent)
        {
            let pid = target.server.pid.to_string();
            target.server.count_instructions_from_now().await;
            let before = (load::cpu_time(&pid), load::cpu_time("self"));
            measured.add(&load::drive(&target.clients, duration, job).await);
            let used = |process: &str, before: Option<Duration>| {
                Some(load::cpu_time(process)?.saturating_sub(before?))
            };
            spent.add(&Spent {
                server: used(&pid, before.0),
                generator: used("self", before.1),
                server_instructions: target.server.instructions_counted().await,
            });
        }
    }
    std::array::from_fn(|t| {
        summarise(
            name,
            request,
            &measured[t],
            &spent[t],
            baselines[t],
            prepared[t],
        )
    })
}

/// CPU time used during a scenario, where the system tells, and eauthd's instructions under
/// callgrind.
struct Spent {
    server: Option<Duration>,
    generator: Option<Duration>,
    server_instructions: Option<u64>,
}

impl Spent {
    fn nothing() -> Self {
        Self {
            server: Some(Duration::ZERO),
            generator: Some(Duration::ZERO),
            server_instructions: Some(0),
        }
    }

    /// Adds another window's: a total is known while every window's is.
    fn add(&mut self, other: &Self) {
        self.server = self.server.zip(other.server).map(|(a, b)| a + b);
        self.generator = self.generator.zip(other.generator).map(|(a, b)| a + b);
        self.server_instructions = self
            .server_instructions
            .zip(other.server_instructions)
            .map(|(a, b)| a + b);
    }
}

fn summarise(
    name: &'static str,
    request: &'static str,
    measured: &Measured,
    spent: &Spent,
    baseline_rps: Option<f64>,
    prepared: Option<usize>,
) -> ScenarioResult {
    let seconds = measured.elapsed.as_secs_f64();
    let rps = measured.requests() as f64 / seconds.max(f64::EPSILON);
    let ms = |q: f64| measured.latency.value_at_quantile(q) as f64 / 1000.0;
    let note = match (measured.exhausted, prepared) {
        (true, Some(count)) => Some(format!(
            "all {count} prepared sessions used after {seconds:.1} s"
        )),
        _ => None,
    };
    ScenarioResult {
        name,
        request,
        requests: measured.requests(),
        errors: measured.errors,
        seconds,
        requests_per_second: rps,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        ratio_to_baseline: baseline_rps.map_or(1.0, |base| rps / base),
        server_cpu_us_per_request: per_request(spent.server, measured.requests()),
        generator_cpu_us_per_request: per_request(spent.generator, measured.requests()),
        server_instructions_per_request: spent
            .server_instructions
            .filter(|_| measured.requests() > 0)
            .map(|count| count as f64 / measured.requests() as f64),
        note,
    }
}

fn per_request(cpu: Option<Duration>, requests: u64) -> Option<f64> {
    cpu.filter(|_| requests > 0)
        .map(|cpu| cpu.as_secs_f64() * 1e6 / requests as f64)
}

/// Sends `request`: whether it was answered with a 2xx, reading the body so that the
/// connection can be reused.
async fn ok(request: reqwest::RequestBuilder) -> bool {
    match request.send().await {
        Ok(response) => {
            let success = response.status().is_success();
            response.bytes().await.is_ok() && success
        }
        Err(_) => false,
    }
}

fn job(
    f: impl Fn(&reqwest::Client, &mut load::Rng) -> Option<Request> + Send + Sync + 'static,
) -> Job {
    Arc::new(f)
}

fn healthz(api: &Arc<Api>) -> Scenario {
    let url = format!("{}/healthz", api.base_url);
    (
        job(move |client, _| Some(Box::pin(ok(client.get(&url))))),
        None,
    )
}

fn session_token(api: &Arc<Api>) -> Scenario {
    let api = api.clone();
    (
        job(move |client, rng| {
            let request = api.session_token(client, rng.below(api.users));
            Some(Box::pin(ok(request)))
        }),
        None,
    )
}

fn toggle(api: &Arc<Api>) -> Scenario {
    let api = api.clone();
    (
        job(move |client, rng| {
            let user = rng.below(api.users);
            let body = format!(
                r#"{{"client_id":"{}","email":"{}","secret":"{}","action":"ENABLE","type":"TOTP","algorithm":"SHA1","digits":6,"period":30}}"#,
                api.client_id,
                seed::email(user),
                seed::secret(user).to_base32()
            );
            Some(Box::pin(ok(api.post_json(client, "mfa/toggle", body))))
        }),
        None,
    )
}

/// Hands out each prepared item once, across all connections.
fn take_each<T: Clone + Send + Sync + 'static>(
    items: Vec<T>,
) -> impl Fn() -> Option<T> + Send + Sync {
    let next = AtomicUsize::new(0);
    move || items.get(next.fetch_add(1, Ordering::Relaxed)).cloned()
}

fn page(api: &Arc<Api>, sessions: Vec<Prepared>) -> Scenario {
    let (api, count, next) = (api.clone(), sessions.len(), take_each(sessions));
    (
        job(move |client, _| {
            let session = next()?;
            let request = client.get(api.page_url(&session.token));
            Some(Box::pin(ok(request)))
        }),
        Some(count),
    )
}

fn verify(api: &Arc<Api>, sessions: Vec<Prepared>) -> Scenario {
    let (api, count, next) = (api.clone(), sessions.len(), take_each(sessions));
    (
        job(move |client, _| {
            let session = next()?;
            let request = client
                .post(format!("{}/start-authentication", api.base_url))
                .header("cookie", format!("{CSRF_COOKIE}={BROWSER_NONCE}"))
                .header("content-type", "application/x-www-form-urlencoded");
            Some(Box::pin(async move {
                // The code of the moment the request leaves, as the user would type it.
                let code = seed::secret(session.user).code_at(seed::params(), unix_now());
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("signin_method", "redirect")
                    .append_pair("session_token", &session.token)
                    .append_pair("redirect_uri", REDIRECT_URI)
                    .append_pair("csrf", &session.csrf)
                    .append_pair("code", &code)
                    .append_pair("action", "verify")
                    .finish();
                match request.body(body).send().await {
                    // Approved: the 303 back to the portal, carrying the token.
                    Ok(response) => {
                        let approved = response.status() == reqwest::StatusCode::SEE_OTHER
                            && response
                                .headers()
                                .get("location")
                                .and_then(|l| l.to_str().ok())
                                .is_some_and(|l| {
                                    l.starts_with(REDIRECT_URI) && l.contains("session_token=")
                                });
                        response.bytes().await.is_ok() && approved
                    }
                    Err(_) => false,
                }
            }))
        }),
        Some(count),
    )
}

fn session_result(api: &Arc<Api>, tokens: Vec<String>) -> Scenario {
    let api = api.clone();
    (
        job(move |client, rng| {
            let token = tokens.get(rng.below(tokens.len() as u64) as usize)?;
            let body = format!(
                r#"{{"client_id":"{}","session_token":"{token}"}}"#,
                api.client_id
            );
            let request = api.post_json(client, "session-result", body);
            Some(Box::pin(async move {
                match request.send().await {
                    Ok(response) if response.status().is_success() => response
                        .text()
                        .await
                        .is_ok_and(|body| body.contains(r#""code":"SUCCESS""#)),
                    _ => false,
                }
            }))
        }),
        None,
    )
}

/// Creates `count` sessions, the `k`th for user `user(k, rng)`, through the API; with
/// `open_page`, also opens each one's sign-in page in a browser with the benchmark's cookie,
/// for the form token a code is posted with. Not measured.
async fn prepare(
    target: &Target<'_>,
    count: usize,
    open_page: bool,
    user: impl Fn(usize, &mut load::Rng) -> u64 + Send + Sync + 'static,
) -> anyhow::Result<Vec<Prepared>> {
    eprintln!(
        "eauth-bench: preparing {count} sessions{}",
        if open_page { " and their pages" } else { "" }
    );
    let prepared: Arc<Mutex<Vec<Option<Prepared>>>> = Arc::new(Mutex::new(vec![None; count]));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let (api, out, failed) = (target.api.clone(), prepared.clone(), failures.clone());
    let prepare_one: Job = Arc::new(move |client, rng| {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= count {
            return None;
        }
        let (api, client, out, failed, user) = (
            api.clone(),
            client.clone(),
            out.clone(),
            failed.clone(),
            user(k, rng),
        );
        Some(Box::pin(async move {
            match prepare_session(&api, &client, user, open_page).await {
                Ok(session) => {
                    out.lock().expect("BUG: poisoned")[k] = Some(session);
                    true
                }
                Err(error) => {
                    failed
                        .lock()
                        .expect("BUG: poisoned")
                        .push(format!("{error:#}"));
                    false
                }
            }
        }))
    });
    let measured = load::drive(&target.clients, Duration::from_secs(24 * 3600), prepare_one).await;
    if measured.errors > 0 {
        let failures = failures.lock().expect("BUG: poisoned");
        bail!(
            "{} of {count} sessions could not be prepared; first: {}",
            measured.errors,
            failures.first().map_or("?", String::as_str)
        );
    }
    let prepared = std::mem::take(&mut *prepared.lock().expect("BUG: poisoned"));
    Ok(prepared.into_iter().flatten().collect())
}

async fn prepare_session(
    api: &Api,
    client: &reqwest::Client,
    user: u64,
    open_page: bool,
) -> anyhow::Result<Prepared> {
    let response = api.session_token(client, user).send().await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    let token = body["data"]["session_token"]
        .as_str()
        .with_context(|| format!("session-token answered {status}: {body}"))?
        .to_owned();
    let mut csrf = String::new();
    if open_page {
        let response = client
            .get(api.page_url(&token))
            .header("cookie", format!("{CSRF_COOKIE}={BROWSER_NONCE}"))
            .send()
            .await?;
        let status = response.status();
        let html = response.text().await?;
        csrf = form_field(&html, "csrf")
            .with_context(|| format!("the sign-in page ({status}) has no csrf field"))?
            .to_owned();
    }
    Ok(Prepared { token, csrf, user })
}

/// The value of a hidden field of the sign-in page's form.
fn form_field<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    html[start..].split('"').next()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
