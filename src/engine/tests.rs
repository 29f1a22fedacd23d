//! Escalation as tables of (time, input) → pages, with literal timestamps.
//!
//! Pages are written `target:notifier:kind:s<step>c<pass>`; `alice:sms:escalated:s3c0`
//! is alice's SMS method paged by step 3 in the first pass.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config;
use crate::time::Timestamp;

const CONFIG: &str = r#"
[defaults]
ack_timeout = "30m"

[notifiers.console]
type = "log"
[notifiers.push]
type = "log"
[notifiers.sms]
type = "log"
[notifiers.hook]
type = "webhook"
url = "http://127.0.0.1:9/page"

[contacts.alice]
methods = [
  { notifier = "push", topic = "alice-pager" },
  { notifier = "sms", to = "+15550100", after = "2m" },
]
[contacts.bob]
methods = [{ notifier = "sms", to = "+15550111" }]

[policies.default]
repeat = 1
steps = [
  { after = "0s", notify = ["console", "alice"] },
  { after = "10m", notify = ["bob"] },
  { after = "20m", notify = ["alice", "bob", "hook"] },
]

[policies.db]
steps = [{ after = "0s", notify = ["bob"] }]

[[routes]]
matchers = ['team="db"', 'severity=~"crit.*"']
policy = "db"
[[routes]]
policy = "default"
"#;

fn escalation_config(text: &str) -> Arc<EscalationConfig> {
    let cfg = config::load_str(text, None).unwrap_or_else(|e| panic!("{e}"));
    Arc::new(EscalationConfig::from_config(&cfg))
}

fn t(hms: &str) -> Timestamp {
    Timestamp::at(&format!("2026-11-21T{hms}Z"))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(fp: &str, status: AlertStatus, starts: &str) -> AlertIn {
    AlertIn {
        fingerprint: fp.to_string(),
        status,
        starts_at: t(starts),
        ends_at: None,
        labels: LabelSet::from_map(&labels(&[("alertname", "DiskFull"), ("fp", fp)])),
        annotations: LabelSet::default(),
        generator_url: String::new(),
    }
}

fn batch(group: &str, alerts: Vec<AlertIn>) -> Input {
    Input::Alerts(AlertBatch {
        source: "alertmanager".into(),
        group_key: group.into(),
        labels: labels(&[("alertname", "DiskFull"), ("severity", "critical")]),
        title: "DiskFull".into(),
        alerts,
        truncated: 0,
        policy: None,
    })
}

fn fire(group: &str, fp: &str, starts: &str) -> Input {
    batch(group, vec![alert(fp, AlertStatus::Firing, starts)])
}

fn clear(group: &str, fp: &str, starts: &str) -> Input {
    batch(group, vec![alert(fp, AlertStatus::Resolved, starts)])
}

fn ack(id: IncidentId, who: &str) -> Input {
    Input::Ack {
        id,
        by: Actor::new(who, Via::Api),
    }
}

fn page_str(p: &Page) -> String {
    format!(
        "{}:{}:{}:s{}c{}",
        p.target,
        p.notifier,
        p.kind.as_str(),
        p.step,
        p.cycle
    )
}

fn pages(fx: &[Effect]) -> Vec<&Page> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Page(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// The page of `fx` sent through `notifier`.
fn page_via(fx: &[Effect], notifier: &str) -> Page {
    pages(fx)
        .into_iter()
        .find(|p| p.notifier == notifier)
        .unwrap_or_else(|| panic!("no page through {notifier}"))
        .clone()
}

fn events(fx: &[Effect]) -> Vec<&HistoryEvent> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Event(h) => Some(h),
            _ => None,
        })
        .collect()
}

/// Runs a table; every row's pages must be exactly the expected ones, in order.
fn run_table(engine: &mut Engine, table: &[(&str, Input, &[&str])]) -> Vec<Vec<Effect>> {
    let mut all = Vec::new();
    for (i, (at, input, want)) in table.iter().enumerate() {
        let fx = engine
            .apply(t(at), input.clone())
            .unwrap_or_else(|r| panic!("row {i} ({at}) refused: {r}"));
        let got: Vec<String> = pages(&fx).into_iter().map(page_str).collect();
        assert_eq!(got, *want, "row {i} at {at}: {input:?}");
        all.push(fx);
    }
    all
}

fn engine() -> Engine {
    Engine::new(escalation_config(CONFIG))
}

#[test]
fn nobody_acks_so_every_step_fires_at_its_delay_then_the_policy_repeats_once() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "09:59:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            ("10:01:59", Input::Tick, &[]),
            ("10:02:00", Input::Tick, &["alice:sms:triggered:s1c0"]),
            ("10:09:59", Input::Tick, &[]),
            ("10:10:00", Input::Tick, &["bob:sms:escalated:s2c0"]),
            (
                "10:20:00",
                Input::Tick,
                &[
                    "alice:push:escalated:s3c0",
                    "bob:sms:escalated:s3c0",
                    "hook:hook:escalated:s3c0",
                ],
            ),
            ("10:22:00", Input::Tick, &["alice:sms:escalated:s3c0"]),
            // second pass starts after the last step's offset again (20m): at 10:40
            ("10:39:59", Input::Tick, &[]),
            (
                "10:40:00",
                Input::Tick,
                &["console:console:reminder:s1c1", "alice:push:reminder:s1c1"],
            ),
            ("10:42:00", Input::Tick, &["alice:sms:reminder:s1c1"]),
            ("10:50:00", Input::Tick, &["bob:sms:reminder:s2c1"]),
            (
                "11:00:00",
                Input::Tick,
                &[
                    "alice:push:reminder:s3c1",
                    "bob:sms:reminder:s3c1",
                    "hook:hook:reminder:s3c1",
                ],
            ),
            ("11:02:00", Input::Tick, &["alice:sms:reminder:s3c1"]),
            // repeats used up: it stays on the last step, silent
            ("13:00:00", Input::Tick, &[]),
        ],
    );
    assert_eq!(e.next_deadline(), None);
    assert_eq!(e.open_count(), 1, "unacked incidents stay open");
}

#[test]
fn the_engine_asks_to_be_woken_exactly_at_the_next_deadline() {
    let mut e = engine();
    e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    assert_eq!(
        e.next_deadline(),
        Some(t("10:02:00")),
        "alice's second method"
    );
    e.apply(t("10:02:00"), Input::Tick).unwrap();
    assert_eq!(e.next_deadline(), Some(t("10:10:00")), "step 2");
}

#[test]
fn ack_stops_escalation_and_the_next_step_pages_nobody() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            // alice acks before her SMS method would go out
            (
                "10:01:00",
                ack(1, "alice"),
                &["console:console:acknowledged:s0c0"],
            ),
            ("10:02:00", Input::Tick, &[]),
            ("10:10:00", Input::Tick, &[]),
            ("10:20:00", Input::Tick, &[]),
        ],
    );
}

#[test]
fn an_expired_ack_retriggers_from_step_one_and_says_so() {
    let mut e = engine();
    let fx = run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            (
                "10:05:00",
                ack(1, "alice"),
                &["console:console:acknowledged:s0c0"],
            ),
            ("10:34:59", Input::Tick, &[]),
            // 30m ack timeout
            (
                "10:35:00",
                Input::Tick,
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            ("10:37:00", Input::Tick, &["alice:sms:triggered:s1c0"]),
            ("10:45:00", Input::Tick, &["bob:sms:escalated:s2c0"]),
        ],
    );
    let ev = events(&fx[3]);
    let expired = ev
        .iter()
        .find(|e| e.kind == EventKind::AckExpired)
        .expect("ack_expired event");
    assert!(
        expired.detail.contains("ack by alice expired after 30m"),
        "{}",
        expired.detail
    );
    assert!(expired.detail.contains("from step 1"), "{}", expired.detail);
}

#[test]
fn snooze_holds_paging_then_resumes_from_step_one() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            (
                "10:01:00",
                Input::Snooze {
                    id: 1,
                    by: Actor::new("alice", Via::Api),
                    duration: Duration::from_secs(15 * 60),
                },
                &["console:console:acknowledged:s0c0"],
            ),
            ("10:10:00", Input::Tick, &[]),
            (
                "10:16:00",
                Input::Tick,
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            ("10:18:00", Input::Tick, &["alice:sms:triggered:s1c0"]),
            ("10:26:00", Input::Tick, &["bob:sms:escalated:s2c0"]),
        ],
    );
}

#[test]
fn unack_resumes_paging_at_once() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            (
                "10:01:00",
                ack(1, "alice"),
                &["console:console:acknowledged:s0c0"],
            ),
            (
                "10:04:00",
                Input::Unack {
                    id: 1,
                    by: Actor::new("alice", Via::Api),
                },
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            ("10:06:00", Input::Tick, &["alice:sms:triggered:s1c0"]),
            ("10:14:00", Input::Tick, &["bob:sms:escalated:s2c0"]),
        ],
    );
    assert_eq!(
        e.apply(
            t("10:15:00"),
            Input::Unack {
                id: 1,
                by: Actor::new("alice", Via::Api)
            }
        )
        .map_err(|r| r.refusal),
        Err(Refusal::NotAcked(1))
    );
}

#[test]
fn resolve_mid_escalation_stops_paging_and_announces_it() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            (
                "10:10:00",
                Input::Tick,
                &["alice:sms:triggered:s1c0", "bob:sms:escalated:s2c0"],
            ),
            (
                "10:12:00",
                clear("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &["console:console:resolved:s0c0"],
            ),
            ("10:20:00", Input::Tick, &[]),
            ("11:00:00", Input::Tick, &[]),
        ],
    );
    assert_eq!(e.open_count(), 0);
    assert_eq!(
        e.apply(t("11:00:00"), ack(1, "alice"))
            .map_err(|r| r.refusal),
        Err(Refusal::AlreadyResolved(1))
    );
    assert_eq!(
        e.apply(t("11:00:00"), ack(99, "alice"))
            .map_err(|r| r.refusal),
        Err(Refusal::NotFound(99))
    );
}

#[test]
fn manual_resolve_ends_the_incident_even_while_alerts_fire() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            (
                "10:03:00",
                Input::Resolve {
                    id: 1,
                    by: Actor::new("bob", Via::Cli),
                },
                &["console:console:resolved:s0c0"],
            ),
            ("10:10:00", Input::Tick, &[]),
            // Alertmanager repeats the same still-firing alert: no new incident
            ("10:30:00", fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"), &[]),
        ],
    );
    assert_eq!(e.open_count(), 0);
}

#[test]
fn a_method_that_fails_for_good_hands_over_to_the_next_method_at_once() {
    let mut e = engine();
    let fx = e
        .apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    let push = page_via(&fx, "push");
    let fx = e
        .apply(
            t("10:00:05"),
            Input::PageOutcome {
                page: push,
                outcome: Outcome::Failed {
                    attempts: 1,
                    permanent: true,
                    error: "HTTP 400: unknown topic".into(),
                },
            },
        )
        .unwrap();
    let got: Vec<String> = pages(&fx).into_iter().map(page_str).collect();
    assert_eq!(
        got,
        ["alice:sms:triggered:s1c0"],
        "SMS goes now, not at 10:02"
    );
    let failover = events(&fx)
        .into_iter()
        .find(|e| e.kind == EventKind::Failover)
        .expect("failover event");
    assert!(
        failover.detail.contains("unknown topic"),
        "{}",
        failover.detail
    );
    assert!(
        matches!(fx.first(), Some(Effect::PageDone { .. })),
        "outcome is recorded first"
    );
    // and the SMS is not sent a second time at its own delay
    let fx = e.apply(t("10:02:00"), Input::Tick).unwrap();
    assert!(pages(&fx).is_empty());
}

#[test]
fn a_delivered_page_changes_no_escalation() {
    let mut e = engine();
    let fx = e
        .apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    let push = page_via(&fx, "push");
    let fx = e
        .apply(
            t("10:00:01"),
            Input::PageOutcome {
                page: push,
                outcome: Outcome::Delivered { attempts: 1 },
            },
        )
        .unwrap();
    assert!(pages(&fx).is_empty());
    let fx = e.apply(t("10:02:00"), Input::Tick).unwrap();
    assert_eq!(
        pages(&fx).into_iter().map(page_str).collect::<Vec<_>>(),
        ["alice:sms:triggered:s1c0"]
    );
}

#[test]
fn duplicate_deliveries_from_an_ha_pair_change_nothing() {
    let mut e = engine();
    let two = batch(
        "g1",
        vec![
            alert("aaaaaaaaaaaaaaaa", AlertStatus::Firing, "10:00:00"),
            alert("bbbbbbbbbbbbbbbb", AlertStatus::Firing, "10:00:00"),
        ],
    );
    let first = e.apply(t("10:00:00"), two.clone()).unwrap();
    assert!(!first.is_empty());
    let again = e.apply(t("10:00:01"), two).unwrap();
    assert!(
        again.is_empty(),
        "a byte-identical redelivery must change nothing: {again:?}"
    );
    // one alert resolves, and that delivery too arrives twice
    let r = batch(
        "g1",
        vec![alert("aaaaaaaaaaaaaaaa", AlertStatus::Resolved, "10:00:00")],
    );
    assert!(!e.apply(t("10:05:00"), r.clone()).unwrap().is_empty());
    assert!(e.apply(t("10:05:01"), r).unwrap().is_empty());
    assert_eq!(e.open_count(), 1, "bbbb still fires");
}

#[test]
fn a_late_duplicate_after_resolution_does_not_reopen_but_a_new_firing_does() {
    let mut e = engine();
    e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    e.apply(t("10:05:00"), clear("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    assert_eq!(e.open_count(), 0);
    // the slower HA peer's copy of the original firing notification
    assert!(
        e.apply(t("10:05:20"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(e.open_count(), 0);
    // the alert fires again later: a new incident with a new id
    let fx = e
        .apply(t("11:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:59:30"))
        .unwrap();
    let opened: Vec<IncidentId> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Opened(o) => Some(o.id),
            _ => None,
        })
        .collect();
    assert_eq!(opened, [2]);
}

#[test]
fn alerts_join_the_open_incident_of_their_group_and_it_resolves_when_all_do() {
    let mut e = engine();
    e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    let fx = e
        .apply(t("10:01:00"), fire("g1", "bbbbbbbbbbbbbbbb", "10:01:00"))
        .unwrap();
    assert!(
        fx.iter().all(|x| !matches!(x, Effect::Opened(_))),
        "same group, same incident"
    );
    assert!(
        pages(&fx).is_empty(),
        "a new alert in a paging incident does not page again"
    );
    e.apply(t("10:02:00"), clear("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    assert_eq!(e.open_count(), 1);
    let fx = e
        .apply(t("10:03:00"), clear("g1", "bbbbbbbbbbbbbbbb", "10:01:00"))
        .unwrap();
    assert_eq!(e.open_count(), 0);
    let resolved = events(&fx)
        .into_iter()
        .find(|e| e.kind == EventKind::Resolved)
        .unwrap();
    assert!(
        resolved.detail.contains("all 2 alert(s) resolved"),
        "{}",
        resolved.detail
    );
    // another group is another incident
    let fx = e
        .apply(t("10:04:00"), fire("g2", "cccccccccccccccc", "10:04:00"))
        .unwrap();
    assert!(
        fx.iter()
            .any(|x| matches!(x, Effect::Opened(o) if o.id == 2))
    );
}

#[test]
fn routes_pick_the_policy_by_label_matchers() {
    let mut e = engine();
    let mut b = AlertBatch {
        source: "alertmanager".into(),
        group_key: "db".into(),
        labels: labels(&[("team", "db"), ("severity", "critical")]),
        title: "ReplicationLag".into(),
        alerts: vec![alert("dddddddddddddddd", AlertStatus::Firing, "10:00:00")],
        truncated: 0,
        policy: None,
    };
    let fx = e.apply(t("10:00:00"), Input::Alerts(b.clone())).unwrap();
    assert_eq!(
        pages(&fx).into_iter().map(page_str).collect::<Vec<_>>(),
        ["bob:sms:triggered:s1c0"]
    );
    b.group_key = "db-warn".into();
    b.labels = labels(&[("team", "db"), ("severity", "warning")]);
    let fx = e.apply(t("10:00:00"), Input::Alerts(b)).unwrap();
    assert_eq!(
        pages(&fx).into_iter().map(page_str).collect::<Vec<_>>(),
        [
            "console:console:triggered:s1c0",
            "alice:push:triggered:s1c0"
        ],
        "warning falls through to the default route"
    );
}

#[test]
fn a_config_edit_does_not_change_a_live_escalation() {
    let mut e = engine();
    e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    let edited = CONFIG.replace(
        r#"{ after = "10m", notify = ["bob"] }"#,
        r#"{ after = "1m", notify = ["hook"] }"#,
    );
    e.set_config(escalation_config(&edited));
    let fx = e.apply(t("10:01:00"), Input::Tick).unwrap();
    assert!(pages(&fx).is_empty(), "the old policy had nothing at 10:01");
    let fx = e.apply(t("10:10:00"), Input::Tick).unwrap();
    assert!(
        pages(&fx)
            .into_iter()
            .map(page_str)
            .any(|p| p == "bob:sms:escalated:s2c0")
    );
    // a new incident gets the new policy
    let fx = e
        .apply(t("10:11:00"), fire("g2", "bbbbbbbbbbbbbbbb", "10:11:00"))
        .unwrap();
    assert!(!pages(&fx).is_empty());
    let fx = e.apply(t("10:12:00"), Input::Tick).unwrap();
    assert_eq!(
        pages(&fx).into_iter().map(page_str).collect::<Vec<_>>(),
        ["hook:hook:escalated:s2c0"]
    );
}

/// Turns the last effects of an incident into what the store would hand back.
fn stored(fx: &[Vec<Effect>], id: IncidentId) -> RestoredIncident {
    let mut opened = None;
    let mut status = None;
    let mut alerts = Vec::new();
    let mut labels = BTreeMap::new();
    for f in fx.iter().flatten() {
        match f {
            Effect::Opened(o) if o.id == id => {
                labels = o.labels.clone();
                opened = Some(o.clone());
            }
            Effect::Labels {
                incident,
                labels: l,
            } if *incident == id => labels = l.clone(),
            Effect::Status(s) if s.id == id => status = Some(s.clone()),
            Effect::Alert(a) if a.incident == id => {
                let key = super::fingerprint_key(&a.alert.fingerprint);
                alerts.retain(|(k, _, _): &(u64, AlertStatus, Timestamp)| *k != key);
                alerts.push((key, a.alert.status, a.alert.starts_at));
            }
            _ => {}
        }
    }
    let (o, s) = (opened.unwrap(), status.unwrap());
    RestoredIncident {
        id,
        source: o.source,
        group_key: o.group_key,
        state: s.state,
        created_at: o.created_at,
        resolved_at: s.resolved_at,
        acked_by: s.acked_by,
        acked_at: s.acked_at,
        policy: o.policy,
        escalation: s.escalation,
        alerts,
        labels_hash: super::labels_hash(&labels),
        labels: LabelSet::from_map(&labels),
        alerts_truncated: s.alerts_truncated,
    }
}

#[test]
fn after_downtime_overdue_steps_fire_once_and_say_how_late() {
    let mut e = engine();
    let fx = run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            ("10:02:00", Input::Tick, &["alice:sms:triggered:s1c0"]),
        ],
    );
    // tocsin dies at 10:03 and comes back at 10:25: steps 2 (10:10) and 3 (10:20) are overdue
    let mut e = Engine::restore(
        escalation_config(CONFIG),
        2,
        100,
        vec![stored(&fx, 1)],
        vec![],
    );
    assert_eq!(e.next_deadline(), Some(t("10:10:00")));
    let fx = e.apply(t("10:25:00"), Input::Tick).unwrap();
    let got: Vec<String> = pages(&fx).into_iter().map(page_str).collect();
    assert_eq!(
        got,
        [
            "bob:sms:escalated:s2c0",
            "alice:push:escalated:s3c0",
            "bob:sms:escalated:s3c0",
            "hook:hook:escalated:s3c0"
        ],
        "each overdue step once; bob, paged by both, gets his chain restarted by step 3"
    );
    let bob2 = pages(&fx)[0];
    assert_eq!(
        bob2.late_by_ms,
        Some(15 * 60 * 1000),
        "step 2 was due at 10:10"
    );
    assert_eq!(bob2.id, 100, "page ids continue from the store");
    let step_events: Vec<_> = events(&fx)
        .into_iter()
        .filter(|e| e.kind == EventKind::Step)
        .collect();
    assert!(
        step_events[0].detail.contains("15m late"),
        "{}",
        step_events[0].detail
    );
    // nothing fires twice
    assert!(pages(&e.apply(t("10:25:01"), Input::Tick).unwrap()).is_empty());
    // alice's SMS method of step 3 still follows 2 minutes after she was paged
    let fx = e.apply(t("10:27:00"), Input::Tick).unwrap();
    assert_eq!(
        pages(&fx).into_iter().map(page_str).collect::<Vec<_>>(),
        ["alice:sms:escalated:s3c0"]
    );
}

#[test]
fn after_a_long_outage_skipped_passes_do_not_replay() {
    let mut e = engine();
    let fx = run_table(
        &mut e,
        &[(
            "10:00:00",
            fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
            &[
                "console:console:triggered:s1c0",
                "alice:push:triggered:s1c0",
            ],
        )],
    );
    let mut e = Engine::restore(
        escalation_config(CONFIG),
        2,
        10,
        vec![stored(&fx, 1)],
        vec![],
    );
    // down until 12:00: both passes are over; alice's pending SMS goes, then each step
    // fires once, for its latest pass
    let fx = e.apply(t("12:00:00"), Input::Tick).unwrap();
    let got: Vec<String> = pages(&fx).into_iter().map(page_str).collect();
    assert_eq!(
        got,
        [
            "alice:sms:triggered:s1c0",
            "console:console:reminder:s1c1",
            "alice:push:reminder:s1c1",
            "bob:sms:reminder:s2c1",
            "alice:push:reminder:s3c1",
            "bob:sms:reminder:s3c1",
            "hook:hook:reminder:s3c1",
        ]
    );
    assert!(events(&fx).iter().any(|e| e.kind == EventKind::CatchUp));
}

#[test]
fn acks_and_ids_survive_a_restore() {
    let mut e = engine();
    let fx = run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            (
                "10:01:00",
                ack(1, "alice"),
                &["console:console:acknowledged:s0c0"],
            ),
        ],
    );
    let mut e = Engine::restore(
        escalation_config(CONFIG),
        2,
        10,
        vec![stored(&fx, 1)],
        vec![],
    );
    assert!(
        pages(&e.apply(t("10:20:00"), Input::Tick).unwrap()).is_empty(),
        "still acked"
    );
    // the same group's duplicate does not open anything; a new group gets id 2
    assert!(
        e.apply(t("10:21:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
            .unwrap()
            .is_empty()
    );
    let fx = e
        .apply(t("10:22:00"), fire("g2", "bbbbbbbbbbbbbbbb", "10:22:00"))
        .unwrap();
    assert!(
        fx.iter()
            .any(|x| matches!(x, Effect::Opened(o) if o.id == 2))
    );
    // and the ack still expires at 10:31
    let fx = e.apply(t("10:31:00"), Input::Tick).unwrap();
    assert!(
        pages(&fx)
            .into_iter()
            .any(|p| p.incident == 1 && p.kind == PageKind::Triggered)
    );
}

#[test]
fn a_resolved_duplicate_remembered_across_restore_does_not_reopen() {
    let mut e = engine();
    let mut fx = vec![
        e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
            .unwrap(),
    ];
    fx.push(
        e.apply(t("10:05:00"), clear("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
            .unwrap(),
    );
    let mut e = Engine::restore(
        escalation_config(CONFIG),
        2,
        10,
        vec![],
        vec![stored(&fx, 1)],
    );
    assert!(
        e.apply(t("10:06:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_unrouted_incident_is_recorded_and_says_nobody_is_paged() {
    let text = CONFIG.replace("[[routes]]\npolicy = \"default\"\n", "");
    let mut e = Engine::new(escalation_config(&text));
    let fx = e
        .apply(
            t("10:00:00"),
            Input::Alerts(AlertBatch {
                source: "alertmanager".into(),
                group_key: "x".into(),
                labels: labels(&[("team", "web")]),
                title: "X".into(),
                alerts: vec![alert("eeeeeeeeeeeeeeee", AlertStatus::Firing, "10:00:00")],
                truncated: 3,
                policy: None,
            }),
        )
        .unwrap();
    assert!(pages(&fx).is_empty());
    let ev = events(&fx);
    assert!(
        ev.iter()
            .any(|e| e.kind == EventKind::Opened && e.detail.contains("no route matched"))
    );
    assert!(
        ev.iter()
            .any(|e| e.kind == EventKind::Truncated && e.detail.contains("3 alert(s)"))
    );
}

#[test]
fn snooze_needs_a_duration() {
    let mut e = engine();
    e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    assert_eq!(
        e.apply(
            t("10:01:00"),
            Input::Snooze {
                id: 1,
                by: Actor::new("a", Via::Api),
                duration: Duration::ZERO
            }
        )
        .map_err(|r| r.refusal),
        Err(Refusal::ZeroSnooze)
    );
}

#[test]
fn a_late_firing_copy_after_one_alert_resolved_does_not_refire_it() {
    let mut e = engine();
    e.apply(
        t("10:00:00"),
        batch(
            "g1",
            vec![
                alert("aaaaaaaaaaaaaaaa", AlertStatus::Firing, "10:00:00"),
                alert("bbbbbbbbbbbbbbbb", AlertStatus::Firing, "10:00:00"),
            ],
        ),
    )
    .unwrap();
    assert!(
        !e.apply(t("10:05:00"), clear("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
            .unwrap()
            .is_empty()
    );
    // the slower HA peer's copy of the 10:00 notification, with aaaa still firing
    let fx = e
        .apply(t("10:05:10"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    assert!(fx.is_empty(), "late copy must change nothing: {fx:?}");
    // bbbb resolving now resolves the incident: aaaa is not considered firing again
    e.apply(t("10:06:00"), clear("g1", "bbbbbbbbbbbbbbbb", "10:00:00"))
        .unwrap();
    assert_eq!(e.open_count(), 0);
    // a genuinely new instance of aaaa (later startsAt) is a change
    assert!(
        !e.apply(t("10:07:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:06:30"))
            .unwrap()
            .is_empty()
    );
}

fn channel_down(at: &str) -> Input {
    crate::watchdog::outage::input(&crate::watchdog::Decision::Down {
        channel: "notifier:push".into(),
        kind: crate::watchdog::Kind::Notifier,
        since: t(at),
        reason: "3 sends in a row failed".into(),
        blind: "pushes do not arrive".into(),
    })
}

fn channel_back(since: &str, back: &str) -> Input {
    crate::watchdog::outage::input(&crate::watchdog::Decision::Recovered {
        channel: "notifier:push".into(),
        since: t(since),
        back_since: t(back),
        reason: "3 sends in a row failed".into(),
    })
}

#[test]
fn a_dead_channel_pages_every_contact_routes_around_it_and_its_recovery_is_paged_too() {
    let mut e = engine();
    let fx = e.apply(t("10:00:30"), channel_down("10:00:00")).unwrap();
    let got: Vec<String> = pages(&fx).into_iter().map(page_str).collect();
    // Not the routes' policy (which would page console and alice): every contact.
    assert_eq!(got, ["alice:push:triggered:s1c0", "bob:sms:triggered:s1c0"]);
    let push = pages(&fx)[0].clone();
    let fx = e
        .apply(
            t("10:00:30"),
            Input::PageOutcome {
                page: push,
                outcome: Outcome::Failed {
                    attempts: 0,
                    permanent: true,
                    error: "notifier:push is down; routing around it".into(),
                },
            },
        )
        .unwrap();
    let got: Vec<String> = pages(&fx).into_iter().map(page_str).collect();
    assert_eq!(got, ["alice:sms:triggered:s1c0"], "at once, not after 2m");
    // The same outage reported again changes nothing.
    let fx = e.apply(t("10:05:00"), channel_down("10:00:00")).unwrap();
    assert!(pages(&fx).is_empty());
    run_table(
        &mut e,
        &[(
            "10:20:00",
            channel_back("10:00:00", "10:19:30"),
            // Through the method that last reached each of them.
            &["alice:sms:resolved:s0c0", "bob:sms:resolved:s0c0"],
        )],
    );
}

#[test]
fn an_unacked_self_test_escalates_to_everyone_and_an_acked_one_resolves() {
    let cfg = format!(
        "{CONFIG}\n[watchdog.self_test]\nat = \"09:30\"\ncontact = \"bob\"\nack_within = \"15m\"\n"
    );
    let mut e = Engine::new(escalation_config(&cfg));
    let test = |day: &str| {
        crate::watchdog::self_test::input(
            Timestamp::at(&format!("2026-11-{day}T09:30:00Z")),
            "bob",
            Duration::from_secs(900),
        )
    };
    run_table(
        &mut e,
        &[
            ("09:30:00", test("21"), &["bob:sms:triggered:s1c0"]),
            ("09:44:59", Input::Tick, &[]),
            (
                "09:45:00",
                Input::Tick,
                &["alice:push:escalated:s2c0", "bob:sms:escalated:s2c0"],
            ),
        ],
    );
    let id = e.next_incident_id() - 1;
    let fx = e.apply(t("09:50:00"), ack(id, "bob")).unwrap();
    let kinds: Vec<&str> = events(&fx).iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["acked", "resolved"],
        "the ack is all a self-test asks for"
    );
    assert_eq!(e.open_count(), 0);
}

#[test]
fn three_people_ack_one_incident_and_it_is_announced_once_with_the_first_acker_kept() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            (
                "10:01:00",
                ack(1, "alice"),
                &["console:console:acknowledged:s0c0"],
            ),
        ],
    );
    let bob = e.apply(t("10:01:30"), ack(1, "bob")).unwrap_err();
    assert_eq!(
        bob.refusal,
        Refusal::AlreadyAcked {
            id: 1,
            by: "alice".into(),
            at: t("10:01:00")
        }
    );
    // Bob's ack is a line of history, never a second announcement or a new acker.
    assert!(pages(&bob.notes).is_empty());
    let notes = events(&bob.notes);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].kind, EventKind::AlsoAcked);
    assert_eq!(notes[0].actor, "bob via api");
    assert!(
        notes[0].detail.contains("alice acked it first"),
        "{}",
        notes[0].detail
    );
    assert!(bob.notes.iter().all(|fx| !matches!(fx, Effect::Status(_))));

    // Alice acking again is only refused: there is nothing new to note.
    let again = e.apply(t("10:02:00"), ack(1, "alice")).unwrap_err();
    assert!(matches!(again.refusal, Refusal::AlreadyAcked { .. }));
    assert!(again.notes.is_empty());

    // The first ack's expiry still counts from 10:01, not from the later attempts.
    run_table(
        &mut e,
        &[
            ("10:30:59", Input::Tick, &[]),
            (
                "10:31:00",
                Input::Tick,
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
        ],
    );
}

#[test]
fn acking_a_snoozed_incident_turns_the_snooze_into_an_ack() {
    let mut e = engine();
    e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    e.apply(
        t("10:01:00"),
        Input::Snooze {
            id: 1,
            by: Actor::new("alice", Via::Api),
            duration: Duration::from_secs(300),
        },
    )
    .unwrap();
    let fx = e.apply(t("10:02:00"), ack(1, "bob")).unwrap();
    assert!(events(&fx).iter().any(|h| h.kind == EventKind::Acked));
    // The snooze would have ended at 10:06; the ack lasts its 30 minutes.
    run_table(
        &mut e,
        &[
            ("10:06:00", Input::Tick, &[]),
            ("10:31:59", Input::Tick, &[]),
        ],
    );
}

#[test]
fn a_page_may_retry_only_until_the_contacts_next_method_is_due_by_the_incidents_own_policy() {
    let mut e = engine();
    let fx = e
        .apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    let push = pages(&fx)
        .into_iter()
        .find(|p| p.notifier == "push")
        .cloned()
        .unwrap();
    // alice's SMS follows her push 2 minutes after she is paged.
    assert_eq!(push.retry_until, Some(t("10:02:00")));
    // A reload that makes alice's SMS wait 30 minutes changes nothing for this incident:
    // its escalation and its retries both follow the policy it opened with.
    e.set_config(escalation_config(&CONFIG.replace(
        r#"{ notifier = "sms", to = "+15550100", after = "2m" }"#,
        r#"{ notifier = "sms", to = "+15550100", after = "30m" }"#,
    )));
    let fx = e.apply(t("10:02:00"), Input::Tick).unwrap();
    let sms = pages(&fx);
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(page_str(sms[0]), "alice:sms:triggered:s1c0");
    // Her last method and a notifier target have nothing after them.
    assert_eq!(sms[0].retry_until, None);
    let fx = e
        .apply(t("10:00:00"), fire("g2", "bbbbbbbbbbbbbbbb", "10:00:00"))
        .unwrap();
    let console = pages(&fx)
        .into_iter()
        .find(|p| p.target == "console")
        .cloned()
        .unwrap();
    assert_eq!(console.retry_until, None);
}

#[test]
fn a_failover_page_may_retry_until_the_method_after_it_is_due() {
    let cfg = CONFIG.replace(
        r#"[contacts.bob]
methods = [{ notifier = "sms", to = "+15550111" }]"#,
        r#"[contacts.bob]
methods = [
  { notifier = "push", topic = "bob" },
  { notifier = "sms", to = "+15550111", after = "5m" },
  { notifier = "hook", after = "15m" },
]"#,
    );
    let mut e = Engine::new(escalation_config(&cfg));
    e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    let fx = e.apply(t("10:10:00"), Input::Tick).unwrap();
    let push = pages(&fx)
        .into_iter()
        .find(|p| p.target == "bob")
        .cloned()
        .unwrap();
    assert_eq!(page_str(&push), "bob:push:escalated:s2c0");
    assert_eq!(push.retry_until, Some(t("10:15:00")));
    let fx = e
        .apply(
            t("10:10:30"),
            Input::PageOutcome {
                page: push,
                outcome: Outcome::Failed {
                    attempts: 1,
                    permanent: true,
                    error: "bad topic".into(),
                },
            },
        )
        .unwrap();
    let sms = pages(&fx);
    assert_eq!(page_str(sms[0]), "bob:sms:escalated:s2c0");
    assert_eq!(sms[0].retry_until, Some(t("10:25:00")));
}

fn cancelled(fx: &[Effect]) -> Vec<(PageId, String)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::PageDone {
                page,
                outcome: Outcome::Cancelled { reason },
                ..
            } => Some((*page, reason.clone())),
            _ => None,
        })
        .collect()
}

fn sent(fx: &[Effect]) -> Vec<Vec<String>> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { pages } => Some(pages.iter().map(page_str).collect()),
            _ => None,
        })
        .collect()
}

#[test]
fn held_pages_released_after_an_ack_or_resolve_are_cancelled_and_the_rest_go_out_together() {
    let mut e = engine();
    // Three incidents page bob by SMS at once; flood control holds the pages.
    let mut held = Vec::new();
    for (g, fp) in [
        ("g1", "aaaaaaaaaaaaaaaa"),
        ("g2", "bbbbbbbbbbbbbbbb"),
        ("g3", "cccccccccccccccc"),
    ] {
        let fx = e
            .apply(
                t("10:00:00"),
                Input::Alerts(AlertBatch {
                    labels: labels(&[("team", "db"), ("severity", "critical")]),
                    ..match fire(g, fp, "10:00:00") {
                        Input::Alerts(b) => b,
                        _ => unreachable!(),
                    }
                }),
            )
            .unwrap();
        held.extend(pages(&fx).into_iter().cloned());
    }
    assert_eq!(held.len(), 3, "{held:?}");
    e.apply(t("10:00:20"), ack(1, "bob")).unwrap();
    e.apply(
        t("10:00:30"),
        Input::Resolve {
            id: 2,
            by: Actor::new("bob", Via::Api),
        },
    )
    .unwrap();

    let fx = e
        .apply(
            t("10:01:00"),
            Input::Released {
                pages: held.clone(),
            },
        )
        .unwrap();
    assert_eq!(
        cancelled(&fx),
        [
            (
                held[0].id,
                "held by flood control while the incident was acknowledged (by bob)".to_string()
            ),
            (
                held[1].id,
                "held by flood control while the incident was resolved".to_string()
            ),
        ]
    );
    // Only the incident still triggered wakes bob, in one message.
    assert_eq!(sent(&fx), [vec!["bob:sms:triggered:s1c0".to_string()]]);
    assert!(
        events(&fx)
            .iter()
            .filter(|h| h.kind == EventKind::PageCancelled)
            .count()
            == 2
    );
}

#[test]
fn a_released_status_update_goes_out_whatever_the_incident_became() {
    let mut e = engine();
    e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    let fx = e.apply(t("10:01:00"), ack(1, "alice")).unwrap();
    let update = pages(&fx)[0].clone();
    assert_eq!(update.kind, PageKind::Acknowledged);
    e.apply(
        t("10:02:00"),
        Input::Resolve {
            id: 1,
            by: Actor::new("alice", Via::Api),
        },
    )
    .unwrap();
    let fx = e
        .apply(
            t("10:03:00"),
            Input::Released {
                pages: vec![update],
            },
        )
        .unwrap();
    assert!(cancelled(&fx).is_empty());
    assert_eq!(
        sent(&fx),
        [vec!["console:console:acknowledged:s0c0".to_string()]]
    );
}

/// One alert line of the IRC relay as its source hands it on: the alert, and the labels
/// the group's firing alerts share (`instance` only while one instance fires).
fn relay_line(fp: &str, status: AlertStatus, at: &str, shared: &[(&str, &str)]) -> Input {
    Input::Alerts(AlertBatch {
        source: "irc".into(),
        group_key: "irc:DiskFull".into(),
        labels: labels(shared),
        title: "DiskFull".into(),
        alerts: vec![alert(fp, status, at)],
        truncated: 0,
        policy: None,
    })
}

/// The `Labels` effects of a batch: (incident, labels as `k=v` pairs).
fn label_changes(fx: &[Effect]) -> Vec<(IncidentId, Vec<String>)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Labels { incident, labels } => Some((
                *incident,
                labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn an_incidents_labels_follow_what_its_firing_alerts_share() {
    let mut e = engine();
    let db1 = [("alertname", "DiskFull"), ("instance", "db1")];
    let both = [("alertname", "DiskFull")];
    let fx = e
        .apply(
            t("10:00:00"),
            relay_line("db1", AlertStatus::Firing, "10:00:00", &db1),
        )
        .unwrap();
    assert!(label_changes(&fx).is_empty(), "opened with them: {fx:?}");

    // db2 joins: the group no longer shares an instance.
    let fx = e
        .apply(
            t("10:01:00"),
            relay_line("db2", AlertStatus::Firing, "10:01:00", &both),
        )
        .unwrap();
    assert_eq!(
        label_changes(&fx),
        [(1, vec!["alertname=DiskFull".to_string()])]
    );

    // The relay repeats db2's line: the same labels, nothing to write.
    let fx = e
        .apply(
            t("10:05:00"),
            relay_line("db2", AlertStatus::Firing, "10:05:00", &both),
        )
        .unwrap();
    assert!(label_changes(&fx).is_empty(), "{fx:?}");

    // A late copy of something already known, with older labels: ignored whole.
    let fx = e
        .apply(
            t("10:06:00"),
            relay_line("db2", AlertStatus::Firing, "10:01:00", &db1),
        )
        .unwrap();
    assert!(label_changes(&fx).is_empty(), "{fx:?}");

    // db2 recovers: db1 fires alone, and its instance is the incident's again.
    let fx = e
        .apply(
            t("10:10:00"),
            relay_line("db2", AlertStatus::Resolved, "10:10:00", &db1),
        )
        .unwrap();
    assert_eq!(
        label_changes(&fx),
        [(
            1,
            vec!["alertname=DiskFull".to_string(), "instance=db1".to_string()]
        )]
    );
    assert_eq!(e.open_count(), 1, "db1 still fires");
}

#[test]
fn after_a_restart_the_same_labels_change_nothing_and_new_ones_are_written() {
    let mut e = engine();
    let db1 = [("alertname", "DiskFull"), ("instance", "db1")];
    let fx = vec![
        e.apply(
            t("10:00:00"),
            relay_line("db1", AlertStatus::Firing, "10:00:00", &db1),
        )
        .unwrap(),
    ];
    let mut e = Engine::restore(
        escalation_config(CONFIG),
        2,
        100,
        vec![stored(&fx, 1)],
        vec![],
    );
    let fx = e
        .apply(
            t("10:30:00"),
            relay_line("db1", AlertStatus::Firing, "10:30:00", &db1),
        )
        .unwrap();
    assert!(label_changes(&fx).is_empty(), "{fx:?}");
    let fx = e
        .apply(
            t("10:31:00"),
            relay_line(
                "db2",
                AlertStatus::Firing,
                "10:31:00",
                &[("alertname", "DiskFull")],
            ),
        )
        .unwrap();
    assert_eq!(label_changes(&fx).len(), 1, "{fx:?}");
}

/// The night the phone rang out: alice's first method is a call nobody took. Her SMS
/// must not wait the two minutes it waits behind a call that was answered.
#[test]
fn a_call_nobody_answers_pages_the_next_method_at_once() {
    let mut e = engine();
    let fx = e
        .apply(t("03:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "03:00:00"))
        .unwrap();
    let call = page_via(&fx, "push");
    let placed = e
        .apply(
            t("03:00:01"),
            Input::PageOutcome {
                page: call.clone(),
                outcome: Outcome::Placed {
                    attempts: 1,
                    reference: "CA0001".into(),
                },
            },
        )
        .unwrap();
    assert!(pages(&placed).is_empty(), "a ringing call changes nothing");
    let line = events(&placed)
        .into_iter()
        .find(|e| e.kind == EventKind::PagePlaced)
        .expect("the history says the call was placed");
    assert!(line.detail.contains("CA0001"), "{}", line.detail);

    let fx = e
        .apply(
            t("03:00:40"),
            Input::PageOutcome {
                page: call,
                outcome: Outcome::NotReached {
                    reason: "no answer after 30 s".into(),
                },
            },
        )
        .unwrap();
    let got: Vec<String> = pages(&fx).into_iter().map(page_str).collect();
    assert_eq!(got, ["alice:sms:triggered:s1c0"], "SMS now, not at 03:02");
    let kinds: Vec<EventKind> = events(&fx).into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::PageNotReached, EventKind::Failover]);
    let failover = events(&fx)[1];
    assert!(
        failover.detail.contains("no answer after 30 s"),
        "{}",
        failover.detail
    );
    assert!(matches!(
        fx.first(),
        Some(Effect::PageDone {
            outcome: Outcome::NotReached { .. },
            ..
        })
    ));
    let fx = e.apply(t("03:02:00"), Input::Tick).unwrap();
    assert!(pages(&fx).is_empty(), "the SMS is not sent twice");
}

#[test]
fn a_call_that_ends_unanswered_after_its_incident_was_acked_pages_nobody() {
    let mut e = engine();
    let fx = e
        .apply(t("03:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "03:00:00"))
        .unwrap();
    let call = page_via(&fx, "push");
    e.apply(t("03:00:20"), ack(call.incident, "alice")).unwrap();
    let fx = e
        .apply(
            t("03:00:40"),
            Input::PageOutcome {
                page: call,
                outcome: Outcome::NotReached {
                    reason: "busy".into(),
                },
            },
        )
        .unwrap();
    assert!(pages(&fx).is_empty());
    assert!(
        events(&fx).iter().all(|e| e.kind != EventKind::Failover),
        "acked: nothing to fail over to"
    );
}

#[test]
fn a_snooze_longer_than_a_week_is_refused_from_any_channel() {
    let mut e = engine();
    e.apply(t("10:00:00"), fire("g1", "aaaaaaaaaaaaaaaa", "10:00:00"))
        .unwrap();
    let snooze = |d: Duration| Input::Snooze {
        id: 1,
        by: Actor::new("alice", Via::Api),
        duration: d,
    };
    let r = e
        .apply(t("10:00:01"), snooze(MAX_SNOOZE + Duration::from_secs(1)))
        .unwrap_err();
    assert_eq!(r.refusal, Refusal::SnoozeTooLong);
    assert_eq!(r.refusal.http_status(), 400);
    assert!(e.apply(t("10:00:02"), snooze(MAX_SNOOZE)).is_ok());
}

mod ack_silence;
mod alerts_cap;
mod maintenance;
mod quiet_hours;
mod schedules;
mod silences;
