//! The board, replayed against literal times: what pages, when, and what does not.

use std::time::Duration;

use super::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);
const HOLD: Duration = Duration::from_secs(30);

fn at(secs: u64) -> Timestamp {
    T0.plus(Duration::from_secs(secs))
}

fn irc_board() -> Board {
    let mut b = Board::new(HOLD);
    b.add(
        Spec {
            name: "source:irc".into(),
            kind: Kind::Source,
            blind: "alerts in #alerts are not seen".into(),
            checks: vec!["connection", "network", "probe"],
        },
        T0,
    );
    b
}

fn notifier_board() -> Board {
    let mut b = Board::new(HOLD);
    b.add(
        Spec {
            name: "notifier:mail".into(),
            kind: Kind::Notifier,
            blind: "mail does not arrive".into(),
            checks: vec!["sends"],
        },
        T0,
    );
    b
}

#[test]
fn a_hung_bouncer_pages_once_after_the_hold_down_and_resolves_once_after_it() {
    let mut b = irc_board();
    b.set(
        "source:irc",
        "connection",
        at(10),
        Health::Down,
        "no PONG within 20s",
    );
    assert_eq!(b.evaluate(at(39)), vec![], "inside the hold-down");
    let d = b.evaluate(at(40));
    assert_eq!(
        d,
        vec![Decision::Down {
            channel: "source:irc".into(),
            kind: Kind::Source,
            since: at(10),
            reason: "no PONG within 20s".into(),
            blind: "alerts in #alerts are not seen".into(),
        }]
    );
    // Still down, another check failing too: the same outage, no second page.
    b.set(
        "source:irc",
        "probe",
        at(50),
        Health::Down,
        "no WHOIS answer",
    );
    assert_eq!(b.evaluate(at(60)), vec![]);
    assert_eq!(b.evaluate(at(600)), vec![]);
    b.set("source:irc", "connection", at(700), Health::Up, "connected");
    b.set("source:irc", "probe", at(705), Health::Up, "WHOIS answered");
    assert_eq!(
        b.evaluate(at(734)),
        vec![],
        "back, but not for the hold-down yet"
    );
    assert_eq!(
        b.evaluate(at(735)),
        vec![Decision::Recovered {
            channel: "source:irc".into(),
            since: at(10),
            back_since: at(705),
            reason: "no PONG within 20s".into(),
        }]
    );
    assert_eq!(b.evaluate(at(800)), vec![]);
}

#[test]
fn a_link_that_drops_and_returns_inside_the_hold_down_pages_nobody() {
    let mut b = irc_board();
    for i in 0..10 {
        let down = at(100 * i);
        b.set(
            "source:irc",
            "connection",
            down,
            Health::Down,
            "connection reset",
        );
        assert_eq!(b.evaluate(down.plus(Duration::from_secs(20))), vec![]);
        b.set(
            "source:irc",
            "connection",
            down.plus(Duration::from_secs(29)),
            Health::Up,
            "connected",
        );
        assert_eq!(b.evaluate(down.plus(Duration::from_secs(31))), vec![]);
    }
}

#[test]
fn the_reason_names_the_most_fundamental_failing_check() {
    let mut b = irc_board();
    b.set(
        "source:irc",
        "network",
        at(1),
        Health::Down,
        "ZNC: Disconnected from IRC",
    );
    b.set(
        "source:irc",
        "probe",
        at(2),
        Health::Down,
        "no WHOIS answer",
    );
    let v = &b.snapshot(at(3))[0];
    assert_eq!(
        (v.state, v.reason.as_str()),
        (Health::Down, "ZNC: Disconnected from IRC")
    );
    assert_eq!(v.since, at(1));
    // The bouncer itself dies: now that is the reason, and the outage keeps its start.
    b.set(
        "source:irc",
        "connection",
        at(5),
        Health::Down,
        "connection refused",
    );
    let v = &b.snapshot(at(6))[0];
    assert_eq!((v.reason.as_str(), v.since), ("connection refused", at(1)));
}

#[test]
fn a_missed_heartbeat_goes_down_at_its_deadline_and_a_beat_brings_it_back() {
    let mut b = Board::new(HOLD);
    b.add(
        Spec {
            name: "source:alertmanager".into(),
            kind: Kind::Source,
            blind: "alerts may not arrive".into(),
            checks: vec!["heartbeat"],
        },
        T0,
    );
    b.expect(
        "source:alertmanager",
        "heartbeat",
        at(600),
        "no Watchdog since start".into(),
    );
    b.beat(
        "source:alertmanager",
        "heartbeat",
        at(60),
        "Watchdog received",
        at(660),
        "no Watchdog since 60".into(),
    );
    assert_eq!(b.health("source:alertmanager"), Some(Health::Up));
    assert_eq!(b.evaluate(at(659)), vec![]);
    assert_eq!(
        b.evaluate(at(660)),
        vec![],
        "down now; the hold-down starts at the deadline"
    );
    assert_eq!(b.health("source:alertmanager"), Some(Health::Down));
    let d = b.evaluate(at(690));
    assert!(
        matches!(&d[..], [Decision::Down { since, reason, .. }] if *since == at(660) && reason == "no Watchdog since 60"),
        "{d:?}"
    );
    b.beat(
        "source:alertmanager",
        "heartbeat",
        at(700),
        "Watchdog received",
        at(1300),
        "late".into(),
    );
    assert!(matches!(
        &b.evaluate(at(730))[..],
        [Decision::Recovered { .. }]
    ));
}

#[test]
fn a_notifier_is_degraded_by_failures_then_down_at_the_threshold_and_up_on_delivery() {
    let mut b = notifier_board();
    b.send_failed("notifier:mail", at(1), "connection refused", 3);
    b.send_failed("notifier:mail", at(2), "connection refused", 3);
    assert_eq!(b.health("notifier:mail"), Some(Health::Degraded));
    assert_eq!(
        b.gate("notifier:mail", at(2), None),
        Ok(Gate::Open),
        "degraded still sends"
    );
    b.send_failed("notifier:mail", at(3), "connection refused", 3);
    assert_eq!(b.health("notifier:mail"), Some(Health::Down));
    let why = b.gate("notifier:mail", at(4), None).unwrap_err();
    assert!(
        why.contains("3 sends in a row failed") && why.contains("routing around it"),
        "{why}"
    );
    b.send_ok("notifier:mail", at(5));
    assert_eq!(b.health("notifier:mail"), Some(Health::Up));
    assert_eq!(b.gate("notifier:mail", at(5), None), Ok(Gate::Open));
}

#[test]
fn a_down_notifier_without_a_check_lets_one_trial_page_through_per_interval() {
    let mut b = notifier_board();
    for i in 0..3 {
        b.send_failed("notifier:mail", at(i), "timeout", 3);
    }
    // Down since at(2), the third failure.
    let retry = Some(Duration::from_secs(60));
    assert!(
        b.gate("notifier:mail", at(3), retry).is_err(),
        "routed around at once"
    );
    assert!(b.gate("notifier:mail", at(61), retry).is_err());
    assert_eq!(
        b.gate("notifier:mail", at(62), retry),
        Ok(Gate::Trial),
        "the first trial"
    );
    assert!(b.gate("notifier:mail", at(63), retry).is_err());
    assert!(b.gate("notifier:mail", at(121), retry).is_err());
    assert_eq!(
        b.gate("notifier:mail", at(122), retry),
        Ok(Gate::Trial),
        "the next trial"
    );
    assert!(
        b.gate("notifier:mail", at(200), None).is_err(),
        "no trials when checked"
    );
}

#[test]
fn an_outage_open_before_a_restart_resolves_when_the_channel_is_back() {
    let mut b = irc_board();
    b.restore_outage("source:irc", at(0), "was down".into());
    b.set(
        "source:irc",
        "connection",
        at(1),
        Health::Down,
        "connecting",
    );
    assert_eq!(
        b.evaluate(at(100)),
        vec![],
        "still the restored outage: no second incident"
    );
    b.set("source:irc", "connection", at(101), Health::Up, "connected");
    assert!(matches!(
        &b.evaluate(at(131))[..],
        [Decision::Recovered { since, .. }] if *since == at(0)
    ));
}

#[test]
fn the_snapshot_shows_every_check_and_whether_it_pages() {
    let mut b = irc_board();
    b.set(
        "source:irc",
        "network",
        at(1),
        Health::Down,
        "Disconnected from IRC",
    );
    b.evaluate(at(31));
    let v = &b.snapshot(at(32))[0];
    assert!(v.paging);
    let checks: Vec<(&str, Health)> = v.checks.iter().map(|c| (c.name, c.state)).collect();
    assert_eq!(
        checks,
        vec![
            ("connection", Health::Up),
            ("network", Health::Down),
            ("probe", Health::Up)
        ]
    );
}
