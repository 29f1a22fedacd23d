//! Start-up bench: `cargo bench --bench startup -- [--incidents N]`.
//!
//! A restart must not need more memory than running did, and must be quick, since
//! nothing is paged while tocsin restores. Targets: 10,000 open incidents of 3 alerts
//! restored in <= 200 ms, and the restarted daemon's peak RSS <= 1.25 x the RSS of the
//! daemon that held the same incidents before the restart.
//!
//! Flow: start the release daemon in a temp dir, open `--incidents` incidents of 3
//! firing alerts each through the Alertmanager webhook, read the daemon's RSS, stop it
//! (SIGTERM), start it again on the same data dir, and read the restore time it logs
//! (`state restored ... took_ms`) and its peak RSS (VmHWM) once it answers /healthz.
//!
//! Run without `--bench` (as `cargo test --benches` does) it makes a short smoke run
//! with a few hundred incidents instead.

#![forbid(unsafe_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};

/// Incidents in a smoke run (no `--bench` flag).
const SMOKE_INCIDENTS: u32 = 300;
/// Alerts per incident, as in the target.
const ALERTS_PER_INCIDENT: u32 = 3;
/// Webhook requests in flight while seeding.
const CONCURRENCY: usize = 32;
/// Targets.
const RESTORE_TARGET_MS: u64 = 200;
const PEAK_RATIO_TARGET: f64 = 1.25;

#[derive(Parser, Debug)]
#[command(
    name = "startup",
    about = "Restore time and memory of a restarted tocsin"
)]
struct Cli {
    /// Open incidents to seed [default: 10000; 300 in a smoke run].
    #[arg(long)]
    incidents: Option<u32>,
    /// Passed by `cargo bench` to harness=false benches; its absence means a smoke run.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("startup bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let smoke = !cli.bench;
    if smoke {
        println!("smoke run (no --bench flag): a few incidents, targets not meaningful");
    }
    let incidents = cli
        .incidents
        .unwrap_or(if smoke { SMOKE_INCIDENTS } else { 10_000 });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(30))
        .build()?;
    let bin = Path::new(env!("CARGO_BIN_EXE_tocsin"));
    let mut daemon = daemon::Daemon::start(bin, &client).await?;

    let seeding = Instant::now();
    seed(&client, &daemon.base_url, incidents).await?;
    println!(
        "seeded {incidents} incidents x {ALERTS_PER_INCIDENT} alerts in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    // Let the checkpointer and the allocator settle, as a daemon that has run a while has.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = daemon.rss().context("reading the running daemon's RSS")?;

    match daemon.stop().await? {
        daemon::Stopped::Exited(status) if status.success() => {}
        daemon::Stopped::Exited(status) => bail!("tocsin exited with {status} on SIGTERM"),
        daemon::Stopped::Hung => bail!("tocsin did not stop within 30 s of SIGTERM"),
    }
    let restarting = Instant::now();
    daemon.restart(&client).await?;
    let ready = restarting.elapsed();
    let restarted = daemon.rss().context("reading the restarted daemon's RSS")?;
    let log = daemon.log_text();
    let restore_ms = last_restore_ms(&log).context("no 'state restored' line with took_ms")?;
    let open = last_open_count(&log);
    if open != Some(u64::from(incidents)) {
        bail!("the restarted daemon restored {open:?} open incidents, expected {incidents}");
    }
    daemon.stop().await?;

    let ratio = restarted.peak_kb as f64 / running.now_kb as f64;
    println!();
    println!(
        "{incidents} open incidents x {ALERTS_PER_INCIDENT} alerts, restart of {}",
        bin.display()
    );
    println!(
        "  restore (logged took_ms)        {restore_ms:>7} ms   target <= {RESTORE_TARGET_MS} ms   {}",
        verdict(restore_ms <= RESTORE_TARGET_MS, smoke)
    );
    println!(
        "  start to /healthz ready         {:>7} ms",
        ready.as_millis()
    );
    println!(
        "  RSS before the restart          {:>7} KiB",
        running.now_kb
    );
    println!(
        "  peak RSS after (VmHWM)          {:>7} KiB   {ratio:.2} x   target <= {PEAK_RATIO_TARGET} x   {}",
        restarted.peak_kb,
        verdict(ratio <= PEAK_RATIO_TARGET, smoke)
    );
    Ok(ExitCode::SUCCESS)
}

fn verdict(pass: bool, smoke: bool) -> &'static str {
    match (smoke, pass) {
        (true, _) => "(smoke)",
        (false, true) => "PASS",
        (false, false) => "MISS",
    }
}

/// Opens `incidents` incidents, one Alertmanager group each, `CONCURRENCY` at a time.
async fn seed(client: &reqwest::Client, base_url: &str, incidents: u32) -> Result<()> {
    let url = format!("{base_url}/hooks/alertmanager");
    let mut next = 0u32;
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        while in_flight.len() < CONCURRENCY && next < incidents {
            let (client, url, body) = (client.clone(), url.clone(), group(next));
            in_flight.spawn(async move {
                let resp = client.post(&url).json(&body).send().await?;
                if !resp.status().is_success() {
                    bail!("webhook answered {}", resp.status());
                }
                Ok(())
            });
            next += 1;
        }
        match in_flight.join_next().await {
            Some(done) => done.context("a seeding request panicked")??,
            None => return Ok(()),
        }
    }
}

/// A notification for group `n`: three firing alerts on three hosts, labelled and
/// annotated as a real fleet's are.
fn group(n: u32) -> Value {
    let alertname = format!("DiskFull{n}");
    let alerts: Vec<Value> = (0..ALERTS_PER_INCIDENT)
        .map(|h| {
            let instance = format!("db{h}.example.net:9100");
            json!({
                "status": "firing",
                "labels": {
                    "alertname": alertname, "instance": instance, "severity": "critical",
                    "job": "node", "team": "storage", "mountpoint": "/var/lib/postgresql",
                },
                "annotations": {
                    "summary": format!("Disk almost full on {instance}"),
                    "description": "Less than 5% of the volume is free; PostgreSQL stops writing at 0%.",
                    "runbook_url": "https://runbooks.example.net/disk-full",
                },
                "startsAt": "2026-11-21T19:42:06Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.net/graph?g0.expr=node_filesystem_avail_bytes",
                "fingerprint": format!("{:08x}{:08x}", n, h),
            })
        })
        .collect();
    json!({
        "receiver": "tocsin",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "severity": "critical", "job": "node", "team": "storage"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.net:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}"),
        "truncatedAlerts": 0,
    })
}

/// `took_ms` of the last `state restored` line of the log.
fn last_restore_ms(log: &str) -> Option<u64> {
    field_of_last(log, "state restored", "took_ms")
}

fn last_open_count(log: &str) -> Option<u64> {
    field_of_last(log, "state restored", "open")
}

/// A numeric `name=value` field of the last log line containing `marker`.
fn field_of_last(log: &str, marker: &str, name: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains(marker))?;
    let line = &without_colours(line);
    let key = format!("{name}=");
    let at = line
        .match_indices(&key)
        .find(|(i, _)| *i == 0 || line.as_bytes()[i - 1] == b' ')?
        .0;
    let digits: String = line[at + key.len()..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The text of a log line whose fields the logger coloured (`ESC [ ... m`).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// Shared with the ingest bench, which uses other parts of it.
#[allow(dead_code)]
#[path = "ingest/daemon.rs"]
mod daemon;
