//! Rotation handoffs across DST: GoAlert's vectors (2020) and the 2027/2028 changes.

use super::*;
use crate::schedule::Every::{Daily, Hourly, Monthly, Weekly};

const CHICAGO: &str = "America/Chicago";
const BERLIN: &str = "Europe/Berlin";
const LORD_HOWE: &str = "Australia/Lord_Howe";

#[test]
fn daily_handoff_in_the_spring_gap_happens_when_clocks_jump_not_half_an_hour_later() {
    // GoAlert: 03-07 02:30 CST → 03-08 03:00 CDT → 03-09 02:30 CDT.
    let r = rotation(CHICAGO, Daily, 1, "2020-03-07T02:30", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 3),
        [
            "2020-03-07T08:30:00.000Z",
            "2020-03-08T08:00:00.000Z",
            "2020-03-09T07:30:00.000Z"
        ]
    );
}

#[test]
fn hourly_rotation_across_spring_forward_gets_two_half_hour_shifts() {
    // GoAlert: 01:30 CST → 03:00 CDT → 03:30 CDT → 04:30.
    let r = rotation(CHICAGO, Hourly, 1, "2020-03-08T01:30", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 4),
        [
            "2020-03-08T07:30:00.000Z",
            "2020-03-08T08:00:00.000Z",
            "2020-03-08T08:30:00.000Z",
            "2020-03-08T09:30:00.000Z"
        ]
    );
}

#[test]
fn hourly_rotation_across_fall_back_has_one_two_hour_shift() {
    // GoAlert: 01:30 CDT → 02:30 CST (two real hours) → 03:30 CST.
    let r = rotation(CHICAGO, Hourly, 1, "2020-11-01T00:30", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 4),
        [
            "2020-11-01T05:30:00.000Z",
            "2020-11-01T06:30:00.000Z",
            "2020-11-01T08:30:00.000Z",
            "2020-11-01T09:30:00.000Z"
        ]
    );
}

#[test]
fn hourly_24_hands_off_exactly_like_daily_1_through_both_changes() {
    let hourly = rotation(CHICAGO, Hourly, 24, "2027-03-01T02:30", &["a", "b"]);
    let daily = rotation(CHICAGO, Daily, 1, "2027-03-01T02:30", &["a", "b"]);
    assert_eq!(handoffs(&hourly, 300), handoffs(&daily, 300));
}

#[test]
fn monthly_handoff_on_the_fall_back_night_is_the_first_occurrence() {
    // GoAlert: Oct 1 01:30 → Nov 1 01:30 CDT → Dec 1 01:30 CST.
    let r = rotation(CHICAGO, Monthly, 1, "2020-10-01T01:30", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 3),
        [
            "2020-10-01T06:30:00.000Z",
            "2020-11-01T06:30:00.000Z",
            "2020-12-01T07:30:00.000Z"
        ]
    );
}

#[test]
fn lord_howe_daily_handoff_in_the_half_hour_gap_is_the_transition() {
    // GoAlert: 02:15 does not exist on 2020-10-04; the handoff is 02:30 +11.
    let r = rotation(LORD_HOWE, Daily, 1, "2020-10-03T02:15", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 3),
        [
            "2020-10-02T15:45:00.000Z",
            "2020-10-03T15:30:00.000Z",
            "2020-10-04T15:15:00.000Z"
        ]
    );
}

#[test]
fn lord_howe_hourly_fall_back_gives_an_extra_half_hour() {
    // GoAlert: 01:30 +11 → 02:30 +10:30, an hour and a half on call.
    let r = rotation(LORD_HOWE, Hourly, 1, "2021-04-04T00:30", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 4),
        [
            "2021-04-03T13:30:00.000Z",
            "2021-04-03T14:30:00.000Z",
            "2021-04-03T16:00:00.000Z",
            "2021-04-03T17:00:00.000Z"
        ]
    );
}

#[test]
fn lord_howe_2027_and_2028_changes_keep_the_wall_clock() {
    // 2027-10-03 02:00 +10:30 → 02:30 +11; 2028-04-02 02:00 +11 → 01:30 +10:30.
    let r = rotation(LORD_HOWE, Daily, 1, "2027-10-02T02:00", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 3),
        [
            "2027-10-01T15:30:00.000Z",
            "2027-10-02T15:30:00.000Z",
            "2027-10-03T15:00:00.000Z"
        ]
    );
    let r = rotation(LORD_HOWE, Daily, 1, "2028-04-01T01:45", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 3),
        [
            "2028-03-31T14:45:00.000Z",
            "2028-04-01T14:45:00.000Z",
            "2028-04-02T15:15:00.000Z"
        ]
    );
}

#[test]
fn weekly_chicago_shift_is_an_hour_short_in_spring_and_long_in_fall_2027() {
    let r = rotation(
        CHICAGO,
        Weekly,
        1,
        "2027-01-04T09:00",
        &["alice", "bob", "carol"],
    );
    let table = [
        // (instant, on call): handoffs stay at Monday 09:00 local.
        ("2027-03-08T14:59:00Z", "carol"),
        ("2027-03-08T15:00:00Z", "alice"), // 09:00 CST, week 9
        ("2027-03-15T13:59:00Z", "alice"),
        ("2027-03-15T14:00:00Z", "bob"), // 09:00 CDT: 167 h later
        ("2027-11-01T13:59:00Z", "alice"),
        ("2027-11-01T14:00:00Z", "bob"), // week 43, 09:00 CDT
        ("2027-11-08T14:59:00Z", "bob"), // 169 h shift
        ("2027-11-08T15:00:00Z", "carol"),
    ];
    for (t, who) in table {
        assert_eq!(r.member_at(at(t)), Some(who), "at {t}");
    }
}

#[test]
fn daily_berlin_2027_spring_gap_and_fall_fold() {
    let r = rotation(BERLIN, Daily, 1, "2027-03-27T02:30", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 3),
        [
            "2027-03-27T01:30:00.000Z",
            "2027-03-28T01:00:00.000Z", // 03:00 CEST, when clocks jump
            "2027-03-29T00:30:00.000Z"
        ]
    );
    let r = rotation(BERLIN, Daily, 1, "2027-10-30T02:30", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 3),
        [
            "2027-10-30T00:30:00.000Z",
            "2027-10-31T00:30:00.000Z", // first 02:30, still CEST
            "2027-11-01T01:30:00.000Z"
        ]
    );
}

#[test]
fn two_hour_rotation_stays_on_even_local_hours_across_berlin_spring_2028() {
    let r = rotation(BERLIN, Hourly, 2, "2028-03-26T00:00", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 4),
        [
            "2028-03-25T23:00:00.000Z", // 00:00 CET
            "2028-03-26T01:00:00.000Z", // 02:00 does not exist: 03:00 CEST
            "2028-03-26T02:00:00.000Z", // 04:00 CEST: a one-hour shift
            "2028-03-26T04:00:00.000Z"  // 06:00 CEST
        ]
    );
}

#[test]
fn hourly_chicago_fall_2028_second_one_oclock_belongs_to_the_one_oclock_shift() {
    let r = rotation(CHICAGO, Hourly, 1, "2028-11-05T00:00", &["a", "b"]);
    // 01:00 CDT (06:00Z) starts b's shift; the repeated 01:00 CST (07:00Z) does not hand off.
    assert_eq!(r.member_at(at("2028-11-05T06:00:00Z")), Some("b"));
    assert_eq!(r.member_at(at("2028-11-05T07:30:00Z")), Some("b"));
    assert_eq!(r.member_at(at("2028-11-05T08:00:00Z")), Some("a")); // 02:00 CST
}

#[test]
fn monthly_on_the_31st_clamps_to_short_months_and_comes_back() {
    let r = rotation(CHICAGO, Monthly, 1, "2027-01-31T09:00", &["a", "b"]);
    assert_eq!(
        handoffs(&r, 4),
        [
            "2027-01-31T15:00:00.000Z",
            "2027-02-28T15:00:00.000Z",
            "2027-03-31T14:00:00.000Z",
            "2027-04-30T14:00:00.000Z"
        ]
    );
    // 2028 is a leap year: February's handoff is the 29th.
    assert_eq!(r.handoff(13).unwrap(), at("2028-02-29T15:00:00Z"));
}

#[test]
fn rotation_started_in_2017_answers_in_2028_from_arithmetic() {
    let r = rotation(CHICAGO, Weekly, 1, "2017-01-02T09:00", &["a", "b", "c"]);
    // 601 weeks from 2017-01-02 to 2028-07-10.
    assert_eq!(r.shift_index(at("2028-07-10T14:00:00Z")), 601);
    assert_eq!(r.member_at(at("2028-07-10T13:59:00Z")), Some("a"));
    assert_eq!(r.member_at(at("2028-07-10T14:00:00Z")), Some("b"));
    let hourly = rotation(CHICAGO, Hourly, 1, "2017-01-01T00:00", &["a", "b"]);
    let started = std::time::Instant::now();
    for h in 0..1000 {
        let t = at("2028-03-12T00:00:00Z").plus(std::time::Duration::from_secs(h * 60));
        assert!(hourly.member_at(t).is_some());
    }
    // A walk over every handoff since 2017 would take ~100k steps per call.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn nobody_is_on_call_before_the_rotation_starts() {
    let r = rotation(CHICAGO, Weekly, 1, "2027-01-04T09:00", &["alice"]);
    assert_eq!(r.member_at(at("2027-01-04T14:59:59Z")), None);
    assert_eq!(r.member_at(at("2027-01-04T15:00:00Z")), Some("alice"));
}

#[test]
fn edited_member_list_keeps_the_current_shift_and_takes_over_at_the_next_handoff() {
    let mut r = rotation(
        CHICAGO,
        Weekly,
        1,
        "2027-01-04T09:00",
        &["alice", "bob", "carol"],
    );
    // Saved on Wednesday of bob's week (shift 1).
    r.versions.push(Members {
        from: Some(at("2027-01-13T18:00:00Z")),
        members: ["alice", "dave", "carol", "erin"]
            .map(String::from)
            .to_vec(),
    });
    let table = [
        ("2027-01-13T18:00:00Z", "bob"),   // unchanged until the handoff
        ("2027-01-18T15:00:00Z", "carol"), // shift 2: new list [2 % 4]
        ("2027-01-25T15:00:00Z", "erin"),  // shift 3
        ("2027-02-01T15:00:00Z", "alice"), // shift 4
    ];
    for (t, who) in table {
        assert_eq!(r.member_at(at(t)), Some(who), "at {t}");
    }
    // Earlier shifts are still answered with the list they had.
    assert_eq!(r.member_at(at("2027-01-11T15:00:00Z")), Some("bob"));
}

#[test]
fn rotation_shifts_merge_the_same_person_and_clip_to_the_range() {
    let r = rotation(CHICAGO, Daily, 1, "2027-03-13T09:00", &["a", "a", "b"]);
    let shifts = r.shifts(at("2027-03-13T16:00:00Z"), at("2027-03-17T00:00:00Z"));
    let got: Vec<_> = shifts
        .iter()
        .map(|s| (s.contact.as_str(), s.start.to_rfc3339(), s.end.to_rfc3339()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "a",
                "2027-03-13T16:00:00.000Z".into(),
                "2027-03-15T14:00:00.000Z".into()
            ),
            (
                "b",
                "2027-03-15T14:00:00.000Z".into(),
                "2027-03-16T14:00:00.000Z".into()
            ),
            (
                "a",
                "2027-03-16T14:00:00.000Z".into(),
                "2027-03-17T00:00:00.000Z".into()
            ),
        ]
    );
}
