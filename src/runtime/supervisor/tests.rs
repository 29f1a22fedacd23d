use std::sync::atomic::AtomicU32;

use super::*;
use crate::time::TokioClock;

fn supervisor(policy: RestartPolicy) -> (Supervisor, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp::at(
        "2026-11-21T10:00:00Z",
    )));
    (Supervisor::new(policy, metrics.clone(), clock), metrics)
}

/// The value of `tocsin_task_restarts_total{task="..."}`, if the series exists.
fn restarts_metric(metrics: &Metrics, task: &str) -> Option<u64> {
    let series = format!("tocsin_task_restarts_total{{task=\"{task}\"}} ");
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&series)?.parse().ok())
}

/// A task that counts its runs and checks the fault hook every second until `stop`.
fn counting_task(
    name: &'static str,
    runs: &Arc<AtomicU32>,
    stop: &CancellationToken,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static {
    let (runs, stop) = (runs.clone(), stop.clone());
    move || {
        let (runs, stop) = (runs.clone(), stop.clone());
        Box::pin(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            loop {
                fault::maybe_panic(name);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        })
    }
}

fn only(sup: &Supervisor, name: &str) -> TaskStatus {
    let tasks = sup.tasks();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].name, name);
    tasks[0].clone()
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_logged_counted_and_restarted_after_its_backoff() {
    let (sup, metrics) = supervisor(RestartPolicy::default());
    let (runs, stop) = (Arc::new(AtomicU32::new(0)), CancellationToken::new());
    sup.spawn(
        "receipts",
        Importance::Essential,
        &stop,
        counting_task("receipts", &runs, &stop),
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        restarts_metric(&metrics, "receipts"),
        Some(0),
        "primed at 0"
    );
    assert_eq!(only(&sup, "receipts").state, TaskState::Running);

    fault::panic_next("receipts", 1);
    // The next turn (a second away) panics.
    tokio::time::sleep(Duration::from_millis(1001)).await;
    let t = only(&sup, "receipts");
    assert_eq!(t.state, TaskState::Restarting, "{t:?}");
    assert_eq!(t.restarts, 1);
    assert_eq!(
        t.last_failure.as_deref(),
        Some("panicked: injected fault in receipts")
    );
    assert_eq!(sup.down().len(), 1);
    assert_eq!(restarts_metric(&metrics, "receipts"), Some(1));
    // The first backoff is at least `min_delay` (1 s), with jitter below twice that.
    let wait = t.restart_at.expect("a restart time").since(t.since);
    assert!(
        wait >= Duration::from_secs(1) && wait < Duration::from_secs(2),
        "{wait:?}"
    );
    tokio::time::sleep(Duration::from_millis(990)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "restarted before its backoff"
    );

    tokio::time::sleep(Duration::from_millis(1010)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "not restarted");
    let t = only(&sup, "receipts");
    assert_eq!(t.state, TaskState::Running);
    assert_eq!(t.restarts, 1);
    assert!(sup.down().is_empty());
    assert!(sup.failure().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_task_that_keeps_panicking_is_given_up_and_the_failure_names_it() {
    let (sup, metrics) = supervisor(RestartPolicy::default());
    let (runs, stop) = (Arc::new(AtomicU32::new(0)), CancellationToken::new());
    fault::panic_next("watchdog", u32::MAX);
    let handle = sup.spawn(
        "watchdog",
        Importance::Essential,
        &stop,
        counting_task("watchdog", &runs, &stop),
    );
    // Backoffs of 1, 2, 4, 8 and 16 s (each below twice that with jitter).
    let failed = tokio::time::timeout(Duration::from_secs(120), sup.failed())
        .await
        .expect("a task failing at every start is given up within two minutes");
    assert_eq!(failed.task, "watchdog");
    assert!(
        failed
            .reason
            .starts_with("failed 6 times within 10m (last panicked: injected fault in watchdog)"),
        "{failed}"
    );
    assert!(failed.to_string().starts_with("task watchdog failed"));
    assert_eq!(sup.failure(), Some(failed));
    assert_eq!(runs.load(Ordering::SeqCst), 6);
    assert_eq!(restarts_metric(&metrics, "watchdog"), Some(5));
    let t = only(&sup, "watchdog");
    assert_eq!((t.state, t.restarts), (TaskState::Failed, 5));
    tokio::time::timeout(Duration::from_secs(1), handle.join())
        .await
        .expect("a task given up is not restarted again");
    assert_eq!(runs.load(Ordering::SeqCst), 6);
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ran_fine_for_a_while_restarts_at_the_shortest_backoff_every_time() {
    let (sup, _) = supervisor(RestartPolicy::default());
    let stop = CancellationToken::new();
    // Runs three minutes, then panics: one failure every three minutes is 4 in any
    // ten-minute window (the limit is 5), and each follows a healthy run.
    sup.spawn("probe", Importance::BestEffort, &stop, || async {
        tokio::time::sleep(Duration::from_secs(180)).await;
        panic!("probe bug");
    });
    let mut seen = 0;
    while seen < 8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = only(&sup, "probe");
        if t.state == TaskState::Restarting && t.restarts > seen {
            seen = t.restarts;
            let wait = t.restart_at.expect("a restart time").since(t.since);
            // Without the reset the eighth wait would be at the 30 s cap.
            assert!(wait < Duration::from_secs(2), "restart {seen}: {wait:?}");
        }
    }
    assert!(sup.failure().is_none());
}

#[tokio::test(start_paused = true)]
async fn stopped_tasks_end_without_counting_as_failures() {
    let (sup, metrics) = supervisor(RestartPolicy::default());
    let (runs, stop) = (Arc::new(AtomicU32::new(0)), CancellationToken::new());
    let handle = sup.spawn(
        "peer-watch",
        Importance::BestEffort,
        &stop,
        counting_task("peer-watch", &runs, &stop),
    );
    // A task that returns once tocsin stops (like a dispatcher worker whose queue closed).
    let quits = sup.stopping();
    let worker = sup.spawn(
        "worker",
        Importance::Essential,
        &sup.stopping(),
        move || {
            let quits = quits.clone();
            async move { quits.cancelled().await }
        },
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(1), handle.join())
        .await
        .expect("a stopped task ends");
    sup.stop();
    tokio::time::timeout(Duration::from_secs(1), worker.join())
        .await
        .expect("a task ending while tocsin stops ends");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(sup.tasks().is_empty(), "{:?}", sup.tasks());
    assert_eq!(restarts_metric(&metrics, "peer-watch"), Some(0));
    assert_eq!(restarts_metric(&metrics, "worker"), Some(0));
    assert!(sup.failure().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_task_that_returns_on_its_own_is_a_failure() {
    let (sup, metrics) = supervisor(RestartPolicy::default());
    let stop = CancellationToken::new();
    sup.spawn("flood-release", Importance::Essential, &stop, || async {});
    tokio::time::sleep(Duration::from_millis(1)).await;
    let t = only(&sup, "flood-release");
    assert_eq!(t.state, TaskState::Restarting);
    assert_eq!(
        t.last_failure.as_deref(),
        Some("returned while tocsin was not stopping")
    );
    assert_eq!(restarts_metric(&metrics, "flood-release"), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_task_that_cannot_be_restarted_fails_at_its_first_panic() {
    let (sup, metrics) = supervisor(RestartPolicy::default());
    let stop = CancellationToken::new();
    sup.spawn_once("engine-loop", &stop, async {
        panic!("index out of bounds")
    });
    let failed = tokio::time::timeout(Duration::from_secs(1), sup.failed())
        .await
        .expect("given up at once");
    assert_eq!(failed.task, "engine-loop");
    assert!(
        failed
            .reason
            .starts_with("panicked: index out of bounds; it cannot be restarted in place"),
        "{failed}"
    );
    assert_eq!(only(&sup, "engine-loop").state, TaskState::Failed);
    assert_eq!(restarts_metric(&metrics, "engine-loop"), Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_pushover_poller_ends_quietly_with_its_notifier() {
    struct NoAcks;
    #[async_trait::async_trait]
    impl crate::notify::Acker for NoAcks {
        async fn ack(
            &self,
            _: crate::engine::IncidentId,
            _: crate::engine::Actor,
        ) -> Result<(), String> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("app-token");
    std::fs::write(&token, "azGDORePK8gMaC0QOYAMyEEuzJnyUi").unwrap();
    let cfg = crate::config::load_str(
        &format!(
            "{MINIMAL}[notifiers.push]\ntype = \"pushover\"\napp_token_file = \"{}\"\n",
            token.display()
        ),
        None,
    )
    .expect("valid config");
    let (sup, metrics) = supervisor(RestartPolicy::default());
    let cx = crate::notify::BuildContext {
        acker: Some(Arc::new(NoAcks)),
        tasks: Some(sup.clone()),
        ..crate::notify::BuildContext::offline()
    };
    let notifiers = crate::notify::build_all(&cfg, &cx).expect("notifiers build");
    assert_eq!(
        only(&sup, "pushover-receipts:push").state,
        TaskState::Running
    );
    // A reload replaces the notifiers: the old poller goes with its notifier.
    drop(notifiers);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(sup.tasks().is_empty(), "{:?}", sup.tasks());
    assert_eq!(restarts_metric(&metrics, "pushover-receipts:push"), Some(0));
}

// The daemon, in-process, as `main` runs it.

const MINIMAL: &str = "[notifiers.console]\ntype = \"log\"\n[contacts.oncall]\nmethods = [{ notifier = \"console\" }]\n[policies.default]\nsteps = [{ notify = [\"console\"] }]\n[[routes]]\npolicy = \"default\"\n";

/// Restarts that come quickly and give up after 2, so tests do not wait for backoffs.
fn quick() -> RestartPolicy {
    RestartPolicy {
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        max_restarts: 2,
        ..RestartPolicy::default()
    }
}

struct Daemon {
    running: crate::runtime::Running,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Daemon {
    async fn start(restart: RestartPolicy) -> Daemon {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let cfg = crate::config::load_str(MINIMAL, None).expect("valid config");
        let data = tempfile::tempdir().expect("temp data dir");
        let mut opts = crate::runtime::Options::new(cfg, data.path().to_path_buf());
        opts.restart = restart;
        opts.drain_grace = Duration::from_secs(3);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = crate::runtime::start(opts, listener)
            .await
            .expect("tocsin starts");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Daemon {
            running,
            client,
            _data: data,
        }
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .client
            .get(format!("http://{}{path}", self.running.addr))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (r.status().as_u16(), r.json().await.unwrap_or_default())
    }

    /// Asks `/healthz` until it answers `status`; its body then.
    async fn healthz_until(&self, status: u16) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (code, body) = self.get("/healthz").await;
            if code == status {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "/healthz did not answer {status} within 10 s; last {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stopped(self) -> anyhow::Result<()> {
        tokio::time::timeout(Duration::from_secs(15), self.running.wait())
            .await
            .expect("the daemon stops")
    }
}

#[tokio::test]
async fn healthz_fails_naming_an_essential_task_while_it_is_down_and_recovers_after_its_restart() {
    let daemon = Daemon::start(quick()).await;
    daemon.healthz_until(200).await;
    let (_, status) = daemon.get("/api/v1/status").await;
    assert_eq!(status["tasks"], serde_json::json!([]), "{status}");

    let held = fault::hold_restarts("watchdog");
    fault::panic_next("watchdog", 1);
    let body = daemon.healthz_until(503).await;
    let why = body["status"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("essential task down: watchdog (restarting, 1 restart; last panicked: injected fault in watchdog)"),
        "{body}"
    );
    assert_eq!(
        body["detail"]["tasks_down"][0]["name"], "watchdog",
        "{body}"
    );

    let (_, status) = daemon.get("/api/v1/status").await;
    let tasks = status["tasks"].as_array().expect("a task list");
    assert_eq!(tasks.len(), 1, "{status}");
    assert_eq!(tasks[0]["name"], "watchdog");
    assert_eq!(tasks[0]["state"], "restarting");
    assert_eq!(tasks[0]["restarts"], 1);
    assert_eq!(tasks[0]["essential"], true);
    let text = crate::cli::status_text(&status);
    assert!(
        text.contains("tasks down:\n  watchdog [essential]  RESTARTING  restarts 1, next start "),
        "{text}"
    );
    assert!(crate::cli::status_unhealthy(&status));
    let metrics = daemon
        .client
        .get(format!("http://{}/metrics", daemon.running.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\ntocsin_task_restarts_total{task=\"watchdog\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ntocsin_task_restarts_total{task=\"dispatch-worker-31\"} 0\n"),
        "{metrics}"
    );

    drop(held);
    let body = daemon.healthz_until(200).await;
    assert_eq!(body["status"], "ok", "{body}");
    let (_, status) = daemon.get("/api/v1/status").await;
    assert_eq!(status["tasks"], serde_json::json!([]), "{status}");
    assert!(!crate::cli::status_unhealthy(&status));
    daemon.running.stop();
    daemon.stopped().await.expect("a clean stop");
}

#[tokio::test]
async fn a_task_that_keeps_failing_stops_the_daemon_and_wait_names_it() {
    let daemon = Daemon::start(quick()).await;
    daemon.healthz_until(200).await;
    fault::panic_next("watchdog", u32::MAX);
    let err = daemon.stopped().await.expect_err("the daemon fails");
    let err = format!("{err:#}");
    assert!(
        err.starts_with(
            "task watchdog failed 3 times within 10m (last panicked: injected fault in watchdog)"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_engine_loop_panic_stops_the_daemon_with_an_error() {
    let daemon = Daemon::start(RestartPolicy::default()).await;
    daemon.healthz_until(200).await;
    fault::panic_next("engine-loop", 1);
    let err = daemon.stopped().await.expect_err("the daemon fails");
    let err = format!("{err:#}");
    assert!(
        err.starts_with(
            "task engine-loop panicked: injected fault in engine-loop; it cannot be restarted in place"
        ),
        "{err}"
    );
}
