//! What a notifier is asked to deliver, and the texts every notifier shares.

use serde::Serialize;

use crate::engine::{Page, PageKind};
use crate::store::IncidentView;
use crate::time::human;

/// A page with everything needed to render it.
#[derive(Debug, Clone)]
pub struct Message {
    pub page: Page,
    /// The incident as stored when the page is sent (no history).
    pub incident: IncidentView,
    /// Where the recipient can acknowledge.
    pub ack_url: String,
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

impl Message {
    /// `[#42] TRIGGERED DiskFull: Disk almost full on db1`
    pub fn headline(&self) -> String {
        let what = match self.page.kind {
            PageKind::Triggered => "TRIGGERED",
            PageKind::Escalated => "ESCALATED",
            PageKind::Reminder => "REMINDER",
            PageKind::Acknowledged => "ACKNOWLEDGED",
            PageKind::Resolved => "RESOLVED",
            PageKind::Test => "TEST",
        };
        format!(
            "[#{}] {what} {}",
            self.incident.id,
            clean(&self.incident.title)
        )
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
            text: self.one_line(),
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
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn alert_text_cannot_start_a_new_protocol_line() {
        assert_eq!(clean("disk full\r\nQUIT :bye\u{7}"), "disk full  QUIT :bye");
    }
}
