//! An outage as the engine sees it: one always-the-same alert per channel, firing while
//! the channel is down and resolved when it is back. The engine's grouping then gives
//! one incident per outage, and its resolution pages everyone who was paged.

use std::collections::BTreeMap;

use super::board::Decision;
use crate::engine::{AlertBatch, AlertIn, AlertStatus, Input, LabelSet, WATCHDOG_POLICY};

/// The `source` of watchdog incidents.
pub const SOURCE: &str = "watchdog";
/// The `alertname` of watchdog incidents, for routes and for people filtering.
pub const ALERTNAME: &str = "TocsinChannelDown";

/// The engine input for a decision.
pub fn input(d: &Decision) -> Input {
    // The title carries the reason; the alert's summary (which SMS and push show too)
    // says since when, and what tocsin cannot see meanwhile.
    let (channel, status, since, ends_at, kind, reason, summary) = match d {
        Decision::Down {
            channel,
            kind,
            since,
            reason,
            blind,
        } => (
            channel,
            AlertStatus::Firing,
            *since,
            None,
            Some(*kind),
            reason.clone(),
            format!("down since {since}; while it is down, {blind}"),
        ),
        Decision::Recovered {
            channel,
            since,
            back_since,
            reason,
        } => (
            channel,
            AlertStatus::Resolved,
            *since,
            Some(*back_since),
            None,
            reason.clone(),
            format!("back since {back_since}, after being down since {since} ({reason})"),
        ),
    };
    let mut labels = BTreeMap::from([
        ("alertname".to_string(), ALERTNAME.to_string()),
        ("channel".to_string(), channel.clone()),
        ("severity".to_string(), "critical".to_string()),
    ]);
    if let Some(k) = kind {
        labels.insert("kind".to_string(), k.as_str().to_string());
    }
    let annotations = BTreeMap::from([
        ("summary".to_string(), summary),
        ("description".to_string(), reason.clone()),
    ]);
    Input::Alerts(AlertBatch {
        source: SOURCE.to_string(),
        group_key: channel.clone(),
        labels: labels.clone(),
        title: format!("{channel} is down: {reason}"),
        alerts: vec![AlertIn {
            fingerprint: format!("watchdog/{channel}"),
            status,
            starts_at: since,
            ends_at,
            labels: LabelSet::from_map(&labels),
            annotations: LabelSet::from_map(&annotations),
            generator_url: String::new(),
        }],
        truncated: 0,
        policy: Some(WATCHDOG_POLICY.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    #[test]
    fn an_outage_and_its_recovery_are_one_alert_firing_then_resolved() {
        let since = Timestamp(1_700_000_000_000);
        let down = input(&Decision::Down {
            channel: "source:irc".into(),
            kind: crate::watchdog::Kind::Source,
            since,
            reason: "no PONG within 20s".into(),
            blind: "alerts posted in #alerts are not seen".into(),
        });
        let up = input(&Decision::Recovered {
            channel: "source:irc".into(),
            since,
            back_since: since.plus(std::time::Duration::from_secs(90)),
            reason: "no PONG within 20s".into(),
        });
        let (Input::Alerts(d), Input::Alerts(u)) = (down, up) else {
            panic!("alerts expected")
        };
        assert_eq!(d.group_key, u.group_key);
        assert_eq!(d.alerts[0].fingerprint, u.alerts[0].fingerprint);
        assert_eq!(d.alerts[0].starts_at, u.alerts[0].starts_at);
        assert_eq!(
            (d.alerts[0].status, u.alerts[0].status),
            (AlertStatus::Firing, AlertStatus::Resolved)
        );
        assert_eq!(d.policy.as_deref(), Some(WATCHDOG_POLICY));
        assert!(
            d.title.starts_with("source:irc is down: no PONG"),
            "{}",
            d.title
        );
        let summary = d.alerts[0].annotations.get("summary").unwrap();
        assert!(
            summary.contains("down since")
                && summary.contains("alerts posted in #alerts are not seen"),
            "{summary}"
        );
    }
}
