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

mod reads;
mod writes;
pub(crate) use reads::*;
pub(crate) use writes::*;

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

/// Incidents `ids`, each opened and resolved at `at` (what retention deletes).
pub(crate) async fn resolved_incidents<S: Store>(
    store: &S,
    ids: std::ops::RangeInclusive<IncidentId>,
    at: Timestamp,
) {
    for id in ids {
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
}

/// Incidents 1 to `n` opened by `n` commits all sent at once, as many webhooks at once
/// send them; each task answers its commit's result.
pub(crate) fn openings_at_once<S: Store>(
    store: &Arc<S>,
    n: IncidentId,
    at: Timestamp,
) -> Vec<tokio::task::JoinHandle<Result<(), crate::store::StoreError>>> {
    (1..=n)
        .map(|id| {
            let store = Arc::clone(store);
            tokio::spawn(async move { store.commit(opening(id, at)).await })
        })
        .collect()
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

/// One `#[tokio::test]` per body of `reads.rs` and `writes.rs`, each with a store from
/// `$open` (an async fn answering a guard to keep alive and an `Arc` of the store).
macro_rules! store_contract {
    ($open:path) => {
        $crate::store::contract::store_contract!(@each $open;
            webhook_batch_reads_back_whole,
            incident_list_is_newest_first_filtered_and_limited,
            duplicate_delivery_updates_the_alert_row,
            an_alert_twice_in_one_commit_keeps_its_last_record,
            page_outcomes_are_recorded,
            a_call_that_ended_stays_ended_when_its_placing_is_reported_late,
            restart_resumes_open_escalations_and_unsent_pages,
            empty_store_restores_to_first_ids,
            only_the_last_status_of_a_batch_counts,
            concurrent_commits_all_land,
            failed_commit_writes_nothing_and_the_store_carries_on,
            new_labels_replace_an_incidents_labels_and_come_back_on_restore,
            the_open_incident_of_a_group_is_found_by_source_and_key,
            a_message_delivered_twice_at_once_is_new_only_once,
            a_sighting_forgotten_because_the_reply_was_not_recorded_is_new_again,
            lists_come_a_page_at_a_time_to_the_oldest,
            a_list_shows_each_incidents_own_alerts_firing_first_and_capped,
            a_long_history_is_read_from_its_newest_entries_a_page_at_a_time,
            pages_are_capped_with_their_count,
            an_ack_link_is_found_used_among_a_long_history,
            a_backlog_is_deleted_in_batches_of_the_size_asked,
            ids_are_not_handed_out_again_after_retention,
        );
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
