//! Ingest load generator: `cargo bench --bench ingest -- [options]`.
//!
//! tocsin answers an Alertmanager webhook with 200 only after the alerts are committed to
//! SQLite, and promises flat memory under an alert storm. Both promises cost throughput and
//! RSS, so this bench measures them against the targets: >= 10,000 requests/s at 1 alert per
//! request, >= 50,000 alerts/s at 50 per request, p99 <= 20 ms, peak RSS <= 30 MB (<= 64 MB
//! after the storm).
//!
//! Flow: start the release daemon in a temp dir (or target `--url`), pre-generate realistic
//! Alertmanager v4 bodies, keep exactly `--concurrency` requests in flight per scenario
//! (`single`, `batch`, `storm`), print the figures beside the targets, and after the storm
//! stop the daemon with SIGTERM and check that every alert answered 200 is in the store.
//!
//! Run without `--bench` (as `cargo test --benches` does) it makes a short smoke run instead,
//! so a test run checks that the bench and the durability check still work without
//! spending a minute on load.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Bytes; // `bytes::Bytes`, re-exported: cheap clones of a pre-built body.
use clap::{Parser, ValueEnum};
use serde::Serialize;

/// Requests per scenario in a smoke run (no `--bench` flag).
const SMOKE_REQUESTS: u64 = 200;
/// Storm size in a smoke run.
const SMOKE_STORM_ALERTS: u64 = 1_000;
/// Alerts per request in `batch` and `storm`.
const BATCH_SIZE: u32 = 50;
/// Storm alerts spread over this many groups (incidents).
const STORM_GROUPS: u32 = 2_000;

#[derive(Parser, Debug)]
#[command(
    name = "ingest",
    about = "Load generator for tocsin's POST /hooks/alertmanager"
)]
struct Cli {
    /// Run one scenario only (default: single, batch, then storm).
    #[arg(long, value_enum)]
    scenario: Option<ScenarioKind>,
    /// Requests in flight at all times, each on a kept-alive connection.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long `single` and `batch` each run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Send exactly N requests in `single` and `batch` instead of running for `--duration`.
    #[arg(long)]
    requests: Option<u64>,
    /// Share of requests that re-send an earlier body byte for byte (an HA Alertmanager pair).
    #[arg(long, default_value_t = 0.2, value_parser = parse_ratio)]
    dup_ratio: f64,
    /// Alertmanager groups (groupKeys, so incidents) in `single` and `batch`.
    #[arg(long, default_value_t = 500)]
    groups: u32,
    /// Distinct alerts in the storm (default 100000), sent 50 per request (rounded up to a multiple of 50).
    #[arg(long)]
    storm_alerts: Option<u64>,
    /// Target a running daemon (`http://host:port`) instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// With `--url`: the daemon's pid, to report its RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Tokio threads of the client. 1 leaves the other cores to the daemon on a small machine.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Memory the pre-generated bodies of one scenario may use; past it, bodies repeat.
    #[arg(long, default_value_t = 512)]
    pool_mb: usize,
    /// Passed by `cargo bench` to harness=false benches; its absence means a smoke run.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Accepts a duplicate ratio in [0, 1): 1 would mean nothing new is ever sent.
fn parse_ratio(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!("{r} is not in [0, 1)"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScenarioKind {
    Single,
    Batch,
    Storm,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.client_threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ingest bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let smoke = !cli.bench;
    if smoke {
        println!("smoke run (no --bench flag): small fixed workloads, targets not meaningful");
    }
    let client = http_client(cli.concurrency)?;
    let mut daemon = match &cli.url {
        Some(_) => None,
        None => {
            Some(daemon::Daemon::start(Path::new(env!("CARGO_BIN_EXE_tocsin")), &client).await?)
        }
    };
    let base_url = match (&cli.url, &daemon) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(d)) => d.base_url.clone(),
        (None, None) => unreachable!("a daemon is started when no --url is given"),
    };
    let pid = daemon.as_ref().map(|d| d.pid).or(cli.pid);
    let scenarios = scenarios(&cli, smoke);
    let run_tag = run_tag();
    println!(
        "target {base_url}, concurrency {}, client threads {}, run tag {run_tag}",
        cli.concurrency, cli.client_threads
    );

    let mut rows = Vec::new();
    let mut storm_ok = true;
    for scenario in &scenarios {
        println!("\n== {} ==", scenario.describe(cli.concurrency));
        let generating = Instant::now();
        let pool = payload::Pool::generate(scenario, &run_tag, cli.pool_mb);
        let plan = plan::build(scenario, &pool);
        println!(
            "   {} distinct bodies ({:.1} MB) pre-generated in {:.1} s",
            pool.bodies.len(),
            pool.bytes as f64 / 1e6,
            generating.elapsed().as_secs_f64()
        );
        let outcome = load::drive(
            &client,
            &base_url,
            &pool,
            &plan,
            scenario.stop,
            cli.concurrency,
        )
        .await;
        if let Some(d) = daemon.as_mut() {
            d.ensure_running()?;
        }
        let row = report::Row::new(scenario, &plan, &outcome, pid.and_then(report::Rss::read));
        row.print_block(&outcome);
        print_daemon_metrics(&client, &base_url).await;
        rows.push(row);
        if scenario.kind == ScenarioKind::Storm {
            storm_ok = check_storm(daemon.as_mut(), &pool, &outcome).await?;
        }
    }
    report::print_summary(&rows);
    Ok(if storm_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One client for all workers: its pool keeps one idle connection per worker, so every
/// request after the first rides a kept-alive connection, as Alertmanager's does.
fn http_client(concurrency: usize) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

/// Makes this run's label sets differ from any earlier run's, so a long-running daemon
/// (`--url`) sees new alerts rather than duplicates of yesterday's bench.
fn run_tag() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs:x}")
}

/// When a scenario stops: after a time (throughput) or after a fixed number of requests.
#[derive(Clone, Copy, Debug)]
enum Stop {
    After(Duration),
    Requests(u64),
}

/// One workload: its shape and how long it runs.
#[derive(Debug)]
struct Scenario {
    kind: ScenarioKind,
    name: &'static str,
    alerts_per_request: u32,
    groups: u32,
    dup_ratio: f64,
    stop: Stop,
    /// Requests per second the daemon might reach, times two: sizes the body pool of a timed run.
    rate_hint: f64,
}

impl Scenario {
    fn describe(&self, concurrency: usize) -> String {
        let stop = match self.stop {
            Stop::After(d) => format!("{} s", d.as_secs_f64()),
            Stop::Requests(n) => format!("{n} requests"),
        };
        format!(
            "{}: {} alert(s)/request, {} groups, {:.0}% duplicates, concurrency {concurrency}, {stop}",
            self.name,
            self.alerts_per_request,
            self.groups,
            self.dup_ratio * 100.0
        )
    }
}

fn scenarios(cli: &Cli, smoke: bool) -> Vec<Scenario> {
    let stop = match (cli.requests, smoke) {
        (Some(n), _) => Stop::Requests(n),
        (None, true) => Stop::Requests(SMOKE_REQUESTS),
        (None, false) => Stop::After(cli.duration),
    };
    let storm_alerts = cli
        .storm_alerts
        .unwrap_or(if smoke { SMOKE_STORM_ALERTS } else { 100_000 });
    let all = [
        Scenario {
            kind: ScenarioKind::Single,
            name: "single",
            alerts_per_request: 1,
            groups: cli.groups,
            dup_ratio: cli.dup_ratio,
            stop,
            rate_hint: 20_000.0,
        },
        Scenario {
            kind: ScenarioKind::Batch,
            name: "batch",
            alerts_per_request: BATCH_SIZE,
            groups: cli.groups,
            dup_ratio: cli.dup_ratio,
            stop,
            rate_hint: 2_000.0,
        },
        Scenario {
            kind: ScenarioKind::Storm,
            name: "storm",
            alerts_per_request: BATCH_SIZE,
            groups: STORM_GROUPS,
            dup_ratio: 0.0,
            stop: Stop::Requests(storm_alerts.div_ceil(u64::from(BATCH_SIZE))),
            rate_hint: 0.0,
        },
    ];
    all.into_iter()
        .filter(|s| cli.scenario.is_none_or(|k| k == s.kind))
        .collect()
}

/// Prints the daemon's own counters, to cross-check what the client saw. Optional: a
/// daemon without these metrics (or without /metrics yet) is not an error.
async fn print_daemon_metrics(client: &reqwest::Client, base_url: &str) {
    const WANTED: [&str; 2] = [
        "tocsin_store_commit_seconds_count",
        "tocsin_alerts_received_total",
    ];
    let Ok(resp) = client.get(format!("{base_url}/metrics")).send().await else {
        return;
    };
    let Ok(text) = resp.text().await else { return };
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| WANTED.iter().any(|w| l.starts_with(w)))
        .collect();
    if !lines.is_empty() {
        println!("   daemon metrics:");
        for line in lines {
            println!("     {line}");
        }
    }
}

/// The durability check: stop the daemon gracefully, then every alert answered 200 must
/// be in its SQLite file. Returns false when any is missing or SIGTERM did not stop it.
async fn check_storm(
    daemon: Option<&mut daemon::Daemon>,
    pool: &payload::Pool,
    outcome: &load::Outcome,
) -> Result<bool> {
    let Some(daemon) = daemon else {
        println!("   storm store check skipped: the daemon is not ours (--url)");
        return Ok(true);
    };
    let graceful = match daemon.stop().await? {
        daemon::Stopped::Exited(status) => {
            println!("   daemon stopped by SIGTERM: {status}");
            true
        }
        daemon::Stopped::Hung => {
            println!(
                "   MISS daemon still running 30 s after SIGTERM; killed with SIGKILL. Log tail:\n{}",
                daemon.log_tail(20)
            );
            false
        }
    };
    let answered: Vec<payload::AlertKey> = outcome
        .ok_bodies
        .iter()
        .flat_map(|&i| pool.bodies[i as usize].alerts.iter().copied())
        .collect();
    let db = daemon.data_dir().join("tocsin.db");
    let check = store_check::run(&db, &answered)?;
    check.print(answered.len());
    if !check.complete() || !graceful {
        let kept = daemon.keep_dir();
        println!("   data dir kept for inspection: {}", kept.display());
    }
    Ok(check.complete() && graceful)
}

/// Alertmanager v4 webhook bodies, generated before timing starts.
mod payload {
    use super::*;

    /// Identity of one alert as the store keeps it, to check the store after the storm.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct AlertKey {
        pub fingerprint: u64,
        pub starts_at_ms: i64,
    }

    /// One request body and the alerts it carries.
    pub struct Body {
        pub bytes: Bytes,
        pub alerts: Vec<AlertKey>,
    }

    /// The distinct bodies of a scenario; duplicates re-send one of these.
    pub struct Pool {
        pub bodies: Vec<Body>,
        pub bytes: usize,
    }

    impl Pool {
        /// Generates as many distinct bodies as the scenario can send, within `budget_mb`.
        pub fn generate(scenario: &Scenario, run_tag: &str, budget_mb: usize) -> Pool {
            let generator = Generator::new(scenario, run_tag);
            let first = generator.body(0);
            let count = pool_size(scenario, first.bytes.len(), budget_mb);
            let mut bodies = Vec::with_capacity(count);
            bodies.push(first);
            bodies.extend((1..count as u64).map(|j| generator.body(j)));
            let bytes = bodies.iter().map(|b| b.bytes.len()).sum();
            Pool { bodies, bytes }
        }
    }

    /// Distinct bodies needed: exact for a request count, else enough for twice the
    /// target rate over the duration; never more than the memory budget allows.
    fn pool_size(scenario: &Scenario, body_len: usize, budget_mb: usize) -> usize {
        let fresh = 1.0 - scenario.dup_ratio;
        let wanted = match scenario.stop {
            Stop::Requests(n) => (n as f64 * fresh).ceil(),
            Stop::After(d) => (d.as_secs_f64() * scenario.rate_hint * fresh).ceil(),
        } as usize;
        let affordable = budget_mb * 1024 * 1024 / body_len.max(1);
        wanted.clamp(1, affordable.max(1))
    }

    /// Kinds of alerts a fleet fires: (alertname stem, job, summary).
    const KINDS: [(&str, &str, &str); 6] = [
        ("DiskFull", "node", "Disk almost full"),
        ("HighLatency", "api", "p99 latency above 500ms"),
        ("TargetDown", "prometheus", "Scrape target is down"),
        ("HighErrorRate", "api", "5xx ratio above 5%"),
        ("MemoryPressure", "node", "Memory usage above 90%"),
        (
            "ReplicationLag",
            "postgres",
            "Replica lags behind its primary",
        ),
    ];

    type Labels = BTreeMap<&'static str, String>;

    /// Field order and names as Alertmanager 0.25+ sends them.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Webhook {
        receiver: &'static str,
        status: &'static str,
        alerts: Vec<Alert>,
        group_labels: Labels,
        common_labels: Labels,
        common_annotations: Labels,
        #[serde(rename = "externalURL")]
        external_url: &'static str,
        version: &'static str,
        group_key: String,
        truncated_alerts: u32,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Alert {
        status: &'static str,
        labels: Labels,
        annotations: Labels,
        starts_at: String,
        ends_at: &'static str,
        #[serde(rename = "generatorURL")]
        generator_url: String,
        fingerprint: String,
    }

    /// Builds body `j` of a scenario. Body j belongs to group `j % groups`; its alerts are
    /// instances never used before in that group, so every distinct body carries new alerts.
    struct Generator {
        groups: u32,
        per_request: u32,
        /// `cluster` label: scenario and run, so label sets never repeat across either.
        cluster: String,
        /// Alerts started within the hour before this.
        base_ms: i64,
    }

    impl Generator {
        fn new(scenario: &Scenario, run_tag: &str) -> Self {
            Generator {
                groups: scenario.groups.max(1),
                per_request: scenario.alerts_per_request,
                cluster: format!("bench-{}-{run_tag}", scenario.name),
                base_ms: chrono::Utc::now().timestamp_millis() - 3_600_000,
            }
        }

        fn body(&self, j: u64) -> Body {
            let group = (j % u64::from(self.groups)) as usize;
            let round = j / u64::from(self.groups);
            let (stem, job, summary) = KINDS[group % KINDS.len()];
            let alertname = format!("{stem}{group}");
            let severity = if group.is_multiple_of(5) {
                "critical"
            } else {
                "warning"
            };
            let first = round * u64::from(self.per_request);
            let alerts: Vec<Alert> = (first..first + u64::from(self.per_request))
                .map(|k| self.alert(&alertname, job, severity, summary, k))
                .collect();
            let keys = alerts.iter().map(alert_key).collect();
            let webhook = Webhook {
                receiver: "tocsin",
                status: "firing",
                group_labels: Labels::from([("alertname", alertname.clone())]),
                common_labels: common(alerts.iter().map(|a| &a.labels)),
                common_annotations: common(alerts.iter().map(|a| &a.annotations)),
                alerts,
                external_url: "http://alertmanager.bench.local:9093",
                version: "4",
                group_key: format!("{{}}:{{alertname=\"{alertname}\"}}"),
                truncated_alerts: 0,
            };
            let bytes = serde_json::to_vec(&webhook).expect("webhook serializes");
            Body {
                bytes: Bytes::from(bytes),
                alerts: keys,
            }
        }

        fn alert(
            &self,
            alertname: &str,
            job: &str,
            severity: &str,
            summary: &str,
            k: u64,
        ) -> Alert {
            let instance = format!("host-{k:05}.bench.local:9100");
            let labels = Labels::from([
                ("alertname", alertname.to_string()),
                ("cluster", self.cluster.clone()),
                ("instance", instance.clone()),
                ("job", job.to_string()),
                ("severity", severity.to_string()),
            ]);
            let fingerprint = fingerprint(&labels);
            let starts_at_ms = self.base_ms + (fingerprint % 3_600_000) as i64;
            Alert {
                status: "firing",
                annotations: Labels::from([
                    ("summary", summary.to_string()),
                    ("description", format!("{summary} on {instance}")),
                ]),
                labels,
                starts_at: rfc3339_millis(starts_at_ms),
                ends_at: "0001-01-01T00:00:00Z",
                generator_url: format!(
                    "http://prometheus.bench.local:9090/graph?g0.expr=ALERTS%7Balertname%3D%22{alertname}%22%7D&g0.tab=1"
                ),
                fingerprint: format!("{fingerprint:016x}"),
            }
        }
    }

    fn alert_key(alert: &Alert) -> AlertKey {
        AlertKey {
            fingerprint: u64::from_str_radix(&alert.fingerprint, 16).expect("hex fingerprint"),
            starts_at_ms: chrono::DateTime::parse_from_rfc3339(&alert.starts_at)
                .expect("generated timestamp parses")
                .timestamp_millis(),
        }
    }

    /// Millisecond precision, so the store's integer milliseconds compare exactly.
    fn rfc3339_millis(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .expect("timestamp in range")
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    }

    /// Pairs present with the same value in every map, as Alertmanager's commonLabels.
    fn common<'a>(mut maps: impl Iterator<Item = &'a Labels>) -> Labels {
        let Some(first) = maps.next() else {
            return Labels::new();
        };
        let mut common = first.clone();
        for map in maps {
            common.retain(|k, v| map.get(k) == Some(v));
        }
        common
    }

    /// Prometheus' `LabelSet.Fingerprint`: FNV-1a 64 over sorted names and values, each
    /// followed by the 0xff separator. Real fingerprints, so the daemon's parsing and
    /// indexing see what they will see in production.
    fn fingerprint(labels: &Labels) -> u64 {
        const OFFSET: u64 = 14_695_981_039_346_656_037;
        const PRIME: u64 = 1_099_511_628_211;
        let mut h = OFFSET;
        let mut add = |bytes: &[u8]| {
            for &b in bytes.iter().chain(&[0xff]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(PRIME);
            }
        };
        for (name, value) in labels {
            add(name.as_bytes());
            add(value.as_bytes());
        }
        h
    }
}

/// Which body each request sends, decided before timing so the hot loop is one atomic
/// add and an index.
mod plan {
    use super::*;

    /// Duplicates re-send one of the last this-many distinct bodies: an HA pair delivers
    /// the same notification within moments, often while the first is still in flight.
    const DUP_WINDOW: u64 = 256;

    pub struct Plan {
        /// Pool index per request; a timed run that outlasts it wraps (all re-sends then).
        pub order: Vec<u32>,
        /// Whether request i is the first delivery of its body.
        pub fresh: Vec<bool>,
    }

    pub fn build(scenario: &Scenario, pool: &payload::Pool) -> Plan {
        let distinct = pool.bodies.len() as u64;
        let len = match scenario.stop {
            Stop::Requests(n) => n.max(1),
            Stop::After(_) => ((distinct as f64) / (1.0 - scenario.dup_ratio)).ceil() as u64,
        };
        let mut rng = SplitMix(0x7063_736e_6265_6e63);
        let (mut order, mut fresh) = (Vec::new(), Vec::new());
        let mut sent = 0u64;
        for _ in 0..len {
            let dup = sent > 0 && (sent == distinct || rng.unit() < scenario.dup_ratio);
            let index = if dup {
                sent - 1 - rng.next() % sent.min(DUP_WINDOW)
            } else {
                sent += 1;
                sent - 1
            };
            order.push(index as u32);
            fresh.push(!dup);
        }
        Plan { order, fresh }
    }

    /// A tiny deterministic generator: the same plan every run, no `rand` dependency.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }
}

/// The client side: exactly `concurrency` workers, each with one request in flight.
mod load {
    use super::*;

    /// What one scenario's requests got.
    #[derive(Default)]
    pub struct Outcome {
        pub wall: Duration,
        pub requests: u64,
        pub ok_requests: u64,
        pub ok_alerts: u64,
        pub non_200: u64,
        pub transport_errors: u64,
        /// Per request, microseconds, sorted after the run.
        pub latencies_us: Vec<u32>,
        /// Pool index of every body answered 200: the alerts the store must hold.
        pub ok_bodies: Vec<u32>,
        /// Requests that were the first delivery of their body.
        pub fresh_requests: u64,
        /// One error to show, so a failing run says why.
        pub first_error: Option<String>,
    }

    impl Outcome {
        fn merge(&mut self, other: Outcome) {
            self.requests += other.requests;
            self.ok_requests += other.ok_requests;
            self.ok_alerts += other.ok_alerts;
            self.non_200 += other.non_200;
            self.transport_errors += other.transport_errors;
            self.fresh_requests += other.fresh_requests;
            self.latencies_us.extend(other.latencies_us);
            self.ok_bodies.extend(other.ok_bodies);
            if self.first_error.is_none() {
                self.first_error = other.first_error;
            }
        }

        pub fn errors(&self) -> u64 {
            self.non_200 + self.transport_errors
        }
    }

    /// State every worker shares; the bodies are `Bytes`, so sending clones no payload.
    struct Shared {
        client: reqwest::Client,
        url: String,
        bodies: Vec<(Bytes, u32)>,
        order: Vec<u32>,
        fresh: Vec<bool>,
        next: AtomicU64,
        stop: Stop,
        deadline: Instant,
    }

    impl Shared {
        /// The next request number, or None when the scenario is over.
        fn take(&self) -> Option<u64> {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let done = match self.stop {
                Stop::Requests(n) => i >= n,
                Stop::After(_) => Instant::now() >= self.deadline,
            };
            (!done).then_some(i)
        }
    }

    pub async fn drive(
        client: &reqwest::Client,
        base_url: &str,
        pool: &payload::Pool,
        plan: &plan::Plan,
        stop: Stop,
        concurrency: usize,
    ) -> Outcome {
        let started = Instant::now();
        let shared = Arc::new(Shared {
            client: client.clone(),
            url: format!("{base_url}/hooks/alertmanager"),
            bodies: pool
                .bodies
                .iter()
                .map(|b| (b.bytes.clone(), b.alerts.len() as u32))
                .collect(),
            order: plan.order.clone(),
            fresh: plan.fresh.clone(),
            next: AtomicU64::new(0),
            stop,
            deadline: match stop {
                Stop::After(d) => started + d,
                Stop::Requests(_) => started,
            },
        });
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
            .collect();
        let mut total = Outcome::default();
        for w in workers {
            total.merge(w.await.expect("worker task panicked"));
        }
        total.wall = started.elapsed();
        total.latencies_us.sort_unstable();
        total
    }

    async fn worker(shared: Arc<Shared>) -> Outcome {
        let mut out = Outcome::default();
        while let Some(i) = shared.take() {
            let position = (i % shared.order.len() as u64) as usize;
            let index = shared.order[position];
            let (body, alerts) = &shared.bodies[index as usize];
            let fresh = shared.fresh[position] && i < shared.order.len() as u64;
            let t0 = Instant::now();
            let result = send(&shared, body.clone()).await;
            let micros = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            out.requests += 1;
            out.fresh_requests += u64::from(fresh);
            out.latencies_us.push(micros);
            match result {
                Ok(()) => {
                    out.ok_requests += 1;
                    out.ok_alerts += u64::from(*alerts);
                    out.ok_bodies.push(index);
                }
                Err(Failure::Status(e)) => {
                    out.non_200 += 1;
                    out.first_error.get_or_insert(e);
                }
                Err(Failure::Transport(e)) => {
                    out.transport_errors += 1;
                    out.first_error.get_or_insert(e);
                }
            }
        }
        out
    }

    enum Failure {
        Status(String),
        Transport(String),
    }

    /// One POST; the response body is read to the end so the connection goes back to the
    /// pool and the timing covers the whole answer.
    async fn send(shared: &Shared, body: Bytes) -> Result<(), Failure> {
        let transport =
            |e: reqwest::Error| Failure::Transport(format!("{:#}", anyhow::Error::from(e)));
        let resp = shared
            .client
            .post(&shared.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let text = resp.bytes().await.map_err(transport)?;
        if status == reqwest::StatusCode::OK {
            Ok(())
        } else {
            let snippet = String::from_utf8_lossy(&text[..text.len().min(200)]).into_owned();
            Err(Failure::Status(format!("HTTP {status}: {snippet}")))
        }
    }
}

/// Figures, targets and the final table.
mod report {
    use super::*;

    /// The daemon's memory from /proc: VmHWM is the peak since start, VmRSS the present.
    #[derive(Clone, Copy)]
    pub struct Rss {
        pub peak_kb: u64,
        pub now_kb: u64,
    }

    impl Rss {
        pub fn read(pid: u32) -> Option<Rss> {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            };
            Some(Rss {
                peak_kb: field("VmHWM:")?,
                now_kb: field("VmRSS:")?,
            })
        }
    }

    /// One figure beside its target.
    struct Check {
        what: &'static str,
        value: String,
        target: String,
        pass: bool,
    }

    impl Check {
        fn marker(&self) -> &'static str {
            if self.pass { "PASS" } else { "MISS" }
        }
    }

    pub struct Row {
        name: &'static str,
        kind: ScenarioKind,
        requests: u64,
        distinct: u64,
        wrapped: bool,
        wall_s: f64,
        req_per_s: f64,
        alerts_per_s: f64,
        p50_ms: f64,
        p99_ms: f64,
        max_ms: f64,
        errors: u64,
        rss: Option<Rss>,
    }

    impl Row {
        pub fn new(
            scenario: &Scenario,
            plan: &plan::Plan,
            outcome: &load::Outcome,
            rss: Option<Rss>,
        ) -> Row {
            let wall_s = outcome.wall.as_secs_f64().max(1e-9);
            let ms = |q: f64| percentile(&outcome.latencies_us, q) as f64 / 1000.0;
            Row {
                name: scenario.name,
                kind: scenario.kind,
                requests: outcome.requests,
                distinct: outcome.fresh_requests,
                wrapped: outcome.requests > plan.order.len() as u64,
                wall_s,
                req_per_s: outcome.requests as f64 / wall_s,
                alerts_per_s: outcome.ok_alerts as f64 / wall_s,
                p50_ms: ms(0.50),
                p99_ms: ms(0.99),
                max_ms: ms(1.0),
                errors: outcome.errors(),
                rss,
            }
        }

        fn checks(&self) -> Vec<Check> {
            let mut checks = Vec::new();
            match self.kind {
                ScenarioKind::Single => checks.push(Check {
                    what: "requests/s",
                    value: format!("{:.0}", self.req_per_s),
                    target: ">= 10000".into(),
                    pass: self.req_per_s >= 10_000.0,
                }),
                ScenarioKind::Batch | ScenarioKind::Storm => checks.push(Check {
                    what: "alerts/s",
                    value: format!("{:.0}", self.alerts_per_s),
                    target: ">= 50000".into(),
                    pass: self.alerts_per_s >= 50_000.0,
                }),
            }
            checks.push(Check {
                what: "p99 ms",
                value: format!("{:.2}", self.p99_ms),
                target: "<= 20".into(),
                pass: self.p99_ms <= 20.0,
            });
            checks.push(Check {
                what: "errors",
                value: self.errors.to_string(),
                target: "= 0".into(),
                pass: self.errors == 0,
            });
            if let Some(rss) = self.rss {
                let limit_mb = if self.kind == ScenarioKind::Storm {
                    64.0
                } else {
                    30.0
                };
                let peak_mb = mb(rss.peak_kb);
                checks.push(Check {
                    what: "peak RSS MB",
                    value: format!("{peak_mb:.1}"),
                    target: format!("<= {limit_mb:.0}"),
                    pass: peak_mb <= limit_mb,
                });
            }
            checks
        }

        pub fn print_block(&self, outcome: &load::Outcome) {
            println!(
                "   requests    {} in {:.2} s ({} first deliveries, {} re-sends){}",
                self.requests,
                self.wall_s,
                self.distinct,
                self.requests - self.distinct,
                if self.wrapped {
                    "; body pool exhausted, later requests re-sent earlier bodies"
                } else {
                    ""
                }
            );
            println!("   requests/s  {:.0}", self.req_per_s);
            println!(
                "   alerts/s    {:.0} (alerts in requests answered 200)",
                self.alerts_per_s
            );
            println!(
                "   latency ms  p50 {:.2}  p99 {:.2}  max {:.2}",
                self.p50_ms, self.p99_ms, self.max_ms
            );
            println!(
                "   errors      {} (non-200 {}, transport {})",
                self.errors, outcome.non_200, outcome.transport_errors
            );
            if let Some(e) = &outcome.first_error {
                println!("   first error {e}");
            }
            match self.rss {
                Some(r) => println!(
                    "   server RSS  peak {:.1} MB, now {:.1} MB",
                    mb(r.peak_kb),
                    mb(r.now_kb)
                ),
                None => println!("   server RSS  unknown (give --pid with --url)"),
            }
            for c in self.checks() {
                println!(
                    "   {:<4} {:<12} {:>10}  target {}",
                    c.marker(),
                    c.what,
                    c.value,
                    c.target
                );
            }
        }
    }

    pub fn print_summary(rows: &[Row]) {
        println!("\n== summary ==");
        println!(
            "{:<8} {:>9} {:>9} {:>10} {:>7} {:>7} {:>8} {:>7} {:>8} {:>7}  verdict",
            "scenario",
            "requests",
            "req/s",
            "alerts/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "peak MB",
            "rss MB"
        );
        for r in rows {
            let (peak, now) = match r.rss {
                Some(rss) => (
                    format!("{:.1}", mb(rss.peak_kb)),
                    format!("{:.1}", mb(rss.now_kb)),
                ),
                None => ("-".into(), "-".into()),
            };
            let missed: Vec<&str> = r
                .checks()
                .iter()
                .filter(|c| !c.pass)
                .map(|c| c.what)
                .collect();
            let verdict = if missed.is_empty() {
                "PASS".to_string()
            } else {
                format!("MISS: {}", missed.join(", "))
            };
            println!(
                "{:<8} {:>9} {:>9.0} {:>10.0} {:>7.2} {:>7.2} {:>8.2} {:>7} {:>8} {:>7}  {verdict}",
                r.name,
                r.requests,
                r.req_per_s,
                r.alerts_per_s,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.errors,
                peak,
                now
            );
        }
        println!(
            "targets: single >= 10000 req/s; batch and storm >= 50000 alerts/s; p99 <= 20 ms; \
             peak RSS <= 30 MB (<= 64 MB after the storm)"
        );
    }

    /// Nearest-rank percentile of sorted values; q = 1.0 is the maximum.
    fn percentile(sorted: &[u32], q: f64) -> u32 {
        if sorted.is_empty() {
            return 0;
        }
        let rank = (q * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn mb(kb: u64) -> f64 {
        kb as f64 / 1024.0
    }
}

/// Starts and stops the daemon under test, in a temp dir of its own.
mod daemon {
    use super::*;

    pub struct Daemon {
        child: Child,
        pub pid: u32,
        pub base_url: String,
        /// Holds config, data dir and log; removed on drop unless kept after a failure.
        dir: Option<tempfile::TempDir>,
        root: PathBuf,
        log_path: PathBuf,
        /// Set once the process is reaped, so drop does not signal a recycled pid.
        exited: bool,
    }

    impl Daemon {
        /// Writes the config, starts `tocsin run` and waits for /healthz.
        pub async fn start(bin: &Path, client: &reqwest::Client) -> Result<Daemon> {
            let dir = tempfile::Builder::new().prefix("tocsin-bench-").tempdir()?;
            let root = dir.path().to_path_buf();
            let data_dir = root.join("data");
            std::fs::create_dir(&data_dir)?;
            let listen = format!("127.0.0.1:{}", free_port()?);
            let config = root.join("alerts.toml");
            std::fs::write(&config, config_toml(&listen, &data_dir))?;
            let log_path = root.join("tocsin.log");
            let log = File::create(&log_path)?;
            let child = Command::new(bin)
                .arg("run")
                .arg("--config")
                .arg(&config)
                .args(["--listen", &listen])
                .arg("--data-dir")
                .arg(&data_dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let mut daemon = Daemon {
                pid: child.id(),
                child,
                base_url: format!("http://{listen}"),
                dir: Some(dir),
                root,
                log_path,
                exited: false,
            };
            println!(
                "started {} (pid {}) in {}",
                bin.display(),
                daemon.pid,
                daemon.root.display()
            );
            daemon.wait_healthy(client, Duration::from_secs(30)).await?;
            Ok(daemon)
        }

        pub fn data_dir(&self) -> PathBuf {
            self.root.join("data")
        }

        /// Polls /healthz; on timeout or early exit the daemon's log says why.
        async fn wait_healthy(
            &mut self,
            client: &reqwest::Client,
            timeout: Duration,
        ) -> Result<()> {
            let url = format!("{}/healthz", self.base_url);
            let deadline = Instant::now() + timeout;
            loop {
                self.ensure_running()?;
                if let Ok(resp) = client.get(&url).send().await
                    && resp.status() == reqwest::StatusCode::OK
                {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    bail!(
                        "tocsin did not answer {url} with 200 within {timeout:?}; its log:\n{}",
                        self.log()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        /// Fails, with the log, when the daemon has died under load.
        pub fn ensure_running(&mut self) -> Result<()> {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                bail!(
                    "tocsin exited unexpectedly ({status}); its log:\n{}",
                    self.log()
                );
            }
            Ok(())
        }

        /// SIGTERM through `kill(1)` (the crate forbids unsafe, so no libc), then waits up
        /// to 30 s for the graceful drain. A daemon that hangs is killed with SIGKILL and
        /// reported as such: the store must hold the answered alerts even then.
        pub async fn stop(&mut self) -> Result<Stopped> {
            let sent = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status()
                .context("running kill -TERM")?;
            if !sent.success() {
                bail!("kill -TERM {} failed: {sent}", self.pid);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = self.child.try_wait()? {
                    self.exited = true;
                    return Ok(Stopped::Exited(status));
                }
                if Instant::now() >= deadline {
                    self.child.kill().context("killing the hung daemon")?;
                    self.child.wait()?;
                    self.exited = true;
                    return Ok(Stopped::Hung);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        /// The last lines of the daemon's log, to show why it misbehaved.
        pub fn log_tail(&self, lines: usize) -> String {
            let log = self.log();
            let all: Vec<&str> = log.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }

        /// Keeps the temp dir on disk (store and log) for a look after a failed check.
        pub fn keep_dir(&mut self) -> PathBuf {
            match self.dir.take() {
                Some(dir) => dir.keep(),
                None => self.root.clone(),
            }
        }

        fn log(&self) -> String {
            std::fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("(no log: {e})"))
        }
    }

    /// How the daemon ended after SIGTERM.
    pub enum Stopped {
        Exited(ExitStatus),
        /// Still running 30 s after SIGTERM; killed with SIGKILL.
        Hung,
    }

    impl Drop for Daemon {
        /// A bench that errors out must not leave a daemon running.
        fn drop(&mut self) {
            if !self.exited {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    /// Asks the OS for a free port. The port is released before tocsin binds it; the race
    /// is harmless on a bench machine and the health check would show it.
    fn free_port() -> Result<u16> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        Ok(listener.local_addr()?.port())
    }

    /// Paging an hour out keeps notifiers idle: this measures ingest, not notification.
    fn config_toml(listen: &str, data_dir: &Path) -> String {
        // A JSON string is a valid TOML basic string: escapes the path whatever it holds.
        let data_dir = serde_json::to_string(&data_dir.to_string_lossy()).expect("string");
        format!(
            r#"[server]
listen = "{listen}"
max_body = "4MiB"

[storage]
data_dir = {data_dir}

[notifiers.console]
type = "log"

[policies.bench]
steps = [{{ after = "1h", notify = ["console"] }}]

[[routes]]
policy = "bench"
"#
        )
    }
}

/// Reads the daemon's SQLite file after it stopped and compares it with what was answered 200.
mod store_check {
    use super::*;
    use payload::AlertKey;

    pub struct StoreCheck {
        /// Answered alerts with no row for their fingerprint.
        missing: Vec<AlertKey>,
        /// Answered alerts whose row holds another starts_at.
        wrong_start: Vec<(AlertKey, i64)>,
    }

    impl StoreCheck {
        pub fn complete(&self) -> bool {
            self.missing.is_empty() && self.wrong_start.is_empty()
        }

        pub fn print(&self, answered: usize) {
            let present = answered - self.missing.len() - self.wrong_start.len();
            if self.complete() {
                println!("storm: {present}/{answered} alerts answered 200 are in the store");
                return;
            }
            println!(
                "storm: {present}/{answered} alerts answered 200 are in the store; \
                 {} missing, {} stored with another starts_at",
                self.missing.len(),
                self.wrong_start.len()
            );
            for key in self.missing.iter().take(5) {
                println!(
                    "   missing {:016x} starts_at {}",
                    key.fingerprint, key.starts_at_ms
                );
            }
            for (key, stored) in self.wrong_start.iter().take(5) {
                println!(
                    "   {:016x} sent starts_at {} stored {stored}",
                    key.fingerprint, key.starts_at_ms
                );
            }
        }
    }

    pub fn run(db: &Path, answered: &[AlertKey]) -> Result<StoreCheck> {
        let stored = stored_alerts(db)?;
        let mut check = StoreCheck {
            missing: Vec::new(),
            wrong_start: Vec::new(),
        };
        for key in answered {
            match stored.get(&key.fingerprint) {
                None => check.missing.push(*key),
                Some(starts) if !starts.contains(&key.starts_at_ms) => {
                    check.wrong_start.push((*key, starts[0]))
                }
                Some(_) => {}
            }
        }
        Ok(check)
    }

    /// Fingerprint -> starts_at of every stored row (an alert may sit in several incidents).
    fn stored_alerts(db: &Path) -> Result<HashMap<u64, Vec<i64>>> {
        let conn =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .with_context(|| format!("opening {} read-only", db.display()))?;
        let mut stmt = conn
            .prepare("SELECT fingerprint, starts_at FROM alerts")
            .context("querying the alerts table")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut stored: HashMap<u64, Vec<i64>> = HashMap::new();
        for row in rows {
            let (fingerprint, starts_at) = row?;
            if let Ok(fp) = u64::from_str_radix(&fingerprint, 16) {
                stored.entry(fp).or_default().push(starts_at);
            }
        }
        Ok(stored)
    }
}
