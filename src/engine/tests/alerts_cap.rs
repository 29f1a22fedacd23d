//! `max_alerts_per_incident`: one group of a million alerts keeps the first few, counts
//! the rest, and still resolves.

use super::*;

/// The test config with room for `cap` alerts per incident.
fn engine_with_cap(cap: u32) -> Engine {
    let text = CONFIG.replace(
        "ack_timeout = \"30m\"",
        &format!("ack_timeout = \"30m\"\nmax_alerts_per_incident = {cap}"),
    );
    Engine::new(escalation_config(&text))
}

fn firing(fps: &[&str], starts: &str) -> Input {
    batch(
        "g1",
        fps.iter()
            .map(|fp| alert(fp, AlertStatus::Firing, starts))
            .collect(),
    )
}

fn stored_alerts(fx: &[Effect]) -> Vec<&str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Alert(a) => Some(a.alert.fingerprint.as_str()),
            _ => None,
        })
        .collect()
}

fn truncated(fx: &[Effect]) -> Option<u64> {
    fx.iter().rev().find_map(|e| match e {
        Effect::Status(s) => Some(s.alerts_truncated),
        _ => None,
    })
}

const FPS: [&str; 5] = [
    "aaaaaaaaaaaaaaa1",
    "aaaaaaaaaaaaaaa2",
    "aaaaaaaaaaaaaaa3",
    "aaaaaaaaaaaaaaa4",
    "aaaaaaaaaaaaaaa5",
];

#[test]
fn an_alert_flood_in_one_group_keeps_the_first_alerts_and_counts_the_rest_once() {
    let mut e = engine_with_cap(3);
    let fx = e.apply(t("10:00:00"), firing(&FPS, "10:00:00")).unwrap();
    assert_eq!(stored_alerts(&fx), &FPS[..3]);
    assert_eq!(truncated(&fx), Some(2));
    assert!(events(&fx).iter().any(|ev| ev.kind == EventKind::Truncated
        && ev.detail.contains("2 alert(s) not kept")
        && ev.detail.contains("max_alerts_per_incident")));

    // Alertmanager sends the whole group again at every group_interval: nothing new.
    let again = e.apply(t("10:05:00"), firing(&FPS, "10:00:00")).unwrap();
    assert!(again.is_empty(), "{again:?}");

    // A sixth alert is one more not kept.
    let sixth = e
        .apply(t("10:06:00"), fire("g1", "aaaaaaaaaaaaaaa6", "10:06:00"))
        .unwrap();
    assert!(stored_alerts(&sixth).is_empty());
    assert_eq!(truncated(&sixth), Some(3));
}

#[test]
fn kept_alerts_still_resolve_and_the_incident_ends_when_they_all_have() {
    let mut e = engine_with_cap(2);
    e.apply(t("10:00:00"), firing(&FPS[..3], "10:00:00"))
        .unwrap();

    let fx = e
        .apply(t("10:10:00"), clear("g1", FPS[0], "10:00:00"))
        .unwrap();
    assert_eq!(stored_alerts(&fx), [FPS[0]]);
    assert_eq!(e.open_count(), 1, "one kept alert still fires");

    // The alert beyond the cap still fires, but it was never kept: the incident is
    // over once what it kept has resolved.
    let fx = e
        .apply(t("10:20:00"), clear("g1", FPS[1], "10:00:00"))
        .unwrap();
    assert_eq!(e.open_count(), 0);
    assert!(
        events(&fx)
            .iter()
            .any(|ev| ev.kind == EventKind::Resolved && ev.detail.contains("all 2 alert(s)"))
    );

    // Alertmanager's next notification still carries it firing: a new incident, so
    // nothing that fires goes unpaged.
    let fx = e
        .apply(t("10:25:00"), fire("g1", FPS[2], "10:00:00"))
        .unwrap();
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Opened(o) if o.id == 2))
    );
}

#[test]
fn the_count_of_alerts_not_kept_survives_a_restart() {
    let text = CONFIG.replace(
        "ack_timeout = \"30m\"",
        "ack_timeout = \"30m\"\nmax_alerts_per_incident = 2",
    );
    let cfg = escalation_config(&text);
    let mut e = Engine::new(cfg.clone());
    let fx = vec![e.apply(t("10:00:00"), firing(&FPS, "10:00:00")).unwrap()];
    let mut e = Engine::restore(cfg, 2, 100, vec![stored(&fx, 1)], vec![]);

    let fx = e
        .apply(t("10:06:00"), fire("g1", "aaaaaaaaaaaaaaa6", "10:06:00"))
        .unwrap();
    assert_eq!(truncated(&fx), Some(4));
}
