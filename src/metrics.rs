//! Prometheus metrics of tocsin itself, on an explicit registry (one per daemon, so
//! tests running several daemons in one process do not share counters).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
pub struct ReplyLabel {
    /// `kannel`, `twilio`, `link`.
    pub via: String,
    /// `applied`, `refused`, `not_understood`, `unknown_sender`, `unavailable`.
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

pub struct Metrics {
    registry: Registry,
    pub alerts_received: Family<SourceLabel, Counter>,
    pub heartbeats_received: Family<SourceLabel, Counter>,
    pub truncated_alerts: Family<SourceLabel, Counter>,
    pub webhook_requests: Family<CodeLabel, Counter>,
    pub webhook_duration: Histogram,
    pub notifications: Family<NotifierLabel, Counter>,
    pub notification_attempts: Family<NotifierLabel, Counter>,
    pub store_commit_duration: Histogram,
    pub store_commit_failures: Counter,
    pub engine_batch_inputs: Histogram,
    pub engine_last_tick: Gauge,
    pub incidents: Family<StateLabel, Gauge>,
    pub replies: Family<ReplyLabel, Counter>,
    pub pages_held: Family<NotifierOnly, Gauge>,
    pub bundles_sent: Family<NotifierOnly, Counter>,
    pub irc_commands: Family<CommandLabel, Counter>,
    pub irc_up: Gauge,
    pub irc_connects: Counter,
    pub channel_up: Family<ChannelLabel, Gauge>,
    pub watchdog_incidents: Family<ChannelLabel, Counter>,
    pub outside_pings: Family<StateLabel, Counter>,
    pub config_reload_ok: Gauge,
    pub config_reload_time: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tocsin");
        let m = Metrics {
            alerts_received: Family::default(),
            heartbeats_received: Family::default(),
            truncated_alerts: Family::default(),
            webhook_requests: Family::default(),
            // 0.25 ms .. ~8 s
            webhook_duration: Histogram::new(exponential_buckets(0.00025, 2.0, 16)),
            notifications: Family::default(),
            notification_attempts: Family::default(),
            store_commit_duration: Histogram::new(exponential_buckets(0.00025, 2.0, 16)),
            store_commit_failures: Counter::default(),
            engine_batch_inputs: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            engine_last_tick: Gauge::default(),
            incidents: Family::default(),
            replies: Family::default(),
            pages_held: Family::default(),
            bundles_sent: Family::default(),
            irc_commands: Family::default(),
            irc_up: Gauge::default(),
            irc_connects: Counter::default(),
            channel_up: Family::default(),
            watchdog_incidents: Family::default(),
            outside_pings: Family::default(),
            config_reload_ok: Gauge::default(),
            config_reload_time: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "alerts_received",
            "Alerts received, duplicates included",
            m.alerts_received.clone(),
        );
        registry.register(
            "heartbeats_received",
            "Heartbeat (dead man's switch) alerts received; they never open incidents",
            m.heartbeats_received.clone(),
        );
        registry.register(
            "truncated_alerts",
            "Alerts the sender reported dropping (Alertmanager truncatedAlerts)",
            m.truncated_alerts.clone(),
        );
        registry.register(
            "webhook_requests",
            "Webhook requests by HTTP status code",
            m.webhook_requests.clone(),
        );
        registry.register(
            "webhook_request_duration_seconds",
            "Time from request to answer on /hooks/*, commit included",
            m.webhook_duration.clone(),
        );
        registry.register(
            "notifications",
            "Pages finished, by notifier and outcome",
            m.notifications.clone(),
        );
        registry.register(
            "notification_attempts",
            "Delivery attempts, retries included, by notifier and outcome",
            m.notification_attempts.clone(),
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
            "engine_batch_inputs",
            "Inputs applied per engine batch (group commit size)",
            m.engine_batch_inputs.clone(),
        );
        registry.register(
            "engine_last_tick_timestamp_seconds",
            "When the engine loop last ran, Unix seconds",
            m.engine_last_tick.clone(),
        );
        registry.register(
            "incidents",
            "Incidents by state, as stored",
            m.incidents.clone(),
        );
        registry.register(
            "acks_from_pages",
            "Replies and link clicks acting on incidents (SMS replies, ack links), by channel and outcome",
            m.replies.clone(),
        );
        registry.register(
            "pages_held",
            "Pages held back by flood control, waiting to go out in a bundle",
            m.pages_held.clone(),
        );
        registry.register(
            "bundles_sent",
            "Messages that carried more than one page (flood control bundles)",
            m.bundles_sent.clone(),
        );
        registry.register(
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
            "irc_registrations",
            "IRC connections that registered (a rising count means reconnects)",
            m.irc_connects.clone(),
        );
        registry.register(
            "channel_up",
            "1 while a channel (source, notifier, heartbeat, peer) is up or degraded, 0 while down",
            m.channel_up.clone(),
        );
        registry.register(
            "watchdog_incidents",
            "Watchdog incidents opened because a channel stayed down past the hold-down",
            m.watchdog_incidents.clone(),
        );
        registry.register(
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
        m.with_registry(registry)
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

    fn with_registry(mut self, r: Registry) -> Self {
        self.registry = r;
        self
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}
