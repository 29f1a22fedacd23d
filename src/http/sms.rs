//! What every inbound SMS endpoint shares: read the reply, check the sender, act, and say
//! what happened in a line short enough to send back.

use tracing::{info, warn};

use super::AppState;
use crate::engine::{Actor, EventKind, Input, Via};
use crate::runtime::SubmitError;
use crate::source::sms_reply::{self, Command};

/// The result of one reply, and what (if anything) to answer by SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyOutcome {
    /// Applied; the text confirms it.
    Done(String),
    /// Understood and allowed, but nothing changed (already acked, no such incident).
    Refused(String),
    /// Not a command; the text is the help line.
    NotUnderstood(String),
    /// The sender is nobody we page, or not a phone number at all: no answer is sent (it
    /// would confirm the number, and tell a stranger about the incident).
    UnknownSender,
    /// tocsin could not record it; the gateway should retry.
    Unavailable(String),
}

/// Acts on one SMS reply received through `via` (`kannel`, `twilio`).
pub(crate) async fn act_on_reply(s: &AppState, via: &str, from: &str, text: &str) -> ReplyOutcome {
    let outcome = decide(s, via, from, text).await;
    let label = match &outcome {
        ReplyOutcome::Done(_) => "applied",
        ReplyOutcome::Refused(_) => "refused",
        ReplyOutcome::NotUnderstood(_) => "not_understood",
        ReplyOutcome::UnknownSender => "unknown_sender",
        ReplyOutcome::Unavailable(_) => "unavailable",
    };
    s.metrics.sms_reply(via, label);
    outcome
}

async fn decide(s: &AppState, via: &str, from: &str, text: &str) -> ReplyOutcome {
    let from_clean = crate::notify::message::clean(from);
    let text_clean = crate::notify::message::clean(text);
    let command = sms_reply::parse(text);
    let live = s.live();
    let Some(contact) = live.sms_numbers.contact(from) else {
        let who = if sms_reply::sender_digits(from).is_some() {
            "which is no contact's SMS number"
        } else {
            // A sender id (letters, or digits inside other text) is chosen by whoever
            // sends through a bulk-SMS provider: it proves nothing about who sent it.
            "which is not a phone number"
        };
        warn!(via, from = %from_clean, text = %text_clean, "SMS reply from a sender {who}; refused");
        // Recorded on the incident it names, so whoever looks there sees the attempt.
        if let Ok(cmd) = &command {
            let _ = s
                .engine
                .submit(Input::Note {
                    id: cmd.incident(),
                    kind: EventKind::Refused,
                    by: Actor::with_reference(from_clean.clone(), Via::Sms, via),
                    detail: format!(
                        "SMS reply {text_clean:?} from {from_clean}, {who}; nothing done"
                    ),
                })
                .await;
        }
        return ReplyOutcome::UnknownSender;
    };
    let cmd = match command {
        Ok(c) => c,
        Err(help) => {
            info!(via, contact, text = %text_clean, "SMS reply not understood");
            return ReplyOutcome::NotUnderstood(help.to_string());
        }
    };
    let by = Actor::with_reference(contact, Via::Sms, via);
    let (input, done) = match cmd {
        Command::Ack(id) => (Input::Ack { id, by }, format!("Acknowledged #{id}")),
        Command::Escalate(id) => (Input::Escalate { id, by }, format!("Escalated #{id}")),
        Command::Resolve(id) => (Input::Resolve { id, by }, format!("Closed #{id}")),
    };
    match s.engine.submit(input).await {
        Ok(()) => {
            info!(via, contact, command = ?cmd, "SMS reply applied");
            ReplyOutcome::Done(done)
        }
        Err(e @ SubmitError::Refused(_)) => ReplyOutcome::Refused(e.to_string()),
        Err(SubmitError::Unavailable(e)) => ReplyOutcome::Unavailable(e),
    }
}
