//! Figures, targets and the final table.

use super::*;
use measure::{Rss, percentile};

/// One figure beside its target.
struct Check {
    what: &'static str,
    value: String,
    target: String,
    pass: bool,
}

impl Check {
    fn marker(&self) -> &'static str {
        if self.pass { "PASS" } else { "MISS" }
    }
}

/// What the figures are held to: SQLite's promise, or issue 15's for a shared
/// PostgreSQL (a durable commit over the network stack costs more than an fsync of a
/// local WAL).
#[derive(Clone, Copy)]
pub struct Targets {
    /// `single`; none for PostgreSQL, which promises batches only.
    req_per_s: Option<f64>,
    /// `batch` and `storm`.
    alerts_per_s: f64,
    p99_ms: f64,
}

impl Targets {
    pub fn of(store: StoreKind) -> Targets {
        match store {
            StoreKind::Sqlite => Targets {
                req_per_s: Some(10_000.0),
                alerts_per_s: 50_000.0,
                p99_ms: 20.0,
            },
            StoreKind::Postgres => Targets {
                req_per_s: None,
                alerts_per_s: 20_000.0,
                p99_ms: 50.0,
            },
        }
    }
}

pub struct Row {
    name: &'static str,
    targets: Targets,
    kind: ScenarioKind,
    requests: u64,
    distinct: u64,
    exhausted: bool,
    wall_s: f64,
    req_per_s: f64,
    alerts_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    rss: Option<Rss>,
}

impl Row {
    pub fn new(
        scenario: &Scenario,
        targets: Targets,
        outcome: &load::Outcome,
        rss: Option<Rss>,
    ) -> Row {
        let wall_s = outcome.wall.as_secs_f64().max(1e-9);
        let ms = |q: f64| percentile(&outcome.latencies_us, q) as f64 / 1000.0;
        Row {
            name: scenario.name,
            targets,
            kind: scenario.kind,
            requests: outcome.requests,
            distinct: outcome.fresh_requests,
            exhausted: outcome.exhausted,
            wall_s,
            req_per_s: outcome.requests as f64 / wall_s,
            alerts_per_s: outcome.ok_alerts as f64 / wall_s,
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            max_ms: ms(1.0),
            errors: outcome.errors(),
            rss,
        }
    }

    fn checks(&self) -> Vec<Check> {
        let t = self.targets;
        let mut checks = Vec::new();
        match (self.kind, t.req_per_s) {
            (ScenarioKind::Single, Some(min)) => checks.push(Check {
                what: "requests/s",
                value: format!("{:.0}", self.req_per_s),
                target: format!(">= {min:.0}"),
                pass: self.req_per_s >= min,
            }),
            (ScenarioKind::Single, None) => {}
            (ScenarioKind::Batch | ScenarioKind::Storm, _) => checks.push(Check {
                what: "alerts/s",
                value: format!("{:.0}", self.alerts_per_s),
                target: format!(">= {:.0}", t.alerts_per_s),
                pass: self.alerts_per_s >= t.alerts_per_s,
            }),
        }
        checks.push(Check {
            what: "p99 ms",
            value: format!("{:.2}", self.p99_ms),
            target: format!("<= {:.0}", t.p99_ms),
            pass: self.p99_ms <= t.p99_ms,
        });
        checks.push(Check {
            what: "errors",
            value: self.errors.to_string(),
            target: "= 0".into(),
            pass: self.errors == 0,
        });
        if let Some(rss) = self.rss {
            let limit_mb = if self.kind == ScenarioKind::Storm {
                64.0
            } else {
                30.0
            };
            let peak_mb = mb(rss.peak_kb);
            checks.push(Check {
                what: "peak RSS MB",
                value: format!("{peak_mb:.1}"),
                target: format!("<= {limit_mb:.0}"),
                pass: peak_mb <= limit_mb,
            });
        }
        checks
    }

    pub fn print_block(&self, outcome: &load::Outcome) {
        println!(
            "   requests    {} in {:.2} s ({} first deliveries, {} re-sends){}",
            self.requests,
            self.wall_s,
            self.distinct,
            self.requests - self.distinct,
            if self.exhausted {
                "; body pool used up before the deadline, so the run ended early (raise --pool-mb)"
            } else {
                ""
            }
        );
        println!(
            "   changes     {} alerts fired, {} resolved ({}), in first deliveries answered 200",
            outcome.fresh_fired,
            outcome.fresh_resolved,
            mix(outcome.fresh_fired, outcome.fresh_resolved)
        );
        println!("   requests/s  {:.0}", self.req_per_s);
        println!(
            "   alerts/s    {:.0} (alerts in requests answered 200)",
            self.alerts_per_s
        );
        println!(
            "   latency ms  p50 {:.2}  p99 {:.2}  max {:.2}",
            self.p50_ms, self.p99_ms, self.max_ms
        );
        println!(
            "   errors      {} (non-200 {}, transport {})",
            self.errors, outcome.non_200, outcome.transport_errors
        );
        if let Some(e) = &outcome.first_error {
            println!("   first error {e}");
        }
        match self.rss {
            Some(r) => println!(
                "   server RSS  peak {:.1} MB, now {:.1} MB",
                mb(r.peak_kb),
                mb(r.now_kb)
            ),
            None => println!("   server RSS  unknown (give --pid with --url)"),
        }
        for c in self.checks() {
            println!(
                "   {:<4} {:<12} {:>10}  target {}",
                c.marker(),
                c.what,
                c.value,
                c.target
            );
        }
    }
}

pub fn print_summary(rows: &[Row], targets: Targets) {
    println!("\n== summary ==");
    println!(
        "{:<8} {:>9} {:>9} {:>10} {:>7} {:>7} {:>8} {:>7} {:>8} {:>7}  verdict",
        "scenario",
        "requests",
        "req/s",
        "alerts/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "peak MB",
        "rss MB"
    );
    for r in rows {
        let (peak, now) = match r.rss {
            Some(rss) => (
                format!("{:.1}", mb(rss.peak_kb)),
                format!("{:.1}", mb(rss.now_kb)),
            ),
            None => ("-".into(), "-".into()),
        };
        let missed: Vec<&str> = r
            .checks()
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.what)
            .collect();
        let verdict = if missed.is_empty() {
            "PASS".to_string()
        } else {
            format!("MISS: {}", missed.join(", "))
        };
        println!(
            "{:<8} {:>9} {:>9.0} {:>10.0} {:>7.2} {:>7.2} {:>8.2} {:>7} {:>8} {:>7}  {verdict}",
            r.name,
            r.requests,
            r.req_per_s,
            r.alerts_per_s,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.errors,
            peak,
            now
        );
    }
    let single = match targets.req_per_s {
        Some(min) => format!("single >= {min:.0} req/s; "),
        None => String::new(),
    };
    println!(
        "targets: {single}batch and storm >= {:.0} alerts/s; p99 <= {:.0} ms; \
         peak RSS <= 30 MB (<= 64 MB after the storm)",
        targets.alerts_per_s, targets.p99_ms
    );
}

/// "60% fire / 40% resolve".
pub fn mix(fired: u64, resolved: u64) -> String {
    let total = (fired + resolved).max(1) as f64;
    format!(
        "{:.0}% fire / {:.0}% resolve",
        fired as f64 * 100.0 / total,
        resolved as f64 * 100.0 / total
    )
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
