//! Schedule rules: days, hours, windows past midnight, and when the answer changes.

use super::*;
use crate::schedule::{Every, Finding, Via};

const MON_FRI: [bool; 7] = [true, true, true, true, true, false, false];
const FRI: [bool; 7] = [false, false, false, false, true, false, false];
const SAT_SUN: [bool; 7] = [false, false, false, false, false, true, true];
const SUN: [bool; 7] = [false, false, false, false, false, false, true];

fn window(who: Who, days: Option<[bool; 7]>, from: &str, to: &str) -> Rule {
    Rule {
        who,
        days,
        from: Some(clock(from)),
        to: Some(clock(to)),
    }
}

fn ops() -> Rotation {
    rotation(
        "America/Chicago",
        Every::Weekly,
        1,
        "2027-01-04T09:00",
        &["alice", "bob", "carol"],
    )
}

/// The rotation all the time, dana at weekends by day, erin on Friday night.
fn weekend_calendar() -> Calendar {
    calendar(
        ops(),
        vec![
            rule(Who::Rotation("ops".into())),
            window(contact("dana"), Some(SAT_SUN), "10:00", "18:00"),
            window(contact("erin"), Some(FRI), "22:00", "06:00"),
        ],
        None,
    )
}

#[test]
fn friday_night_window_runs_into_saturday_but_not_saturday_night() {
    let cal = weekend_calendar();
    let table: [(&str, &[&str]); 7] = [
        ("2027-01-08T05:00:00Z", &["alice"]), // Thu 23:00: Thursday has no window
        ("2027-01-09T03:59:00Z", &["alice"]), // Fri 21:59
        ("2027-01-09T04:00:00Z", &["alice", "erin"]), // Fri 22:00
        ("2027-01-09T11:59:00Z", &["alice", "erin"]), // Sat 05:59, Friday's window
        ("2027-01-09T12:00:00Z", &["alice"]), // Sat 06:00
        ("2027-01-09T16:00:00Z", &["alice", "dana"]), // Sat 10:00
        ("2027-01-10T04:00:00Z", &["alice"]), // Sat 22:00: erin is Fridays only
    ];
    for (t, expected) in table {
        assert_eq!(names(&cal, &[], t), expected, "at {t}");
    }
}

#[test]
fn until_is_the_next_window_edge_or_handoff_that_changes_the_answer() {
    let cal = weekend_calendar();
    let table = [
        ("2027-01-09T03:59:00Z", "2027-01-09T04:00:00.000Z"), // erin starts
        ("2027-01-09T04:00:00Z", "2027-01-09T12:00:00.000Z"), // erin ends
        ("2027-01-09T12:00:00Z", "2027-01-09T16:00:00.000Z"), // dana starts
        ("2027-01-10T00:00:00Z", "2027-01-10T16:00:00.000Z"), // Sat 18:00 → Sun 10:00
        ("2027-01-11T00:00:00Z", "2027-01-11T15:00:00.000Z"), // handoff alice → bob
    ];
    for (t, until) in table {
        let answer = cal.oncall("primary", &[], at(t)).unwrap();
        assert_eq!(
            answer.until.map(|u| u.to_rfc3339()).as_deref(),
            Some(until),
            "at {t}"
        );
    }
}

#[test]
fn a_one_member_rotation_all_the_time_is_on_call_forever() {
    let cal = calendar(
        rotation(
            "America/Chicago",
            Every::Hourly,
            1,
            "2027-01-04T09:00",
            &["alice"],
        ),
        vec![rule(Who::Rotation("ops".into()))],
        None,
    );
    let answer = cal
        .oncall("primary", &[], at("2027-06-01T00:00:00Z"))
        .unwrap();
    assert_eq!(answer.until, None);
    assert_eq!(answer.contacts[0].via, Via::Rotation("ops".into()));
}

#[test]
fn a_person_named_twice_does_not_make_until_report_a_change_that_is_not_one() {
    // Rule edges for alice change nothing while the rotation has alice on call all week.
    let cal = calendar(
        rotation(
            "America/Chicago",
            Every::Weekly,
            2,
            "2027-01-04T09:00",
            &["alice", "bob"],
        ),
        vec![
            rule(Who::Rotation("ops".into())),
            window(contact("alice"), None, "10:00", "12:00"),
        ],
        None,
    );
    let answer = cal
        .oncall("primary", &[], at("2027-01-04T15:00:00Z"))
        .unwrap();
    assert_eq!(answer.until, Some(at("2027-01-18T15:00:00Z")));
}

#[test]
fn rule_window_starting_in_the_spring_gap_opens_when_clocks_jump() {
    let cal = calendar(
        ops(),
        vec![window(contact("gil"), Some(SUN), "02:30", "03:30")],
        None,
    );
    assert!(names(&cal, &[], "2027-03-14T07:59:00Z").is_empty());
    assert_eq!(names(&cal, &[], "2027-03-14T08:00:00Z"), ["gil"]); // 03:00 CDT
    assert_eq!(names(&cal, &[], "2027-03-14T08:29:00Z"), ["gil"]);
    assert!(names(&cal, &[], "2027-03-14T08:30:00Z").is_empty()); // 03:30 CDT
}

#[test]
fn rule_window_ending_in_the_fall_fold_ends_at_the_first_occurrence() {
    let cal = calendar(
        ops(),
        vec![window(contact("gil"), Some(SUN), "00:00", "01:30")],
        None,
    );
    assert_eq!(names(&cal, &[], "2027-11-07T06:29:00Z"), ["gil"]); // 01:29 CDT
    assert!(names(&cal, &[], "2027-11-07T06:30:00Z").is_empty()); // first 01:30
    assert!(names(&cal, &[], "2027-11-07T07:30:00Z").is_empty()); // second 01:30
}

#[test]
fn unknown_schedule_is_none() {
    assert!(
        weekend_calendar()
            .oncall("secondary", &[], at("2027-01-09T00:00:00Z"))
            .is_none()
    );
}

#[test]
fn nobody_on_call_pages_the_fallback_and_check_reports_the_gap() {
    let cal = calendar(
        ops(),
        vec![
            window(contact("dana"), Some(MON_FRI), "09:00", "17:00"),
            window(contact("erin"), Some(MON_FRI), "16:00", "18:00"),
        ],
        Some("lead"),
    );
    let night = cal
        .oncall("primary", &[], at("2027-01-04T12:00:00Z"))
        .unwrap();
    assert!(night.fallback_used);
    assert_eq!(night.contacts[0].name, "lead");
    assert_eq!(night.until, Some(at("2027-01-04T15:00:00Z")));
    let day = cal
        .oncall("primary", &[], at("2027-01-04T15:00:00Z"))
        .unwrap();
    assert!(!day.fallback_used);

    let findings = cal.check(
        "primary",
        &[],
        at("2027-01-04T06:00:00Z"),
        at("2027-01-05T06:00:00Z"),
    );
    assert_eq!(
        findings,
        [
            Finding::Gap {
                start: at("2027-01-04T06:00:00Z"),
                end: at("2027-01-04T15:00:00Z"),
            },
            Finding::Overlap {
                start: at("2027-01-04T22:00:00Z"),
                end: at("2027-01-04T23:00:00Z"),
                contacts: vec!["dana".into(), "erin".into()],
            },
            Finding::Gap {
                start: at("2027-01-05T00:00:00Z"),
                end: at("2027-01-05T06:00:00Z"),
            },
        ]
    );
    // The fallback shows in the shifts a calendar feed is built from.
    let shifts = cal.shifts(
        "primary",
        &[],
        at("2027-01-04T06:00:00Z"),
        at("2027-01-04T15:00:00Z"),
    );
    assert_eq!(shifts.len(), 1);
    assert_eq!(
        (shifts[0].contact.as_str(), &shifts[0].via),
        ("lead", &Via::Fallback)
    );
}
