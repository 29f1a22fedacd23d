//! Sends committed pages through their notifiers, retries transient failures, and reports
//! each final outcome back to the engine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::{Mutex, mpsc};
use tracing::{info, warn};

use crate::ack_link::{AckKey, Claims, LINK_LIFETIME};
use crate::engine::{IncidentId, Outcome, Page};
use crate::metrics::{Metrics, NotifierLabel};
use crate::notify::{Message, NotifierEntry, NotifyError};
use crate::store::Store;
use crate::time::Clock;

/// Pages sent at the same time; the rest wait in the queue.
const WORKERS: usize = 32;

#[derive(Clone)]
pub(crate) struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    notifiers: BTreeMap<String, NotifierEntry>,
    store: Arc<dyn Store>,
    outcomes: mpsc::UnboundedSender<(Page, Outcome)>,
    queue_tx: std::sync::Mutex<Option<mpsc::UnboundedSender<Page>>>,
    queue_rx: Mutex<mpsc::UnboundedReceiver<Page>>,
    /// Queued plus being sent; shutdown waits for it to reach zero.
    in_flight: AtomicUsize,
    closed: AtomicBool,
    metrics: Arc<Metrics>,
    public_url: String,
    ack_key: AckKey,
    clock: Arc<dyn Clock>,
}

impl Dispatcher {
    pub fn start(
        notifiers: BTreeMap<String, NotifierEntry>,
        store: Arc<dyn Store>,
        outcomes: mpsc::UnboundedSender<(Page, Outcome)>,
        metrics: Arc<Metrics>,
        public_url: String,
        ack_key: AckKey,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            notifiers,
            store,
            outcomes,
            queue_tx: std::sync::Mutex::new(Some(tx)),
            queue_rx: Mutex::new(rx),
            in_flight: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            metrics,
            public_url: public_url.trim_end_matches('/').to_string(),
            ack_key,
            clock,
        });
        for _ in 0..WORKERS {
            let inner = inner.clone();
            tokio::spawn(async move {
                loop {
                    let page = { inner.queue_rx.lock().await.recv().await };
                    let Some(page) = page else { break };
                    let outcome = inner.send_one(&page).await;
                    // The engine may already be gone at the very end of shutdown; the
                    // page then stays pending in the store and is sent again on start.
                    let _ = inner.outcomes.send((page, outcome));
                    inner.in_flight.fetch_sub(1, Ordering::AcqRel);
                }
            });
        }
        Dispatcher { inner }
    }

    /// Queues pages whose intents are committed.
    pub fn send_all(&self, pages: Vec<Page>) {
        if self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        let guard = self.inner.queue_tx.lock().expect("queue lock");
        let Some(tx) = guard.as_ref() else { return };
        for p in pages {
            self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
            if tx.send(p).is_err() {
                self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Takes no more pages; queued ones are still sent.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.queue_tx.lock().expect("queue lock").take();
    }

    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }
}

impl Inner {
    async fn send_one(&self, page: &Page) -> Outcome {
        let Some(entry) = self.notifiers.get(&page.notifier) else {
            return Outcome::Failed {
                attempts: 0,
                permanent: true,
                error: format!(
                    "notifier {:?} is not configured (was it removed from alerts.toml?)",
                    page.notifier
                ),
            };
        };
        let attempts = AtomicU32::new(0);
        let label = |outcome: &str| NotifierLabel {
            notifier: page.notifier.clone(),
            outcome: outcome.to_string(),
        };
        let attempt = || async {
            attempts.fetch_add(1, Ordering::Relaxed);
            let msg = self.message(page).await?;
            let r = entry.notifier.send(&msg).await;
            let o = if r.is_ok() { "delivered" } else { "failed" };
            self.metrics
                .notification_attempts
                .get_or_create(&label(o))
                .inc();
            r
        };
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(15))
            .with_max_times(entry.max_attempts.saturating_sub(1) as usize)
            .with_total_delay(Some(entry.retry_budget));
        let result = attempt
            .retry(backoff)
            .when(|e: &NotifyError| e.transient)
            .notify(|e, wait| {
                warn!(page = page.id, incident = page.incident, notifier = %page.notifier, error = %e, ?wait, "page failed, retrying");
            })
            .await;
        let attempts = attempts.load(Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.metrics
                    .notifications
                    .get_or_create(&label("delivered"))
                    .inc();
                info!(page = page.id, incident = page.incident, notifier = %page.notifier, target = %page.target, kind = page.kind.as_str(), "page delivered");
                Outcome::Delivered { attempts }
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

    async fn message(&self, page: &Page) -> Result<Message, NotifyError> {
        let incident = self
            .store
            .incident(page.incident, false)
            .await
            .map_err(|e| {
                NotifyError::transient(format!("cannot read incident {}: {e}", page.incident))
            })?
            .ok_or_else(|| {
                NotifyError::permanent(format!("incident {} is not in the store", page.incident))
            })?;
        Ok(Message {
            ack_url: self.ack_url(page.contact.as_deref(), vec![page.incident]),
            page: page.clone(),
            incident,
            more: Vec::new(),
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
