//! TwiML, the XML Twilio reads to know what to do with a message or a call: one reply
//! SMS, or what a call says and which keys it listens for.
//!
//! Everything that comes from an alert is text inside an element, escaped, stripped of
//! control characters: an annotation with `<Say>` or `&` is spoken, never obeyed.

use super::message::clean;

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// `s` as XML character data or attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An answer to an inbound SMS: one SMS back with `text`, or nothing.
pub fn message(text: Option<&str>) -> String {
    match text {
        Some(t) => format!(
            "{HEAD}<Response><Message>{}</Message></Response>",
            escape(&clean(t))
        ),
        None => format!("{HEAD}<Response/>"),
    }
}

/// What a call says, then hangs up.
pub fn say_and_hang_up(text: &str) -> String {
    format!(
        "{HEAD}<Response><Say>{}</Say><Hangup/></Response>",
        escape(&clean(text))
    )
}

/// A menu: `text` spoken inside a one-key `<Gather>` that posts the key to `action`,
/// `times` times over while no key is pressed, then `goodbye` and hang up.
pub fn menu(text: &str, action: &str, times: u8, goodbye: &str) -> String {
    let gather = format!(
        r#"<Gather input="dtmf" numDigits="1" timeout="10" method="POST" action="{}"><Say>{}</Say></Gather>"#,
        escape(action),
        escape(&clean(text))
    );
    format!(
        "{HEAD}<Response>{}<Say>{}</Say><Hangup/></Response>",
        gather.repeat(usize::from(times.max(1))),
        escape(&clean(goodbye))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_an_alert_stays_text() {
        assert_eq!(
            escape(r#"<a & "b" 'c'>"#),
            "&lt;a &amp; &quot;b&quot; &apos;c&apos;&gt;"
        );
        let xml = menu(
            "DiskFull </Say><Dial>+1900</Dial> & more\r\n",
            "https://t.example/v?a=1&b=2",
            2,
            "bye",
        );
        assert!(!xml.contains("<Dial>"), "{xml}");
        assert!(xml.contains("&lt;/Say&gt;&lt;Dial&gt;+1900&lt;/Dial&gt; &amp; more"));
        assert!(xml.contains(r#"action="https://t.example/v?a=1&amp;b=2""#));
        assert_eq!(xml.matches("<Gather ").count(), 2);
        assert!(!xml.contains('\r') && !xml.contains('\n'));
    }
}
