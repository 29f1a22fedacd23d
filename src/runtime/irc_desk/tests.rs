use super::*;
use crate::schedule::{OnCallContact, Via as Why};

fn chicago() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("America/Chicago").unwrap()
}

fn on(name: &str, via: Why) -> OnCallContact {
    OnCallContact {
        name: name.into(),
        via,
    }
}

const WEDNESDAY_NOON: &str = "2027-01-06T18:00:00Z";

#[test]
fn oncall_says_who_through_which_rotation_until_the_handoff_on_the_schedules_clock() {
    let oc = OnCall {
        contacts: vec![on("bob", Why::Rotation("ops".into()))],
        until: Some(Timestamp::at("2027-01-11T15:00:00Z")),
        fallback_used: false,
    };
    assert_eq!(
        oncall_line("primary", &oc, &chicago(), Timestamp::at(WEDNESDAY_NOON)),
        "primary: bob (rotation ops) until Mon 09:00 CST"
    );
}

#[test]
fn oncall_in_summer_says_cdt_and_a_far_handoff_gets_its_date() {
    let oc = OnCall {
        contacts: vec![on("carol", Why::Override(3)), on("dana", Why::Rule)],
        until: Some(Timestamp::at("2027-07-19T14:00:00Z")),
        fallback_used: false,
    };
    assert_eq!(
        oncall_line(
            "primary",
            &oc,
            &chicago(),
            Timestamp::at("2027-07-06T12:00:00Z")
        ),
        "primary: carol (override 3), dana (rule) until Mon 19 Jul 09:00 CDT"
    );
}

#[test]
fn a_gap_says_nobody_is_on_call_and_who_is_paged_instead() {
    let now = Timestamp::at(WEDNESDAY_NOON);
    let fallback = OnCall {
        contacts: vec![on("lead", Why::Fallback)],
        until: Some(Timestamp::at("2027-01-06T20:00:00Z")),
        fallback_used: true,
    };
    assert_eq!(
        oncall_line("primary", &fallback, &chicago(), now),
        "primary: nobody on call; paged instead: lead (fallback) until Wed 14:00 CST"
    );
    let nobody = OnCall {
        contacts: vec![],
        until: None,
        fallback_used: true,
    };
    assert_eq!(
        oncall_line("db", &nobody, &chicago(), now),
        "db: nobody on call and no fallback"
    );
}
