use std::sync::Mutex;

use super::*;
use crate::time::SystemClock;

const LEASE: Duration = Duration::from_secs(10);

/// The lease row in memory, on tokio's clock; `down` makes every call fail as an
/// unreachable database does.
#[derive(Default)]
struct Row {
    holder: Option<String>,
    epoch: u64,
    expires: Option<Instant>,
    down: bool,
}

#[derive(Default)]
struct Memory(Mutex<Row>);

fn unreachable() -> StoreError {
    StoreError::Corrupt {
        what: "test".into(),
        detail: "the database does not answer".into(),
    }
}

#[async_trait::async_trait]
impl Lease for Memory {
    async fn try_lead(&self, holder: &str, lease: Duration) -> Result<Option<u64>, StoreError> {
        let mut r = self.0.lock().unwrap();
        if r.down {
            return Err(unreachable());
        }
        if r.expires.is_some_and(|e| Instant::now() < e) {
            return Ok(None);
        }
        r.epoch += 1;
        r.holder = Some(holder.into());
        r.expires = Some(Instant::now() + lease);
        Ok(Some(r.epoch))
    }
    async fn renew(&self, epoch: u64, lease: Duration) -> Result<bool, StoreError> {
        let mut r = self.0.lock().unwrap();
        if r.down {
            return Err(unreachable());
        }
        if r.epoch != epoch {
            return Ok(false);
        }
        r.expires = Some(Instant::now() + lease);
        Ok(true)
    }
    async fn release(&self, epoch: u64) -> Result<(), StoreError> {
        let mut r = self.0.lock().unwrap();
        if r.epoch == epoch {
            r.expires = Some(Instant::now());
        }
        Ok(())
    }
    async fn leader(&self) -> Result<LeaderRow, StoreError> {
        let r = self.0.lock().unwrap();
        if r.down {
            return Err(unreachable());
        }
        let left = r.expires.map_or(-1, |e| {
            e.saturating_duration_since(Instant::now()).as_millis() as i64
        });
        Ok(LeaderRow {
            holder: r.holder.clone(),
            epoch: r.epoch,
            expires_in_ms: if left == 0 { -1 } else { left },
        })
    }
    async fn heartbeat(&self, _: &InstanceRow) -> Result<(), StoreError> {
        Ok(())
    }
    async fn instances(&self) -> Result<Vec<InstanceRow>, StoreError> {
        Ok(Vec::new())
    }
}

fn instance(lease: &Arc<Memory>, name: &str) -> Cluster {
    Cluster {
        lease: lease.clone(),
        fence: Arc::new(Fence::new()),
        lease_len: LEASE,
        name: name.into(),
        holder: format!("{name}/1"),
        addr: "127.0.0.1:0".into(),
        started_at: Timestamp(0),
    }
}

#[tokio::test(start_paused = true)]
async fn a_follower_starts_over_to_take_the_lease_only_once_the_leader_stopped_renewing() {
    let lease = Arc::new(Memory::default());
    let a = instance(&lease, "a");
    assert_eq!(a.try_lead().await.unwrap(), Some(1));
    let b = instance(&lease, "b");
    assert_eq!(b.try_lead().await.unwrap(), None, "a holds it");

    let stop = CancellationToken::new();
    let (a_signal, b_signal) = (
        Arc::new(RoleSignal::default()),
        Arc::new(RoleSignal::default()),
    );
    let keeping = tokio::spawn(a.clone().keep(
        a_signal.clone(),
        Arc::new(SystemClock),
        stop.clone(),
    ));
    tokio::spawn(b.clone().watch(
        b_signal.clone(),
        Arc::new(SystemClock),
        |_| {},
        stop.clone(),
    ));
    tokio::time::sleep(LEASE * 5).await;
    assert_eq!(b_signal.get(), None, "a renews: b waits");
    assert!(a.fence.holds());

    // kill -9 of a: nobody renews any more.
    keeping.abort();
    let killed = Instant::now();
    let change = b_signal.raised().await;
    assert_eq!(change, RoleChange::TakeOver);
    let waited = killed.elapsed();
    assert!(
        waited <= LEASE,
        "b moved {waited:?} after the kill: not within the lease"
    );
    assert_eq!(
        b.try_lead().await.unwrap(),
        Some(2),
        "b leads at the next epoch"
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_leader_paused_past_its_lease_wakes_fenced_and_steps_down() {
    let lease = Arc::new(Memory::default());
    let a = instance(&lease, "a");
    a.try_lead().await.unwrap();
    // SIGSTOP of a for 30 s: its task does not run, the lease runs out, b takes it.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        !a.fence.holds(),
        "a paused leader wakes up past its deadline: it sends nothing"
    );
    let b = instance(&lease, "b");
    assert_eq!(b.try_lead().await.unwrap(), Some(2));

    let signal = Arc::new(RoleSignal::default());
    let stop = CancellationToken::new();
    tokio::spawn(
        a.clone()
            .keep(signal.clone(), Arc::new(SystemClock), stop.clone()),
    );
    assert_eq!(signal.raised().await, RoleChange::StepDown { epoch: 1 });
    assert_eq!(
        a.fence.epoch(),
        0,
        "fenced: a commits nothing under epoch 1"
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_leader_cut_off_from_the_database_stops_sending_and_resumes_when_it_answers() {
    let lease = Arc::new(Memory::default());
    let a = instance(&lease, "a");
    a.try_lead().await.unwrap();
    let signal = Arc::new(RoleSignal::default());
    let stop = CancellationToken::new();
    tokio::spawn(
        a.clone()
            .keep(signal.clone(), Arc::new(SystemClock), stop.clone()),
    );

    lease.0.lock().unwrap().down = true;
    tokio::time::sleep(LEASE * 3).await;
    assert!(
        !a.fence.holds(),
        "past the lease without a renewal: no page goes out"
    );
    assert_eq!(
        signal.get(),
        None,
        "but nobody else took over: a keeps its role"
    );

    lease.0.lock().unwrap().down = false;
    tokio::time::sleep(LEASE).await;
    assert!(a.fence.holds(), "the same epoch renewed: a sends again");
    assert_eq!(a.fence.epoch(), 1);
    assert_eq!(signal.get(), None);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_graceful_stop_hands_the_lease_over_at_once() {
    let lease = Arc::new(Memory::default());
    let a = instance(&lease, "a");
    a.try_lead().await.unwrap();
    a.release().await;
    assert!(!a.fence.holds());
    let b = instance(&lease, "b");
    assert_eq!(
        b.try_lead().await.unwrap(),
        Some(2),
        "no wait for the lease to run out"
    );
}
