//! iCalendar (RFC 5545) feeds of shifts, for phone calendars.

use super::Shift;
use crate::time::Timestamp;

/// A VCALENDAR with one VEVENT per shift. The UID is stable across fetches
/// (schedule, contact, start), so a calendar app updates an event instead of
/// duplicating it when the feed is polled again.
pub fn ics(schedule_name: &str, shifts: &[Shift], now: Timestamp, host: &str) -> String {
    let mut out = String::new();
    let mut line = |l: &str| out.push_str(&fold(l));
    line("BEGIN:VCALENDAR");
    line("PRODID:-//tocsin//schedules//EN");
    line("VERSION:2.0");
    line("CALSCALE:GREGORIAN");
    line(&format!("X-WR-CALNAME:{}", escape(schedule_name)));
    for s in shifts {
        line("BEGIN:VEVENT");
        // UID is not TEXT (no escaping): contact names are config identifiers.
        line(&format!(
            "UID:{}-{}-{}@{}",
            schedule_name,
            s.contact,
            s.start.millis(),
            host
        ));
        line(&format!("DTSTAMP:{}", utc(now)));
        line(&format!("DTSTART:{}", utc(s.start)));
        line(&format!("DTEND:{}", utc(s.end)));
        line(&format!(
            "SUMMARY:{}",
            escape(&format!("On call: {} ({})", s.contact, schedule_name))
        ));
        line("END:VEVENT");
    }
    line("END:VCALENDAR");
    out
}

/// A DATE-TIME in UTC form, `20270104T150000Z` (seconds precision: RFC 5545 has no millis).
fn utc(t: Timestamp) -> String {
    let ts = super::wall::to_jiff(t);
    ts.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// TEXT escaping (RFC 5545 3.3.11): backslash, semicolon, comma and newline.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded so that no line exceeds 75 octets (RFC 5545 3.1), never
/// inside a UTF-8 character, each physical line ended by CRLF.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            // The leading space of a continuation line counts toward its 75 octets.
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_summary_folds_at_75_octets_without_splitting_a_character() {
        let line = format!("SUMMARY:{}", "é".repeat(60));
        let folded = fold(&line);
        for physical in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(
                physical.len() <= 75,
                "{} octets: {physical}",
                physical.len()
            );
        }
        let unfolded = folded.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, line);
        assert!(folded.contains("\r\n "), "a 128-octet line must fold");
    }

    #[test]
    fn short_line_is_one_crlf_line() {
        assert_eq!(fold("VERSION:2.0"), "VERSION:2.0\r\n");
        let exactly = "X".repeat(75);
        assert_eq!(fold(&exactly), format!("{exactly}\r\n"));
    }

    #[test]
    fn text_escapes_backslash_semicolon_comma_and_newline() {
        assert_eq!(escape("a\\b;c,d\ne"), "a\\\\b\\;c\\,d\\ne");
    }

    #[test]
    fn feed_has_one_event_per_shift_with_stable_uid_and_utc_times() {
        let shifts = vec![Shift {
            contact: "bob".into(),
            start: Timestamp::at("2027-01-11T15:00:00Z"),
            end: Timestamp::at("2027-01-18T15:00:00Z"),
            via: super::super::Via::Rotation("ops".into()),
        }];
        let feed = ics(
            "primary",
            &shifts,
            Timestamp::at("2027-01-10T00:00:00Z"),
            "tocsin.example",
        );
        assert!(feed.starts_with("BEGIN:VCALENDAR\r\nPRODID:-//tocsin//schedules//EN\r\n"));
        assert!(feed.contains("UID:primary-bob-1799679600000@tocsin.example\r\n"));
        assert!(feed.contains("DTSTAMP:20270110T000000Z\r\n"));
        assert!(feed.contains("DTSTART:20270111T150000Z\r\nDTEND:20270118T150000Z\r\n"));
        assert!(feed.contains("SUMMARY:On call: bob (primary)\r\n"));
        assert!(feed.ends_with("END:VCALENDAR\r\n"));
        assert!(
            !feed.replace("\r\n", "").contains('\n'),
            "bare LF in {feed:?}"
        );
    }
}
