//! `FakeApi`: a local HTTP server that plays an outside API tocsin calls (Twilio, an SMS
//! gateway, the push services of `fake_push`). It records every request exactly as it
//! arrived, so a test can check it against the provider's documentation, and answers
//! queued one-shot answers first, then through its answer function (a fixed default, or
//! a fake service's rules).
//!
//! Like `catcher::PageCatcher`, tests wait on arrivals, never on the clock.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One request as the fake API received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path as sent, percent-encoding kept.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// A header as text; `None` when absent or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type without parameters (`application/json`).
    pub fn content_type(&self) -> &str {
        self.header("content-type")
            .and_then(|c| c.split(';').next())
            .unwrap_or("")
            .trim()
    }

    /// The body as `application/x-www-form-urlencoded` fields, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    /// The form fields by name; a repeated field keeps its last value.
    pub fn form_map(&self) -> BTreeMap<String, String> {
        self.form().into_iter().collect()
    }

    /// The query string's parameters by name.
    pub fn query_map(&self) -> BTreeMap<String, String> {
        let q = self.query.as_deref().unwrap_or("");
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    /// The body as JSON, `Value::Null` when it is not (for fakes judging the request).
    pub fn json_or_null(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as JSON; panics, showing the body, when it is not valid JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body is not valid JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the fake API answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            content_type: "text/plain",
            body: body.to_string(),
        }
    }
}

type AnswerFn = dyn Fn(&Request) -> Answer + Send + Sync;

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Request>>>,
    count: Arc<watch::Sender<usize>>,
    /// Answers queued by [`FakeApi::answer_next`], used before `answer`.
    once: Arc<Mutex<VecDeque<Answer>>>,
    answer: Arc<AnswerFn>,
}

/// A fake API on 127.0.0.1 with a port of its own.
pub struct FakeApi {
    pub addr: SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

async fn record(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        method,
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers,
        body,
    };
    // The answer is chosen when the request arrives, before anyone sees it recorded.
    let queued = s.once.lock().expect("script lock").pop_front();
    let answer = queued.unwrap_or_else(|| (s.answer)(&request));
    let n = {
        let mut requests = s.requests.lock().expect("requests lock");
        requests.push(request);
        requests.len()
    };
    s.count.send_replace(n);
    (
        StatusCode::from_u16(answer.status).expect("valid status"),
        [(header::CONTENT_TYPE, answer.content_type)],
        answer.body,
    )
        .into_response()
}

impl FakeApi {
    /// Starts answering `default` to every request, whatever its method and path.
    pub async fn start(default: Answer) -> FakeApi {
        FakeApi::serve(move |_| default.clone()).await
    }

    /// Starts answering every request through `answer`: a fake service's rules.
    pub async fn serve(answer: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API");
        let addr = listener.local_addr().expect("fake API address");
        let shared = Shared {
            requests: Arc::default(),
            count: Arc::new(watch::channel(0).0),
            once: Arc::default(),
            answer: Arc::new(answer),
        };
        let app = Router::new().fallback(record).with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake API server");
        });
        FakeApi {
            addr,
            shared,
            server,
        }
    }

    /// Answers the next request (not yet arrived) with `answer`, then goes on as before.
    pub fn answer_next(&self, answer: Answer) {
        self.shared
            .once
            .lock()
            .expect("script lock")
            .push_back(answer);
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// The requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits for the first request that satisfies `matches`, at most `timeout`.
    ///
    /// # Panics
    /// On timeout, naming `what` and listing what did arrive.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Request) -> bool,
    ) -> Request {
        let mut rx = self.shared.count.subscribe();
        let found = tokio::time::timeout(timeout, async {
            loop {
                if let Some(r) = self.requests().into_iter().find(|r| matches(r)) {
                    return r;
                }
                rx.changed().await.expect("fake API alive");
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "timed out after {timeout:?} waiting for {what}; received:\n{}",
                self.describe()
            )
        })
    }

    /// One line per request, for failure messages.
    pub fn describe(&self) -> String {
        let all = self.requests();
        if all.is_empty() {
            return "  (nothing)".to_string();
        }
        all.iter()
            .map(|r| {
                let body: String = String::from_utf8_lossy(&r.body).chars().take(300).collect();
                format!("  {} {} {body}", r.method, r.path)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until at least `n` requests arrived, at most `timeout`.
    ///
    /// # Panics
    /// On timeout, listing what did arrive.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let mut rx = self.shared.count.subscribe();
        if tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_err()
        {
            panic!(
                "timed out after {timeout:?} waiting for {n} request(s) to the fake API; received:\n{:#?}",
                self.requests()
            );
        }
        self.requests()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Writes `secret` to `dir/name` and returns the absolute path, for `*_file` keys.
pub fn secret_file(dir: &Path, name: &str, secret: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, secret).expect("write the secret file");
    path.to_str().expect("UTF-8 temp path").to_string()
}
