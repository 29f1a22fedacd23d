//! The IO that feeds the board on a timer: notifiers' own checks, peers' `/healthz`,
//! and the outside heartbeat tocsin pings while its engine loop is healthy.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Watchdog;
use crate::metrics::{Metrics, StateLabel};
use crate::notify::Notifier;
use crate::runtime::Health;
use crate::time::Clock;

/// Bound of one peer request or outside ping.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits `d`, or returns `false` when stopped meanwhile.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

fn client() -> reqwest::Client {
    crate::notify::http_client(REQUEST_TIMEOUT).expect("a client with timeouts always builds")
}

/// Runs each listed notifier's own check every `interval` (the first at once).
pub async fn check_notifiers(
    wd: Arc<Watchdog>,
    notifiers: Vec<(String, Arc<dyn Notifier>)>,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        for (name, n) in &notifiers {
            let r = tokio::time::timeout(REQUEST_TIMEOUT * 3, n.check())
                .await
                .unwrap_or_else(|_| {
                    Err(crate::notify::NotifyError::transient(format!(
                        "the check did not finish within {}s",
                        (REQUEST_TIMEOUT * 3).as_secs()
                    )))
                });
            match &r {
                Ok(d) => debug!(notifier = %name, detail = %d, "notifier check passed"),
                Err(e) => warn!(notifier = %name, error = %e, "notifier check failed"),
            }
            wd.check_result(name, r.map_err(|e| format!("check failed: {e}")));
        }
        if !pause(&stop, interval).await {
            return;
        }
    }
}

/// Asks every peer's `/healthz` every `interval`; a healthy answer renews its deadline.
pub async fn watch_peers(
    wd: Arc<Watchdog>,
    peers: Vec<String>,
    interval: Duration,
    stop: CancellationToken,
) {
    let client = client();
    loop {
        for peer in &peers {
            let url = format!("{}/healthz", peer.trim_end_matches('/'));
            match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => {
                    wd.peer_ok(peer, &format!("{url} answered {}", r.status()))
                }
                Ok(r) => debug!(%url, status = %r.status(), "peer unhealthy"),
                Err(e) => debug!(%url, error = %e, "peer unreachable"),
            }
        }
        if !pause(&stop, interval).await {
            return;
        }
    }
}

/// Pings `url` every `interval`, but only while the engine loop turns: a hung tocsin
/// stops pinging, so the outside monitor pages.
pub async fn ping_outside(
    url: String,
    interval: Duration,
    health: Arc<Health>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let client = client();
    loop {
        let outcome = if !health.healthy(clock.now()) {
            warn!(
                last_tick = %health.last_tick(),
                "engine loop stalled: not pinging the outside heartbeat, so it pages"
            );
            "skipped"
        } else if let Some(t) = health.store_trouble() {
            warn!(
                since = %t.since,
                error = %t.error,
                "the store cannot be written, so nothing is paged: not pinging the outside heartbeat, so it pages"
            );
            "skipped"
        } else {
            // POST, which healthchecks.io and its kin take like GET (and log a body of).
            match client.post(&url).send().await {
                Ok(r) if r.status().is_success() => "sent",
                Ok(r) => {
                    warn!(%url, status = %r.status(), "the outside heartbeat refused the ping");
                    "failed"
                }
                Err(e) => {
                    warn!(%url, error = %e, "could not ping the outside heartbeat");
                    "failed"
                }
            }
        };
        metrics
            .outside_pings
            .get_or_create(&StateLabel {
                state: outcome.to_string(),
            })
            .inc();
        if !pause(&stop, interval).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SystemClock;

    #[tokio::test]
    async fn a_stalled_engine_loop_is_not_reported_alive() {
        // Never ticked: the loop looks stalled since the epoch.
        let health = Arc::new(Health::default());
        let metrics = Arc::new(Metrics::new());
        let stop = CancellationToken::new();
        let run = tokio::spawn(ping_outside(
            // Nothing listens here: a ping would count as "failed", not "skipped".
            "http://127.0.0.1:9/ping".into(),
            Duration::from_secs(3600),
            health,
            Arc::new(SystemClock),
            metrics.clone(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
        run.await.unwrap();
        let text = metrics.render();
        assert!(
            text.contains("outside_pings_total{state=\"skipped\"} 1"),
            "{text}"
        );
        assert!(!text.contains("state=\"sent\""), "{text}");
    }
}
