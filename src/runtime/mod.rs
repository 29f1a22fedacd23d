//! Wires the daemon together: store, engine loop, dispatcher, HTTP server; and takes it
//! apart in order on shutdown.
//!
//! [`start`] is what `main` and the tests both call: it takes an already-bound listener
//! (port 0 in tests) and returns a handle to stop and await the daemon.
//!
//! Every long-running task (the engine loop, the dispatcher's workers and flood release,
//! the watchdog and its probes, the IRC link, pollers, reload) runs under the
//! [`Supervisor`]: a task that panics or ends is logged, counted and restarted, `/healthz`
//! fails while an essential one is down, and one that keeps failing stops the daemon,
//! whose [`Running::wait`] then names it (`main` exits non-zero, systemd restarts
//! tocsin). The engine loop owns the in-memory engine, so it is never restarted in
//! place: its failure stops the daemon at once, and the next start restores the engine
//! from the store.

mod ack_silences;
pub use ack_silences::SilenceHealth;
mod call_watch;
mod dispatch;
mod engine_loop;
mod follower;
pub mod forward;
mod handoffs;
mod irc_desk;
pub mod leadership;
mod reload;
pub mod retention;
pub mod rotations;
pub mod shared;
pub mod supervisor;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use engine_loop::{Applied, EngineHandle, Health, IDLE_TICK, SubmitError};
pub use leadership::{Cluster, RoleChange, RoleSignal};
pub use reload::{ReloadHandle, Reloaded};
pub use supervisor::{
    Importance, RestartPolicy, Supervisor, TaskFailed, TaskHandle, TaskState, TaskStatus,
};

use crate::ack_link::AckKey;
use crate::config::Config;
use crate::engine::EscalationConfig;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::notify::BuildContext;
use crate::store::{SqliteStore, Store};
use crate::time::{Clock, SystemClock};
use crate::watchdog::{Watchdog, probes};

/// Inputs waiting for the engine; a full queue makes webhook handlers wait (backpressure).
const ENGINE_QUEUE: usize = 8192;

pub struct Options {
    pub config: Config,
    /// Where the SQLite database lives (`--data-dir` or `[storage] data_dir`).
    pub data_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    /// How long shutdown waits for pages in flight before leaving them for the next start.
    pub drain_grace: Duration,
    /// A store to use instead of opening SQLite in `data_dir` (tests inject failing disks).
    pub store: Option<Arc<dyn Store>>,
    /// How failed tasks are restarted, and when one is given up (tests shorten it).
    pub restart: RestartPolicy,
    /// A store shared with other instances, with its lease and inbox, to use instead of
    /// connecting to `[storage] url` (tests inject one).
    pub shared: Option<Shared>,
}

/// A store several instances share: one leads, the others forward to it.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub lease: Arc<dyn leadership::Lease>,
    pub inbox: Arc<dyn forward::Inbox>,
    /// The fence the store's commits check: this instance's epoch while it leads.
    pub fence: Arc<crate::store::fence::Fence>,
    /// The ack-link key every instance signs and verifies with, kept in the store.
    pub ack_key: AckKey,
    pub lease_len: Duration,
    /// `[storage] instance`.
    pub name: String,
}

impl Options {
    pub fn new(config: Config, data_dir: PathBuf) -> Self {
        Options {
            config,
            data_dir,
            clock: Arc::new(SystemClock),
            drain_grace: Duration::from_secs(10),
            store: None,
            restart: RestartPolicy::default(),
            shared: None,
        }
    }
}

/// A running daemon.
pub struct Running {
    pub addr: SocketAddr,
    /// Re-reads alerts.toml (what SIGHUP does).
    pub reload: ReloadHandle,
    /// Owns the daemon's tasks; `main` runs its SIGHUP listener under it too, and waits
    /// on [`Supervisor::failed`] beside the signals.
    pub tasks: Supervisor,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    /// With a shared store: raised when this instance must start again in the other role.
    role: Arc<RoleSignal>,
}

impl Running {
    /// Begins a graceful stop: no new requests, queued work finished, pages in flight recorded.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the daemon has stopped: after [`Running::stop`], or after a task was
    /// given up, which is then the error (the daemon stops by itself first).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("the daemon task panicked")?
    }

    /// Resolves when, on a shared store, this instance must stop and start again to take
    /// over (the lease expired) or to follow (another instance took it). The daemon stops
    /// by itself first; never resolves with a store of its own.
    pub async fn role_changed(&self) -> RoleChange {
        self.role.raised().await
    }
}

/// Resolves when the daemon must stop: asked to, a task given up, or a role change.
async fn stopping(stop: CancellationToken, tasks: Supervisor, role: Arc<RoleSignal>) {
    tokio::select! {
        _ = stop.cancelled() => {}
        f = tasks.failed() => error!(error = %f, "stopping tocsin"),
        change = role.raised() => info!("{change}"),
    }
}

/// Starts everything on `listener` and returns once it is serving.
pub async fn start(mut opts: Options, listener: TcpListener) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    if opts.config.hook_auth.is_open() && !addr.ip().is_loopback() {
        warn!(
            %addr,
            "listening beyond this machine without credentials: anyone who can reach it can post alerts and ack or resolve incidents; set [server] auth_token_file"
        );
    }
    let data_dir = opts.data_dir.clone();
    let role = Arc::new(RoleSignal::default());
    let shared = match opts.shared.take() {
        Some(s) => Some(s),
        None => shared::connect(&opts.config).await?,
    };
    let mut cluster = None;
    if let Some(sh) = &shared {
        let c = Cluster {
            lease: sh.lease.clone(),
            fence: sh.fence.clone(),
            lease_len: sh.lease_len,
            name: sh.name.clone(),
            holder: format!("{}/{}/{:08x}", sh.name, std::process::id(), rand_u32()),
            addr: addr.to_string(),
            started_at: opts.clock.now(),
        };
        match c.try_lead().await {
            Ok(Some(epoch)) => {
                leadership::took_lease();
                info!(instance = %c.name, epoch, "took the lease: this instance leads");
                cluster = Some(c);
            }
            Ok(None) => return follower::start(opts, listener, sh.clone(), c, role).await,
            Err(e) => {
                warn!(error = %e, "the shared store does not answer: following until it does");
                return follower::start(opts, listener, sh.clone(), c, role).await;
            }
        }
    }
    let store: Arc<dyn Store> = match (opts.store.take(), &shared) {
        (Some(s), _) => s,
        (None, Some(sh)) => sh.store.clone(),
        (None, None) => Arc::new(
            SqliteStore::open(&data_dir)
                .with_context(|| format!("opening the store in {}", data_dir.display()))?,
        ),
    };
    let changed = rotations::settle(&*store, &mut opts.config, opts.clock.now())
        .await
        .context("reading the rotations' member lists from the store")?;
    if !changed.is_empty() {
        info!(rotations = %changed.join(", "), "rotation members changed in the config: the shift under way keeps its person, the new list takes over at the next handoff");
    }
    let cfg = Arc::new(EscalationConfig::from_config(&opts.config));
    let restoring = std::time::Instant::now();
    let (engine, pending) = engine_loop::restore_engine(&*store, cfg.clone(), opts.clock.now())
        .await
        .context("restoring incidents from the store")?;
    info!(
        open = engine.open_count(),
        next_incident = engine.next_incident_id(),
        pending_pages = pending.len(),
        data_dir = %data_dir.display(),
        took_ms = restoring.elapsed().as_millis() as u64,
        "state restored"
    );
    let metrics = Arc::new(Metrics::new());
    let tasks = Supervisor::new(opts.restart.clone(), metrics.clone(), opts.clock.clone());
    let ack_key = match &shared {
        Some(sh) => sh.ack_key.clone(),
        None => AckKey::load_or_create(&data_dir).with_context(|| {
            format!(
                "reading or creating the ack link key {}",
                data_dir.join(crate::ack_link::KEY_FILE).display()
            )
        })?,
    };
    if let Some(c) = &cluster {
        metrics.leader.set(1);
        metrics.leader_epoch.set(c.fence.epoch() as i64);
        metrics.leader_changes.inc_by(leadership::changes());
        let (c, role, clock) = (c.clone(), role.clone(), opts.clock.clone());
        let stop = tasks.stopping();
        tasks.spawn("lease", Importance::Essential, &stop.clone(), move || {
            c.clone().keep(role.clone(), clock.clone(), stop.clone())
        });
    }
    let (handle, rx) = engine_loop::channel(ENGINE_QUEUE);
    let watchdog = Watchdog::new(&opts.config, opts.clock.clone(), metrics.clone());
    watchdog.restore(&*store).await;
    // Made before the IRC desk, whose `!oncall` reads the calendar the engine pages by.
    let (reconfigure, reconfigured) = tokio::sync::watch::channel(cfg.clone());
    let irc_stop = CancellationToken::new();
    let irc = match &opts.config.file.sources.irc {
        None => None,
        Some(irc_cfg) => {
            let link_cfg = crate::irc::LinkConfig::from_config(&opts.config, irc_cfg)
                .map_err(|e| anyhow::anyhow!("[sources.irc]: {e}"))?;
            let desk = Arc::new(irc_desk::IrcDesk::new(
                &opts.config,
                handle.clone(),
                store.clone(),
                metrics.clone(),
                opts.clock.clone(),
                watchdog.clone(),
                reconfigured.clone(),
            ));
            let (irc, task) =
                crate::irc::link::start(link_cfg, desk, opts.clock.clone(), &irc_stop, &tasks);
            let (status, metrics, watchdog) = (irc.clone(), metrics.clone(), watchdog.clone());
            tasks.spawn("irc-status", Importance::Essential, &irc_stop, move || {
                watch_link(status.watch(), metrics.clone(), watchdog.clone())
            });
            Some((irc, task))
        }
    };
    let calls = Arc::new(crate::notify::voice_calls::CallBook::new(
        opts.clock.clone(),
    ));
    let build = BuildContext {
        acker: Some(Arc::new(handle.clone())),
        irc: irc.as_ref().map(|(h, _)| h.clone()),
        tasks: Some(tasks.clone()),
        calls: Some(calls.clone()),
        public_url: opts.config.file.server.public_url.clone(),
    };
    let notifiers = crate::notify::build_all(&opts.config, &build)
        .map_err(|e| anyhow::anyhow!("building notifiers: {e}"))?;
    metrics.prime(notifiers.keys().map(String::as_str));
    let watch_stop = CancellationToken::new();
    let wcfg = &opts.config.file.watchdog;
    let checked: Vec<_> = wcfg
        .checks
        .iter()
        .filter_map(|n| notifiers.get(n).map(|e| (n.clone(), e.notifier.clone())))
        .collect();
    if !checked.is_empty() {
        let (wd, every, stop) = (watchdog.clone(), wcfg.check_interval.0, watch_stop.clone());
        tasks.spawn(
            "notifier-checks",
            Importance::BestEffort,
            &watch_stop,
            move || probes::check_notifiers(wd.clone(), checked.clone(), every, stop.clone()),
        );
    }
    if !wcfg.peers.is_empty() {
        let (wd, peers, every) = (watchdog.clone(), wcfg.peers.clone(), wcfg.peer_interval.0);
        let stop = watch_stop.clone();
        tasks.spawn(
            "peer-watch",
            Importance::BestEffort,
            &watch_stop,
            move || probes::watch_peers(wd.clone(), peers.clone(), every, stop.clone()),
        );
    }
    {
        let (book, engine, wd, clock) = (
            calls.clone(),
            handle.clone(),
            watchdog.clone(),
            opts.clock.clone(),
        );
        let stop = watch_stop.clone();
        tasks.spawn(
            "call-watch",
            Importance::Essential,
            &watch_stop,
            move || {
                call_watch::watch_calls(
                    book.clone(),
                    engine.clone(),
                    wd.clone(),
                    clock.clone(),
                    stop.clone(),
                )
            },
        );
    }
    let keep = opts.config.file.storage.retention.0;
    if !keep.is_zero() {
        retention::prime(&metrics);
        let (store, clock, metrics) = (store.clone(), opts.clock.clone(), metrics.clone());
        let stop = watch_stop.clone();
        tasks.spawn(
            "retention",
            Importance::BestEffort,
            &watch_stop,
            move || {
                retention::run(
                    store.clone(),
                    clock.clone(),
                    metrics.clone(),
                    keep,
                    stop.clone(),
                )
            },
        );
    }
    let (outcome_tx, outcome_rx) = mpsc::unbounded_channel();
    let dispatcher = dispatch::Dispatcher::start(
        &opts.config,
        notifiers.clone(),
        store.clone(),
        outcome_tx,
        metrics.clone(),
        ack_key.clone(),
        opts.clock.clone(),
        watchdog.clone(),
        cluster.as_ref().map(|c| c.fence.clone()),
        &tasks,
    );
    if !pending.is_empty() {
        warn!(
            count = pending.len(),
            "pages were recorded but had no outcome when tocsin stopped; sending them again (same page ids)"
        );
        dispatcher.send_all(pending);
    }
    let health = Arc::new(Health::default());
    // Serving from here on: until the loop's first turn (up to IDLE_TICK away), `/healthz`
    // would otherwise call a loop that last ran at the epoch stalled.
    health.tick(opts.clock.now());
    let reconfigured_too = reconfigured.clone();
    let silencer = match &opts.config.silence_on_ack {
        Some(cfg) => Some(Arc::new(
            crate::source::am_silence::AmSilencer::new(cfg)
                .context("building the Alertmanager client of silence_on_ack")?,
        )),
        None => None,
    };
    let (silence_tx, silence_rx) = match &silencer {
        Some(_) => {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let engine_loop = engine_loop::EngineLoop {
        engine,
        cfg,
        store: store.clone(),
        dispatcher: dispatcher.clone(),
        clock: opts.clock.clone(),
        metrics: metrics.clone(),
        health: health.clone(),
        rx,
        outcomes: outcome_rx,
        reconfigured,
        store_watch: Default::default(),
        held_outcomes: Vec::new(),
        stale: false,
        ack_silences: silence_tx,
        answered: Vec::new(),
        watchdog: watchdog.clone(),
    };
    metrics.store_writable.set(1);
    let stop = CancellationToken::new();
    let engine_stop = CancellationToken::new();
    // The engine loop owns the engine's state in memory: a fresh loop could only start
    // from the store, which is what a fresh process does. So its failure is fatal.
    let engine_task = tasks.spawn_once(
        "engine-loop",
        &engine_stop,
        engine_loop.run(engine_stop.clone(), opts.drain_grace),
    );
    if !opts.config.calendar.schedules.is_empty() {
        let (cfg, store, dispatcher) =
            (reconfigured_too.clone(), store.clone(), dispatcher.clone());
        let (clock, metrics, stop) = (opts.clock.clone(), metrics.clone(), watch_stop.clone());
        tasks.spawn("handoffs", Importance::BestEffort, &watch_stop, move || {
            handoffs::run(
                cfg.clone(),
                store.clone(),
                dispatcher.clone(),
                clock.clone(),
                metrics.clone(),
                stop.clone(),
            )
        });
    }
    let silence_health = Arc::new(ack_silences::SilenceHealth::default());
    if let (Some(silencer), Some(rx)) = (silencer, silence_rx) {
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let (engine, clock, health) = (handle.clone(), opts.clock.clone(), silence_health.clone());
        let stop = watch_stop.clone();
        tasks.spawn(
            "alertmanager-silences",
            Importance::BestEffort,
            &watch_stop,
            move || {
                ack_silences::run(
                    silencer.clone(),
                    rx.clone(),
                    engine.clone(),
                    clock.clone(),
                    health.clone(),
                    stop.clone(),
                )
            },
        );
    }
    {
        let (wd, engine, stop) = (watchdog.clone(), handle.clone(), watch_stop.clone());
        tasks.spawn("watchdog", Importance::Essential, &watch_stop, move || {
            crate::watchdog::run(wd.clone(), engine.clone(), stop.clone())
        });
    }
    if let Some(url) = &wcfg.ping_url {
        let (url, every, health) = (url.clone(), wcfg.ping_interval.0, health.clone());
        let (clock, metrics, stop) = (opts.clock.clone(), metrics.clone(), watch_stop.clone());
        tasks.spawn(
            "outside-ping",
            Importance::BestEffort,
            &watch_stop,
            move || {
                probes::ping_outside(
                    url.clone(),
                    every,
                    health.clone(),
                    clock.clone(),
                    metrics.clone(),
                    stop.clone(),
                )
            },
        );
    }
    if let Some(st) = &wcfg.self_test {
        let (st, engine, clock) = (st.clone(), handle.clone(), opts.clock.clone());
        let stop = watch_stop.clone();
        tasks.spawn(
            "self-test",
            Importance::BestEffort,
            &watch_stop,
            move || {
                crate::watchdog::self_test::run(
                    st.clone(),
                    engine.clone(),
                    clock.clone(),
                    stop.clone(),
                )
            },
        );
    }

    let mut state = AppState::new(
        &opts.config,
        handle,
        store.clone(),
        metrics.clone(),
        health,
        opts.clock.clone(),
        ack_key,
        watchdog,
        tasks.clone(),
    );
    state.calls = calls;
    state.cluster = cluster.clone();
    let reload = reload::Reloader {
        path: opts.config.path.clone(),
        current: Arc::new(opts.config.clone()),
        engine: reconfigure,
        dispatcher,
        notifiers,
        app: state.clone(),
        build,
        metrics,
        clock: opts.clock.clone(),
        store: store.clone(),
    }
    .start(&watch_stop, &tasks);
    state.reloader = Some(reload.clone());
    state.silence_health = silence_health;
    let max_connections = max_connections(&opts.config);
    let app = http::router(state);
    let supervisor = tasks.clone();
    // A task given up stops the daemon as SIGTERM would: queued work is still committed
    // and pages in flight are recorded before the process exits.
    let stopped = stopping(stop.clone(), tasks.clone(), role.clone());
    let handover = role.clone();
    let task = tokio::spawn(async move {
        http::listener::serve(listener, app, max_connections, stopped)
            .await
            .context("HTTP server failed")?;
        info!("HTTP listener closed; draining the engine");
        supervisor.stop();
        watch_stop.cancel();
        engine_stop.cancel();
        engine_task.join().await;
        irc_stop.cancel();
        if let Some((_, task)) = irc {
            task.join().await;
        }
        if let Some(c) = cluster {
            match handover.get() {
                // Drained and recorded: the next leader need not wait out the lease.
                None => c.release().await,
                Some(_) => c.fence.release(),
            }
        }
        drop(store);
        if let Some(f) = supervisor.failure() {
            return Err(f.into());
        }
        info!("stopped cleanly");
        Ok(())
    });
    info!(%addr, "listening");
    Ok(Running {
        addr,
        reload,
        tasks,
        stop,
        task,
        role,
    })
}

/// Connections served at once (`[server] max_connections`, or what the open-file limit
/// allows).
fn max_connections(config: &Config) -> usize {
    config
        .file
        .server
        .max_connections
        .unwrap_or_else(http::listener::default_max_connections)
        .max(1)
}

/// Enough randomness to tell two processes of one instance name apart.
fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

/// Mirrors the IRC link's state into metrics and onto the watchdog's board.
async fn watch_link(
    mut status: tokio::sync::watch::Receiver<crate::irc::LinkStatus>,
    metrics: Arc<Metrics>,
    watchdog: Arc<Watchdog>,
) {
    let mut was_up = false;
    let mut forged = 0;
    loop {
        let s = status.borrow_and_update().clone();
        watchdog.irc_link(&s);
        metrics
            .irc_forged_lines
            .inc_by(s.forged_lines.saturating_sub(forged));
        forged = forged.max(s.forged_lines);
        let up = s.state == crate::irc::LinkState::Up;
        metrics.irc_up.set(i64::from(up));
        if up && !was_up {
            metrics.irc_connects.inc();
        }
        was_up = up;
        if status.changed().await.is_err() {
            return;
        }
    }
}
