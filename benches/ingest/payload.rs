//! Alertmanager v4 webhook bodies, generated before timing starts.

use super::*;

/// Identity of one alert as the store keeps it, to check the store after the storm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlertKey {
    pub fingerprint: u64,
    pub starts_at_ms: i64,
}

/// One request body and the alerts it carries.
pub struct Body {
    pub bytes: Bytes,
    pub alerts: Vec<AlertKey>,
    /// How many of `alerts` are resolutions; the rest are new firing instances.
    pub resolved: u32,
}

/// The distinct bodies of a scenario, in the order of their first delivery; duplicates
/// re-send one of these.
pub struct Pool {
    pub bodies: Vec<Body>,
    pub bytes: usize,
    /// Alerts whose first delivery fires a new instance.
    pub fired: u64,
    /// Alerts whose first delivery resolves a firing instance.
    pub resolved: u64,
}

impl Pool {
    /// Generates as many distinct bodies as the scenario can send, within `budget_mb`.
    pub fn generate(scenario: &Scenario, run_tag: &str, budget_mb: usize) -> Pool {
        // Body sizes do not depend on the timestamps: a probe sizes the pool, whose
        // length then spaces the bodies' times.
        let probe = Generator::new(scenario, run_tag, 1).body(0);
        let count = pool_size(scenario, probe.bytes.len(), budget_mb);
        let generator = Generator::new(scenario, run_tag, count);
        let bodies: Vec<Body> = (0..count as u64).map(|j| generator.body(j)).collect();
        let bytes = bodies.iter().map(|b| b.bytes.len()).sum();
        let resolved: u64 = bodies.iter().map(|b| u64::from(b.resolved)).sum();
        let alerts: u64 = bodies.iter().map(|b| b.alerts.len() as u64).sum();
        Pool {
            bodies,
            bytes,
            fired: alerts - resolved,
            resolved,
        }
    }
}

/// Distinct bodies needed: exact for a request count, else enough for twice the
/// target rate over the duration; never more than the memory budget allows.
fn pool_size(scenario: &Scenario, body_len: usize, budget_mb: usize) -> usize {
    let fresh = 1.0 - scenario.dup_ratio;
    let wanted = match scenario.stop {
        Stop::Requests(n) => (n as f64 * fresh).ceil(),
        Stop::After(d) => (d.as_secs_f64() * scenario.rate_hint * fresh).ceil(),
    } as usize;
    let affordable = budget_mb * 1024 * 1024 / body_len.max(1);
    wanted.clamp(1, affordable.max(1))
}

/// Kinds of alerts a fleet fires: (alertname stem, job, summary).
const KINDS: [(&str, &str, &str); 6] = [
    ("DiskFull", "node", "Disk almost full"),
    ("HighLatency", "api", "p99 latency above 500ms"),
    ("TargetDown", "prometheus", "Scrape target is down"),
    ("HighErrorRate", "api", "5xx ratio above 5%"),
    ("MemoryPressure", "node", "Memory usage above 90%"),
    (
        "ReplicationLag",
        "postgres",
        "Replica lags behind its primary",
    ),
];

type Labels = BTreeMap<&'static str, String>;

/// Field order and names as Alertmanager 0.25+ sends them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    receiver: &'static str,
    status: &'static str,
    alerts: Vec<Alert>,
    group_labels: Labels,
    common_labels: Labels,
    common_annotations: Labels,
    #[serde(rename = "externalURL")]
    external_url: &'static str,
    version: &'static str,
    group_key: String,
    truncated_alerts: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: &'static str,
    labels: Labels,
    annotations: Labels,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
}

/// Builds body `j` of a scenario, in first-delivery order.
///
/// `single` and `batch` follow their [`population::Lifecycle`]: body j belongs to group
/// `j % groups` and carries that group's next events, each a new firing instance or the
/// resolution of a firing one. Body j is sent at simulated time `base_ms + j * step_ms`:
/// a fire's startsAt is the time of the body that fires it, a resolution's endsAt the
/// time of the body that resolves it, so each instance of an alert starts later than the
/// one before. The storm sends only new alerts: body j carries instances never used
/// before in its group.
struct Generator {
    groups: u32,
    per_request: u32,
    lifecycle: Option<population::Lifecycle>,
    /// `cluster` label: scenario and run, so label sets never repeat across either.
    cluster: String,
    /// Time of body 0 (`single`, `batch`); the storm's alerts started within the hour after it.
    base_ms: i64,
    /// Simulated time between two bodies, so the pool spans the last hour (at least 1 ms).
    step_ms: i64,
}

/// Group `g`'s alert rule: (alertname, job, severity, summary).
fn rule(group: u64) -> (String, &'static str, &'static str, &'static str) {
    let (stem, job, summary) = KINDS[(group % KINDS.len() as u64) as usize];
    let severity = if group.is_multiple_of(5) {
        "critical"
    } else {
        "warning"
    };
    (format!("{stem}{group}"), job, severity, summary)
}

impl Generator {
    fn new(scenario: &Scenario, run_tag: &str, count: usize) -> Self {
        const HOUR_MS: i64 = 3_600_000;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let step_ms = (HOUR_MS / count.max(1) as i64).max(1);
        let base_ms = match scenario.lifecycle {
            Some(_) => now_ms - step_ms * count as i64,
            None => now_ms - HOUR_MS,
        };
        Generator {
            groups: scenario.groups.max(1),
            per_request: scenario.alerts_per_request,
            lifecycle: scenario.lifecycle,
            cluster: format!("bench-{}-{run_tag}", scenario.name),
            base_ms,
            step_ms,
        }
    }

    fn time_of(&self, body: u64) -> i64 {
        self.base_ms + self.step_ms * body as i64
    }

    fn body(&self, j: u64) -> Body {
        match &self.lifecycle {
            Some(l) => self.cycling_body(l, j),
            None => self.storm_body(j),
        }
    }

    /// The next events of one group of the fixed population; groupKey from
    /// `group_by: [alertname, cluster]`, so each scenario has incidents of its own.
    fn cycling_body(&self, l: &population::Lifecycle, j: u64) -> Body {
        let (group, events) = l.events_of(j);
        let (alertname, job, severity, summary) = rule(group);
        let alerts = events
            .map(|e| {
                let (n, ends_at_ms) = match l.event(e) {
                    population::Event::Fire(n) => (n, None),
                    population::Event::Resolve(n) => (n, Some(self.time_of(j))),
                };
                let starts_at_ms = self.time_of(l.fired_in(group, n));
                let rule = (alertname.as_str(), job, severity, summary);
                self.alert(rule, n % l.per_group, Some(starts_at_ms), ends_at_ms)
            })
            .collect();
        let group_labels = Labels::from([
            ("alertname", alertname.clone()),
            ("cluster", self.cluster.clone()),
        ]);
        let group_key = format!(
            "{{}}:{{alertname=\"{alertname}\", cluster=\"{}\"}}",
            self.cluster
        );
        finish(alerts, group_labels, group_key)
    }

    /// New alerts only, all firing; groupKey from `group_by: [alertname]`.
    fn storm_body(&self, j: u64) -> Body {
        let group = j % u64::from(self.groups);
        let round = j / u64::from(self.groups);
        let (alertname, job, severity, summary) = rule(group);
        let first = round * u64::from(self.per_request);
        let rule = (alertname.as_str(), job, severity, summary);
        let alerts = (first..first + u64::from(self.per_request))
            .map(|k| self.alert(rule, k, None, None))
            .collect();
        let group_key = format!("{{}}:{{alertname=\"{alertname}\"}}");
        finish(
            alerts,
            Labels::from([("alertname", alertname.clone())]),
            group_key,
        )
    }

    /// Alert `k` of a group. Without `starts_at_ms` it started at a time of the hour
    /// after `base_ms` drawn from its fingerprint; with `ends_at_ms` it is resolved.
    fn alert(
        &self,
        (alertname, job, severity, summary): (&str, &str, &str, &str),
        k: u64,
        starts_at_ms: Option<i64>,
        ends_at_ms: Option<i64>,
    ) -> Alert {
        let instance = format!("host-{k:05}.bench.local:9100");
        let labels = Labels::from([
            ("alertname", alertname.to_string()),
            ("cluster", self.cluster.clone()),
            ("instance", instance.clone()),
            ("job", job.to_string()),
            ("severity", severity.to_string()),
        ]);
        let fingerprint = fingerprint(&labels);
        let starts_at_ms =
            starts_at_ms.unwrap_or_else(|| self.base_ms + (fingerprint % 3_600_000) as i64);
        Alert {
            status: if ends_at_ms.is_some() {
                "resolved"
            } else {
                "firing"
            },
            annotations: Labels::from([
                ("summary", summary.to_string()),
                ("description", format!("{summary} on {instance}")),
            ]),
            labels,
            starts_at: rfc3339_millis(starts_at_ms),
            // Go's zero time marks a firing alert.
            ends_at: ends_at_ms.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339_millis),
            generator_url: format!(
                "http://prometheus.bench.local:9090/graph?g0.expr=ALERTS%7Balertname%3D%22{alertname}%22%7D&g0.tab=1"
            ),
            fingerprint: format!("{fingerprint:016x}"),
        }
    }
}

/// The webhook around one group's alerts: "resolved" only when all of them are.
fn finish(alerts: Vec<Alert>, group_labels: Labels, group_key: String) -> Body {
    let keys = alerts.iter().map(alert_key).collect();
    let resolved = alerts.iter().filter(|a| a.status == "resolved").count();
    let webhook = Webhook {
        receiver: "tocsin",
        status: if resolved == alerts.len() {
            "resolved"
        } else {
            "firing"
        },
        group_labels,
        common_labels: common(alerts.iter().map(|a| &a.labels)),
        common_annotations: common(alerts.iter().map(|a| &a.annotations)),
        alerts,
        external_url: "http://alertmanager.bench.local:9093",
        version: "4",
        group_key,
        truncated_alerts: 0,
    };
    let bytes = serde_json::to_vec(&webhook).expect("webhook serializes");
    Body {
        bytes: Bytes::from(bytes),
        alerts: keys,
        resolved: resolved as u32,
    }
}

fn alert_key(alert: &Alert) -> AlertKey {
    AlertKey {
        fingerprint: u64::from_str_radix(&alert.fingerprint, 16).expect("hex fingerprint"),
        starts_at_ms: chrono::DateTime::parse_from_rfc3339(&alert.starts_at)
            .expect("generated timestamp parses")
            .timestamp_millis(),
    }
}

/// Millisecond precision, so the store's integer milliseconds compare exactly.
fn rfc3339_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("timestamp in range")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Pairs present with the same value in every map, as Alertmanager's commonLabels.
fn common<'a>(mut maps: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = maps.next() else {
        return Labels::new();
    };
    let mut common = first.clone();
    for map in maps {
        common.retain(|k, v| map.get(k) == Some(v));
    }
    common
}

/// Prometheus' `LabelSet.Fingerprint`: FNV-1a 64 over sorted names and values, each
/// followed by the 0xff separator. Real fingerprints, so the daemon's parsing and
/// indexing see what they will see in production.
fn fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(value.as_bytes());
    }
    h
}
