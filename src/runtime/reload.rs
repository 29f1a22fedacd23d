//! Re-reading alerts.toml without a restart (SIGHUP, `POST /-/reload`).
//!
//! A file that does not load changes nothing: the running config stays, the errors are
//! logged, and `tocsin_config_last_reload_successful` drops to 0. A good one replaces
//! routes, policies, contacts and notifiers for everything from now on; incidents that
//! are open keep the policy they opened with. Notifiers whose config and secrets did
//! not change are kept as they are, with what they track (a Pushover emergency page
//! still ringing acks its incident when acknowledged on the phone, and stops ringing
//! when the incident is acked in tocsin); a changed one takes over from its predecessor. Sections that shape long-lived parts (the
//! listener, the store, the IRC link, the watchdog's channels) are named in the answer
//! as needing a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::dispatch::Dispatcher;
use super::{Importance, Supervisor};
use crate::config::{Config, load_file};
use crate::engine::EscalationConfig;
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::notify::{BuildContext, NotifierEntry};
use crate::time::Clock;

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// The file read.
    pub path: String,
    pub contacts: usize,
    pub policies: usize,
    pub notifiers: usize,
    /// Notifiers built anew because they were added or changed; the others were kept as
    /// they were, with their state.
    pub rebuilt_notifiers: Vec<String>,
    pub routes: usize,
    /// Changed sections that only a restart applies, like `[sources.irc]`.
    pub restart_needed: Vec<String>,
    /// The credentials were read again from their files (or environment) and differ
    /// from those in force until now: from this reload on only the new ones work.
    pub credentials_changed: bool,
    /// Which ones: added, removed, rotated or given other scopes, by where they are
    /// configured (`server.auth_token`, `server.basic_auth`, `server.tokens.NAME`).
    pub credentials: Vec<String>,
}

type Reply = oneshot::Sender<Result<Reloaded, String>>;

/// Asks the reload task to re-read the config; cheap to clone.
#[derive(Clone)]
pub struct ReloadHandle {
    /// `None` on a follower, which has nothing to reload.
    tx: Option<mpsc::Sender<Reply>>,
}

impl ReloadHandle {
    /// A handle nobody serves: a reload through it answers that tocsin does not reload
    /// here (a follower, which reads the file again when it takes over).
    pub(crate) fn idle() -> Self {
        ReloadHandle { tx: None }
    }

    /// Re-reads alerts.toml and applies it, or says why not.
    pub async fn reload(&self) -> Result<Reloaded, String> {
        let (tx, rx) = oneshot::channel();
        let Some(to) = &self.tx else {
            return Err(
                "this instance follows the leader and applies nothing; it reads alerts.toml again when it takes over"
                    .into(),
            );
        };
        to.send(tx)
            .await
            .map_err(|_| "tocsin is shutting down".to_string())?;
        rx.await
            .map_err(|_| "tocsin is shutting down".to_string())?
    }
}

/// Everything a reload replaces.
pub(crate) struct Reloader {
    pub path: Option<PathBuf>,
    pub current: Arc<Config>,
    pub engine: watch::Sender<Arc<EscalationConfig>>,
    pub dispatcher: Dispatcher,
    /// The notifiers the dispatcher sends through, to keep those a reload leaves alone.
    pub notifiers: BTreeMap<String, NotifierEntry>,
    pub app: AppState,
    pub build: BuildContext,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// Where rotations' member lists are recorded.
    pub store: Arc<dyn crate::store::Store>,
}

/// The top-level sections that only a restart applies, where they changed. Compared as
/// their `Debug` text: the config types are plain data (and redact secrets there).
fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let (a, b) = (&old.file, &new.file);
    // Credentials apply on reload; the rest of [server] is the listener's.
    let listener = |s: &crate::config::ServerConfig| {
        let mut s = s.clone();
        s.auth_token_file = None;
        s.auth_token_env = None;
        s.basic_auth = None;
        s.tokens.clear();
        format!("{s:?}")
    };
    [
        ("[server]", listener(&a.server), listener(&b.server)),
        (
            "[storage]",
            format!("{:?}", a.storage),
            format!("{:?}", b.storage),
        ),
        (
            "[sources]",
            format!("{:?}", a.sources),
            format!("{:?}", b.sources),
        ),
        (
            "[watchdog]",
            format!("{:?}", a.watchdog),
            format!("{:?}", b.watchdog),
        ),
        (
            "[heartbeats]",
            format!("{:?}", a.heartbeats),
            format!("{:?}", b.heartbeats),
        ),
    ]
    .into_iter()
    .filter(|(_, x, y)| x != y)
    .map(|(name, _, _)| name.to_string())
    .collect()
}

impl Reloader {
    /// Serves reload requests until `stop`, as the supervised task `reload`.
    pub fn start(self, stop: &CancellationToken, tasks: &Supervisor) -> ReloadHandle {
        let (tx, rx) = mpsc::channel::<Reply>(4);
        self.metrics.config_reload_ok.set(1);
        self.metrics
            .config_reload_time
            .set(self.clock.now().millis() / 1000);
        // Kept across restarts of the task: the config it runs and the requests queue.
        let state = Arc::new(tokio::sync::Mutex::new((self, rx)));
        let task_stop = stop.clone();
        tasks.spawn("reload", Importance::BestEffort, stop, move || {
            let (state, stop) = (state.clone(), task_stop.clone());
            async move {
                let mut state = state.lock_owned().await;
                let (reloader, rx) = &mut *state;
                loop {
                    let reply = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = rx.recv() => match r {
                            Some(r) => r,
                            // Nobody can ask any more: nothing to do until the stop.
                            None => return stop.cancelled().await,
                        },
                    };
                    let _ = reply.send(reloader.reload().await);
                }
            }
        });
        ReloadHandle { tx: Some(tx) }
    }

    async fn reload(&mut self) -> Result<Reloaded, String> {
        let result = self.try_reload().await;
        match &result {
            Ok(r) => {
                self.metrics.config_reload_ok.set(1);
                self.metrics
                    .config_reload_time
                    .set(self.clock.now().millis() / 1000);
                info!(path = %r.path, contacts = r.contacts, policies = r.policies, notifiers = r.notifiers, rebuilt_notifiers = %r.rebuilt_notifiers.join(", "), "config reloaded");
                if r.credentials_changed {
                    warn!(
                        credentials = %r.credentials.join(", "),
                        "credentials changed: from now on only the new ones are accepted"
                    );
                }
                if !r.restart_needed.is_empty() {
                    warn!(sections = %r.restart_needed.join(", "), "these sections changed but apply only after a restart");
                }
            }
            Err(e) => {
                self.metrics.config_reload_ok.set(0);
                error!("config reload refused; the running config stays:\n{e}");
            }
        }
        result
    }

    async fn try_reload(&mut self) -> Result<Reloaded, String> {
        let Some(path) = &self.path else {
            return Err(
                "tocsin was started without a config file, so there is nothing to re-read"
                    .to_string(),
            );
        };
        let mut new = load_file(path).map_err(|e| e.to_string())?;
        let changed = super::rotations::settle(&*self.store, &mut new, self.clock.now())
            .await
            .map_err(|e| format!("recording the rotations' member lists: {e}"))?;
        if !changed.is_empty() {
            info!(rotations = %changed.join(", "), "rotation members changed: the shift under way keeps its person, the new list takes over at the next handoff");
        }
        let (notifiers, rebuilt) =
            crate::notify::rebuild_all(&self.current, &self.notifiers, &new, &self.build)
                .map_err(|e| format!("{}: building notifiers:\n{e}", path.display()))?;
        let credentials = self.current.hook_auth.changed(&new.hook_auth);
        let summary = Reloaded {
            path: path.display().to_string(),
            contacts: new.file.contacts.len(),
            policies: new.file.policies.len(),
            notifiers: new.file.notifiers.len(),
            rebuilt_notifiers: rebuilt,
            routes: new.routes.len(),
            restart_needed: restart_needed(&self.current, &new),
            credentials_changed: !credentials.is_empty(),
            credentials,
        };
        self.dispatcher.reconfigure(notifiers.clone());
        for name in &summary.rebuilt_notifiers {
            if let Some(old) = self.notifiers.get(name) {
                old.notifier.replaced();
            }
        }
        self.notifiers = notifiers;
        self.engine
            .send_replace(Arc::new(EscalationConfig::from_config(&new)));
        self.app.reload(&new);
        self.current = Arc::new(new);
        Ok(summary)
    }
}
