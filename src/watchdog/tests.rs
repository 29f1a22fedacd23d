//! The watchdog handle: what sources, the dispatcher and the IRC link report, and what
//! the board then says. Time is a paused tokio clock, moved by hand.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::irc::ProbeStatus;
use crate::time::{Timestamp, TokioClock};

const CONFIG: &str = r##"
[notifiers.mail]
type = "email"
smtp_url = "smtp://127.0.0.1:2525"
from = "tocsin <tocsin@example.com>"
[notifiers.chat]
type = "irc"
channel = "#alerts"

[contacts.alice]
methods = [{ notifier = "mail", to = "alice@example.com" }]

[policies.default]
steps = [{ after = "0s", notify = ["alice"] }]
[[routes]]
policy = "default"

[sources.alertmanager]
heartbeat = { alertname = "Watchdog", within = "10m" }

[sources.irc]
server = "127.0.0.1:6667"
channels = ["#alerts"]

[heartbeats.backup]
period = "1h"
grace = "5m"

[watchdog]
hold_down = "30s"
"##;

fn watchdog() -> Arc<Watchdog> {
    let cfg = crate::config::load_str(CONFIG, None).unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(TokioClock::starting_at(Timestamp::at(
        "2026-11-21T10:00:00Z",
    )));
    Watchdog::new(&cfg, clock, Arc::new(Metrics::new()))
}

fn channel(wd: &Watchdog, name: &str) -> ChannelView {
    wd.channels()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no channel {name}"))
}

fn link(state: LinkState, detail: &str) -> LinkStatus {
    LinkStatus {
        state,
        since: Timestamp::at("2026-11-21T10:00:00Z"),
        detail: detail.to_string(),
        server: "127.0.0.1:6667".into(),
        nick: "tocsin".into(),
        joined: vec![],
        caps: vec![],
        probe: ProbeStatus {
            ok: None,
            detail: String::new(),
            since: Timestamp::at("2026-11-21T10:00:00Z"),
        },
        forged_lines: 0,
    }
}

#[tokio::test(start_paused = true)]
async fn every_source_notifier_and_heartbeat_is_a_channel_but_the_irc_notifier_is_the_link() {
    let wd = watchdog();
    let names: Vec<String> = wd.channels().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "heartbeat:backup",
            "notifier:mail",
            "source:alertmanager",
            "source:irc"
        ]
    );
    assert_eq!(
        wd.gate("chat"),
        Ok(Gate::Open),
        "the irc notifier is judged by its link"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bouncer_whose_network_is_gone_is_a_network_outage_not_a_dead_bouncer() {
    let wd = watchdog();
    wd.irc_link(&link(LinkState::Up, "registered"));
    wd.irc_link(&link(
        LinkState::UpstreamDown,
        "*status: Disconnected from IRC. Reconnecting...",
    ));
    let c = channel(&wd, IRC);
    assert_eq!(c.state, Health::Down);
    assert!(
        c.reason
            .contains("is up but its IRC network is not connected")
            && c.reason.contains("Disconnected from IRC"),
        "{}",
        c.reason
    );
    let states: Vec<(&str, Health)> = c.checks.iter().map(|k| (k.name, k.state)).collect();
    assert_eq!(
        states,
        [
            ("connection", Health::Up),
            ("network", Health::Down),
            ("probe", Health::Up)
        ]
    );
    // Then the bouncer itself goes: that is the reason now.
    wd.irc_link(&link(LinkState::Down, "connection refused"));
    let c = channel(&wd, IRC);
    assert!(c.reason.contains("connection refused"), "{}", c.reason);
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_url_is_down_after_period_plus_grace_and_unknown_names_are_refused() {
    let wd = watchdog();
    assert!(!wd.heartbeat_url("nope"));
    assert!(wd.heartbeat_url("backup"));
    tokio::time::advance(Duration::from_secs(3900 - 1)).await;
    assert_eq!(channel(&wd, "heartbeat:backup").state, Health::Up);
    tokio::time::advance(Duration::from_secs(1)).await;
    let c = channel(&wd, "heartbeat:backup");
    assert_eq!(c.state, Health::Down);
    assert!(c.reason.contains("expected every 1h"), "{}", c.reason);
}

#[tokio::test(start_paused = true)]
async fn a_silent_alertmanager_is_down_once_the_window_passes_and_a_heartbeat_revives_it() {
    let wd = watchdog();
    tokio::time::advance(Duration::from_secs(599)).await;
    assert_eq!(channel(&wd, ALERTMANAGER).state, Health::Up);
    tokio::time::advance(Duration::from_secs(1)).await;
    let c = channel(&wd, ALERTMANAGER);
    assert_eq!(c.state, Health::Down);
    assert!(c.reason.contains("no Watchdog heartbeat"), "{}", c.reason);
    wd.alertmanager_heartbeat("Watchdog");
    assert_eq!(channel(&wd, ALERTMANAGER).state, Health::Up);
}

#[tokio::test(start_paused = true)]
async fn failed_sends_mark_a_notifier_down_but_a_bad_address_does_not() {
    let wd = watchdog();
    for _ in 0..5 {
        wd.send_result("mail", Err(("550 no such user", false)));
    }
    assert_eq!(channel(&wd, "notifier:mail").state, Health::Up);
    for _ in 0..3 {
        wd.send_result("mail", Err(("connection refused", true)));
    }
    assert_eq!(channel(&wd, "notifier:mail").state, Health::Down);
    // Routed around at once; a trial page goes through only after retry_down_after.
    let why = wd.gate("mail").unwrap_err();
    assert!(why.contains("connection refused"), "{why}");
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(wd.gate("mail"), Ok(Gate::Trial), "the trial");
    assert!(wd.gate("mail").is_err());
    wd.send_result("mail", Ok(()));
    assert_eq!(wd.gate("mail"), Ok(Gate::Open));
}

/// A batch opening an incident of `source`'s group `group_key`.
fn opening(source: &str, group_key: &str) -> crate::engine::Input {
    use crate::engine::{AlertBatch, AlertIn, AlertStatus, LabelSet};
    crate::engine::Input::Alerts(AlertBatch {
        source: source.into(),
        group_key: group_key.into(),
        labels: [("alertname".to_string(), group_key.to_string())].into(),
        title: group_key.into(),
        alerts: vec![AlertIn {
            fingerprint: format!("{source}/{group_key}"),
            status: AlertStatus::Firing,
            starts_at: Timestamp::at("2026-11-21T09:00:00Z"),
            ends_at: None,
            labels: LabelSet::default(),
            annotations: LabelSet::default(),
            generator_url: String::new(),
        }],
        truncated: 0,
        policy: None,
    })
}

#[tokio::test]
async fn a_watchdog_incident_open_at_a_restart_is_found_behind_ten_thousand_alert_incidents() {
    use crate::store::{SqliteStore, Store};
    let cfg = crate::config::load_str(CONFIG, None).unwrap_or_else(|e| panic!("{e}"));
    let mut engine =
        crate::engine::Engine::new(Arc::new(crate::engine::EscalationConfig::from_config(&cfg)));
    let at = Timestamp::at("2026-11-21T09:00:00Z");
    let mut effects = engine
        .apply(at, opening(outage::SOURCE, "source:alertmanager"))
        .unwrap();
    for n in 0..10_001 {
        effects.extend(
            engine
                .apply(at, opening("alertmanager", &format!("group{n}")))
                .unwrap(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.commit(effects).await.unwrap();

    let wd = watchdog();
    wd.restore(&store).await;

    assert!(
        channel(&wd, "source:alertmanager").paging,
        "the open outage incident is the watchdog's again: the channel's recovery resolves it"
    );
    assert!(!channel(&wd, "heartbeat:backup").paging);
}
