//! Real Prometheus and Alertmanager processes from Debian, for tests that need the whole
//! alerting pipeline.
//!
//! [`Alertmanager`] runs `/usr/bin/prometheus-alertmanager` (package
//! `prometheus-alertmanager`) with one webhook receiver; [`Prometheus`] runs
//! `/usr/bin/prometheus` (package `prometheus`) with a rules file and that Alertmanager as
//! its only target. Each listens on 127.0.0.1 on a free port, keeps its config, data and
//! log in a temp dir of its own, stops on [`Alertmanager::stop`] / [`Prometheus::stop`]
//! (SIGTERM) and is killed (SIGKILL) and reaped when dropped.
//!
//! Timings (Debian 12, 2 cores): both answer `GET /-/ready` well under a second after
//! start, and Prometheus' first alert reaches the webhook about 6–7 s after Prometheus
//! starts (its notifier's discovery of the Alertmanager target); after that a state
//! change reaches the webhook within one `evaluation_interval` (1 s here).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::catcher::{Page, PageCatcher, describe};
use crate::harness::free_port;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// How long `GET /-/ready` may take to answer 200 after the start.
const READY: Duration = Duration::from_secs(10);

/// How long a process may take to exit after SIGTERM before it is killed.
const STOP: Duration = Duration::from_secs(10);

/// A `rules.yml` with only the always-firing Watchdog alert, evaluated every second.
pub(crate) const WATCHDOG_RULE: &str = r#"groups:
  - name: watchdog
    interval: 1s
    rules:
      - alert: Watchdog
        expr: vector(1)
        labels:
          severity: none
        annotations:
          summary: "Always-firing alert to prove the pipeline works"
"#;

/// One daemon process with its output in a log file; killed and reaped when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Spawns `bin` with `args`, stdout and stderr to `log`.
    ///
    /// # Panics
    /// When `bin` is missing, saying how to install `package`.
    fn spawn(
        name: &'static str,
        bin: &str,
        package: &str,
        args: &[String],
        log: PathBuf,
    ) -> Daemon {
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: install {package}: apt-get install {package} (scripts/test.sh does it)"
        );
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        Daemon { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for `GET url` to answer 200.
    ///
    /// # Panics
    /// When the process exits first or after [`READY`], with its log.
    async fn wait_ready(&mut self, client: &reqwest::Client, url: &str) {
        let deadline = Instant::now() + READY;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
            if let Ok(r) = client.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after {READY:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGTERM, then waits for the exit. Does nothing when the process has already
    /// exited, so it can be called twice.
    ///
    /// # Panics
    /// When `kill -TERM` fails or the process is still running [`STOP`] after it (it is
    /// killed with SIGKILL first).
    fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        // Not reaped yet (try_wait said running), so the pid is still this process's.
        let pid = self.child.id().to_string();
        let term = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP;
        while matches!(term, Ok(s) if s.success()) && Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "{} did not stop on SIGTERM (kill -TERM {pid}: {term:?}; SIGKILLed after {STOP:?}):\n{}",
            self.name,
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Alertmanager with one webhook receiver, killed when dropped.
pub(crate) struct Alertmanager {
    // Declared before the dir: the process is killed before its dir is removed.
    daemon: Daemon,
    port: u16,
    _dir: TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager on a free port with a webhook receiver at `webhook_url`:
    /// `group_by: [alertname]`, `group_wait: 0s`, `group_interval: 1s`,
    /// `repeat_interval: 1h`, `send_resolved: true`.
    pub(crate) fn start(webhook_url: &str) -> Alertmanager {
        Alertmanager::start_with(webhook_url, "1h")
    }

    /// As [`Alertmanager::start`], with `repeat_interval` (e.g. `"2s"`): how often a group
    /// that still fires is sent again, such as the always-firing Watchdog for a heartbeat.
    /// Alertmanager checks it only at `group_interval` ticks (1 s), so a repeat can come
    /// one tick late: with `"2s"` the Watchdog came 2.0–3.0 s apart.
    pub(crate) fn start_with(webhook_url: &str, repeat_interval: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"route:
  receiver: tocsin
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: {repeat_interval}
receivers:
  - name: tocsin
    webhook_configs:
      - url: '{webhook_url}'
        send_resolved: true
"#
        );
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let args = [
            format!("--config.file={}", config_path.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.external-url=http://127.0.0.1:{port}"),
            // Empty: no HA gossip listener (its default is 0.0.0.0:9094).
            "--cluster.listen-address=".to_string(),
        ];
        let daemon = Daemon::spawn(
            "Alertmanager",
            ALERTMANAGER,
            "prometheus-alertmanager",
            &args,
            dir.path().join("alertmanager.log"),
        );
        Alertmanager {
            daemon,
            port,
            _dir: dir,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything Alertmanager has logged (did it deliver, and what was answered?).
    pub(crate) fn log(&self) -> String {
        self.daemon.log()
    }

    /// Waits for `GET /-/ready` to answer 200.
    pub(crate) async fn wait_ready(&mut self, client: &reqwest::Client) {
        let url = self.url("/-/ready");
        self.daemon.wait_ready(client, &url).await;
    }

    /// `POST /api/v2/alerts`, as Prometheus (or amtool) does.
    pub(crate) async fn post(&self, client: &reqwest::Client, alerts: Value) {
        let r = client
            .post(self.url("/api/v2/alerts"))
            .json(&alerts)
            .send()
            .await
            .expect("POST to Alertmanager");
        assert!(
            r.status().is_success(),
            "Alertmanager refused the alert: {}",
            r.status()
        );
    }

    /// Stops Alertmanager with SIGTERM and waits for it to exit; a second call does nothing.
    pub(crate) fn stop(&mut self) {
        self.daemon.stop();
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }
}

/// A running Prometheus that evaluates a rules file every second and sends its alerts
/// to one Alertmanager, killed when dropped.
pub(crate) struct Prometheus {
    daemon: Daemon,
    port: u16,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus on a free port with `rules_yaml` as its only rules file (e.g.
    /// [`WATCHDOG_RULE`]) and the Alertmanager on 127.0.0.1:`alertmanager_port` as its only
    /// target: `scrape_interval` and `evaluation_interval` 1s, no scrape configs,
    /// `--rules.alert.resend-delay=1s`.
    pub(crate) fn start(alertmanager_port: u16, rules_yaml: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{alertmanager_port}']
scrape_configs: []
"#
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        // Relative rule_files resolve against the config file's directory.
        std::fs::write(dir.path().join("rules.yml"), rules_yaml).unwrap();
        let port = free_port();
        let args = [
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.external-url=http://127.0.0.1:{port}"),
            "--rules.alert.resend-delay=1s".to_string(),
        ];
        let daemon = Daemon::spawn(
            "Prometheus",
            PROMETHEUS,
            "prometheus",
            &args,
            dir.path().join("prometheus.log"),
        );
        Prometheus {
            daemon,
            port,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything Prometheus has logged (rule errors, notifier errors).
    pub(crate) fn log(&self) -> String {
        self.daemon.log()
    }

    /// Waits for `GET /-/ready` to answer 200 (the TSDB is open and the rules are loaded).
    pub(crate) async fn wait_ready(&mut self, client: &reqwest::Client) {
        let url = self.url("/-/ready");
        self.daemon.wait_ready(client, &url).await;
    }

    /// Stops Prometheus with SIGTERM and waits for it to exit; a second call does nothing.
    pub(crate) fn stop(&mut self) {
        self.daemon.stop();
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }
}

/// The webhook bodies in `pages` that carry the firing Watchdog.
fn watchdog_firing(pages: &[Page]) -> Vec<&Page> {
    pages
        .iter()
        .filter(|p| {
            p.body["status"] == "firing" && p.body["alerts"][0]["labels"]["alertname"] == "Watchdog"
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_alert_flows_from_prometheus_through_alertmanager() {
    let client = reqwest::Client::new();
    let catcher = PageCatcher::start().await;

    let started = Instant::now();
    let mut am = Alertmanager::start_with(&format!("http://{}/alertmanager", catcher.addr), "2s");
    am.wait_ready(&client).await;
    eprintln!("Alertmanager ready after {:?}", started.elapsed());

    let started = Instant::now();
    let mut prom = Prometheus::start(am.port(), WATCHDOG_RULE);
    prom.wait_ready(&client).await;
    eprintln!("Prometheus ready after {:?}", started.elapsed());

    // The first alert takes 6-7 s after Prometheus starts; the repeat 2-3 s more.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pages = loop {
        let pages = catcher.pages();
        if watchdog_firing(&pages).len() >= 2 {
            break pages;
        }
        assert!(
            Instant::now() < deadline,
            "no two Watchdog deliveries within 30 s; received:\n{}\n--- Prometheus ---\n{}\n--- Alertmanager ---\n{}",
            describe(&pages),
            prom.log(),
            am.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let watchdogs = watchdog_firing(&pages);
    let (first, second) = (watchdogs[0], watchdogs[1]);
    eprintln!(
        "first Watchdog delivery {:?} after Prometheus started, the second {:?} later",
        first.at - started,
        second.at - first.at
    );
    assert_eq!(first.path, "/alertmanager");
    assert_eq!(first.body["alerts"][0]["labels"]["severity"], "none");
    assert_eq!(
        first.body["alerts"][0]["generatorURL"]
            .as_str()
            .map(|u| u.starts_with(&prom.url("/"))),
        Some(true),
        "the alert comes from this Prometheus: {}",
        first.body
    );

    am.stop();
    assert!(!am.is_running(), "Alertmanager exited on SIGTERM");
    am.stop();
    let seen = catcher.pages().len();
    catcher
        .assert_quiet(
            seen,
            Duration::from_secs(5),
            "a stopped Alertmanager delivers nothing",
        )
        .await;
    prom.stop();
    assert!(!prom.is_running(), "Prometheus exited on SIGTERM");
}
