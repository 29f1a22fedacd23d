//! The store against a real SQLite file in a temp dir. What every store guarantees is
//! in `store::contract`, run here against SQLite.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::Detail;
use crate::store::contract::{KEEP, list, openings_at_once, page, store_contract};
pub(super) use crate::store::contract::{opening, status, t};

/// A store in a new temp dir, for [`store_contract!`].
async fn open_arc() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let (dir, store) = open_temp();
    (dir, Arc::new(store))
}

store_contract!(open_arc);

pub(super) fn open_temp() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
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
    let tasks = openings_at_once(&store, 50, at);
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
    assert_eq!(list(&*store, None, 100).await.len(), 50);
    assert_eq!(store.restore(at).await.unwrap().pending_pages.len(), 50);
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
