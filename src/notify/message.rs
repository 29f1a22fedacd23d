//! What a notifier is asked to deliver, and the texts every notifier shares.

use serde::Serialize;

use crate::engine::{Page, PageKind};
use crate::store::IncidentView;
use crate::time::human;

/// A page with everything needed to render it.
///
/// Usually one page about one incident. When flood control held several pages for the
/// same destination, they arrive as one bundle: `page`/`incident` is the oldest, `more`
/// the rest, and every incident is listed (and can be acked one by one).
#[derive(Debug, Clone)]
pub struct Message {
    pub page: Page,
    /// The incident as stored when the page is sent (no history).
    pub incident: IncidentView,
    /// Where the recipient can acknowledge: a signed link that shows the incident(s) and
    /// acks them (as the contact) with a POST. Covers every incident of a bundle.
    pub ack_url: String,
    /// Pages merged into this one by flood control, oldest first.
    pub more: Vec<Item>,
}

/// One page of a bundle.
#[derive(Debug, Clone)]
pub struct Item {
    pub page: Page,
    pub incident: IncidentView,
}

/// Strips CR, LF and other control characters: nothing that came from an alert may
/// start a new protocol line (mail header, IRC command, SMS gateway parameter).
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// `TRIGGERED`, `ESCALATED`, ...
pub fn kind_word(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Triggered => "TRIGGERED",
        PageKind::Escalated => "ESCALATED",
        PageKind::Reminder => "REMINDER",
        PageKind::Acknowledged => "ACKNOWLEDGED",
        PageKind::Resolved => "RESOLVED",
        PageKind::Test => "TEST",
        PageKind::Notice => "NOTICE",
    }
}

/// What a reply must say to act on one incident by SMS: `42A` acks, `42E` escalates
/// now, `42C` resolves (GoAlert's short codes).
pub fn sms_ack_code(incident: u64) -> String {
    format!("{incident}A")
}

impl Message {
    /// True when flood control merged several pages into this one.
    pub fn is_bundle(&self) -> bool {
        !self.more.is_empty()
    }

    /// Every (page, incident) in the message, oldest first.
    pub fn items(&self) -> impl Iterator<Item = (&Page, &IncidentView)> {
        std::iter::once((&self.page, &self.incident))
            .chain(self.more.iter().map(|i| (&i.page, &i.incident)))
    }

    /// Whether the message asks someone to act (an ack link makes sense).
    pub fn wants_ack(&self) -> bool {
        self.items().any(|(p, i)| {
            matches!(
                p.kind,
                PageKind::Triggered | PageKind::Escalated | PageKind::Reminder | PageKind::Test
            ) && i.state == crate::engine::IncidentState::Triggered
        })
    }

    /// `[#42] TRIGGERED DiskFull: Disk almost full on db1`, or for a bundle
    /// `7 incidents need you: #41 DiskFull db1, #42 ...` (the subject line).
    pub fn headline(&self) -> String {
        if self.is_bundle() {
            let mut s = format!("{} incidents need you:", self.more.len() + 1);
            for (n, (_, i)) in self.items().enumerate() {
                if n > 0 {
                    s.push(',');
                }
                s.push_str(&format!(" #{} {}", i.id, clean(&i.title)));
                if s.len() > 200 {
                    s.push_str(" ...");
                    break;
                }
            }
            return s;
        }
        format!(
            "[#{}] {} {}",
            self.incident.id,
            kind_word(self.page.kind),
            clean(&self.incident.title)
        )
    }

    /// The full plain text: every incident with its alerts, why it is paged, and how to
    /// ack. Used by mail bodies and push messages; every line is cleaned.
    pub fn body_text(&self) -> String {
        let mut s = String::new();
        for (page, inc) in self.items() {
            s.push_str(&format!(
                "[#{}] {} {}\n",
                inc.id,
                kind_word(page.kind),
                clean(&inc.title)
            ));
            s.push_str(&format!(
                "  state: {}; {}/{} alerts firing; step {} ({})\n",
                inc.state.as_str(),
                inc.alerts_firing,
                inc.alerts_total,
                page.step,
                clean(&page.reason)
            ));
            if let Some(ms) = page.late_by_ms {
                s.push_str(&format!(
                    "  LATE by {} (tocsin was down when it came due)\n",
                    human(std::time::Duration::from_millis(ms))
                ));
            }
            for a in inc
                .alerts
                .iter()
                .take(if self.is_bundle() { 3 } else { 50 })
            {
                s.push_str(&format!(
                    "  - {} {}\n",
                    a.status.as_str(),
                    clean(&a.summary())
                ));
            }
            if inc.alerts_total as usize
                > inc.alerts.len().min(if self.is_bundle() { 3 } else { 50 })
            {
                s.push_str("  - ...\n");
            }
        }
        if self.wants_ack() {
            s.push_str(&format!("\nAcknowledge: {}\n", self.ack_url));
        }
        s
    }

    /// One line with the headline, why, lateness, and how to ack.
    pub fn one_line(&self) -> String {
        let mut s = self.headline();
        s.push_str(&format!(
            " ({}/{} alerts firing; {})",
            self.incident.alerts_firing,
            self.incident.alerts_total,
            clean(&self.page.reason)
        ));
        if let Some(ms) = self.page.late_by_ms {
            s.push_str(&format!(
                " LATE by {}",
                human(std::time::Duration::from_millis(ms))
            ));
        }
        if matches!(
            self.page.kind,
            PageKind::Triggered | PageKind::Escalated | PageKind::Reminder
        ) {
            s.push_str(&format!(" ack: {}", self.ack_url));
        }
        s
    }

    /// The JSON body of a `webhook` page (the contract in the design).
    pub fn to_json(&self) -> WebhookBody<'_> {
        WebhookBody {
            event: self.page.kind,
            page_id: self.page.id,
            incident: &self.incident,
            target: &self.page.target,
            contact: self.page.contact.as_deref(),
            notifier: &self.page.notifier,
            to: self.page.to.as_deref(),
            step: self.page.step,
            cycle: self.page.cycle,
            reason: &self.page.reason,
            late_by_seconds: self.page.late_by_ms.map(|ms| ms as f64 / 1000.0),
            ack_url: &self.ack_url,
            text: if self.is_bundle() {
                self.headline()
            } else {
                self.one_line()
            },
            bundle: self
                .more
                .iter()
                .map(|i| Bundled {
                    event: i.page.kind,
                    page_id: i.page.id,
                    incident: i.incident.id,
                    title: &i.incident.title,
                    state: i.incident.state.as_str(),
                })
                .collect(),
        }
    }
}

/// Body POSTed by the `webhook` notifier.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    pub event: PageKind,
    /// Stable across re-sends after a restart: receivers can drop duplicates by it.
    pub page_id: u64,
    pub incident: &'a IncidentView,
    pub target: &'a str,
    pub contact: Option<&'a str>,
    pub notifier: &'a str,
    pub to: Option<&'a str>,
    pub step: u32,
    pub cycle: u32,
    pub reason: &'a str,
    pub late_by_seconds: Option<f64>,
    pub ack_url: &'a str,
    pub text: String,
    /// Further pages flood control merged into this one (same destination); `ack_url`
    /// acks them all. Empty for a single page.
    pub bundle: Vec<Bundled<'a>>,
}

/// One more page of a bundle, in a webhook body.
#[derive(Debug, Serialize)]
pub struct Bundled<'a> {
    pub event: PageKind,
    pub page_id: u64,
    pub incident: u64,
    pub title: &'a str,
    pub state: &'static str,
}

/// The most urgent `severity` label among the message's incidents: a bundle pages as
/// loudly as its worst incident. `None` when no incident has one.
pub fn worst_severity(msg: &Message) -> Option<&str> {
    fn rank(s: &str) -> u8 {
        match s.to_ascii_lowercase().as_str() {
            "critical" => 4,
            "error" => 3,
            "warning" => 2,
            "info" => 1,
            _ => 0,
        }
    }
    msg.items()
        .filter_map(|(_, i)| i.labels.get("severity").map(String::as_str))
        .max_by_key(|s| rank(s))
}

/// `s` cut to at most `max` bytes on a character boundary, ending in `…` when cut.
pub fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s[..end].trim_end())
}

/// Pages, incidents and messages for the notifiers' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::collections::BTreeMap;

    use super::{Item, Message};
    use crate::engine::{IncidentState, Page, PageKind};
    use crate::store::IncidentView;
    use crate::time::Timestamp;

    pub const AT: &str = "2026-11-21T10:00:00Z";

    /// Incident `id`, triggered at [`AT`], one firing alert, step 1 of `default`.
    pub fn incident(id: u64, title: &str) -> IncidentView {
        let at = Timestamp::at(AT);
        IncidentView {
            id,
            state: IncidentState::Triggered,
            title: title.to_string(),
            group_key: format!("{{}}:{{alertname=\"A{id}\"}}"),
            source: "alertmanager".into(),
            labels: BTreeMap::new(),
            alerts: Vec::new(),
            alerts_total: 1,
            alerts_firing: 1,
            alerts_truncated: 0,
            created_at: at,
            updated_at: at,
            resolved_at: None,
            acked_by: None,
            acked_at: None,
            snoozed_until: None,
            ack_expires_at: None,
            step: 1,
            cycle: 0,
            policy: "default".into(),
            next_escalation_at: None,
            history: None,
            history_next: None,
            pages: None,
            pages_total: None,
        }
    }

    /// A page of `kind` about incident `id` to alice, step 1 (page id `id * 10`).
    pub fn page(id: u64, kind: PageKind) -> Page {
        Page {
            id: id * 10,
            incident: id,
            at: Timestamp::at(AT),
            kind,
            step: 1,
            cycle: 0,
            target: "alice".into(),
            contact: Some("alice".into()),
            notifier: "sms".into(),
            method: Some(0),
            to: Some("+15550100".into()),
            topic: None,
            late_by_ms: None,
            reason: "step 1 of policy default".into(),
            retry_until: None,
            hold_until: None,
        }
    }

    /// One page of `kind` about incident `id`, the incident in the state `kind` implies.
    pub fn message(id: u64, kind: PageKind, title: &str) -> Message {
        let mut incident = incident(id, title);
        incident.state = match kind {
            PageKind::Acknowledged => IncidentState::Acknowledged,
            PageKind::Resolved => IncidentState::Resolved,
            _ => IncidentState::Triggered,
        };
        Message {
            page: page(id, kind),
            incident,
            ack_url: format!("http://127.0.0.1:9797/ack/token{id}"),
            more: Vec::new(),
        }
    }

    /// Flood control's bundle: the first (id, title) is the message, the rest `more`.
    pub fn bundle(titles: &[(u64, &str)]) -> Message {
        let mut m = message(titles[0].0, PageKind::Triggered, titles[0].1);
        m.more = titles[1..]
            .iter()
            .map(|(id, t)| Item {
                page: page(*id, PageKind::Triggered),
                incident: incident(*id, t),
            })
            .collect();
        m
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn alert_text_cannot_start_a_new_protocol_line() {
        assert_eq!(clean("disk full\r\nQUIT :bye\u{7}"), "disk full  QUIT :bye");
    }
}
