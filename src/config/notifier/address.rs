//! How a contact method addresses a notifier's destination, and whether it does so in
//! a form the notifier can use.

use lettre::message::Mailbox;

use crate::config::irc::{is_channel, is_nick};
use crate::config::types::is_phone_number;

/// How a destination is addressed by a notifier, for validating contact methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// Needs nothing from the contact method (log, webhook).
    None,
    /// `to` is an email address.
    Email,
    /// `to` is a phone number in international form (+15550100).
    Phone,
    /// `topic` is an ntfy topic.
    Topic,
    /// `to` is a Pushover user or group key.
    UserKey,
    /// Gotify: the app token decides where it goes.
    App,
    /// IRC: the notifier's channel, or a contact method's `to` (a nick or channel).
    Irc,
}

impl Address {
    /// Whether a step may name the notifier directly, without a contact's address.
    pub fn may_be_named_alone(self) -> bool {
        matches!(self, Address::None | Address::App | Address::Irc)
    }

    /// Whether a contact method gives this kind of address, in a form it can use.
    pub fn check(
        self,
        ty: &str,
        to: Option<&str>,
        topic: Option<&str>,
    ) -> Result<(), (&'static str, String)> {
        match self {
            Address::None | Address::App => Ok(()),
            Address::Irc => match to {
                None => Ok(()),
                Some(t) if is_nick(t) || is_channel(t) => Ok(()),
                Some(t) => Err(("to", format!("{t:?} is neither an IRC nick nor a channel"))),
            },
            Address::Email => match to {
                Some(t) if !t.chars().any(char::is_control) && t.parse::<Mailbox>().is_ok() => {
                    Ok(())
                }
                Some(t) => Err((
                    "to",
                    format!(
                        "{t:?} is not an email address: write it like \"alice@example.com\" or \"Alice <alice@example.com>\""
                    ),
                )),
                None => Err((
                    "to",
                    format!("a {ty} method needs to = \"someone@example.com\""),
                )),
            },
            Address::Phone => match to {
                Some(t) if is_phone_number(t) => Ok(()),
                Some(t) => Err((
                    "to",
                    format!(
                        "{t:?} is not a phone number in international form, like \"+15550100\""
                    ),
                )),
                None => Err((
                    "to",
                    format!("a {ty} method needs to = \"+15550100\" (the phone number)"),
                )),
            },
            Address::Topic => match topic {
                Some(t)
                    if !t.is_empty()
                        && t.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
                {
                    Ok(())
                }
                Some(t) => Err((
                    "topic",
                    format!("topic {t:?} may only use letters, digits, - and _"),
                )),
                None => Err((
                    "topic",
                    format!("a {ty} method needs topic = \"...\" (the ntfy topic)"),
                )),
            },
            Address::UserKey => match to {
                Some(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()) => Ok(()),
                Some(t) => Err(("to", format!("{t:?} is not a Pushover user or group key"))),
                None => Err(("to", format!("a {ty} method needs to = \"the user key\""))),
            },
        }
    }
}
