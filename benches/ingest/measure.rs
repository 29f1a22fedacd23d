//! What a bench reads off the daemon and its answers: the daemon's memory, percentiles.
//! Shared by the ingest and reads benches.

pub use super::daemon::Rss;

/// Nearest-rank percentile of sorted values; q = 1.0 is the maximum.
pub fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
