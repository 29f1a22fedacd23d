//! Value types that `alerts.toml` spells for humans: durations, sizes, secrets.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written like `"30s"`, `"5m"`, `"1h 30m"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(s: u64) -> Self {
        HumanDuration(Duration::from_secs(s))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s.trim())
            .map(HumanDuration)
            .map_err(|e| {
                format!("invalid duration {s:?} ({e}): write it like \"30s\", \"5m\" or \"1h 30m\"")
            })
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A byte count written like `"1MiB"`, `"512KiB"`, `"10MB"` or a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "k" => 1000,
            "kib" => 1024,
            "mb" | "m" => 1000 * 1000,
            "mib" => 1024 * 1024,
            "gb" | "g" => 1000 * 1000 * 1000,
            "gib" => 1024 * 1024 * 1024,
            _ => {
                return Err(format!(
                    "invalid size {s:?}: write it like \"512KiB\", \"1MiB\" or \"10MB\""
                ));
            }
        };
        let n: f64 = num.parse().map_err(|_| {
            format!("invalid size {s:?}: write it like \"512KiB\", \"1MiB\" or \"10MB\"")
        })?;
        Ok(ByteSize((n * mult as f64) as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// A secret read from a file or the environment. Never printed: `Debug` and `Display`
/// show `<redacted>`, so a config dump in a log cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_like_people_write_them() {
        assert_eq!(ByteSize::parse("1MiB").unwrap().0, 1_048_576);
        assert_eq!(ByteSize::parse("10MB").unwrap().0, 10_000_000);
        assert_eq!(ByteSize::parse("512 KiB").unwrap().0, 524_288);
        assert!(ByteSize::parse("1 megabyte").is_err());
        assert_eq!(HumanDuration::parse("1h 30m").unwrap().0.as_secs(), 5400);
        let e = HumanDuration::parse("5mn").unwrap_err();
        assert!(e.contains("\"5m\""), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
    }
}

/// A rate written like `"5/15m"`: at most `count` sends in any `window`, spread evenly
/// (a "smooth" limit, as GoAlert does: a burst does not use up the window at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub window: Duration,
}

impl RateLimit {
    pub const fn new(count: u32, window_secs: u64) -> Self {
        RateLimit {
            count,
            window: Duration::from_secs(window_secs),
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid rate {s:?}: write it like \"5/15m\" (5 per 15 minutes)");
        let (n, w) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let window = HumanDuration::parse(w).map_err(|_| bad())?.0;
        if count == 0 || window.is_zero() {
            return Err(format!(
                "rate {s:?} must allow at least 1 per a window above 0s"
            ));
        }
        Ok(RateLimit { count, window })
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RateLimit::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `+` and 7 to 15 digits (E.164), spaces and dashes allowed for readability.
pub fn is_phone_number(s: &str) -> bool {
    normalize_phone(s).is_some()
}

/// `+15550100` from `+1 555-0100`; `None` when it is not an international number.
pub fn normalize_phone(s: &str) -> Option<String> {
    let t = s.trim();
    let rest = t.strip_prefix('+')?;
    let digits: String = rest.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let ok = (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
    ok.then(|| format!("+{digits}"))
}
