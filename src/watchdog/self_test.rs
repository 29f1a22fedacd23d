//! The scheduled self-test: once a day a contact gets a test page that must be acked
//! within a bound. Acked, it resolves; unacked, the self-test policy's second step pages
//! everyone, because then the paging path itself is broken.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::watchdog::SelfTestConfig;
use crate::engine::{AlertBatch, AlertIn, AlertStatus, Input, LabelSet, SELF_TEST_POLICY};
use crate::runtime::EngineHandle;
use crate::time::{Clock, Timestamp};

/// The `source` of self-test incidents.
pub const SOURCE: &str = "self-test";

const DAY_MS: i64 = 86_400_000;

/// The first time of day `second_of_day` (UTC) strictly after `now`.
pub fn next_run(now: Timestamp, second_of_day: u32) -> Timestamp {
    let midnight = now.millis().div_euclid(DAY_MS) * DAY_MS;
    let today = midnight + i64::from(second_of_day) * 1000;
    Timestamp(if today > now.millis() {
        today
    } else {
        today + DAY_MS
    })
}

/// The test incident due at `at`.
pub fn input(at: Timestamp, contact: &str, ack_within: Duration) -> Input {
    let within = humantime::format_duration(ack_within).to_string();
    let labels = BTreeMap::from([
        ("alertname".to_string(), "TocsinSelfTest".to_string()),
        ("contact".to_string(), contact.to_string()),
        ("severity".to_string(), "none".to_string()),
    ]);
    let annotations = BTreeMap::from([(
        "summary".to_string(),
        format!(
            "Scheduled test page for {contact}: ack it within {within}. Unacked, everyone is paged, because the paging path is broken."
        ),
    )]);
    Input::Alerts(AlertBatch {
        source: SOURCE.to_string(),
        group_key: "self-test".to_string(),
        labels: labels.clone(),
        title: format!("Self-test for {contact}: ack within {within}, or everyone is paged"),
        alerts: vec![AlertIn {
            fingerprint: format!("self-test/{}", at.millis().div_euclid(DAY_MS)),
            status: AlertStatus::Firing,
            starts_at: at,
            ends_at: None,
            labels: LabelSet::from_map(&labels),
            annotations: LabelSet::from_map(&annotations),
            generator_url: String::new(),
        }],
        truncated: 0,
        policy: Some(SELF_TEST_POLICY.to_string()),
    })
}

/// Opens the test incident every day at the configured time until `stop`.
pub async fn run(
    cfg: SelfTestConfig,
    engine: EngineHandle,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    let Ok(second) = cfg.second_of_day() else {
        // check-config refuses it; nothing to schedule (and not a task that failed).
        return stop.cancelled().await;
    };
    loop {
        let due = next_run(clock.now(), second);
        // Sleep in short steps, so a clock that jumps (or a test's clock) is followed.
        while clock.now() < due {
            let wait = due.since(clock.now()).min(Duration::from_secs(30));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        info!(contact = %cfg.contact, "self-test: paging the test incident");
        if let Err(e) = engine
            .submit(input(due, &cfg.contact, cfg.ack_within.0))
            .await
        {
            warn!(error = %e, "self-test: could not open the test incident");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp(
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis(),
        )
    }

    #[test]
    fn the_next_run_is_today_if_still_ahead_else_tomorrow() {
        let nine_thirty = 9 * 3600 + 30 * 60;
        assert_eq!(
            next_run(at("2026-11-21T08:00:00Z"), nine_thirty),
            at("2026-11-21T09:30:00Z")
        );
        assert_eq!(
            next_run(at("2026-11-21T09:30:00Z"), nine_thirty),
            at("2026-11-22T09:30:00Z")
        );
        assert_eq!(
            next_run(at("2026-12-31T23:59:59Z"), 0),
            at("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn one_day_is_one_test_incident_however_often_it_is_submitted() {
        let Input::Alerts(a) = input(
            at("2026-11-21T09:30:00Z"),
            "alice",
            Duration::from_secs(900),
        ) else {
            panic!()
        };
        let Input::Alerts(b) = input(
            at("2026-11-21T09:30:00Z"),
            "alice",
            Duration::from_secs(900),
        ) else {
            panic!()
        };
        let Input::Alerts(c) = input(
            at("2026-11-22T09:30:00Z"),
            "alice",
            Duration::from_secs(900),
        ) else {
            panic!()
        };
        assert_eq!(a.alerts[0].fingerprint, b.alerts[0].fingerprint);
        assert_ne!(a.alerts[0].fingerprint, c.alerts[0].fingerprint);
        assert_eq!(a.policy.as_deref(), Some(SELF_TEST_POLICY));
        assert!(a.title.contains("ack within 15m"), "{}", a.title);
    }
}
