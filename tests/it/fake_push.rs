//! Local stand-ins for the push services (ntfy, Pushover, Gotify).
//!
//! Each fake checks a request the way its service documents it (path, method, auth,
//! content type, required fields and their limits) and answers the way the service
//! does, error shapes included, so a notifier that passes here speaks the real API. Every
//! request is recorded, whatever the answer, for tests to assert on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fake_api::{Answer, FakeApi, Request};

/// Serves `rules`, which answer JSON the way the service does.
async fn serve(rules: impl Fn(&Request) -> (StatusCode, Value) + Send + Sync + 'static) -> FakeApi {
    FakeApi::serve(move |r| {
        let (status, body) = rules(r);
        Answer::json(status.as_u16(), body)
    })
    .await
}

/// A fresh id in the style of each service's request ids.
fn request_id() -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "5042853c-402d-4a18-abcb-{:012x}",
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------------
// ntfy (docs.ntfy.sh/publish/#publish-as-json; errors as server/errors.go writes them)
// ---------------------------------------------------------------------------------------

fn ntfy_error(code: u32, error: &str, link: &str) -> (StatusCode, Value) {
    let http = (code / 100) as u16;
    let mut body = json!({"code": code, "http": http, "error": error});
    if !link.is_empty() {
        body["link"] = json!(link);
    }
    (StatusCode::from_u16(http).expect("valid status"), body)
}

/// An ntfy server whose topics need `token` (an access token, sent as a bearer token).
/// It speaks only the JSON form (a POST or PUT to the root); tests check that form.
pub async fn ntfy(token: &'static str) -> FakeApi {
    serve(move |r| {
        if !(r.method == Method::POST || r.method == Method::PUT) || r.path != "/" {
            return ntfy_error(40401, "page not found", "");
        }
        match r.header("authorization") {
            None => {
                return ntfy_error(
                    40301,
                    "forbidden",
                    "https://ntfy.sh/docs/publish/#authentication",
                );
            }
            Some(a) if a != format!("Bearer {token}") => {
                return ntfy_error(
                    40101,
                    "unauthorized",
                    "https://ntfy.sh/docs/publish/#authentication",
                );
            }
            Some(_) => {}
        }
        let m = r.json_or_null();
        if !m.is_object() {
            return ntfy_error(
                40017,
                "invalid request: request body must be message JSON",
                "https://ntfy.sh/docs/publish/#publish-as-json",
            );
        }
        let topic_ok = m["topic"].as_str().is_some_and(|t| {
            (1..=64).contains(&t.len())
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        if !topic_ok {
            return ntfy_error(40009, "invalid request: topic invalid", "");
        }
        if !m["priority"].is_null() && !m["priority"].as_u64().is_some_and(|p| (1..=5).contains(&p))
        {
            return ntfy_error(
                40007,
                "invalid priority parameter",
                "https://ntfy.sh/docs/publish/#message-priority",
            );
        }
        if let Some(actions) = m.get("actions") {
            let ok = actions.as_array().is_some_and(|a| {
                a.len() <= 3
                    && a.iter().all(|x| {
                        let kind = x["action"].as_str().unwrap_or("");
                        ["view", "broadcast", "http"].contains(&kind)
                            && x["label"].as_str().is_some_and(|l| !l.is_empty())
                            && (kind == "broadcast" || x["url"].as_str().is_some())
                    })
            });
            if !ok {
                return ntfy_error(
                    40018,
                    "invalid request: actions invalid",
                    "https://ntfy.sh/docs/publish/#action-buttons",
                );
            }
        }
        let mut echo = m.clone();
        echo["id"] = json!("hwQ2YpKdmg");
        echo["time"] = json!(1_700_000_000);
        echo["expires"] = json!(1_700_043_200);
        echo["event"] = json!("message");
        (StatusCode::OK, echo)
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Pushover (pushover.net/api and pushover.net/api/receipts)
// ---------------------------------------------------------------------------------------

/// How the fake Pushover account is set up, and what it has seen.
pub struct PushoverAccount {
    pub app_token: &'static str,
    /// User keys that exist; any other is "invalid".
    pub users: Vec<&'static str>,
    /// A receipt says `acknowledged: 1` from this poll on (1 = the first); 0 = never.
    pub acked_on_poll: u64,
    /// Who acknowledged, once acknowledged.
    pub acked_by: &'static str,
    receipts: Mutex<BTreeMap<String, ReceiptState>>,
}

#[derive(Debug, Default)]
struct ReceiptState {
    polls: u64,
    cancelled: bool,
    /// Acknowledged on the phone (by [`PushoverAccount::acknowledge`]).
    acked: bool,
}

impl PushoverAccount {
    pub fn new(app_token: &'static str, users: Vec<&'static str>) -> Self {
        PushoverAccount {
            app_token,
            users,
            acked_on_poll: 0,
            acked_by: "",
            receipts: Mutex::default(),
        }
    }

    /// Receipts issued so far.
    pub fn receipts(&self) -> BTreeSet<String> {
        self.receipts.lock().unwrap().keys().cloned().collect()
    }

    /// Someone acknowledges `receipt` on the phone: polls say so from now on.
    pub fn acknowledge(&self, receipt: &str) {
        self.receipts
            .lock()
            .unwrap()
            .get_mut(receipt)
            .expect("a receipt this account issued")
            .acked = true;
    }

    /// How often `receipt` was polled.
    pub fn polls(&self, receipt: &str) -> u64 {
        self.receipts
            .lock()
            .unwrap()
            .get(receipt)
            .map_or(0, |r| r.polls)
    }

    /// Whether `receipt` was cancelled (retries stopped).
    pub fn cancelled(&self, receipt: &str) -> bool {
        self.receipts
            .lock()
            .unwrap()
            .get(receipt)
            .is_some_and(|r| r.cancelled)
    }
}

fn pushover_error(status: u16, field: &str, value: &str, errors: &[&str]) -> (StatusCode, Value) {
    let mut body = json!({"errors": errors, "status": 0, "request": request_id()});
    if !field.is_empty() {
        body[field] = json!(value);
    }
    (StatusCode::from_u16(status).expect("valid status"), body)
}

const INVALID_TOKEN: &str = "application token is invalid, see https://pushover.net/api";

impl PushoverAccount {
    fn answer(&self, r: &Request) -> (StatusCode, Value) {
        // Pushover takes form posts (and JSON); tocsin must send a form.
        let form = if r.method == Method::GET {
            r.query_map()
        } else {
            if r.content_type() != "application/x-www-form-urlencoded" {
                return pushover_error(400, "", "", &["request must be a form post"]);
            }
            r.form_map()
        };
        if form.get("token").map(String::as_str) != Some(self.app_token) {
            return pushover_error(400, "token", "invalid", &[INVALID_TOKEN]);
        }
        if r.path == "/1/messages.json" && r.method == Method::POST {
            return self.message(&form);
        }
        if let Some(rest) = r.path.strip_prefix("/1/receipts/") {
            if let Some(id) = rest.strip_suffix("/cancel.json")
                && r.method == Method::POST
            {
                return self.cancel(id);
            }
            if let Some(id) = rest.strip_suffix(".json")
                && !id.contains('/')
                && r.method == Method::GET
            {
                return self.poll(id);
            }
        }
        (
            StatusCode::NOT_FOUND,
            json!({"errors": ["not found"], "status": 0, "request": request_id()}),
        )
    }

    fn message(&self, f: &BTreeMap<String, String>) -> (StatusCode, Value) {
        let user = f.get("user").map(String::as_str).unwrap_or("");
        if !self.users.contains(&user) {
            return pushover_error(400, "user", "invalid", &["user identifier is invalid"]);
        }
        let message = f.get("message").map(String::as_str).unwrap_or("");
        if message.is_empty() {
            return pushover_error(
                400,
                "message",
                "cannot be blank",
                &["message cannot be blank"],
            );
        }
        if message.chars().count() > 1024 {
            return pushover_error(
                400,
                "message",
                "is too long",
                &["message cannot be longer than 1024 characters"],
            );
        }
        if f.get("title").is_some_and(|t| t.chars().count() > 250) {
            return pushover_error(
                400,
                "title",
                "is too long",
                &["title cannot be longer than 250 characters"],
            );
        }
        if f.get("url").is_some_and(|u| u.chars().count() > 512) {
            return pushover_error(
                400,
                "url",
                "is too long",
                &["url cannot be longer than 512 characters"],
            );
        }
        if f.get("url_title").is_some_and(|u| u.chars().count() > 100) {
            return pushover_error(
                400,
                "url_title",
                "is too long",
                &["url_title cannot be longer than 100 characters"],
            );
        }
        let priority: i64 = match f.get("priority").map(|p| p.parse()) {
            None => 0,
            Some(Ok(p)) if (-2..=2).contains(&p) => p,
            Some(_) => return pushover_error(400, "priority", "invalid", &["priority is invalid"]),
        };
        if priority != 2 {
            return (
                StatusCode::OK,
                json!({"status": 1, "request": request_id()}),
            );
        }
        match f.get("retry").and_then(|r| r.parse::<u64>().ok()) {
            Some(r) if r >= 30 => {}
            Some(_) => {
                return pushover_error(
                    400,
                    "retry",
                    "invalid",
                    &["retry must be at least 30 seconds"],
                );
            }
            None => {
                return pushover_error(
                    400,
                    "retry",
                    "invalid",
                    &["retry is required for emergency-priority messages"],
                );
            }
        }
        match f.get("expire").and_then(|e| e.parse::<u64>().ok()) {
            Some(e) if (1..=10800).contains(&e) => {}
            Some(_) => {
                return pushover_error(
                    400,
                    "expire",
                    "invalid",
                    &["expire must be at most 10800 seconds"],
                );
            }
            None => {
                return pushover_error(
                    400,
                    "expire",
                    "invalid",
                    &["expire is required for emergency-priority messages"],
                );
            }
        }
        let mut receipts = self.receipts.lock().unwrap();
        let receipt = format!("rcpt{:026}", receipts.len() + 1);
        receipts.insert(receipt.clone(), ReceiptState::default());
        (
            StatusCode::OK,
            json!({"status": 1, "request": request_id(), "receipt": receipt}),
        )
    }

    fn poll(&self, id: &str) -> (StatusCode, Value) {
        let mut receipts = self.receipts.lock().unwrap();
        let Some(state) = receipts.get_mut(id) else {
            return pushover_error(
                404,
                "receipt",
                "not found",
                &["receipt not found; may be invalid or expired"],
            );
        };
        state.polls += 1;
        let acked = state.acked || (self.acked_on_poll > 0 && state.polls >= self.acked_on_poll);
        (
            StatusCode::OK,
            json!({
                "status": 1,
                "acknowledged": i32::from(acked),
                "acknowledged_at": if acked { 1_700_000_100 } else { 0 },
                "acknowledged_by": if acked { self.acked_by } else { "" },
                "acknowledged_by_device": if acked { "iphone" } else { "" },
                "last_delivered_at": 1_700_000_060,
                "expired": 0,
                "expires_at": 1_700_003_600,
                "called_back": 0,
                "called_back_at": 0,
                "request": request_id(),
            }),
        )
    }

    fn cancel(&self, id: &str) -> (StatusCode, Value) {
        let mut receipts = self.receipts.lock().unwrap();
        let Some(state) = receipts.get_mut(id) else {
            return pushover_error(
                404,
                "receipt",
                "not found",
                &["receipt not found; may be invalid or expired"],
            );
        };
        state.cancelled = true;
        (
            StatusCode::OK,
            json!({"status": 1, "request": request_id()}),
        )
    }
}

/// A Pushover API for `account`, which the test keeps to look at receipts.
pub async fn pushover(account: Arc<PushoverAccount>) -> FakeApi {
    serve(move |r| account.answer(r)).await
}

// ---------------------------------------------------------------------------------------
// Gotify (gotify.net/api-docs: POST /message; errors as its gin handlers write them)
// ---------------------------------------------------------------------------------------

fn gotify_error(status: StatusCode, description: &str) -> (StatusCode, Value) {
    (
        status,
        json!({
            "error": status.canonical_reason().unwrap_or(""),
            "errorCode": status.as_u16(),
            "errorDescription": description,
        }),
    )
}

/// A Gotify server with one application whose token is `app_token`.
pub async fn gotify(app_token: &'static str) -> FakeApi {
    let next_id = AtomicU64::new(1);
    serve(move |r| {
        if r.method != Method::POST || r.path != "/message" {
            return gotify_error(StatusCode::NOT_FOUND, "page not found");
        }
        // The token may come as X-Gotify-Key, ?token= or a bearer token.
        let bearer = r
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "));
        let query = r.query_map();
        let key = r
            .header("x-gotify-key")
            .or(query.get("token").map(String::as_str))
            .or(bearer);
        if key != Some(app_token) {
            return gotify_error(
                StatusCode::UNAUTHORIZED,
                "you need to provide a valid access token or user credentials to access this api",
            );
        }
        let m = r.json_or_null();
        if !m.is_object() {
            return gotify_error(StatusCode::BAD_REQUEST, "invalid character in request body");
        }
        if m["message"].as_str().is_none_or(str::is_empty) {
            return gotify_error(StatusCode::BAD_REQUEST, "Field 'message' is required");
        }
        let mut echo = m.clone();
        echo["id"] = json!(next_id.fetch_add(1, Ordering::Relaxed));
        echo["appid"] = json!(1);
        echo["date"] = json!("2026-11-21T19:42:07.123456789Z");
        (StatusCode::OK, echo)
    })
    .await
}
