//! Alert lines posted by bots in IRC, read by `[[sources.irc.patterns]]`.
//!
//! A line is untrusted text from a channel: it is cleaned before any regex sees it, and
//! what the captures yield is capped, so a bot (or someone spoofing one) cannot put
//! protocol lines or megabytes into labels that are stored and announced again.
//!
//! A line is one alert; its incident is the group. The labels a batch carries are those
//! the group's firing alerts share ([`shared_labels`]), as Alertmanager's `commonLabels`
//! are, so an incident does not keep `instance=db1` once `db2` fires too.

use std::collections::BTreeMap;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::config::irc::{PATTERN_PRESETS, PatternConfig};
use crate::engine::{AlertBatch, AlertIn, AlertStatus, LabelSet};
use crate::irc::mask::{mask_matches, same_name};
use crate::irc::text::{clean_line, prefix_within};
use crate::time::Timestamp;

pub const SOURCE: &str = "irc";

/// Labels are shown on phones and stored per alert: a long capture is noise, not data.
const MAX_LABEL_BYTES: usize = 200;

/// The same cap the Alertmanager source puts on titles.
const MAX_TITLE_CHARS: usize = 200;

/// What a Go template prints for a label the alert does not have; it is no value.
const GO_TEMPLATE_MISSING: &str = "<no value>";

/// The word in `channels` that means private messages to the bot.
const PRIVATE: &str = "private";

/// google/alertmanager-irc-relay's two default templates: one line per alert
/// (`Alert {{ .Labels.alertname }} on {{ .Labels.instance }} is {{ .Status }}`) and,
/// with `msg_once_per_alert_group`, one per group
/// (`Alert {{ .GroupLabels.alertname }} for {{ .GroupLabels.job }} is {{ .Status }}`).
/// Instance and job are lazy `.+?` because a missing label prints `<no value>`.
const ALERTMANAGER_IRC_RELAY: &[&str] = &[
    r"^Alert (?P<alertname>\S+) on (?P<instance>.+?) is (?P<status>(?i:firing|resolved))$",
    r"^Alert (?P<alertname>\S+) for (?P<job>.+?) is (?P<status>(?i:firing|resolved))$",
];

/// Compiled patterns, in config order; the first that matches a line wins.
#[derive(Debug, Clone)]
pub struct Patterns {
    patterns: Vec<Pattern>,
}

/// One `[[sources.irc.patterns]]` entry, ready to match.
#[derive(Debug, Clone)]
struct Pattern {
    /// Only lines from senders matching this `nick!user@host` mask are read.
    from: String,
    /// ... and, when set, logged in to this services account.
    from_account: Option<String>,
    /// `None`: every channel (not private messages, which must be asked for).
    channels: Option<Vec<String>>,
    /// Tried in order; a preset can stand for several line formats.
    regexes: Vec<Regex>,
    /// Added to every alert; a capture of the same name wins.
    labels: BTreeMap<String, String>,
}

impl Patterns {
    pub fn new(cfg: &[PatternConfig]) -> Result<Self, String> {
        let patterns = cfg
            .iter()
            .enumerate()
            .map(|(i, p)| Pattern::new(p).map_err(|e| format!("patterns[{i}]: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Patterns { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The alert in one line: `from` is the sender's `nick!user@host`, `account` the
    /// services account it is logged in to (`None`: not, or not known), `channel` where
    /// it was said (`None` for a private message), `at` when (server-time, else now).
    ///
    /// The first pattern whose sender mask, channel and regex match decides: when it
    /// names `from_account` and the sender is not logged in to it, the line is
    /// [`Reading::Forged`], not an alert.
    pub fn read(
        &self,
        from: &str,
        account: Option<&str>,
        channel: Option<&str>,
        text: &str,
        at: Timestamp,
    ) -> Reading {
        let line = clean_line(text);
        let Some((pattern, capture)) = self
            .patterns
            .iter()
            .filter(|p| p.applies_to(from, channel))
            .find_map(|p| Some((p, p.read(&line)?)))
        else {
            return Reading::Nothing;
        };
        match &pattern.from_account {
            Some(wanted) if !account.is_some_and(|a| a.eq_ignore_ascii_case(wanted)) => {
                Reading::Forged {
                    wanted: wanted.clone(),
                    account: account.map(str::to_string),
                }
            }
            _ => Reading::Alert(capture.into_batch(at)),
        }
    }

    /// Whether some pattern trusts its sender by mask alone (no `from_account`).
    pub fn trusts_a_mask(&self) -> bool {
        self.patterns.iter().any(|p| p.from_account.is_none())
    }
}

/// What one line is to the patterns.
#[derive(Debug)]
pub enum Reading {
    /// An alert line from a sender the pattern trusts.
    Alert(AlertBatch),
    /// An alert line from the right mask but not the pattern's account: someone else
    /// holds the relay's nick (or the relay is not logged in). Not read.
    Forged {
        /// The pattern's `from_account`.
        wanted: String,
        /// The sender's account, `None` when not logged in.
        account: Option<String>,
    },
    /// No pattern matches.
    Nothing,
}

impl Reading {
    /// The alert, if the line is one.
    pub fn alert(self) -> Option<AlertBatch> {
        match self {
            Reading::Alert(b) => Some(b),
            _ => None,
        }
    }
}

impl Pattern {
    fn new(cfg: &PatternConfig) -> Result<Self, String> {
        let sources: Vec<&str> = match (&cfg.regex, &cfg.preset) {
            (Some(r), None) => vec![r.as_str()],
            (None, Some(p)) => preset(p)?.to_vec(),
            (Some(_), Some(_)) => return Err("has both regex and preset; keep one".into()),
            (None, None) => {
                return Err(format!(
                    "needs regex = '...' or preset = one of {}",
                    PATTERN_PRESETS.join(", ")
                ));
            }
        };
        let regexes = sources
            .into_iter()
            .map(|r| Regex::new(r).map_err(|e| format!("regex {r:?} does not compile: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Pattern {
            from: cfg.from.clone(),
            from_account: cfg.from_account.clone(),
            channels: cfg.channels.clone(),
            regexes,
            labels: cfg.labels.clone(),
        })
    }

    fn applies_to(&self, from: &str, channel: Option<&str>) -> bool {
        if !mask_matches(&self.from, from) {
            return false;
        }
        match (&self.channels, channel) {
            (None, Some(_)) => true,
            (None, None) => false,
            (Some(list), Some(c)) => list.iter().any(|allowed| same_name(allowed, c)),
            (Some(list), None) => list
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(PRIVATE)),
        }
    }

    /// What the first matching regex captured, sorted into labels and the rest.
    fn read(&self, line: &str) -> Option<Capture> {
        let (re, caps) = self
            .regexes
            .iter()
            .find_map(|re| re.captures(line).map(|caps| (re, caps)))?;
        let mut out = Capture {
            labels: self
                .labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), value(v)?)))
                .collect(),
            status: AlertStatus::Firing,
            summary: None,
            group: None,
        };
        for name in re.capture_names().flatten() {
            let Some(v) = caps.name(name).and_then(|m| value(m.as_str())) else {
                continue;
            };
            match name {
                "status" => out.status = status(&v),
                "summary" => out.summary = Some(v),
                "group" => out.group = Some(v),
                _ => {
                    out.labels.insert(name.to_string(), v);
                }
            }
        }
        Some(out)
    }
}

fn preset(name: &str) -> Result<&'static [&'static str], String> {
    match name {
        "alertmanager-irc-relay" => Ok(ALERTMANAGER_IRC_RELAY),
        other => Err(format!(
            "unknown preset {other:?}: the presets are {}",
            PATTERN_PRESETS.join(", ")
        )),
    }
}

/// A capture as a label value: cleaned, capped, and `None` when there is nothing left.
fn value(raw: &str) -> Option<String> {
    let v = clean_line(raw);
    let v = prefix_within(&v, MAX_LABEL_BYTES).trim_end();
    (!v.is_empty() && v != GO_TEMPLATE_MISSING).then(|| v.to_string())
}

/// Only words that clearly mean "over" resolve: misreading a problem as a recovery would
/// silence a page, while misreading a recovery as a problem only pages once more.
fn status(word: &str) -> AlertStatus {
    match word.to_ascii_lowercase().as_str() {
        "resolved" | "ok" | "recovery" | "recovered" | "up" => AlertStatus::Resolved,
        _ => AlertStatus::Firing,
    }
}

/// What one line said, before it becomes an alert.
#[derive(Debug)]
struct Capture {
    labels: BTreeMap<String, String>,
    status: AlertStatus,
    summary: Option<String>,
    group: Option<String>,
}

impl Capture {
    fn into_batch(self, at: Timestamp) -> AlertBatch {
        let fingerprint = fingerprint(&self.labels);
        let alertname = self.labels.get("alertname");
        let group_key = format!(
            "irc:{}",
            self.group
                .as_deref()
                .or(alertname.map(String::as_str))
                // Nothing to group by: each distinct alert is its own incident.
                .unwrap_or(&fingerprint)
        );
        let title = title(
            alertname.map_or("alert", String::as_str),
            self.summary.as_deref(),
        );
        let mut annotations = BTreeMap::new();
        if let Some(s) = self.summary {
            annotations.insert("summary".to_string(), s);
        }
        let resolved = self.status == AlertStatus::Resolved;
        AlertBatch {
            source: SOURCE.to_string(),
            group_key,
            title,
            alerts: vec![AlertIn {
                fingerprint,
                status: self.status,
                starts_at: at,
                ends_at: resolved.then_some(at),
                labels: LabelSet::from_map(&self.labels),
                annotations: LabelSet::from_map(&annotations),
                generator_url: String::new(),
            }],
            labels: self.labels,
            truncated: 0,
            policy: None,
        }
    }
}

/// The labels a line's batch carries: those every alert of its group shares once the
/// line is counted (a firing line adds or updates its alert, a resolved one takes it
/// out). `firing` are the group's open incident's firing alerts (fingerprint → labels),
/// `current` that incident's labels. When nothing fires any more (the last recovery) the
/// incident keeps what it had; with no open incident the line is the group.
pub fn shared_labels(
    batch: &AlertBatch,
    current: Option<&BTreeMap<String, String>>,
    mut firing: BTreeMap<String, BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    for a in &batch.alerts {
        match a.status {
            AlertStatus::Firing => {
                firing.insert(a.fingerprint.clone(), a.labels.to_map());
            }
            AlertStatus::Resolved => {
                firing.remove(&a.fingerprint);
            }
        }
    }
    let mut sets = firing.into_values();
    let Some(first) = sets.next() else {
        return current.cloned().unwrap_or_else(|| batch.labels.clone());
    };
    sets.fold(first, |mut shared, labels| {
        shared.retain(|k, v| labels.get(k) == Some(v));
        shared
    })
}

/// Identifies the alert across lines: status and summary are left out so that the
/// resolved line, or a firing line with a new summary, updates the same alert.
/// 0xff and 0xfe never occur in UTF-8, so no two label sets encode alike.
fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (name, value) in labels {
        h.update(name.as_bytes());
        h.update([0xff]);
        h.update(value.as_bytes());
        h.update([0xfe]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// "DiskFull: Disk almost full on db1", like the Alertmanager source's titles.
fn title(alertname: &str, summary: Option<&str>) -> String {
    let t = match summary {
        Some(s) => clean_line(&format!("{alertname}: {s}")),
        None => clean_line(alertname),
    };
    match t.char_indices().nth(MAX_TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", &t[..cut]),
        None => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY: &str = "am-relay!~relay@monitoring.example.net";
    const AT: &str = "2026-11-21T10:00:00Z";

    fn relay_preset() -> PatternConfig {
        PatternConfig {
            from: "am-relay!*@monitoring.example.net".into(),
            regex: None,
            from_account: None,
            preset: Some("alertmanager-irc-relay".into()),
            channels: None,
            labels: BTreeMap::new(),
        }
    }

    fn regex(from: &str, re: &str) -> PatternConfig {
        PatternConfig {
            from: from.into(),
            from_account: None,
            regex: Some(re.into()),
            preset: None,
            channels: None,
            labels: BTreeMap::new(),
        }
    }

    fn patterns(cfg: Vec<PatternConfig>) -> Patterns {
        Patterns::new(&cfg).unwrap()
    }

    fn read_in(p: &Patterns, channel: &str, text: &str) -> Option<AlertBatch> {
        p.read(RELAY, None, Some(channel), text, Timestamp::at(AT))
            .alert()
    }

    fn only_alert(b: &AlertBatch) -> &AlertIn {
        assert_eq!(b.alerts.len(), 1);
        &b.alerts[0]
    }

    #[test]
    fn relay_per_alert_line_becomes_a_firing_alert() {
        let p = patterns(vec![relay_preset()]);
        let b = read_in(&p, "#ops", "Alert DiskFull on db1:9100 is firing").unwrap();
        assert_eq!(b.source, "irc");
        assert_eq!(b.group_key, "irc:DiskFull");
        assert_eq!(b.title, "DiskFull");
        assert_eq!(b.truncated, 0);
        assert_eq!(
            b.labels,
            BTreeMap::from([
                ("alertname".to_string(), "DiskFull".to_string()),
                ("instance".to_string(), "db1:9100".to_string()),
            ])
        );
        let a = only_alert(&b);
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.starts_at, Timestamp::at(AT));
        assert_eq!(a.ends_at, None);
        assert_eq!(a.labels.to_map(), b.labels);
        assert_eq!(a.fingerprint.len(), 16);
        assert!(a.fingerprint.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(a.generator_url.is_empty());
    }

    #[test]
    fn relay_per_group_line_is_read_too() {
        let p = patterns(vec![relay_preset()]);
        let b = read_in(&p, "#ops", "Alert HighLatency for api is resolved").unwrap();
        assert_eq!(b.labels.get("job").map(String::as_str), Some("api"));
        assert_eq!(
            b.labels.get("alertname").map(String::as_str),
            Some("HighLatency")
        );
        assert!(!b.labels.contains_key("instance"));
        let a = only_alert(&b);
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(a.ends_at, Some(Timestamp::at(AT)));
    }

    #[test]
    fn relay_status_in_capitals_still_reads() {
        let p = patterns(vec![relay_preset()]);
        let b = read_in(&p, "#ops", "Alert DiskFull on db1 is RESOLVED").unwrap();
        assert_eq!(only_alert(&b).status, AlertStatus::Resolved);
    }

    #[test]
    fn relay_line_for_a_group_without_job_drops_the_go_placeholder() {
        let p = patterns(vec![relay_preset()]);
        let b = read_in(&p, "#ops", "Alert Watchdog for <no value> is firing").unwrap();
        assert!(!b.labels.contains_key("job"), "{:?}", b.labels);
        assert_eq!(b.group_key, "irc:Watchdog");
    }

    #[test]
    fn the_resolved_line_closes_the_alert_the_firing_line_opened() {
        let p = patterns(vec![relay_preset()]);
        let firing = read_in(&p, "#ops", "Alert DiskFull on db1:9100 is firing").unwrap();
        let resolved = read_in(&p, "#ops", "Alert DiskFull on db1:9100 is resolved").unwrap();
        assert_eq!(
            only_alert(&firing).fingerprint,
            only_alert(&resolved).fingerprint
        );
        assert_eq!(firing.group_key, resolved.group_key);
    }

    #[test]
    fn two_instances_are_two_alerts_in_one_incident() {
        let p = patterns(vec![relay_preset()]);
        let db1 = read_in(&p, "#ops", "Alert DiskFull on db1:9100 is firing").unwrap();
        let db2 = read_in(&p, "#ops", "Alert DiskFull on db2:9100 is firing").unwrap();
        assert_ne!(only_alert(&db1).fingerprint, only_alert(&db2).fingerprint);
        assert_eq!(db1.group_key, db2.group_key);
    }

    /// The firing alerts of an open incident, as the store has them.
    fn firing_of(lines: &[&AlertBatch]) -> BTreeMap<String, BTreeMap<String, String>> {
        lines
            .iter()
            .map(|b| (only_alert(b).fingerprint.clone(), b.labels.clone()))
            .collect()
    }

    fn pairs(labels: &BTreeMap<String, String>) -> Vec<String> {
        labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn a_second_instance_firing_leaves_only_the_labels_both_share() {
        let mut cfg = relay_preset();
        cfg.labels = BTreeMap::from([("team".to_string(), "db".to_string())]);
        let p = patterns(vec![cfg]);
        let db1 = read_in(&p, "#ops", "Alert DiskFull on db1:9100 is firing").unwrap();
        assert_eq!(
            pairs(&shared_labels(&db1, None, BTreeMap::new())),
            ["alertname=DiskFull", "instance=db1:9100", "team=db"],
            "a new group: the line is all there is"
        );
        let db2 = read_in(&p, "#ops", "Alert DiskFull on db2:9100 is firing").unwrap();
        let shared = shared_labels(&db2, Some(&db1.labels), firing_of(&[&db1]));
        assert_eq!(pairs(&shared), ["alertname=DiskFull", "team=db"]);
    }

    #[test]
    fn a_recovery_leaves_the_labels_the_alerts_still_firing_share() {
        let p = patterns(vec![relay_preset()]);
        let db1 = read_in(&p, "#ops", "Alert DiskFull on db1:9100 is firing").unwrap();
        let db2 = read_in(&p, "#ops", "Alert DiskFull on db2:9100 is firing").unwrap();
        let both = BTreeMap::from([("alertname".to_string(), "DiskFull".to_string())]);
        let db2_ok = read_in(&p, "#ops", "Alert DiskFull on db2:9100 is resolved").unwrap();
        let shared = shared_labels(&db2_ok, Some(&both), firing_of(&[&db1, &db2]));
        assert_eq!(pairs(&shared), ["alertname=DiskFull", "instance=db1:9100"]);

        let db1_ok = read_in(&p, "#ops", "Alert DiskFull on db1:9100 is resolved").unwrap();
        let last = shared_labels(&db1_ok, Some(&shared), firing_of(&[&db1]));
        assert_eq!(last, shared, "nothing fires: the incident keeps its labels");
    }

    #[test]
    fn a_repeated_line_counts_its_alert_once() {
        let p = patterns(vec![relay_preset()]);
        let db1 = read_in(&p, "#ops", "Alert DiskFull on db1:9100 is firing").unwrap();
        let again = read_in(&p, "#ops", "Alert DiskFull on db1:9100 is firing").unwrap();
        let shared = shared_labels(&again, Some(&db1.labels), firing_of(&[&db1]));
        assert_eq!(shared, db1.labels);
    }

    #[test]
    fn label_boundaries_cannot_be_shifted_to_forge_a_fingerprint() {
        let a = BTreeMap::from([("a".to_string(), "bc".to_string())]);
        let b = BTreeMap::from([("ab".to_string(), "c".to_string())]);
        let c = BTreeMap::from([
            ("a".to_string(), "b".to_string()),
            ("c".to_string(), String::new()),
        ]);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn chatter_in_the_alert_channel_is_not_an_alert() {
        let p = patterns(vec![relay_preset()]);
        assert!(read_in(&p, "#ops", "anyone looking at db1?").is_none());
        assert!(read_in(&p, "#ops", "Alert DiskFull on db1 is on fire").is_none());
    }

    #[test]
    fn a_human_pasting_an_alert_line_does_not_open_an_incident() {
        let p = patterns(vec![relay_preset()]);
        let pasted = p
            .read(
                "mallory!~m@home.example.org",
                None,
                Some("#ops"),
                "Alert DiskFull on db1:9100 is firing",
                Timestamp::at(AT),
            )
            .alert();
        assert!(pasted.is_none());
    }

    /// The relay is gone and mallory holds its nick (any host matches a nick-only mask):
    /// with `from_account` her "resolved" is forged and not read, the relay's own line
    /// (logged in as relaybot) still is.
    #[test]
    fn a_resolve_from_someone_holding_the_relay_nick_is_forged_under_from_account() {
        let mut cfg = relay_preset();
        cfg.from = "am-relay!*@*".into();
        cfg.from_account = Some("relaybot".into());
        let p = patterns(vec![cfg]);
        let line = "Alert DiskFull on db1:9100 is resolved";
        let at = Timestamp::at(AT);
        let mallory = "am-relay!m@home.example.org";
        for account in [None, Some("mallory")] {
            match p.read(mallory, account, Some("#ops"), line, at) {
                Reading::Forged { wanted, account: a } => {
                    assert_eq!(wanted, "relaybot");
                    assert_eq!(a.as_deref(), account);
                }
                other => panic!("read from {account:?}: {other:?}"),
            }
        }
        let relay = p.read(RELAY, Some("RelayBot"), Some("#ops"), line, at);
        assert!(relay.alert().is_some(), "accounts compare without case");
        assert!(!p.trusts_a_mask());
        assert!(patterns(vec![relay_preset()]).trusts_a_mask());
    }

    #[test]
    fn a_pattern_for_one_channel_ignores_the_others() {
        let mut cfg = relay_preset();
        cfg.channels = Some(vec!["#Ops-Alerts".into()]);
        let p = patterns(vec![cfg]);
        let line = "Alert DiskFull on db1 is firing";
        assert!(read_in(&p, "#ops-alerts", line).is_some(), "casemapped");
        assert!(read_in(&p, "#random", line).is_none());
        assert!(
            p.read(RELAY, None, None, line, Timestamp::at(AT))
                .alert()
                .is_none()
        );
    }

    #[test]
    fn private_alerts_are_read_only_where_asked_for() {
        let line = "Alert DiskFull on db1 is firing";
        let everywhere = patterns(vec![relay_preset()]);
        assert!(
            everywhere
                .read(RELAY, None, None, line, Timestamp::at(AT))
                .alert()
                .is_none(),
            "unset channels means joined channels, not private messages"
        );
        let mut cfg = relay_preset();
        cfg.channels = Some(vec!["Private".into()]);
        let private_only = patterns(vec![cfg]);
        assert!(
            private_only
                .read(RELAY, None, None, line, Timestamp::at(AT))
                .alert()
                .is_some()
        );
        assert!(read_in(&private_only, "#ops", line).is_none());
    }

    #[test]
    fn the_first_matching_pattern_wins() {
        let mut first = regex("*", r"^(?P<alertname>\w+) DOWN$");
        first.labels = BTreeMap::from([("team".to_string(), "db".to_string())]);
        let mut second = regex("*", r"^(?P<alertname>\w+) .*$");
        second.labels = BTreeMap::from([("team".to_string(), "web".to_string())]);
        let p = patterns(vec![first, second]);
        let b = read_in(&p, "#ops", "Postgres DOWN").unwrap();
        assert_eq!(b.labels.get("team").map(String::as_str), Some("db"));
        let b = read_in(&p, "#ops", "Nginx slow").unwrap();
        assert_eq!(b.labels.get("team").map(String::as_str), Some("web"));
    }

    #[test]
    fn a_pattern_from_another_sender_is_skipped_not_final() {
        let other = regex("nagios!*@*", r"^(?P<alertname>.+)$");
        let p = patterns(vec![other, relay_preset()]);
        let b = read_in(&p, "#ops", "Alert DiskFull on db1 is firing").unwrap();
        assert_eq!(b.labels.get("instance").map(String::as_str), Some("db1"));
    }

    #[test]
    fn nagios_style_line_maps_status_summary_group_and_labels() {
        let mut cfg = regex(
            "nagios!*@*",
            r"^(?P<status>\w+): (?P<alertname>\S+) on (?P<host>\S+)(?: \[(?P<severity>\w+)\])? - (?P<summary>.+?)(?: \((?P<group>\w+)\))?$",
        );
        cfg.labels = BTreeMap::from([
            ("team".to_string(), "infra".to_string()),
            ("host".to_string(), "overridden".to_string()),
        ]);
        let p = patterns(vec![cfg]);
        let read = |text: &str| {
            p.read("nagios!n@mon", None, Some("#ops"), text, Timestamp::at(AT))
                .alert()
                .unwrap()
        };

        let b = read("PROBLEM: Load on web1 [critical] - load 12.3 (web)");
        let a = only_alert(&b);
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(b.group_key, "irc:web");
        assert_eq!(b.title, "Load: load 12.3");
        assert_eq!(a.annotations.get("summary").as_deref(), Some("load 12.3"));
        assert_eq!(
            b.labels,
            BTreeMap::from([
                ("alertname".to_string(), "Load".to_string()),
                ("host".to_string(), "web1".to_string()),
                ("severity".to_string(), "critical".to_string()),
                ("team".to_string(), "infra".to_string()),
            ]),
            "captures win over static labels; status, summary and group are not labels"
        );

        let recovered = read("RECOVERY: Load on web1 [critical] - load 0.4 (web)");
        assert_eq!(only_alert(&recovered).status, AlertStatus::Resolved);
        assert_eq!(
            only_alert(&recovered).fingerprint,
            a.fingerprint,
            "a new summary is the same alert"
        );

        let no_group = read("PROBLEM: Load on web2 - load 9");
        assert_eq!(no_group.group_key, "irc:Load");
        assert!(!no_group.labels.contains_key("severity"));
    }

    #[test]
    fn status_words_map_to_firing_unless_clearly_over() {
        for w in ["resolved", "OK", "Recovery", "up", "RECOVERED"] {
            assert_eq!(status(w), AlertStatus::Resolved, "{w}");
        }
        for w in [
            "firing", "PROBLEM", "alert", "down", "critical", "warning", "???",
        ] {
            assert_eq!(status(w), AlertStatus::Firing, "{w}");
        }
    }

    #[test]
    fn a_line_without_a_status_capture_is_firing() {
        let p = patterns(vec![regex("*", r"^ALARM (?P<alertname>\w+)$")]);
        let b = read_in(&p, "#ops", "ALARM Disk").unwrap();
        assert_eq!(only_alert(&b).status, AlertStatus::Firing);
        assert_eq!(only_alert(&b).annotations.json(), "{}");
    }

    #[test]
    fn colour_codes_in_the_relay_line_do_not_defeat_the_pattern() {
        let p = patterns(vec![relay_preset()]);
        let b = read_in(
            &p,
            "#ops",
            "\x02Alert\x02 \x0304DiskFull\x03 on db1:9100 is \x0304,01firing\x0f",
        )
        .unwrap();
        assert_eq!(
            b.labels.get("alertname").map(String::as_str),
            Some("DiskFull")
        );
        assert_eq!(only_alert(&b).status, AlertStatus::Firing);
    }

    #[test]
    fn crlf_inside_a_capture_never_reaches_a_label_or_title() {
        let p = patterns(vec![regex("*", r"^(?P<alertname>\S+) (?P<summary>.+)$")]);
        let b = read_in(&p, "#ops", "Disk full\r\nPRIVMSG #ops :pwned\0").unwrap();
        let all = format!(
            "{} {:?} {}",
            b.title,
            b.labels,
            only_alert(&b).annotations.json()
        );
        assert!(!all.contains(['\r', '\n', '\0']), "{all}");
        assert_eq!(b.title, "Disk: full  PRIVMSG #ops :pwned");
    }

    #[test]
    fn a_600_byte_line_yields_labels_of_at_most_200_bytes() {
        let p = patterns(vec![regex("*", r"^(?P<alertname>\S+) (?P<detail>.+)$")]);
        let long = format!("{} {}", "A".repeat(300), "é".repeat(150));
        assert_eq!(long.len(), 601);
        let b = read_in(&p, "#ops", &long).unwrap();
        let name = &b.labels["alertname"];
        let detail = &b.labels["detail"];
        assert_eq!(name.len(), 200);
        assert!(
            detail.len() <= 200 && detail.len() >= 199,
            "{}",
            detail.len()
        );
        assert!(detail.chars().all(|c| c == 'é'), "cut on a char boundary");
        assert!(b.title.chars().count() <= MAX_TITLE_CHARS + 1);
    }

    #[test]
    fn a_long_summary_gives_a_capped_title() {
        let t = title("DiskFull", Some(&"x".repeat(500)));
        assert_eq!(t.chars().count(), MAX_TITLE_CHARS + 1);
        assert!(t.starts_with("DiskFull: xxx") && t.ends_with('…'));
    }

    #[test]
    fn empty_captures_are_not_labels() {
        let p = patterns(vec![regex(
            "*",
            r"^(?P<alertname>\w+)(?P<env>[a-z]*) *(?P<note>\x20*)$",
        )]);
        let b = read_in(&p, "#ops", "Disk").unwrap();
        assert_eq!(
            b.labels.keys().collect::<Vec<_>>(),
            vec!["alertname"],
            "{:?}",
            b.labels
        );
    }

    #[test]
    fn a_pattern_without_an_alertname_still_pages() {
        let p = patterns(vec![regex("*", r"^BEEP (?P<host>\S+)$")]);
        let b = read_in(&p, "#ops", "BEEP db1").unwrap();
        assert_eq!(b.title, "alert");
        assert_eq!(b.group_key, format!("irc:{}", only_alert(&b).fingerprint));
    }

    #[test]
    fn a_broken_regex_is_named_with_its_index() {
        let cfg = vec![relay_preset(), regex("*", r"^(?P<alertname>\w+")];
        let e = Patterns::new(&cfg).unwrap_err();
        assert!(e.starts_with("patterns[1]: regex"), "{e}");
        assert!(e.contains("does not compile"), "{e}");
    }

    #[test]
    fn an_unknown_preset_lists_the_known_ones() {
        let mut cfg = relay_preset();
        cfg.preset = Some("nagios".into());
        let e = Patterns::new(&[cfg]).unwrap_err();
        assert!(
            e.contains("patterns[0]") && e.contains("alertmanager-irc-relay"),
            "{e}"
        );
    }

    #[test]
    fn a_pattern_needs_exactly_one_of_regex_and_preset() {
        let mut both = relay_preset();
        both.regex = Some("x".into());
        assert!(Patterns::new(&[both]).unwrap_err().contains("both"));
        let mut neither = relay_preset();
        neither.preset = None;
        assert!(
            Patterns::new(&[neither])
                .unwrap_err()
                .contains("needs regex")
        );
    }

    #[test]
    fn no_patterns_read_nothing() {
        let p = patterns(vec![]);
        assert!(p.is_empty());
        assert!(read_in(&p, "#ops", "Alert DiskFull on db1 is firing").is_none());
        assert!(!patterns(vec![relay_preset()]).is_empty());
    }
}
