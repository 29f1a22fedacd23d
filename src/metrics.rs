//! Prometheus metrics of tocsin itself, on an explicit registry (one per daemon, so
//! tests running several daemons in one process do not share counters).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WhatLabel {
    /// What retention deleted: `incidents`, `alerts`, `events`, `pages`.
    pub what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleLabel {
    pub schedule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierLabel {
    pub notifier: String,
    /// `delivered` or `failed`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabel {
    pub notifier: String,
    /// [`crate::notify::FailureKind::as_str`]: `timeout`, `refused`, `tls`, `http_5xx`, ...
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplyLabel {
    /// `kannel`, `twilio`, `link`.
    pub via: String,
    /// `applied`, `refused`, `not_understood`, `unknown_sender`, `replayed` (an SMS
    /// whose id arrived before), `bad_signature`, `unavailable`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabel {
    /// `ack`, `unack`, `snooze`, `resolve`, `incidents`, `status`, `help`, `unknown`.
    pub command: String,
    /// `applied`, `refused` (not an acker), `rejected` (no such incident...),
    /// `not_understood`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierOnly {
    pub notifier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    /// `source:irc`, `notifier:mail`, `heartbeat:backup`, `peer:...`.
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabel {
    /// A supervised task: `watchdog`, `irc-link`, `dispatch-worker-7`, ...
    pub task: String,
}

pub struct Metrics {
    registry: Registry,
    /// Labelled families, so their HELP and TYPE show before their first series.
    families: Vec<Declared>,
    pub alerts_received: Family<SourceLabel, Counter>,
    pub heartbeats_received: Family<SourceLabel, Counter>,
    pub truncated_alerts: Family<SourceLabel, Counter>,
    pub webhook_requests: Family<CodeLabel, Counter>,
    pub webhook_duration: Histogram,
    pub notifications: Family<NotifierLabel, Counter>,
    pub notification_attempts: Family<NotifierLabel, Counter>,
    /// Failed attempts by what kind of failure they met.
    pub notification_failures: Family<FailureLabel, Counter>,
    pub store_commit_duration: Histogram,
    pub store_commit_failures: Counter,
    /// 0 while commits fail (nothing is recorded or paged), 1 otherwise.
    pub store_writable: Gauge,
    /// With a shared store: 1 on the instance that leads, 0 on the others.
    pub leader: Gauge,
    /// The lease's epoch this instance last saw (it leads with it when `leader` is 1).
    pub leader_epoch: Gauge,
    /// Times this process took the lease or gave it up.
    pub leader_changes: Counter,
    /// Requests refused for missing or wrong credentials (401), from any client.
    pub auth_failures: Counter,
    /// Requests answered 429 without their credentials being looked at: their address
    /// failed too often.
    pub auth_throttled: Counter,
    pub engine_batch_inputs: Histogram,
    pub engine_last_tick: Gauge,
    pub incidents: Family<StateLabel, Gauge>,
    pub replies: Family<ReplyLabel, Counter>,
    pub pages_held: Family<NotifierOnly, Gauge>,
    pub bundles_sent: Family<NotifierOnly, Counter>,
    pub irc_commands: Family<CommandLabel, Counter>,
    pub irc_up: Gauge,
    pub irc_connects: Counter,
    /// Alert lines from a pattern's sender mask but not its `from_account`: someone
    /// else holds the relay's nick.
    pub irc_forged_lines: Counter,
    pub channel_up: Family<ChannelLabel, Gauge>,
    pub watchdog_incidents: Family<ChannelLabel, Counter>,
    pub outside_pings: Family<StateLabel, Counter>,
    pub config_reload_ok: Gauge,
    pub config_reload_time: Gauge,
    /// Supervised tasks restarted after a panic or an unexpected end; each series is
    /// created at 0 when its task is registered.
    pub task_restarts: Family<TaskLabel, Counter>,
    /// Rows retention deleted, by table; primed at 0 when retention is on.
    pub retention_deleted: Family<WhatLabel, Counter>,
    /// People on call now, by schedule (0: a gap, its fallback is paged).
    pub schedule_oncall: Family<ScheduleLabel, Gauge>,
    /// Firing alerts a silence dropped before they could open or join an incident.
    pub alerts_silenced: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tocsin");
        let mut families = Vec::new();
        let m = Metrics {
            alerts_received: Family::default(),
            heartbeats_received: Family::default(),
            truncated_alerts: Family::default(),
            webhook_requests: Family::default(),
            // 0.25 ms .. ~8 s
            webhook_duration: Histogram::new(exponential_buckets(0.00025, 2.0, 16)),
            notifications: Family::default(),
            notification_attempts: Family::default(),
            notification_failures: Family::default(),
            store_commit_duration: Histogram::new(exponential_buckets(0.00025, 2.0, 16)),
            store_commit_failures: Counter::default(),
            store_writable: Gauge::default(),
            leader: Gauge::default(),
            leader_epoch: Gauge::default(),
            leader_changes: Counter::default(),
            auth_failures: Counter::default(),
            auth_throttled: Counter::default(),
            engine_batch_inputs: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            engine_last_tick: Gauge::default(),
            incidents: Family::default(),
            replies: Family::default(),
            pages_held: Family::default(),
            bundles_sent: Family::default(),
            irc_commands: Family::default(),
            irc_up: Gauge::default(),
            irc_connects: Counter::default(),
            irc_forged_lines: Counter::default(),
            channel_up: Family::default(),
            watchdog_incidents: Family::default(),
            outside_pings: Family::default(),
            config_reload_ok: Gauge::default(),
            config_reload_time: Gauge::default(),
            task_restarts: Family::default(),
            retention_deleted: Family::default(),
            schedule_oncall: Family::default(),
            alerts_silenced: Counter::default(),
            registry: Registry::default(),
            families: Vec::new(),
        };
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "alerts_received",
            "Alerts received, duplicates included",
            m.alerts_received.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "heartbeats_received",
            "Heartbeat (dead man's switch) alerts received; they never open incidents",
            m.heartbeats_received.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "truncated_alerts",
            "Alerts the sender reported dropping (Alertmanager truncatedAlerts)",
            m.truncated_alerts.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "webhook_requests",
            "Webhook requests by HTTP status code",
            m.webhook_requests.clone(),
        );
        registry.register(
            "webhook_request_duration_seconds",
            "Time from request to answer on /hooks/*, commit included",
            m.webhook_duration.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "notifications",
            "Pages finished, by notifier and outcome (delivered, failed; placed: a call is ringing)",
            m.notifications.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "notification_attempts",
            "Delivery attempts, retries included, by notifier and outcome",
            m.notification_attempts.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "notification_failures",
            "Failed delivery attempts by notifier and kind of failure",
            m.notification_failures.clone(),
        );
        registry.register(
            "store_commit_duration_seconds",
            "Duration of one store transaction (one fsync shared by a batch)",
            m.store_commit_duration.clone(),
        );
        registry.register(
            "store_commit_failures",
            "Store transactions that failed; senders got 503",
            m.store_commit_failures.clone(),
        );
        registry.register(
            "store_writable",
            "1 while the store takes writes; 0 while commits fail and nothing is recorded or paged",
            m.store_writable.clone(),
        );
        registry.register(
            "leader",
            "With a shared PostgreSQL store: 1 on the instance that leads (runs the engine, sends pages), 0 on the others",
            m.leader.clone(),
        );
        registry.register(
            "leader_epoch",
            "The leadership lease's epoch as this instance last saw it; it grows by one at every takeover",
            m.leader_epoch.clone(),
        );
        registry.register(
            "leader_changes",
            "Times this process took the leadership lease or gave it up",
            m.leader_changes.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests refused for missing or wrong credentials (401); the log names each client address",
            m.auth_failures.clone(),
        );
        registry.register(
            "auth_throttled",
            "Requests refused with 429 because their address failed authentication too often",
            m.auth_throttled.clone(),
        );
        registry.register(
            "engine_batch_inputs",
            "Inputs applied per engine batch (group commit size)",
            m.engine_batch_inputs.clone(),
        );
        registry.register(
            "engine_last_tick_timestamp_seconds",
            "When the engine loop last ran, Unix seconds",
            m.engine_last_tick.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "gauge",
            "incidents",
            "Incidents by state, as stored",
            m.incidents.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "acks_from_pages",
            "Replies and link clicks acting on incidents (SMS replies, ack links), by channel and outcome",
            m.replies.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "gauge",
            "pages_held",
            "Pages held back by flood control, waiting to go out in a bundle",
            m.pages_held.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "bundles_sent",
            "Messages that carried more than one page (flood control bundles)",
            m.bundles_sent.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "irc_commands",
            "Commands received in IRC, by command and outcome",
            m.irc_commands.clone(),
        );
        registry.register(
            "irc_link_up",
            "1 while the IRC link is registered (and a bouncer's network connected)",
            m.irc_up.clone(),
        );
        registry.register(
            "alerts_silenced",
            "Firing alerts a silence dropped before they could open or join an incident",
            m.alerts_silenced.clone(),
        );
        registry.register(
            "irc_registrations",
            "IRC connections that registered (a rising count means reconnects)",
            m.irc_connects.clone(),
        );
        registry.register(
            "irc_forged_lines",
            "IRC alert lines ignored because their sender was not logged in to the pattern's from_account",
            m.irc_forged_lines.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "gauge",
            "channel_up",
            "1 while a channel (source, notifier, heartbeat, peer) is up or degraded, 0 while down",
            m.channel_up.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "watchdog_incidents",
            "Watchdog incidents opened because a channel stayed down past the hold-down",
            m.watchdog_incidents.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "outside_pings",
            "Pings of the outside heartbeat URL, by outcome (sent, failed, skipped while the engine loop is unhealthy)",
            m.outside_pings.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "1 when the last config (re)load succeeded, 0 when the last reload was refused",
            m.config_reload_ok.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully, Unix seconds",
            m.config_reload_time.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "task_restarts",
            "Background tasks restarted after they panicked or ended while tocsin was not stopping, by task",
            m.task_restarts.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "counter",
            "retention_deleted",
            "Rows deleted by retention ([storage] retention), by what: resolved incidents and their alerts, events and pages",
            m.retention_deleted.clone(),
        );
        register_family(
            &mut registry,
            &mut families,
            "gauge",
            "schedule_oncall",
            "People on call now, by schedule; 0 is a gap, when a step naming it pages its fallback",
            m.schedule_oncall.clone(),
        );
        m.with_registry(registry, families)
    }

    /// Creates at 0 the series alert rules watch, so the first failure after a start is
    /// an increase (a series born at 1 is invisible to `increase()`).
    pub fn prime<'a>(&self, notifiers: impl IntoIterator<Item = &'a str>) {
        for notifier in notifiers {
            for outcome in ["delivered", "failed"] {
                let l = NotifierLabel {
                    notifier: notifier.to_string(),
                    outcome: outcome.to_string(),
                };
                let _ = self.notifications.get_or_create(&l);
                let _ = self.notification_attempts.get_or_create(&l);
            }
            for kind in crate::notify::FailureKind::LABELS {
                let _ = self.notification_failures.get_or_create(&FailureLabel {
                    notifier: notifier.to_string(),
                    kind: kind.to_string(),
                });
            }
        }
        for code in ["200", "400", "401", "413", "503"] {
            let _ = self.webhook_requests.get_or_create(&CodeLabel {
                code: code.to_string(),
            });
        }
        let source = SourceLabel {
            source: "alertmanager".to_string(),
        };
        let _ = self.alerts_received.get_or_create(&source);
        let _ = self.heartbeats_received.get_or_create(&source);
        let _ = self.truncated_alerts.get_or_create(&source);
        // A replayed SMS is someone resending a captured request, or a gateway retrying
        // what tocsin was slow to answer: worth an alert from the first one.
        for via in ["kannel", "twilio"] {
            let _ = self.replies.get_or_create(&ReplyLabel {
                via: via.to_string(),
                outcome: "replayed".to_string(),
            });
        }
    }

    /// Counts one IRC command.
    pub fn irc_command(&self, command: &str, outcome: &str) {
        self.irc_commands
            .get_or_create(&CommandLabel {
                command: command.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts one SMS reply or link use.
    pub fn sms_reply(&self, via: &str, outcome: &str) {
        self.replies
            .get_or_create(&ReplyLabel {
                via: via.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    fn with_registry(mut self, r: Registry, families: Vec<Declared>) -> Self {
        self.registry = r;
        self.families = families;
        self
    }

    /// OpenMetrics text, as the client library writes it.
    pub fn render_openmetrics(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }

    /// Prometheus text format 0.0.4: what `promtool` and older scrapers read. Counters'
    /// HELP and TYPE name the `_total` series, and labelled families that have no
    /// series yet still say what they are.
    pub fn render(&self) -> String {
        to_text_format(&self.render_openmetrics(), &self.families)
    }
}

/// A labelled family: its full name (`tocsin_alerts_received`), type and help.
#[derive(Debug, Clone)]
pub struct Declared {
    name: String,
    kind: &'static str,
    help: &'static str,
}

fn register_family<M>(
    registry: &mut Registry,
    families: &mut Vec<Declared>,
    kind: &'static str,
    name: &'static str,
    help: &'static str,
    metric: M,
) where
    M: prometheus_client::registry::Metric,
{
    families.push(Declared {
        name: format!("tocsin_{name}"),
        kind,
        help,
    });
    registry.register(name, help, metric);
}

/// OpenMetrics → Prometheus text format 0.0.4.
fn to_text_format(openmetrics: &str, families: &[Declared]) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 1024);
    let mut seen = std::collections::BTreeSet::new();
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            // Held until TYPE says whether the name takes `_total`.
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let name = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            seen.insert(name);
            continue;
        }
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    for f in families {
        let name = if f.kind == "counter" {
            format!("{}_total", f.name)
        } else {
            f.name.clone()
        };
        if !seen.contains(&name) {
            out.push_str(&format!(
                "# HELP {name} {}.\n# TYPE {name} {}\n",
                f.help, f.kind
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_by_their_total_series_and_lists_empty_families() {
        let m = Metrics::new();
        m.store_commit_failures.inc();
        let text = m.render();
        assert!(
            text.contains("# HELP tocsin_store_commit_failures_total "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tocsin_store_commit_failures_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("\ntocsin_store_commit_failures_total 1\n"),
            "{text}"
        );
        // No series yet, but Prometheus and people can see it exists.
        assert!(
            text.contains("# TYPE tocsin_alerts_received_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE tocsin_channel_up gauge\n"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        assert!(m.render_openmetrics().ends_with("# EOF\n"));
        m.prime(["mail"]);
        let text = m.render();
        assert!(
            text.contains("tocsin_notifications_total{notifier=\"mail\",outcome=\"failed\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("tocsin_acks_from_pages_total{via=\"twilio\",outcome=\"replayed\"} 0"),
            "{text}"
        );
    }
}
