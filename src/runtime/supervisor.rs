//! Every long-running task of the daemon has one owner: the [`Supervisor`].
//!
//! A task is registered by name with a factory that makes its future again. When the
//! future panics or returns while tocsin is not stopping, the supervisor logs it at
//! error with the panic message, counts it in `tocsin_task_restarts_total{task}` and
//! starts a fresh future after a jittered exponential backoff (reset once the task has
//! run fine for a while). A task that keeps failing (more than
//! [`RestartPolicy::max_restarts`] failures within [`RestartPolicy::window`]) is given
//! up: [`Supervisor::failed`] resolves, the daemon stops and exits non-zero, and the
//! service manager (systemd's `Restart=always`) starts it again from the store.
//!
//! A task that cannot be rebuilt in place ([`Supervisor::spawn_once`], the engine loop,
//! which owns the in-memory engine) is given up at its first failure.
//!
//! Ends that stop asked for are not failures: a task whose stop token is cancelled, or
//! any task after [`Supervisor::stop`], may end as it likes.
//!
//! While an [essential](Importance::Essential) task is down (between its failure and
//! its restart, or for good), `/healthz` answers 503 naming it; `GET /api/v1/status`
//! and `tocsin status` list every task that is down with its restart count.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::metrics::Metrics;
use crate::time::{Clock, Timestamp, human};

/// How failing tasks are restarted, and when tocsin gives up on one.
#[derive(Debug, Clone)]
pub struct RestartPolicy {
    /// Wait before the first restart; it doubles (plus jitter) with each failure in a row.
    pub min_delay: Duration,
    /// The longest wait before a restart.
    pub max_delay: Duration,
    /// A task that ran this long before failing starts over at `min_delay`: one panic a
    /// day is not a crash loop.
    pub healthy_after: Duration,
    /// More failures than this within `window` and the task is given up: tocsin exits
    /// non-zero so that its service manager starts it again.
    pub max_restarts: u32,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
            max_restarts: 5,
            window: Duration::from_secs(600),
        }
    }
}

impl RestartPolicy {
    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

/// Whether `/healthz` fails while a task is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    /// Without it a page or an outage can go unnoticed with nothing else to tell: the
    /// engine loop, the dispatcher's workers and flood release, the watchdog evaluator,
    /// the IRC link and its mirror onto the watchdog's board.
    Essential,
    /// Its absence shows elsewhere or costs a convenience: probes whose silence pages by
    /// itself (peer watch, outside ping), notifier checks (every send also reports a
    /// notifier's health), the self-test, config reload, Pushover receipt polling.
    BestEffort,
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    /// Failed; started again at `restart_at`.
    Restarting,
    /// Given up: tocsin is exiting.
    Failed,
}

/// One supervised task, for `/healthz`, `/api/v1/status` and `tocsin status`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    pub name: String,
    /// Whether `/healthz` fails while it is down.
    pub essential: bool,
    pub state: TaskState,
    /// How often it was restarted since tocsin started.
    pub restarts: u64,
    /// How it last failed ("panicked: ...", "returned while tocsin was not stopping").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// When `state` began.
    #[serde(with = "crate::time::rfc3339")]
    pub since: Timestamp,
    /// When a restarting task is started again.
    #[serde(
        with = "crate::time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub restart_at: Option<Timestamp>,
}

impl TaskStatus {
    /// "watchdog (restarting, 2 restarts; last panicked: ...)", for `/healthz`.
    pub fn describe(&self) -> String {
        let state = match self.state {
            TaskState::Running => "running",
            TaskState::Restarting => "restarting",
            TaskState::Failed => "given up",
        };
        let plural = if self.restarts == 1 { "" } else { "s" };
        let mut s = format!("{} ({state}, {} restart{plural}", self.name, self.restarts);
        if let Some(why) = &self.last_failure {
            s.push_str(&format!("; last {why}"));
        }
        s.push(')');
        s
    }
}

/// A task tocsin could not keep running; the daemon stops and exits with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task} {reason}")]
pub struct TaskFailed {
    pub task: String,
    /// What happened and why tocsin exits.
    pub reason: String,
}

/// Owns every long-running task; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Shared>,
}

struct Shared {
    policy: RestartPolicy,
    /// Counts restarts in `tocsin_task_restarts_total{task}`.
    metrics: Arc<Metrics>,
    /// Wall-clock instants for the status answers.
    clock: Arc<dyn Clock>,
    /// Cancelled when tocsin begins to stop: from then on no end is a failure.
    stopping: CancellationToken,
    /// Every task that has not ended for good, by registration (names may repeat: a
    /// reload builds a notifier's poller again while the old one winds down).
    tasks: Mutex<BTreeMap<u64, TaskStatus>>,
    next_id: AtomicU64,
    /// The first task given up.
    failed: watch::Sender<Option<TaskFailed>>,
}

/// Waits for a supervised task to end for good (stopped, or given up).
pub struct TaskHandle {
    keeper: JoinHandle<()>,
}

impl TaskHandle {
    pub async fn join(self) {
        let _ = self.keeper.await;
    }
}

impl Supervisor {
    pub fn new(policy: RestartPolicy, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) -> Self {
        Supervisor {
            inner: Arc::new(Shared {
                policy,
                metrics,
                clock,
                stopping: CancellationToken::new(),
                tasks: Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(0),
                failed: watch::channel(None).0,
            }),
        }
    }

    /// Runs the future `make` makes as the task `name` until `stop` is cancelled (or
    /// tocsin stops), and a fresh one from `make` after each failure.
    pub fn spawn<F, Fut>(
        &self,
        name: impl Into<String>,
        importance: Importance,
        stop: &CancellationToken,
        make: F,
    ) -> TaskHandle
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let id = self.inner.register(&name, importance);
        let keeper = tokio::spawn(self.inner.clone().keep(id, name, stop.clone(), make));
        TaskHandle { keeper }
    }

    /// Runs `task` once: it cannot be rebuilt in place, so its failure is fatal at once
    /// (always essential).
    pub fn spawn_once<Fut>(
        &self,
        name: impl Into<String>,
        stop: &CancellationToken,
        task: Fut,
    ) -> TaskHandle
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let id = self.inner.register(&name, Importance::Essential);
        let keeper = tokio::spawn(self.inner.clone().keep_once(id, name, stop.clone(), task));
        TaskHandle { keeper }
    }

    /// tocsin is stopping: tasks may end from now on without being restarted. Each task
    /// still ends through its own stop token, in the order shutdown cancels them.
    pub fn stop(&self) {
        self.inner.stopping.cancel();
    }

    /// Cancelled by [`Supervisor::stop`]: the stop token of tasks that end only with
    /// tocsin.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stopping.clone()
    }

    /// Resolves once a task has been given up (never, while all is well).
    pub async fn failed(&self) -> TaskFailed {
        let mut rx = self.inner.failed.subscribe();
        let failed = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|f| f.clone());
        match failed {
            Some(f) => f,
            // The sender lives as long as `self`: not reached.
            None => std::future::pending().await,
        }
    }

    /// The task given up, if any.
    pub fn failure(&self) -> Option<TaskFailed> {
        self.inner.failed.borrow().clone()
    }

    /// Every task that has not ended for good, by name.
    pub fn tasks(&self) -> Vec<TaskStatus> {
        let mut v: Vec<TaskStatus> = self.inner.lock().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The tasks that are restarting or given up.
    pub fn down(&self) -> Vec<TaskStatus> {
        self.tasks()
            .into_iter()
            .filter(|t| t.state != TaskState::Running)
            .collect()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, TaskStatus>> {
        // Nothing panics while holding it; a poisoned map is still a true map.
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, name: &str, importance: Importance) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Primed at 0, so the first restart is an increase to alert rules.
        let _ = self.metrics.task_restarts.get_or_create(&task_label(name));
        self.lock().insert(
            id,
            TaskStatus {
                name: name.to_string(),
                essential: importance == Importance::Essential,
                state: TaskState::Running,
                restarts: 0,
                last_failure: None,
                since: self.clock.now(),
                restart_at: None,
            },
        );
        id
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut TaskStatus)) -> Option<TaskStatus> {
        let mut tasks = self.lock();
        let t = tasks.get_mut(&id)?;
        f(t);
        Some(t.clone())
    }

    fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn give_up(&self, id: u64, failed: TaskFailed, why: String) {
        let now = self.clock.now();
        self.update(id, |t| {
            t.state = TaskState::Failed;
            t.last_failure = Some(why);
            t.since = now;
            t.restart_at = None;
        });
        error!(task = %failed.task, reason = %failed.reason, "giving up on a task: tocsin stops and exits non-zero");
        self.failed.send_if_modified(|f| {
            if f.is_none() {
                *f = Some(failed);
                true
            } else {
                false
            }
        });
    }

    /// Whether an end of the task stopped by `stop` was asked for.
    fn stopping(&self, stop: &CancellationToken) -> bool {
        stop.is_cancelled() || self.stopping.is_cancelled()
    }

    async fn keep<F, Fut>(
        self: Arc<Self>,
        id: u64,
        name: String,
        stop: CancellationToken,
        mut make: F,
    ) where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let policy = &self.policy;
        let mut backoff = policy.backoff();
        let mut failures: VecDeque<Instant> = VecDeque::new();
        loop {
            let started = Instant::now();
            let ended = tokio::spawn(make()).await;
            let why = match self.end_of(&stop, ended) {
                End::Asked => {
                    self.forget(id);
                    return;
                }
                End::FailedWhileStopping(why) => {
                    error!(task = %name, reason = %why, "task failed while tocsin was stopping; not restarted");
                    self.forget(id);
                    return;
                }
                End::Failed(why) => why,
            };
            let now = Instant::now();
            if now.duration_since(started) >= policy.healthy_after {
                backoff = policy.backoff();
            }
            failures.push_back(now);
            while failures
                .front()
                .is_some_and(|t| now.duration_since(*t) > policy.window)
            {
                failures.pop_front();
            }
            if failures.len() > policy.max_restarts as usize {
                let failed = TaskFailed {
                    task: name.clone(),
                    reason: format!(
                        "failed {} times within {} (last {why}); exiting so that the service manager starts tocsin again",
                        failures.len(),
                        human(policy.window)
                    ),
                };
                self.give_up(id, failed, why);
                return;
            }
            let wait = backoff
                .next()
                .unwrap_or(policy.max_delay)
                .min(policy.max_delay);
            let restart_at = self.clock.now().plus(wait);
            let restarts = self
                .update(id, |t| {
                    t.state = TaskState::Restarting;
                    t.restarts += 1;
                    t.last_failure = Some(why.clone());
                    t.since = self.clock.now();
                    t.restart_at = Some(restart_at);
                })
                .map_or(0, |t| t.restarts);
            self.metrics
                .task_restarts
                .get_or_create(&task_label(&name))
                .inc();
            error!(task = %name, reason = %why, restarts, retry_in = %human(wait), "task failed: restarting it");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => { self.forget(id); return; }
                _ = self.stopping.cancelled() => { self.forget(id); return; }
            }
            #[cfg(test)]
            fault::restart_allowed(&name).await;
            info!(task = %name, restarts, "task restarted");
            self.update(id, |t| {
                t.state = TaskState::Running;
                t.since = self.clock.now();
                t.restart_at = None;
            });
        }
    }

    async fn keep_once<Fut>(
        self: Arc<Self>,
        id: u64,
        name: String,
        stop: CancellationToken,
        task: Fut,
    ) where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let ended = tokio::spawn(task).await;
        match self.end_of(&stop, ended) {
            End::Asked => self.forget(id),
            // Even while stopping: what it should have finished (committing, recording
            // pages in flight) may be unfinished, and the exit status says so.
            End::Failed(why) | End::FailedWhileStopping(why) => {
                let failed = TaskFailed {
                    task: name.clone(),
                    reason: format!(
                        "{why}; it cannot be restarted in place, so tocsin exits and the next start restores it from the store"
                    ),
                };
                self.give_up(id, failed, why);
            }
        }
    }

    /// How a run of the task stopped by `stop` ended.
    fn end_of(&self, stop: &CancellationToken, ended: Result<(), JoinError>) -> End {
        let stopping = self.stopping(stop);
        match ended {
            Ok(()) if stopping => End::Asked,
            Ok(()) => End::Failed("returned while tocsin was not stopping".to_string()),
            Err(e) if e.is_panic() => {
                let why = format!("panicked: {}", panic_message(e.into_panic()));
                if stopping {
                    End::FailedWhileStopping(why)
                } else {
                    End::Failed(why)
                }
            }
            // Only the runtime shutting down cancels a task it does not own.
            Err(_) => End::Asked,
        }
    }
}

/// How one run of a task ended.
enum End {
    /// It returned after stop was asked for.
    Asked,
    /// It panicked or returned on its own: a failure.
    Failed(String),
    /// It panicked while tocsin was stopping anyway.
    FailedWhileStopping(String),
}

fn task_label(name: &str) -> crate::metrics::TaskLabel {
    crate::metrics::TaskLabel {
        task: name.to_string(),
    }
}

/// The text a panic was raised with.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Faults a test injects into named tasks (test builds only).
#[cfg(test)]
pub(crate) mod fault;

#[cfg(test)]
mod tests;
