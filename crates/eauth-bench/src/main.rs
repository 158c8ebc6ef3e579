//! `eauth-bench`: `eauthd` under load, each scenario reported as a ratio to a baseline measured
//! in the same run, so that numbers from a shared, noisy machine can still be compared.
//!
//! It builds and starts the release `eauthd` on a fresh data directory (SQLite, or a fresh
//! schema in `EAUTH_BENCH_DATABASE_URL`), registers an application, seeds enrolled users with
//! batched inserts, then drives HTTPS load on loopback from this process (reqwest over rustls
//! on ring, one keep-alive connection per simulated client) through each scenario in turn.
//! Results go to `target/bench/` as JSON, a Markdown table and an SVG chart.

mod load;
mod report;
mod scenarios;
mod seed;
mod server;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Parser;

use crate::{
    report::{Report, RunReport, ScaleReport},
    scenarios::Plan,
    server::Eauthd,
};

/// The benchmark of eauthd.
#[derive(Parser, Debug)]
#[command(name = "eauth-bench", version)]
struct Args {
    /// Enrolled users to seed [default: 10000; 200 with --smoke].
    #[arg(long)]
    users: Option<u64>,
    /// Concurrent keep-alive connections [default: 64; 4 with --smoke].
    #[arg(long)]
    connections: Option<usize>,
    /// Seconds per scenario [default: 10; 1.5 with --smoke].
    #[arg(long)]
    duration: Option<f64>,
    /// The eauthd binary to run, instead of building the release one.
    #[arg(long, value_name = "PATH")]
    eauthd: Option<PathBuf>,
    /// Also run session-token and code verification at 1 000 and at 1 000 000 users, and
    /// report the ratio between them.
    #[arg(long)]
    scale: bool,
    /// A quick run for CI: every scenario briefly with few connections; exits non-zero on any
    /// error.
    #[arg(long)]
    smoke: bool,
    /// Run eauthd under valgrind's callgrind and report, for each scenario, the instructions
    /// it executed per request: a cost that stays the same from run to run on a machine
    /// whose speed does not. Rates, latencies and memory are then valgrind's, not the
    /// service's; compare them only with other runs under callgrind.
    #[arg(long)]
    instructions: bool,
    /// Where the reports go [default: <target dir>/bench].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("BUG: no other TLS crypto provider is installed before main");
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the async runtime");
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("eauth-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs what `args` ask for; `false` when a smoke run saw errors.
async fn run(args: Args) -> anyhow::Result<bool> {
    let plan = Plan {
        users: args.users.unwrap_or(if args.smoke { 200 } else { 10_000 }),
        connections: args.connections.unwrap_or(if args.smoke { 4 } else { 64 }),
        duration: Duration::from_secs_f64(args.duration.unwrap_or(if args.smoke {
            1.5
        } else {
            10.0
        })),
        instructions: args.instructions,
    };
    if plan.instructions {
        server::check_callgrind().await?;
    }
    anyhow::ensure!(plan.users >= 1, "--users must be at least 1");
    anyhow::ensure!(plan.connections >= 1, "--connections must be at least 1");
    let out = match args.out {
        Some(dir) => dir,
        None => server::target_dir().join("bench"),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let eauthd = match args.eauthd {
        Some(path) => path,
        None => server::build_release_eauthd()?,
    };
    eprintln!(
        "eauth-bench: {} on {}, {} users, {} connections, {:.1} s per scenario",
        eauthd.display(),
        server::backend_name(),
        plan.users,
        plan.connections,
        plan.duration.as_secs_f64()
    );

    let main_run = run_once(&eauthd, &out, &plan).await?;
    let scale = if args.scale {
        Some(run_scale(&eauthd, &out, &plan).await?)
    } else {
        None
    };
    let report = Report::new(&plan, main_run, scale, args.smoke);
    let written = report.write(&out)?;
    println!("{}", report.markdown());
    eprintln!("eauth-bench: wrote {}", written.join(", "));
    let errors = report.total_errors();
    if args.smoke && errors > 0 {
        eprintln!("eauth-bench: {errors} errors in the smoke run");
        return Ok(false);
    }
    Ok(true)
}

/// One server, seeded with `plan.users`, through every scenario.
async fn run_once(
    eauthd: &std::path::Path,
    out: &std::path::Path,
    plan: &Plan,
) -> anyhow::Result<RunReport> {
    let receiver = load::CallbackReceiver::start().await?;
    let server = start(eauthd, out, plan, &receiver).await?;
    let outcome = scenarios::run(&server, plan).await;
    finish(server, outcome, &receiver).await
}

/// `--scale`: two servers side by side, with [`SCALE_USERS`], measured in turns.
async fn run_scale(
    eauthd: &std::path::Path,
    out: &std::path::Path,
    plan: &Plan,
) -> anyhow::Result<ScaleReport> {
    let receiver = load::CallbackReceiver::start().await?;
    let [few, many] = SCALE_USERS.map(|users| Plan { users, ..*plan });
    let few = start(eauthd, out, &few, &receiver).await?;
    let many = start(eauthd, out, &many, &receiver).await?;
    let [few_results, many_results] = match scenarios::run_scale(&few, &many, plan).await {
        Ok(results) => results.map(Ok),
        Err(error) => {
            let message = format!("{error:#}");
            [Err(error), Err(anyhow::anyhow!(message))]
        }
    };
    Ok(ScaleReport::new(vec![
        finish(few, few_results, &receiver).await?,
        finish(many, many_results, &receiver).await?,
    ]))
}

/// The users of the two servers `--scale` compares.
const SCALE_USERS: [u64; 2] = [1_000, 1_000_000];

/// A server started and seeded for `plan`.
async fn start(
    eauthd: &std::path::Path,
    out: &std::path::Path,
    plan: &Plan,
    receiver: &load::CallbackReceiver,
) -> anyhow::Result<Eauthd> {
    let server = Eauthd::start(eauthd, out, plan, &receiver.url()).await?;
    eprintln!(
        "eauth-bench: {} users seeded in {:.1} s; eauthd (pid {}) at {}",
        plan.users,
        server.seed_time.as_secs_f64(),
        server.pid,
        server.base_url
    );
    Ok(server)
}

/// Stops `server` and reports what its scenarios measured.
async fn finish(
    server: Eauthd,
    outcome: anyhow::Result<Vec<scenarios::ScenarioResult>>,
    receiver: &load::CallbackReceiver,
) -> anyhow::Result<RunReport> {
    let peak_rss_kib = server.peak_rss_kib();
    let (users, seed_seconds) = (server.users, server.seed_time.as_secs_f64());
    let log = server.log_path();
    server.stop().await?;
    let scenarios = outcome.with_context(|| format!("eauthd's log: {}", log.display()))?;
    Ok(RunReport {
        users,
        seed_seconds,
        peak_rss_kib,
        callbacks_received: receiver.received(),
        scenarios,
    })
}
