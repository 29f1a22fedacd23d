//! `POST /hooks/voice/twilio/{notifier}/...`: what Twilio asks about a call tocsin placed.
//!
//! - `{token}`: the call was answered. The answer is the incident and the menu, inside a
//!   one-key `<Gather>`; an answering machine gets a short message and a hang-up.
//! - `{token}/gather`: a key. 4, 5 and 6 ack, escalate and resolve as the contact called
//!   (the first of them only: a replayed callback does nothing), and make the page
//!   delivered; anything else repeats the menu.
//! - `{token}/status`: the call ended. Without a key it reached nobody, and the engine is
//!   told so: the contact's next method goes at once.
//! - `test`: the key of a `tocsin test-notify` call, confirmed to the caller.
//!
//! Every request must carry Twilio's signature for the named notifier's auth token.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tracing::{info, warn};

use super::twilio_signature::{SignedFormError, field, signed_form};
use super::{AppState, error};
use crate::config::{NotifierConfig, TwilioVoiceConfig};
use crate::engine::{Actor, EventKind, Input, Outcome, Via};
use crate::notify::twiml;
use crate::notify::voice_calls::{Answer, Key, Press};
use crate::runtime::SubmitError;

const GOODBYE: &str = "No key was pressed. Goodbye.";

fn xml(body: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// A call tocsin no longer knows: say so and hang up, act on nothing.
fn no_such_call(notifier: &str, why: impl std::fmt::Display) -> Response {
    warn!(notifier, %why, "voice callback for no call in progress; nothing done");
    xml(twiml::say_and_hang_up(
        "This tocsin call is over. Nothing was changed. Goodbye.",
    ))
}

/// The checked form of a request to a `twilio_voice` notifier's URL, and how many times
/// the notifier repeats its menu.
async fn checked(
    s: &AppState,
    notifier: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Vec<(String, String)>, u8), Box<Response>> {
    let live = s.live();
    let Some(cfg) = live
        .config
        .file
        .notifiers
        .get(notifier)
        .and_then(NotifierConfig::get::<TwilioVoiceConfig>)
    else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            format!("no twilio_voice notifier named {notifier:?} in alerts.toml"),
        )));
    };
    let repeat = cfg.repeat;
    match signed_form(s, &live, notifier, uri, headers, body).await {
        Ok(p) => Ok((p, repeat)),
        Err(SignedFormError::BadSignature(r) | SignedFormError::Other(r)) => Err(r),
    }
}

/// The URL of `uri` under `server.public_url`, with `suffix` appended to its path.
fn public(s: &AppState, uri: &Uri, suffix: &str) -> String {
    format!(
        "{}{}{suffix}",
        s.live().config.file.server.public_url.trim_end_matches('/'),
        uri.path()
    )
}

/// Twilio reached tocsin about a call: the callback path works.
fn heard(s: &AppState, notifier: &str, sid: &str) {
    s.watchdog
        .callback_result(notifier, Ok(format!("Twilio called back about call {sid}")));
}

/// [`checked`], for a callback about one call: also its `CallSid`.
async fn about_a_call(
    s: &AppState,
    notifier: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Vec<(String, String)>, u8, String), Box<Response>> {
    let (params, repeat) = checked(s, notifier, uri, headers, body).await?;
    let sid = field(&params, "CallSid")
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "the form has no CallSid field",
            ))
        })?
        .to_string();
    Ok((params, repeat, sid))
}

pub(crate) async fn answered(
    State(s): State<AppState>,
    Path((notifier, token)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (params, repeat, sid) = match about_a_call(&s, &notifier, &uri, &headers, body).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let sid = sid.as_str();
    let answer = s.calls.answered(&token, sid, field(&params, "AnsweredBy"));
    if answer.is_ok() {
        heard(&s, &notifier, sid);
    }
    match answer {
        Ok(Answer::Menu(script)) => xml(twiml::menu(
            &script,
            &public(&s, &uri, "/gather"),
            repeat,
            GOODBYE,
        )),
        Ok(Answer::Voicemail(text)) => {
            info!(
                notifier,
                call = sid,
                "call answered by a machine; leaving a message"
            );
            xml(twiml::say_and_hang_up(&text))
        }
        Err(e) => no_such_call(&notifier, e),
    }
}

pub(crate) async fn gathered(
    State(s): State<AppState>,
    Path((notifier, token)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (params, repeat, sid) = match about_a_call(&s, &notifier, &uri, &headers, body).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let sid = sid.as_str();
    let digits = field(&params, "Digits").unwrap_or("");
    // The menu again is posted to this same URL.
    let again = |text: &str| xml(twiml::menu(text, &public(&s, &uri, ""), repeat, GOODBYE));
    let press = s.calls.pressed(&token, sid, digits);
    if press.is_ok() {
        heard(&s, &notifier, sid);
    }
    match press {
        Err(e) => no_such_call(&notifier, e),
        Ok(Press::Menu { note, script }) => match note {
            Some(n) => again(&format!("{n} {script}")),
            None => again(&script),
        },
        Ok(Press::Again(prev, id)) => {
            warn!(
                notifier,
                call = sid,
                "a key of a call that already acted; nothing done"
            );
            let _ = s
                .engine
                .submit(Input::Note {
                    id,
                    kind: EventKind::Refused,
                    by: Actor::with_reference("phone", Via::Voice, sid),
                    detail: format!(
                        "key {:?} of call {sid}, which already {} the incident; nothing done",
                        crate::notify::message::clean(digits),
                        prev.done()
                    ),
                })
                .await;
            xml(twiml::say_and_hang_up(&format!(
                "This call already {} the incident. Nothing else was changed. Goodbye.",
                prev.done()
            )))
        }
        Ok(Press::Act {
            key,
            incident: id,
            contact,
            pages,
        }) => {
            let name = contact.unwrap_or_else(|| "phone".to_string());
            let by = Actor::with_reference(name.clone(), Via::Voice, sid);
            let input = match key {
                Key::Ack => Input::Ack { id, by },
                Key::Escalate => Input::Escalate { id, by },
                Key::Resolve => Input::Resolve { id, by },
                Key::Repeat | Key::Other(_) => unreachable!("only acting keys act"),
            };
            let said = match s.engine.submit(input).await {
                Ok(()) => {
                    info!(notifier, call = sid, contact = name, incident = id, key = ?key, "call key applied");
                    format!("Incident {id} {}. Goodbye.", key.done())
                }
                Err(e @ (SubmitError::Refused(_) | SubmitError::Forwarded { .. })) => {
                    format!("{e}. Goodbye.")
                }
                Err(SubmitError::Queued(_)) => {
                    format!("Incident {id} will be {} shortly. Goodbye.", key.done())
                }
                Err(SubmitError::Unavailable(e)) => {
                    warn!(notifier, call = sid, error = %e, "call key not recorded; asking again");
                    s.calls.unpress(&token);
                    return again(&format!(
                        "tocsin could not record that. Please press the key again. Incident {id}."
                    ));
                }
            };
            // Someone pressed a key: the call reached a person, whatever the key did.
            for page in pages {
                let _ = s
                    .engine
                    .submit(Input::PageOutcome {
                        page,
                        outcome: Outcome::Delivered { attempts: 1 },
                    })
                    .await;
            }
            xml(twiml::say_and_hang_up(&said))
        }
    }
}

pub(crate) async fn status(
    State(s): State<AppState>,
    Path((notifier, token)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (params, _, sid) = match about_a_call(&s, &notifier, &uri, &headers, body).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let sid = sid.as_str();
    let status = field(&params, "CallStatus").unwrap_or("");
    let duration = field(&params, "CallDuration").and_then(|d| d.parse().ok());
    let ended = s
        .calls
        .status(&token, sid, status, field(&params, "AnsweredBy"), duration);
    if ended.is_ok() {
        heard(&s, &notifier, sid);
    }
    match ended {
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(unreached)) => {
            info!(
                notifier,
                call = sid,
                reason = unreached.reason,
                "call reached nobody"
            );
            for page in unreached.pages {
                let outcome = Outcome::NotReached {
                    reason: format!("{notifier}: {}", unreached.reason),
                };
                if let Err(SubmitError::Unavailable(e)) =
                    s.engine.submit(Input::PageOutcome { page, outcome }).await
                {
                    // The next method still comes at its own time.
                    warn!(notifier, call = sid, error = %e, "could not record that a call reached nobody");
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            warn!(notifier, call = sid, %e, "status of no call in progress; nothing done");
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

pub(crate) async fn test_call(
    State(s): State<AppState>,
    Path(notifier): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (params, _) = match checked(&s, &notifier, &uri, &headers, body).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let digits = field(&params, "Digits").unwrap_or("");
    let to = field(&params, "To").map(crate::notify::message::clean);
    if Key::parse(digits) == Key::Ack {
        info!(notifier, to, "test call confirmed with a 4");
        xml(twiml::say_and_hang_up(
            "Confirmed. tocsin can reach you by phone. Goodbye.",
        ))
    } else {
        xml(twiml::say_and_hang_up(&format!(
            "You pressed {}; this test call asked for a 4. Run the test again to retry. Goodbye.",
            crate::notify::message::clean(digits)
        )))
    }
}
