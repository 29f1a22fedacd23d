//! Wall clock to instant, with tocsin's DST rules, and the conversions at the boundary.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::time::Timestamp;

/// The instant a wall-clock time names in `tz`.
///
/// A time in a gap (spring forward) maps to the transition instant, the first instant
/// that exists after the gap: jiff's "compatible" would give 02:30 + 1 h = 03:30, which
/// would hand off half an hour after the clocks show 03:00. A time in a fold (fall back)
/// maps to its first occurrence, so a shift starts as soon as its wall time is first seen.
/// None only outside jiff's range (year ±9999).
pub(crate) fn instant(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let ts = match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok()?,
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok()?,
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the later offset, a gap time lands before the transition (it is
            // earlier than the wall time the clocks jump to), so the next transition
            // strictly after it is the one that made the gap.
            let early = after.to_timestamp(dt).ok()?;
            tz.following(early).next()?.timestamp()
        }
    };
    Some(Timestamp(ts.as_millisecond()))
}

/// The wall-clock time at instant `t` in `tz` (clamped to jiff's range).
pub(crate) fn civil(tz: &TimeZone, t: Timestamp) -> DateTime {
    tz.to_datetime(to_jiff(t))
}

pub(crate) fn to_jiff(t: Timestamp) -> jiff::Timestamp {
    let ms = t.0.clamp(
        jiff::Timestamp::MIN.as_millisecond(),
        jiff::Timestamp::MAX.as_millisecond(),
    );
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Instant `t` on `tz`'s wall clock in a strftime `format` (`%Z` is the zone's
/// abbreviation then in use, CST or CDT), for people reading a schedule.
pub(crate) fn shown(tz: &TimeZone, t: Timestamp, format: &str) -> String {
    to_jiff(t)
        .to_zoned_datetime(tz.clone())
        .strftime(format)
        .to_string()
}

/// `t` as a person reads it on the schedule's wall clock: "Mon 09:00 CST".
pub fn describe(t: Timestamp, tz: &TimeZone) -> String {
    shown(tz, t, "%a %H:%M %Z")
}
