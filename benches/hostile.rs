//! Slowloris bench: `cargo bench --bench hostile -- [options]`.
//!
//! Whoever can reach tocsin's listener (it must be reachable for ack links and Twilio)
//! can open connections that send half a request and then nothing. Each holds a file
//! descriptor in the daemon; before the listener had limits, 1,100 of them under a
//! 1,024-fd limit shut `/healthz` out and made an escalation step due meanwhile fail for
//! good ("Too many open files" on the page's socket). This bench measures what such a
//! flood does now, against the targets: every `/healthz` probe answered, p99 <= 100 ms,
//! and the page due during the flood sent within 1 s of its time.
//!
//! Flow: start the release daemon under `ulimit -n` (the ingest bench's `daemon.rs`),
//! with one escalation step `--step-after` after an alert, paging through a webhook to
//! a catcher inside this bench. Post the alert, open `--connections` slowloris
//! connections (each reopened `--reopen-after` the daemon closed it, so the flood never
//! relents), probe `/healthz` on a fresh connection every `--probe-every` until the page
//! has arrived and `--probes` were made, then print the figures beside the targets.
//!
//! Run without `--bench` (as `cargo test --benches` does) it makes a short smoke run: 300
//! connections under a 256-fd limit and a step 3 s out.

#![forbid(unsafe_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

// The ingest bench's daemon starter; this bench leaves some of its helpers unused.
#[allow(dead_code)]
#[path = "ingest/daemon.rs"]
mod daemon;

/// The alert whose escalation must not be delayed: a real Alertmanager delivery.
const FIRING: &str = include_str!("../tests/it/payloads/am-0.25-api-two-alerts-firing.json");

/// Targets, from issue 13: the flood neither shuts out `/healthz` nor delays a page.
const HEALTHZ_P99_TARGET: Duration = Duration::from_millis(100);
const PAGE_DELAY_TARGET: Duration = Duration::from_secs(1);

#[derive(Parser, Debug)]
#[command(
    name = "hostile",
    about = "Slowloris flood against tocsin: /healthz latency and the delay of a page due meanwhile"
)]
struct Cli {
    /// Half-sent requests held open at all times [default: 1100; smoke run: 300].
    #[arg(long)]
    connections: Option<usize>,
    /// The daemon's file descriptor limit, soft and hard [default: 1024; smoke run: 256].
    #[arg(long)]
    open_files: Option<u32>,
    /// When the escalation step is due after the alert [default: 10s; smoke run: 3s].
    #[arg(long, value_parser = humantime::parse_duration)]
    step_after: Option<Duration>,
    /// `/healthz` probes to make at least, each on a new connection [default: 200; smoke: 20].
    #[arg(long)]
    probes: Option<usize>,
    /// How long after the daemon closed one of them a connection is opened again (the
    /// slowloris tool re-creates dropped sockets on its next round; 0s makes the flood
    /// a connection storm as fast as this process can connect).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    reopen_after: Duration,
    /// Time between two `/healthz` probes.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    probe_every: Duration,
    /// Passed by `cargo bench` to harness=false benches; its absence means a smoke run.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The workload, from the flags or the defaults of a timed or smoke run.
struct Plan {
    connections: usize,
    open_files: u32,
    step_after: Duration,
    probes: usize,
}

impl Plan {
    fn from(cli: &Cli) -> Plan {
        let smoke = !cli.bench;
        Plan {
            connections: cli.connections.unwrap_or(if smoke { 300 } else { 1100 }),
            open_files: cli.open_files.unwrap_or(if smoke { 256 } else { 1024 }),
            step_after: cli
                .step_after
                .unwrap_or(Duration::from_secs(if smoke { 3 } else { 10 })),
            probes: cli.probes.unwrap_or(if smoke { 20 } else { 200 }),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hostile bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if !cli.bench {
        println!("smoke run (no --bench flag): a small flood, targets not meaningful");
    }
    let plan = Plan::from(&cli);
    // The attacker needs more descriptors than the daemon has.
    let own = rlimit::increase_nofile_limit(u64::MAX).context("raising the bench's fd limit")?;
    if own < plan.connections as u64 + 64 {
        bail!(
            "this process may open only {own} files, too few for {} connections: raise `ulimit -Hn`",
            plan.connections
        );
    }
    let (catcher_url, mut pages) = page_catcher().await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?;
    let step_after = humantime::format_duration(plan.step_after).to_string();
    let mut daemon = daemon::Daemon::start_with(
        Path::new(env!("CARGO_BIN_EXE_tocsin")),
        &client,
        &|listen, data_dir| config_toml(listen, data_dir, &catcher_url, &step_after),
        Some(plan.open_files),
    )
    .await?;
    println!(
        "{} slowloris connections (reopened {} after a close) against a daemon limited to {} files; a page due {step_after} after the alert",
        plan.connections,
        humantime::format_duration(cli.reopen_after),
        plan.open_files
    );

    let r = client
        .post(format!("{}/hooks/alertmanager", daemon.base_url))
        .header("content-type", "application/json")
        .body(FIRING)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("the alert was refused: {}", r.status());
    }
    let due = Instant::now() + plan.step_after;

    let addr = daemon.base_url.trim_start_matches("http://").to_string();
    let flood = Flood::start(&addr, plan.connections, cli.reopen_after).await;
    println!(
        "flood up: {} connections open, {} reopened after the daemon closed them so far",
        flood.open.load(Ordering::Relaxed),
        flood.reopened.load(Ordering::Relaxed)
    );

    let mut probes = Probes::default();
    let mut page_at = None;
    let give_up = due + Duration::from_secs(30);
    while page_at.is_none() || probes.made() < plan.probes {
        if page_at.is_none() {
            if let Ok(at) = pages.try_recv() {
                page_at = Some(at);
            } else if Instant::now() > give_up {
                break;
            }
        }
        probes.probe(&addr).await;
        tokio::time::sleep(cli.probe_every).await;
    }
    daemon.ensure_running()?;
    let reopened = flood.stop();
    let log = daemon.log_tail(100_000);
    let emfile = |l: &&str| l.contains("Too many open files");
    let accept_errors = log
        .lines()
        .filter(emfile)
        .filter(|l| l.contains("cannot accept"))
        .count();
    let fd_errors = log.lines().filter(emfile).count() - accept_errors;

    let report = Report {
        probes,
        page_delay: page_at.map(|at| at.saturating_duration_since(due)),
        reopened,
        accept_errors,
        fd_errors,
    };
    report.print(&plan);
    Ok(if report.pass() {
        ExitCode::SUCCESS
    } else {
        if !cli.bench {
            println!("daemon log:\n{}", daemon.log_tail(40));
        }
        ExitCode::FAILURE
    })
}

/// A page goes to alice through the webhook notifier `hook`, at `step_after`.
fn config_toml(listen: &str, data_dir: &Path, catcher: &str, step_after: &str) -> String {
    let data_dir = daemon::toml_string(data_dir);
    format!(
        r#"[server]
listen = "{listen}"

[storage]
data_dir = {data_dir}

[notifiers.hook]
type = "webhook"
url = "{catcher}"
timeout = "2s"

[contacts.alice]
methods = [{{ notifier = "hook", to = "alice@pager" }}]

[policies.default]
steps = [{{ after = "{step_after}", notify = ["alice"] }}]

[[routes]]
policy = "default"
"#
    )
}

/// A webhook receiver in the bench: the instant each page arrived.
async fn page_catcher() -> Result<(String, mpsc::UnboundedReceiver<Instant>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/page",
        axum::routing::post(move || {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Instant::now());
                "ok"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/page", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, rx))
}

/// Connections that each send half a request and then nothing; one the daemon closes
/// is opened again `reopen_after` later, as the slowloris tool does.
struct Flood {
    open: Arc<AtomicU64>,
    reopened: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Flood {
    /// Returns once every connection has been opened once (or refused).
    async fn start(addr: &str, connections: usize, reopen_after: Duration) -> Flood {
        let open = Arc::new(AtomicU64::new(0));
        let reopened = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(connections);
        for _ in 0..connections {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let (addr, open, reopened) = (addr.to_string(), open.clone(), reopened.clone());
            tasks.push(tokio::spawn(async move {
                let mut ready = Some(ready_tx);
                loop {
                    let held = half_request(&addr).await;
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    } else {
                        reopened.fetch_add(1, Ordering::Relaxed);
                    }
                    match held {
                        Some(mut s) => {
                            open.fetch_add(1, Ordering::Relaxed);
                            // Wait for the daemon to close it (EOF or reset).
                            let _ = s.read(&mut [0u8; 512]).await;
                            open.fetch_sub(1, Ordering::Relaxed);
                            tokio::time::sleep(reopen_after).await;
                        }
                        None => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }));
            let _ = ready_rx.await;
        }
        Flood {
            open,
            reopened,
            tasks,
        }
    }

    /// Ends the flood; returns how many connections were reopened.
    fn stop(self) -> u64 {
        for t in &self.tasks {
            t.abort();
        }
        self.reopened.load(Ordering::Relaxed)
    }
}

/// Opens one connection that sends half a request and then nothing (slowloris).
async fn half_request(addr: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .ok()?;
    Some(s)
}

/// `/healthz` as a monitor probes it: a new connection each time.
#[derive(Default)]
struct Probes {
    /// Latencies of the probes answered 200.
    answered: Vec<Duration>,
    /// Probes refused, timed out or answered with another status.
    failed: usize,
}

impl Probes {
    fn made(&self) -> usize {
        self.answered.len() + self.failed
    }

    async fn probe(&mut self, addr: &str) {
        let start = Instant::now();
        let ok = tokio::time::timeout(Duration::from_secs(5), healthz(addr)).await;
        match ok {
            Ok(true) => self.answered.push(start.elapsed()),
            _ => self.failed += 1,
        }
    }
}

/// One `GET /healthz` on a fresh connection: whether it was answered 200.
async fn healthz(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    let req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if s.write_all(req).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.is_ok() && &head[9..12] == b"200"
}

/// The figures beside the targets.
struct Report {
    probes: Probes,
    /// How long after it was due the page arrived; `None` if it never did.
    page_delay: Option<Duration>,
    reopened: u64,
    /// Warnings that the daemon could not accept a connection (for want of a descriptor):
    /// logged at the 1st, 2nd, 4th, 8th... failure in a row.
    accept_errors: usize,
    /// Any other "Too many open files" in the daemon's log: a page's socket, the store.
    fd_errors: usize,
}

impl Report {
    fn healthz_p(&self, q: f64) -> Option<Duration> {
        percentile(&self.probes.answered, q)
    }

    fn checks(&self) -> [(String, String, String, bool); 3] {
        let ms = |d: Option<Duration>| match d {
            Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1000.0),
            None => "none".to_string(),
        };
        let p99 = self.healthz_p(0.99);
        [
            (
                "/healthz answered".to_string(),
                format!("{}/{}", self.probes.answered.len(), self.probes.made()),
                "all".to_string(),
                self.probes.failed == 0 && !self.probes.answered.is_empty(),
            ),
            (
                "/healthz latency p50 / p99".to_string(),
                format!("{} / {}", ms(self.healthz_p(0.50)), ms(p99)),
                format!("p99 <= {}", ms(Some(HEALTHZ_P99_TARGET))),
                p99.is_some_and(|p| p <= HEALTHZ_P99_TARGET),
            ),
            (
                "page delay after its due time".to_string(),
                ms(self.page_delay),
                format!("<= {}", ms(Some(PAGE_DELAY_TARGET))),
                self.page_delay.is_some_and(|d| d <= PAGE_DELAY_TARGET),
            ),
        ]
    }

    fn pass(&self) -> bool {
        self.fd_errors == 0 && self.checks().iter().all(|c| c.3)
    }

    fn print(&self, plan: &Plan) {
        println!(
            "\n== slowloris: {} connections, daemon limited to {} files ==",
            plan.connections, plan.open_files
        );
        println!(
            "   connections reopened after the daemon closed them: {}; \"Too many open files\" in its log: {} accept warnings (at the 1st, 2nd, 4th... failure), {} elsewhere (pages, store)",
            self.reopened, self.accept_errors, self.fd_errors
        );
        println!(
            "   /healthz max: {}",
            self.healthz_p(1.0).map_or("none".into(), |d| format!(
                "{:.1} ms",
                d.as_secs_f64() * 1000.0
            ))
        );
        for (what, value, target, pass) in self.checks() {
            let marker = if pass { "PASS" } else { "MISS" };
            println!("   {marker}  {what:<32} {value:>22}   target {target}");
        }
    }
}

/// The `q` quantile (nearest rank) of `samples`.
fn percentile(samples: &[Duration], q: f64) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}
