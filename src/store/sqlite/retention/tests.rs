//! Retention against a real SQLite file: what goes, what stays, ids, and the file giving
//! its space back.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::super::SqliteStore;
use super::super::tests::{open_temp, opening, status, t};
use crate::engine::{Effect, IncidentId, IncidentState};
use crate::store::{Deleted, Detail, SQLITE_FILE, Store};
use crate::time::Timestamp;

fn resolved(id: IncidentId, at: Timestamp) -> Effect {
    Effect::Status(status(id, IncidentState::Resolved, at))
}

/// Rows of `table` that belong to incident `id`.
fn rows_of(store: &SqliteStore, table: &str, id: IncidentId) -> i64 {
    let column = if table == "incidents" {
        "id"
    } else {
        "incident_id"
    };
    store
        .reader
        .try_lock()
        .expect("no read in flight")
        .query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1"),
            [id as i64],
            |r| r.get(0),
        )
        .unwrap()
}

fn pragma(store: &SqliteStore, name: &str) -> i64 {
    store
        .reader
        .try_lock()
        .expect("no read in flight")
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn an_old_resolved_incident_goes_with_its_alerts_history_and_pages_and_open_ones_stay() {
    let (_dir, store) = open_temp();
    let opened = t("2026-01-01T10:00:00Z");
    for id in 1..=3 {
        store.commit(opening(id, opened)).await.unwrap();
    }
    // 2 stays open however old; 3 resolved after the cut-off.
    store
        .commit(vec![
            resolved(1, t("2026-01-01T11:00:00Z")),
            resolved(3, t("2026-03-01T00:00:00Z")),
        ])
        .await
        .unwrap();

    let deleted = store
        .delete_resolved(t("2026-02-01T00:00:00Z"), 100)
        .await
        .unwrap();

    assert_eq!(
        pragma(&store, "auto_vacuum"),
        2,
        "a new file reuses its space"
    );
    assert_eq!(
        deleted,
        Deleted {
            incidents: 1,
            alerts: 1,
            events: 1,
            pages: 1,
            windows: 0,
        }
    );
    for table in ["incidents", "alerts", "events", "pages"] {
        assert_eq!(rows_of(&store, table, 1), 0, "{table} of incident 1");
        assert_eq!(rows_of(&store, table, 2), 1, "{table} of open incident 2");
        assert_eq!(rows_of(&store, table, 3), 1, "{table} of incident 3");
    }
    assert!(store.incident(1, Detail::FULL).await.unwrap().is_none());
}

#[tokio::test]
async fn ids_are_not_handed_out_again_after_the_newest_incidents_were_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let at = t("2026-01-01T10:00:00Z");
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        for id in 1..=2 {
            store.commit(opening(id, at)).await.unwrap();
            store.commit(vec![resolved(id, at)]).await.unwrap();
        }
        let gone = store
            .delete_resolved(t("2026-06-01T00:00:00Z"), 100)
            .await
            .unwrap();
        assert_eq!(gone.incidents, 2);
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let r = store.restore(t("2026-06-01T00:00:00Z")).await.unwrap();
    // An ack link for #2 sent in January must not act on a new #2.
    assert_eq!((r.next_incident_id, r.next_page_id), (3, 3));
}

#[tokio::test]
async fn a_sweep_keeps_what_the_engine_still_remembers_and_deletes_what_is_past_retention() {
    let (_dir, store) = open_temp();
    let now = t("2026-06-01T12:00:00Z");
    let ninety_days = Duration::from_secs(90 * 24 * 3600);
    let cases = [
        (1, now.minus(Duration::from_secs(91 * 24 * 3600))),
        (2, now.minus(Duration::from_secs(89 * 24 * 3600))),
        (3, now.minus(Duration::from_secs(2 * 3600))),
    ];
    for (id, at) in cases {
        store.commit(opening(id, at)).await.unwrap();
        store.commit(vec![resolved(id, at)]).await.unwrap();
    }
    let stop = CancellationToken::new();

    let deleted = crate::runtime::retention::sweep(&store, now, ninety_days, &stop)
        .await
        .unwrap();
    assert_eq!(deleted.incidents, 1);
    assert_eq!(rows_of(&store, "incidents", 1), 0);
    assert_eq!(rows_of(&store, "incidents", 2), 1);

    // However short a retention a caller passes, an incident resolved within the day
    // the engine remembers it stays: a late duplicate of its alerts must find it.
    let deleted = crate::runtime::retention::sweep(&store, now, Duration::from_secs(3600), &stop)
        .await
        .unwrap();
    assert_eq!(deleted.incidents, 1, "incident 2, resolved 89 days ago");
    assert_eq!(rows_of(&store, "incidents", 3), 1);
}

#[tokio::test]
async fn a_database_from_before_gets_incremental_vacuum_and_gives_deleted_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let at = t("2026-01-01T10:00:00Z");
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        for id in 1..=400 {
            let mut fx = opening(id, at);
            fx.push(resolved(id, at));
            store.commit(fx).await.unwrap();
        }
    }
    // As an older tocsin left it: no auto_vacuum.
    let conn = rusqlite::Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
    conn.execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;")
        .unwrap();
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 0);
    drop(conn);

    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(pragma(&store, "auto_vacuum"), 2, "incremental");
    assert_eq!(rows_of(&store, "incidents", 400), 1, "nothing lost");
    let pages_before = pragma(&store, "page_count");

    let deleted = crate::runtime::retention::sweep(
        &store,
        t("2026-06-01T00:00:00Z"),
        Duration::from_secs(90 * 24 * 3600),
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    assert_eq!(deleted.incidents, 400);
    assert_eq!(pragma(&store, "freelist_count"), 0);
    let pages_after = pragma(&store, "page_count");
    assert!(
        pages_after * 2 < pages_before,
        "the file should shrink: {pages_before} pages before, {pages_after} after"
    );
}

#[tokio::test]
async fn an_override_and_a_silence_that_ended_long_ago_go_and_their_ids_are_not_reused() {
    use crate::engine::{Change, OverrideRecord, WindowRecord};
    let dir = tempfile::tempdir().unwrap();
    let made = t("2026-01-01T10:00:00Z");
    let window = |id, to: &str| WindowRecord {
        id,
        matchers: vec!["service=\"db\"".into()],
        from: made,
        to: t(to),
        comment: "swap".into(),
        by: "alice".into(),
        created_at: made,
    };
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .commit(vec![
                Effect::Override(OverrideRecord {
                    id: 1,
                    schedule: "primary".into(),
                    change: Change::Add {
                        contact: "dana".into(),
                    },
                    from: made,
                    to: t("2026-01-02T10:00:00Z"),
                    by: "alice".into(),
                    created_at: made,
                }),
                Effect::Silence(window(1, "2026-01-01T12:00:00Z")),
                // Still in force at the cut-off: it stays.
                Effect::Silence(window(2, "2026-12-01T00:00:00Z")),
                Effect::Maintenance(window(1, "2026-01-01T11:00:00Z")),
            ])
            .await
            .unwrap();
        let gone = store
            .delete_resolved(t("2026-06-01T00:00:00Z"), 100)
            .await
            .unwrap();
        assert_eq!(gone.windows, 3, "{gone:?}");
        assert_eq!(gone.incidents, 0);
        let left = store.silences(t("2026-01-01T00:00:00Z")).await.unwrap();
        assert_eq!(left.iter().map(|s| s.id).collect::<Vec<_>>(), [2]);
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let r = store.restore(t("2026-06-01T00:00:00Z")).await.unwrap();
    assert_eq!(
        (r.next_override_id, r.next_silence_id, r.next_maintenance_id),
        (2, 3, 2)
    );
}
