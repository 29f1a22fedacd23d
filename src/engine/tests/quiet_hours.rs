//! Quiet hours: a warning at 3 a.m. waits for the morning; a critical page never waits;
//! what waits goes out only if the incident is still open and unacked by then.

use super::*;

/// alice is quiet from 22:00 to 07:00 in `zone`; everything else as in CONFIG.
fn quiet_engine(zone: &str) -> Engine {
    let text = CONFIG.replace(
        "[contacts.alice]\n",
        &format!(
            "[contacts.alice]\nquiet_hours = {{ from = \"22:00\", to = \"07:00\", time_zone = \"{zone}\", below = \"critical\" }}\n"
        ),
    );
    Engine::new(escalation_config(&text))
}

fn firing_with(severity: &str, group: &str, at: Timestamp) -> Input {
    let mut b = match fire(group, "a1", "09:00:00") {
        Input::Alerts(b) => b,
        _ => unreachable!(),
    };
    b.labels.insert("severity".into(), severity.into());
    b.alerts[0].starts_at = at;
    Input::Alerts(b)
}

fn held(fx: &[Effect]) -> Vec<(String, Option<Timestamp>)> {
    pages(fx)
        .into_iter()
        .map(|p| (format!("{}:{}", p.target, p.notifier), p.hold_until))
        .collect()
}

#[test]
fn a_warning_at_night_waits_for_the_morning_across_midnight() {
    let mut e = quiet_engine("UTC");
    let night = Timestamp::at("2026-11-21T23:30:00Z");
    let fx = e.apply(night, firing_with("warning", "g1", night)).unwrap();
    let morning = Some(Timestamp::at("2026-11-22T07:00:00Z"));
    assert_eq!(
        held(&fx),
        [
            ("console:console".to_string(), None),
            ("alice:push".to_string(), morning)
        ]
    );
    let quiet: Vec<_> = events(&fx)
        .into_iter()
        .filter(|x| x.kind == EventKind::Quiet)
        .collect();
    assert!(
        quiet[0].detail.contains("waits until 07:00 UTC"),
        "{quiet:?}"
    );
    // The escalation is not held: bob's step comes at its time, at once.
    let fx = e
        .apply(night.plus(Duration::from_secs(600)), Input::Tick)
        .unwrap();
    assert_eq!(held(&fx).last().unwrap(), &("bob:sms".to_string(), None));
}

#[test]
fn a_critical_page_at_night_goes_out_at_once() {
    let mut e = quiet_engine("UTC");
    let night = Timestamp::at("2026-11-21T23:30:00Z");
    let fx = e
        .apply(night, firing_with("critical", "g1", night))
        .unwrap();
    assert!(held(&fx).iter().all(|(_, h)| h.is_none()), "{fx:?}");
}

#[test]
fn by_day_nothing_waits() {
    let mut e = quiet_engine("UTC");
    let day = Timestamp::at("2026-11-21T12:00:00Z");
    let fx = e.apply(day, firing_with("warning", "g1", day)).unwrap();
    assert!(held(&fx).iter().all(|(_, h)| h.is_none()), "{fx:?}");
}

#[test]
fn quiet_hours_follow_the_wall_clock_across_the_spring_change() {
    // Berlin springs forward on 2027-03-28 at 02:00: 22:00 CET to 07:00 CEST is 8 hours.
    let mut e = quiet_engine("Europe/Berlin");
    let night = Timestamp::at("2027-03-27T21:30:00Z"); // 22:30 CET
    let fx = e.apply(night, firing_with("info", "g1", night)).unwrap();
    let alice = held(&fx)
        .into_iter()
        .find(|(w, _)| w == "alice:push")
        .unwrap();
    assert_eq!(
        alice.1,
        Some(Timestamp::at("2027-03-28T05:00:00Z")),
        "07:00 CEST"
    );
}

#[test]
fn a_page_waiting_for_the_morning_is_not_sent_once_the_incident_is_acked() {
    let mut e = quiet_engine("UTC");
    let night = Timestamp::at("2026-11-21T23:30:00Z");
    let fx = e.apply(night, firing_with("warning", "g1", night)).unwrap();
    let waiting = page_via(&fx, "push");
    e.apply(night.plus(Duration::from_secs(60)), ack(1, "bob"))
        .unwrap();
    let morning = Timestamp::at("2026-11-22T07:00:00Z");
    let fx = e
        .apply(
            morning,
            Input::Released {
                pages: vec![waiting],
            },
        )
        .unwrap();
    let sent: Vec<&Page> = fx
        .iter()
        .filter_map(|x| match x {
            Effect::Send { pages } => Some(pages),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        sent.is_empty(),
        "an acked incident's page is dropped: {fx:?}"
    );
}
