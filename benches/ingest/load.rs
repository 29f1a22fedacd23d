//! The client side: exactly `concurrency` workers, each with one request in flight.

use super::*;

/// What one scenario's requests got.
#[derive(Default)]
pub struct Outcome {
    pub wall: Duration,
    pub requests: u64,
    pub ok_requests: u64,
    pub ok_alerts: u64,
    pub non_200: u64,
    pub transport_errors: u64,
    /// Per request, microseconds, sorted after the run.
    pub latencies_us: Vec<u32>,
    /// Pool index of every body answered 200: the alerts the store must hold.
    pub ok_bodies: Vec<u32>,
    /// Requests that were the first delivery of their body.
    pub fresh_requests: u64,
    /// Alerts in first deliveries answered 200 that fired a new instance.
    pub fresh_fired: u64,
    /// Alerts in first deliveries answered 200 that resolved a firing instance.
    pub fresh_resolved: u64,
    /// A timed run sent every planned request before its deadline (the pool was too small).
    pub exhausted: bool,
    /// One error to show, so a failing run says why.
    pub first_error: Option<String>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.ok_requests += other.ok_requests;
        self.ok_alerts += other.ok_alerts;
        self.non_200 += other.non_200;
        self.transport_errors += other.transport_errors;
        self.fresh_requests += other.fresh_requests;
        self.fresh_fired += other.fresh_fired;
        self.fresh_resolved += other.fresh_resolved;
        self.latencies_us.extend(other.latencies_us);
        self.ok_bodies.extend(other.ok_bodies);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn errors(&self) -> u64 {
        self.non_200 + self.transport_errors
    }
}

/// State every worker shares; the bodies are `Bytes`, so sending clones no payload.
struct Shared {
    client: reqwest::Client,
    url: String,
    /// Per body: bytes, alerts, resolved alerts.
    bodies: Vec<(Bytes, u32, u32)>,
    order: Vec<u32>,
    fresh: Vec<bool>,
    next: AtomicU64,
    stop: Stop,
    deadline: Instant,
    /// Set when a timed run ran out of planned requests.
    exhausted: AtomicBool,
}

impl Shared {
    /// The next request number, or None when the scenario is over. A timed run ends
    /// early when the plan runs out: sending its bodies again would re-fire alerts
    /// resolved since, which is no duplicate.
    fn take(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        let done = match self.stop {
            Stop::Requests(n) => i as u64 >= n,
            Stop::After(_) => Instant::now() >= self.deadline,
        };
        if !done && i >= self.order.len() {
            self.exhausted.store(true, Ordering::Relaxed);
            return None;
        }
        (!done).then_some(i)
    }
}

pub async fn drive(
    client: &reqwest::Client,
    base_url: &str,
    pool: &payload::Pool,
    plan: &plan::Plan,
    stop: Stop,
    concurrency: usize,
) -> Outcome {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        client: client.clone(),
        url: format!("{base_url}/hooks/alertmanager"),
        bodies: pool
            .bodies
            .iter()
            .map(|b| (b.bytes.clone(), b.alerts.len() as u32, b.resolved))
            .collect(),
        order: plan.order.clone(),
        fresh: plan.fresh.clone(),
        next: AtomicU64::new(0),
        stop,
        deadline: match stop {
            Stop::After(d) => started + d,
            Stop::Requests(_) => started,
        },
        exhausted: AtomicBool::new(false),
    });
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
        .collect();
    let mut total = Outcome::default();
    for w in workers {
        total.merge(w.await.expect("worker task panicked"));
    }
    total.wall = started.elapsed();
    total.exhausted = shared.exhausted.load(Ordering::Relaxed);
    total.latencies_us.sort_unstable();
    total
}

async fn worker(shared: Arc<Shared>) -> Outcome {
    let mut out = Outcome::default();
    while let Some(i) = shared.take() {
        let index = shared.order[i];
        let (body, alerts, resolved) = &shared.bodies[index as usize];
        let fresh = shared.fresh[i];
        let t0 = Instant::now();
        let result = send(&shared, body.clone()).await;
        let micros = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        out.requests += 1;
        out.fresh_requests += u64::from(fresh);
        out.latencies_us.push(micros);
        match result {
            Ok(()) => {
                out.ok_requests += 1;
                out.ok_alerts += u64::from(*alerts);
                out.ok_bodies.push(index);
                if fresh {
                    out.fresh_fired += u64::from(alerts - resolved);
                    out.fresh_resolved += u64::from(*resolved);
                }
            }
            Err(Failure::Status(e)) => {
                out.non_200 += 1;
                out.first_error.get_or_insert(e);
            }
            Err(Failure::Transport(e)) => {
                out.transport_errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
    }
    out
}

enum Failure {
    Status(String),
    Transport(String),
}

/// One POST; the response body is read to the end so the connection goes back to the
/// pool and the timing covers the whole answer.
async fn send(shared: &Shared, body: Bytes) -> Result<(), Failure> {
    let transport = |e: reqwest::Error| Failure::Transport(format!("{:#}", anyhow::Error::from(e)));
    let resp = shared
        .client
        .post(&shared.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(transport)?;
    let status = resp.status();
    let text = resp.bytes().await.map_err(transport)?;
    if status == reqwest::StatusCode::OK {
        Ok(())
    } else {
        let snippet = String::from_utf8_lossy(&text[..text.len().min(200)]).into_owned();
        Err(Failure::Status(format!("HTTP {status}: {snippet}")))
    }
}
