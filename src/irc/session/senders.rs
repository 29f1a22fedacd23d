//! Who sent a command or an alert line: the account tag, the account map, else a WHOIS
//! (paced, at most [`MAX_WHOIS`] awaited for commands) whose answer counts only for the
//! sender's own `user@host`. What waits for a WHOIS is held here, in order.

use std::collections::BTreeSet;

use super::{Ask, Event, MAX_WAITING_LINES, MAX_WHOIS, Said, Session, WHOIS_TIMEOUT};
use crate::irc::command::ChatCommand;
use crate::irc::wire::{Msg, raw};
use crate::time::Timestamp;

/// A command or an alert line waiting for the WHOIS of its sender.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) nick: String,
    /// The sender's `nick!user@host`, which the WHOIS answer (311) must match.
    hostmask: String,
    waiting: Waiting,
    pub(super) deadline: Timestamp,
}

#[derive(Debug)]
enum Waiting {
    Command(Ask),
    Line(Said),
}

impl Pending {
    /// The account is known (or known to be none): what waited goes on.
    pub(super) fn release(self, account: Option<String>) -> Event {
        match self.waiting {
            Waiting::Command(mut ask) => {
                ask.account = account;
                ask.account_via = "whois";
                Event::Command(ask)
            }
            Waiting::Line(mut said) => {
                said.account = account;
                Event::Said(said)
            }
        }
    }
}

impl Session {
    pub(super) fn on_end_of_whois(&mut self, nick: &str, out: &mut Vec<Event>) {
        let key = self.casemap.fold(nick);
        let account = self.whois.remove(&key).flatten();
        let answered_for = self.whois_hosts.remove(&key);
        let (ready, waiting): (Vec<_>, Vec<_>) = self
            .pending
            .drain(..)
            .partition(|p| self.casemap.fold(&p.nick) == key);
        self.pending = waiting;
        for p in ready {
            let sender = p.hostmask.split_once('!').map(|(_, uh)| uh);
            // The nick changed hands between the line and the answer: the account is
            // the new holder's, not the sender's.
            let same_sender = match (&answered_for, sender) {
                (Some(a), Some(s)) => a.eq_ignore_ascii_case(s),
                _ => false,
            };
            out.push(p.release(if same_sender { account.clone() } else { None }));
        }
    }

    /// Who said a line that may be an alert: what the tag or the map says; for a sender
    /// whose lines count only from an account, a WHOIS when neither knows.
    pub(super) fn resolve_line_sender(
        &mut self,
        m: &Msg,
        mut said: Said,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let nick = m.nick().unwrap_or_default().to_string();
        let needs_account = self
            .cfg
            .account_masks
            .iter()
            .any(|mask| crate::irc::mask::mask_matches(mask, &said.hostmask));
        let waiting_already = self
            .pending
            .iter()
            .any(|p| self.casemap.same(&p.nick, &nick));
        if self.enabled.contains("account-tag") {
            said.account = m.tag("account").map(str::to_string);
        } else if let Some(known) = self
            .enabled
            .contains("account-notify")
            .then(|| self.accounts.get(&nick))
            .flatten()
            // Lines from one sender stay in order: one waiting for WHOIS holds the rest.
            .filter(|_| !waiting_already)
        {
            said.account = known.map(str::to_string);
        } else if needs_account {
            let lines = self
                .pending
                .iter()
                .filter(|p| matches!(p.waiting, Waiting::Line(_)))
                .count();
            if lines >= MAX_WAITING_LINES {
                out.push(Event::Ignored(format!(
                    "alert line from {} dropped: {MAX_WAITING_LINES} lines already wait for WHOIS answers",
                    said.hostmask
                )));
                return;
            }
            if !waiting_already {
                out.push(Event::Whois(raw("WHOIS", &[&nick])));
            }
            self.pending.push(Pending {
                nick,
                hostmask: said.hostmask.clone(),
                waiting: Waiting::Line(said),
                deadline: now.plus(WHOIS_TIMEOUT),
            });
            return;
        }
        out.push(Event::Said(said));
    }

    /// Who sent a command: the `account` tag where the server attaches it (its absence
    /// means not logged in); else the map account-notify keeps current; else WHOIS.
    pub(super) fn resolve_sender(
        &mut self,
        m: &Msg,
        mut ask: Ask,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let needs_account = ask.command.as_ref().is_ok_and(ChatCommand::needs_sender);
        if !needs_account {
            out.push(Event::Command(ask));
            return;
        }
        if self.enabled.contains("account-tag") {
            ask.account = m.tag("account").map(str::to_string);
            ask.account_via = "account-tag";
            out.push(Event::Command(ask));
            return;
        }
        if self.enabled.contains("account-notify")
            && let Some(known) = self.accounts.get(&ask.nick)
        {
            ask.account = known.map(str::to_string);
            ask.account_via = "account-notify";
            out.push(Event::Command(ask));
            return;
        }
        if !self
            .pending
            .iter()
            .any(|p| self.casemap.same(&p.nick, &ask.nick))
        {
            if self.whois_for_commands() >= MAX_WHOIS {
                out.push(Event::Ignored(format!(
                    "{}'s command not acted on: {MAX_WHOIS} commands already wait for WHOIS (a flood?); told to try again",
                    ask.hostmask
                )));
                out.push(Event::Reply {
                    to: ask.reply_to.clone(),
                    text: format!(
                        "{}: too many commands are waiting to learn who sent them; try again in a minute",
                        ask.nick
                    ),
                });
                return;
            }
            out.push(Event::Whois(raw("WHOIS", &[&ask.nick])));
        }
        self.pending.push(Pending {
            nick: ask.nick.clone(),
            hostmask: ask.hostmask.clone(),
            waiting: Waiting::Command(ask),
            deadline: now.plus(WHOIS_TIMEOUT),
        });
    }

    /// WHOIS asked (or about to be) for commands: one per distinct nick.
    fn whois_for_commands(&self) -> usize {
        let nicks: BTreeSet<String> = self
            .pending
            .iter()
            .filter(|p| matches!(p.waiting, Waiting::Command(_)))
            .map(|p| self.casemap.fold(&p.nick))
            .collect();
        nicks.len()
    }
}
