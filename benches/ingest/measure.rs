//! What a bench reads off the daemon and its answers: the daemon's memory, percentiles.
//! Shared by the ingest and reads benches.

/// The daemon's memory from /proc: VmHWM is the peak since start, VmRSS the present.
#[derive(Clone, Copy)]
pub struct Rss {
    pub peak_kb: u64,
    pub now_kb: u64,
}

impl Rss {
    pub fn read(pid: u32) -> Option<Rss> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        };
        Some(Rss {
            peak_kb: field("VmHWM:")?,
            now_kb: field("VmRSS:")?,
        })
    }
}

/// Nearest-rank percentile of sorted values; q = 1.0 is the maximum.
pub fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
