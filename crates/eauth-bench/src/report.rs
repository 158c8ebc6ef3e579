//! What a run found: JSON for tools, a Markdown table for people (and the README), an SVG bar
//! chart of each scenario's ratio to the baseline, and the issue's targets, each met or missed.

use std::{fmt::Write as _, path::Path};

use anyhow::Context;
use serde::Serialize;

use crate::{
    scenarios::{BASELINE, CODE_VERIFICATION, Plan, SESSION_TOKEN, ScenarioResult},
    server,
};

/// The issue's targets.
const SESSION_TOKEN_SQLITE: f64 = 0.50;
const SESSION_TOKEN_POSTGRES: f64 = 0.35;
const CODE_VERIFICATION_TARGET: f64 = 0.30;
const P99_MS: f64 = 25.0;
const PEAK_RSS_MIB: f64 = 64.0;
const SCALE_TOLERANCE: f64 = 0.10;

/// One server's run.
#[derive(Debug, Serialize)]
pub(crate) struct RunReport {
    pub(crate) users: u64,
    pub(crate) seed_seconds: f64,
    pub(crate) peak_rss_kib: Option<u64>,
    pub(crate) callbacks_received: u64,
    pub(crate) scenarios: Vec<ScenarioResult>,
}

impl RunReport {
    fn scenario(&self, name: &str) -> Option<&ScenarioResult> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

/// `--scale`: the same scenarios at 1 000 and at 1 000 000 users, on two services measured
/// in turns.
#[derive(Debug, Serialize)]
pub(crate) struct ScaleReport {
    runs: Vec<RunReport>,
    /// For each compared scenario, its throughput at the most users divided by the same at the
    /// fewest: 1.0 means the data's size costs nothing.
    comparisons: Vec<ScaleComparison>,
}

#[derive(Debug, Serialize)]
struct ScaleComparison {
    scenario: &'static str,
    few_users: u64,
    many_users: u64,
    few_rps: f64,
    many_rps: f64,
    /// many / few, of the throughputs, measured in the same turns.
    relative: f64,
}

impl ScaleReport {
    pub(crate) fn new(runs: Vec<RunReport>) -> Self {
        let comparisons = match runs.as_slice() {
            [few, .., many] => [SESSION_TOKEN, CODE_VERIFICATION]
                .into_iter()
                .filter_map(|name| {
                    let (a, b) = (few.scenario(name)?, many.scenario(name)?);
                    Some(ScaleComparison {
                        scenario: name,
                        few_users: few.users,
                        many_users: many.users,
                        few_rps: a.requests_per_second,
                        many_rps: b.requests_per_second,
                        relative: b.requests_per_second / a.requests_per_second,
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        Self { runs, comparisons }
    }
}

/// A target and whether this run met it.
#[derive(Debug, Serialize)]
struct Check {
    target: String,
    measured: String,
    met: bool,
}

/// Everything a run writes.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    date: String,
    machine: String,
    backend: &'static str,
    users: u64,
    connections: usize,
    seconds_per_scenario: f64,
    smoke: bool,
    /// eauthd ran under callgrind (`--instructions`).
    under_callgrind: bool,
    run: RunReport,
    scale: Option<ScaleReport>,
    targets: Vec<Check>,
}

impl Report {
    pub(crate) fn new(
        plan: &Plan,
        run: RunReport,
        scale: Option<ScaleReport>,
        smoke: bool,
    ) -> Self {
        let mut report = Self {
            date: utc_now(),
            machine: machine(),
            backend: server::backend_name(),
            users: plan.users,
            connections: plan.connections,
            seconds_per_scenario: plan.duration.as_secs_f64(),
            smoke,
            under_callgrind: plan.instructions,
            run,
            scale,
            targets: Vec::new(),
        };
        report.targets = report.checks();
        report
    }

    fn checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        let mut ratio = |name: &str, min: f64| {
            if let Some(s) = self.run.scenario(name) {
                checks.push(Check {
                    target: format!("{name} ≥ {:.0} % of the baseline", min * 100.0),
                    measured: format!("{:.1} %", s.ratio_to_baseline * 100.0),
                    met: s.ratio_to_baseline >= min,
                });
            }
        };
        let session_token = if self.backend == "postgres" {
            SESSION_TOKEN_POSTGRES
        } else {
            SESSION_TOKEN_SQLITE
        };
        ratio(SESSION_TOKEN, session_token);
        ratio(CODE_VERIFICATION, CODE_VERIFICATION_TARGET);
        let worst = self
            .run
            .scenarios
            .iter()
            .max_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
        if let Some(worst) = worst {
            checks.push(Check {
                target: format!(
                    "p99 ≤ {P99_MS:.0} ms in every scenario ({} connections)",
                    self.connections
                ),
                measured: format!("worst {:.1} ms ({})", worst.p99_ms, worst.name),
                met: worst.p99_ms <= P99_MS,
            });
        }
        let errors = self.total_errors();
        checks.push(Check {
            target: "0 errors".into(),
            measured: errors.to_string(),
            met: errors == 0,
        });
        if let Some(kib) = self.run.peak_rss_kib {
            let mib = kib as f64 / 1024.0;
            checks.push(Check {
                target: format!(
                    "peak RSS ≤ {PEAK_RSS_MIB:.0} MiB ({} users)",
                    self.run.users
                ),
                measured: format!("{mib:.1} MiB"),
                met: mib <= PEAK_RSS_MIB,
            });
        }
        for c in self.scale.iter().flat_map(|s| &s.comparisons) {
            checks.push(Check {
                target: format!(
                    "{}: {} vs {} users within {:.0} %",
                    c.scenario,
                    c.many_users,
                    c.few_users,
                    SCALE_TOLERANCE * 100.0
                ),
                measured: format!("{:+.1} %", (c.relative - 1.0) * 100.0),
                met: (c.relative - 1.0).abs() <= SCALE_TOLERANCE,
            });
        }
        checks
    }

    /// Errors in every scenario of every run.
    pub(crate) fn total_errors(&self) -> u64 {
        std::iter::once(&self.run)
            .chain(self.scale.iter().flat_map(|s| &s.runs))
            .flat_map(|r| &r.scenarios)
            .map(|s| s.errors)
            .sum()
    }

    /// Writes `<name>.json`, `.md` and `.svg` into `dir`; returns their paths.
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<Vec<String>> {
        let name = format!(
            "{}-{}",
            if self.smoke { "smoke" } else { "results" },
            self.backend
        );
        let files = [
            (
                format!("{name}.json"),
                serde_json::to_string_pretty(self).context("BUG: the report serialises")?,
            ),
            (format!("{name}.md"), self.markdown()),
            (format!("{name}.svg"), self.svg()),
        ];
        let mut written = Vec::new();
        for (file, contents) in files {
            let path = dir.join(file);
            std::fs::write(&path, contents)
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path.display().to_string());
        }
        Ok(written)
    }

    /// The results as Markdown: the run's parameters, one table row per scenario, the targets.
    pub(crate) fn markdown(&self) -> String {
        let mut md = String::new();
        let rss = self.run.peak_rss_kib.map_or("unknown".into(), |kib| {
            format!("{:.1} MiB", kib as f64 / 1024.0)
        });
        let _ = writeln!(
            md,
            "{}, {}; {} backend, {} enrolled users, {} connections, {:.1} s per scenario; \
             eauthd peak RSS {rss}.\n",
            self.date,
            self.machine,
            self.backend,
            self.users,
            self.connections,
            self.seconds_per_scenario
        );
        if self.under_callgrind {
            let _ = writeln!(
                md,
                "eauthd ran under callgrind: only its instructions per request are the \
                 service's; rates, latencies and memory are valgrind's.\n"
            );
        }
        table(&mut md, &self.run);
        if let Some(scale) = &self.scale {
            for run in &scale.runs {
                let _ = writeln!(md, "\nAt {} users:\n", run.users);
                table(&mut md, run);
            }
            let _ = writeln!(
                md,
                "\nBoth services measured in turns, in the same minutes.\n\n| scale | req/s at fewer users | req/s at more users | change in throughput |\n|---|---:|---:|---:|"
            );
            for c in &scale.comparisons {
                let _ = writeln!(
                    md,
                    "| {} ({} → {} users) | {:.0} | {:.0} | {:+.1} % |",
                    c.scenario,
                    c.few_users,
                    c.many_users,
                    c.few_rps,
                    c.many_rps,
                    (c.relative - 1.0) * 100.0
                );
            }
        }
        let _ = writeln!(md, "\n| target | measured | |\n|---|---|---|");
        for check in &self.targets {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                check.target,
                check.measured,
                if check.met { "met" } else { "**missed**" }
            );
        }
        md
    }

    /// A bar per scenario: its throughput as a share of the baseline's.
    fn svg(&self) -> String {
        let rows = &self.run.scenarios;
        let (label_w, bar_w, row_h) = (190.0, 420.0, 28.0);
        let height = 40.0 + row_h * rows.len() as f64;
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="13">
<text x="10" y="20" font-weight="bold">Throughput as a share of GET /healthz ({backend}, {users} users, {conns} connections)</text>
"#,
            w = label_w + bar_w + 80.0,
            backend = self.backend,
            users = self.users,
            conns = self.connections
        );
        for (i, s) in rows.iter().enumerate() {
            let y = 32.0 + row_h * i as f64;
            let width = (s.ratio_to_baseline.min(1.0) * bar_w).max(1.0);
            let _ = writeln!(
                svg,
                r##"<text x="10" y="{ty}">{name}</text><rect x="{label_w}" y="{y}" width="{width:.1}" height="{h}" fill="{fill}"/><text x="{tx:.1}" y="{ty}">{pct:.1} % ({rps:.0}/s)</text>"##,
                ty = y + 15.0,
                name = s.name,
                h = row_h - 8.0,
                fill = if s.errors > 0 { "#c0392b" } else { "#2e86c1" },
                tx = label_w + width + 6.0,
                pct = s.ratio_to_baseline * 100.0,
                rps = s.requests_per_second
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn table(md: &mut String, run: &RunReport) {
    let counted = run
        .scenarios
        .iter()
        .any(|s| s.server_instructions_per_request.is_some());
    let _ = writeln!(
        md,
        "| scenario | req/s | ratio to baseline | p50 ms | p99 ms | p99.9 ms | errors | requests | eauthd CPU µs/req | generator CPU µs/req |{}\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|{}",
        if counted {
            " eauthd instructions/req |"
        } else {
            ""
        },
        if counted { "---:|" } else { "" }
    );
    for s in &run.scenarios {
        let ratio = if s.name == BASELINE {
            "1.00".to_owned()
        } else {
            format!("{:.2}", s.ratio_to_baseline)
        };
        let note = s.note.as_ref().map_or(String::new(), |n| format!(" ({n})"));
        let number = |value: Option<f64>| value.map_or("?".to_owned(), |v| format!("{v:.0}"));
        let instructions = if counted {
            format!(" {} |", number(s.server_instructions_per_request))
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "| {}{note} | {:.0} | {ratio} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |{instructions}",
            s.name,
            s.requests_per_second,
            s.p50_ms,
            s.p99_ms,
            s.p999_ms,
            s.errors,
            s.requests,
            number(s.server_cpu_us_per_request),
            number(s.generator_cpu_us_per_request)
        );
    }
}

/// CPUs and kernel, to tell results of different machines apart.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model})")
}

/// `YYYY-MM-DD HH:MM UTC`, from the system clock (Howard Hinnant's civil-from-days).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}
