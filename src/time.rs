//! Wall-clock instants as plain integers, and the one place the daemon reads the clock.
//!
//! Deadlines are stored as UTC milliseconds so that they mean the same thing after a
//! restart. The engine never reads the clock: `now` is always passed in, which is what
//! lets the escalation tests say "at 10:20:00 bob is paged" with literal timestamps.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses RFC 3339 with any offset (Alertmanager keeps the sender's offset).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| Timestamp(t.timestamp_millis()))
    }

    /// A literal instant for tests and examples: `Timestamp::at("2026-11-21T10:00:00Z")`.
    ///
    /// # Panics
    /// When `s` is not RFC 3339; meant for literals only.
    pub fn at(s: &str) -> Timestamp {
        Self::parse_rfc3339(s).unwrap_or_else(|| panic!("not an RFC 3339 instant: {s}"))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_sub(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    /// How long after `earlier` this instant is; zero when it is not after it.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    pub fn to_rfc3339(self) -> String {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => format!("{}ms", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Formats a duration the way the config spells them ("2m 30s"), rounded to seconds
/// above a minute so pages stay short.
pub fn human(d: Duration) -> String {
    let d = if d >= Duration::from_secs(60) {
        Duration::from_secs(d.as_secs())
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    humantime::format_duration(d).to_string()
}

/// Where the runtime gets `now`. Production reads the system clock; tests use a clock
/// driven by tokio's paused time, or moved by hand, so that deadlines fire without
/// sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// For a clock that jumps (moved by a test): a receiver that changes whenever it
    /// jumps, so loops waiting for a deadline look again at once. Clocks that flow
    /// answer `None` and loops simply sleep until the deadline.
    fn jumps(&self) -> Option<tokio::sync::watch::Receiver<Timestamp>> {
        None
    }
}

/// Waits until `jumps` (from [`Clock::jumps`]) says the clock moved; forever when the
/// clock flows.
pub async fn jumped(jumps: &mut Option<tokio::sync::watch::Receiver<Timestamp>>) {
    match jumps {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// A clock that stands still until it is moved: escalation tests move it ten minutes
/// and see the step due then fire at once, with the page stamped at that instant.
#[derive(Debug)]
pub struct ManualClock {
    now: tokio::sync::watch::Sender<Timestamp>,
}

impl ManualClock {
    pub fn starting_at(at: Timestamp) -> Self {
        ManualClock {
            now: tokio::sync::watch::Sender::new(at),
        }
    }

    /// Moves the clock forward by `d` and wakes whatever waits for a deadline.
    pub fn advance(&self, d: Duration) {
        self.now.send_modify(|t| *t = t.plus(d));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    fn jumps(&self) -> Option<tokio::sync::watch::Receiver<Timestamp>> {
        Some(self.now.subscribe())
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(Utc::now().timestamp_millis())
    }
}

/// Wall time that advances with tokio's clock: a fixed wall-clock origin plus the tokio
/// time elapsed since. Under `tokio::time::pause()` it moves only with `advance()`.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin_wall: Timestamp,
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(origin_wall: Timestamp) -> Self {
        TokioClock {
            origin_wall,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.origin_wall.plus(self.origin.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_offset_and_go_zero_time() {
        assert_eq!(
            Timestamp::at("2026-11-21T20:42:06+01:00"),
            Timestamp::at("2026-11-21T19:42:06Z")
        );
        assert_eq!(
            Timestamp::at("2026-11-21T19:41:50.221320247Z").millis() % 1000,
            221
        );
        assert!(Timestamp::parse_rfc3339("0001-01-01T00:00:00Z").is_some());
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn human_durations_are_short() {
        assert_eq!(human(Duration::from_millis(150_400)), "2m 30s");
        assert_eq!(human(Duration::from_millis(1500)), "1s 500ms");
    }
}

/// Serde helpers that write instants as RFC 3339 strings in API answers.
pub mod rfc3339 {
    use serde::Serializer;

    use super::Timestamp;

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub mod option {
        use serde::Serializer;

        use super::Timestamp;

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&t.to_rfc3339()),
                None => s.serialize_none(),
            }
        }
    }
}
