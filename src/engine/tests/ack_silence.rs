//! An ack silences the incident's alerts in Alertmanager, as long as it holds: the
//! engine decides create, extend and expire, and writes each answer in the history.

use super::*;

fn silencing_engine() -> Engine {
    let text = format!(
        "{CONFIG}\n[sources.alertmanager]\nsilence_on_ack = {{ url = \"http://127.0.0.1:9/\", for = \"2h\" }}\n"
    );
    Engine::new(escalation_config(&text))
}

fn ops(fx: &[Effect]) -> Vec<&SilenceOp> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::AckSilence(op) => Some(op),
            _ => None,
        })
        .collect()
}

fn done(incident: IncidentId, done: SilenceDone, until: &str) -> Input {
    Input::AckSilenceDone {
        incident,
        done,
        until: t(until),
    }
}

fn history(fx: &[Effect]) -> Vec<String> {
    events(fx)
        .into_iter()
        .filter(|e| e.kind == EventKind::AckSilence)
        .map(|e| e.detail.clone())
        .collect()
}

#[test]
fn an_ack_silences_the_group_and_the_silence_follows_the_ack() {
    let mut e = silencing_engine();
    e.apply(t("10:00:00"), fire("g1", "a1", "09:59:00"))
        .unwrap();
    let fx = e.apply(t("10:01:00"), ack(1, "alice")).unwrap();
    let labels = labels(&[("alertname", "DiskFull"), ("severity", "critical")]);
    assert_eq!(
        ops(&fx),
        [&SilenceOp::Create {
            incident: 1,
            matchers: labels.clone(),
            until: t("12:01:00"),
            comment: "acked in tocsin #1 by alice".into(),
        }]
    );
    let fx = e
        .apply(
            t("10:01:01"),
            done(1, SilenceDone::Created { id: "s-1".into() }, "12:01:00"),
        )
        .unwrap();
    assert_eq!(
        history(&fx),
        ["silenced in Alertmanager as s-1 until 2026-11-21T12:01:00.000Z"]
    );
    // A quarter of its length before it ends, it is extended (the ack lasts 30m here,
    // so take the ack timeout out of the way first).
    assert_eq!(e.next_deadline(), Some(t("10:31:00")));
    let fx = e
        .apply(
            t("10:10:00"),
            Input::Unack {
                id: 1,
                by: Actor::new("bob", Via::Api),
            },
        )
        .unwrap();
    assert_eq!(
        ops(&fx),
        [&SilenceOp::Expire {
            incident: 1,
            id: "s-1".into()
        }]
    );
}

#[test]
fn a_long_ack_extends_the_silence_while_it_lasts() {
    let text = format!(
        "{}\n[sources.alertmanager]\nsilence_on_ack = {{ url = \"http://127.0.0.1:9/\", for = \"2h\" }}\n",
        CONFIG.replace("ack_timeout = \"30m\"", "ack_timeout = \"0s\"")
    );
    let mut e = Engine::new(escalation_config(&text));
    e.apply(t("10:00:00"), fire("g1", "a1", "09:59:00"))
        .unwrap();
    e.apply(t("10:00:00"), ack(1, "alice")).unwrap();
    e.apply(
        t("10:00:00"),
        done(1, SilenceDone::Created { id: "s-1".into() }, "12:00:00"),
    )
    .unwrap();
    assert_eq!(e.next_deadline(), Some(t("11:30:00")));
    let fx = e.apply(t("11:30:00"), Input::Tick).unwrap();
    assert!(
        matches!(ops(&fx)[..], [SilenceOp::Extend { incident: 1, id, until, .. }] if id == "s-1" && *until == t("13:30:00")),
        "{fx:?}"
    );
    // Alertmanager says the alerts stopped firing: no more extensions.
    let fx = e
        .apply(t("11:30:01"), done(1, SilenceDone::NotFiring, "13:30:00"))
        .unwrap();
    assert!(history(&fx)[0].contains("not extended"), "{fx:?}");
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn failing_to_reach_alertmanager_keeps_the_ack_and_tries_again() {
    let mut e = silencing_engine();
    e.apply(t("10:00:00"), fire("g1", "a1", "09:59:00"))
        .unwrap();
    e.apply(t("10:01:00"), ack(1, "alice")).unwrap();
    let fx = e
        .apply(
            t("10:01:05"),
            done(
                1,
                SilenceDone::Failed {
                    error: "connection refused".into(),
                },
                "12:01:00",
            ),
        )
        .unwrap();
    assert!(
        history(&fx)[0].contains("the ack stands, trying again in 1m"),
        "{fx:?}"
    );
    assert!(
        fx.iter()
            .any(|x| matches!(x, Effect::Status(s) if s.state == IncidentState::Acknowledged)),
        "the ack is kept: {fx:?}"
    );
    let fx = e.apply(t("10:02:05"), Input::Tick).unwrap();
    assert!(
        matches!(ops(&fx)[..], [SilenceOp::Create { incident: 1, .. }]),
        "{fx:?}"
    );
}

#[test]
fn a_silence_made_after_the_incident_resolved_is_taken_back() {
    let mut e = silencing_engine();
    e.apply(t("10:00:00"), fire("g1", "a1", "09:59:00"))
        .unwrap();
    e.apply(t("10:01:00"), ack(1, "alice")).unwrap();
    // Unacked before Alertmanager answered: the silence it makes is expired at once.
    e.apply(
        t("10:01:01"),
        Input::Unack {
            id: 1,
            by: Actor::new("bob", Via::Api),
        },
    )
    .unwrap();
    let fx = e
        .apply(
            t("10:01:02"),
            done(1, SilenceDone::Created { id: "s-9".into() }, "12:01:00"),
        )
        .unwrap();
    assert_eq!(
        ops(&fx),
        [&SilenceOp::Expire {
            incident: 1,
            id: "s-9".into()
        }]
    );
}

#[test]
fn without_silence_on_ack_an_ack_asks_nothing_of_alertmanager() {
    let mut e = engine();
    e.apply(t("10:00:00"), fire("g1", "a1", "09:59:00"))
        .unwrap();
    let fx = e.apply(t("10:01:00"), ack(1, "alice")).unwrap();
    assert!(ops(&fx).is_empty());
}
