//! The text of one SMS: short, GSM-7 where possible, always with the ack code.
//!
//! An SMS segment holds 160 GSM-7 septets, or 70 UCS-2 units; a concatenated message
//! spends some of each segment on the header (153 / 67 left). A single character outside
//! GSM-7 switches the whole message to UCS-2 and cuts its length by more than half, so
//! typographic characters that alerts are full of (dashes, curly quotes, accents GSM-7
//! lacks, no-break spaces) are transliterated first; UCS-2 is chosen deliberately, only
//! when what is left cannot be written in GSM-7 at all (CJK, emoji).
//!
//! The reply instruction (`Reply 42A to ack`) is never cut: the title is trimmed instead,
//! because a page that cannot be acknowledged from the phone escalates for nothing.
//! Nothing from the alert can start a new line or carry a control character.

use super::Message;
use super::message::{clean, kind_word, sms_ack_code};
use crate::engine::{IncidentState, PageKind};
use crate::store::IncidentView;
use crate::time::human;

/// How the gateway must encode the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 160 characters per segment (153 when concatenated).
    Gsm7,
    /// 70 characters per segment (67 when concatenated): chosen only when the text has
    /// characters GSM-7 cannot carry and no transliteration exists.
    Ucs2,
}

/// A rendered SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsText {
    /// One line, UTF-8; the gateway converts it to `encoding`.
    pub text: String,
    /// What the gateway must be told (Kannel `coding=2`, for instance, for UCS-2).
    pub encoding: Encoding,
}

/// GSM 03.38 basic character set, one septet each (LF and CR left out on purpose: an SMS
/// page is one line).
const GSM_BASIC: &str = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// GSM 03.38 extension table: each costs two septets (escape + character).
const GSM_EXTENSION: &str = "^{}\\[~]|€";

/// Longest title one incident of a bundle gets, so that several fit in one SMS.
const BUNDLE_TITLE_MAX: usize = 40;

/// Septets `c` takes in GSM-7, or `None` when GSM-7 cannot carry it.
pub fn gsm7_septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// True when every character of `s` can be sent in GSM-7.
pub fn is_gsm7(s: &str) -> bool {
    s.chars().all(|c| gsm7_septets(c).is_some())
}

impl Encoding {
    /// What `c` costs in this encoding: septets, or UTF-16 units (emoji take two).
    fn cost(self, c: char) -> usize {
        match self {
            // Characters GSM-7 cannot carry only occur in a trial rendering that is then
            // redone in UCS-2; count them as one.
            Encoding::Gsm7 => gsm7_septets(c).unwrap_or(1),
            Encoding::Ucs2 => c.len_utf16(),
        }
    }

    fn cost_str(self, s: &str) -> usize {
        s.chars().map(|c| self.cost(c)).sum()
    }

    /// Room in `segments` segments: a text that fits one segment is not concatenated.
    pub fn capacity(self, segments: u8) -> usize {
        let (single, part) = match self {
            Encoding::Gsm7 => (160, 153),
            Encoding::Ucs2 => (70, 67),
        };
        if segments <= 1 {
            single
        } else {
            part * usize::from(segments)
        }
    }
}

/// Renders `msg` into at most `segments` segments, ending with "Reply 42A to ack" when
/// the page asks for an ack.
pub fn render(msg: &Message, segments: u8) -> SmsText {
    let gsm = compose(msg, Encoding::Gsm7, segments);
    if is_gsm7(&gsm) {
        return SmsText {
            text: gsm,
            encoding: Encoding::Gsm7,
        };
    }
    SmsText {
        text: compose(msg, Encoding::Ucs2, segments),
        encoding: Encoding::Ucs2,
    }
}

/// The whole text in `enc`, fitted to the capacity of `segments` segments.
fn compose(msg: &Message, enc: Encoding, segments: u8) -> String {
    let cap = enc.capacity(segments);
    if msg.is_bundle() {
        return compose_bundle(msg, enc, cap);
    }
    let inc = &msg.incident;
    let mut head = format!("[#{}] {}", inc.id, kind_word(msg.page.kind));
    if msg.page.kind == PageKind::Acknowledged
        && let Some(by) = &inc.acked_by
    {
        head.push_str(" by ");
        head.push_str(by);
    }
    head.push(' ');
    head.push_str(&inc.title);
    let head = prepare(&head, enc);
    let mut tail = String::new();
    if let Some(ms) = msg.page.late_by_ms {
        tail.push_str(&format!(
            " LATE by {}",
            human(std::time::Duration::from_millis(ms))
        ));
    }
    if msg.wants_ack() {
        tail.push_str(&format!(" Reply {} to ack", sms_ack_code(inc.id)));
    }
    fit(enc, &head, &tail, cap)
}

/// `3 incidents: #41 DiskFull db1, #42 HighLoad +1 more Reply 41A, 42A... to ack`.
fn compose_bundle(msg: &Message, enc: Encoding, cap: usize) -> String {
    let items: Vec<(&PageKind, &IncidentView)> = msg.items().map(|(p, i)| (&p.kind, i)).collect();
    let total = items.len();
    let ackable: Vec<u64> = items
        .iter()
        .filter(|(k, i)| asks_for_ack(**k, i))
        .map(|(_, i)| i.id)
        .collect();
    let ack = match ackable.as_slice() {
        [] => String::new(),
        [one] => format!(" Reply {} to ack", sms_ack_code(*one)),
        [a, b, ..] => format!(
            " Reply {}, {}... to ack one",
            sms_ack_code(*a),
            sms_ack_code(*b)
        ),
    };
    let more = |k: usize| {
        if k > 0 {
            format!(" +{k} more")
        } else {
            String::new()
        }
    };
    let entry = |(kind, inc): &(&PageKind, &IncidentView)| {
        let title = truncate(enc, &prepare(&inc.title, enc), BUNDLE_TITLE_MAX);
        match kind {
            PageKind::Acknowledged | PageKind::Resolved => {
                format!("#{} {} {title}", inc.id, kind_word(**kind))
            }
            _ => format!("#{} {title}", inc.id),
        }
    };
    let mut text = format!("{total} incidents:");
    let mut listed = 0;
    for (n, item) in items.iter().enumerate() {
        let sep = if n == 0 { " " } else { ", " };
        let candidate = format!("{text}{sep}{}", entry(item));
        let tail = format!("{}{ack}", more(total - n - 1));
        if enc.cost_str(&candidate) + enc.cost_str(&tail) > cap {
            break;
        }
        text = candidate;
        listed = n + 1;
    }
    if listed == 0 {
        // Not even the first fits whole: show what fits of it.
        let head = format!("{text} {}", entry(&items[0]));
        return fit(enc, &head, &format!("{}{ack}", more(total - 1)), cap);
    }
    let tail = format!("{}{ack}", more(total - listed));
    fit(enc, &text, &tail, cap)
}

/// Whether this item of a page still needs someone to ack it.
fn asks_for_ack(kind: PageKind, inc: &IncidentView) -> bool {
    matches!(
        kind,
        PageKind::Triggered | PageKind::Escalated | PageKind::Reminder | PageKind::Test
    ) && inc.state == IncidentState::Triggered
}

/// `head` + `tail` in at most `cap`; `head` is cut (ending in "...") to keep `tail` whole.
fn fit(enc: Encoding, head: &str, tail: &str, cap: usize) -> String {
    let budget = cap.saturating_sub(enc.cost_str(tail));
    let mut out = truncate(enc, head, budget);
    out.push_str(tail);
    out
}

/// `s` if it costs at most `budget`; otherwise as much as fits followed by "...", cut at
/// a word boundary when one is near.
fn truncate(enc: Encoding, s: &str, budget: usize) -> String {
    if enc.cost_str(s) <= budget {
        return s.to_string();
    }
    const ELLIPSIS: &str = "...";
    let room = budget.saturating_sub(ELLIPSIS.len());
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        let n = enc.cost(c);
        if used + n > room {
            break;
        }
        used += n;
        end = i + c.len_utf8();
    }
    let mut cut = &s[..end];
    // A word cut in half reads worse than a word dropped, unless that loses a lot.
    if let Some(space) = cut.rfind(' ')
        && end < s.len()
        && !s[end..].starts_with(' ')
        && cut[space..].chars().count() <= 12
        && space > 0
    {
        cut = &cut[..space];
    }
    let mut out = cut.trim_end().to_string();
    if budget >= ELLIPSIS.len() {
        out.push_str(ELLIPSIS);
    }
    out
}

/// One line without control or invisible characters, spaces collapsed; for GSM-7 also
/// transliterated.
fn prepare(s: &str, enc: Encoding) -> String {
    let mut out = String::with_capacity(s.len());
    let mut push = |piece: &str| {
        for c in piece.chars() {
            if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
                continue;
            }
            out.push(c);
        }
    };
    for c in clean(s).chars() {
        if c.is_whitespace() || c.is_control() {
            push(" ");
        } else if invisible(c) {
            continue;
        } else if enc == Encoding::Gsm7 && gsm7_septets(c).is_none() {
            match transliterate(c) {
                Some(t) => push(t),
                None => push(c.encode_utf8(&mut [0; 4])),
            }
        } else {
            push(c.encode_utf8(&mut [0; 4]));
        }
    }
    out.trim_end().to_string()
}

/// Characters that print as nothing: zero-width and direction marks (which could also
/// make a text display differently from what it says), soft hyphens, combining accents
/// (a decomposed "é" becomes "e"), emoji variation selectors.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{034F}'
        | '\u{0300}'..='\u{036F}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
    )
}

/// A GSM-7 spelling of a character GSM-7 lacks, for the ones alerts commonly contain.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        // Punctuation and typography.
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{2043}' => "-",
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{00B4}' | '`' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}'
        | '\u{00BB}' => "\"",
        '\u{2039}' => "<",
        '\u{203A}' => ">",
        '\u{2026}' => "...",
        '\u{2022}' | '\u{00B7}' | '\u{2219}' => "*",
        '\u{00D7}' => "x",
        '\u{00F7}' | '\u{2044}' | '\u{2215}' => "/",
        '\u{00B0}' => " deg",
        '\u{2264}' => "<=",
        '\u{2265}' => ">=",
        '\u{2260}' => "!=",
        '\u{2248}' => "~",
        '\u{2192}' | '\u{21D2}' => "->",
        '\u{2190}' => "<-",
        '\u{00A9}' => "(c)",
        '\u{00AE}' => "(R)",
        '\u{2122}' => "TM",
        '\u{00B5}' | '\u{03BC}' => "u",
        '\u{00B2}' => "2",
        '\u{00B3}' => "3",
        '\u{00B9}' => "1",
        '\u{00BD}' => "1/2",
        '\u{00BC}' => "1/4",
        '\u{00BE}' => "3/4",
        '\u{00A2}' => "c",
        '\u{20BD}' => "RUB",
        '\u{20B9}' => "INR",
        // Latin letters with accents GSM-7 lacks (it has é è ù ì ò à Ç Ä Ö Ñ Ü ä ö ñ ü
        // Å å Æ æ Ø ø ß É, which stay as they are).
        'á' | 'â' | 'ã' | 'ā' | 'ă' | 'ą' => "a",
        'Á' | 'À' | 'Â' | 'Ã' | 'Ā' | 'Ă' | 'Ą' => "A",
        'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => "c",
        'Ć' | 'Č' | 'Ĉ' | 'Ċ' => "C",
        'ď' | 'đ' | 'ð' => "d",
        'Ď' | 'Đ' | 'Ð' => "D",
        'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'È' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'ğ' | 'ĝ' | 'ġ' | 'ģ' => "g",
        'Ğ' | 'Ĝ' | 'Ġ' | 'Ģ' => "G",
        'í' | 'î' | 'ï' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Í' | 'Ì' | 'Î' | 'Ï' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ķ' => "k",
        'Ķ' => "K",
        'ĺ' | 'ļ' | 'ľ' | 'ł' => "l",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ł' => "L",
        'ń' | 'ņ' | 'ň' => "n",
        'Ń' | 'Ņ' | 'Ň' => "N",
        'ó' | 'ô' | 'õ' | 'ō' | 'ŏ' | 'ő' => "o",
        'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'œ' => "oe",
        'Œ' => "OE",
        'ŕ' | 'ř' => "r",
        'Ŕ' | 'Ř' => "R",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'Ś' | 'Š' | 'Ş' | 'Ș' => "S",
        'ť' | 'ţ' | 'ț' => "t",
        'Ť' | 'Ţ' | 'Ț' => "T",
        'þ' => "th",
        'Þ' => "TH",
        'ú' | 'û' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ú' | 'Ù' | 'Û' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'ź' | 'ż' | 'ž' => "z",
        'Ź' | 'Ż' | 'Ž' => "Z",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::fixtures::{self, bundle};

    fn message(id: u64, title: &str) -> Message {
        fixtures::message(id, PageKind::Triggered, title)
    }

    fn septets(s: &str) -> usize {
        s.chars()
            .map(|c| gsm7_septets(c).unwrap_or_else(|| panic!("{c:?} is not GSM-7 in {s:?}")))
            .sum()
    }

    #[test]
    fn a_long_title_is_cut_but_the_ack_code_survives() {
        let title = format!("DiskFull: {}", "disk almost full on db1 ".repeat(13));
        assert!(title.len() >= 300);
        let sms = render(&message(42, &title), 1);
        assert_eq!(sms.encoding, Encoding::Gsm7);
        assert!(septets(&sms.text) <= 160, "{} septets", septets(&sms.text));
        assert!(
            sms.text.starts_with("[#42] TRIGGERED DiskFull: disk"),
            "{}",
            sms.text
        );
        assert!(sms.text.ends_with("... Reply 42A to ack"), "{}", sms.text);
    }

    #[test]
    fn more_segments_carry_more_of_the_title() {
        let title = "x".repeat(600);
        for (segments, cap) in [(1, 160), (2, 306), (3, 459)] {
            let sms = render(&message(7, &title), segments);
            let n = septets(&sms.text);
            assert!(n <= cap && n > cap - 5, "{segments} segments: {n} septets");
            assert!(sms.text.ends_with(" Reply 7A to ack"));
        }
    }

    #[test]
    fn a_short_page_is_not_padded_or_cut() {
        let sms = render(&message(42, "DiskFull: Disk almost full on db1"), 1);
        assert_eq!(
            sms.text,
            "[#42] TRIGGERED DiskFull: Disk almost full on db1 Reply 42A to ack"
        );
    }

    #[test]
    fn typographic_characters_are_transliterated_and_stay_gsm7() {
        let sms = render(&message(3, "Ünïcödé – “quotes” ‘x’ … a\u{a0}b ç ł"), 1);
        assert_eq!(sms.encoding, Encoding::Gsm7);
        // Ü, ö and é are GSM-7 already; ï, the dash, the quotes and the rest are not.
        assert_eq!(
            sms.text,
            "[#3] TRIGGERED Ünicödé - \"quotes\" 'x' ... a b c l Reply 3A to ack"
        );
        assert!(is_gsm7(&sms.text));
    }

    #[test]
    fn a_decomposed_accent_does_not_force_ucs2() {
        let sms = render(&message(3, "cafe\u{301} down"), 1);
        assert_eq!(sms.encoding, Encoding::Gsm7);
        assert!(sms.text.contains("cafe down"), "{}", sms.text);
    }

    #[test]
    fn cjk_forces_ucs2_within_70_characters() {
        let sms = render(&message(42, "磁盘已满"), 1);
        assert_eq!(sms.encoding, Encoding::Ucs2);
        assert!(sms.text.contains("磁盘已满"), "{}", sms.text);
        assert!(sms.text.ends_with(" Reply 42A to ack"));
        assert!(sms.text.encode_utf16().count() <= 70);

        let long = render(&message(42, &"磁盘已满".repeat(40)), 1);
        assert_eq!(long.encoding, Encoding::Ucs2);
        assert!(long.text.encode_utf16().count() <= 70, "{}", long.text);
        assert!(long.text.ends_with("... Reply 42A to ack"), "{}", long.text);

        let two = render(&message(42, &"磁盘已满".repeat(40)), 2);
        let units = two.text.encode_utf16().count();
        assert!(units <= 134 && units > 120, "{units}");
    }

    #[test]
    fn emoji_count_as_two_units_and_are_never_split() {
        let sms = render(&message(5, &"🔥".repeat(60)), 1);
        assert_eq!(sms.encoding, Encoding::Ucs2);
        assert!(sms.text.encode_utf16().count() <= 70, "{}", sms.text);
        assert!(sms.text.ends_with(" Reply 5A to ack"));
    }

    #[test]
    fn ucs2_only_when_the_character_is_in_what_is_sent() {
        // The emoji is in the part of the title that is cut anyway.
        let title = format!("{} 🔥", "y".repeat(300));
        let sms = render(&message(1, &title), 1);
        assert_eq!(sms.encoding, Encoding::Gsm7);
        assert!(septets(&sms.text) <= 160);
    }

    #[test]
    fn line_breaks_and_controls_never_reach_the_gateway() {
        let sms = render(
            &message(
                9,
                "disk\r\nfull\u{7}\tnow\u{2028}x\u{85}y\u{200b}z\u{202e}w",
            ),
            1,
        );
        for c in sms.text.chars() {
            assert!(!c.is_control() && !invisible(c), "{c:?} in {:?}", sms.text);
        }
        assert!(!sms.text.contains("  "), "{:?}", sms.text);
        assert_eq!(
            sms.text,
            "[#9] TRIGGERED disk full now x yzw Reply 9A to ack"
        );
    }

    #[test]
    fn extension_characters_count_double() {
        assert_eq!(gsm7_septets('€'), Some(2));
        assert_eq!(gsm7_septets('['), Some(2));
        assert_eq!(gsm7_septets('a'), Some(1));
        assert_eq!(gsm7_septets('`'), None);
        // 200 braces are 400 septets: only about 70 of them fit in 160.
        let sms = render(&message(1, &"{".repeat(200)), 1);
        assert_eq!(sms.encoding, Encoding::Gsm7);
        let n = septets(&sms.text);
        assert!((157..=160).contains(&n), "{n} septets: {}", sms.text);
        let braces = sms.text.matches('{').count();
        assert!(
            braces < 70,
            "{braces} braces fit, so they were counted once"
        );
    }

    #[test]
    fn acknowledged_and_resolved_pages_ask_for_nothing() {
        let mut m = message(4, "DiskFull");
        m.page.kind = PageKind::Resolved;
        m.incident.state = IncidentState::Resolved;
        assert_eq!(render(&m, 1).text, "[#4] RESOLVED DiskFull");

        let mut m = message(4, "DiskFull");
        m.page.kind = PageKind::Acknowledged;
        m.incident.state = IncidentState::Acknowledged;
        m.incident.acked_by = Some("alice".into());
        assert_eq!(render(&m, 1).text, "[#4] ACKNOWLEDGED by alice DiskFull");
    }

    #[test]
    fn a_late_page_says_so() {
        let mut m = message(4, "DiskFull");
        m.page.late_by_ms = Some(12 * 60_000);
        assert_eq!(
            render(&m, 1).text,
            "[#4] TRIGGERED DiskFull LATE by 12m Reply 4A to ack"
        );
    }

    #[test]
    fn a_bundle_lists_what_fits_and_counts_the_rest() {
        let titles: Vec<(u64, String)> = (41..=60)
            .map(|id| (id, format!("HighLoad web{id}")))
            .collect();
        let refs: Vec<(u64, &str)> = titles.iter().map(|(i, t)| (*i, t.as_str())).collect();
        let sms = render(&bundle(&refs), 1);
        assert_eq!(sms.encoding, Encoding::Gsm7);
        assert!(septets(&sms.text) <= 160, "{}", sms.text);
        assert!(
            sms.text
                .starts_with("20 incidents: #41 HighLoad web41, #42 HighLoad web42"),
            "{}",
            sms.text
        );
        assert!(
            sms.text.ends_with(" Reply 41A, 42A... to ack one"),
            "{}",
            sms.text
        );
        let listed = sms.text.matches(" HighLoad").count();
        assert!(
            sms.text.contains(&format!(" +{} more Reply", 20 - listed)),
            "{}",
            sms.text
        );
    }

    #[test]
    fn a_small_bundle_is_listed_whole() {
        let sms = render(&bundle(&[(1, "DiskFull db1"), (2, "HighLoad web1")]), 1);
        assert_eq!(
            sms.text,
            "2 incidents: #1 DiskFull db1, #2 HighLoad web1 Reply 1A, 2A... to ack one"
        );
    }

    #[test]
    fn a_bundle_of_huge_titles_still_fits() {
        let long = "z".repeat(500);
        let sms = render(&bundle(&[(1, &long), (2, &long), (3, &long)]), 1);
        assert!(septets(&sms.text) <= 160, "{}", sms.text);
        assert!(
            sms.text.ends_with("Reply 1A, 2A... to ack one"),
            "{}",
            sms.text
        );
    }
}
