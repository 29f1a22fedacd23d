//! Alertmanager webhook payloads, version 4.
//!
//! Lenient to fields newer Alertmanagers add (`notification_reason`, `routeLabels`),
//! strict on what grouping and dedup need: `version`, `groupKey`, and per alert
//! `status`, `labels`, `startsAt`, `fingerprint`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::engine::{AlertBatch, AlertIn, AlertStatus, LabelSet};
use crate::notify::message::clean;
use crate::time::Timestamp;

pub const SOURCE: &str = "alertmanager";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error(
        "unsupported payload version {0:?}: tocsin accepts Alertmanager webhook payloads with \"version\": \"4\""
    )]
    Version(String),
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
}

#[derive(Deserialize)]
struct Payload {
    version: String,
    #[serde(rename = "groupKey")]
    group_key: String,
    alerts: Vec<AlertJson>,
    #[serde(default, rename = "groupLabels")]
    group_labels: BTreeMap<String, String>,
    #[serde(default, rename = "commonLabels")]
    common_labels: BTreeMap<String, String>,
    #[serde(default, rename = "commonAnnotations")]
    common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "truncatedAlerts")]
    truncated_alerts: u64,
}

#[derive(Deserialize)]
struct AlertJson {
    status: String,
    labels: LabelSet,
    #[serde(default)]
    annotations: LabelSet,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(default, rename = "endsAt")]
    ends_at: String,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: Option<serde_json::Value>,
}

/// Parses a webhook body. The heartbeat alert (if named) is split off: it proves the
/// pipeline is alive and never becomes an incident.
pub fn parse(body: &[u8], heartbeat: Option<&str>) -> Result<Parsed, PayloadError> {
    let p: Payload = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            // Name the version problem first: it explains every other mismatch.
            if let Ok(v) = serde_json::from_slice::<VersionOnly>(body) {
                match v.version {
                    Some(serde_json::Value::String(s)) if s == "4" => {}
                    Some(other) => {
                        let s = other
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or(other.to_string());
                        return Err(PayloadError::Version(s));
                    }
                    None => {
                        return Err(PayloadError::Field {
                            field: "version".into(),
                            problem: "missing: this is not an Alertmanager webhook payload".into(),
                        });
                    }
                }
            }
            return Err(if e.is_data() {
                PayloadError::Field {
                    field: "payload".into(),
                    problem: e.to_string(),
                }
            } else {
                PayloadError::Json(e.to_string())
            });
        }
    };
    if p.version != "4" {
        return Err(PayloadError::Version(p.version));
    }
    if p.group_key.is_empty() {
        return Err(PayloadError::Field {
            field: "groupKey".into(),
            problem: "empty".into(),
        });
    }
    let mut alerts = Vec::with_capacity(p.alerts.len());
    let mut heartbeats = 0u64;
    for (i, a) in p.alerts.into_iter().enumerate() {
        let field = |name: &str, problem: String| PayloadError::Field {
            field: format!("alerts[{i}].{name}"),
            problem,
        };
        let status = match a.status.as_str() {
            "firing" => AlertStatus::Firing,
            "resolved" => AlertStatus::Resolved,
            other => {
                return Err(field(
                    "status",
                    format!("{other:?} is neither \"firing\" nor \"resolved\""),
                ));
            }
        };
        let starts_at = Timestamp::parse_rfc3339(&a.starts_at).ok_or_else(|| {
            field(
                "startsAt",
                format!("{:?} is not an RFC 3339 time", a.starts_at),
            )
        })?;
        let ends_at = match a.ends_at.as_str() {
            "" => None,
            s => {
                let t = Timestamp::parse_rfc3339(s)
                    .ok_or_else(|| field("endsAt", format!("{s:?} is not an RFC 3339 time")))?;
                // Go's zero time marks a firing alert.
                (t.millis() > 0).then_some(t)
            }
        };
        if a.fingerprint.is_empty() {
            return Err(field("fingerprint", "empty".into()));
        }
        if heartbeat.is_some_and(|h| a.labels.get("alertname").as_deref() == Some(h)) {
            // A resolved heartbeat means the always-firing rule stopped: not a sign of life.
            if status == AlertStatus::Firing {
                heartbeats += 1;
            }
            continue;
        }
        alerts.push(AlertIn {
            // Hex, which Alertmanager writes in lower case: one alert whatever the case,
            // in memory and in the store alike.
            fingerprint: a.fingerprint.to_ascii_lowercase(),
            status,
            starts_at,
            ends_at,
            labels: a.labels,
            annotations: a.annotations,
            generator_url: a.generator_url,
        });
    }
    let labels = if p.common_labels.is_empty() {
        p.group_labels
    } else {
        p.common_labels
    };
    let title = title(&labels, &p.common_annotations, &alerts);
    Ok(Parsed {
        batch: AlertBatch {
            source: SOURCE.to_string(),
            group_key: p.group_key,
            labels,
            title,
            alerts,
            truncated: p.truncated_alerts,
            policy: None,
        },
        heartbeats,
    })
}

/// A delivery split into the alerts that matter and a count of heartbeats.
#[derive(Debug)]
pub struct Parsed {
    pub batch: AlertBatch,
    pub heartbeats: u64,
}

/// "DiskFull: Disk almost full on db1", from the common labels and annotations, or the
/// first alert when they have nothing in common.
fn title(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    alerts: &[AlertIn],
) -> String {
    let first = alerts.first();
    let name = labels
        .get("alertname")
        .cloned()
        .or_else(|| first.and_then(|a| a.labels.get("alertname")))
        .unwrap_or_else(|| "alert".to_string());
    let summary = annotations
        .get("summary")
        .cloned()
        .or_else(|| first.and_then(|a| a.annotations.get("summary")));
    let mut t = match summary {
        Some(s) => format!("{name}: {s}"),
        None => name.to_string(),
    };
    if alerts.len() > 1 && !annotations.contains_key("summary") {
        t.push_str(&format!(" ({} alerts)", alerts.len()));
    }
    let t = clean(&t);
    match t.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &t[..cut]),
        None => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &str = include_str!("../../tests/it/payloads/am-0.25-api-two-alerts-firing.json");

    #[test]
    fn real_alertmanager_payload_parses() {
        let p = parse(FIRING.as_bytes(), None).unwrap();
        assert_eq!(p.batch.group_key, "{}:{alertname=\"DiskFull\"}");
        assert_eq!(p.batch.alerts.len(), 2);
        assert_eq!(p.batch.alerts[0].fingerprint, "1751650d45bf7d6b");
        assert_eq!(p.batch.alerts[0].ends_at, None, "Go zero time means firing");
        assert_eq!(p.batch.labels.get("severity").unwrap(), "critical");
        assert!(p.batch.title.starts_with("DiskFull"), "{}", p.batch.title);
    }

    #[test]
    fn a_fingerprint_in_capitals_is_the_same_alert() {
        let body = FIRING.replace("1751650d45bf7d6b", "1751650D45BF7D6B");
        let p = parse(body.as_bytes(), None).unwrap();
        assert_eq!(p.batch.alerts[0].fingerprint, "1751650d45bf7d6b");
    }

    #[test]
    fn a_label_given_twice_is_refused_rather_than_read_two_ways() {
        // `get` would see the first alertname (the heartbeat), the store and the pages the
        // last one.
        let body = FIRING.replacen(
            "\"alertname\":\"DiskFull\"",
            "\"alertname\":\"Watchdog\",\"alertname\":\"DiskFull\"",
            1,
        );
        assert_ne!(body, FIRING);
        let e = parse(body.as_bytes(), Some("Watchdog"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn newer_fields_are_ignored() {
        let mut v: serde_json::Value = serde_json::from_str(FIRING).unwrap();
        v["notification_reason"] = "first notification".into();
        v["routeLabels"] = serde_json::json!({"team": "db"});
        v["alerts"][0]["somethingNew"] = 1.into();
        let body = serde_json::to_vec(&v).unwrap();
        assert_eq!(parse(&body, None).unwrap().batch.alerts.len(), 2);
    }

    #[test]
    fn wrong_version_is_named() {
        let body = FIRING.replace("\"version\":\"4\"", "\"version\":\"3\"");
        assert_eq!(
            parse(body.as_bytes(), None).unwrap_err(),
            PayloadError::Version("3".into())
        );
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let body = FIRING.replace("\"groupKey\"", "\"groupKeyX\"");
        let e = parse(body.as_bytes(), None).unwrap_err().to_string();
        assert!(e.contains("groupKey"), "{e}");
        let body = FIRING.replacen("2026-11-21T19:42:06Z", "yesterday", 1);
        let e = parse(body.as_bytes(), None).unwrap_err().to_string();
        assert!(e.contains("alerts[0].startsAt"), "{e}");
        let e = parse(b"{\"version\":\"4\",", None).unwrap_err();
        assert!(matches!(e, PayloadError::Json(_)), "{e:?}");
    }

    #[test]
    fn heartbeat_alerts_never_become_incident_alerts() {
        let wd = include_str!("../../tests/it/payloads/am-0.25-prometheus-watchdog-firing.json");
        let p = parse(wd.as_bytes(), Some("Watchdog")).unwrap();
        assert_eq!(p.heartbeats, 1);
        assert!(p.batch.alerts.is_empty());
    }

    #[test]
    fn control_characters_never_reach_the_title() {
        let body = FIRING.replace("Disk almost full on db1", "Disk\\r\\nQUIT :x");
        let body = body.replace(
            "\"commonAnnotations\":{}",
            "\"commonAnnotations\":{\"summary\":\"a\\r\\nb\"}",
        );
        let p = parse(body.as_bytes(), None).unwrap();
        assert!(!p.batch.title.contains(['\r', '\n']), "{:?}", p.batch.title);
    }
}
