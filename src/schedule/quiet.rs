//! A contact's quiet hours: a daily window on a wall clock, with the DST rules of rule
//! windows, and the least severity that still pages inside it.

use jiff::tz::TimeZone;

use super::{Rule, Who};
use crate::time::Timestamp;

#[derive(Clone, Debug)]
pub struct QuietHours {
    window: Rule,
    time_zone: TimeZone,
    /// Rank (in `[defaults] severity_order`) from which pages go out at once.
    pub below: usize,
}

impl QuietHours {
    pub fn new(
        contact: &str,
        from: jiff::civil::Time,
        to: jiff::civil::Time,
        time_zone: TimeZone,
        below: usize,
    ) -> Self {
        QuietHours {
            window: Rule {
                who: Who::Contact(contact.to_string()),
                days: None,
                from: Some(from),
                to: Some(to),
            },
            time_zone,
            below,
        }
    }

    /// When the quiet hours around `t` end; `None` outside them.
    pub fn until(&self, t: Timestamp) -> Option<Timestamp> {
        if !self.window.active(&self.time_zone, t) {
            return None;
        }
        self.window.next_edge(&self.time_zone, t)
    }

    /// The end as the contact reads it: "07:00 CET".
    pub fn describe_end(&self, t: Timestamp) -> String {
        super::wall::shown(&self.time_zone, t, "%H:%M %Z")
    }
}
