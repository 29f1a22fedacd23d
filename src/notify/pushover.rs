//! `type = "pushover"`: pages through Pushover's Messages API; pages that need someone
//! now go out at emergency priority, which rings until acknowledged on the phone.
//!
//! An emergency message comes back with a receipt. While the incident is open, a
//! background task polls each receipt (no faster than Pushover asks); when someone
//! acknowledges on the phone, the incident is acked in tocsin as that contact. When the
//! incident is acked or resolved some other way, [`Notifier::closed`] cancels the
//! receipt so the phone stops ringing. Receipts live in memory only: after a restart an
//! old emergency page still rings until it expires (`expire`), but can no longer ack.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, info, warn};

use super::http_client;
use super::message::clean;
use super::webhook::classify_status;
use super::{Acker, BuildContext, Message, Notifier, NotifyError};
use crate::config::{PushoverConfig, Secret};
use crate::engine::{Actor, IncidentId, IncidentState, PageKind};
use crate::runtime::Importance;

/// Pushover's limits: title 250 characters, message 1024, url 512, url_title 100.
const MAX_TITLE: usize = 250;
const MAX_MESSAGE: usize = 1024;
/// A receipt whose acknowledgement could not be recorded is tried this often, then
/// given up (the incident is probably gone or the store is down for long).
const MAX_ACK_TRIES: u32 = 3;

pub struct PushoverNotifier {
    shared: Arc<Shared>,
    /// Stops the receipt poller when the notifier goes (a reload replaced it).
    _poller: Option<DropGuard>,
}

/// What the notifier and its receipt poller share. The poller holds it weakly, so it
/// stops once the notifier is dropped (the daemon stopped).
struct Shared {
    /// `{api_url}/1/`: every endpoint is relative to it.
    api: reqwest::Url,
    client: reqwest::Client,
    app_token: Secret,
    /// Severities sent at emergency priority.
    emergency: Vec<String>,
    retry_secs: u64,
    expire: Duration,
    /// Records acknowledgements made on the phone; `None` in `tocsin test-notify`.
    acker: Option<Arc<dyn Acker>>,
    /// Emergency pages still ringing, by receipt. Never locked across an await.
    receipts: Mutex<HashMap<String, Receipt>>,
}

/// One emergency message that may still ring.
#[derive(Debug, Clone)]
struct Receipt {
    /// The incidents it pages about that are still open (a bundle covers several).
    incidents: BTreeSet<IncidentId>,
    /// The contact paged: whoever acks on the phone acks as them.
    contact: Option<String>,
    /// After this Pushover stops ringing by itself; the receipt is forgotten then.
    expires: Instant,
    /// Failed attempts to record its acknowledgement.
    ack_tries: u32,
}

impl PushoverNotifier {
    /// The notifier `name`; with an acker and a supervisor in `cx` (the daemon), its
    /// receipt poller runs as the supervised task `pushover-receipts:NAME`.
    pub fn new(
        name: &str,
        cfg: &PushoverConfig,
        app_token: Option<Secret>,
        cx: &BuildContext,
    ) -> Result<Self, NotifyError> {
        let acker = cx.acker.clone();
        let app_token = app_token.ok_or_else(|| {
            NotifyError::permanent("pushover needs app_token_file or app_token_env")
        })?;
        let base = format!("{}/1/", cfg.api_url.trim_end_matches('/'));
        let api = reqwest::Url::parse(&base).map_err(|e| {
            NotifyError::permanent(format!(
                "pushover api_url {:?} is invalid: {e}",
                cfg.api_url
            ))
        })?;
        let shared = Arc::new(Shared {
            api,
            client: http_client(cfg.timeout.0)?,
            app_token,
            emergency: cfg.emergency_severities.clone(),
            retry_secs: cfg.retry.0.as_secs(),
            expire: cfg.expire.0,
            acker,
            receipts: Mutex::new(HashMap::new()),
        });
        let poller = match (&shared.acker, &cx.tasks) {
            (Some(_), Some(tasks)) => {
                let stop = CancellationToken::new();
                let (weak, every) = (Arc::downgrade(&shared), cfg.poll_interval.0);
                let task_stop = stop.clone();
                tasks.spawn(
                    format!("pushover-receipts:{name}"),
                    Importance::BestEffort,
                    &stop,
                    move || poll_receipts(weak.clone(), every, task_stop.clone()),
                );
                Some(stop.drop_guard())
            }
            (Some(_), None) => {
                warn!("no supervisor: Pushover acknowledgements will not ack incidents");
                None
            }
            (None, _) => None,
        };
        Ok(PushoverNotifier {
            shared,
            _poller: poller,
        })
    }
}

/// 2 (emergency: rings until acknowledged) when an open incident of an emergency
/// severity needs someone; 1 (high) for other pages that need someone and for tests;
/// 0 for acks and resolves, which nobody has to act on.
fn priority(msg: &Message, emergency: &[String]) -> i8 {
    if !msg.wants_ack() {
        return 0;
    }
    let emergency_now = msg.items().any(|(p, i)| {
        matches!(
            p.kind,
            PageKind::Triggered | PageKind::Escalated | PageKind::Reminder
        ) && i.state == IncidentState::Triggered
            && i.labels
                .get("severity")
                .is_some_and(|s| emergency.contains(s))
    });
    if emergency_now { 2 } else { 1 }
}

/// The form fields of `POST /1/messages.json` (pushover.net/api).
fn form(shared: &Shared, msg: &Message, user: &str) -> Vec<(&'static str, String)> {
    let priority = priority(msg, &shared.emergency);
    let mut f = vec![
        ("token", shared.app_token.expose().to_string()),
        ("user", user.to_string()),
        ("title", chars(&clean(&msg.headline()), MAX_TITLE)),
        ("message", chars(&msg.body_text(), MAX_MESSAGE)),
        ("priority", priority.to_string()),
        ("html", "0".to_string()),
    ];
    if msg.wants_ack() {
        f.push(("url", msg.ack_url.clone()));
        f.push(("url_title", "Acknowledge".to_string()));
    }
    if priority == 2 {
        f.push(("retry", shared.retry_secs.to_string()));
        f.push(("expire", shared.expire.as_secs().to_string()));
    }
    f
}

/// `s` cut to `max` characters (Pushover counts characters, not bytes), ending in `…`
/// when cut.
fn chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let kept: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}

/// What Pushover answers to every call: `status` 1 on success, else `errors`.
#[derive(Debug, Deserialize)]
struct ApiReply {
    #[serde(default)]
    status: i64,
    #[serde(default)]
    errors: Vec<String>,
    receipt: Option<String>,
    #[serde(default)]
    acknowledged: i64,
    acknowledged_by: Option<String>,
    #[serde(default)]
    expired: i64,
}

/// A receipt is 30 characters of [A-Za-z0-9]; anything else is not put in a URL.
fn valid_receipt(r: &str) -> bool {
    !r.is_empty() && r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric())
}

impl Shared {
    fn endpoint(&self, path: &str) -> reqwest::Url {
        self.api
            .join(path)
            .expect("a relative path joins any http URL")
    }

    /// Forgets receipts that stopped ringing by themselves, so the map stays bounded
    /// even when nobody polls or closes them.
    fn prune(receipts: &mut HashMap<String, Receipt>) {
        let now = Instant::now();
        receipts.retain(|_, r| r.expires + Duration::from_secs(60) > now);
    }

    /// One poll of every receipt: acknowledged ones ack their incidents, expired ones
    /// are forgotten.
    async fn poll_once(&self) {
        let pending: Vec<String> = {
            let mut receipts = self.receipts.lock().expect("receipts lock");
            Self::prune(&mut receipts);
            receipts.keys().cloned().collect()
        };
        for r in pending {
            self.poll_one(&r).await;
        }
    }

    async fn poll_one(&self, receipt: &str) {
        let mut url = self.endpoint(&format!("receipts/{receipt}.json"));
        url.query_pairs_mut()
            .append_pair("token", self.app_token.expose());
        let resp = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => {
                debug!(receipt, error = %e, "polling a Pushover receipt failed; trying again next time");
                return;
            }
        };
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            if !classify_status(status, &body).transient {
                // 404 "receipt not found": it expired or was never ours. Nothing to wait for.
                warn!(receipt, %status, body = %body.chars().take(200).collect::<String>(), "Pushover does not know this receipt; forgetting it");
                self.forget(receipt);
            }
            return;
        }
        let Ok(reply) = serde_json::from_str::<ApiReply>(&body) else {
            debug!(
                receipt,
                "Pushover receipt answer is not JSON; trying again next time"
            );
            return;
        };
        if reply.acknowledged == 1 {
            // Taken out before acking: the ack closes the incident, and `closed` must not
            // cancel a receipt that was just acknowledged.
            let Some(rec) = self.forget(receipt) else {
                return;
            };
            let who = rec
                .contact
                .clone()
                .or(reply.acknowledged_by)
                .unwrap_or_else(|| "pushover user".to_string());
            self.ack_all(receipt, rec, &who).await;
        } else if reply.expired == 1 {
            info!(receipt, "Pushover emergency page expired unacknowledged");
            self.forget(receipt);
        }
    }

    async fn ack_all(&self, receipt: &str, mut rec: Receipt, who: &str) {
        let Some(acker) = &self.acker else { return };
        let mut failed = BTreeSet::new();
        for &id in &rec.incidents {
            match acker.ack(id, Actor::new(who, "pushover")).await {
                Ok(()) => info!(incident = id, by = who, receipt, "acknowledged on Pushover"),
                Err(e) => {
                    warn!(incident = id, by = who, receipt, error = %e, "recording a Pushover acknowledgement failed");
                    failed.insert(id);
                }
            }
        }
        rec.ack_tries += 1;
        if !failed.is_empty() && rec.ack_tries < MAX_ACK_TRIES {
            rec.incidents = failed;
            self.receipts
                .lock()
                .expect("receipts lock")
                .insert(receipt.to_string(), rec);
        }
    }

    fn forget(&self, receipt: &str) -> Option<Receipt> {
        self.receipts.lock().expect("receipts lock").remove(receipt)
    }

    async fn cancel(&self, receipt: &str) {
        let url = self.endpoint(&format!("receipts/{receipt}/cancel.json"));
        let sent = self
            .client
            .post(url)
            .form(&[("token", self.app_token.expose())])
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                info!(receipt, "Pushover emergency page cancelled")
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                warn!(receipt, %status, body = %body.chars().take(200).collect::<String>(), "cancelling a Pushover emergency page failed; it rings until acknowledged or expired");
            }
            Err(e) => {
                warn!(receipt, error = %e, "cancelling a Pushover emergency page failed; it rings until acknowledged or expired")
            }
        }
    }
}

/// Polls receipts every `every` until `stop` (the notifier is dropped).
async fn poll_receipts(shared: Weak<Shared>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(shared) = shared.upgrade() else {
            // The notifier is going; its guard cancels `stop` as it drops.
            return stop.cancelled().await;
        };
        shared.poll_once().await;
    }
}

#[async_trait]
impl Notifier for PushoverNotifier {
    fn kind(&self) -> &'static str {
        "pushover"
    }

    async fn check(&self) -> Result<String, NotifyError> {
        crate::notify::reachable(&self.shared.client, &self.shared.api).await
    }

    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let s = &self.shared;
        let Some(user) = msg.page.to.as_deref() else {
            return Err(NotifyError::permanent(format!(
                "Pushover page to {} has no user key: give the contact method to = \"USER_KEY\"",
                msg.page.target
            )));
        };
        let url = s.endpoint("messages.json");
        let resp = s
            .client
            .post(url.clone())
            .form(&form(s, msg, user))
            .send()
            .await
            .map_err(|e| NotifyError::transient(format!("POST {url} failed: {e}")))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let reply = serde_json::from_str::<ApiReply>(&body).ok();
        if !status.is_success() {
            let e = classify_status(status, &body);
            // 4xx: {"user":"invalid","errors":["user identifier is invalid"],"status":0,...}
            return Err(match reply {
                Some(r) if !r.errors.is_empty() => NotifyError {
                    message: format!(
                        "Pushover refused the page (HTTP {}): {}",
                        status.as_u16(),
                        r.errors.join("; ")
                    ),
                    ..e
                },
                _ => NotifyError {
                    message: format!("Pushover {url}: {}", e.message),
                    ..e
                },
            });
        }
        let Some(reply) = reply.filter(|r| r.status == 1) else {
            return Err(NotifyError::transient(format!(
                "Pushover answered {status} without status 1: {}",
                body.chars().take(200).collect::<String>()
            )));
        };
        if let Some(receipt) = reply.receipt.filter(|r| valid_receipt(r)) {
            let incidents: BTreeSet<IncidentId> = msg
                .items()
                .filter(|(_, i)| i.state == IncidentState::Triggered)
                .map(|(_, i)| i.id)
                .collect();
            if incidents.is_empty() {
                return Ok(());
            }
            let mut receipts = s.receipts.lock().expect("receipts lock");
            Shared::prune(&mut receipts);
            receipts.insert(
                receipt,
                Receipt {
                    incidents,
                    contact: msg.page.contact.clone(),
                    expires: Instant::now() + s.expire,
                    ack_tries: 0,
                },
            );
        }
        Ok(())
    }

    async fn closed(&self, incident: IncidentId) {
        let done: Vec<String> = {
            let mut receipts = self.shared.receipts.lock().expect("receipts lock");
            let mut done = Vec::new();
            for (r, rec) in receipts.iter_mut() {
                if rec.incidents.remove(&incident) && rec.incidents.is_empty() {
                    done.push(r.clone());
                }
            }
            for r in &done {
                receipts.remove(r);
            }
            done
        };
        for r in done {
            self.shared.cancel(&r).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ntfy::tests::message;
    use super::*;

    fn shared() -> Shared {
        Shared {
            api: reqwest::Url::parse("https://api.pushover.net/1/").unwrap(),
            client: reqwest::Client::new(),
            app_token: Secret::new("azGDORePK8gMaC0QOYAMyEEuzJnyUi"),
            emergency: vec!["critical".to_string()],
            retry_secs: 60,
            expire: Duration::from_secs(3600),
            acker: None,
            receipts: Mutex::default(),
        }
    }

    fn field<'a>(f: &'a [(&str, String)], k: &str) -> Option<&'a str> {
        f.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn only_an_open_emergency_severity_page_rings_until_acknowledged() {
        let em = vec!["critical".to_string()];
        let p = |kind, sev| priority(&message(kind, "DiskFull", sev), &em);
        assert_eq!(p(PageKind::Triggered, Some("critical")), 2);
        assert_eq!(p(PageKind::Escalated, Some("critical")), 2);
        assert_eq!(p(PageKind::Reminder, Some("critical")), 2);
        assert_eq!(p(PageKind::Triggered, Some("warning")), 1);
        assert_eq!(p(PageKind::Triggered, None), 1);
        assert_eq!(p(PageKind::Test, Some("critical")), 1);
        assert_eq!(p(PageKind::Acknowledged, Some("critical")), 0);
        assert_eq!(p(PageKind::Resolved, Some("critical")), 0);
    }

    #[test]
    fn emergency_form_carries_retry_expire_and_the_ack_link() {
        let s = shared();
        let m = message(PageKind::Triggered, "DiskFull", Some("critical"));
        let f = form(&s, &m, "uQiRzpo4DXghDmr9QzzfQu27cmVRsG");
        assert_eq!(field(&f, "priority"), Some("2"));
        assert_eq!(field(&f, "retry"), Some("60"));
        assert_eq!(field(&f, "expire"), Some("3600"));
        assert_eq!(field(&f, "url"), Some(m.ack_url.as_str()));
        assert_eq!(field(&f, "url_title"), Some("Acknowledge"));
        assert_eq!(field(&f, "html"), Some("0"));

        let resolved = message(PageKind::Resolved, "DiskFull", Some("critical"));
        let f = form(&s, &resolved, "u");
        assert_eq!(field(&f, "priority"), Some("0"));
        assert_eq!(field(&f, "retry"), None, "retry only with priority 2");
        assert_eq!(field(&f, "url"), None, "nothing to acknowledge");
    }

    #[test]
    fn alert_title_cannot_break_the_notification_title() {
        let m = message(PageKind::Triggered, "Disk full\r\nfoo\u{1b}[1m", None);
        let f = form(&shared(), &m, "u");
        let title = field(&f, "title").unwrap();
        assert!(!title.contains(['\r', '\n', '\u{1b}']), "{title:?}");
    }

    #[test]
    fn texts_fit_pushover_limits_in_characters() {
        let long = "ü".repeat(2000);
        let cut = chars(&long, MAX_MESSAGE);
        assert!(cut.chars().count() <= MAX_MESSAGE);
        assert!(cut.ends_with('…'));
        assert_eq!(chars("short", MAX_TITLE), "short");
    }

    #[tokio::test]
    async fn closing_one_incident_of_a_bundle_keeps_the_receipt_ringing() {
        let n = PushoverNotifier {
            shared: Arc::new(shared()),
            _poller: None,
        };
        n.shared.receipts.lock().unwrap().insert(
            "r1".into(),
            Receipt {
                incidents: [1, 2].into(),
                contact: None,
                expires: Instant::now() + Duration::from_secs(60),
                ack_tries: 0,
            },
        );
        // Incident 1 closes: incident 2 still needs someone, so nothing is cancelled
        // (a cancel would reach api.pushover.net and fail in this test).
        n.closed(1).await;
        let left = n.shared.receipts.lock().unwrap()["r1"].incidents.clone();
        assert_eq!(left, [2].into());
    }
}
