//! Steps that name a schedule page whoever is on call as the step fires: the person of
//! the shift, the one an override puts there, or the fallback when nobody is.

use super::*;
use crate::schedule::Change;

/// bob holds the daily shift until 12:00 on the 21st, carol after; the policy pages
/// `primary` at once and again three hours later.
const ONCALL: &str = r#"
[defaults]
ack_timeout = "30m"

[notifiers.sms]
type = "log"
[notifiers.mail]
type = "log"

[contacts.bob]
methods = [{ notifier = "sms", to = "+15550111" }, { notifier = "mail", to = "bob@example.com", after = "5m" }]
[contacts.carol]
methods = [{ notifier = "sms", to = "+15550122" }]
[contacts.dana]
methods = [{ notifier = "sms", to = "+15550133" }]
[contacts.lead]
methods = [{ notifier = "mail", to = "lead@example.com" }]

[rotations.ops]
time_zone = "UTC"
type = "daily"
start = "2026-11-20T12:00"
members = ["bob", "carol"]

[schedules.primary]
time_zone = "UTC"
fallback = "lead"
rules = [{ rotation = "ops" }]

[policies.default]
steps = [
  { after = "0s", notify = ["primary"] },
  { after = "3h", notify = ["primary"] },
]

[[routes]]
policy = "default"
"#;

fn oncall_engine() -> Engine {
    Engine::new(escalation_config(ONCALL))
}

fn over(change: Change, from: &str, to: &str) -> Input {
    Input::AddOverride {
        schedule: "primary".into(),
        change,
        from: t(from),
        to: t(to),
        by: Actor::new("alice", Via::Api),
    }
}

fn replace(contact: &str, with: &str) -> Change {
    Change::Replace {
        contact: contact.into(),
        with: with.into(),
    }
}

fn step_lines(fx: &[Effect]) -> Vec<String> {
    events(fx)
        .into_iter()
        .filter(|e| e.kind == EventKind::Step)
        .map(|e| e.detail.clone())
        .collect()
}

#[test]
fn bob_is_paged_during_his_shift_and_carol_after_the_handoff() {
    let mut e = oncall_engine();
    let fx = run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "a1", "09:59:00"),
                &["bob:sms:triggered:s1c0"],
            ),
            // bob's second method, five minutes after he was paged.
            ("10:05:00", Input::Tick, &["bob:mail:triggered:s1c0"]),
            // The handoff was at 12:00: the second step asks again and finds carol.
            ("13:00:00", Input::Tick, &["carol:sms:escalated:s2c0"]),
        ],
    );
    assert_eq!(
        step_lines(&fx[0]),
        [
            "step 1/2 of policy default (pass 1/1): paging primary (bob on call through rotation ops)"
        ]
    );
    assert_eq!(
        step_lines(&fx[2]),
        [
            "step 2/2 of policy default (pass 1/1): paging primary (carol on call through rotation ops)"
        ]
    );
    let first = page_via(&fx[0], "sms");
    assert_eq!(first.to.as_deref(), Some("+15550111"));
    assert_eq!(first.contact.as_deref(), Some("bob"));
    assert!(
        first.reason.contains("on call for primary"),
        "{}",
        first.reason
    );
}

#[test]
fn an_override_made_mid_incident_is_honoured_by_the_next_step() {
    let mut e = oncall_engine();
    run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "a1", "09:59:00"),
                &["bob:sms:triggered:s1c0"],
            ),
            ("10:05:00", Input::Tick, &["bob:mail:triggered:s1c0"]),
            // carol is ill: dana takes her shift this afternoon.
            (
                "11:00:00",
                over(replace("carol", "dana"), "11:00:00", "18:00:00"),
                &[],
            ),
            ("13:00:00", Input::Tick, &["dana:sms:escalated:s2c0"]),
        ],
    );
}

#[test]
fn nobody_on_call_pages_the_fallback_and_the_history_says_so() {
    let mut e = oncall_engine();
    e.apply(
        t("09:00:00"),
        over(
            Change::Remove {
                contact: "bob".into(),
            },
            "09:00:00",
            "12:00:00",
        ),
    )
    .unwrap();
    let fx = run_table(
        &mut e,
        &[(
            "10:00:00",
            fire("g1", "a1", "09:59:00"),
            &["lead:mail:triggered:s1c0"],
        )],
    );
    assert_eq!(
        step_lines(&fx[0]),
        ["step 1/2 of policy default (pass 1/1): paging primary (nobody on call: fallback lead)"]
    );
}

#[test]
fn overrides_that_overlap_for_one_person_are_refused_and_others_are_not() {
    let mut e = oncall_engine();
    let first = e
        .apply(
            t("09:00:00"),
            over(replace("bob", "dana"), "10:00:00", "12:00:00"),
        )
        .unwrap();
    assert!(matches!(&first[..], [Effect::Override(o)] if o.id == 1 && o.by == "alice"));
    // dana is already changed from 10:00 to 12:00.
    let refused = e
        .apply(
            t("09:00:00"),
            over(
                Change::Add {
                    contact: "dana".into(),
                },
                "11:00:00",
                "13:00:00",
            ),
        )
        .unwrap_err();
    assert_eq!(
        refused.refusal,
        Refusal::OverrideConflict {
            id: 1,
            contact: "dana".into()
        }
    );
    assert_eq!(refused.refusal.http_status(), 409);
    // Back to back is not an overlap, and carol is somebody else.
    e.apply(
        t("09:00:00"),
        over(
            Change::Add {
                contact: "dana".into(),
            },
            "12:00:00",
            "13:00:00",
        ),
    )
    .unwrap();
    e.apply(
        t("09:00:00"),
        over(
            Change::Add {
                contact: "carol".into(),
            },
            "11:00:00",
            "13:00:00",
        ),
    )
    .unwrap();
    assert_eq!(e.overrides().len(), 3);
}

#[test]
fn an_override_that_makes_no_sense_is_refused_with_what_to_fix() {
    let mut e = oncall_engine();
    let refusal = |e: &mut Engine, input| e.apply(t("09:00:00"), input).unwrap_err().refusal;
    let backwards = over(replace("bob", "dana"), "12:00:00", "10:00:00");
    assert_eq!(
        refusal(&mut e, backwards),
        Refusal::BadOverride("an override must end after it starts")
    );
    let past = over(replace("bob", "dana"), "07:00:00", "08:00:00");
    assert!(matches!(refusal(&mut e, past), Refusal::BadOverride(_)));
    let stranger = over(replace("bob", "mallory"), "10:00:00", "12:00:00");
    assert_eq!(
        refusal(&mut e, stranger),
        Refusal::UnknownContact("mallory".into())
    );
    let elsewhere = Input::AddOverride {
        schedule: "secondary".into(),
        change: replace("bob", "dana"),
        from: t("10:00:00"),
        to: t("12:00:00"),
        by: Actor::new("alice", Via::Api),
    };
    assert_eq!(
        refusal(&mut e, elsewhere),
        Refusal::UnknownSchedule("secondary".into())
    );
    assert!(e.overrides().is_empty());
}

#[test]
fn a_deleted_override_no_longer_changes_who_is_paged() {
    let mut e = oncall_engine();
    e.apply(
        t("09:00:00"),
        over(replace("bob", "dana"), "09:00:00", "12:00:00"),
    )
    .unwrap();
    let fx = e
        .apply(
            t("09:30:00"),
            Input::DeleteOverride {
                schedule: "primary".into(),
                id: 1,
                by: Actor::new("alice", Via::Api),
            },
        )
        .unwrap();
    assert!(matches!(&fx[..], [Effect::OverrideDeleted { id: 1, .. }]));
    run_table(
        &mut e,
        &[(
            "10:00:00",
            fire("g1", "a1", "09:59:00"),
            &["bob:sms:triggered:s1c0"],
        )],
    );
    let again = e.apply(
        t("10:00:00"),
        Input::DeleteOverride {
            schedule: "primary".into(),
            id: 1,
            by: Actor::new("alice", Via::Api),
        },
    );
    assert_eq!(
        again.unwrap_err().refusal,
        Refusal::NoOverride {
            schedule: "primary".into(),
            id: 1
        }
    );
}

#[test]
fn after_a_restart_the_override_and_the_rostered_methods_still_hold() {
    let mut e = oncall_engine();
    let made = e
        .apply(
            t("09:00:00"),
            over(replace("carol", "dana"), "11:00:00", "18:00:00"),
        )
        .unwrap();
    let fx = run_table(
        &mut e,
        &[(
            "10:00:00",
            fire("g1", "a1", "09:59:00"),
            &["bob:sms:triggered:s1c0"],
        )],
    );
    let Effect::Override(record) = &made[0] else {
        panic!("no override recorded: {made:?}");
    };
    // The restored engine knows bob's later method although the policy names only the
    // schedule, and dana still takes carol's afternoon.
    let mut back = Engine::restore(oncall_engine_config(), 2, 10, vec![stored(&fx, 1)], vec![]);
    back.restore_overrides(vec![record.clone()], 2);
    let later = back.apply(t("10:05:00"), Input::Tick).unwrap();
    assert_eq!(
        pages(&later).into_iter().map(page_str).collect::<Vec<_>>(),
        ["bob:mail:triggered:s1c0"]
    );
    let afternoon = back.apply(t("13:00:00"), Input::Tick).unwrap();
    assert_eq!(
        pages(&afternoon)
            .into_iter()
            .map(page_str)
            .collect::<Vec<_>>(),
        ["dana:sms:escalated:s2c0"]
    );
}

fn oncall_engine_config() -> Arc<EscalationConfig> {
    escalation_config(ONCALL)
}
