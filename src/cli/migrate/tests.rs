//! `tocsin migrate` against a real SQLite data dir and a scratch PostgreSQL server.

use std::time::Duration;

use super::*;
use crate::ack_link::{AckKey, Claims};
use crate::engine::{
    Actor, Change, Effect, EventKind, HistoryEvent, IncidentState, Outcome, OverrideRecord,
    WindowRecord,
};
use crate::store::contract::{KEEP, opening, status, t};
use crate::store::postgres::scratch::ScratchServer;
use crate::store::{Detail, SqliteStore, Store};

/// A data dir a year of use could leave: open, acked and resolved incidents, one deleted
/// by retention, a page delivered, history of an ack link, an override, a silence, a
/// source's state, an SMS id.
async fn lived_in_sqlite(dir: &Path) -> SqliteStore {
    let store = SqliteStore::open(dir).unwrap();
    let at = t("2026-11-21T10:00:00Z");
    for id in 1..=4 {
        store.commit(opening(id, at)).await.unwrap();
    }
    let alice = Actor::with_reference("alice", crate::engine::Via::Link, "l1nk");
    store
        .commit(vec![
            Effect::Status(status(2, IncidentState::Acknowledged, at)),
            Effect::Event(HistoryEvent::new(2, at, EventKind::Acked, &alice, "")),
            Effect::Status(status(3, IncidentState::Resolved, at)),
            Effect::Status(status(
                4,
                IncidentState::Resolved,
                t("2026-01-01T00:00:00Z"),
            )),
            Effect::PageDone {
                page: 1,
                at,
                outcome: Outcome::Delivered { attempts: 1 },
            },
            Effect::Override(OverrideRecord {
                id: 1,
                schedule: "primary".into(),
                change: Change::Add {
                    contact: "dana".into(),
                },
                from: at,
                to: at.plus(Duration::from_secs(3600)),
                by: "alice".into(),
                created_at: at,
            }),
            Effect::Silence(WindowRecord {
                id: 1,
                matchers: vec!["service=\"db\"".into()],
                from: at,
                to: at.plus(Duration::from_secs(7200)),
                comment: "swap".into(),
                by: "alice".into(),
                created_at: at,
            }),
        ])
        .await
        .unwrap();
    // Retention took incident 4: its id must not come back.
    let gone = store
        .delete_resolved(t("2026-06-01T00:00:00Z"), 100)
        .await
        .unwrap();
    assert_eq!(gone.incidents, 1);
    store
        .save_source_state("irc.replay", r#"{"mark":7}"#.into(), at)
        .await
        .unwrap();
    assert!(store.first_sight("twilio", "SM1", at, KEEP).await.unwrap());
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_moved_to_postgres_restores_the_same_and_its_ack_links_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let at = t("2026-11-21T10:00:00Z");
    let sqlite = lived_in_sqlite(dir.path()).await;
    let before = format!(
        "{:?}",
        sqlite.restore(t("2026-11-01T00:00:00Z")).await.unwrap()
    );
    let acked = format!("{:?}", sqlite.incident(2, Detail::FULL).await.unwrap());
    let link = AckKey::load_or_create(dir.path()).unwrap().sign(&Claims {
        incidents: vec![2],
        contact: Some("alice".into()),
        expires: at.plus(Duration::from_secs(86_400)),
    });
    drop(sqlite);

    let cfg = ScratchServer::shared().fresh_config().await;
    let copied = migrate(dir.path(), cfg.clone()).await.unwrap();
    assert!(copied.ack_key);
    assert!(copied.tables.contains(&("incidents", 3)), "{copied}");
    assert!(
        copied.to_string().contains("ack link key: copied"),
        "{copied}"
    );

    let pg = PostgresStore::connect(cfg.clone(), Arc::new(Fence::new()))
        .await
        .unwrap();
    let after = pg.restore(t("2026-11-01T00:00:00Z")).await.unwrap();
    assert_eq!(format!("{after:?}"), before, "the engine resumes as it was");
    assert_eq!(after.next_incident_id, 5, "retention's mark came along");
    assert_eq!(
        format!("{:?}", pg.incident(2, Detail::FULL).await.unwrap()),
        acked,
        "history and pages as they were"
    );
    assert_eq!(pg.acked_by_link(2, "l1nk").await.unwrap(), Some(at));
    assert_eq!(
        pg.source_state("irc.replay").await.unwrap().as_deref(),
        Some(r#"{"mark":7}"#)
    );
    assert!(
        !pg.first_sight("twilio", "SM1", at, KEEP).await.unwrap(),
        "an SMS already acted on stays a replay"
    );
    let key: [u8; 32] = pg.ack_key_bytes().await.unwrap().try_into().unwrap();
    let claims = AckKey::from_bytes(key).verify(&link, at).unwrap();
    assert_eq!(
        claims.incidents,
        [2],
        "an ack link sent before the move works after it"
    );

    // History goes on after the copied entries.
    let epoch = pg
        .try_lead("a", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    pg.fence()
        .hold(epoch, tokio::time::Instant::now() + Duration::from_secs(60));
    pg.commit(vec![Effect::Event(HistoryEvent::by_engine(
        1,
        at,
        EventKind::Received,
        "",
    ))])
    .await
    .unwrap();

    let again = migrate(dir.path(), cfg).await.unwrap_err();
    assert!(format!("{again:#}").contains("not empty"), "{again:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_without_a_store_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ScratchServer::shared().fresh_config().await;
    let err = migrate(dir.path(), cfg.clone()).await.unwrap_err();
    assert!(format!("{err:#}").contains("no SQLite store"), "{err:#}");
    let pg = PostgresStore::connect(cfg, Arc::new(Fence::new()))
        .await
        .unwrap();
    assert!(
        pg.restore(t("2026-01-01T00:00:00Z"))
            .await
            .unwrap()
            .open
            .is_empty()
    );
}
