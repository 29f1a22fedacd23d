use clap::Parser;

use super::*;

fn chicago() -> TimeZone {
    TimeZone::get("America/Chicago").unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse::<TimeArg>().unwrap().resolve(&chicago()).unwrap()
}

#[test]
fn a_local_time_is_read_on_the_schedules_wall_clock() {
    assert_eq!(
        at("2027-01-04T09:00"),
        Timestamp::at("2027-01-04T15:00:00Z")
    );
    assert_eq!(
        at("2027-07-05T09:00"),
        Timestamp::at("2027-07-05T14:00:00Z")
    );
    assert_eq!(
        at("2027-01-04 09:00:30"),
        Timestamp::at("2027-01-04T15:00:30Z")
    );
}

#[test]
fn an_instant_with_an_offset_means_the_same_everywhere() {
    assert_eq!(
        at("2027-01-04T15:00:00Z"),
        Timestamp::at("2027-01-04T15:00:00Z")
    );
    assert_eq!(
        at("2027-01-04T15:00Z"),
        Timestamp::at("2027-01-04T15:00:00Z")
    );
    assert_eq!(
        at("2027-01-04T09:00:00-06:00"),
        Timestamp::at("2027-01-04T15:00:00Z")
    );
    assert_eq!(
        at("2027-01-04T16:00:00+01:00"),
        Timestamp::at("2027-01-04T15:00:00Z")
    );
}

#[test]
fn a_local_time_in_the_spring_gap_starts_when_the_clocks_show_three() {
    // 02:30 does not exist on 2027-03-14 in Chicago: the schedules' rule, not jiff's
    // "compatible" 03:30.
    assert_eq!(
        at("2027-03-14T02:30"),
        Timestamp::at("2027-03-14T08:00:00Z")
    );
}

#[test]
fn a_local_time_seen_twice_in_the_autumn_is_its_first_occurrence() {
    // 01:30 on 2027-11-07 happens in CDT (-5), then again in CST (-6).
    assert_eq!(
        at("2027-11-07T01:30"),
        Timestamp::at("2027-11-07T06:30:00Z")
    );
}

#[test]
fn a_mistyped_time_is_refused_with_both_forms_shown() {
    for bad in [
        "banana",
        "",
        "2027-13-01T09:00",
        "2027-01-04T25:00",
        "2027-01-04T09:00[America/Chicago]",
        "tomorrow 9am",
    ] {
        let e = bad.parse::<TimeArg>().unwrap_err();
        assert!(
            e.contains("2027-01-04T15:00:00Z") && e.contains("2027-01-04T09:00"),
            "{bad}: {e}"
        );
    }
}

#[derive(Parser, Debug)]
struct Line {
    #[command(subcommand)]
    command: ScheduleCommand,
}

fn line(args: &[&str]) -> Result<ScheduleCommand, clap::Error> {
    Line::try_parse_from(std::iter::once("tocsin").chain(args.iter().copied())).map(|l| l.command)
}

#[test]
fn override_replace_reads_who_for_whom_and_for_how_long() {
    let cmd = line(&[
        "override",
        "replace",
        "primary",
        "bob",
        "carol",
        "--from",
        "2027-01-08T09:00",
        "--for",
        "1d",
        "--by",
        "alice",
    ])
    .unwrap();
    let ScheduleCommand::Override {
        action:
            OverrideAction::Replace {
                schedule,
                contact,
                with,
                window,
                by,
                ..
            },
    } = cmd
    else {
        panic!("{cmd:?}")
    };
    assert_eq!(
        (
            schedule.as_str(),
            contact.as_str(),
            with.as_str(),
            by.as_str()
        ),
        ("primary", "bob", "carol", "alice")
    );
    assert_eq!(
        window.from,
        Some(TimeArg::Local("2027-01-08T09:00".parse().unwrap()))
    );
    assert_eq!(window.end.span, Some(Duration::from_secs(86_400)));
    assert_eq!(window.end.to, None);
}

#[test]
fn an_override_needs_exactly_one_end() {
    let neither = line(&["override", "add", "primary", "dana"]).unwrap_err();
    assert_eq!(
        neither.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    let both = line(&[
        "override",
        "add",
        "primary",
        "dana",
        "--to",
        "2027-01-08T18:00",
        "--for",
        "8h",
    ])
    .unwrap_err();
    assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
    let zero = line(&["override", "add", "primary", "dana", "--for", "0s"]).unwrap_err();
    assert!(zero.to_string().contains("longer than 0s"), "{zero}");
    let ok = line(&[
        "override",
        "remove",
        "primary",
        "bob",
        "--to",
        "2027-01-08T18:00Z",
    ]);
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn override_delete_takes_a_number() {
    assert!(matches!(
        line(&["override", "delete", "primary", "3"]),
        Ok(ScheduleCommand::Override {
            action: OverrideAction::Delete { id: 3, .. }
        })
    ));
    assert!(line(&["override", "delete", "primary", "three"]).is_err());
}

#[test]
fn schedules_check_looks_four_weeks_ahead_unless_told_and_at_most_a_quarter() {
    let Ok(ScheduleCommand::Schedules {
        action: SchedulesAction::Check { days, schedule, .. },
    }) = line(&["schedules", "check"])
    else {
        panic!("schedules check not understood")
    };
    assert_eq!((days, schedule), (28, None));
    assert!(line(&["schedules", "check", "--days", "7"]).is_ok());
    assert!(line(&["schedules", "check", "--days", "93"]).is_err());
    assert!(line(&["schedules", "check", "--days", "0"]).is_err());
}

#[test]
fn oncall_without_a_schedule_asks_about_all_of_them() {
    let Ok(ScheduleCommand::Oncall { schedule, at, .. }) = line(&["oncall"]) else {
        panic!("oncall not understood")
    };
    assert_eq!((schedule, at), (None, None));
    let Ok(ScheduleCommand::Oncall { schedule, at, .. }) =
        line(&["oncall", "primary", "--at", "2027-01-09T22:00"])
    else {
        panic!("oncall primary --at not understood")
    };
    assert_eq!(schedule.as_deref(), Some("primary"));
    assert!(matches!(at, Some(TimeArg::Local(_))));
}

fn listed() -> serde_json::Value {
    json!({"schedules": [
        {"name": "primary", "time_zone": "America/Chicago", "fallback": "lead",
         "now": {"schedule": "primary", "at": "2027-01-06T12:00:00.000Z", "oncall": ["bob"],
                 "via": ["ops"], "until": "2027-01-11T15:00:00.000Z", "gap": false},
         "overrides": []},
        {"name": "db", "time_zone": "Europe/Berlin", "fallback": null,
         "now": {"schedule": "db", "at": "2027-01-06T12:00:00.000Z", "oncall": [],
                 "via": [], "until": null, "gap": true},
         "overrides": []},
    ]})
}

#[test]
fn oncall_shows_until_on_the_schedules_wall_clock_and_in_utc() {
    let all = known(&listed()).unwrap();
    assert_eq!(all[0].now, Timestamp::at("2027-01-06T12:00:00Z"));
    let answers: Vec<(&Known, Value)> = all.iter().map(|k| (k, k.entry["now"].clone())).collect();
    let table = oncall_table(&answers);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("SCHEDULE") && lines[0].contains("UNTIL"),
        "{table}"
    );
    assert!(
        lines[1].contains("bob")
            && lines[1].contains("ops")
            && lines[1].ends_with("Mon 2027-01-11 09:00 CST (2027-01-11 15:00 UTC)"),
        "{table}"
    );
    assert!(
        lines[2].contains("nobody (gap)") && lines[2].ends_with("no change ahead"),
        "{table}"
    );
}

#[test]
fn an_unknown_schedule_names_the_known_ones() {
    let all = known(&listed()).unwrap();
    let e = pick(&all, "secondary").err().unwrap().to_string();
    assert_eq!(e, "no schedule \"secondary\" (schedules: primary, db)");
}

#[test]
fn a_gap_ahead_is_named_with_who_is_paged_and_fails_the_check() {
    let all = known(&listed()).unwrap();
    let gap = json!({"findings": [
        {"kind": "gap", "start": "2027-01-09T00:00:00.000Z", "end": "2027-01-09T08:00:00.000Z"},
        {"kind": "overlap", "start": "2027-01-09T16:00:00.000Z", "end": "2027-01-10T00:00:00.000Z",
         "contacts": ["bob", "dana"]},
    ]});
    let (text, failed) = findings_text(&[(&all[0], gap), (&all[1], json!({"findings": []}))], 28);
    assert!(failed);
    assert!(
        text.contains(
            "primary: GAP Fri 2027-01-08 18:00 CST to Sat 2027-01-09 02:00 CST (8h): nobody on call, lead (the fallback) is paged"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "primary: overlap Sat 2027-01-09 10:00 CST to Sat 2027-01-09 18:00 CST (8h): bob, dana"
        ),
        "{text}"
    );
    assert!(
        text.contains("db: no gap or overlap in the next 28 days"),
        "{text}"
    );
    let overlap_only = json!({"findings": [
        {"kind": "overlap", "start": "2027-01-09T16:00:00.000Z", "end": "2027-01-10T00:00:00.000Z",
         "contacts": ["bob", "dana"]},
    ]});
    let (_, failed) = findings_text(&[(&all[0], overlap_only)], 28);
    assert!(!failed, "an overlap alone does not fail the check");
}
