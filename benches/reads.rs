//! Read flood bench: `cargo bench --bench reads -- [options]`.
//!
//! Anonymous readers must not be able to slow a page down or blow up tocsin's memory. This
//! bench starts the release daemon in a temp dir, seeds it with `--incidents` incidents of
//! `--alerts` alerts each, then lets `--readers` clients loop as fast as they can: three in
//! four walk the incident list a biggest page (500) at a time, following `next`; the others
//! read single incidents. Meanwhile it opens a new incident every `--probe-every` and
//! measures the time from the webhook POST to its page arriving at a local catcher (the
//! daemon's `webhook` notifier), and prints p50/p99 of that first-page latency and the
//! daemon's peak RSS beside the targets: p99 <= 50 ms, peak RSS <= 64 MB. The same latency
//! measured at rest, before the flood, is printed for comparison.
//!
//! Run without `--bench` (as `cargo test --benches` and nextest do) it makes a short smoke
//! run on a small store instead; its figures are not meaningful.

#![forbid(unsafe_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// First-page latency under the flood, 99th percentile.
const TARGET_P99_MS: f64 = 50.0;
/// The daemon's peak resident memory over the whole run.
const TARGET_RSS_MB: f64 = 64.0;
/// The biggest page the API serves.
const LIST_LIMIT: usize = 500;
/// Probes measured at rest, before the flood.
const REST_PROBES: usize = 10;

#[derive(Parser, Debug)]
#[command(
    name = "reads",
    about = "Read flood against tocsin's API while new incidents page"
)]
struct Cli {
    /// Incidents seeded before the flood [default: 3000; smoke run 200].
    #[arg(long)]
    incidents: Option<u32>,
    /// Alerts per seeded incident.
    #[arg(long, default_value_t = 20)]
    alerts: u32,
    /// Concurrent readers, each looping on its next request as soon as one is answered.
    #[arg(long, default_value_t = 16)]
    readers: usize,
    /// How long the flood lasts [default: 20s; smoke run 3s].
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// A new incident (probe) is opened this often during the flood.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    probe_every: Duration,
    /// Passed by `cargo bench` to harness=false benches; its absence means a smoke run.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reads bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let smoke = !cli.bench;
    if smoke {
        println!(
            "smoke run (no --bench flag): a small store and a short flood, targets not meaningful"
        );
    }
    let incidents = cli.incidents.unwrap_or(if smoke { 200 } else { 3_000 });
    let duration = cli.duration.unwrap_or(if smoke {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(20)
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(cli.readers + 16)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let (catcher, mut arrivals) = Catcher::start().await?;
    let hook = catcher.url.clone();
    let mut daemon = daemon::Daemon::start_with(
        Path::new(env!("CARGO_BIN_EXE_tocsin")),
        &client,
        &|listen, data_dir| config_toml(listen, data_dir, &hook),
        None,
    )
    .await?;
    let base = daemon.base_url.clone();

    let seeding = Instant::now();
    seed(&client, &base, incidents, cli.alerts).await?;
    println!(
        "seeded {incidents} incidents of {} alerts in {:.1} s",
        cli.alerts,
        seeding.elapsed().as_secs_f64()
    );

    let mut probes = Probes::new(&client, &base);
    let mut at_rest = Vec::new();
    for _ in 0..REST_PROBES {
        at_rest.push(probes.one(&mut arrivals).await?);
        tokio::time::sleep(cli.probe_every).await;
    }
    let rss_before = measure::Rss::read(daemon.pid);

    println!(
        "\n== read flood: {} readers on {incidents} incidents x {} alerts, {:.0} s, a probe every {:?} ==",
        cli.readers,
        cli.alerts,
        duration.as_secs_f64(),
        cli.probe_every
    );
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(Served::default());
    let mut readers = tokio::task::JoinSet::new();
    for n in 0..cli.readers {
        let (client, base, stop, served) = (
            client.clone(),
            base.clone(),
            Arc::clone(&stop),
            Arc::clone(&served),
        );
        readers.spawn(async move { read_loop(n, &client, &base, incidents, &stop, &served).await });
    }
    let flood_start = Instant::now();
    let mut in_flood = Vec::new();
    let mut peak_now_kb = 0;
    while flood_start.elapsed() < duration {
        in_flood.push(probes.one(&mut arrivals).await?);
        if let Some(rss) = measure::Rss::read(daemon.pid) {
            peak_now_kb = peak_now_kb.max(rss.now_kb);
        }
        daemon.ensure_running()?;
        tokio::time::sleep(cli.probe_every).await;
    }
    stop.store(true, Ordering::Relaxed);
    let flood = flood_start.elapsed();
    while let Some(r) = readers.join_next().await {
        r.context("a reader panicked")??;
    }
    let rss = measure::Rss::read(daemon.pid);
    daemon.ensure_running()?;
    // Everything here shares the machine's cores: others' load is part of the figures.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let one_minute = load.split_whitespace().next().unwrap_or("?");
        println!(
            "   machine load average (1 min) at the end: {one_minute} on {} cores",
            std::thread::available_parallelism().map_or(0, usize::from)
        );
    }

    let secs = flood.as_secs_f64();
    let lists = served.lists.load(Ordering::Relaxed);
    let details = served.details.load(Ordering::Relaxed);
    let mb = served.bytes.load(Ordering::Relaxed) as f64 / 1e6;
    println!(
        "   reads served: {lists} list pages of up to {LIST_LIMIT}, {details} incidents; \
         {:.0} reads/s, {:.1} MB/s",
        (lists + details) as f64 / secs,
        mb / secs
    );
    let rest = Latencies::of(at_rest);
    let under = Latencies::of(in_flood);
    println!(
        "   first page at rest:    p50 {:>7.1} ms  p99 {:>7.1} ms  ({} probes)",
        rest.ms(0.50),
        rest.ms(0.99),
        rest.count()
    );
    let p99 = under.ms(0.99);
    println!(
        "   first page in flood:   p50 {:>7.1} ms  p99 {:>7.1} ms  max {:.1} ms  ({} probes)   target p99 <= {TARGET_P99_MS} ms  {}",
        under.ms(0.50),
        p99,
        under.ms(1.0),
        under.count(),
        verdict(p99 <= TARGET_P99_MS)
    );
    let mb_of = |kb: u64| kb as f64 / 1024.0;
    match (rss_before, rss) {
        (Some(before), Some(after)) => {
            let peak = mb_of(after.peak_kb);
            println!(
                "   daemon RSS: {:.1} MB before the flood, {:.1} MB at most during it, peak {peak:.1} MB   target peak <= {TARGET_RSS_MB} MB  {}",
                mb_of(before.now_kb),
                mb_of(peak_now_kb),
                verdict(peak <= TARGET_RSS_MB)
            );
        }
        _ => println!("   daemon RSS: unknown (no /proc)"),
    }
    match daemon.stop().await? {
        daemon::Stopped::Exited(status) => println!("   daemon stopped by SIGTERM: {status}"),
        daemon::Stopped::Hung => bail!(
            "the daemon was still running 30 s after SIGTERM; its log:\n{}",
            daemon.log_tail(20)
        ),
    }
    Ok(())
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// The seeded incidents page nobody (an hour out, to the log); probes page at once
/// through the `webhook` notifier to the catcher.
fn config_toml(listen: &str, data_dir: &Path, hook: &str) -> String {
    let data_dir = daemon::toml_string(data_dir);
    format!(
        r#"[server]
listen = "{listen}"

[storage]
data_dir = {data_dir}

[notifiers.console]
type = "log"
[notifiers.hook]
type = "webhook"
url = "{hook}"

[contacts.oncall]
methods = [{{ notifier = "hook", to = "oncall@pager" }}]

[policies.quiet]
steps = [{{ after = "1h", notify = ["console"] }}]
[policies.page]
steps = [{{ after = "0s", notify = ["oncall"] }}]

[[routes]]
matchers = ['tier="probe"']
policy = "page"
[[routes]]
policy = "quiet"
"#
    )
}

/// An Alertmanager notification for group `group` with `alerts` firing alerts.
fn notification(group: &str, alerts: u32, tier: &str) -> Value {
    let alerts: Vec<Value> = (0..alerts)
        .map(|i| {
            let instance = format!("host{i:03}.{group}.example.net:9100");
            json!({
                "status": "firing",
                "labels": {
                    "alertname": "DiskAlmostFull", "instance": instance, "job": "node",
                    "severity": "critical", "tier": tier, "group": group,
                },
                "annotations": {
                    "summary": format!("Disk almost full on {instance}"),
                    "description": "The root filesystem has less than 5% space left.",
                },
                "startsAt": "2026-11-21T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=node_filesystem_avail_bytes",
                "fingerprint": format!("{:016x}", fnv(&instance)),
            })
        })
        .collect();
    json!({
        "receiver": "tocsin",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": {"group": group},
        "commonLabels": {"alertname": "DiskAlmostFull", "severity": "critical", "tier": tier, "group": group},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.net:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{group=\"{group}\"}}"),
        "truncatedAlerts": 0,
    })
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Opens `incidents` incidents, 16 webhooks at a time.
async fn seed(client: &reqwest::Client, base: &str, incidents: u32, alerts: u32) -> Result<()> {
    const AT_ONCE: u32 = 16;
    let mut posts = tokio::task::JoinSet::new();
    for w in 0..AT_ONCE {
        let (client, base) = (client.clone(), base.to_string());
        posts.spawn(async move {
            for n in (w..incidents).step_by(AT_ONCE as usize) {
                let body = notification(&format!("seed-{n}"), alerts, "seed");
                let r = client
                    .post(format!("{base}/hooks/alertmanager"))
                    .json(&body)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("seeding incident {n}: {}", r.status());
                }
            }
            Ok(())
        });
    }
    while let Some(r) = posts.join_next().await {
        r.context("a seeding task panicked")??;
    }
    Ok(())
}

/// What the readers were served.
#[derive(Default)]
struct Served {
    lists: AtomicU64,
    details: AtomicU64,
    bytes: AtomicU64,
}

/// One reader: walks the list a biggest page at a time, or (every fourth reader) reads
/// incidents one by one, until told to stop.
async fn read_loop(
    n: usize,
    client: &reqwest::Client,
    base: &str,
    incidents: u32,
    stop: &AtomicBool,
    served: &Served,
) -> Result<()> {
    let mut before: Option<u64> = None;
    let mut id = u64::from(n as u32 * 7919 % incidents.max(1)) + 1;
    while !stop.load(Ordering::Relaxed) {
        let details = n % 4 == 3;
        let url = if details {
            id = id % u64::from(incidents.max(1)) + 1;
            format!("{base}/api/v1/incidents/{id}")
        } else {
            match before {
                Some(b) => format!("{base}/api/v1/incidents?limit={LIST_LIMIT}&before={b}"),
                None => format!("{base}/api/v1/incidents?limit={LIST_LIMIT}"),
            }
        };
        let r = client.get(&url).send().await?;
        if !r.status().is_success() {
            bail!("GET {url}: {}", r.status());
        }
        let body = r.bytes().await?;
        served.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        if details {
            served.details.fetch_add(1, Ordering::Relaxed);
        } else {
            served.lists.fetch_add(1, Ordering::Relaxed);
            before = next_of(&body).with_context(|| format!("no next at the end of {url}"))?;
        }
    }
    Ok(())
}

/// The `next` of a list page, from its end (`...],"next":4201}`): parsing megabytes of
/// JSON on the bench's threads would delay the catcher's clock, not tocsin.
fn next_of(body: &[u8]) -> Option<Option<u64>> {
    let tail = std::str::from_utf8(&body[body.len().saturating_sub(64)..]).ok()?;
    let value = tail
        .rsplit_once("\"next\":")?
        .1
        .trim_end_matches('}')
        .trim();
    match value {
        "null" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// Opens probe incidents one at a time and times each until its page arrives.
struct Probes<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    sent: u32,
}

impl<'a> Probes<'a> {
    fn new(client: &'a reqwest::Client, base: &'a str) -> Self {
        Probes {
            client,
            base,
            sent: 0,
        }
    }

    /// Microseconds from the webhook POST to the page at the catcher.
    async fn one(
        &mut self,
        arrivals: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    ) -> Result<u32> {
        self.sent += 1;
        let group = format!("probe-{}", self.sent);
        let key = format!("{{}}:{{group=\"{group}\"}}");
        let body = notification(&group, 1, "probe");
        let sent = Instant::now();
        let r = self
            .client
            .post(format!("{}/hooks/alertmanager", self.base))
            .json(&body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("probe {group}: {}", r.status());
        }
        let arrived = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some((k, at)) = arrivals.recv().await {
                if k == key {
                    return Some(at);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .with_context(|| format!("the page of {group} did not arrive within 60 s"))?;
        Ok(u32::try_from(arrived.duration_since(sent).as_micros()).unwrap_or(u32::MAX))
    }
}

/// Sorted latencies in microseconds.
struct Latencies(Vec<u32>);

impl Latencies {
    fn of(mut v: Vec<u32>) -> Self {
        v.sort_unstable();
        Latencies(v)
    }
    fn ms(&self, q: f64) -> f64 {
        f64::from(measure::percentile(&self.0, q)) / 1000.0
    }
    fn count(&self) -> usize {
        self.0.len()
    }
}

/// The receiver of the daemon's `webhook` pages: says which group's page arrived when.
struct Catcher {
    url: String,
}

impl Catcher {
    /// On a thread and runtime of its own, so the readers' work never delays its clock.
    async fn start() -> Result<(Catcher, mpsc::UnboundedReceiver<(String, Instant)>)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new()
            .route("/page", axum::routing::post(caught))
            .with_state(tx);
        std::thread::Builder::new()
            .name("catcher".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("catcher runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    axum::serve(listener, app).await
                })
            })?;
        Ok((
            Catcher {
                url: format!("http://{addr}/page"),
            },
            rx,
        ))
    }
}

async fn caught(
    State(tx): State<mpsc::UnboundedSender<(String, Instant)>>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    if let Ok(page) = serde_json::from_slice::<Value>(&body)
        && let Some(key) = page["incident"]["group_key"].as_str()
    {
        let _ = tx.send((key.to_string(), at));
    }
    StatusCode::OK
}

// Shared with the ingest bench, which uses all of them.
#[allow(dead_code)]
#[path = "ingest/daemon.rs"]
mod daemon;
#[allow(dead_code)]
#[path = "ingest/measure.rs"]
mod measure;
