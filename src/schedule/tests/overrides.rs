//! Overrides at the alice → bob handoff (Mon 2027-01-11 09:00 CST = 15:00Z).

use super::*;
use crate::schedule::{Change, Every, Override, Via};

fn cal(fallback: Option<&str>) -> Calendar {
    calendar(
        rotation(
            "America/Chicago",
            Every::Weekly,
            1,
            "2027-01-04T09:00",
            &["alice", "bob", "carol"],
        ),
        vec![rule(Who::Rotation("ops".into()))],
        fallback,
    )
}

fn over(id: u64, change: Change, from: &str, to: &str) -> Override {
    Override {
        id,
        change,
        from: at(from),
        to: at(to),
    }
}

fn replace(contact: &str, with: &str) -> Change {
    Change::Replace {
        contact: contact.into(),
        with: with.into(),
    }
}

#[test]
fn replace_covers_alice_until_the_handoff_and_adds_nobody_after_it() {
    let cal = cal(None);
    let o = [over(
        1,
        replace("alice", "zoe"),
        "2027-01-11T12:00:00Z",
        "2027-01-11T18:00:00Z",
    )];
    assert_eq!(names(&cal, &o, "2027-01-11T11:59:00Z"), ["alice"]);
    assert_eq!(names(&cal, &o, "2027-01-11T12:00:00Z"), ["zoe"]);
    assert_eq!(names(&cal, &o, "2027-01-11T14:59:00Z"), ["zoe"]);
    // alice is no longer on call: the replace has nobody to replace.
    assert_eq!(names(&cal, &o, "2027-01-11T15:00:00Z"), ["bob"]);
    let answer = cal
        .oncall("primary", &o, at("2027-01-11T13:00:00Z"))
        .unwrap();
    assert_eq!(answer.contacts[0].via, Via::Override(1));
    assert_eq!(answer.until, Some(at("2027-01-11T15:00:00Z")));
}

#[test]
fn add_starting_at_the_handoff_puts_both_on_call_for_its_hour() {
    let cal = cal(None);
    let o = [over(
        2,
        Change::Add {
            contact: "zoe".into(),
        },
        "2027-01-11T15:00:00Z",
        "2027-01-11T16:00:00Z",
    )];
    assert_eq!(names(&cal, &o, "2027-01-11T14:59:00Z"), ["alice"]);
    assert_eq!(names(&cal, &o, "2027-01-11T15:00:00Z"), ["bob", "zoe"]);
    assert_eq!(names(&cal, &o, "2027-01-11T16:00:00Z"), ["bob"]);
    let answer = cal
        .oncall("primary", &o, at("2027-01-11T15:00:00Z"))
        .unwrap();
    assert_eq!(answer.until, Some(at("2027-01-11T16:00:00Z")));
    assert_eq!(answer.contacts[1].via, Via::Override(2));
}

#[test]
fn remove_of_the_incoming_person_leaves_the_fallback_paged() {
    let cal = cal(Some("lead"));
    let o = [over(
        3,
        Change::Remove {
            contact: "bob".into(),
        },
        "2027-01-11T15:00:00Z",
        "2027-01-11T17:00:00Z",
    )];
    assert_eq!(names(&cal, &o, "2027-01-11T14:59:00Z"), ["alice"]);
    let answer = cal
        .oncall("primary", &o, at("2027-01-11T15:00:00Z"))
        .unwrap();
    assert!(answer.fallback_used);
    assert_eq!(answer.contacts[0].name, "lead");
    assert_eq!(answer.until, Some(at("2027-01-11T17:00:00Z")));
    assert_eq!(names(&cal, &o, "2027-01-11T17:00:00Z"), ["bob"]);
    // check counts the removal as a gap even though the fallback is paged.
    let findings = cal.check(
        "primary",
        &o,
        at("2027-01-11T14:00:00Z"),
        at("2027-01-11T18:00:00Z"),
    );
    assert_eq!(
        findings,
        [crate::schedule::Finding::Gap {
            start: at("2027-01-11T15:00:00Z"),
            end: at("2027-01-11T17:00:00Z"),
        }]
    );
}

#[test]
fn overrides_apply_in_creation_order() {
    let cal = cal(None);
    let add = over(
        4,
        Change::Add {
            contact: "zoe".into(),
        },
        "2027-01-11T00:00:00Z",
        "2027-01-12T00:00:00Z",
    );
    let remove = over(
        5,
        Change::Remove {
            contact: "zoe".into(),
        },
        "2027-01-11T00:00:00Z",
        "2027-01-12T00:00:00Z",
    );
    assert_eq!(
        names(&cal, &[add.clone(), remove.clone()], "2027-01-11T16:00:00Z"),
        ["bob"]
    );
    assert_eq!(
        names(&cal, &[remove, add], "2027-01-11T16:00:00Z"),
        ["bob", "zoe"]
    );
}

#[test]
fn replace_with_someone_already_on_call_lists_them_once() {
    let cal = cal(None);
    let o = [
        over(
            6,
            Change::Add {
                contact: "zoe".into(),
            },
            "2027-01-11T16:00:00Z",
            "2027-01-11T18:00:00Z",
        ),
        over(
            7,
            replace("bob", "zoe"),
            "2027-01-11T16:00:00Z",
            "2027-01-11T18:00:00Z",
        ),
    ];
    assert_eq!(names(&cal, &o, "2027-01-11T17:00:00Z"), ["zoe"]);
    let itself = [over(
        9,
        replace("bob", "bob"),
        "2027-01-11T16:00:00Z",
        "2027-01-11T18:00:00Z",
    )];
    assert_eq!(names(&cal, &itself, "2027-01-11T17:00:00Z"), ["bob"]);
}

#[test]
fn shifts_show_the_override_as_its_own_interval() {
    let cal = cal(None);
    let o = [over(
        8,
        replace("bob", "zoe"),
        "2027-01-12T00:00:00Z",
        "2027-01-13T00:00:00Z",
    )];
    let shifts = cal.shifts(
        "primary",
        &o,
        at("2027-01-11T00:00:00Z"),
        at("2027-01-14T00:00:00Z"),
    );
    let got: Vec<_> = shifts
        .iter()
        .map(|s| (s.contact.as_str(), s.start, s.end, s.via.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "alice",
                at("2027-01-11T00:00:00Z"),
                at("2027-01-11T15:00:00Z"),
                "ops".into()
            ),
            (
                "bob",
                at("2027-01-11T15:00:00Z"),
                at("2027-01-12T00:00:00Z"),
                "ops".into()
            ),
            (
                "zoe",
                at("2027-01-12T00:00:00Z"),
                at("2027-01-13T00:00:00Z"),
                "override 8".into()
            ),
            (
                "bob",
                at("2027-01-13T00:00:00Z"),
                at("2027-01-14T00:00:00Z"),
                "ops".into()
            ),
        ]
    );
}
