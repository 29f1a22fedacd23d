//! The store against a real SQLite file in a temp dir.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::engine::{
    Actor, AlertIn, AlertRecord, AlertStatus, Escalation, EventKind, HistoryEvent, IncidentOpened,
    IncidentStatus, LabelSet, Outcome, Page, PageId, PageKind, PolicySnapshot, StepSnapshot,
    Target, Via,
};
use crate::store::{Detail, IncidentView, ListQuery, PageStatus};

pub(super) fn t(s: &str) -> Timestamp {
    Timestamp::at(s)
}

pub(super) fn policy() -> Arc<PolicySnapshot> {
    Arc::new(PolicySnapshot {
        name: "default".into(),
        repeat: 1,
        repeat_after: Duration::from_secs(600),
        steps: vec![StepSnapshot {
            after: Duration::ZERO,
            targets: vec![Target::Notifier {
                name: "console".into(),
            }],
        }],
        page_recovery: false,
        resolve_on_ack: false,
    })
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn escalation(at: Timestamp) -> Escalation {
    Escalation {
        pass_start: at,
        next_step: 1,
        next_step_at: Some(at.plus(Duration::from_secs(600))),
        step: 1,
        announced: vec!["console".into()],
        ..Escalation::default()
    }
}

pub(super) fn status(id: IncidentId, state: IncidentState, at: Timestamp) -> IncidentStatus {
    IncidentStatus {
        id,
        state,
        updated_at: at,
        resolved_at: (state == IncidentState::Resolved).then_some(at),
        acked_by: None,
        acked_at: None,
        wake_at: Some(at.plus(Duration::from_secs(600))),
        escalation: escalation(at),
        alerts_truncated: 0,
    }
}

pub(super) fn alert(id: IncidentId, fingerprint: &str, at: Timestamp) -> Effect {
    Effect::Alert(AlertRecord {
        incident: id,
        received_at: at,
        alert: AlertIn {
            fingerprint: fingerprint.into(),
            status: AlertStatus::Firing,
            starts_at: at,
            ends_at: None,
            labels: LabelSet::from_map(&labels(&[("alertname", "DiskFull"), ("instance", "db1")])),
            annotations: LabelSet::from_map(&labels(&[("summary", "Disk almost full on db1")])),
            generator_url: "http://prometheus/graph".into(),
        },
    })
}

pub(super) fn page(id: PageId, incident: IncidentId, at: Timestamp) -> Page {
    Page {
        id,
        incident,
        at,
        kind: PageKind::Triggered,
        step: 1,
        cycle: 0,
        target: "alice".into(),
        contact: Some("alice".into()),
        notifier: "sms".into(),
        method: Some(1),
        to: Some("+15550100".into()),
        topic: None,
        late_by_ms: Some(1500),
        reason: "step 1 of policy default".into(),
        retry_until: None,
        hold_until: None,
    }
}

/// The effects of a webhook that opens incident `id` and pages about it (page `id`).
pub(super) fn opening(id: IncidentId, at: Timestamp) -> Vec<Effect> {
    vec![
        Effect::Opened(IncidentOpened {
            id,
            source: "alertmanager".into(),
            group_key: format!("{{}}:{{alertname=\"DiskFull\",n=\"{id}\"}}"),
            title: format!("DiskFull #{id}"),
            labels: labels(&[("alertname", "DiskFull"), ("severity", "critical")]),
            created_at: at,
            policy: policy(),
        }),
        Effect::Status(status(id, IncidentState::Triggered, at)),
        alert(id, "a1b2c3d4e5f60718", at),
        Effect::Event(HistoryEvent::by_engine(
            id,
            at,
            EventKind::Opened,
            "DiskFull",
        )),
        Effect::Page(page(id, id, at)),
    ]
}

/// The newest `limit` incidents (of `state`) with up to 20 alerts each, as the API lists them.
async fn list(
    store: &SqliteStore,
    state: Option<IncidentState>,
    limit: usize,
) -> Vec<IncidentView> {
    let query = ListQuery {
        alerts: 20,
        ..ListQuery::newest(state, limit)
    };
    store.incidents(query).await.unwrap().incidents
}

pub(super) fn open_temp() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

#[tokio::test]
async fn webhook_batch_reads_back_whole() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(7, at)).await.unwrap();

    let view = store
        .incident(7, Detail::FULL)
        .await
        .unwrap()
        .expect("incident 7");
    assert_eq!(view.state, IncidentState::Triggered);
    assert_eq!(view.title, "DiskFull #7");
    assert_eq!(view.source, "alertmanager");
    assert_eq!(view.labels["severity"], "critical");
    assert_eq!(view.created_at, at);
    assert_eq!(view.updated_at, at);
    assert_eq!(view.policy, "default");
    assert_eq!(view.step, 1);
    assert_eq!(view.cycle, 0);
    assert_eq!(view.next_escalation_at, Some(t("2026-11-21T10:10:00Z")));
    assert_eq!(view.alerts.len(), 1);
    let a = &view.alerts[0];
    assert_eq!(a.fingerprint, "a1b2c3d4e5f60718");
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.starts_at, at);
    assert_eq!(a.ends_at, None);
    assert_eq!(a.annotations["summary"], "Disk almost full on db1");
    assert_eq!(a.generator_url, "http://prometheus/graph");
    let history = view.history.expect("history in the detail view");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].kind, EventKind::Opened);
    assert_eq!(history[0].actor, "tocsin");
    let pages = view.pages.expect("pages in the detail view");
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].status, PageStatus::Pending);
    assert_eq!(pages[0].attempts, 0);
    assert_eq!(pages[0].to.as_deref(), Some("+15550100"));
    assert_eq!(pages[0].kind, PageKind::Triggered);

    let brief = store.incident(7, Detail::MESSAGE).await.unwrap().unwrap();
    assert!(brief.history.is_none() && brief.pages.is_none());
    assert!(store.incident(8, Detail::FULL).await.unwrap().is_none());

    let list = list(&store, None, 10).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, 7);
    assert_eq!(list[0].alerts.len(), 1);
    assert!(list[0].history.is_none());
    let counts = store.counts().await.unwrap();
    assert_eq!(counts[&IncidentState::Triggered], 1);
    assert_eq!(counts[&IncidentState::Resolved], 0);
}

#[tokio::test]
async fn incident_list_is_newest_first_filtered_and_limited() {
    let (_dir, store) = open_temp();
    for id in 1..=5 {
        store
            .commit(opening(
                id,
                t("2026-11-21T10:00:00Z").plus(Duration::from_secs(id)),
            ))
            .await
            .unwrap();
    }
    let at = t("2026-11-21T11:00:00Z");
    store
        .commit(vec![Effect::Status(status(2, IncidentState::Resolved, at))])
        .await
        .unwrap();
    let ids = |v: Vec<IncidentView>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(list(&store, None, 3).await), [5, 4, 3]);
    assert_eq!(
        ids(list(&store, Some(IncidentState::Triggered), 10).await),
        [5, 4, 3, 1]
    );
    assert_eq!(
        ids(list(&store, Some(IncidentState::Resolved), 10).await),
        [2]
    );
    assert_eq!(store.counts().await.unwrap()[&IncidentState::Resolved], 1);
}

#[tokio::test]
async fn duplicate_delivery_updates_the_alert_row() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(1, at)).await.unwrap();
    let later = t("2026-11-21T10:05:00Z");
    let Effect::Alert(mut again) = alert(1, "a1b2c3d4e5f60718", at) else {
        unreachable!()
    };
    again.alert.status = AlertStatus::Resolved;
    again.alert.ends_at = Some(later);
    again.received_at = later;
    store.commit(vec![Effect::Alert(again)]).await.unwrap();

    let view = store.incident(1, Detail::MESSAGE).await.unwrap().unwrap();
    assert_eq!(view.alerts.len(), 1, "one row per (incident, fingerprint)");
    assert_eq!(view.alerts[0].status, AlertStatus::Resolved);
    assert_eq!(view.alerts[0].ends_at, Some(later));
    assert_eq!(view.alerts[0].received_at, later);
}

#[tokio::test]
async fn page_outcomes_are_recorded() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    let mut effects = opening(1, at);
    effects.push(Effect::Page(page(2, 1, at)));
    store.commit(effects).await.unwrap();
    let done = t("2026-11-21T10:00:03Z");
    store
        .commit(vec![
            Effect::PageDone {
                page: 1,
                at: done,
                outcome: Outcome::Delivered { attempts: 2 },
            },
            Effect::PageDone {
                page: 2,
                at: done,
                outcome: Outcome::Failed {
                    attempts: 3,
                    permanent: true,
                    error: "gateway said 400: bad number".into(),
                },
            },
        ])
        .await
        .unwrap();

    let pages = store
        .incident(1, Detail::FULL)
        .await
        .unwrap()
        .unwrap()
        .pages
        .unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].id, 1);
    assert_eq!(pages[0].status, PageStatus::Delivered);
    assert_eq!(pages[0].attempts, 2);
    assert_eq!(pages[0].error, None);
    assert_eq!(pages[0].done_at, Some(done));
    assert_eq!(pages[1].status, PageStatus::Failed);
    assert_eq!(pages[1].attempts, 3);
    assert_eq!(
        pages[1].error.as_deref(),
        Some("gateway said 400: bad number")
    );
    assert!(store.restore(at).await.unwrap().pending_pages.is_empty());
}

/// Twilio's "no answer" can overtake the notifier's own report that the call was placed.
#[tokio::test]
async fn a_call_that_ended_stays_ended_when_its_placing_is_reported_late() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T03:00:00Z");
    let mut effects = opening(1, at);
    effects.push(Effect::Page(page(2, 1, at)));
    store.commit(effects).await.unwrap();
    let placed = |page| Effect::PageDone {
        page,
        at,
        outcome: Outcome::Placed {
            attempts: 1,
            reference: "CA1".into(),
        },
    };
    store
        .commit(vec![
            placed(1),
            Effect::PageDone {
                page: 2,
                at,
                outcome: Outcome::NotReached {
                    reason: "no answer after 30 s".into(),
                },
            },
            placed(2),
        ])
        .await
        .unwrap();
    let pages = store
        .incident(1, Detail::FULL)
        .await
        .unwrap()
        .unwrap()
        .pages
        .unwrap();
    assert_eq!(pages[0].status, PageStatus::Placed);
    assert_eq!(pages[1].status, PageStatus::NotReached);
    assert_eq!(pages[1].error.as_deref(), Some("no answer after 30 s"));
    assert!(
        store.restore(at).await.unwrap().pending_pages.is_empty(),
        "a placed call is not placed again after a restart"
    );
}

#[tokio::test]
async fn restart_resumes_open_escalations_and_unsent_pages() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    for id in 1..=4 {
        store.commit(opening(id, at)).await.unwrap();
    }
    let mut acked = status(2, IncidentState::Acknowledged, t("2026-11-21T10:02:00Z"));
    acked.acked_by = Some("alice".into());
    acked.acked_at = Some(t("2026-11-21T10:02:00Z"));
    acked.escalation.next_step_at = None;
    acked.escalation.ack_expires_at = Some(t("2026-11-21T10:32:00Z"));
    store
        .commit(vec![
            Effect::Status(acked.clone()),
            // Resolved long ago: outside the cut-off.
            Effect::Status(status(
                3,
                IncidentState::Resolved,
                t("2026-11-21T10:01:00Z"),
            )),
            // Resolved recently: a late duplicate must find it.
            Effect::Status(status(
                4,
                IncidentState::Resolved,
                t("2026-11-21T11:00:00Z"),
            )),
            Effect::PageDone {
                page: 1,
                at,
                outcome: Outcome::Delivered { attempts: 1 },
            },
        ])
        .await
        .unwrap();

    let r = store.restore(t("2026-11-21T10:30:00Z")).await.unwrap();
    let open: Vec<_> = r.open.iter().map(|i| (i.id, i.state)).collect();
    assert_eq!(
        open,
        [
            (1, IncidentState::Triggered),
            (2, IncidentState::Acknowledged)
        ]
    );
    assert_eq!(r.open[0].escalation, escalation(at));
    assert_eq!(*r.open[0].policy, *policy());
    assert_eq!(r.open[0].source, "alertmanager");
    assert_eq!(
        r.open[0].alerts,
        [(0xa1b2_c3d4_e5f6_0718, AlertStatus::Firing, at)]
    );
    assert_eq!(r.open[1].escalation, acked.escalation);
    assert_eq!(r.open[1].acked_by.as_deref(), Some("alice"));
    assert_eq!(r.open[1].acked_at, acked.acked_at);
    let resolved: Vec<_> = r.recent_resolved.iter().map(|i| i.id).collect();
    assert_eq!(resolved, [4]);
    assert_eq!(
        r.recent_resolved[0].resolved_at,
        Some(t("2026-11-21T11:00:00Z"))
    );
    assert_eq!(r.recent_resolved[0].alerts.len(), 1);
    assert_eq!(r.next_incident_id, 5);
    assert_eq!(r.next_page_id, 5);
    let pending: Vec<_> = r.pending_pages.iter().map(|p| p.id).collect();
    assert_eq!(pending, [2, 3, 4]);
    assert_eq!(
        r.pending_pages[0],
        page(2, 2, at),
        "rebuilt exactly as recorded"
    );
}

#[tokio::test]
async fn empty_store_restores_to_first_ids() {
    let (_dir, store) = open_temp();
    let r = store.restore(Timestamp(0)).await.unwrap();
    assert!(r.open.is_empty() && r.recent_resolved.is_empty() && r.pending_pages.is_empty());
    assert_eq!((r.next_incident_id, r.next_page_id), (1, 1));
}

#[tokio::test]
async fn only_the_last_status_of_a_batch_counts() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    let mut effects = opening(1, at);
    let mut acked = status(1, IncidentState::Acknowledged, t("2026-11-21T10:01:00Z"));
    acked.acked_by = Some("bob".into());
    effects.push(Effect::Status(acked));
    effects.push(Effect::Event(HistoryEvent::by_engine(
        1,
        t("2026-11-21T10:01:00Z"),
        EventKind::Acked,
        "",
    )));
    store.commit(effects).await.unwrap();
    let view = store.incident(1, Detail::FULL).await.unwrap().unwrap();
    assert_eq!(view.state, IncidentState::Acknowledged);
    assert_eq!(view.acked_by.as_deref(), Some("bob"));
    let kinds: Vec<_> = view.history.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Opened, EventKind::Acked]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_all_land() {
    let (_dir, store) = open_temp();
    let store = Arc::new(store);
    let at = t("2026-11-21T10:00:00Z");
    let tasks: Vec<_> = (1..=50)
        .map(|id| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.commit(opening(id, at)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(list(&store, None, 100).await.len(), 50);
    assert!(store.transactions() <= 50);
}

/// A storm of webhooks while the disk is slow: the committers that queue up behind
/// one fsync share the next one instead of each waiting for its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committers_waiting_together_share_one_transaction() {
    let (dir, store) = open_temp();
    let store = Arc::new(store);
    // Another connection holds the write lock: the writer stalls on its first group
    // the way it would on a slow fsync.
    let blocker = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let before = store.transactions();
    let at = t("2026-11-21T10:00:00Z");
    let tasks: Vec<_> = (1..=50)
        .map(|id| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.commit(opening(id, at)).await })
        })
        .collect();
    while store.in_flight.available_permits() > MAX_IN_FLIGHT - 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    blocker.execute_batch("ROLLBACK").unwrap();

    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let ran = store.transactions() - before;
    assert!(ran <= 2, "50 queued commits took {ran} transactions");
    assert_eq!(list(&store, None, 100).await.len(), 50);
    assert_eq!(store.restore(at).await.unwrap().pending_pages.len(), 50);
}

#[tokio::test]
async fn failed_commit_writes_nothing_and_the_store_carries_on() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(1, at)).await.unwrap();
    // Incident 1 again (an id reused by a bug): the whole batch must roll back.
    let mut effects = vec![Effect::Event(HistoryEvent::by_engine(
        1,
        at,
        EventKind::Received,
        "",
    ))];
    effects.extend(opening(1, at));
    let err = store.commit(effects).await.unwrap_err();
    assert!(matches!(err, StoreError::Write(_)), "{err}");
    let view = store.incident(1, Detail::FULL).await.unwrap().unwrap();
    assert_eq!(
        view.history.unwrap().len(),
        1,
        "the failed batch left no event"
    );

    store.commit(opening(2, at)).await.unwrap();
    assert_eq!(store.counts().await.unwrap()[&IncidentState::Triggered], 2);
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let at = t("2026-11-21T10:00:00Z");
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.commit(opening(41, at)).await.unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let view = store.incident(41, Detail::FULL).await.unwrap().unwrap();
    assert_eq!(view.title, "DiskFull #41");
    assert_eq!(view.alerts.len(), 1);
    assert_eq!(store.restore(at).await.unwrap().next_incident_id, 42);
}

#[tokio::test]
async fn creates_a_missing_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    let store = SqliteStore::open(&nested).unwrap();
    store
        .commit(opening(1, t("2026-11-21T10:00:00Z")))
        .await
        .unwrap();
    assert!(nested.join(SQLITE_FILE).exists());
}

/// The mode of every file in `dir`, by name.
fn file_modes(dir: &Path) -> BTreeMap<String, u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().mode() & 0o7777;
            (e.file_name().to_string_lossy().into_owned(), mode)
        })
        .collect()
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn dir_mode(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

const RUNNING_FILES: [&str; 3] = ["tocsin.db", "tocsin.db-shm", "tocsin.db-wal"];

#[tokio::test]
async fn contacts_numbers_are_not_readable_by_other_users_whatever_the_umask() {
    // A data dir as `mkdir` makes it under umask 0022.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    set_mode(&data, 0o755);
    let store = SqliteStore::open(&data).unwrap();
    store
        .commit(opening(1, t("2026-11-21T10:00:00Z")))
        .await
        .unwrap();
    assert_eq!(
        dir_mode(&data),
        0o700,
        "the data dir is {:04o}",
        dir_mode(&data)
    );
    // While it runs: the database, its WAL and its shared-memory index, which SQLite
    // made itself.
    let modes = file_modes(&data);
    assert_eq!(
        modes.keys().map(String::as_str).collect::<Vec<_>>(),
        RUNNING_FILES
    );
    for (name, mode) in &modes {
        assert_eq!(*mode, 0o600, "{name} is {mode:04o}");
    }
}

#[tokio::test]
async fn a_store_an_earlier_tocsin_left_readable_is_made_private() {
    let (dir, first) = open_temp();
    first
        .commit(opening(1, t("2026-11-21T10:00:00Z")))
        .await
        .unwrap();
    // As a tocsin before this one left them under umask 0022; still open, so the WAL
    // and the shared-memory index are there as after a crash.
    set_mode(dir.path(), 0o755);
    for name in RUNNING_FILES {
        set_mode(&dir.path().join(name), 0o644);
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let mode = dir_mode(dir.path());
    assert_eq!(mode, 0o700, "the data dir is {mode:04o}");
    for (name, mode) in file_modes(dir.path()) {
        assert_eq!(mode, 0o600, "{name} is {mode:04o}");
    }
    assert!(store.incident(1, Detail::MESSAGE).await.unwrap().is_some());
}

#[tokio::test]
async fn a_database_planted_as_a_link_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let elsewhere = tmp.path().join("elsewhere.db");
    std::fs::write(&elsewhere, b"").unwrap();
    set_mode(&elsewhere, 0o644);
    std::os::unix::fs::symlink(&elsewhere, data.join(SQLITE_FILE)).unwrap();
    let e = SqliteStore::open(&data).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(dir_mode(&elsewhere), 0o644, "not chmodded through the link");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
    let newer = SCHEMA_VERSION + 1;
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
        [newer.to_string()],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("schema version {newer}")) && err.contains("newer tocsin"),
        "{err}"
    );
}

#[tokio::test]
async fn a_database_from_the_first_schema_is_migrated_and_keeps_its_pending_pages() {
    // What tocsin 0.1's first schema wrote: pages without retry_until, version 1.
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
        conn.execute_batch(include_str!("../schema.sql")).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '1');
             INSERT INTO pages (id, incident_id, at, kind, step, cycle, target, notifier, reason,
                                status, attempts)
             VALUES (7, 1, 1000, 'triggered', 1, 0, 'alice', 'mail', 'step 1', 'pending', 0);
             INSERT INTO events (incident_id, at, kind, actor, detail) VALUES
               (1, 1000, 'acked', 'alice via link 3f2a9c', 'acknowledged'),
               (1, 1001, 'acked', 'bob via sms (kannel)', 'acknowledged'),
               (1, 1002, 'unacked', 'carol via irc', 'unacknowledged'),
               (1, 1003, 'step', 'tocsin', 'step 1');",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let restored = store.restore(Timestamp(0)).await.unwrap();
    assert_eq!(restored.pending_pages.len(), 1);
    assert_eq!(restored.pending_pages[0].id, 7);
    assert_eq!(restored.pending_pages[0].retry_until, None);
    drop(store);
    let conn = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
    let v: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION.to_string());
    // The channel of older history lines is data now: a link used before the upgrade
    // is still known as used.
    let rows: Vec<(String, Option<String>)> = conn
        .prepare("SELECT via, reference FROM events ORDER BY at")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("link".to_string(), Some("3f2a9c".to_string())),
            ("sms".to_string(), Some("kannel".to_string())),
            ("irc".to_string(), None),
            ("engine".to_string(), None),
        ]
    );
}

#[tokio::test]
async fn a_page_keeps_when_its_retries_must_stop_across_a_restart() {
    let (dir, store) = open_temp();
    let mut fx = opening(1, t("2026-11-21T10:00:00Z"));
    let mut p = page(3, 1, t("2026-11-21T10:00:00Z"));
    p.retry_until = Some(t("2026-11-21T10:02:00Z"));
    fx.push(Effect::Page(p));
    store.commit(fx).await.unwrap();
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    let r = store.restore(Timestamp(0)).await.unwrap();
    let p3 = r.pending_pages.iter().find(|p| p.id == 3).unwrap();
    assert_eq!(p3.retry_until, Some(t("2026-11-21T10:02:00Z")));
}

#[tokio::test]
async fn a_source_keeps_its_state_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.source_state("irc.replay").await.unwrap(), None);
        let at = t("2026-11-21T10:00:00Z");
        store
            .save_source_state("irc.replay", r#"{"heard":1}"#.into(), at)
            .await
            .unwrap();
        store
            .save_source_state("irc.replay", r#"{"heard":2}"#.into(), at)
            .await
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        store.source_state("irc.replay").await.unwrap().as_deref(),
        Some(r#"{"heard":2}"#),
        "the last save wins and survives"
    );
    assert_eq!(store.source_state("other").await.unwrap(), None);
}

/// A data dir from before source state existed (schema version 3): opening it keeps
/// every incident and adds what is new.
#[tokio::test]
async fn a_database_from_before_source_state_is_migrated_and_keeps_its_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let at = t("2026-11-21T10:00:00Z");
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.commit(opening(7, at)).await.unwrap();
    }
    let conn = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE source_state; ALTER TABLE incidents DROP COLUMN alerts_truncated; \
         ALTER TABLE pages DROP COLUMN hold_until; \
         UPDATE meta SET value = '3' WHERE key = 'schema_version';",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        store
            .incident(7, Detail::MESSAGE)
            .await
            .unwrap()
            .unwrap()
            .title,
        "DiskFull #7"
    );
    store
        .save_source_state("irc.replay", "{}".into(), at)
        .await
        .unwrap();
    assert_eq!(
        store.source_state("irc.replay").await.unwrap().as_deref(),
        Some("{}")
    );
    let version: String = store
        .reader
        .try_lock()
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
}

#[tokio::test]
async fn corrupt_json_names_the_incident() {
    let (dir, store) = open_temp();
    store
        .commit(opening(9, t("2026-11-21T10:00:00Z")))
        .await
        .unwrap();
    let conn = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
    conn.execute(
        "UPDATE incidents SET escalation = '{not json' WHERE id = 9",
        [],
    )
    .unwrap();
    let err = store.incident(9, Detail::MESSAGE).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("incident 9"), "{err}");
    assert!(store.restore(Timestamp(0)).await.is_err());
}

#[tokio::test]
async fn commits_after_close_are_refused() {
    let (_dir, store) = open_temp();
    store.close();
    let err = store.commit(opening(1, t("2026-11-21T10:00:00Z"))).await;
    assert!(matches!(err, Err(StoreError::Closed)));
    assert!(store.commit(Vec::new()).await.is_ok(), "nothing to write");
    assert!(list(&store, None, 10).await.is_empty(), "reads still work");
}

#[test]
fn readers_see_wal_mode_and_a_small_cache() {
    let (_dir, store) = open_temp();
    for reader in [&store.reader, &store.page_reader] {
        let conn = reader.try_lock().unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let cache: i64 = conn
            .pragma_query_value(None, "cache_size", |r| r.get(0))
            .unwrap();
        assert_eq!(cache, -CACHE_KIB);
    }
}

#[tokio::test]
async fn new_labels_replace_an_incidents_labels_and_come_back_on_restore() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(5, at)).await.unwrap();
    let shared = labels(&[("alertname", "DiskFull")]);
    store
        .commit(vec![Effect::Labels {
            incident: 5,
            labels: shared.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(
        store
            .incident(5, Detail::MESSAGE)
            .await
            .unwrap()
            .unwrap()
            .labels,
        shared
    );
    let restored = store.restore(at).await.unwrap();
    assert_eq!(
        restored.open[0].labels_hash,
        crate::engine::labels_hash(&shared)
    );
}

#[tokio::test]
async fn the_open_incident_of_a_group_is_found_by_source_and_key() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(3, at)).await.unwrap();
    let key = "{}:{alertname=\"DiskFull\",n=\"3\"}";
    let found = store
        .open_incident_of_group("alertmanager", key)
        .await
        .unwrap()
        .expect("open");
    assert_eq!((found.id, found.alerts.len()), (3, 1));
    assert!(
        store
            .open_incident_of_group("irc", key)
            .await
            .unwrap()
            .is_none()
    );
    store
        .commit(vec![Effect::Status(status(3, IncidentState::Resolved, at))])
        .await
        .unwrap();
    assert!(
        store
            .open_incident_of_group("alertmanager", key)
            .await
            .unwrap()
            .is_none(),
        "a resolved incident is not the group's open one"
    );
}

/// How long inbound ids are kept in these tests.
const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

fn inbound_rows(store: &SqliteStore) -> i64 {
    store
        .reader
        .try_lock()
        .unwrap()
        .query_row("SELECT count(*) FROM inbound_seen", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_replayed_sms_id_is_seen_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let at = t("2026-11-21T10:00:00Z");
    let sid = "SM2c2a9bf6bc4c4a1c8f0e4d1b4b9a7e11";
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        assert!(store.first_sight("twilio", sid, at, KEEP).await.unwrap());
        let a_minute_later = at.plus(Duration::from_secs(60));
        assert!(
            !store
                .first_sight("twilio", sid, a_minute_later, KEEP)
                .await
                .unwrap(),
            "the same message again is a replay"
        );
        assert!(
            store.first_sight("kannel", sid, at, KEEP).await.unwrap(),
            "each gateway has its own ids"
        );
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let later = at.plus(Duration::from_secs(29 * 24 * 3600));
    assert!(
        !store.first_sight("twilio", sid, later, KEEP).await.unwrap(),
        "remembered across a restart, for as long as it is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_delivered_twice_at_once_is_new_only_once() {
    let (_dir, store) = open_temp();
    let store = Arc::new(store);
    let at = t("2026-11-21T10:00:00Z");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.first_sight("kannel", "7c9e6679", at, KEEP).await })
        })
        .collect();
    let mut new = 0;
    for task in tasks {
        new += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(new, 1, "exactly one of the deliveries acts");
}

#[tokio::test]
async fn old_sms_ids_are_pruned_a_few_at_a_time_as_new_ones_arrive() {
    let (_dir, store) = open_temp();
    let day0 = t("2026-11-01T10:00:00Z");
    for n in 0..100 {
        assert!(
            store
                .first_sight("twilio", &format!("SM{n}"), day0, KEEP)
                .await
                .unwrap()
        );
    }
    let day29 = day0.plus(Duration::from_secs(29 * 24 * 3600));
    assert!(
        store
            .first_sight("twilio", "SMa", day29, KEEP)
            .await
            .unwrap()
    );
    assert_eq!(inbound_rows(&store), 101, "none is older than KEEP yet");

    let day31 = day0.plus(Duration::from_secs(31 * 24 * 3600));
    assert!(
        store
            .first_sight("twilio", "SMb", day31, KEEP)
            .await
            .unwrap()
    );
    assert_eq!(inbound_rows(&store), 101 - 64 + 1, "one batch pruned");
    assert!(
        store
            .first_sight("twilio", "SMc", day31, KEEP)
            .await
            .unwrap()
    );
    assert_eq!(
        inbound_rows(&store),
        3,
        "the rest pruned; the recent ones kept"
    );
    assert!(
        !store
            .first_sight("twilio", "SMa", day31, KEEP)
            .await
            .unwrap(),
        "an id seen two days ago is still a replay"
    );
}

#[tokio::test]
async fn a_sighting_forgotten_because_the_reply_was_not_recorded_is_new_again() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    assert!(store.first_sight("kannel", "id-1", at, KEEP).await.unwrap());
    store.forget_sight("kannel", "id-1").await.unwrap();
    assert!(
        store.first_sight("kannel", "id-1", at, KEEP).await.unwrap(),
        "the gateway's retry is acted on"
    );
}

/// A data dir from before inbound ids were kept (schema version 4): opening it keeps
/// its incidents and starts remembering.
#[tokio::test]
async fn a_database_from_before_inbound_ids_is_migrated_and_keeps_its_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let at = t("2026-11-21T10:00:00Z");
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.commit(opening(7, at)).await.unwrap();
    }
    let conn = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE inbound_seen; ALTER TABLE incidents DROP COLUMN alerts_truncated; \
         ALTER TABLE pages DROP COLUMN hold_until; \
         UPDATE meta SET value = '4' WHERE key = 'schema_version';",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        store
            .incident(7, Detail::MESSAGE)
            .await
            .unwrap()
            .unwrap()
            .title,
        "DiskFull #7"
    );
    assert!(store.first_sight("twilio", "SM1", at, KEEP).await.unwrap());
    assert!(!store.first_sight("twilio", "SM1", at, KEEP).await.unwrap());
    let version: String = store
        .reader
        .try_lock()
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
}

/// Waits for `read`, failing (instead of hanging) should it be stuck.
async fn answers<T>(what: &str, read: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or_else(|_| panic!("{what} waited behind the held reads"))
}

#[tokio::test]
async fn a_page_read_does_not_wait_behind_api_reads() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(1, at)).await.unwrap();
    let store = Arc::new(store);
    let held = store.hold_shared_reads().await;
    let api = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.incident(1, Detail::FULL).await }
    });

    let paged = answers("the page's read", store.incident_to_page(1)).await;
    assert_eq!(paged.unwrap().expect("incident 1").alerts.len(), 1);
    let open = answers(
        "the IRC alert line's read",
        store.open_incident_of_group("alertmanager", "{}:{alertname=\"DiskFull\",n=\"1\"}"),
    )
    .await;
    assert_eq!(open.unwrap().map(|v| v.id), Some(1));
    let restored = answers("the engine's restore", store.restore(at)).await;
    assert_eq!(restored.unwrap().open.len(), 1);
    assert!(
        !api.is_finished(),
        "the API read was to wait for the held reader"
    );

    drop(held);
    assert!(api.await.unwrap().unwrap().is_some());
}

#[tokio::test]
async fn lists_come_a_page_at_a_time_to_the_oldest() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    for id in 1..=7 {
        store.commit(opening(id, at)).await.unwrap();
    }
    store
        .commit(vec![Effect::Status(status(4, IncidentState::Resolved, at))])
        .await
        .unwrap();
    let pages = |state| {
        let store = &store;
        async move {
            let mut query = ListQuery::newest(state, 3);
            let mut pages = Vec::new();
            loop {
                let page = store.incidents(query).await.unwrap();
                pages.push(page.incidents.iter().map(|v| v.id).collect::<Vec<_>>());
                match page.next {
                    Some(next) => query.before = Some(next),
                    None => return pages,
                }
            }
        }
    };
    assert_eq!(pages(None).await, [vec![7, 6, 5], vec![4, 3, 2], vec![1]]);
    assert_eq!(
        pages(Some(IncidentState::Triggered)).await,
        [vec![7, 6, 5], vec![3, 2, 1]]
    );
    let without_alerts = store.incidents(ListQuery::newest(None, 1)).await.unwrap();
    let v = &without_alerts.incidents[0];
    assert!(v.alerts.is_empty());
    assert_eq!((v.alerts_total, v.alerts_firing), (1, 1));
}

/// Incident 1 with `notes` refused commands after its opening, a second apart.
async fn incident_with_history(store: &SqliteStore, notes: u64) -> Timestamp {
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(1, at)).await.unwrap();
    let mallory = Actor::new("mallory", Via::Irc);
    let effects = (1..=notes)
        .map(|n| {
            Effect::Event(HistoryEvent::new(
                1,
                at.plus(Duration::from_secs(n)),
                EventKind::Refused,
                &mallory,
                format!("refused #{n}"),
            ))
        })
        .collect();
    store.commit(effects).await.unwrap();
    at
}

#[tokio::test]
async fn a_long_history_is_read_from_its_newest_entries_a_page_at_a_time() {
    let (_dir, store) = open_temp();
    incident_with_history(&store, 250).await;
    let mut detail = Detail::FULL;
    let mut pages = Vec::new();
    loop {
        let v = store.incident(1, detail).await.unwrap().unwrap();
        let history = v.history.unwrap();
        pages.push(history.len());
        for pair in history.windows(2) {
            assert!(pair[0].at < pair[1].at, "oldest first within a page");
        }
        if pages.len() == 1 {
            assert_eq!(history.last().unwrap().detail, "refused #250");
        }
        match v.history_next {
            Some(next) => detail.history_before = Some(next),
            None => {
                assert_eq!(history[0].kind, EventKind::Opened, "the oldest comes last");
                assert_eq!(history[1].detail, "refused #1");
                break;
            }
        }
    }
    assert_eq!(pages, [100, 100, 51]);
}

#[tokio::test]
async fn pages_are_capped_with_their_count() {
    let (_dir, store) = open_temp();
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(1, at)).await.unwrap();
    let more = (2..=120).map(|id| Effect::Page(page(id, 1, at))).collect();
    store.commit(more).await.unwrap();
    let v = store.incident(1, Detail::FULL).await.unwrap().unwrap();
    let pages = v.pages.unwrap();
    assert_eq!((pages.len(), v.pages_total), (100, Some(120)));
    assert_eq!(
        (pages[0].id, pages[99].id),
        (21, 120),
        "the most recent, oldest first"
    );
    let brief = store.incident(1, Detail::MESSAGE).await.unwrap().unwrap();
    assert!(brief.history.is_none() && brief.pages.is_none() && brief.pages_total.is_none());
}

#[tokio::test]
async fn an_ack_link_is_found_used_among_a_long_history() {
    let (_dir, store) = open_temp();
    let at = incident_with_history(&store, 50).await;
    assert_eq!(store.acked_by_link(1, "l1nk").await.unwrap(), None);
    let by = Actor::with_reference("alice", Via::Link, "l1nk");
    let acked = at.plus(Duration::from_secs(3600));
    store
        .commit(vec![Effect::Event(HistoryEvent::new(
            1,
            acked,
            EventKind::Acked,
            &by,
            "",
        ))])
        .await
        .unwrap();
    assert_eq!(store.acked_by_link(1, "l1nk").await.unwrap(), Some(acked));
    assert_eq!(store.acked_by_link(1, "other").await.unwrap(), None);
    assert_eq!(store.acked_by_link(2, "l1nk").await.unwrap(), None);
}
