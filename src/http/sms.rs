//! What every inbound SMS endpoint shares: read the reply, make sure it is the first time
//! it arrives, check the sender, act, and say what happened in a line short enough to
//! send back.
//!
//! A gateway gives every message an id (Twilio's `MessageSid`, Kannel's `%I`) that stays
//! the same when the gateway retries it and when someone replays a captured request
//! (Twilio's signature has no timestamp: a signed request stays valid forever). The ids
//! are kept in the store for [`REPLAY_WINDOW`]; a message seen before does nothing.

use std::time::Duration;

use tracing::{info, warn};

use super::AppState;
use crate::engine::{Actor, EventKind, Input, Via};
use crate::runtime::SubmitError;
use crate::source::sms_reply::{self, Command};

/// How long the id of an inbound SMS is remembered. It bounds the table, and nothing
/// else does: a replay older than this acts again. A month outlasts the incidents a
/// captured "42A" could still act on, at a few bytes per reply.
pub(crate) const REPLAY_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// Longest message id taken: Twilio's SIDs have 34 characters, Kannel's UUIDs 36.
const MAX_ID_LEN: usize = 128;

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
    /// This message (by its gateway's id) arrived before: a replay or a retry, which
    /// does nothing and is answered nothing (the first arrival was answered).
    Replayed,
    /// tocsin could not record it, or could not check that it is new; the gateway should
    /// retry.
    Unavailable(String),
}

/// A gateway's message id as given, checked to be one: at most [`MAX_ID_LEN`] printable
/// ASCII characters. The error says what is wrong, for a 400.
pub(crate) fn message_id<'a>(field: &str, raw: &'a str) -> Result<&'a str, String> {
    let ok =
        !raw.is_empty() && raw.len() <= MAX_ID_LEN && raw.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(raw)
    } else {
        Err(format!(
            "{field} {:?} is not a message id (1 to {MAX_ID_LEN} printable ASCII characters)",
            raw.chars().take(40).collect::<String>()
        ))
    }
}

/// Acts on one SMS reply received through `via` (`kannel`, `twilio`). `id` is the
/// gateway's id of the message; without one a retry cannot be told from a new message.
pub(crate) async fn act_on_reply(
    s: &AppState,
    via: &str,
    id: Option<&str>,
    from: &str,
    text: &str,
) -> ReplyOutcome {
    let outcome = decide(s, via, id, from, text).await;
    let label = match &outcome {
        ReplyOutcome::Done(_) => "applied",
        ReplyOutcome::Refused(_) => "refused",
        ReplyOutcome::NotUnderstood(_) => "not_understood",
        ReplyOutcome::UnknownSender => "unknown_sender",
        ReplyOutcome::Replayed => "replayed",
        ReplyOutcome::Unavailable(_) => "unavailable",
    };
    s.metrics.sms_reply(via, label);
    outcome
}

async fn decide(s: &AppState, via: &str, id: Option<&str>, from: &str, text: &str) -> ReplyOutcome {
    let from_clean = crate::notify::message::clean(from);
    let text_clean = crate::notify::message::clean(text);
    let command = sms_reply::parse(text);
    let live = s.live();
    let contact = live.sms_numbers.contact(from);
    if let Some(id) = id {
        // Checked (and remembered) before anything is done: a message acted on without
        // the check could be acted on again.
        match s
            .store
            .first_sight(via, id, s.clock.now(), REPLAY_WINDOW)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                warn!(via, id, from = %from_clean, text = %text_clean, "SMS reply already received once (a replay or the gateway's retry); nothing done");
                note_refused(
                    s,
                    &command,
                    contact.unwrap_or(&from_clean),
                    via,
                    format!(
                        "SMS reply {text_clean:?} from {from_clean} (message {id}) was already received once: a replay or the gateway's retry; nothing done"
                    ),
                )
                .await;
                return ReplyOutcome::Replayed;
            }
            Err(e) => {
                warn!(via, id, error = %e, "cannot check whether an SMS reply is new; answered 503 for a retry");
                return ReplyOutcome::Unavailable(format!(
                    "cannot check whether message {id} was already received: {e}"
                ));
            }
        }
    }
    let Some(contact) = contact else {
        let who = if sms_reply::sender_digits(from).is_some() {
            "which is no contact's SMS number"
        } else {
            // A sender id (letters, or digits inside other text) is chosen by whoever
            // sends through a bulk-SMS provider: it proves nothing about who sent it.
            "which is not a phone number"
        };
        warn!(via, from = %from_clean, text = %text_clean, "SMS reply from a sender {who}; refused");
        note_refused(
            s,
            &command,
            &from_clean,
            via,
            format!("SMS reply {text_clean:?} from {from_clean}, {who}; nothing done"),
        )
        .await;
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
        Err(e @ (SubmitError::Refused(_) | SubmitError::Forwarded { .. })) => {
            ReplyOutcome::Refused(e.to_string())
        }
        Err(SubmitError::Queued(why)) => ReplyOutcome::Done(format!("{done} ({why})")),
        Err(SubmitError::Unavailable(e)) => {
            // Nothing was done: the gateway's retry of this message must not be taken
            // for a replay.
            if let Some(id) = id
                && let Err(forget) = s.store.forget_sight(via, id).await
            {
                warn!(via, id, error = %forget, "an SMS reply that was not recorded stays remembered; its retry will do nothing, the contact must send it again");
            }
            ReplyOutcome::Unavailable(e)
        }
    }
}

/// Records a reply that did nothing on the incident it names, so whoever looks there
/// sees the attempt. A reply that names no incident is only logged.
async fn note_refused(
    s: &AppState,
    command: &Result<Command, &str>,
    who: &str,
    via: &str,
    detail: String,
) {
    if let Ok(cmd) = command {
        let _ = s
            .engine
            .submit(Input::Note {
                id: cmd.incident(),
                kind: EventKind::Refused,
                by: Actor::with_reference(who, Via::Sms, via),
                detail,
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_message_ids_are_taken_and_junk_is_not() {
        for id in [
            "SM2c2a9bf6bc4c4a1c8f0e4d1b4b9a7e11",
            "20687837-e1f5-4b6b-916a-c23a3850bce0",
        ] {
            assert_eq!(message_id("id", id), Ok(id));
        }
        let long = "a".repeat(MAX_ID_LEN + 1);
        for junk in ["", "SM 1", "SM\n1", "SMé", long.as_str()] {
            let e = message_id("MessageSid", junk).unwrap_err();
            assert!(e.starts_with("MessageSid "), "{e}");
        }
    }
}
