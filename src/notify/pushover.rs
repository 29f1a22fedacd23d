//! `type = "pushover"`: pages through Pushover's Messages API; pages that need someone
//! now go out at emergency priority, which rings until acknowledged on the phone.
//!
//! An emergency message comes back with a receipt. While the incident is open, a
//! background task polls each receipt (no faster than Pushover asks); when someone
//! acknowledges on the phone, the incident is acked in tocsin as that contact. When the
//! incident is acked or resolved some other way, [`Notifier::closed`] cancels the
//! receipt so the phone stops ringing. Receipts live in memory only: after a restart an
//! old emergency page still rings until it expires (`expire`), but can no longer ack.
//! A reload keeps them: an unchanged notifier is kept as it is, and a changed one
//! shares its predecessor's receipts, each polled and cancelled with the application
//! token it was sent with.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
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
use crate::engine::{Actor, IncidentId, IncidentState, PageKind, Via};
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
/// stops once the notifier is dropped (the daemon stopped, or a reload replaced it).
struct Shared {
    /// Where new messages go, and as which application.
    account: Arc<Account>,
    client: reqwest::Client,
    /// Severities sent at emergency priority.
    emergency: Vec<String>,
    retry_secs: u64,
    expire: Duration,
    /// Records acknowledgements made on the phone; `None` in `tocsin test-notify`.
    acker: Option<Arc<dyn Acker>>,
    /// Emergency pages still ringing, by receipt; shared with the notifier this one
    /// replaced on a reload, so none is lost. Never locked across an await.
    receipts: Arc<Mutex<HashMap<String, Receipt>>>,
    /// A reload put a successor in this notifier's place: the successor polls the shared
    /// receipts, so this one's poller stops (sends still under way finish here).
    replaced: AtomicBool,
}

/// A Pushover application at an API: what a receipt is polled and cancelled with.
struct Account {
    /// `{api_url}/1/`: every endpoint is relative to it.
    api: reqwest::Url,
    app_token: Secret,
}

impl Account {
    fn endpoint(&self, path: &str) -> reqwest::Url {
        self.api
            .join(path)
            .expect("a relative path joins any http URL")
    }
}

/// One emergency message that may still ring.
#[derive(Clone)]
struct Receipt {
    /// The application that sent it: a reload may change the token or the API since.
    account: Arc<Account>,
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
    /// receipt poller runs as the supervised task `pushover-receipts:NAME`. `previous`
    /// is the notifier this one replaces on a reload: if it is a Pushover notifier too,
    /// its receipts still ringing are this one's from now on.
    pub fn new(
        name: &str,
        cfg: &PushoverConfig,
        app_token: Option<Secret>,
        cx: &BuildContext,
        previous: Option<&dyn super::Notifier>,
    ) -> Result<Self, NotifyError> {
        let acker = cx.acker.clone();
        let app_token = app_token
            .ok_or_else(|| NotifyError::config("pushover needs app_token_file or app_token_env"))?;
        let base = format!("{}/1/", cfg.api_url.trim_end_matches('/'));
        let api = reqwest::Url::parse(&base).map_err(|e| {
            NotifyError::permanent(format!(
                "pushover api_url {:?} is invalid: {e}",
                cfg.api_url
            ))
        })?;
        let receipts = previous
            .and_then(|p| (p as &dyn Any).downcast_ref::<PushoverNotifier>())
            .map(|p| p.shared.receipts.clone())
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            account: Arc::new(Account { api, app_token }),
            client: http_client(cfg.timeout.0)?,
            emergency: cfg.emergency_severities.clone(),
            retry_secs: cfg.retry.0.as_secs(),
            expire: cfg.expire.0,
            acker,
            receipts,
            replaced: AtomicBool::new(false),
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
        ("token", shared.account.app_token.expose().to_string()),
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

    /// The application `receipt` was sent by, while it is still tracked.
    fn account_of(&self, receipt: &str) -> Option<Arc<Account>> {
        let receipts = self.receipts.lock().expect("receipts lock");
        receipts.get(receipt).map(|r| r.account.clone())
    }

    async fn poll_one(&self, receipt: &str) {
        let Some(account) = self.account_of(receipt) else {
            return;
        };
        let mut url = account.endpoint(&format!("receipts/{receipt}.json"));
        url.query_pairs_mut()
            .append_pair("token", account.app_token.expose());
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
                warn!(receipt, %status, body = %super::message::clean(&body.chars().take(200).collect::<String>()), "Pushover does not know this receipt; forgetting it");
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
            match acker.ack(id, Actor::new(who, Via::Pushover)).await {
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

    async fn cancel(&self, receipt: &str, account: &Account) {
        let url = account.endpoint(&format!("receipts/{receipt}/cancel.json"));
        let sent = self
            .client
            .post(url)
            .form(&[("token", account.app_token.expose())])
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                info!(receipt, "Pushover emergency page cancelled")
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                warn!(receipt, %status, body = %super::message::clean(&body.chars().take(200).collect::<String>()), "cancelling a Pushover emergency page failed; it rings until acknowledged or expired");
            }
            Err(e) => {
                warn!(receipt, error = %e, "cancelling a Pushover emergency page failed; it rings until acknowledged or expired")
            }
        }
    }
}

/// Polls receipts every `every` until `stop` (the notifier is dropped); a notifier
/// replaced by a reload stops polling (its successor polls the receipts it took over).
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
        if shared.replaced.load(Ordering::Acquire) {
            drop(shared);
            return stop.cancelled().await;
        }
        shared.poll_once().await;
    }
}

#[async_trait]
impl Notifier for PushoverNotifier {
    fn kind(&self) -> &'static str {
        "pushover"
    }

    async fn check(&self) -> Result<String, NotifyError> {
        crate::notify::reachable(&self.shared.client, &self.shared.account.api).await
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let s = &self.shared;
        let Some(user) = msg.page.to.as_deref() else {
            return Err(NotifyError::bad_address(format!(
                "Pushover page to {} has no user key: give the contact method to = \"USER_KEY\"",
                msg.page.target
            )));
        };
        let url = s.account.endpoint("messages.json");
        let resp = s
            .client
            .post(url.clone())
            .form(&form(s, msg, user))
            .send()
            .await
            .map_err(|e| NotifyError::from_request(&format!("POST {}", super::redact(&url)), &e))?;
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
                    message: format!("Pushover {}: {}", super::redact(&url), e.message),
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
                return Ok(super::Sent::Delivered);
            }
            let mut receipts = s.receipts.lock().expect("receipts lock");
            Shared::prune(&mut receipts);
            receipts.insert(
                receipt,
                Receipt {
                    account: s.account.clone(),
                    incidents,
                    contact: msg.page.contact.clone(),
                    expires: Instant::now() + s.expire,
                    ack_tries: 0,
                },
            );
        }
        Ok(super::Sent::Delivered)
    }

    fn replaced(&self) {
        self.shared.replaced.store(true, Ordering::Release);
    }

    async fn closed(&self, incident: IncidentId) {
        let done: Vec<(String, Arc<Account>)> = {
            let mut receipts = self.shared.receipts.lock().expect("receipts lock");
            let mut done = Vec::new();
            for (r, rec) in receipts.iter_mut() {
                if rec.incidents.remove(&incident) && rec.incidents.is_empty() {
                    done.push((r.clone(), rec.account.clone()));
                }
            }
            for (r, _) in &done {
                receipts.remove(r);
            }
            done
        };
        for (r, account) in done {
            self.shared.cancel(&r, &account).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ntfy::tests::message;
    use super::*;

    fn account() -> Arc<Account> {
        Arc::new(Account {
            api: reqwest::Url::parse("https://api.pushover.net/1/").unwrap(),
            app_token: Secret::new("azGDORePK8gMaC0QOYAMyEEuzJnyUi"),
        })
    }

    fn shared() -> Shared {
        Shared {
            account: account(),
            client: reqwest::Client::new(),
            emergency: vec!["critical".to_string()],
            retry_secs: 60,
            expire: Duration::from_secs(3600),
            acker: None,
            receipts: Arc::default(),
            replaced: AtomicBool::new(false),
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

    fn receipt(incidents: BTreeSet<IncidentId>) -> Receipt {
        Receipt {
            account: account(),
            incidents,
            contact: None,
            expires: Instant::now() + Duration::from_secs(60),
            ack_tries: 0,
        }
    }

    #[test]
    fn a_notifier_rebuilt_on_reload_takes_over_the_receipts_with_the_token_they_were_sent_with() {
        let old = PushoverNotifier {
            shared: Arc::new(shared()),
            _poller: None,
        };
        old.shared
            .receipts
            .lock()
            .unwrap()
            .insert("r1".into(), receipt([7].into()));
        let cfg: PushoverConfig = toml::from_str("app_token_env = \"PUSHOVER\"").unwrap();
        let new = PushoverNotifier::new(
            "push",
            &cfg,
            Some(Secret::new("rotated-token")),
            &BuildContext::offline(),
            Some(&old),
        )
        .unwrap();
        assert!(Arc::ptr_eq(&new.shared.receipts, &old.shared.receipts));
        assert_eq!(new.shared.account.app_token.expose(), "rotated-token");
        let taken = new.shared.receipts.lock().unwrap()["r1"].account.clone();
        assert_eq!(
            taken.app_token.expose(),
            "azGDORePK8gMaC0QOYAMyEEuzJnyUi",
            "the receipt is polled and cancelled as the application that sent it"
        );

        // A notifier of another type has no receipts to hand over.
        let log = super::super::LogNotifier::stderr();
        let fresh = PushoverNotifier::new(
            "push",
            &cfg,
            Some(Secret::new("t")),
            &BuildContext::offline(),
            Some(&log),
        )
        .unwrap();
        assert!(fresh.shared.receipts.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn closing_one_incident_of_a_bundle_keeps_the_receipt_ringing() {
        let n = PushoverNotifier {
            shared: Arc::new(shared()),
            _poller: None,
        };
        n.shared
            .receipts
            .lock()
            .unwrap()
            .insert("r1".into(), receipt([1, 2].into()));
        // Incident 1 closes: incident 2 still needs someone, so nothing is cancelled
        // (a cancel would reach api.pushover.net and fail in this test).
        n.closed(1).await;
        let left = n.shared.receipts.lock().unwrap()["r1"].incidents.clone();
        assert_eq!(left, [2].into());
    }
}
