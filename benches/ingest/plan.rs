//! Which body each request sends, decided before timing so the hot loop is one atomic
//! add and an index.

use super::*;

/// Duplicates re-send one of the last this-many distinct bodies: an HA pair delivers
/// the same notification within moments, often while the first is still in flight.
pub const DUP_WINDOW: u64 = 256;

/// Distinct bodies that must separate two bodies touching the same alert: the later one
/// must not overtake the earlier while both are in flight (a resolution before its fire)
/// and leave room for at least one duplicate.
pub fn min_body_gap(concurrency: usize) -> u64 {
    2 * concurrency.max(1) as u64 + 2
}

/// The duplicate window of a population. Every first delivery must change the daemon's
/// state, and a re-sent firing body that arrives after the resolution of its alerts would
/// fire them again, so duplicates pick only among bodies whose alerts next change state
/// at least `2 x concurrency` requests later. Fails when the population is too small for
/// the concurrency.
pub fn dup_window(lifecycle: &population::Lifecycle, concurrency: usize) -> Result<u64> {
    let gap = lifecycle.min_body_gap();
    let needed = min_body_gap(concurrency);
    if gap < needed {
        let per_group = (gap / lifecycle.groups).max(1);
        bail!(
            "{} group(s) leave only {gap} distinct bodies between two deliveries that touch \
             the same alert; concurrency {concurrency} needs at least {needed}, so a request \
             still in flight never meets the next state change of its alerts: use --groups {} \
             or more, or a lower --concurrency",
            lifecycle.groups,
            needed.div_ceil(per_group)
        );
    }
    Ok(DUP_WINDOW.min(gap + 1 - needed))
}

pub struct Plan {
    /// Pool index per request; a timed run that sends them all ends there.
    pub order: Vec<u32>,
    /// Whether request i is the first delivery of its body.
    pub fresh: Vec<bool>,
}

pub fn build(scenario: &Scenario, pool: &payload::Pool) -> Plan {
    let distinct = pool.bodies.len() as u64;
    let len = match scenario.stop {
        Stop::Requests(n) => n.max(1),
        Stop::After(_) => ((distinct as f64) / (1.0 - scenario.dup_ratio)).ceil() as u64,
    };
    let mut rng = SplitMix(0x7063_736e_6265_6e63);
    let (mut order, mut fresh) = (Vec::new(), Vec::new());
    let mut sent = 0u64;
    for _ in 0..len {
        let dup = sent > 0 && (sent == distinct || rng.unit() < scenario.dup_ratio);
        let index = if dup {
            sent - 1 - rng.next() % sent.min(scenario.dup_window.max(1))
        } else {
            sent += 1;
            sent - 1
        };
        order.push(index as u32);
        fresh.push(!dup);
    }
    Plan { order, fresh }
}

/// A tiny deterministic generator: the same plan every run, no `rand` dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
