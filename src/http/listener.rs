//! The one HTTP listener, with the limits that keep clients from taking what pages need.
//!
//! Whoever can reach the listener (it must be reachable for ack links and Twilio) could
//! otherwise hold connections open for ever: each holds a file descriptor, and once the
//! process runs out, nothing is accepted and every page's outgoing socket fails too. So:
//!
//! - a request's headers must arrive within [`HEADER_TIMEOUT`], which also closes a
//!   keep-alive connection idle that long (hyper's timer runs while it waits for a head);
//! - a whole request, body included, must be answered within [`REQUEST_TIMEOUT`];
//! - at most `max_connections` are open at once. When one more arrives, the oldest that
//!   is not in the middle of a request is closed to make room, so a flood of idle or
//!   half-sent connections cannot keep `/healthz` or a webhook out, and the connections
//!   never use more than a fraction of the descriptors: the rest stay for pages.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::{debug, warn};

/// How long a client may take to send a request's headers, or stay idle between requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take from its headers to its answer (a slow body included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One open connection, as the cap sees it.
struct Conn {
    /// A request is being read or answered: not closed to make room.
    busy: Arc<AtomicBool>,
    close: CancellationToken,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Conns {
    open: Mutex<BTreeMap<u64, Conn>>,
    next: AtomicU64,
}

impl Conns {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Conn>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, closing the oldest idle one when `max` are open.
    /// Returns its id, whether it is busy, and what closes it.
    fn admit(&self, max: usize) -> (u64, Arc<AtomicBool>, CancellationToken) {
        let mut open = self.lock();
        if open.len() >= max {
            let idle = open
                .iter()
                .find(|(_, c)| !c.busy.load(Ordering::Relaxed))
                .map(|(&id, _)| id);
            if let Some(id) = idle
                && let Some(c) = open.remove(&id)
            {
                c.close.cancel();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicBool::new(false));
        let close = CancellationToken::new();
        open.insert(
            id,
            Conn {
                busy: busy.clone(),
                close: close.clone(),
            },
        );
        (id, busy, close)
    }

    fn gone(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Marks its connection busy while a request runs.
struct Busy(Arc<AtomicBool>);

impl Busy {
    fn start(flag: &Arc<AtomicBool>) -> Self {
        flag.store(true, Ordering::Relaxed);
        Busy(flag.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in progress
/// finish (for at most [`REQUEST_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let conns = Arc::new(Conns::default());
    let draining = CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    tokio::pin!(shutdown);
    let mut accept_errors = 0u32;
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(s) => { accept_errors = 0; s }
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept:
                    // wait a little instead of spinning, and say so once in a while.
                    accept_errors += 1;
                    if accept_errors == 1 || accept_errors.is_power_of_two() {
                        warn!(error = %e, open = conns.len(), times = accept_errors, "cannot accept a connection");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (id, busy, close) = conns.admit(max_connections);
        let app = app.clone();
        let conns = conns.clone();
        let draining = draining.clone();
        tracker.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let guard = Busy::start(&busy);
                let mut app = app.clone();
                async move {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    let answer = tokio::time::timeout(REQUEST_TIMEOUT, app.call(req)).await;
                    drop(guard);
                    Ok::<Response, std::convert::Infallible>(match answer {
                        Ok(Ok(r)) => r,
                        Ok(Err(never)) => match never {},
                        Err(_) => (
                            StatusCode::REQUEST_TIMEOUT,
                            "the request took longer than 30 s (send the body at once)",
                        )
                            .into_response(),
                    })
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = close.cancelled() => {
                    debug!(%peer, "connection closed to make room for a new one");
                    Ok(())
                }
                _ = draining.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(REQUEST_TIMEOUT, conn.as_mut()).await.unwrap_or(Ok(()))
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            conns.gone(id);
        });
    }
    drop(listener);
    draining.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Raises the soft limit on open files to the hard one, so that the connection cap and
/// every page's sockets fit with room to spare; what is in force is logged.
pub fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(open_files = n, "open-file limit"),
        Err(e) => warn!(error = %e, "cannot raise the open-file limit; the default one stays"),
    }
}

/// The connection cap when `server.max_connections` is not set: a quarter of the open
/// files allowed, at most 1024, so three quarters stay for the store, outgoing pages,
/// IRC and the rest.
pub fn default_max_connections() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    usize::try_from(soft / 4).unwrap_or(1024).clamp(16, 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_house_closes_the_oldest_idle_connection_not_a_busy_one() {
        let conns = Conns::default();
        let (_, busy0, close0) = conns.admit(2);
        let (_, _busy1, close1) = conns.admit(2);
        busy0.store(true, Ordering::Relaxed);
        let (_, _, close2) = conns.admit(2);
        assert!(!close0.is_cancelled(), "in the middle of a request");
        assert!(close1.is_cancelled(), "the oldest idle one made room");
        assert!(!close2.is_cancelled());
        assert_eq!(conns.len(), 2);
    }
}
