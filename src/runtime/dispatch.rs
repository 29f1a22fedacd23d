//! Executes what the engine decided: sends committed pages through their notifiers and
//! reports back. Flood control holds pages of limited notifiers; what it releases goes
//! back to the engine, which says what of it is still wanted (sent together, as one
//! bundle). Transient failures are retried until the page's `retry_until`; every
//! attempt and the final outcome go back to the engine, which fails over to the
//! contact's next method. It reads an incident from the store only to word the message.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::{Mutex, Notify, mpsc};
use tracing::{info, warn};

use crate::ack_link::{AckKey, Claims, LINK_LIFETIME};
use crate::config::Config;
use crate::engine::{IncidentId, Outcome, Page};
use crate::metrics::{FailureLabel, Metrics, NotifierLabel, NotifierOnly};
use crate::notify::flood::Flood;
use crate::notify::{Item, Message, NotifierEntry, NotifyError, Sent};
use crate::store::fence::Fence;
use crate::store::{IncidentView, Store};
use crate::time::Clock;
use crate::watchdog::{Gate, Watchdog};

use super::{Importance, Supervisor};

/// Messages sent at the same time; the rest wait in the queue.
const WORKERS: usize = 32;
/// Alerts listed per incident of a bundle (a storm's bundle lists every incident, not
/// every alert).
const BUNDLE_ALERTS: usize = 3;

/// What the dispatcher tells the engine loop.
#[derive(Debug)]
pub(crate) enum Report {
    /// A page finished (after its retries).
    Outcome(Page, Outcome),
    /// One attempt failed and another follows: recorded in the history.
    Attempt(Page, u32, String),
    /// Flood control let these held pages of one destination go; the engine decides
    /// which still go out (as [`Dispatcher::send_now`]).
    Released(Vec<Page>),
}

#[derive(Clone)]
pub(crate) struct Dispatcher {
    inner: Arc<Inner>,
}

/// One message: a page, or a bundle of pages for one destination.
struct Job {
    pages: Vec<Page>,
    /// Released by flood control: the destination's send is counted from the moment
    /// the notifier is called, so a slow store read cannot bring two messages closer.
    released: bool,
    /// A notice about tocsin itself, with what it says: sent without reading or
    /// recording anything in the store (it is sent because the store cannot be written).
    notice: Option<IncidentView>,
}

struct Inner {
    /// Swapped whole by a config reload; a send holds the map it started with.
    notifiers: std::sync::RwLock<Arc<BTreeMap<String, NotifierEntry>>>,
    store: Arc<dyn Store>,
    reports: mpsc::UnboundedSender<Report>,
    queue_tx: std::sync::Mutex<Option<mpsc::UnboundedSender<Job>>>,
    queue_rx: Mutex<mpsc::UnboundedReceiver<Job>>,
    flood: std::sync::Mutex<Flood>,
    flood_wake: Notify,
    /// Queued plus being sent; shutdown waits for it to reach zero. Held pages are not
    /// counted: they stay pending in the store and go out after a restart.
    in_flight: AtomicUsize,
    closed: AtomicBool,
    metrics: Arc<Metrics>,
    public_url: String,
    ack_key: AckKey,
    clock: Arc<dyn Clock>,
    /// Notifier health: a notifier that is down is routed around, and every attempt's
    /// result is reported to it.
    watchdog: Arc<Watchdog>,
    /// With a shared store, this instance's lease: no page goes out, and no attempt
    /// starts, once another instance may lead. `None`: this instance alone sends.
    fence: Option<Arc<Fence>>,
}

impl Dispatcher {
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        cfg: &Config,
        notifiers: BTreeMap<String, NotifierEntry>,
        store: Arc<dyn Store>,
        reports: mpsc::UnboundedSender<Report>,
        metrics: Arc<Metrics>,
        ack_key: AckKey,
        clock: Arc<dyn Clock>,
        watchdog: Arc<Watchdog>,
        fence: Option<Arc<Fence>>,
        tasks: &Supervisor,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let flood = Flood::new(notifiers.iter().map(|(n, e)| (n.clone(), e.limits.clone())));
        let notifiers = std::sync::RwLock::new(Arc::new(notifiers));
        let inner = Arc::new(Inner {
            notifiers,
            store,
            reports,
            queue_tx: std::sync::Mutex::new(Some(tx)),
            queue_rx: Mutex::new(rx),
            flood: std::sync::Mutex::new(flood),
            flood_wake: Notify::new(),
            in_flight: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            metrics,
            public_url: cfg.file.server.public_url.trim_end_matches('/').to_string(),
            ack_key,
            clock,
            watchdog,
            fence,
        });
        // Workers end when the queue closes and the release loop when the dispatcher
        // does: both only while tocsin stops.
        let stop = tasks.stopping();
        for i in 0..WORKERS {
            let name = format!("dispatch-worker-{i}");
            let inner = inner.clone();
            tasks.spawn(name, Importance::Essential, &stop, move || {
                let inner = inner.clone();
                async move {
                    /// A job's pages leave `in_flight` even when sending it panics, so
                    /// shutdown does not wait for them (they stay pending in the store).
                    struct Sent<'a>(&'a Inner, usize);
                    impl Drop for Sent<'_> {
                        fn drop(&mut self) {
                            self.0.in_flight.fetch_sub(self.1, Ordering::AcqRel);
                        }
                    }
                    loop {
                        let job = { inner.queue_rx.lock().await.recv().await };
                        let Some(job) = job else { break };
                        let _sent = Sent(&inner, job.pages.len());
                        inner.send_job(job).await;
                    }
                }
            });
        }
        let flood_inner = inner.clone();
        tasks.spawn("flood-release", Importance::Essential, &stop, move || {
            flood_inner.clone().release_loop()
        });
        Dispatcher { inner }
    }

    /// A reloaded config: its notifiers and limits serve every
    /// send from now on (sends already under way finish with what they started with).
    pub fn reconfigure(&self, notifiers: BTreeMap<String, NotifierEntry>) {
        self.inner
            .flood
            .lock()
            .expect("flood lock")
            .set_limits(notifiers.iter().map(|(n, e)| (n.clone(), e.limits.clone())));
        *self.inner.notifiers.write().expect("notifiers lock") = Arc::new(notifiers);
        self.inner.flood_wake.notify_one();
    }

    /// Queues pages whose intents are committed; pages of rate-limited notifiers wait
    /// for their limits.
    pub fn send_all(&self, pages: Vec<Page>) {
        if self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        let mut held = 0;
        let now = self.inner.clock.now();
        {
            let mut flood = self.inner.flood.lock().expect("flood lock");
            for p in pages {
                if p.hold_until.is_some_and(|t| t > now) || flood.limits(&p.notifier) {
                    flood.hold(p);
                    held += 1;
                } else {
                    self.inner.enqueue(Job {
                        pages: vec![p],
                        released: false,
                        notice: None,
                    });
                }
            }
        }
        if held > 0 {
            self.inner.flood_wake.notify_one();
        }
    }

    /// Flood control released `released` and the engine decided: `wanted` (a part of
    /// it, maybe none) goes out now, together, without being held again; the
    /// destination counts this send from now.
    pub fn send_released(&self, released: &[Page], wanted: Vec<Page>) {
        let Some(first) = released.first() else {
            return;
        };
        if self.inner.closed.load(Ordering::Acquire) || wanted.is_empty() {
            self.with_flood(|flood, now| flood.settle(first, now));
            return;
        }
        self.inner.enqueue(Job {
            pages: wanted,
            released: true,
            notice: None,
        });
    }

    /// Sends `pages`, each saying `what`, past flood control and without the store:
    /// nothing of them is read from it or reported back to be recorded.
    pub fn send_notice(&self, pages: Vec<Page>, what: IncidentView) {
        for p in pages {
            self.inner.enqueue(Job {
                pages: vec![p],
                released: false,
                notice: Some(what.clone()),
            });
        }
    }

    /// The engine could not record its decision on released pages: they are held again,
    /// first in line.
    pub fn rehold(&self, released: Vec<Page>) {
        self.with_flood(|flood, now| flood.rehold(released, now));
    }

    fn with_flood(&self, f: impl FnOnce(&mut Flood, crate::time::Timestamp)) {
        self.inner.with_flood(f);
    }

    /// The incident was acked or resolved: notifiers stop what still rings for it.
    pub fn closed(&self, incidents: Vec<IncidentId>) {
        if incidents.is_empty() {
            return;
        }
        let notifiers: Vec<_> = self
            .inner
            .notifiers()
            .values()
            .map(|e| e.notifier.clone())
            .collect();
        tokio::spawn(async move {
            for id in incidents {
                for n in &notifiers {
                    n.closed(id).await;
                }
            }
        });
    }

    /// Takes no more pages; queued ones are still sent, held ones wait for the next start.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.queue_tx.lock().expect("queue lock").take();
        let left = self.inner.flood.lock().expect("flood lock").drain_all();
        if !left.is_empty() {
            info!(
                pages = left.len(),
                "pages held by flood control stay pending; they are sent after the next start"
            );
        }
        self.inner.flood_wake.notify_one();
    }

    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }
}

impl Inner {
    fn notifiers(&self) -> Arc<BTreeMap<String, NotifierEntry>> {
        self.notifiers.read().expect("notifiers lock").clone()
    }

    fn with_flood(&self, f: impl FnOnce(&mut Flood, crate::time::Timestamp)) {
        let now = self.clock.now();
        f(&mut self.flood.lock().expect("flood lock"), now);
        self.flood_wake.notify_one();
    }

    fn enqueue(&self, job: Job) {
        let guard = self.queue_tx.lock().expect("queue lock");
        let Some(tx) = guard.as_ref() else { return };
        let n = job.pages.len();
        self.in_flight.fetch_add(n, Ordering::AcqRel);
        if tx.send(job).is_err() {
            self.in_flight.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Lets held pages go as their limits allow.
    async fn release_loop(self: Arc<Self>) {
        let mut jumps = self.clock.jumps();
        loop {
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let now = self.clock.now();
            let (jobs, next) = {
                let mut flood = self.flood.lock().expect("flood lock");
                let r = flood.release(now);
                for name in self.notifiers().keys() {
                    self.metrics
                        .pages_held
                        .get_or_create(&NotifierOnly {
                            notifier: name.clone(),
                        })
                        .set(flood.held_for(name) as i64);
                }
                r
            };
            for pages in jobs {
                // The engine may be gone at the very end of shutdown: the pages stay
                // pending in the store and go out after the next start.
                let _ = self.reports.send(Report::Released(pages));
            }
            let wait = next
                .map(|t| t.since(now).max(Duration::from_millis(10)))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.flood_wake.notified() => {}
                _ = crate::time::jumped(&mut jumps) => {}
            }
        }
    }

    async fn send_job(&self, job: Job) {
        if let Some(incident) = job.notice {
            for page in job.pages {
                let msg = Message {
                    ack_url: format!("{}/", self.public_url),
                    page,
                    incident: incident.clone(),
                    more: Vec::new(),
                };
                // About tocsin itself, and unrecorded: an instance that lost the database
                // (and so its lease) still says so through channels that do not need it.
                let outcome = self.send_one(&msg, false).await;
                info!(notifier = %msg.page.notifier, target = %msg.page.target, ?outcome, "notice about tocsin sent, unrecorded");
            }
            return;
        }
        let settle = job.released.then(|| job.pages[0].clone());
        let mut items = Vec::with_capacity(job.pages.len());
        for page in job.pages {
            match self.incident(&page).await {
                Ok(incident) => items.push(Item { page, incident }),
                Err(e) => {
                    let _ = self.reports.send(Report::Outcome(
                        page,
                        Outcome::Failed {
                            attempts: 0,
                            permanent: !e.transient,
                            error: e.message,
                        },
                    ));
                }
            }
        }
        if let Some(first) = &settle {
            self.with_flood(|flood, now| flood.settle(first, now));
        }
        if items.is_empty() {
            return;
        }
        if items.len() > 1 {
            for i in items.iter_mut() {
                i.incident.alerts.truncate(BUNDLE_ALERTS);
            }
            self.metrics
                .bundles_sent
                .get_or_create(&NotifierOnly {
                    notifier: items[0].page.notifier.clone(),
                })
                .inc();
        }
        let first = items.remove(0);
        let ids: Vec<IncidentId> = std::iter::once(first.incident.id)
            .chain(items.iter().map(|i| i.incident.id))
            .collect();
        let msg = Message {
            ack_url: self.ack_url(first.page.contact.as_deref(), ids),
            page: first.page,
            incident: first.incident,
            more: items,
        };
        if !self.leads() {
            return self.left_pending(&msg);
        }
        let outcome = self.send_one(&msg, true).await;
        if !self.leads() {
            // Whatever came of it, the leader now is another instance: this one records
            // nothing, and a page cut short stays pending for the leader to send again
            // under the same id.
            return self.left_pending(&msg);
        }
        for (page, _) in msg.items() {
            // The engine may already be gone at the very end of shutdown; the page then
            // stays pending in the store and is sent again on start.
            let _ = self
                .reports
                .send(Report::Outcome(page.clone(), outcome.clone()));
        }
    }

    /// How long retries of `page` may go on: the notifier's budget, never past the
    /// moment the engine said the contact's next method is due.
    fn retry_budget(&self, page: &Page, entry: &NotifierEntry) -> Duration {
        match page.retry_until {
            Some(until) => entry.retry_budget.min(until.since(self.clock.now())),
            None => entry.retry_budget,
        }
    }

    /// Whether pages may go out: always with a store of its own, only under a lease held
    /// with a shared one.
    fn leads(&self) -> bool {
        self.fence.as_ref().is_none_or(|f| f.holds())
    }

    fn left_pending(&self, msg: &Message) {
        for (page, _) in msg.items() {
            warn!(
                page = page.id,
                incident = page.incident,
                "this instance no longer holds the lease: the page is left pending for the leader, which sends it under the same id"
            );
        }
    }

    /// `fenced`: every attempt first checks that this instance still leads.
    async fn send_one(&self, msg: &Message, fenced: bool) -> Outcome {
        let page = &msg.page;
        let notifiers = self.notifiers();
        let Some(entry) = notifiers.get(&page.notifier) else {
            return Outcome::Failed {
                attempts: 0,
                permanent: true,
                error: format!(
                    "notifier {:?} is not configured (was it removed from alerts.toml?)",
                    page.notifier
                ),
            };
        };
        let gate = match self.watchdog.gate(&page.notifier) {
            Ok(g) => g,
            Err(why) => {
                info!(page = page.id, incident = page.incident, notifier = %page.notifier, reason = %why, "notifier down: failing over without trying it");
                return Outcome::Failed {
                    attempts: 0,
                    permanent: true,
                    error: why,
                };
            }
        };
        let attempts = AtomicU32::new(0);
        let label = |outcome: &str| NotifierLabel {
            notifier: page.notifier.clone(),
            outcome: outcome.to_string(),
        };
        let attempt = || async {
            if fenced && !self.leads() {
                return Err(NotifyError::permanent(
                    "this instance no longer holds the lease; the leader sends it",
                ));
            }
            attempts.fetch_add(1, Ordering::Relaxed);
            let r = entry.notifier.send(msg).await;
            self.watchdog.send_result(
                &page.notifier,
                r.as_ref()
                    .map(|_| ())
                    .map_err(|e| (e.message.as_str(), e.transient)),
            );
            if let Err(e) = &r {
                self.metrics
                    .notification_failures
                    .get_or_create(&FailureLabel {
                        notifier: page.notifier.clone(),
                        kind: e.kind.as_str().to_string(),
                    })
                    .inc();
            }
            let o = if r.is_ok() { "delivered" } else { "failed" };
            self.metrics
                .notification_attempts
                .get_or_create(&label(o))
                .inc();
            r
        };
        let budget = self.retry_budget(page, entry);
        // A trial through a down notifier gets one attempt: if it fails, the contact's
        // next method should not wait for retries of a channel known to be dead.
        let max_retries = if budget.is_zero() || gate == Gate::Trial {
            0
        } else {
            entry.max_attempts.saturating_sub(1) as usize
        };
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(15))
            .with_max_times(max_retries)
            .with_total_delay(Some(budget));
        let result = attempt
            .retry(backoff)
            .when(|e: &NotifyError| e.transient)
            .notify(|e, wait| {
                warn!(page = page.id, incident = page.incident, notifier = %page.notifier, error = %e, ?wait, "page failed, retrying");
                let n = attempts.load(Ordering::Relaxed);
                let _ = self.reports.send(Report::Attempt(page.clone(), n, e.message.clone()));
            })
            .await;
        let attempts = attempts.load(Ordering::Relaxed);
        match result {
            Ok(sent) => {
                let counted = match sent {
                    Sent::Delivered => "delivered",
                    Sent::Placed { .. } => "placed",
                };
                self.metrics
                    .notifications
                    .get_or_create(&label(counted))
                    .inc();
                match sent {
                    Sent::Delivered => {
                        info!(page = page.id, incident = page.incident, notifier = %page.notifier, target = %page.target, kind = page.kind.as_str(), bundled = msg.more.len(), "page delivered");
                        Outcome::Delivered { attempts }
                    }
                    Sent::Placed { reference } => {
                        info!(page = page.id, incident = page.incident, notifier = %page.notifier, target = %page.target, kind = page.kind.as_str(), bundled = msg.more.len(), reference, "call placed");
                        Outcome::Placed {
                            attempts,
                            reference,
                        }
                    }
                }
            }
            Err(e) => {
                self.metrics
                    .notifications
                    .get_or_create(&label("failed"))
                    .inc();
                warn!(page = page.id, incident = page.incident, notifier = %page.notifier, target = %page.target, error = %e, attempts, "page failed");
                Outcome::Failed {
                    attempts,
                    permanent: !e.transient,
                    error: e.message,
                }
            }
        }
    }

    async fn incident(&self, page: &Page) -> Result<crate::store::IncidentView, NotifyError> {
        self.store
            .incident_to_page(page.incident)
            .await
            .map_err(|e| {
                NotifyError::transient(format!("cannot read incident {}: {e}", page.incident))
            })?
            .ok_or_else(|| {
                NotifyError::permanent(format!("incident {} is not in the store", page.incident))
            })
    }

    /// A signed link that acks `incidents` as `contact`.
    fn ack_url(&self, contact: Option<&str>, incidents: Vec<IncidentId>) -> String {
        let token = self.ack_key.sign(&Claims {
            incidents,
            contact: contact.map(str::to_string),
            expires: self.clock.now().plus(LINK_LIFETIME),
        });
        format!("{}/ack/{token}", self.public_url)
    }
}
