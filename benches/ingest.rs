//! Ingest load generator: `cargo bench --bench ingest -- [options]`.
//!
//! tocsin answers an Alertmanager webhook with 200 only after the alerts are committed to
//! its store, and promises flat memory under an alert storm. Both promises cost throughput
//! and RSS, so this bench measures them against the targets. On SQLite (the default): at
//! least 10,000 requests/s at 1 alert per request and 50,000 alerts/s at 50 per request,
//! p99 <= 20 ms. On PostgreSQL (`--store postgres`: a scratch PostgreSQL 15 on this
//! machine, `fsync` and `synchronous_commit` on): at least 20,000 alerts/s at 50 per
//! request, p99 <= 50 ms. On both: peak RSS <= 30 MB (<= 64 MB after the storm).
//!
//! Flow: start the release daemon in a temp dir (or target `--url`), pre-generate realistic
//! Alertmanager v4 bodies, keep exactly `--concurrency` requests in flight per scenario
//! (`single`, `batch`, `storm`), print the figures beside the targets, and after the storm
//! stop the daemon with SIGTERM and check that every alert answered 200 is in the store.
//!
//! `single` and `batch` replay a bounded population, as Alertmanager traffic looks: a fixed
//! set of label sets per group whose alerts fire, resolve and fire again as new instances,
//! so the daemon's open alerts stay bounded however long the run (see `population`). Every
//! first delivery changes the daemon's state; `--dup-ratio` of the requests re-send an
//! earlier body byte for byte, as the second Alertmanager of an HA pair does. The storm
//! sends 100,000 new firing alerts at once.
//!
//! Run without `--bench` (as `cargo test --benches` does) it makes a short smoke run instead,
//! on both stores unless `--store` names one, so a test run checks that the bench and the
//! durability check of each store still work without spending a minute on load.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Bytes; // `bytes::Bytes`, re-exported: cheap clones of a pre-built body.
use clap::{Parser, ValueEnum};
use serde::Serialize;

/// Requests per scenario in a smoke run (no `--bench` flag).
const SMOKE_REQUESTS: u64 = 400;
/// Storm size in a smoke run.
const SMOKE_STORM_ALERTS: u64 = 1_000;
/// Alerts per request in `batch` and `storm`.
const BATCH_SIZE: u32 = 50;
/// Groups of `single` and `batch` in a timed run, unless `--groups` says otherwise.
const DEFAULT_GROUPS: u32 = 500;
/// Storm alerts spread over this many groups (incidents).
const STORM_GROUPS: u32 = 2_000;

#[derive(Parser, Debug)]
#[command(
    name = "ingest",
    about = "Load generator for tocsin's POST /hooks/alertmanager"
)]
struct Cli {
    /// Where the daemon commits: SQLite in its data dir, or a scratch PostgreSQL started
    /// for the run [default: sqlite; a smoke run without it runs both].
    #[arg(long, value_enum)]
    store: Option<StoreKind>,
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
    /// Alertmanager groups (groupKeys, so incidents) in `single` and `batch` [default: 500;
    /// in a smoke run, the fewest the concurrency allows].
    #[arg(long)]
    groups: Option<u32>,
    /// Distinct alerts (label sets) per group in `single` and `batch`. A tenth of them (at
    /// least one request's worth) fire at a time; each resolves later and fires again as
    /// a new instance.
    #[arg(long, default_value_t = 100)]
    alerts_per_group: u32,
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
    /// Memory the pre-generated bodies of one scenario may use; a timed run that sends
    /// them all ends early rather than re-send stale alerts.
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
enum StoreKind {
    Sqlite,
    Postgres,
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
    let stores = match (cli.store, smoke && cli.url.is_none()) {
        (Some(store), _) => vec![store],
        // A test run checks that both stores keep what they answered.
        (None, true) => vec![StoreKind::Sqlite, StoreKind::Postgres],
        (None, false) => vec![StoreKind::Sqlite],
    };
    let mut ok = true;
    for store in stores {
        ok &= run_on(&cli, smoke, store).await?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every scenario against one store; false when the storm's durability check failed.
async fn run_on(cli: &Cli, smoke: bool, store: StoreKind) -> Result<bool> {
    let scenarios = scenarios(cli, smoke)?;
    let client = http_client(cli.concurrency)?;
    // Declared before the daemon, so dropped after it: the daemon never loses its database.
    let postgres = match (store, &cli.url) {
        (StoreKind::Postgres, None) => Some(postgres::start().await?),
        _ => None,
    };
    let storage = match &postgres {
        Some(server) => daemon::Storage::Postgres(server.url()),
        None => daemon::Storage::DataDir,
    };
    let mut daemon = match &cli.url {
        Some(_) => None,
        None => Some(
            daemon::Daemon::start_on(Path::new(env!("CARGO_BIN_EXE_tocsin")), &client, &storage)
                .await?,
        ),
    };
    let base_url = match (&cli.url, &daemon) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(d)) => d.base_url.clone(),
        (None, None) => unreachable!("a daemon is started when no --url is given"),
    };
    let pid = daemon.as_ref().map(|d| d.pid).or(cli.pid);
    let run_tag = run_tag();
    println!(
        "target {base_url} ({store:?} store), concurrency {}, client threads {}, run tag {run_tag}",
        cli.concurrency, cli.client_threads
    );
    let targets = report::Targets::of(store);

    let mut rows = Vec::new();
    let mut storm_ok = true;
    let mut counters = commits::Counters::read(&client, &base_url).await;
    for scenario in &scenarios {
        let (title, population) = scenario.describe(cli.concurrency);
        println!("\n== {title} ==\n   {population}");
        let generating = Instant::now();
        let pool = payload::Pool::generate(scenario, &run_tag, cli.pool_mb);
        let plan = plan::build(scenario, &pool);
        println!(
            "   {} distinct bodies ({:.1} MB) pre-generated in {:.1} s; their first deliveries \
             fire {} and resolve {} alerts ({})",
            pool.bodies.len(),
            pool.bytes as f64 / 1e6,
            generating.elapsed().as_secs_f64(),
            pool.fired,
            pool.resolved,
            report::mix(pool.fired, pool.resolved)
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
        let row = report::Row::new(
            scenario,
            targets,
            &outcome,
            pid.and_then(measure::Rss::read),
        );
        row.print_block(&outcome);
        let counted = commits::Counters::read(&client, &base_url).await;
        if let (Some(after), Some(before)) = (counted, counters) {
            after.print_since(&before, outcome.wall);
        }
        counters = counted;
        rows.push(row);
        if scenario.kind == ScenarioKind::Storm {
            storm_ok = check_storm(daemon.as_mut(), &storage, &pool, &outcome).await?;
        }
    }
    report::print_summary(&rows, targets);
    Ok(storm_ok)
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
    /// `single` and `batch`: the fixed alert population and how its alerts fire and
    /// resolve. `None` for the storm, whose alerts are all new and all firing.
    lifecycle: Option<population::Lifecycle>,
    dup_ratio: f64,
    /// Duplicates re-send one of the last this-many distinct bodies.
    dup_window: u64,
    stop: Stop,
    /// Requests per second the daemon might reach, times two: sizes the body pool of a timed run.
    rate_hint: f64,
}

impl Scenario {
    /// The header line and the population line.
    fn describe(&self, concurrency: usize) -> (String, String) {
        let stop = match self.stop {
            Stop::After(d) => format!("{} s", d.as_secs_f64()),
            Stop::Requests(n) => format!("{n} requests"),
        };
        let population = match &self.lifecycle {
            Some(l) => l.describe(),
            None => {
                let bodies = match self.stop {
                    Stop::Requests(n) => n,
                    Stop::After(_) => 0,
                };
                let groups = bodies.min(u64::from(self.groups.max(1)));
                let per_group = bodies.div_ceil(groups.max(1)) * u64::from(self.alerts_per_request);
                format!(
                    "population {} label sets in {groups} groups (up to {per_group} per group), \
                     every one new; mix: 100% fire, nothing resolves",
                    bodies * u64::from(self.alerts_per_request)
                )
            }
        };
        let window = if self.dup_ratio > 0.0 && self.dup_window < plan::DUP_WINDOW {
            format!(" (of the last {} distinct bodies)", self.dup_window)
        } else {
            String::new()
        };
        let title = format!(
            "{}: {} alert(s)/request, {} groups, {:.0}% duplicates{window}, concurrency {concurrency}, {stop}",
            self.name,
            self.alerts_per_request,
            self.groups,
            self.dup_ratio * 100.0
        );
        (title, population)
    }
}

fn scenarios(cli: &Cli, smoke: bool) -> Result<Vec<Scenario>> {
    let stop = match (cli.requests, smoke) {
        (Some(n), _) => Stop::Requests(n),
        (None, true) => Stop::Requests(SMOKE_REQUESTS),
        (None, false) => Stop::After(cli.duration),
    };
    let storm_alerts = cli
        .storm_alerts
        .unwrap_or(if smoke { SMOKE_STORM_ALERTS } else { 100_000 });
    let wanted = |kind: ScenarioKind| cli.scenario.is_none_or(|k| k == kind);
    let mut all = Vec::new();
    for (kind, name, per_request, rate_hint) in [
        (ScenarioKind::Single, "single", 1, 20_000.0),
        (ScenarioKind::Batch, "batch", BATCH_SIZE, 2_000.0),
    ] {
        if !wanted(kind) {
            continue;
        }
        let lifecycle = lifecycle(cli, smoke, per_request).context(name)?;
        all.push(Scenario {
            kind,
            name,
            alerts_per_request: per_request,
            groups: lifecycle.groups as u32,
            dup_window: plan::dup_window(&lifecycle, cli.concurrency).context(name)?,
            lifecycle: Some(lifecycle),
            dup_ratio: cli.dup_ratio,
            stop,
            rate_hint,
        });
    }
    if wanted(ScenarioKind::Storm) {
        all.push(Scenario {
            kind: ScenarioKind::Storm,
            name: "storm",
            alerts_per_request: BATCH_SIZE,
            groups: STORM_GROUPS,
            lifecycle: None,
            dup_ratio: 0.0,
            dup_window: plan::DUP_WINDOW,
            stop: Stop::Requests(storm_alerts.div_ceil(u64::from(BATCH_SIZE))),
            rate_hint: 0.0,
        });
    }
    Ok(all)
}

/// The population of `single` or `batch`. Without `--groups`, a timed run uses 500
/// groups and a smoke run the fewest the concurrency allows, so that its few requests
/// get past the warm-up and resolve alerts too.
fn lifecycle(cli: &Cli, smoke: bool, per_request: u32) -> Result<population::Lifecycle> {
    let groups = match cli.groups {
        Some(g) => g,
        None if smoke => {
            let per_group_gap =
                population::Lifecycle::new(1, cli.alerts_per_group, per_request)?.min_body_gap();
            // Room for a duplicate window of `concurrency` bodies.
            let gap = plan::min_body_gap(cli.concurrency) + cli.concurrency as u64 - 1;
            let least = gap.div_ceil(per_group_gap.max(1));
            u32::try_from(least).unwrap_or(u32::MAX).max(1)
        }
        None => DEFAULT_GROUPS,
    };
    population::Lifecycle::new(groups, cli.alerts_per_group, per_request)
}

/// The durability check: stop the daemon gracefully, then every alert answered 200 must
/// be in its store. Returns false when any is missing or SIGTERM did not stop it.
async fn check_storm(
    daemon: Option<&mut daemon::Daemon>,
    storage: &daemon::Storage,
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
    let stored = match storage {
        daemon::Storage::DataDir => store_check::Stored::Sqlite(&db),
        daemon::Storage::Postgres(url) => store_check::Stored::Postgres(url),
    };
    let check = store_check::run(stored, &answered).await?;
    check.print(answered.len());
    if !check.complete() || !graceful {
        // The scratch PostgreSQL goes with the run; the daemon's config and log stay.
        let kept = daemon.keep_dir();
        println!(
            "   data dir and log kept for inspection: {}",
            kept.display()
        );
    }
    Ok(check.complete() && graceful)
}

// Each module says what it does in its own `//!` header.
#[path = "ingest/commits.rs"]
mod commits;
#[allow(dead_code)] // shared with the startup bench, which restarts the daemon
#[path = "ingest/daemon.rs"]
mod daemon;
#[path = "ingest/load.rs"]
mod load;
#[path = "ingest/measure.rs"]
mod measure;
#[path = "ingest/payload.rs"]
mod payload;
#[path = "ingest/plan.rs"]
mod plan;
#[path = "ingest/population.rs"]
mod population;
#[path = "ingest/postgres.rs"]
mod postgres;
#[path = "ingest/report.rs"]
mod report;
#[path = "ingest/store_check.rs"]
mod store_check;
