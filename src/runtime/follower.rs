//! An instance that does not lead: the whole API and the webhook on the shared store,
//! every input forwarded to the leader, and an eye on the lease.
//!
//! Nothing here decides or sends: no engine loop, no dispatcher, no IRC link (two bots
//! in one channel would answer twice), no watchdog probes. When the lease expires the
//! daemon stops and whoever started it starts it again, to take over.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::forward::Forwarder;
use super::leadership::{Cluster, RoleSignal};
use super::{Health, Importance, Options, Running, Shared, Supervisor, engine_loop, stopping};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::watchdog::Watchdog;
use crate::watchdog::store_watch::Trouble;

pub(super) async fn start(
    opts: Options,
    listener: TcpListener,
    shared: Shared,
    cluster: Cluster,
    role: Arc<RoleSignal>,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let clock = opts.clock.clone();
    let metrics = Arc::new(Metrics::new());
    metrics.leader.set(0);
    metrics.leader_changes.inc_by(super::leadership::changes());
    let tasks = Supervisor::new(opts.restart.clone(), metrics.clone(), clock.clone());
    let health = Arc::new(Health::default());
    health.tick(clock.now());
    let watchdog = Watchdog::new(&opts.config, clock.clone(), metrics.clone());
    let handle = engine_loop::forwarding(Forwarder {
        inbox: shared.inbox.clone(),
        origin: cluster.name.clone(),
        clock: clock.clone(),
    });
    let mut state = AppState::new(
        &opts.config,
        handle,
        shared.store.clone(),
        metrics.clone(),
        health.clone(),
        clock.clone(),
        shared.ack_key.clone(),
        watchdog,
        tasks.clone(),
    );
    state.cluster = Some(cluster.clone());
    let stop = CancellationToken::new();
    {
        let (cluster, role, clock, health) =
            (cluster.clone(), role.clone(), clock.clone(), health.clone());
        let (metrics, stop) = (metrics.clone(), tasks.stopping());
        tasks.spawn("lease-watch", Importance::Essential, &stop.clone(), move || {
            let trouble: Arc<Mutex<Option<Trouble>>> = Arc::default();
            let (health, metrics) = (health.clone(), metrics.clone());
            let now_of = clock.clone();
            let reachable = move |r: Result<(), &StoreError>| {
                let now = now_of.now();
                let mut t = trouble.lock().unwrap_or_else(|e| e.into_inner());
                match r {
                    Ok(()) => {
                        if t.take().is_some() {
                            info!("the shared store answers again");
                        }
                        health.tick(now);
                    }
                    Err(e) => {
                        if t.is_none() {
                            warn!(error = %e, "the shared store does not answer: webhooks get 503 until it does");
                        }
                        let since = t.as_ref().map_or(now, |t| t.since);
                        let failures = t.as_ref().map_or(0, |t| t.failures) + 1;
                        *t = Some(Trouble {
                            since,
                            failures,
                            error: e.to_string(),
                            retry_at: now,
                            alarmed_at: None,
                        });
                        // Still alive: it answers reads it can and says what is wrong.
                        health.tick(now);
                    }
                }
                health.set_store(t.as_ref());
                metrics.store_writable.set(i64::from(t.is_none()));
            };
            cluster
                .clone()
                .watch(role.clone(), clock.clone(), reachable, stop.clone())
        });
    }
    let max_connections = super::max_connections(&opts.config);
    let app = http::router(state);
    let stopped = stopping(stop.clone(), tasks.clone(), role.clone());
    let supervisor = tasks.clone();
    let task = tokio::spawn(async move {
        http::listener::serve(listener, app, max_connections, stopped)
            .await
            .context("HTTP server failed")?;
        supervisor.stop();
        if let Some(f) = supervisor.failure() {
            return Err(f.into());
        }
        Ok(())
    });
    info!(%addr, instance = %cluster.name, "listening as a follower: inputs are forwarded to the leader");
    // Reloading a follower has nothing to apply: it reads the file again when it leads.
    let reload = super::reload::ReloadHandle::idle();
    Ok(Running {
        addr,
        reload,
        tasks,
        stop,
        task,
        role,
    })
}
