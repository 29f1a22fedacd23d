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

pub struct Row {
    name: &'static str,
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
    pub fn new(scenario: &Scenario, outcome: &load::Outcome, rss: Option<Rss>) -> Row {
        let wall_s = outcome.wall.as_secs_f64().max(1e-9);
        let ms = |q: f64| percentile(&outcome.latencies_us, q) as f64 / 1000.0;
        Row {
            name: scenario.name,
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
        let mut checks = Vec::new();
        match self.kind {
            ScenarioKind::Single => checks.push(Check {
                what: "requests/s",
                value: format!("{:.0}", self.req_per_s),
                target: ">= 10000".into(),
                pass: self.req_per_s >= 10_000.0,
            }),
            ScenarioKind::Batch | ScenarioKind::Storm => checks.push(Check {
                what: "alerts/s",
                value: format!("{:.0}", self.alerts_per_s),
                target: ">= 50000".into(),
                pass: self.alerts_per_s >= 50_000.0,
            }),
        }
        checks.push(Check {
            what: "p99 ms",
            value: format!("{:.2}", self.p99_ms),
            target: "<= 20".into(),
            pass: self.p99_ms <= 20.0,
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

pub fn print_summary(rows: &[Row]) {
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
    println!(
        "targets: single >= 10000 req/s; batch and storm >= 50000 alerts/s; p99 <= 20 ms; \
         peak RSS <= 30 MB (<= 64 MB after the storm)"
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
