//! Alertmanager webhook payloads (version 4) as tests need them: the captured fixtures in
//! `payloads/`, and small builders shaped like what Alertmanager 0.25 sends.

use std::path::PathBuf;

use serde_json::{Value, json};

/// When every built alert started (Alertmanager keeps an alert's `startsAt` across
/// notifications, so a redelivery carries the same value).
pub const STARTS_AT: &str = "2026-11-21T19:42:06Z";

/// A captured payload from `tests/it/payloads/`, byte for byte.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/payloads")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A stable 16-hex-digit fingerprint for a label set, like Alertmanager's.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.join("\u{1f}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// One firing alert of `alertname` on `instance`.
pub fn alert(alertname: &str, instance: &str) -> Value {
    json!({
        "status": "firing",
        "labels": {"alertname": alertname, "instance": instance, "severity": "critical"},
        "annotations": {"summary": format!("{alertname} on {instance}")},
        "startsAt": STARTS_AT,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.test/graph?g0.expr=up",
        "fingerprint": fingerprint(&[alertname, instance]),
    })
}

/// The group key Alertmanager gives a group by `alertname`.
pub fn group_key(alertname: &str) -> String {
    format!("{{}}:{{alertname=\"{alertname}\"}}")
}

/// A notification for the group of `alertname` carrying `alerts`.
pub fn payload(alertname: &str, alerts: Vec<Value>) -> Value {
    let firing = alerts.iter().any(|a| a["status"] == "firing");
    json!({
        "receiver": "tocsin",
        "status": if firing { "firing" } else { "resolved" },
        "alerts": alerts,
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": group_key(alertname),
        "truncatedAlerts": 0,
    })
}

/// A group of `alertname` with one alert firing on `host1`.
pub fn firing(alertname: &str) -> Value {
    payload(alertname, vec![alert(alertname, "host1")])
}
