//! The one task that owns the engine: inputs in, effects committed, then replies and pages.
//!
//! Group commit falls out of the loop's shape: while one transaction is being fsynced,
//! new inputs queue up; the next turn applies all of them and commits them together.
//! Nobody is answered before their effects are durable, and nothing is sent before its
//! intent is recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::dispatch::{Dispatcher, Report};
use super::forward::Answer;
use crate::engine::RECENT_WINDOW;
use crate::engine::WATCHDOG_POLICY;
use crate::engine::{
    Actor, Effect, Engine, EscalationConfig, IncidentId, IncidentState, Input, Page, Refusal,
};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::time::{Clock, Timestamp};
use crate::watchdog::store_watch::{Alarm, StoreWatch, Trouble};

/// Most inputs applied in one transaction; bounds commit latency under a storm.
const MAX_BATCH: usize = 2048;
/// The loop runs at least this often, so `/healthz` can tell a stuck loop from a quiet one.
pub const IDLE_TICK: Duration = Duration::from_secs(1);
/// The loop is stalled when it has not turned for this many idle ticks.
pub const STALE_TICKS: u32 = 5;

/// Why an input was not applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("not recorded, try again: {0}")]
    Unavailable(String),
    /// Recorded in the shared store's inbox, not yet applied: no instance leads right now.
    #[error("{0}")]
    Queued(String),
    /// The leader's answer to an input this instance forwarded.
    #[error("{message}")]
    Forwarded { status: u16, message: String },
}

impl SubmitError {
    /// The HTTP status every HTTP path answers with; chat and SMS answer the `Display`.
    pub fn http_status(&self) -> u16 {
        match self {
            SubmitError::Refused(r) => r.http_status(),
            SubmitError::Unavailable(_) => 503,
            SubmitError::Queued(_) => 202,
            SubmitError::Forwarded { status, .. } => *status,
        }
    }
}

pub(crate) struct Request {
    input: Input,
    reply: Option<oneshot::Sender<Result<Applied, SubmitError>>>,
    /// Forwarded by another instance: its answer is written beside it in the inbox.
    inbox: Option<u64>,
}

/// What an applied input made that its sender needs to know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// The id of the override it made.
    pub override_id: Option<crate::engine::OverrideId>,
    /// The id of the silence it made.
    pub silence_id: Option<crate::engine::SilenceId>,
    /// The id of the maintenance window it made.
    pub maintenance_id: Option<crate::engine::WindowId>,
}

/// How the rest of the daemon talks to the engine: the engine loop of this instance, or,
/// on an instance that does not lead, the shared store's inbox.
#[derive(Clone)]
pub struct EngineHandle {
    route: Route,
}

#[derive(Clone)]
enum Route {
    Local(mpsc::Sender<Request>),
    Forward(Arc<super::forward::Forwarder>),
}

impl EngineHandle {
    /// Applies `input` and waits until its effects are committed.
    pub async fn submit(&self, input: Input) -> Result<(), SubmitError> {
        self.apply(input).await.map(|_| ())
    }

    /// Like [`EngineHandle::submit`], answering what the input made.
    pub async fn apply(&self, input: Input) -> Result<Applied, SubmitError> {
        let tx = match &self.route {
            Route::Local(tx) => tx,
            Route::Forward(f) => return f.apply(input).await,
        };
        let (reply, rx) = oneshot::channel();
        tx.send(Request {
            input,
            reply: Some(reply),
            inbox: None,
        })
        .await
        .map_err(|_| SubmitError::Unavailable("tocsin is shutting down".into()))?;
        rx.await
            .map_err(|_| SubmitError::Unavailable("tocsin is shutting down".into()))?
    }
}

#[async_trait::async_trait]
impl crate::notify::Acker for EngineHandle {
    async fn ack(&self, incident: IncidentId, by: Actor) -> Result<(), String> {
        self.submit(Input::Ack { id: incident, by })
            .await
            .map_err(|e| e.to_string())
    }
}

/// When the loop last completed a turn, and whether its commits fail, for `/healthz`.
#[derive(Debug, Default)]
pub struct Health {
    last_tick_ms: AtomicI64,
    /// When systemd was last told the loop is alive.
    last_watchdog_ms: AtomicI64,
    /// Set while commits fail: a loop that turns but records nothing pages nobody, and
    /// must not look alive to `/healthz`, the outside heartbeat or a peer.
    store: std::sync::Mutex<Option<Trouble>>,
}

impl Health {
    /// While the store cannot be written: since when, how often, and why.
    pub fn store_trouble(&self) -> Option<Trouble> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn set_store(&self, t: Option<&Trouble>) {
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = t.cloned();
    }

    pub fn last_tick(&self) -> Timestamp {
        Timestamp(self.last_tick_ms.load(Ordering::Relaxed))
    }

    /// Whether the loop turned recently enough to call tocsin alive.
    pub fn healthy(&self, now: Timestamp) -> bool {
        now.since(self.last_tick()) <= IDLE_TICK * STALE_TICKS
    }

    pub(super) fn tick(&self, now: Timestamp) {
        self.last_tick_ms.store(now.millis(), Ordering::Relaxed);
        // systemd's WatchdogSec: only a loop that turns says it is alive, so a hung
        // engine is restarted. Once a second is plenty; without NOTIFY_SOCKET it is a no-op.
        if now.millis() - self.last_watchdog_ms.load(Ordering::Relaxed) >= 1000 {
            self.last_watchdog_ms.store(now.millis(), Ordering::Relaxed);
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    }
}

pub(crate) struct EngineLoop {
    pub engine: Engine,
    pub cfg: Arc<EscalationConfig>,
    pub store: Arc<dyn Store>,
    pub dispatcher: Dispatcher,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub rx: mpsc::Receiver<Request>,
    /// Outcomes and failed attempts of pages come back here; unbounded because pages in
    /// flight are bounded.
    pub outcomes: mpsc::UnboundedReceiver<Report>,
    /// Routes and policies from a config reload; incidents already open keep the policy
    /// they opened with (it is snapshotted into each).
    pub reconfigured: tokio::sync::watch::Receiver<Arc<EscalationConfig>>,
    /// Whether commits work; while they fail, nothing is tried before its backoff ends.
    pub store_watch: StoreWatch,
    /// Outcomes that came back while commits were backing off, applied at the next try.
    pub held_outcomes: Vec<Report>,
    /// A commit failed and the engine could not yet be rebuilt from the store: it is
    /// ahead of what is recorded, so nothing is applied to it.
    pub stale: bool,
    /// Where decisions about Alertmanager silences go after the commit
    /// (`silence_on_ack`); `None` when acks silence nothing there.
    pub ack_silences: Option<mpsc::UnboundedSender<crate::engine::SilenceOp>>,
    /// Inbox rows answered without the engine (heartbeats, rows that cannot be read),
    /// marked done at the next commit.
    pub answered: Vec<(u64, String)>,
    /// Heartbeats forwarded by other instances are told to it.
    pub watchdog: Arc<crate::watchdog::Watchdog>,
}

pub(crate) fn channel(capacity: usize) -> (EngineHandle, mpsc::Receiver<Request>) {
    let (tx, rx) = mpsc::channel(capacity);
    (
        EngineHandle {
            route: Route::Local(tx),
        },
        rx,
    )
}

impl EngineHandle {
    /// Hands a heartbeat to the watchdog of the instance that leads: `watchdog` here, or
    /// the leader's through the inbox. `Ok(false)`: no such heartbeat URL.
    pub async fn beat(
        &self,
        beat: super::forward::Beat,
        watchdog: &crate::watchdog::Watchdog,
    ) -> Result<bool, SubmitError> {
        // Known or not is the config's to say, which every instance has.
        if !beat.apply(watchdog) {
            return Ok(false);
        }
        match &self.route {
            Route::Local(_) => Ok(true),
            Route::Forward(f) => f.beat(beat).await.map(|()| true),
        }
    }
}

/// A handle that forwards every input to the leader through the shared store.
pub(crate) fn forwarding(f: super::forward::Forwarder) -> EngineHandle {
    EngineHandle {
        route: Route::Forward(Arc::new(f)),
    }
}

impl EngineLoop {
    /// Runs until `stop` is cancelled and the queue and in-flight pages are drained.
    pub async fn run(mut self, stop: CancellationToken, drain_grace: Duration) {
        let mut batch: Vec<Request> = Vec::new();
        let mut stopping_since: Option<Instant> = None;
        let mut jumps = self.clock.jumps();
        // With a shared store, what other instances forwarded: read when one says so, and
        // once per idle tick in case a wake-up was missed (a reconnecting listener).
        let wake = self.store.inbox_wakeup();
        let mut inbox_read: Option<Instant> = None;
        loop {
            #[cfg(test)]
            super::supervisor::fault::maybe_panic("engine-loop");
            // While commits fail, a due step waits for the backoff like everything else.
            let wait = self
                .engine
                .next_deadline()
                .max(self.store_watch.retry_at())
                .map(|d| d.since(self.clock.now()))
                .unwrap_or(IDLE_TICK)
                .min(IDLE_TICK);
            let mut outcome_batch = Vec::new();
            let mut begin_stop = false;
            let mut inbox_due = inbox_read.is_none_or(|t| t.elapsed() >= IDLE_TICK);
            tokio::select! {
                biased;
                r = self.rx.recv(), if stopping_since.is_none() => match r {
                    Some(r) => batch.push(r),
                    // Every handle is gone (the HTTP server has stopped): intake is over.
                    None => begin_stop = true,
                },
                Some(o) = self.outcomes.recv() => outcome_batch.push(o),
                _ = stop.cancelled(), if stopping_since.is_none() => begin_stop = true,
                _ = async { wake.as_ref().expect("guarded").notified().await }, if wake.is_some() => inbox_due = true,
                _ = tokio::time::sleep(wait) => {}
                _ = crate::time::jumped(&mut jumps) => {}
            }
            if begin_stop {
                info!("stopping: taking no new input, finishing queued work and pages in flight");
                stopping_since = Some(Instant::now());
                self.rx.close();
                self.dispatcher.close();
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            while let Ok(o) = self.outcomes.try_recv() {
                outcome_batch.push(o);
            }
            if wake.is_some() && inbox_due && stopping_since.is_none() {
                inbox_read = Some(Instant::now());
                self.read_inbox(&mut batch).await;
            }
            self.turn(&mut batch, outcome_batch).await;

            if let Some(since) = stopping_since {
                let drained = self.rx.is_empty() && self.dispatcher.in_flight() == 0;
                if drained && self.outcomes.is_empty() {
                    info!("engine loop drained; all recorded");
                    return;
                }
                if since.elapsed() > drain_grace {
                    warn!(
                        in_flight = self.dispatcher.in_flight(),
                        "pages still in flight after the shutdown grace; they stay pending and are sent again on start"
                    );
                    return;
                }
            }
        }
    }

    /// One turn: apply everything queued plus due deadlines, commit once, then answer and send.
    async fn turn(&mut self, batch: &mut Vec<Request>, outcomes: Vec<Report>) {
        if self.reconfigured.has_changed().unwrap_or(false) {
            let cfg = self.reconfigured.borrow_and_update().clone();
            self.engine.set_config(cfg.clone());
            self.cfg = cfg;
        }
        let now = self.clock.now();
        if let Some(t) = self.store_watch.trouble()
            && now < t.retry_at
        {
            // Applying more would only be undone by the next failure; the senders retry.
            let msg = format!(
                "tocsin cannot write its store since {} ({}); try again in a few seconds",
                t.since, t.error
            );
            for r in batch.drain(..) {
                if let Some(tx) = r.reply {
                    let _ = tx.send(Err(SubmitError::Unavailable(msg.clone())));
                }
            }
            self.held_outcomes.extend(outcomes);
            self.health.tick(now);
            return;
        }
        if self.stale && !self.restore_if_stale(now).await {
            // An engine ahead of its store would not fire again the steps it fired in
            // memory: nothing is applied until it is rebuilt from the store.
            for r in batch.drain(..) {
                if let Some(tx) = r.reply {
                    let _ = tx.send(Err(SubmitError::Unavailable(
                        "tocsin cannot read its store back after a failed write; try again in a few seconds".into(),
                    )));
                }
            }
            self.held_outcomes.extend(outcomes);
            self.health.tick(now);
            return;
        }
        let mut outcomes = outcomes;
        if !self.held_outcomes.is_empty() {
            outcomes.splice(0..0, self.held_outcomes.drain(..));
        }
        let mut effects: Vec<Effect> = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        let mut consumed = std::mem::take(&mut self.answered);
        let inputs = batch.len() + outcomes.len();
        // Released bundles and what the engine still wants of each, sent after the commit.
        let mut released: Vec<(Vec<Page>, Vec<Page>)> = Vec::new();
        for r in outcomes {
            if let Report::Released(pages) = r {
                let mut wanted = Vec::new();
                if let Ok(fx) = self.engine.apply(
                    now,
                    Input::Released {
                        pages: pages.clone(),
                    },
                ) {
                    for e in fx {
                        match e {
                            Effect::Send { pages } => wanted.extend(pages),
                            other => effects.push(other),
                        }
                    }
                }
                released.push((pages, wanted));
                continue;
            }
            let input = match r {
                Report::Outcome(page, outcome) => Input::PageOutcome { page, outcome },
                Report::Attempt(page, attempt, error) => Input::PageAttempt {
                    page,
                    attempt,
                    error,
                },
                Report::Released(_) => unreachable!("handled above"),
            };
            if let Ok(fx) = self.engine.apply(now, input) {
                effects.extend(fx);
            }
        }
        for req in batch.drain(..) {
            let answered = match self.engine.apply(now, req.input) {
                Ok(fx) => {
                    let override_id = fx.iter().find_map(|e| match e {
                        Effect::Override(o) => Some(o.id),
                        _ => None,
                    });
                    let silence_id = fx.iter().find_map(|e| match e {
                        Effect::Silence(s) => Some(s.id),
                        _ => None,
                    });
                    let maintenance_id = fx.iter().find_map(|e| match e {
                        Effect::Maintenance(m) => Some(m.id),
                        _ => None,
                    });
                    effects.extend(fx);
                    Ok(Applied {
                        override_id,
                        silence_id,
                        maintenance_id,
                    })
                }
                Err(r) => {
                    effects.extend(r.notes);
                    Err(SubmitError::Refused(r.refusal))
                }
            };
            if let Some(id) = req.inbox {
                consumed.push((id, Answer::of(&answered).to_json()));
            }
            replies.push((req.reply, answered));
        }
        if let Ok(fx) = self.engine.apply(now, Input::Tick) {
            effects.extend(fx);
        }
        self.health.tick(now);
        self.metrics.engine_last_tick.set(now.millis() / 1000);
        if inputs > 0 {
            self.metrics.engine_batch_inputs.observe(inputs as f64);
        }
        for e in &effects {
            if let Effect::Silenced { alerts, .. } = e {
                self.metrics.alerts_silenced.inc_by(*alerts);
            }
        }
        if effects.is_empty() && consumed.is_empty() {
            if self.store_watch.trouble().is_some() {
                // Nothing to write, but whether writes work again must still be known.
                let probe = self
                    .store
                    .save_source_state(STORE_PROBE, format!("\"{now}\""), now)
                    .await;
                self.store_result(now, probe.err().as_ref());
            }
            for (all, wanted) in released {
                self.dispatcher.send_released(&all, wanted);
            }
            for (tx, r) in replies {
                if let Some(tx) = tx {
                    let _ = tx.send(r);
                }
            }
            return;
        }
        let mut pages: Vec<Page> = Vec::new();
        let mut closed = Vec::new();
        let mut silence_ops = Vec::new();
        for e in &effects {
            match e {
                Effect::Page(p) => pages.push(p.clone()),
                Effect::AckSilence(op) => silence_ops.push(op.clone()),
                Effect::Status(s) if s.state != IncidentState::Triggered => closed.push(s.id),
                _ => {}
            }
        }
        let started = Instant::now();
        let n = effects.len();
        let result = self.store.commit_consumed(effects, consumed).await;
        self.metrics
            .store_commit_duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                debug!(effects = n, inputs, "committed");
                self.store_result(now, None);
                for (tx, r) in replies {
                    if let Some(tx) = tx {
                        let _ = tx.send(r);
                    }
                }
                self.dispatcher.send_all(pages);
                for (all, wanted) in released {
                    self.dispatcher.send_released(&all, wanted);
                }
                self.dispatcher.closed(closed);
                if let Some(tx) = &self.ack_silences {
                    for op in silence_ops {
                        let _ = tx.send(op);
                    }
                }
            }
            Err(e) => {
                self.metrics.store_commit_failures.inc();
                if matches!(e, crate::store::StoreError::Fenced { .. }) {
                    // Not a store in trouble: another instance leads, and this one's
                    // lease task is stepping down. Nobody is to be told.
                    warn!(error = %e, "commit refused: this instance no longer leads");
                } else {
                    self.store_result(now, Some(&e));
                }
                let msg = e.to_string();
                // Not one released page is lost: they wait in flood control again.
                for (all, _) in released {
                    self.dispatcher.rehold(all);
                }
                for (tx, _) in replies {
                    if let Some(tx) = tx {
                        let _ = tx.send(Err(SubmitError::Unavailable(msg.clone())));
                    }
                }
                // The engine already moved on in memory; the store is the truth.
                self.stale = true;
                self.restore_if_stale(now).await;
            }
        }
    }
}

impl EngineLoop {
    /// Queues what other instances forwarded, oldest first, behind this instance's own
    /// inputs. A row that cannot be read is answered as refused, never applied twice.
    async fn read_inbox(&mut self, batch: &mut Vec<Request>) {
        let room = MAX_BATCH.saturating_sub(batch.len());
        if room == 0 {
            return;
        }
        let rows = match self.store.inbox(room).await {
            Ok(rows) => rows,
            // The commit that follows meets the same trouble and is what reports it.
            Err(e) => return debug!(error = %e, "reading the inbox failed"),
        };
        for (id, text) in rows {
            if let Ok(super::forward::Other::Beat(beat)) = serde_json::from_str(&text) {
                beat.apply(&self.watchdog);
                let answer = Answer::Applied(Applied::default());
                self.answered.push((id, answer.to_json()));
                continue;
            }
            match serde_json::from_str::<Input>(&text) {
                Ok(input) => batch.push(Request {
                    input,
                    reply: None,
                    inbox: Some(id),
                }),
                Err(e) => {
                    warn!(inbox = id, error = %e, "a forwarded input cannot be read; answering it as refused");
                    let answer = Answer::Refused {
                        status: 400,
                        message: format!(
                            "the leader cannot read this input ({e}); is every instance on the same version of tocsin?"
                        ),
                    };
                    self.answered.push((id, answer.to_json()));
                }
            }
        }
    }
}

/// The `source_state` row written to learn whether writes work again while nothing
/// else needs writing.
const STORE_PROBE: &str = "tocsin:store-probe";

impl EngineLoop {
    /// Rebuilds the engine from the store after a failed commit; says whether it is
    /// now in step with the store. A failed read counts as a failed write (backoff,
    /// health, alarm): either way nothing can be recorded.
    async fn restore_if_stale(&mut self, now: Timestamp) -> bool {
        if !self.stale {
            return true;
        }
        match restore_engine(&*self.store, self.cfg.clone(), now).await {
            Ok((engine, _pending)) => {
                self.engine = engine;
                self.stale = false;
                true
            }
            Err(e) => {
                error!(error = %e, "rebuilding the engine from the store failed; nothing is applied until it works");
                self.store_result(now, Some(&e));
                false
            }
        }
    }

    /// Takes in how a write went: the watch decides the backoff and the alarm, which
    /// goes out here, unrecorded, to the watchdog policy's first step.
    fn store_result(&mut self, now: Timestamp, err: Option<&crate::store::StoreError>) {
        let was_failing = self.store_watch.trouble().is_some();
        let alarm = match err {
            None => self.store_watch.wrote(now),
            Some(e) => self.store_watch.failed(now, &e.to_string()),
        };
        let trouble = self.store_watch.trouble();
        self.health.set_store(trouble);
        self.metrics
            .store_writable
            .set(i64::from(trouble.is_none()));
        match (was_failing, trouble) {
            (false, Some(t)) => error!(
                error = %t.error,
                "store commit failed: answering 503, reloading the engine from the store, and trying again with backoff; nothing is paged until a write works"
            ),
            (true, None) => info!("the store takes writes again; paging resumes"),
            (true, Some(t)) => {
                debug!(error = %t.error, failures = t.failures, "store commit failed again")
            }
            (false, None) => {}
        }
        let Some(alarm) = alarm else { return };
        let Some(policy) = self.cfg.policies.get(WATCHDOG_POLICY) else {
            return;
        };
        let pages = alarm.pages(policy, &self.cfg, self.engine.overrides(), now);
        let state = match alarm {
            Alarm::Down { .. } => IncidentState::Triggered,
            Alarm::Back { .. } => IncidentState::Resolved,
        };
        warn!(people = pages.len(), title = %alarm.title(), "telling the watchdog's first step, outside the store");
        self.dispatcher.send_notice(
            pages,
            crate::store::IncidentView::about_tocsin(alarm.title(), "tocsin:store", state, now),
        );
    }
}

/// Rebuilds the engine from the store. Returns the pages that were recorded but have no
/// outcome: they must be sent again.
pub(crate) async fn restore_engine(
    store: &dyn Store,
    cfg: Arc<EscalationConfig>,
    now: Timestamp,
) -> Result<(Engine, Vec<Page>), crate::store::StoreError> {
    let since = Timestamp(now.millis() - RECENT_WINDOW.as_millis() as i64);
    let r = store.restore(since).await?;
    let mut engine = Engine::restore(
        cfg,
        r.next_incident_id,
        r.next_page_id,
        r.open,
        r.recent_resolved,
    );
    engine.restore_overrides(r.overrides, r.next_override_id);
    for (id, error) in engine.restore_silences(r.silences, r.next_silence_id) {
        warn!(silence = id, %error, "a stored silence no longer parses; it silences nothing");
    }
    for (id, error) in engine.restore_maintenance(r.maintenance, r.next_maintenance_id) {
        warn!(maintenance = id, %error, "a stored maintenance window no longer parses; it holds nothing");
    }
    Ok((engine, r.pending_pages))
}
