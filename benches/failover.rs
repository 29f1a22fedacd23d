//! Failover bench: `cargo bench --bench failover -- [--rounds N] [--lease 10s]`.
//!
//! Two tocsin instances share one PostgreSQL, as two machines would. Alerts arrive
//! steadily, half through each instance, and each opens an incident that pages alice at
//! once and bob a little later. Every round kills the leader with SIGKILL at a moment
//! the bench does not choose with care, measures how long until the other instance
//! answers as the leader, and starts the killed one again (it follows). At the end it
//! counts, from what the page receiver got:
//!
//! - **alerts lost**: answered 200 by either instance but with no incident in the store;
//! - **pages lost**: an incident's step that came due and was never paged;
//! - **pages doubled**: a step paged twice under two page ids (the promise: never);
//! - **pages re-sent**: a step paged twice under one page id, because it was in flight
//!   at the kill (at-least-once, documented; a receiver dedups on `page_id`);
//! - **late pages**: steps that came due during a takeover, and how late they went.
//!
//! Run without `--bench` (as `cargo test --benches` does) it makes one short round
//! with the shortest lease instead.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::extract::State;
use axum::routing::post;
use clap::Parser;
use serde_json::{Value, json};
use tocsin::store::postgres::scratch::ScratchServer;

#[derive(Parser, Debug)]
#[command(
    name = "failover",
    about = "Kills the leader of two tocsin instances, and counts"
)]
struct Cli {
    /// Leaders killed, one per round.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// `[storage] lease` of both instances.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// New alert groups posted per second, alternately to each instance.
    #[arg(long, default_value_t = 10)]
    rate: u32,
    /// Passed by `cargo bench` to harness=false benches; its absence means a smoke run.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One page as the receiver got it.
#[derive(Clone, Debug)]
struct Got {
    page_id: u64,
    incident: u64,
    step: u64,
    target: String,
    late_by: Option<f64>,
}

type Received = Arc<Mutex<Vec<Got>>>;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if !cli.bench {
        println!("smoke run (no --bench flag): one round, a 3 s lease");
        cli.rounds = 1;
        cli.lease = Duration::from_secs(3);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("failover bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let db = ScratchServer::new();
    let received: Received = Arc::default();
    let receiver = receive(received.clone()).await?;
    let lease_s = cli.lease.as_secs().max(3);
    // Bob's step comes due about one lease after the alert: many of them during a
    // takeover, when nobody leads.
    let bob_after = lease_s;
    let url = db.url();
    let config = move |listen: &str, _: &Path| {
        format!(
            r#"
[server]
listen = "{listen}"

[storage]
url = "{url}"
lease = "{lease_s}s"
instance = "{listen}"

[notifiers.hook]
type = "webhook"
url = "{receiver}"
timeout = "2s"

[contacts.alice]
methods = [{{ notifier = "hook", to = "alice" }}]
[contacts.bob]
methods = [{{ notifier = "hook", to = "bob" }}]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}, {{ after = "{bob_after}s", notify = ["bob"] }}]

[[routes]]
policy = "default"
"#
        )
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_tocsin"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut instances = [
        daemon::Daemon::start_with(bin, &http, &config, None).await?,
        daemon::Daemon::start_with(bin, &http, &config, None).await?,
    ];
    let urls: Vec<String> = instances.iter().map(|d| d.base_url.clone()).collect();
    println!(
        "two instances on {} with a {lease_s} s lease; {} new alerts/s; bob paged {bob_after} s after each alert",
        db.url(),
        cli.rate
    );

    let sending = tokio_util_stop();
    let sender = tokio::spawn(send_alerts(
        http.clone(),
        urls.clone(),
        cli.rate,
        sending.clone(),
    ));
    let mut takeovers = Vec::new();
    for round in 1..=cli.rounds {
        tokio::time::sleep(cli.lease * 2).await;
        let leader = leader_of(&http, &urls).await?;
        instances[leader].kill_9()?;
        let killed = Instant::now();
        let other = 1 - leader;
        loop {
            if role(&http, &urls[other]).await.as_deref() == Some("leader") {
                break;
            }
            if killed.elapsed() > cli.lease * 6 {
                bail!(
                    "no takeover {:?} after the kill; the other's log:\n{}",
                    killed.elapsed(),
                    instances[other].log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = killed.elapsed();
        println!(
            "round {round}: killed {}, {} leads {took:.2?} later",
            urls[leader], urls[other]
        );
        takeovers.push(took);
        instances[leader].restart(&http).await?;
    }
    tokio::time::sleep(cli.lease).await;
    *sending.lock().unwrap() = true;
    let accepted = sender.await??;
    // Every step due has had time to come due, and a takeover's worth more to go out.
    tokio::time::sleep(Duration::from_secs(bob_after) + cli.lease * 2).await;
    let leader = leader_of(&http, &urls).await?;
    let incidents = all_incidents(&http, &urls[leader]).await?;
    let pages = received.lock().unwrap().clone();
    let ok = report(&cli, &takeovers, &accepted, &incidents, &pages);
    for d in instances.iter_mut() {
        let _ = d.stop().await;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A stop flag shared with the sender.
fn tokio_util_stop() -> Arc<Mutex<bool>> {
    Arc::default()
}

/// Posts a new alert group `rate` times a second, alternately to each instance; a
/// group not answered 200 is posted again (to the other instance) until it is, as
/// Alertmanager retries. Answers the group keys accepted, with when.
async fn send_alerts(
    http: reqwest::Client,
    urls: Vec<String>,
    rate: u32,
    stop: Arc<Mutex<bool>>,
) -> Result<BTreeSet<String>> {
    let mut accepted = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let mut n = 0u64;
    let mut pending: Option<(String, Value)> = None;
    let mut turn = 0usize;
    while !*stop.lock().unwrap() {
        tick.tick().await;
        let (key, body) = pending.take().unwrap_or_else(|| {
            n += 1;
            alert(n)
        });
        turn += 1;
        let url = format!("{}/hooks/alertmanager", urls[turn % urls.len()]);
        match http.post(&url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                accepted.insert(key);
            }
            _ => pending = Some((key, body)),
        }
    }
    Ok(accepted)
}

/// Alertmanager's v4 payload of one firing alert in a group of its own.
fn alert(n: u64) -> (String, Value) {
    let name = format!("Failover{n}");
    let key = format!("{{}}:{{alertname=\"{name}\"}}");
    let body = json!({
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tocsin",
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.bench",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": name, "severity": "critical"},
            "annotations": {"summary": "failover bench"},
            "startsAt": "2026-12-07T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.bench/graph",
            "fingerprint": format!("{n:016x}"),
        }],
    });
    (key, body)
}

async fn role(http: &reqwest::Client, url: &str) -> Option<String> {
    let v: Value = http
        .get(format!("{url}/api/v1/status"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["cluster"]["role"].as_str().map(str::to_string)
}

async fn leader_of(http: &reqwest::Client, urls: &[String]) -> Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for (i, u) in urls.iter().enumerate() {
            if role(http, u).await.as_deref() == Some("leader") {
                return Ok(i);
            }
        }
        if Instant::now() > deadline {
            bail!("no instance leads");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every incident: (group key, id, when it was created in ms).
async fn all_incidents(http: &reqwest::Client, url: &str) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut q = format!("{url}/api/v1/incidents?limit=500");
        if let Some(b) = before {
            q.push_str(&format!("&before={b}"));
        }
        let v: Value = http.get(&q).send().await?.json().await?;
        for i in v["incidents"].as_array().context("incidents")? {
            out.push((
                i["group_key"].as_str().unwrap_or("").to_string(),
                i["id"].as_u64().unwrap_or(0),
            ));
        }
        match v["next"].as_u64() {
            Some(n) => before = Some(n),
            None => return Ok(out),
        }
    }
}

/// Prints the figures; answers whether the promises held (nothing lost, nothing doubled).
fn report(
    cli: &Cli,
    takeovers: &[Duration],
    accepted: &BTreeSet<String>,
    incidents: &[(String, u64)],
    pages: &[Got],
) -> bool {
    let stored: BTreeSet<&str> = incidents.iter().map(|(k, _)| k.as_str()).collect();
    let alerts_lost = accepted
        .iter()
        .filter(|k| !stored.contains(k.as_str()))
        .count();
    // (incident, step) -> page ids seen, with how often each.
    let mut steps: BTreeMap<(u64, u64), BTreeMap<u64, usize>> = BTreeMap::new();
    let mut late = Vec::new();
    for p in pages {
        *steps
            .entry((p.incident, p.step))
            .or_default()
            .entry(p.page_id)
            .or_default() += 1;
        if let Some(l) = p.late_by {
            late.push((l, p.target.clone()));
        }
    }
    let ids: Vec<u64> = incidents.iter().map(|(_, id)| *id).collect();
    let mut lost = 0;
    for id in &ids {
        for step in [1, 2] {
            if !steps.contains_key(&(*id, step)) {
                lost += 1;
            }
        }
    }
    let doubled = steps.values().filter(|ids| ids.len() > 1).count();
    let resent = steps
        .values()
        .filter(|ids| ids.len() == 1 && ids.values().any(|n| *n > 1))
        .count();
    let max_take = takeovers.iter().max().copied().unwrap_or_default();
    let mean_take =
        takeovers.iter().sum::<Duration>() / u32::try_from(takeovers.len().max(1)).unwrap_or(1);
    let max_late = late.iter().map(|(l, _)| *l).fold(0.0, f64::max);
    println!(
        "\n== failover: {} kill -9 of the leader, lease {:?} ==",
        takeovers.len(),
        cli.lease
    );
    println!(
        "   takeover after the kill: mean {mean_take:.2?}, max {max_take:.2?} (target: within the lease, {:?})",
        cli.lease
    );
    println!(
        "   alerts answered 200: {}; in the store: {}; lost: {alerts_lost}",
        accepted.len(),
        accepted.len() - alerts_lost
    );
    println!(
        "   steps due: {}; paged: {}; lost: {lost}; doubled (two page ids): {doubled}; re-sent in flight (one page id): {resent}",
        ids.len() * 2,
        steps.len()
    );
    println!(
        "   pages sent late by a takeover: {} (latest {max_late:.1} s late, and each says so)",
        late.len()
    );
    let ok = alerts_lost == 0 && lost == 0 && doubled == 0 && max_take <= cli.lease * 2;
    println!("   {}", if ok { "OK" } else { "MISS" });
    ok
}

/// The page receiver: records each webhook page.
async fn receive(received: Received) -> Result<String> {
    async fn record(State(r): State<Received>, body: axum::Json<Value>) -> &'static str {
        let b = &body.0;
        r.lock().unwrap().push(Got {
            page_id: b["page_id"].as_u64().unwrap_or(0),
            incident: b["incident"]["id"].as_u64().unwrap_or(0),
            step: b["step"].as_u64().unwrap_or(0),
            target: b["target"].as_str().unwrap_or("").to_string(),
            late_by: b["late_by_seconds"].as_f64(),
        });
        "ok"
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/page", post(record))
        .with_state(received);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/page"))
}

#[allow(dead_code)] // shared with the ingest bench
#[path = "ingest/daemon.rs"]
mod daemon;
