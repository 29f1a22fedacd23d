//! Replies to SMS pages: `42A` acks, `42E` escalates now, `42C` resolves (GoAlert's short
//! codes), also written `ack 42`, `a #42`, `escalate 42`, `close 42`, `resolve 42`.
//!
//! Who may send them is decided by the sender's number: it must be a phone number, and
//! the `to` of an SMS method of some contact. Everything else is refused (and recorded
//! by the caller), above all an alphanumeric sender id like `PROMO15550100`: bulk-SMS
//! providers let their customers pick those freely, so digits inside one prove nothing.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::config::types::normalize_phone;
use crate::engine::IncidentId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Ack(IncidentId),
    Escalate(IncidentId),
    Resolve(IncidentId),
}

impl Command {
    pub fn incident(self) -> IncidentId {
        match self {
            Command::Ack(i) | Command::Escalate(i) | Command::Resolve(i) => i,
        }
    }
}

/// Reads one reply. The error is the help text worth sending back.
pub fn parse(text: &str) -> Result<Command, &'static str> {
    const HELP: &str =
        "Not understood. Reply 42A to ack incident 42, 42E to escalate, 42C to close.";
    let t: String = text
        .trim()
        .trim_matches(|c| c == '\'' || c == '"' || c == '.')
        .to_ascii_lowercase();
    let t = t.trim();
    // "42a", "42 a", "#42a"
    let digits_first = t.trim_start_matches('#');
    let split = digits_first
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits_first.len());
    let (num, rest) = if split > 0 {
        (&digits_first[..split], digits_first[split..].trim())
    } else {
        // "ack 42", "a #42", "close 42"
        let Some((word, num)) = t.split_once(|c: char| c.is_whitespace() || c == '#') else {
            return Err(HELP);
        };
        (num.trim().trim_start_matches('#').trim(), word.trim())
    };
    let id: IncidentId = num.parse().map_err(|_| HELP)?;
    if id == 0 {
        return Err(HELP);
    }
    Ok(match rest {
        "a" | "ack" | "acknowledge" => Command::Ack(id),
        "e" | "esc" | "escalate" => Command::Escalate(id),
        "c" | "close" | "resolve" => Command::Resolve(id),
        _ => return Err(HELP),
    })
}

/// Contacts by the phone numbers of their SMS methods (digits only, so `+1 555-0100`,
/// `+15550100` and Kannel's `15550100` are the same number).
#[derive(Debug, Clone, Default)]
pub struct Numbers {
    by_digits: BTreeMap<String, String>,
}

/// The digits of a sender that is a phone number: an optional leading `+`, then 7 to 15
/// digits (E.164) with spaces, dashes, dots and parentheses between them, as gateways
/// and people write numbers. `None` for anything else, so that a sender id which merely
/// contains a contact's digits (`PROMO15550100`, `x+15550100y`) is nobody.
pub fn sender_digits(from: &str) -> Option<String> {
    let t = from.trim();
    let rest = t.strip_prefix('+').unwrap_or(t);
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    (7..=15).contains(&digits.len()).then_some(digits)
}

impl Numbers {
    pub fn from_config(cfg: &Config) -> Self {
        let mut by_digits = BTreeMap::new();
        for (name, c) in &cfg.file.contacts {
            for m in &c.methods {
                let sms = cfg
                    .file
                    .notifiers
                    .get(&m.notifier)
                    .is_some_and(|n| n.is_sms());
                let to = m.to.as_deref().and_then(normalize_phone);
                if let (true, Some(digits)) = (sms, to.as_deref().and_then(sender_digits)) {
                    by_digits.entry(digits).or_insert_with(|| name.clone());
                }
            }
        }
        Numbers { by_digits }
    }

    /// The contact whose SMS method has this number; `None` also when `from` is not a
    /// phone number at all ([`sender_digits`]).
    pub fn contact(&self, from: &str) -> Option<&str> {
        self.by_digits
            .get(&sender_digits(from)?)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_reply_is_read() {
        for (t, want) in [
            ("42A", Command::Ack(42)),
            ("42a", Command::Ack(42)),
            (" 42 a ", Command::Ack(42)),
            ("'42A'", Command::Ack(42)),
            ("ack 42", Command::Ack(42)),
            ("a #42", Command::Ack(42)),
            ("Ack 42", Command::Ack(42)),
            ("42E", Command::Escalate(42)),
            ("escalate 42", Command::Escalate(42)),
            ("42C", Command::Resolve(42)),
            ("close 42", Command::Resolve(42)),
            ("resolve 7", Command::Resolve(7)),
        ] {
            assert_eq!(parse(t), Ok(want), "{t:?}");
        }
    }

    /// alice's SMS method is `+1 555-0100`.
    fn alice() -> Numbers {
        let cfg = crate::config::load_str(
            r#"
[notifiers.gateway]
type = "http_sms"
url = "https://sms.example.com/api/send"
body = { form = { to = "{to}", text = "{text}" } }
[contacts.alice]
methods = [{ notifier = "gateway", to = "+1 555-0100" }]
[policies.p]
steps = [{ after = "0s", notify = ["alice"] }]
[[routes]]
policy = "p"
"#,
            None,
        )
        .expect("valid config");
        Numbers::from_config(&cfg)
    }

    #[test]
    fn alices_number_however_the_gateway_spells_it_is_alice() {
        let n = alice();
        for from in [
            "+15550100",
            "15550100",
            "+1 555-0100",
            "+1 (555) 010-0",
            "+1.555.010.0",
            " +15550100 ",
        ] {
            assert_eq!(n.contact(from), Some("alice"), "{from:?}");
        }
        assert_eq!(n.contact("+15550101"), None, "another number");
    }

    #[test]
    fn a_sender_id_that_contains_alices_digits_is_nobody() {
        let n = alice();
        // Alphanumeric sender ids are whatever the bulk-SMS customer typed in.
        for from in [
            "PROMO15550100",
            "x+15550100y",
            "ALICE+1-555-0100",
            "+15550100y",
            "+15550100#",
            "tel:+15550100",
            "1555O0100",
            "++15550100",
            "+1555+0100",
            "+1 555 0100 ext",
            "+1555\u{0}0100",
            "+1555\n0100",
            "+1/555/0100",
            "\u{ff0b}15550100",
            "\u{ff11}\u{ff15}\u{ff15}\u{ff15}\u{ff10}\u{ff11}\u{ff10}\u{ff10}",
            "",
            "+",
        ] {
            assert_eq!(n.contact(from), None, "{from:?}");
        }
    }

    #[test]
    fn anything_else_gets_help_not_an_action() {
        for t in [
            "",
            "A",
            "42",
            "42X",
            "ok thanks",
            "ack",
            "ack all",
            "0A",
            "99999999999999999999999A",
            "42A\n43A",
        ] {
            assert!(parse(t).is_err(), "{t:?}");
        }
    }
}
