//! `[rotations]` and `[schedules]`: a typo in a zone, a day or a name is found by
//! check-config, not by the first page that reaches nobody.

use super::{errors, load};

const BASE: &str = r#"
[notifiers.console]
type = "log"
[contacts.alice]
methods = [{ notifier = "console", to = "alice" }]
[contacts.bob]
methods = [{ notifier = "console", to = "bob" }]
[contacts.lead]
methods = [{ notifier = "console", to = "lead" }]
[policies.default]
steps = [{ notify = ["primary"] }]
[[routes]]
policy = "default"
"#;

const ROTATION: &str = r#"
[rotations.ops]
time_zone = "America/Chicago"
type = "weekly"
start = "2020-01-06T09:00"
members = ["alice", "bob"]
"#;

const SCHEDULE: &str = r#"
[schedules.primary]
time_zone = "America/Chicago"
fallback = "lead"
rules = [{ rotation = "ops" }]
"#;

fn with(rotation: &str, schedule: &str) -> String {
    format!("{BASE}{rotation}{schedule}")
}

/// The only error names `key_path` and says `words`.
fn refused(text: &str, key_path: &str, words: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key_path, key_path, "{errs:#?}");
    assert!(errs[0].message.contains(words), "{:?}", errs[0].message);
}

#[test]
fn a_step_pages_a_schedule_like_a_contact_and_the_calendar_knows_it() {
    let cfg = load(&with(ROTATION, SCHEDULE)).unwrap();
    assert!(cfg.calendar.schedules.contains_key("primary"));
    assert_eq!(
        cfg.calendar.rotations["ops"].versions[0].members,
        ["alice", "bob"]
    );
    assert!(cfg.warnings.is_empty(), "{:#?}", cfg.warnings);
}

#[test]
fn a_misspelled_time_zone_is_refused() {
    let text = with(
        &ROTATION.replace("America/Chicago", "America/Chicag0"),
        SCHEDULE,
    );
    refused(
        &text,
        "rotations.ops.time_zone",
        "unknown time zone \"America/Chicag0\"",
    );
}

#[test]
fn a_start_with_an_offset_or_no_time_is_refused() {
    let text = with(
        &ROTATION.replace("2020-01-06T09:00", "2020-01-06T09:00-06:00"),
        SCHEDULE,
    );
    refused(&text, "rotations.ops.start", "local date and time");
}

#[test]
fn a_member_who_is_not_a_contact_is_refused() {
    let text = with(&ROTATION.replace("\"bob\"]", "\"bobb\"]"), SCHEDULE);
    refused(
        &text,
        "rotations.ops.members[1]",
        "unknown contact \"bobb\"",
    );
}

#[test]
fn a_rule_naming_an_unknown_rotation_or_day_is_refused() {
    let text = with(
        ROTATION,
        &SCHEDULE.replace("rotation = \"ops\"", "rotation = \"opps\""),
    );
    refused(
        &text,
        "schedules.primary.rules[0].rotation",
        "unknown rotation \"opps\"",
    );
    let text = with(
        ROTATION,
        &SCHEDULE.replace(
            "{ rotation = \"ops\" }",
            "{ rotation = \"ops\" }, { contact = \"alice\", days = [\"sat\", \"sonday\"], from = \"10:00\", to = \"18:00\" }",
        ),
    );
    refused(
        &text,
        "schedules.primary.rules[1].days[1]",
        "unknown day \"sonday\"",
    );
}

#[test]
fn a_window_needs_both_ends_written_as_hours_and_minutes() {
    let text = with(
        ROTATION,
        &SCHEDULE.replace(
            "{ rotation = \"ops\" }",
            "{ rotation = \"ops\", from = \"9am\", to = \"17:00\" }",
        ),
    );
    refused(&text, "schedules.primary.rules[0].from", "HH:MM");
    let text = with(
        ROTATION,
        &SCHEDULE.replace(
            "{ rotation = \"ops\" }",
            "{ rotation = \"ops\", from = \"09:00\" }",
        ),
    );
    refused(&text, "schedules.primary.rules[0].from", "needs a to");
}

#[test]
fn a_schedule_named_like_a_contact_is_a_clash() {
    let text = with(
        ROTATION,
        &SCHEDULE.replace("[schedules.primary]", "[schedules.alice]"),
    )
    .replace("notify = [\"primary\"]", "notify = [\"alice\"]");
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.message.contains("share one name space")),
        "{errs:#?}"
    );
}

#[test]
fn a_schedule_with_nobody_on_call_this_week_is_warned_about() {
    // Only weekends are covered: every weekday is a gap, in every week.
    let weekends = SCHEDULE.replace(
        "{ rotation = \"ops\" }",
        "{ rotation = \"ops\", days = [\"sat\", \"sun\"] }",
    );
    let cfg = load(&with(ROTATION, &weekends)).unwrap();
    assert_eq!(cfg.warnings.len(), 1, "{:#?}", cfg.warnings);
    let w = &cfg.warnings[0];
    assert_eq!(w.key_path, "schedules.primary");
    assert!(
        w.message.contains("nobody is on call in the next 7 days"),
        "{}",
        w.message
    );
    assert!(
        w.message.contains("its fallback lead is paged then"),
        "{}",
        w.message
    );
}

/// The README's worked example, read from the README itself, hands off as it says.
#[test]
fn the_readme_schedule_example_hands_off_as_the_readme_says() {
    let readme = include_str!("../../../README.md");
    let section = &readme[readme.find("## On-call schedules").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let people = r#"
[notifiers.console]
type = "log"
[contacts.alice]
methods = [{ notifier = "console", to = "alice" }]
[contacts.bob]
methods = [{ notifier = "console", to = "bob" }]
[contacts.carol]
methods = [{ notifier = "console", to = "carol" }]
[contacts.dana]
methods = [{ notifier = "console", to = "dana" }]
[contacts.lead]
methods = [{ notifier = "console", to = "lead" }]
[[routes]]
policy = "default"
"#;
    let cfg = load(&format!("{people}{example}")).unwrap();
    let at = |t: &str| {
        let oc = cfg
            .calendar
            .oncall("primary", &[], crate::time::Timestamp::at(t))
            .unwrap();
        let who: Vec<String> = oc.contacts.into_iter().map(|c| c.name).collect();
        (who, oc.until.map(|u| u.to_rfc3339()))
    };
    assert_eq!(
        at("2027-01-09T17:00:00Z").0,
        ["alice", "dana"],
        "Saturday 11:00 CST"
    );
    assert_eq!(
        at("2027-01-10T01:00:00Z").0,
        ["alice"],
        "Saturday 19:00 CST"
    );
    assert_eq!(at("2027-01-11T15:00:00Z").0, ["bob"], "the second week");
    assert_eq!(
        at("2027-03-08T14:59:00Z"),
        (
            vec!["carol".to_string()],
            Some("2027-03-08T15:00:00.000Z".to_string())
        )
    );
    assert_eq!(
        at("2027-03-08T15:00:00Z"),
        (
            vec!["alice".to_string()],
            Some("2027-03-13T16:00:00.000Z".to_string())
        ),
        "alice until dana's Saturday 10:00 CST"
    );
    assert_eq!(at("2027-03-15T13:59:00Z").0, ["alice"], "08:59 CDT");
    assert_eq!(at("2027-03-15T14:00:00Z").0, ["bob"], "09:00 CDT");
}

#[test]
fn a_watchdog_policy_paging_a_schedule_reaches_its_people() {
    let text = format!(
        "{}\n[watchdog]\npolicy = \"default\"\n",
        with(ROTATION, SCHEDULE)
    );
    let cfg = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.calendar.schedules.contains_key("primary"));
}
