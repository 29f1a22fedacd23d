//! `spawn_app`: the daemon in-process, exactly as `main` runs it (`runtime::start` on a
//! bound listener), on port 0 with a fresh data dir, plus small clients for its API.
//!
//! A test of what the store guarantees runs on both stores: `on_both_stores!` makes it
//! once on SQLite and once on a fresh PostgreSQL database ([`Backend`]).

use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tocsin::config::{self, Config};
use tocsin::runtime::{self, Options, Running};
use tocsin::store::postgres::scratch::ScratchServer;
use tocsin::time::{Clock, ManualClock, SystemClock, Timestamp};
use tokio::net::TcpListener;

/// How long a test waits for the daemon to answer `/healthz` after it started.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// A graceful stop that takes longer than this is a hang (the drain grace is 3 s here).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// reqwest (rustls) needs a process-wide crypto provider; logs go to the test output
/// (stderr, which nextest keeps even for a test it had to kill) when `TEST_LOG` is set,
/// e.g. `TEST_LOG=tocsin=debug`.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}

/// An HTTP answer: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub async fn from(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// The `error` of a JSON error body.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_else(|| {
            panic!(
                "expected a JSON error body like {{\"error\": \"...\"}}, got {} {}",
                self.status, self.body
            )
        })
    }
}

/// A running daemon with its own data dir.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// Sent as `Authorization` on webhook and state-changing calls when set.
    pub authorization: Option<String>,
    config: Config,
    data_dir: TempDir,
    running: Option<Running>,
    /// The daemon's clock: the system's, or one the test moves ([`spawn_app_on_clock`]).
    clock: Arc<dyn Clock>,
}

/// A config with a `webhook` notifier named `hook` that POSTs to `hook_url`, the
/// sections in `rest`, and one catch-all route to the policy `default`.
pub fn webhook_config(hook_url: &str, rest: &str) -> String {
    format!(
        r#"
[notifiers.hook]
type = "webhook"
url = "{hook_url}"
timeout = "2s"

{rest}

[[routes]]
policy = "default"
"#
    )
}

/// Contacts alice, bob and carol, each paged through the `hook` notifier.
pub const PEOPLE: &str = r#"
[contacts.alice]
methods = [{ notifier = "hook", to = "alice@pager" }]
[contacts.bob]
methods = [{ notifier = "hook", to = "bob@pager" }]
[contacts.carol]
methods = [{ notifier = "hook", to = "carol@pager" }]
"#;

/// The value of the unlabelled sample `name` in a `/metrics` text.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// [`PEOPLE`] and a policy paging alice at once.
pub fn page_alice() -> String {
    format!("{PEOPLE}\n[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"alice\"] }}]\n")
}

/// Where a daemon under test keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the daemon's data dir: what a test gets unless it asks for a store.
    Sqlite,
    /// A new, empty database of the test process's PostgreSQL, as `[storage] url`.
    Postgres,
}

/// The lease of a daemon on PostgreSQL: after `kill -9` a restarted one follows this long
/// before it leads (a graceful stop gives the lease back, so a restart leads at once).
pub const LEASE: Duration = Duration::from_secs(3);

/// Each test of a store guarantee, once per store: `on_both_stores!(name);` above an
/// `async fn name(store: Backend)` makes a module `name` with the tests `sqlite` and
/// `postgres`, which run it with `store` set to theirs.
macro_rules! on_both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::harness::Backend::Postgres).await
            }
        }
    };
}
pub(crate) use on_both_stores;

impl Backend {
    /// `config_toml` on this store: as it is for SQLite; for PostgreSQL with `url` (a new
    /// database) and `lease` in its `[storage]` section. Every daemon started with the
    /// result, again and again, finds the same database.
    pub async fn config(self, config_toml: &str) -> String {
        match self {
            Backend::Sqlite => config_toml.to_string(),
            Backend::Postgres => {
                let url = ScratchServer::shared().fresh_url().await;
                let keys = format!("url = \"{url}\"\nlease = \"{}s\"", LEASE.as_secs());
                with_storage_keys(config_toml, &keys)
            }
        }
    }

    /// [`spawn_app`] on this store.
    pub async fn spawn_app(self, config_toml: &str) -> TestApp {
        let app = self.spawn_app_unready(config_toml).await;
        app.wait_ready().await;
        app
    }

    /// Like [`Backend::spawn_app`], but returns as soon as `runtime::start` does.
    pub async fn spawn_app_unready(self, config_toml: &str) -> TestApp {
        spawn_config(self.load(config_toml).await).await
    }

    /// [`spawn_app_on_clock`] on this store.
    pub async fn spawn_app_on_clock(self, config_toml: &str) -> (TestApp, Arc<ManualClock>) {
        self.spawn_app_at(config_toml, Timestamp::at("2026-11-21T10:00:00Z"))
            .await
    }

    /// [`spawn_app_at`] on this store.
    pub async fn spawn_app_at(
        self,
        config_toml: &str,
        start: Timestamp,
    ) -> (TestApp, Arc<ManualClock>) {
        let config = self.load(config_toml).await;
        let clock = Arc::new(ManualClock::starting_at(start));
        let app = spawn_config_on(config, clock.clone()).await;
        app.wait_ready().await;
        (app, clock)
    }

    async fn load(self, config_toml: &str) -> Config {
        init();
        let config_toml = self.config(config_toml).await;
        config::load_str(&config_toml, None).unwrap_or_else(|e| {
            panic!("test config is invalid:\n{e}\n--- config ---\n{config_toml}")
        })
    }
}

/// `keys` added to the `[storage]` table of `config_toml`, which is made when there is
/// none (TOML refuses a table written twice).
fn with_storage_keys(config_toml: &str, keys: &str) -> String {
    let mut lines: Vec<&str> = config_toml.lines().collect();
    match lines.iter().position(|l| l.trim() == "[storage]") {
        Some(at) => lines.insert(at + 1, keys),
        None => {
            lines.push("[storage]");
            lines.push(keys);
        }
    }
    lines.join("\n") + "\n"
}

/// Starts tocsin with `config_toml` on 127.0.0.1:0 and a fresh data dir, and waits
/// until `/healthz` answers.
pub async fn spawn_app(config_toml: &str) -> TestApp {
    Backend::Sqlite.spawn_app(config_toml).await
}

/// Like [`spawn_app`], with the config read from a file (so it can be reloaded).
pub async fn spawn_app_from_file(path: &std::path::Path) -> TestApp {
    init();
    let config = config::load_file(path).unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
    let app = spawn_config(config).await;
    app.wait_ready().await;
    app
}

/// Like [`spawn_app`], on a clock that stands still until the test moves it: time-driven
/// behaviour (steps ten minutes apart, an ack that expires after half an hour) is tested
/// at its real delays without waiting for them.
pub async fn spawn_app_on_clock(config_toml: &str) -> (TestApp, Arc<ManualClock>) {
    Backend::Sqlite.spawn_app_on_clock(config_toml).await
}

/// Like [`spawn_app_on_clock`], with the clock starting at `start`.
pub async fn spawn_app_at(config_toml: &str, start: Timestamp) -> (TestApp, Arc<ManualClock>) {
    Backend::Sqlite.spawn_app_at(config_toml, start).await
}

async fn spawn_config(config: Config) -> TestApp {
    spawn_config_on(config, Arc::new(SystemClock)).await
}

async fn spawn_config_on(config: Config, clock: Arc<dyn Clock>) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let running = start(&config, &data_dir, "127.0.0.1:0".parse().unwrap(), &clock).await;
    TestApp {
        addr: running.addr,
        client: client(),
        authorization: None,
        config,
        data_dir,
        running: Some(running),
        clock,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

async fn start(
    config: &Config,
    data_dir: &TempDir,
    addr: SocketAddr,
    clock: &Arc<dyn Clock>,
) -> Running {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
    let mut opts = Options::new(config.clone(), data_dir.path().to_path_buf());
    opts.clock = clock.clone();
    opts.drain_grace = Duration::from_secs(3);
    runtime::start(opts, listener).await.expect("tocsin starts")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(r) = self.client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tocsin did not answer /healthz within {READY_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        self.authorized(self.client.get(self.url("/metrics")))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics text")
    }

    /// The line of the channel board (`/api/v1/channels`) named `name`; panics, showing
    /// the board, when there is none.
    pub async fn channel(&self, name: &str) -> serde_json::Value {
        let board: serde_json::Value = self
            .authorized(self.client.get(self.url("/api/v1/channels")))
            .send()
            .await
            .expect("GET /api/v1/channels")
            .json()
            .await
            .expect("the board as JSON");
        board["channels"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no channel {name} on the board: {board}"))
    }

    /// One unlabelled sample of `/metrics`, like `tocsin_irc_link_up`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        metric_value(&self.metrics().await, name)
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.authorization {
            Some(a) => req.header("authorization", a),
            None => req,
        }
    }

    /// POSTs an Alertmanager payload to `/hooks/alertmanager`.
    pub async fn post_alerts(&self, body: &Value) -> Reply {
        self.post_hook(serde_json::to_vec(body).unwrap()).await
    }

    /// POSTs raw bytes to `/hooks/alertmanager`.
    pub async fn post_hook(&self, body: Vec<u8>) -> Reply {
        let req = self
            .client
            .post(self.url("/hooks/alertmanager"))
            .header("content-type", "application/json")
            .body(body);
        Reply::from(
            self.authorized(req)
                .send()
                .await
                .expect("POST /hooks/alertmanager"),
        )
        .await
    }

    /// `GET /api/v1/incidents[?state=]`, newest first.
    pub async fn incidents(&self, state: Option<&str>) -> Vec<Value> {
        let url = match state {
            Some(s) => self.url(&format!("/api/v1/incidents?state={s}")),
            None => self.url("/api/v1/incidents"),
        };
        let r = Reply::from(
            self.authorized(self.client.get(url))
                .send()
                .await
                .expect("GET incidents"),
        )
        .await;
        assert_eq!(r.status, 200, "GET /api/v1/incidents: {}", r.body);
        r.body["incidents"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no incidents list in {}", r.body))
    }

    /// `GET /api/v1/incidents/{id}` (with history); panics unless it answers 200.
    pub async fn incident(&self, id: u64) -> Value {
        let r = Reply::from(
            self.authorized(
                self.client
                    .get(self.url(&format!("/api/v1/incidents/{id}"))),
            )
            .send()
            .await
            .expect("GET incident"),
        )
        .await;
        assert_eq!(r.status, 200, "GET /api/v1/incidents/{id}: {}", r.body);
        r.body
    }

    /// The only incident there is; panics when there are none or several.
    pub async fn only_incident(&self) -> Value {
        let all = self.incidents(None).await;
        assert_eq!(all.len(), 1, "expected exactly one incident, got {all:#?}");
        self.incident(all[0]["id"].as_u64().unwrap()).await
    }

    /// `POST /api/v1/incidents/{id}/{action}` with a JSON body like `{"by": "alice"}`.
    pub async fn act(&self, id: u64, action: &str, body: Value) -> Reply {
        let req = self
            .client
            .post(self.url(&format!("/api/v1/incidents/{id}/{action}")))
            .json(&body);
        Reply::from(self.authorized(req).send().await.expect("POST action")).await
    }

    /// `POST /-/reload` as an operator's script sends it: no body, declared JSON like
    /// every action, with the credentials when set.
    pub async fn reload(&self) -> Reply {
        let req = self
            .client
            .post(self.url("/-/reload"))
            .header("content-type", "application/json");
        Reply::from(self.authorized(req).send().await.expect("POST /-/reload")).await
    }

    /// Graceful stop: no new requests, queued work finished, pages in flight recorded.
    ///
    /// # Panics
    /// When the daemon fails to stop, or takes longer than [`STOP_TIMEOUT`].
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
            tokio::time::timeout(STOP_TIMEOUT, r.wait())
                .await
                .unwrap_or_else(|_| panic!("tocsin did not stop within {STOP_TIMEOUT:?}"))
                .expect("tocsin stops cleanly");
        }
    }

    /// Moves `clock` (from [`spawn_app_on_clock`]) by `d` and returns once the engine has
    /// acted on the new time and committed it: a request through the engine made after
    /// the move is answered only after a turn that saw the new time.
    pub async fn advance(&self, clock: &ManualClock, d: Duration) {
        clock.advance(d);
        let r = self.act(0, "ack", serde_json::json!({"by": "clock"})).await;
        assert_eq!(
            r.status, 404,
            "the engine answers a barrier request: {}",
            r.body
        );
    }

    /// The pages the incident recorded (intents are committed before anything is sent),
    /// as `target:kind:step`, with when each was decided.
    pub async fn recorded_pages(&self, id: u64) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
        let inc = self.incident(id).await;
        inc["pages"]
            .as_array()
            .unwrap_or_else(|| panic!("no pages in {inc}"))
            .iter()
            .map(|p| {
                (
                    format!(
                        "{}:{}:{}",
                        p["target"].as_str().unwrap(),
                        p["kind"].as_str().unwrap(),
                        p["step"]
                    ),
                    time_of(&p["at"]),
                )
            })
            .collect()
    }

    /// Stops gracefully and starts again on the same data dir and address.
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = start(&self.config, &self.data_dir, self.addr, &self.clock).await;
        self.addr = running.addr;
        self.running = Some(running);
        // Connections to the old server are gone; start with a fresh pool.
        self.client = client();
        self.wait_ready().await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.stop();
        }
    }
}

/// The `kind`s of an incident's history, in order.
pub fn history_kinds(incident: &Value) -> Vec<String> {
    incident["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history in {incident}"))
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Parses an RFC 3339 field of the API.
pub fn time_of(v: &Value) -> chrono::DateTime<chrono::Utc> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected an RFC 3339 string, got {v}"));
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
        .with_timezone(&chrono::Utc)
}

/// The path of the built `tocsin` binary.
pub const TOCSIN: &str = env!("CARGO_BIN_EXE_tocsin");

/// A port that was free a moment ago (bind :0, read it, let it go), for child processes
/// that must be told their port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Polls `check` every 20 ms until it returns `Some`, at most `timeout`: for state that
/// changes without an event a test can wait on (a page's outcome landing in the store).
///
/// # Panics
/// On timeout, naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
