//! The PostgreSQL store against a real server (a [`ScratchServer`] per test process, a
//! fresh database per test). What every store guarantees runs here through
//! `store::contract`; below are what sharing adds: fencing, the lease, the inbox,
//! migrations racing, the shared ack key, outages.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::scratch::ScratchServer;
use super::*;
use crate::config::Secret;
use crate::store::contract::{opening, store_contract, t};

const LEASE: Duration = Duration::from_secs(60);

/// A store on a fresh database.
async fn store_on(cfg: PgConfig) -> PostgresStore {
    PostgresStore::connect(cfg, Arc::new(Fence::new()))
        .await
        .expect("connect to the scratch server")
}

/// Takes the lease for `store` and holds it in its fence, as the leader's runtime does.
async fn lead(store: &PostgresStore, holder: &str) -> u64 {
    let epoch = store
        .try_lead(holder, LEASE)
        .await
        .unwrap()
        .expect("the lease is free");
    store
        .fence()
        .hold(epoch, tokio::time::Instant::now() + LEASE);
    epoch
}

/// A leading store on a fresh database, for [`store_contract!`].
async fn leader_store() -> ((), Arc<PostgresStore>) {
    let store = store_on(ScratchServer::shared().fresh_config().await).await;
    lead(&store, "a").await;
    ((), Arc::new(store))
}

store_contract!(leader_store);

/// Two instances on one database: (a, b), neither leading yet.
async fn two_instances() -> (PostgresStore, PostgresStore) {
    let cfg = ScratchServer::shared().fresh_config().await;
    let a = store_on(cfg.clone()).await;
    let b = store_on(cfg).await;
    (a, b)
}

/// A connection of its own to `store`'s database, as psql would be.
async fn raw(store: &PostgresStore) -> deadpool_postgres::Client {
    store.writes.get().await.unwrap()
}

/// The lease ran out (the leader was paused or cut off past it).
async fn expire_lease(store: &PostgresStore) {
    raw(store)
        .await
        .execute(
            "UPDATE lease SET expires_at = now() - interval '1 second' WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_leader_that_wakes_after_a_takeover_commits_nothing() {
    let (a, b) = two_instances().await;
    let at = t("2026-11-21T10:00:00Z");
    let old = lead(&a, "a").await;
    a.commit(opening(1, at)).await.unwrap();

    // a is paused past its lease; b takes over.
    expire_lease(&a).await;
    let new = lead(&b, "b").await;
    assert_eq!(new, old + 1);

    let err = a.commit(opening(2, at)).await.unwrap_err();
    assert_fenced(&err, old, new, "the old leader, after the takeover");
    assert!(
        err.to_string().contains("another instance leads now"),
        "{err}"
    );
    assert!(
        b.incident(2, Detail::SUMMARY).await.unwrap().is_none(),
        "the fenced commit wrote nothing"
    );
    assert!(
        !a.renew(old, LEASE).await.unwrap(),
        "a learns it lost the lease"
    );
    b.commit(opening(2, at)).await.unwrap();
    assert_eq!(b.restore(at).await.unwrap().open.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_commits_nothing() {
    let (a, b) = two_instances().await;
    let err = a
        .commit(opening(1, t("2026-11-21T10:00:00Z")))
        .await
        .unwrap_err();
    assert_fenced(&err, 0, 0, "before anyone led");
    lead(&a, "a").await;
    let err = b
        .commit(opening(1, t("2026-11-21T10:00:00Z")))
        .await
        .unwrap_err();
    assert_fenced(&err, 0, 1, "a follower, once a leads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_for_the_old_leaders_commit_in_flight() {
    let (a, b) = two_instances().await;
    let at = t("2026-11-21T10:00:00Z");
    let old = lead(&a, "a").await;
    expire_lease(&a).await;
    // The old leader's commit, caught between its epoch check and its COMMIT.
    let mut in_flight = raw(&a).await;
    let tx = in_flight.transaction().await.unwrap();
    let epoch: i64 = tx
        .query_one("SELECT epoch FROM lease WHERE id = 1 FOR SHARE", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(epoch as u64, old);
    super::write::effects(&tx, &opening(9, at)).await.unwrap();

    let b = Arc::new(b);
    let takeover = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.try_lead("b", LEASE).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !takeover.is_finished(),
        "the takeover waits for the commit that checked the old epoch"
    );
    tx.commit().await.unwrap();
    let new = takeover.await.unwrap().unwrap();
    assert_eq!(new, Some(old + 1));
    assert!(
        b.incident(9, Detail::SUMMARY).await.unwrap().is_some(),
        "the commit in flight landed before the takeover, not after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_taken_only_once_expired_or_released() {
    let (a, b) = two_instances().await;
    assert_eq!(
        a.leader().await.unwrap(),
        LeaderRow {
            holder: None,
            epoch: 0,
            expires_in_ms: -1
        }
    );
    assert_eq!(a.try_lead("a", LEASE).await.unwrap(), Some(1));
    assert_eq!(b.try_lead("b", LEASE).await.unwrap(), None, "a holds it");
    let leader = b.leader().await.unwrap();
    assert_eq!((leader.holder.as_deref(), leader.epoch), (Some("a"), 1));
    assert!(
        leader.expires_in_ms > 50_000 && leader.expires_in_ms <= 60_000,
        "{leader:?}"
    );
    assert!(a.renew(1, LEASE).await.unwrap());

    // A graceful stop: b need not wait for the lease to run out.
    a.release(1).await.unwrap();
    assert!(b.leader().await.unwrap().expires_in_ms <= 0);
    assert_eq!(b.try_lead("b", LEASE).await.unwrap(), Some(2));
    assert!(!a.renew(1, LEASE).await.unwrap(), "b took over");
    assert!(b.renew(2, LEASE).await.unwrap());

    // b dies: its lease runs out by the database's clock, then a takes over.
    let short = Duration::from_millis(300);
    assert!(b.renew(2, short).await.unwrap());
    assert_eq!(
        a.try_lead("a", LEASE).await.unwrap(),
        None,
        "not yet expired"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.try_lead("a", LEASE).await.unwrap(), Some(3));
    // An old leader that was cut off renews nothing, even with its lease expired.
    assert!(!b.renew(2, LEASE).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_listed_as_they_last_said_they_were_alive() {
    let (a, _b) = two_instances().await;
    let mut me = InstanceRow {
        name: "db1".into(),
        holder: "db1/4242".into(),
        addr: "10.0.0.1:9797".into(),
        started_at: t("2026-11-21T10:00:00Z"),
        seen_at: t("2026-11-21T10:00:00Z"),
        epoch: 0,
    };
    a.heartbeat(&me).await.unwrap();
    me.seen_at = t("2026-11-21T10:00:05Z");
    me.epoch = 3;
    a.heartbeat(&me).await.unwrap();
    let other = InstanceRow {
        name: "db2".into(),
        ..me.clone()
    };
    a.heartbeat(&other).await.unwrap();
    assert_eq!(a.instances().await.unwrap(), [me, other]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_inputs_are_consumed_in_order_together_with_their_effects() {
    let (leader, follower) = two_instances().await;
    lead(&leader, "a").await;
    let at = t("2026-11-21T10:00:00Z");
    let wake = leader.inbox_wakeup().expect("PostgreSQL has an inbox");
    // Let the listener connect before the first NOTIFY.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = follower
        .forward("b", r#"{"webhook":1}"#.into(), at)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), wake.notified())
        .await
        .expect("the leader is woken by the follower's forward");
    let second = follower
        .forward("b", r#"{"webhook":2}"#.into(), at)
        .await
        .unwrap();
    assert!(second > first);
    assert_eq!(follower.forwarded_result(first).await.unwrap(), None);

    let pending = leader.inbox(10).await.unwrap();
    assert_eq!(
        pending,
        [
            (first, r#"{"webhook":1}"#.to_string()),
            (second, r#"{"webhook":2}"#.to_string())
        ]
    );
    // A fenced leader marks nothing done either.
    let err = follower
        .commit_consumed(opening(1, at), vec![(first, "ok".into())])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    assert_eq!(leader.inbox(10).await.unwrap().len(), 2);

    leader
        .commit_consumed(opening(1, at), vec![(first, r#"{"ok":true}"#.into())])
        .await
        .unwrap();
    assert!(leader.incident(1, Detail::SUMMARY).await.unwrap().is_some());
    assert_eq!(
        leader.inbox(10).await.unwrap(),
        [(second, r#"{"webhook":2}"#.to_string())]
    );
    assert_eq!(
        follower.forwarded_result(first).await.unwrap().as_deref(),
        Some(r#"{"ok":true}"#)
    );
    assert_eq!(follower.forwarded_result(second).await.unwrap(), None);
}

#[tokio::test]
async fn a_store_without_an_inbox_refuses_to_mark_inbox_rows_done() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = crate::store::SqliteStore::open(dir.path()).unwrap();
    assert!(sqlite.inbox_wakeup().is_none());
    assert!(sqlite.inbox(10).await.unwrap().is_empty());
    let err = sqlite
        .commit_consumed(Vec::new(), vec![(1, "ok".into())])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoInbox), "{err}");
    sqlite
        .commit_consumed(opening(1, t("2026-11-21T10:00:00Z")), Vec::new())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_starting_together_migrate_once() {
    let cfg = ScratchServer::shared().fresh_config().await;
    let (a, b) = tokio::join!(store_on(cfg.clone()), store_on(cfg.clone()));
    let client = raw(&a).await;
    let versions: i64 = client
        .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, schema::SCHEMA_VERSION);
    let leases: i64 = client
        .query_one("SELECT COUNT(*) FROM lease", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(leases, 1);
    drop(b);

    // A database a newer tocsin migrated is refused, not misread.
    client
        .execute("INSERT INTO schema_migrations (version) VALUES (99)", &[])
        .await
        .unwrap();
    let err = PostgresStore::connect(cfg, Arc::new(Fence::new()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer tocsin"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_asking_for_the_ack_key_at_once_get_the_same_key() {
    let (a, b) = two_instances().await;
    let (ka, kb) = tokio::join!(a.ack_key_bytes(), b.ack_key_bytes());
    let (ka, kb) = (ka.unwrap(), kb.unwrap());
    assert_eq!(ka.len(), 32);
    assert_eq!(ka, kb);
    assert_eq!(a.ack_key_bytes().await.unwrap(), ka, "kept");
    // A link signed on one instance is verified on the other.
    let claims = crate::ack_link::Claims {
        incidents: vec![7],
        contact: Some("alice".into()),
        expires: t("2026-11-22T10:00:00Z"),
    };
    let link = a.ack_key().await.unwrap().sign(&claims);
    let verified = b
        .ack_key()
        .await
        .unwrap()
        .verify(&link, t("2026-11-21T10:00:00Z"));
    assert_eq!(verified.unwrap(), claims);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart_of_the_instance() {
    let cfg = ScratchServer::shared().fresh_config().await;
    let at = t("2026-11-21T10:00:00Z");
    {
        let store = store_on(cfg.clone()).await;
        lead(&store, "a").await;
        store.commit(opening(41, at)).await.unwrap();
        store
            .save_source_state("irc.replay", r#"{"mark":3}"#.into(), at)
            .await
            .unwrap();
    }
    let store = store_on(cfg).await;
    assert_eq!(store.restore(at).await.unwrap().next_incident_id, 42);
    assert_eq!(
        store.source_state("irc.replay").await.unwrap().as_deref(),
        Some(r#"{"mark":3}"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_read_does_not_wait_behind_api_reads() {
    let (_, store) = leader_store().await;
    store
        .commit(opening(1, t("2026-11-21T10:00:00Z")))
        .await
        .unwrap();
    // Every connection of the API's pool taken by reads that never end.
    let mut held = Vec::new();
    for _ in 0..POOL_SIZES.2 {
        held.push(store.reads.get().await.unwrap());
    }
    let paged = tokio::time::timeout(Duration::from_secs(5), store.incident_to_page(1))
        .await
        .expect("the page's read waited behind the API's reads");
    assert_eq!(paged.unwrap().expect("incident 1").alerts.len(), 1);
}

#[tokio::test]
async fn an_unreachable_database_fails_fast_and_names_no_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = PgConfig::parse(
        &format!("postgres://tocsin@127.0.0.1:{port}/tocsin"),
        Some(Secret::new("hunter2")),
    )
    .unwrap();
    let started = Instant::now();
    let err = PostgresStore::connect(cfg, Arc::new(Fence::new()))
        .await
        .unwrap_err();
    assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(2));
    assert_failure(&err, PgFailure::Unreachable);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("unreachable"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_answers_no_is_told_apart_from_one_that_is_down() {
    let server = ScratchServer::shared();
    let cfg = PgConfig::parse(
        &server.url_of("no_such_database"),
        Some(Secret::new("hunter2")),
    )
    .unwrap();
    let err = PostgresStore::connect(cfg, Arc::new(Fence::new()))
        .await
        .unwrap_err();
    assert_failure(&err, PgFailure::Refused);
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("no_such_database"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_fails_commits_fast_and_they_land_again_once_it_is_back() {
    let server = ScratchServer::new();
    let store = store_on(PgConfig::parse(&server.url(), None).unwrap()).await;
    lead(&store, "a").await;
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(1, at)).await.unwrap();

    server.stop_immediate();
    let started = Instant::now();
    let err = store.commit(opening(2, at)).await.unwrap_err();
    assert_failure(&err, PgFailure::Unreachable);
    assert!(
        started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(2),
        "failed after {:?}",
        started.elapsed()
    );

    server.start();
    // The pool's connections died with the server; the next commits get new ones.
    let mut landed = false;
    for _ in 0..10 {
        if store.commit(opening(2, at)).await.is_ok() {
            landed = true;
            break;
        }
    }
    assert!(landed, "commits land again once the database is back");
    assert_eq!(store.restore(at).await.unwrap().open.len(), 2);
}

/// A CA and a certificate for `localhost` signed by it, made with openssl in `dir`:
/// (ca.pem, server.crt, server.key).
fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=tocsin test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_certificate_and_the_name_and_require_only_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let server = ScratchServer::new();
    server.enable_tls(&cert, &key);
    let port = server.port();
    let connect = |url: String| async move {
        let cfg = PgConfig::parse(&url, None).unwrap();
        PostgresStore::connect(cfg, Arc::new(Fence::new())).await
    };
    let root = ca.display();

    let store = connect(format!(
        "postgres://tocsin@localhost:{port}/tocsin?sslmode=verify-full&sslrootcert={root}"
    ))
    .await
    .expect("the certificate verifies for localhost");
    let tls: bool = store
        .reads
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(tls, "the connection is encrypted");

    // The certificate names localhost, not 127.0.0.1: verify-full refuses it.
    let err = connect(format!(
        "postgres://tocsin@127.0.0.1:{port}/tocsin?sslmode=verify-full&sslrootcert={root}"
    ))
    .await
    .unwrap_err();
    assert_failure(&err, PgFailure::Refused);
    // Nor is a private CA trusted without sslrootcert.
    let err = connect(format!(
        "postgres://tocsin@localhost:{port}/tocsin?sslmode=verify-full"
    ))
    .await
    .unwrap_err();
    assert_failure(&err, PgFailure::Refused);
    // require encrypts without checking who answers.
    connect(format!(
        "postgres://tocsin@127.0.0.1:{port}/tocsin?sslmode=require"
    ))
    .await
    .expect("require does not check the name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_fails_a_commit_in_seconds_and_commits_land_once_it_thaws() {
    let server = ScratchServer::new();
    let mut cfg = PgConfig::parse(&server.url(), None).unwrap();
    cfg.statement_timeout = Duration::from_millis(500);
    let limit = cfg.answer_timeout();
    let store = store_on(cfg).await;
    lead(&store, "a").await;
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(1, at)).await.unwrap();

    server.pause();
    let started = Instant::now();
    let err = store.commit(opening(2, at)).await.unwrap_err();
    let waited = started.elapsed();
    server.resume();
    assert_failure(&err, PgFailure::Unreachable);
    assert!(
        waited >= limit && waited < limit + Duration::from_secs(2),
        "gave up after {waited:?}"
    );
    assert!(
        store.incident(2, Detail::SUMMARY).await.unwrap().is_none(),
        "the commit that got no answer wrote nothing"
    );
    store.commit(opening(2, at)).await.unwrap();
    assert_eq!(store.restore(at).await.unwrap().open.len(), 2);
}

/// `err` is a PostgreSQL failure of `kind` (unreachable, or refused by the server).
#[track_caller]
fn assert_failure(err: &StoreError, kind: PgFailure) {
    assert!(
        matches!(err, StoreError::Postgres { kind: k, .. } if *k == kind),
        "expected a {kind:?} failure, got: {err}"
    );
}

/// `err` refuses a commit made at epoch `held` while the lease is at `current`.
#[track_caller]
fn assert_fenced(err: &StoreError, held: u64, current: u64, when: &str) {
    assert!(
        matches!(err, StoreError::Fenced { held: h, current: c } if (*h, *c) == (held, current)),
        "{when}: expected Fenced {{ held: {held}, current: {current} }}, got: {err}"
    );
}
