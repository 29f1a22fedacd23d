//! What every store guarantees, as test bodies run against each of them: the SQLite
//! store's tests and the PostgreSQL store's call [`store_contract!`] with a function
//! that opens theirs, so one body checks both.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{
    Actor, AlertIn, AlertRecord, AlertStatus, Effect, Escalation, EventKind, HistoryEvent,
    IncidentId, IncidentOpened, IncidentState, IncidentStatus, LabelSet, Outcome, Page, PageId,
    PageKind, PolicySnapshot, StepSnapshot, Target, Via,
};
use crate::store::{Detail, IncidentView, ListQuery, PageStatus, Store, StoreError};
use crate::time::Timestamp;

/// How long inbound ids are kept in these tests.
pub(crate) const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

pub(crate) fn t(s: &str) -> Timestamp {
    Timestamp::at(s)
}

pub(crate) fn policy() -> Arc<PolicySnapshot> {
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

pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn escalation(at: Timestamp) -> Escalation {
    Escalation {
        pass_start: at,
        next_step: 1,
        next_step_at: Some(at.plus(Duration::from_secs(600))),
        step: 1,
        announced: vec!["console".into()],
        ..Escalation::default()
    }
}

pub(crate) fn status(id: IncidentId, state: IncidentState, at: Timestamp) -> IncidentStatus {
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

pub(crate) fn alert(id: IncidentId, fingerprint: &str, at: Timestamp) -> Effect {
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

pub(crate) fn page(id: PageId, incident: IncidentId, at: Timestamp) -> Page {
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
pub(crate) fn opening(id: IncidentId, at: Timestamp) -> Vec<Effect> {
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
pub(crate) async fn list<S: Store>(
    store: &S,
    state: Option<IncidentState>,
    limit: usize,
) -> Vec<IncidentView> {
    let query = ListQuery {
        alerts: 20,
        ..ListQuery::newest(state, limit)
    };
    store.incidents(query).await.unwrap().incidents
}

pub(crate) async fn webhook_batch_reads_back_whole<S: Store>(store: Arc<S>) {
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

    let list = list(&*store, None, 10).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, 7);
    assert_eq!(list[0].alerts.len(), 1);
    assert!(list[0].history.is_none());
    let counts = store.counts().await.unwrap();
    assert_eq!(counts[&IncidentState::Triggered], 1);
    assert_eq!(counts[&IncidentState::Resolved], 0);
}

pub(crate) async fn incident_list_is_newest_first_filtered_and_limited<S: Store>(store: Arc<S>) {
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
    assert_eq!(ids(list(&*store, None, 3).await), [5, 4, 3]);
    assert_eq!(
        ids(list(&*store, Some(IncidentState::Triggered), 10).await),
        [5, 4, 3, 1]
    );
    assert_eq!(
        ids(list(&*store, Some(IncidentState::Resolved), 10).await),
        [2]
    );
    assert_eq!(store.counts().await.unwrap()[&IncidentState::Resolved], 1);
}

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

pub(crate) async fn restart_resumes_open_escalations_and_unsent_pages<S: Store>(store: Arc<S>) {
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

pub(crate) async fn empty_store_restores_to_first_ids<S: Store>(store: Arc<S>) {
    let r = store.restore(Timestamp(0)).await.unwrap();
    assert!(r.open.is_empty() && r.recent_resolved.is_empty() && r.pending_pages.is_empty());
    assert_eq!((r.next_incident_id, r.next_page_id), (1, 1));
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
    let tasks: Vec<_> = (1..=50)
        .map(|id| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.commit(opening(id, at)).await })
        })
        .collect();
    for task in tasks {
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

pub(crate) async fn the_open_incident_of_a_group_is_found_by_source_and_key<S: Store>(
    store: Arc<S>,
) {
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

pub(crate) async fn lists_come_a_page_at_a_time_to_the_oldest<S: Store>(store: Arc<S>) {
    let at = t("2026-11-21T10:00:00Z");
    for id in 1..=7 {
        store.commit(opening(id, at)).await.unwrap();
    }
    store
        .commit(vec![Effect::Status(status(4, IncidentState::Resolved, at))])
        .await
        .unwrap();
    let pages = |state| {
        let store = &*store;
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
pub(crate) async fn incident_with_history<S: Store>(store: &S, notes: u64) -> Timestamp {
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

pub(crate) async fn a_long_history_is_read_from_its_newest_entries_a_page_at_a_time<S: Store>(
    store: Arc<S>,
) {
    incident_with_history(&*store, 250).await;
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

pub(crate) async fn pages_are_capped_with_their_count<S: Store>(store: Arc<S>) {
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

pub(crate) async fn an_ack_link_is_found_used_among_a_long_history<S: Store>(store: Arc<S>) {
    let at = incident_with_history(&*store, 50).await;
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

/// Retention deletes a backlog a batch at a time, never more than asked.
pub(crate) async fn a_backlog_is_deleted_in_batches_of_the_size_asked<S: Store>(store: Arc<S>) {
    let at = t("2026-01-01T10:00:00Z");
    for id in 1..=5 {
        store.commit(opening(id, at)).await.unwrap();
        store
            .commit(vec![Effect::Status(status(
                id,
                IncidentState::Resolved,
                at,
            ))])
            .await
            .unwrap();
    }
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
    for id in 1..=2 {
        store.commit(opening(id, at)).await.unwrap();
        store
            .commit(vec![Effect::Status(status(
                id,
                IncidentState::Resolved,
                at,
            ))])
            .await
            .unwrap();
    }
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

/// One `#[tokio::test]` per body above, each with a store from `$open` (an async fn
/// answering a guard to keep alive and an `Arc` of the store).
macro_rules! store_contract {
    ($open:path) => {
        $crate::store::contract::store_contract!(@each $open; webhook_batch_reads_back_whole, incident_list_is_newest_first_filtered_and_limited, duplicate_delivery_updates_the_alert_row, page_outcomes_are_recorded, a_call_that_ended_stays_ended_when_its_placing_is_reported_late, restart_resumes_open_escalations_and_unsent_pages, empty_store_restores_to_first_ids, only_the_last_status_of_a_batch_counts, concurrent_commits_all_land, failed_commit_writes_nothing_and_the_store_carries_on, new_labels_replace_an_incidents_labels_and_come_back_on_restore, the_open_incident_of_a_group_is_found_by_source_and_key, a_message_delivered_twice_at_once_is_new_only_once, a_sighting_forgotten_because_the_reply_was_not_recorded_is_new_again, lists_come_a_page_at_a_time_to_the_oldest, a_long_history_is_read_from_its_newest_entries_a_page_at_a_time, pages_are_capped_with_their_count, an_ack_link_is_found_used_among_a_long_history, a_backlog_is_deleted_in_batches_of_the_size_asked, ids_are_not_handed_out_again_after_retention);
    };
    (@each $open:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_guard, store) = $open().await;
                $crate::store::contract::$name(store).await;
            }
        )*
    };
}
pub(crate) use store_contract;
