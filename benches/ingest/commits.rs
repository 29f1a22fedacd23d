//! The daemon's own account of a scenario, from its /metrics: alerts received, store
//! transactions, their mean duration and the inputs each engine turn carried. Commits
//! are serial (one per engine turn), so when a target is missed this says whether the
//! time went into the commit or elsewhere.

use super::*;

/// Cumulative counters at one moment; a scenario's figures are the difference of two.
#[derive(Clone, Copy, Default)]
pub struct Counters {
    alerts: f64,
    commits: f64,
    commit_seconds: f64,
    turns: f64,
    inputs: f64,
}

impl Counters {
    /// None when the daemon has no /metrics (yet): the figures are optional.
    pub async fn read(client: &reqwest::Client, base_url: &str) -> Option<Counters> {
        let resp = client
            .get(format!("{base_url}/metrics"))
            .send()
            .await
            .ok()?;
        let text = resp.text().await.ok()?;
        let mut c = Counters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.split_whitespace();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let name = name.split('{').next().unwrap_or(name);
            match name {
                "tocsin_alerts_received_total" => c.alerts += value,
                "tocsin_store_commit_duration_seconds_count" => c.commits += value,
                "tocsin_store_commit_duration_seconds_sum" => c.commit_seconds += value,
                "tocsin_engine_batch_inputs_count" => c.turns += value,
                "tocsin_engine_batch_inputs_sum" => c.inputs += value,
                _ => {}
            }
        }
        Some(c)
    }

    /// What happened between `before` and `self`.
    pub fn print_since(&self, before: &Counters, wall: Duration) {
        let commits = self.commits - before.commits;
        let busy = self.commit_seconds - before.commit_seconds;
        let turns = (self.turns - before.turns).max(1.0);
        println!(
            "   daemon      {:.0} alerts received; {commits:.0} commits, mean {:.1} ms, \
             {:.0}% of the wall clock committing; {:.1} inputs per engine turn",
            self.alerts - before.alerts,
            busy * 1000.0 / commits.max(1.0),
            busy * 100.0 / wall.as_secs_f64().max(1e-9),
            (self.inputs - before.inputs) / turns
        );
    }
}
