//! Calls in progress: what each one is about, and what its keys and its end mean.
//!
//! A voice notifier opens a call here before placing it; the call's callbacks (the
//! script fetched when it is answered, the key pressed, the final status) find it by the
//! unguessable token in their URL. The book decides nothing about incidents: it turns a
//! key into what the caller asked for and an end without a key into "not reached", and
//! the HTTP handlers hand those to the engine like any other ack path.
//!
//! Calls live in memory only: a call still ringing when tocsin restarts can no longer
//! ack (its callbacks find nothing and do nothing), and the contact's next method comes
//! at its normal time instead of at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::engine::{IncidentId, Page};
use crate::time::{Clock, SystemClock, Timestamp};

/// How long after it stops ringing a call may last without a word from the provider:
/// three rounds of the menu take about a minute and a half. Past that, the provider cannot
/// reach tocsin (a wrong `public_url`, a firewall) and the call is given up as not
/// reached.
pub const SILENCE_GRACE: Duration = Duration::from_secs(180);

/// What the caller can press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// 4
    Ack,
    /// 5
    Escalate,
    /// 6
    Resolve,
    /// `*`, or no key at all
    Repeat,
    /// Anything else
    Other(char),
}

impl Key {
    pub fn parse(digits: &str) -> Key {
        match digits.trim().chars().next() {
            Some('4') => Key::Ack,
            Some('5') => Key::Escalate,
            Some('6') => Key::Resolve,
            None | Some('*') => Key::Repeat,
            Some(c) => Key::Other(c),
        }
    }

    /// What the key did, for "Incident 42 acknowledged."
    pub fn done(self) -> &'static str {
        match self {
            Key::Ack => "acknowledged",
            Key::Escalate => "escalated",
            Key::Resolve => "closed",
            Key::Repeat | Key::Other(_) => "unchanged",
        }
    }
}

/// The menu every call speaks after its incident.
pub const KEYS_HELP: &str = "Press 4 to acknowledge, 5 to escalate, 6 to close, star to repeat.";

/// One call being placed or ringing.
#[derive(Debug, Clone)]
pub struct Call {
    /// The notifier that placed it, whose auth token signs its callbacks.
    pub notifier: String,
    /// Every page the call carries (flood control may have bundled several).
    pub pages: Vec<Page>,
    /// The incident the call is about and its keys act on.
    pub incident: IncidentId,
    /// Who the keys act as.
    pub contact: Option<String>,
    /// What is spoken before the menu.
    pub script: String,
    /// How long it rings before it counts as not answered.
    pub ring: Duration,
    /// The provider's id (Twilio's `CallSid`), once known.
    pub call_id: Option<String>,
    /// Set when an answering machine took the call.
    pub voicemail: Option<String>,
    /// The key that acted, once one did: the call reached a person.
    pub keyed: Option<Key>,
    /// When the book opened it (set by [`CallBook::open`]).
    opened: Timestamp,
}

impl Call {
    pub fn new(
        notifier: &str,
        pages: Vec<Page>,
        incident: IncidentId,
        script: String,
        ring: Duration,
    ) -> Self {
        let contact = pages.first().and_then(|p| p.contact.clone());
        Call {
            notifier: notifier.to_string(),
            pages,
            incident,
            contact,
            script,
            ring,
            call_id: None,
            voicemail: None,
            keyed: None,
            opened: Timestamp(0),
        }
    }
}

/// What answering the call says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A person (or nobody knows): the script and the menu.
    Menu(String),
    /// An answering machine: a short message, then hang up.
    Voicemail(String),
}

/// What a key press asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Press {
    /// The first acting key of this call: do it, as `contact`, on `incident`.
    Act {
        key: Key,
        incident: IncidentId,
        contact: Option<String>,
        /// The pages the call carried, now delivered.
        pages: Vec<Page>,
    },
    /// A key already acted on this call's incident (a replayed callback): do nothing
    /// again.
    Again(Key, IncidentId),
    /// Say the menu again, after `note` ("7 is not a choice").
    Menu {
        note: Option<String>,
        script: String,
    },
}

/// How a call that ended without a key failed to reach anyone.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreached {
    pub pages: Vec<Page>,
    pub reason: String,
}

/// Why a callback is not for a call of this book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no call in progress has this URL (it ended, or tocsin restarted since)")]
    Unknown,
    #[error("the callback is for another call than the one placed at this URL")]
    OtherCall,
}

/// A call the provider never reported on.
#[derive(Debug, Clone, PartialEq)]
pub struct Silent {
    pub notifier: String,
    pub call_id: Option<String>,
    pub unreached: Unreached,
}

/// The calls in progress of every voice notifier, by token.
pub struct CallBook {
    calls: Mutex<HashMap<String, Call>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for CallBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallBook")
            .field("calls", &self.lock().len())
            .finish()
    }
}

impl Default for CallBook {
    fn default() -> Self {
        CallBook::new(Arc::new(SystemClock))
    }
}

impl CallBook {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CallBook {
            calls: Mutex::default(),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Call>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a call about to be placed; its callbacks carry the returned token.
    pub fn open(&self, call: Call) -> String {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).expect("the OS has a random source");
        let token = B64.encode(raw);
        let mut call = call;
        call.opened = self.clock.now();
        self.lock().insert(token.clone(), call);
        token
    }

    /// Calls the provider has said nothing about for longer than they can last (rung
    /// out, plus [`SILENCE_GRACE`]): removed, each as not reached, with why.
    pub fn silent(&self) -> Vec<Silent> {
        let now = self.clock.now();
        let mut calls = self.lock();
        let over: Vec<String> = calls
            .iter()
            .filter(|(_, c)| c.keyed.is_none() && now.since(c.opened) > c.ring + SILENCE_GRACE)
            .map(|(t, _)| t.clone())
            .collect();
        // A keyed call whose status never came reached someone: just forget it.
        calls.retain(|_, c| c.keyed.is_none() || now.since(c.opened) <= c.ring + SILENCE_GRACE);
        over.into_iter()
            .filter_map(|t| calls.remove(&t))
            .map(|c| Silent {
                notifier: c.notifier.clone(),
                call_id: c.call_id.clone(),
                unreached: Unreached {
                    reason: format!(
                        "no word from Twilio about the call for {} (is server.public_url reachable from Twilio?)",
                        crate::time::human(c.ring + SILENCE_GRACE)
                    ),
                    pages: c.pages,
                },
            })
            .collect()
    }

    /// The provider accepted the call and named it.
    pub fn placed(&self, token: &str, call_id: &str) {
        if let Some(c) = self.lock().get_mut(token) {
            c.call_id.get_or_insert_with(|| call_id.to_string());
        }
    }

    /// The call could not be placed: nothing will call back.
    pub fn forget(&self, token: &str) {
        self.lock().remove(token);
    }

    /// The notifier that placed the call at `token`, if one is in progress.
    pub fn notifier_of(&self, token: &str) -> Option<String> {
        self.lock().get(token).map(|c| c.notifier.clone())
    }

    fn checked<'a>(
        calls: &'a mut HashMap<String, Call>,
        token: &str,
        call_id: &str,
    ) -> Result<&'a mut Call, CallError> {
        let call = calls.get_mut(token).ok_or(CallError::Unknown)?;
        match &call.call_id {
            Some(id) if id != call_id => Err(CallError::OtherCall),
            Some(_) => Ok(call),
            // The answer can beat the API's reply to the request that placed the call.
            None => {
                call.call_id = Some(call_id.to_string());
                Ok(call)
            }
        }
    }

    /// The call was answered; `answered_by` is the provider's answering-machine
    /// verdict (`human`, `machine_start`, `fax`, `unknown`), if detection ran.
    pub fn answered(
        &self,
        token: &str,
        call_id: &str,
        answered_by: Option<&str>,
    ) -> Result<Answer, CallError> {
        let mut calls = self.lock();
        let call = Self::checked(&mut calls, token, call_id)?;
        match answered_by {
            Some(by) if by.starts_with("machine") || by == "fax" => {
                call.voicemail = Some(by.to_string());
                Ok(Answer::Voicemail(format!(
                    "{} This call could not be acknowledged by voicemail; tocsin is paging the next way to reach you.",
                    call.script
                )))
            }
            _ => Ok(Answer::Menu(format!("{} {KEYS_HELP}", call.script))),
        }
    }

    /// A key was pressed (`digits` as the provider sent them).
    pub fn pressed(&self, token: &str, call_id: &str, digits: &str) -> Result<Press, CallError> {
        let mut calls = self.lock();
        let call = Self::checked(&mut calls, token, call_id)?;
        let key = Key::parse(digits);
        let script = format!("{} {KEYS_HELP}", call.script);
        match key {
            Key::Repeat => Ok(Press::Menu { note: None, script }),
            Key::Other(c) => Ok(Press::Menu {
                note: Some(format!("{c} is not a choice.")),
                script,
            }),
            acting => {
                if let Some(prev) = call.keyed {
                    return Ok(Press::Again(prev, call.incident));
                }
                call.keyed = Some(acting);
                Ok(Press::Act {
                    key: acting,
                    incident: call.incident,
                    contact: call.contact.clone(),
                    pages: call.pages.clone(),
                })
            }
        }
    }

    /// The key's action could not be recorded (the store is down): let it be pressed
    /// again.
    pub fn unpress(&self, token: &str) {
        if let Some(c) = self.lock().get_mut(token) {
            c.keyed = None;
        }
    }

    /// The provider reported the call's status. A final status ends the call: unless a
    /// key was pressed, it reached nobody, and the answer says why.
    pub fn status(
        &self,
        token: &str,
        call_id: &str,
        status: &str,
        answered_by: Option<&str>,
        duration_secs: Option<u64>,
    ) -> Result<Option<Unreached>, CallError> {
        let mut calls = self.lock();
        let call = Self::checked(&mut calls, token, call_id)?;
        let reason = match status {
            "no-answer" => format!("no answer after {} s", call.ring.as_secs()),
            "busy" => "the line was busy".to_string(),
            "failed" => "the call could not be connected".to_string(),
            "canceled" => "the call was cancelled before it was answered".to_string(),
            "completed" => {
                let machine = call.voicemail.clone().or_else(|| {
                    answered_by
                        .filter(|b| b.starts_with("machine"))
                        .map(str::to_string)
                });
                match machine {
                    Some(by) => format!("answered by voicemail ({by}); a message was left"),
                    None => match duration_secs {
                        Some(s) => format!("answered, but no key was pressed in {s} s"),
                        None => "answered, but no key was pressed".to_string(),
                    },
                }
            }
            // queued, initiated, ringing, in-progress: not over yet.
            _ => return Ok(None),
        };
        let call = calls.remove(token).expect("checked above");
        if call.keyed.is_some() {
            return Ok(None);
        }
        Ok(Some(Unreached {
            pages: call.pages,
            reason,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PageKind;

    fn book_with_call() -> (CallBook, String) {
        book_on(Arc::new(SystemClock))
    }

    fn book_on(clock: Arc<dyn Clock>) -> (CallBook, String) {
        let book = CallBook::new(clock);
        let mut page = crate::notify::message::fixtures::page(42, PageKind::Triggered);
        page.contact = Some("alice".into());
        let call = Call::new(
            "voice",
            vec![page],
            42,
            "tocsin. Incident 42.".into(),
            Duration::from_secs(30),
        );
        let token = book.open(call);
        book.placed(&token, "CA1");
        (book, token)
    }

    #[test]
    fn the_first_acting_key_acts_and_a_replay_does_nothing() {
        let (book, token) = book_with_call();
        let Press::Act {
            key,
            incident,
            contact,
            pages,
        } = book.pressed(&token, "CA1", "4").unwrap()
        else {
            panic!("4 acks")
        };
        assert_eq!(
            (key, incident, contact.as_deref(), pages.len()),
            (Key::Ack, 42, Some("alice"), 1)
        );
        assert_eq!(
            book.pressed(&token, "CA1", "6").unwrap(),
            Press::Again(Key::Ack, 42)
        );
        assert_eq!(
            book.pressed(&token, "CA1", "4").unwrap(),
            Press::Again(Key::Ack, 42)
        );
        // ... and the end of a call someone keyed is no failover.
        assert_eq!(
            book.status(&token, "CA1", "completed", None, Some(20))
                .unwrap(),
            None
        );
        assert_eq!(book.pressed(&token, "CA1", "4"), Err(CallError::Unknown));
    }

    /// Twilio could not reach tocsin: the call must not wait forever to count as unanswered.
    #[test]
    fn a_call_twilio_never_reports_on_is_given_up_once_it_cannot_last_any_longer() {
        let clock = Arc::new(crate::time::ManualClock::starting_at(Timestamp::at(
            "2026-11-21T03:00:00Z",
        )));
        let (book, token) = book_on(clock.clone());
        clock.advance(Duration::from_secs(30) + SILENCE_GRACE);
        assert!(book.silent().is_empty(), "a call may still last this long");
        clock.advance(Duration::from_secs(1));
        let silent = book.silent();
        assert_eq!(silent.len(), 1);
        assert_eq!(silent[0].notifier, "voice");
        assert_eq!(silent[0].call_id.as_deref(), Some("CA1"));
        assert!(
            silent[0].unreached.reason.contains("public_url"),
            "{:?}",
            silent[0]
        );
        assert_eq!(book.pressed(&token, "CA1", "4"), Err(CallError::Unknown));
        assert!(book.silent().is_empty(), "given up once");
    }

    #[test]
    fn a_callback_for_another_call_sid_is_refused() {
        let (book, token) = book_with_call();
        assert_eq!(book.pressed(&token, "CA2", "4"), Err(CallError::OtherCall));
        assert_eq!(book.pressed("nope", "CA1", "4"), Err(CallError::Unknown));
    }

    #[test]
    fn star_and_unknown_keys_repeat_the_menu() {
        let (book, token) = book_with_call();
        let Press::Menu { note: None, script } = book.pressed(&token, "CA1", "*").unwrap() else {
            panic!()
        };
        assert!(script.ends_with(KEYS_HELP));
        let Press::Menu { note: Some(n), .. } = book.pressed(&token, "CA1", "9").unwrap() else {
            panic!()
        };
        assert_eq!(n, "9 is not a choice.");
    }

    #[test]
    fn every_way_a_call_ends_without_a_key_says_why() {
        for (status, by, want) in [
            ("no-answer", None, "no answer after 30 s"),
            ("busy", None, "the line was busy"),
            ("failed", None, "the call could not be connected"),
            (
                "canceled",
                None,
                "the call was cancelled before it was answered",
            ),
            (
                "completed",
                Some("machine_start"),
                "answered by voicemail (machine_start); a message was left",
            ),
            (
                "completed",
                Some("human"),
                "answered, but no key was pressed in 12 s",
            ),
        ] {
            let (book, token) = book_with_call();
            assert_eq!(
                book.status(&token, "CA1", "ringing", None, None).unwrap(),
                None
            );
            let got = book
                .status(&token, "CA1", status, by, Some(12))
                .unwrap()
                .expect(status);
            assert_eq!(got.reason, want);
            assert_eq!(got.pages.len(), 1);
        }
    }

    #[test]
    fn a_machine_answer_gets_the_voicemail_message_and_ends_as_not_reached() {
        let (book, token) = book_with_call();
        let Answer::Voicemail(text) = book.answered(&token, "CA1", Some("machine_start")).unwrap()
        else {
            panic!()
        };
        assert!(text.starts_with("tocsin. Incident 42."));
        let got = book
            .status(&token, "CA1", "completed", None, Some(9))
            .unwrap()
            .unwrap();
        assert!(got.reason.contains("voicemail"), "{}", got.reason);
    }
}
