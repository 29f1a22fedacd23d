//! `type = "irc"`: incidents announced in a channel (or to a nick) through the IRC link,
//! id first so `!ack 42` is one glance away.

use std::time::Duration;

use async_trait::async_trait;

use super::message::{clean, kind_word};
use super::{Message, Notifier, NotifyError};
use crate::config::IrcNotifierConfig;
use crate::engine::PageKind;
use crate::irc::{IrcHandle, SayError};

pub struct IrcNotifier {
    link: Option<IrcHandle>,
    channel: String,
    notice: bool,
    timeout: Duration,
}

impl IrcNotifier {
    pub fn new(c: &IrcNotifierConfig, link: Option<IrcHandle>) -> Self {
        IrcNotifier {
            link,
            channel: c.channel.clone(),
            notice: c.notice,
            timeout: c.timeout.0,
        }
    }
}

#[async_trait]
impl Notifier for IrcNotifier {
    fn kind(&self) -> &'static str {
        "irc"
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let Some(link) = &self.link else {
            return Err(NotifyError::permanent(
                "the irc notifier speaks through the daemon's IRC link, which is not running here",
            ));
        };
        let target = msg.page.to.as_deref().unwrap_or(&self.channel);
        // Down, not joined, queue full, too slow: the link reconnects and rejoins by
        // itself, so those failures are worth another attempt. A nick nobody holds is
        // the contact not reached: their next method goes now.
        link.say(target, &announcement(msg), self.notice, self.timeout)
            .await
            .map_err(|e| match e {
                SayError::NoSuchNick(_) => NotifyError::bad_address(e.to_string()),
                _ => NotifyError::transient(e.to_string()),
            })?;
        Ok(super::Sent::Delivered)
    }
}

/// `[#42] FIRING DiskFull: Disk almost full on db1 — !ack 42`; a bundle lists every id.
pub fn announcement(msg: &Message) -> String {
    if msg.is_bundle() {
        let n = msg.more.len() + 1;
        let mut s = format!("{n} incidents need someone:");
        for (i, (page, inc)) in msg.items().enumerate() {
            let item = format!(" #{} {} {};", inc.id, word(page.kind), clean(&inc.title));
            // Every id is listed even when titles no longer fit.
            if s.len() + item.len() > 300 {
                let ids: Vec<String> = msg
                    .items()
                    .skip(i)
                    .map(|(_, inc)| format!("#{}", inc.id))
                    .collect();
                s.push_str(&format!(" also {}", ids.join(" ")));
                break;
            }
            s.push_str(&item);
        }
        s.push_str(" — !ack ID or !ack all");
        return s;
    }
    let inc = &msg.incident;
    let title = clean(&inc.title);
    match msg.page.kind {
        PageKind::Acknowledged => format!(
            "[#{}] ACKED by {}: {title}",
            inc.id,
            clean(inc.acked_by.as_deref().unwrap_or("someone"))
        ),
        PageKind::Resolved => format!("[#{}] RESOLVED {title}", inc.id),
        PageKind::Escalated => format!(
            "[#{}] ESCALATED (step {}) {title} — !ack {}",
            inc.id, msg.page.step, inc.id
        ),
        kind => format!("[#{}] {} {title} — !ack {}", inc.id, word(kind), inc.id),
    }
}

fn word(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Triggered => "FIRING",
        other => kind_word(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::fixtures::{bundle, message};

    #[test]
    fn a_new_incident_leads_with_its_id_and_how_to_ack() {
        let m = message(7, PageKind::Triggered, "DiskFull: Disk almost full on db1");
        assert_eq!(
            announcement(&m),
            "[#7] FIRING DiskFull: Disk almost full on db1 — !ack 7"
        );
    }

    #[test]
    fn an_ack_names_who_acked() {
        let mut m = message(7, PageKind::Acknowledged, "DiskFull");
        m.incident.acked_by = Some("alice".into());
        assert_eq!(announcement(&m), "[#7] ACKED by alice: DiskFull");
    }

    #[test]
    fn a_storm_bundle_lists_every_incident_id_even_when_titles_do_not_fit() {
        let titles: Vec<(u64, String)> = (7..108)
            .map(|i| (i, format!("DiskFull on db{i}")))
            .collect();
        let titles: Vec<(u64, &str)> = titles.iter().map(|(i, t)| (*i, t.as_str())).collect();
        let text = announcement(&bundle(&titles));
        assert!(text.starts_with("101 incidents need someone:"), "{text}");
        for id in 7..108 {
            let listed = text.contains(&format!("#{id} ")) || text.contains(&format!("#{id} —"));
            assert!(listed, "#{id} missing: {text}");
        }
        assert!(text.ends_with("!ack ID or !ack all"), "{text}");
    }
}
