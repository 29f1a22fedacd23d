//! Maintenance windows: planned work records its alerts and opens incidents as usual,
//! pages nobody while the window lasts, then pages what is still open from step 1.

use super::*;

const STEP1: &[&str] = &[
    "console:console:triggered:s1c0",
    "alice:push:triggered:s1c0",
];

fn maint(from: &str, to: &str) -> Input {
    Input::StartMaintenance {
        matchers: vec!["alertname=\"DiskFull\"".into()],
        from: t(from),
        to: t(to),
        comment: "disk swap".into(),
        by: Actor::new("alice", Via::Cli),
    }
}

fn end(id: u64) -> Input {
    Input::EndMaintenance {
        id,
        by: Actor::new("alice", Via::Cli),
    }
}

fn details(fx: &[Effect], kind: EventKind) -> Vec<String> {
    events(fx)
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.detail.clone())
        .collect()
}

#[test]
fn an_incident_in_the_window_pages_nobody_until_it_ends_then_from_step_one() {
    let mut e = engine();
    let fx = run_table(
        &mut e,
        &[
            ("10:00:00", maint("10:00:00", "11:00:00"), &[]),
            ("10:05:00", fire("g1", "a1", "10:04:00"), &[]),
            // Step 2 (bob, 10 minutes) would have come due here.
            ("10:15:00", Input::Tick, &[]),
            ("11:00:00", Input::Tick, STEP1),
            ("11:02:00", Input::Tick, &["alice:sms:triggered:s1c0"]),
            ("11:10:00", Input::Tick, &["bob:sms:escalated:s2c0"]),
        ],
    );
    assert_eq!(
        details(&fx[1], EventKind::Held),
        [
            "held by maintenance #1 (disk swap, until 2026-11-21T11:00:00.000Z): nothing is paged until it ends"
        ]
    );
    assert_eq!(
        details(&fx[3], EventKind::HoldEnded),
        ["maintenance #1 ended; escalation starts again from step 1"]
    );
    assert_eq!(e.next_deadline(), Some(t("11:20:00")));
}

#[test]
fn an_incident_resolved_in_the_window_never_pages() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            ("10:00:00", maint("10:00:00", "11:00:00"), &[]),
            ("10:05:00", fire("g1", "a1", "10:04:00"), &[]),
            ("10:30:00", clear("g1", "a1", "10:04:00"), &[]),
            ("11:00:00", Input::Tick, &[]),
            ("12:00:00", Input::Tick, &[]),
        ],
    );
}

#[test]
fn ending_the_window_early_pages_at_once() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            ("10:00:00", maint("10:00:00", "11:00:00"), &[]),
            ("10:05:00", fire("g1", "a1", "10:04:00"), &[]),
            ("10:20:00", end(1), STEP1),
        ],
    );
}

#[test]
fn a_window_starting_mid_escalation_holds_the_next_step() {
    let mut e = engine();
    let fx = run_table(
        &mut e,
        &[
            ("09:50:00", fire("g1", "a1", "09:49:00"), STEP1),
            ("09:52:00", Input::Tick, &["alice:sms:triggered:s1c0"]),
            // Made in advance; it starts exactly when bob's step is due.
            ("09:55:00", maint("10:00:00", "10:30:00"), &[]),
            ("10:00:00", Input::Tick, &[]),
            ("10:30:00", Input::Tick, STEP1),
        ],
    );
    assert_eq!(details(&fx[3], EventKind::Held).len(), 1);
}

#[test]
fn two_overlapping_windows_hold_until_the_last_one_ends() {
    let mut e = engine();
    let fx = run_table(
        &mut e,
        &[
            ("10:00:00", maint("10:00:00", "11:00:00"), &[]),
            ("10:01:00", maint("10:30:00", "12:00:00"), &[]),
            ("10:05:00", fire("g1", "a1", "10:04:00"), &[]),
            ("11:00:00", Input::Tick, &[]),
            ("12:00:00", Input::Tick, STEP1),
        ],
    );
    assert_eq!(
        details(&fx[3], EventKind::Held),
        [
            "maintenance #1 ended; still held by maintenance #2 (disk swap, until 2026-11-21T12:00:00.000Z)"
        ]
    );
}

#[test]
fn an_unack_inside_the_window_pages_nobody_either() {
    let mut e = engine();
    let unack = Input::Unack {
        id: 1,
        by: Actor::new("bob", Via::Api),
    };
    run_table(
        &mut e,
        &[
            ("10:00:00", maint("10:00:00", "11:00:00"), &[]),
            ("10:05:00", fire("g1", "a1", "10:04:00"), &[]),
            ("10:06:00", ack(1, "bob"), &[]),
            ("10:07:00", unack, &[]),
            ("10:30:00", Input::Tick, &[]),
            ("11:00:00", Input::Tick, STEP1),
        ],
    );
}

#[test]
fn a_window_ends_within_a_day_unless_extended_on_purpose() {
    let mut e = engine();
    e.apply(t("10:00:00"), maint("10:00:00", "10:30:00"))
        .unwrap();
    let refused = e
        .apply(
            t("10:00:00"),
            Input::StartMaintenance {
                matchers: vec!["service=\"db\"".into()],
                from: t("10:00:00"),
                to: Timestamp::at("2026-11-22T10:00:01Z"),
                comment: "migration".into(),
                by: Actor::new("alice", Via::Cli),
            },
        )
        .unwrap_err();
    assert!(
        refused.refusal.to_string().contains("at most 1d"),
        "{}",
        refused.refusal
    );
    // The work runs long: moved twice, each time at most a day from then.
    let extend = |to: &str| Input::ExtendMaintenance {
        id: 1,
        to: Timestamp::at(to),
        by: Actor::new("alice", Via::Cli),
    };
    e.apply(t("10:00:00"), extend("2026-11-22T09:00:00Z"))
        .unwrap();
    let fx = e
        .apply(t("10:00:00"), extend("2026-11-22T10:00:00Z"))
        .unwrap();
    assert!(matches!(&fx[..], [Effect::MaintenanceEnd { id: 1, by, .. }] if by == "alice"));
    let far = e
        .apply(t("10:00:00"), extend("2026-11-23T10:00:00Z"))
        .unwrap_err();
    assert!(matches!(far.refusal, Refusal::BadMaintenance(_)));
    assert_eq!(far.refusal.http_status(), 400);
}

#[test]
fn after_a_restart_a_window_that_ended_meanwhile_lets_go() {
    let mut e = engine();
    let fx = run_table(
        &mut e,
        &[
            ("10:00:00", maint("10:00:00", "11:00:00"), &[]),
            ("10:05:00", fire("g1", "a1", "10:04:00"), &[]),
        ],
    );
    let Effect::Maintenance(record) = &fx[0][0] else {
        panic!("{:?}", fx[0]);
    };
    let mut back = Engine::restore(
        escalation_config(CONFIG),
        2,
        10,
        vec![stored(&fx, 1)],
        vec![],
    );
    back.restore_maintenance(vec![record.clone()], 2);
    let later = back.apply(t("11:30:00"), Input::Tick).unwrap();
    assert_eq!(
        pages(&later).into_iter().map(page_str).collect::<Vec<_>>(),
        STEP1
    );
}
