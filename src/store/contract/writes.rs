//! Commits, sightings and retention, as every store makes them.

use std::sync::Arc;

use super::*;

pub(crate) async fn duplicate_delivery_updates_the_alert_row<S: Store>(store: Arc<S>) {
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

/// An engine turn that takes two webhooks about one alert (it fired, then resolved)
/// commits both records at once: the alert ends as the second says.
pub(crate) async fn an_alert_twice_in_one_commit_keeps_its_last_record<S: Store>(store: Arc<S>) {
    let at = t("2026-11-21T10:00:00Z");
    let later = t("2026-11-21T10:05:00Z");
    let mut effects = opening(1, at);
    let Effect::Alert(mut resolved) = alert(1, "a1b2c3d4e5f60718", at) else {
        unreachable!()
    };
    resolved.alert.status = AlertStatus::Resolved;
    resolved.alert.ends_at = Some(later);
    resolved.received_at = later;
    effects.push(Effect::Alert(resolved));
    effects.push(alert(1, "0000000000000002", at));
    store.commit(effects).await.unwrap();

    let view = store.incident(1, Detail::MESSAGE).await.unwrap().unwrap();
    assert_eq!((view.alerts_total, view.alerts_firing), (2, 1));
    let first = view
        .alerts
        .iter()
        .find(|a| a.fingerprint == "a1b2c3d4e5f60718")
        .unwrap();
    assert_eq!(first.status, AlertStatus::Resolved);
    assert_eq!(first.ends_at, Some(later));
}

pub(crate) async fn page_outcomes_are_recorded<S: Store>(store: Arc<S>) {
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
pub(crate) async fn a_call_that_ended_stays_ended_when_its_placing_is_reported_late<S: Store>(
    store: Arc<S>,
) {
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

pub(crate) async fn only_the_last_status_of_a_batch_counts<S: Store>(store: Arc<S>) {
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

pub(crate) async fn concurrent_commits_all_land<S: Store>(store: Arc<S>) {
    let at = t("2026-11-21T10:00:00Z");
    for task in openings_at_once(&store, 50, at) {
        task.await.unwrap().unwrap();
    }
    assert_eq!(list(&*store, None, 100).await.len(), 50);
}

pub(crate) async fn failed_commit_writes_nothing_and_the_store_carries_on<S: Store>(store: Arc<S>) {
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
    assert!(
        matches!(
            err,
            StoreError::Write(_)
                | StoreError::Postgres {
                    kind: crate::store::postgres::PgFailure::Refused,
                    ..
                }
        ),
        "{err}"
    );
    let view = store.incident(1, Detail::FULL).await.unwrap().unwrap();
    assert_eq!(
        view.history.unwrap().len(),
        1,
        "the failed batch left no event"
    );

    store.commit(opening(2, at)).await.unwrap();
    assert_eq!(store.counts().await.unwrap()[&IncidentState::Triggered], 2);
}

pub(crate) async fn new_labels_replace_an_incidents_labels_and_come_back_on_restore<S: Store>(
    store: Arc<S>,
) {
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

pub(crate) async fn a_message_delivered_twice_at_once_is_new_only_once<S: Store>(store: Arc<S>) {
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

pub(crate) async fn a_sighting_forgotten_because_the_reply_was_not_recorded_is_new_again<
    S: Store,
>(
    store: Arc<S>,
) {
    let at = t("2026-11-21T10:00:00Z");
    assert!(store.first_sight("kannel", "id-1", at, KEEP).await.unwrap());
    store.forget_sight("kannel", "id-1").await.unwrap();
    assert!(
        store.first_sight("kannel", "id-1", at, KEEP).await.unwrap(),
        "the gateway's retry is acted on"
    );
}

/// Retention deletes a backlog a batch at a time, never more than asked.
pub(crate) async fn a_backlog_is_deleted_in_batches_of_the_size_asked<S: Store>(store: Arc<S>) {
    resolved_incidents(&*store, 1..=5, t("2026-01-01T10:00:00Z")).await;
    let before = t("2026-06-01T00:00:00Z");
    let mut batches = Vec::new();
    loop {
        let n = store.delete_resolved(before, 2).await.unwrap().incidents;
        batches.push(n);
        if n < 2 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1]);
}

/// After retention deleted the newest incidents, pages, overrides and silences, their
/// ids are not handed out again: an ack link for #2 sent in January must not act on a
/// new #2.
pub(crate) async fn ids_are_not_handed_out_again_after_retention<S: Store>(store: Arc<S>) {
    use crate::engine::WindowRecord;
    let at = t("2026-01-01T10:00:00Z");
    resolved_incidents(&*store, 1..=2, at).await;
    store
        .commit(vec![Effect::Silence(WindowRecord {
            id: 1,
            matchers: vec!["service=\"db\"".into()],
            from: at,
            to: t("2026-01-01T12:00:00Z"),
            comment: "swap".into(),
            by: "alice".into(),
            created_at: at,
        })])
        .await
        .unwrap();
    let gone = store
        .delete_resolved(t("2026-06-01T00:00:00Z"), 100)
        .await
        .unwrap();
    assert_eq!((gone.incidents, gone.pages, gone.windows), (2, 2, 1));
    let r = store.restore(t("2026-06-01T00:00:00Z")).await.unwrap();
    assert_eq!(
        (r.next_incident_id, r.next_page_id, r.next_silence_id),
        (3, 3, 2)
    );
}
