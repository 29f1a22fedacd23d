//! `PageCatcher`: a tiny HTTP server that plays every receiver of pages (a push
//! gateway, an SMS gateway, a chat webhook) and records what tocsin sends it.
//!
//! Tests wait on events, never on the clock: `wait_until` wakes on every arrival and
//! gives up after a timeout, naming what it was waiting for and what did arrive.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One POST as the catcher received it.
#[derive(Debug, Clone)]
pub struct Page {
    /// Arrival, for "no earlier than" checks against other instants of this process.
    pub at: Instant,
    /// Arrival on the wall clock, to compare with the daemon's RFC 3339 timestamps.
    pub wall: DateTime<Utc>,
    pub path: String,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
}

impl Page {
    pub fn event(&self) -> &str {
        self.body["event"].as_str().unwrap_or("")
    }
    pub fn step(&self) -> u64 {
        self.body["step"].as_u64().unwrap_or(u64::MAX)
    }
    pub fn target(&self) -> &str {
        self.body["target"].as_str().unwrap_or("")
    }
    pub fn incident_id(&self) -> u64 {
        self.body["incident"]["id"].as_u64().unwrap_or(0)
    }
    pub fn page_id(&self) -> u64 {
        self.body["page_id"].as_u64().unwrap_or(0)
    }
}

#[derive(Clone)]
struct Shared {
    pages: Arc<Mutex<Vec<Page>>>,
    count: Arc<watch::Sender<usize>>,
    /// The status every POST is answered with.
    status: Arc<AtomicU16>,
    /// How long each answer is held back (a slow gateway), in milliseconds.
    delay_ms: Arc<AtomicU64>,
}

/// A receiver of pages on 127.0.0.1 with a port of its own.
pub struct PageCatcher {
    pub addr: SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

async fn record(State(s): State<Shared>, uri: Uri, body: Bytes) -> StatusCode {
    // The answer is fixed when the request arrives: a test that sees this page and then
    // calls `answer_with` changes the answer of the next request, never of this one.
    let status = StatusCode::from_u16(s.status.load(Ordering::Relaxed)).expect("valid status");
    let delay = Duration::from_millis(s.delay_ms.load(Ordering::Relaxed));
    let page = Page {
        at: Instant::now(),
        wall: Utc::now(),
        path: uri.path().to_string(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let n = {
        let mut pages = s.pages.lock().expect("catcher lock");
        pages.push(page);
        pages.len()
    };
    s.count.send_replace(n);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    status
}

impl PageCatcher {
    /// Starts answering 200 to every POST.
    pub async fn start() -> PageCatcher {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the catcher");
        let addr = listener.local_addr().expect("catcher address");
        let shared = Shared {
            pages: Arc::default(),
            count: Arc::new(watch::channel(0).0),
            status: Arc::new(AtomicU16::new(200)),
            delay_ms: Arc::default(),
        };
        let app = Router::new()
            .route("/{*path}", post(record))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("catcher server");
        });
        PageCatcher {
            addr,
            shared,
            server,
        }
    }

    /// Starts answering `status` to every POST (500 for retries, 400 for permanent failures).
    pub async fn answering(status: u16) -> PageCatcher {
        let c = PageCatcher::start().await;
        c.answer_with(status);
        c
    }

    pub fn answer_with(&self, status: u16) {
        self.shared.status.store(status, Ordering::Relaxed);
    }

    /// Holds every answer back by `delay` (the page is recorded on arrival, before it).
    pub fn answer_after(&self, delay: Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// The URL a `webhook` notifier should POST to.
    pub fn url(&self) -> String {
        format!("http://{}/page", self.addr)
    }

    /// Everything received so far, in arrival order.
    pub fn pages(&self) -> Vec<Page> {
        self.shared.pages.lock().expect("catcher lock").clone()
    }

    /// Waits until `done` holds for the pages received, at most `timeout`.
    ///
    /// # Panics
    /// On timeout, naming `what` and listing every page that did arrive.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Page]) -> bool,
    ) -> Vec<Page> {
        let mut rx = self.shared.count.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                {
                    let pages = self.shared.pages.lock().expect("catcher lock");
                    if done(&pages) {
                        return pages.clone();
                    }
                }
                rx.changed().await.expect("catcher alive");
            }
        })
        .await;
        match waited {
            Ok(pages) => pages,
            Err(_) => panic!(
                "timed out after {timeout:?} waiting for {what}; received:\n{}",
                describe(&self.pages())
            ),
        }
    }

    /// Waits for at least `n` pages in total.
    pub async fn wait_for_pages(&self, n: usize, timeout: Duration) -> Vec<Page> {
        self.wait_until(&format!("{n} page(s)"), timeout, |p| p.len() >= n)
            .await
    }

    /// Asserts that nothing arrives for `window` beyond the `seen` pages already received.
    pub async fn assert_quiet(&self, seen: usize, window: Duration, why: &str) {
        let mut rx = self.shared.count.subscribe();
        let more = tokio::time::timeout(window, rx.wait_for(|n| *n > seen)).await;
        if more.is_ok() {
            panic!(
                "{why}: expected no page within {window:?}, got:\n{}",
                describe(&self.pages()[seen..])
            );
        }
    }
}

impl Drop for PageCatcher {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One line per page, for failure messages.
pub fn describe(pages: &[Page]) -> String {
    if pages.is_empty() {
        return "  (nothing)".to_string();
    }
    pages
        .iter()
        .map(|p| {
            format!(
                "  {} {} event={} step={} target={} incident={} page_id={}",
                p.wall.format("%H:%M:%S%.3f"),
                p.path,
                p.event(),
                p.step(),
                p.target(),
                p.incident_id(),
                p.page_id()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
