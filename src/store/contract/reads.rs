//! Round trips and reads every store answers alike.

use std::sync::Arc;
use std::time::Duration;

use super::*;

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

/// A list reads the alerts of many incidents at once: each still shows only its own,
/// firing first, no more than asked, with its own counts.
pub(crate) async fn a_list_shows_each_incidents_own_alerts_firing_first_and_capped<S: Store>(
    store: Arc<S>,
) {
    let at = t("2026-11-21T10:00:00Z");
    store.commit(opening(1, at)).await.unwrap();
    store.commit(opening(2, at)).await.unwrap();
    let Effect::Alert(mut gone) = alert(1, "00000000000000aa", at) else {
        unreachable!()
    };
    gone.alert.status = AlertStatus::Resolved;
    gone.alert.starts_at = t("2026-11-21T09:00:00Z");
    store
        .commit(vec![
            Effect::Alert(gone),
            alert(1, "00000000000000bb", t("2026-11-21T10:01:00Z")),
        ])
        .await
        .unwrap();
    let query = ListQuery {
        alerts: 2,
        ..ListQuery::newest(None, 10)
    };
    let page = store.incidents(query).await.unwrap();
    let shown: Vec<(u64, Vec<&str>, u64, u64)> = page
        .incidents
        .iter()
        .map(|v| {
            (
                v.id,
                v.alerts.iter().map(|a| a.fingerprint.as_str()).collect(),
                v.alerts_total,
                v.alerts_firing,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (2, vec!["a1b2c3d4e5f60718"], 1, 1),
            (1, vec!["a1b2c3d4e5f60718", "00000000000000bb"], 3, 2),
        ]
    );
}
