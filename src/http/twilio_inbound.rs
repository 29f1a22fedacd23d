//! `POST /hooks/sms/twilio/{notifier}`: a reply to an SMS page, as Twilio delivers it.
//!
//! Twilio POSTs the message form-encoded (`From`, `To`, `Body`, `MessageSid`,
//! `AccountSid`, ...) and signs it (`http::twilio_signature`). Only a request carrying a
//! valid signature for the named `twilio` notifier's token is acted on, and only the
//! first time its `MessageSid` arrives: the signature covers no timestamp, so a captured
//! request would otherwise act again whenever it is sent. The answer is TwiML, whose
//! `<Message>` Twilio sends back to the replier as an SMS.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::sms::{ReplyOutcome, act_on_reply, message_id};
use super::twilio_signature::{SignedFormError, field, signed_form};
use super::{AppState, error};
use crate::config::{NotifierConfig, TwilioConfig};

pub(crate) async fn receive(
    State(s): State<AppState>,
    Path(notifier): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let live = s.live();
    let twilio = live.config.file.notifiers.get(&notifier);
    if twilio
        .and_then(NotifierConfig::get::<TwilioConfig>)
        .is_none()
    {
        return error(
            StatusCode::NOT_FOUND,
            format!("no twilio notifier named {notifier:?} in alerts.toml"),
        );
    }
    let params = match signed_form(&s, &live, &notifier, &uri, &headers, body).await {
        Ok(p) => p,
        Err(SignedFormError::BadSignature(r)) => {
            s.metrics.sms_reply("twilio", "bad_signature");
            return *r;
        }
        Err(SignedFormError::Other(r)) => return *r,
    };
    let Reply { from, sid, text } = match read_reply(&params) {
        Ok(r) => r,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    match act_on_reply(&s, "twilio", Some(sid), from, text).await {
        ReplyOutcome::Done(t) | ReplyOutcome::Refused(t) | ReplyOutcome::NotUnderstood(t) => {
            twiml(Some(&t))
        }
        // Say nothing: an answer would confirm to a stranger that the number pages someone.
        ReplyOutcome::UnknownSender => twiml(None),
        // The first arrival was answered; a replayer learns nothing from this one.
        ReplyOutcome::Replayed => twiml(None),
        // Twilio calls the number's fallback URL, or retries when the webhook URL asks
        // it to (connection overrides); by default it only logs the error, and the
        // contact has to reply again.
        ReplyOutcome::Unavailable(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// The parts of a signed reply form that tocsin acts on.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    pub from: &'a str,
    /// `MessageSid`, checked to be an id.
    pub sid: &'a str,
    /// `Body`, empty when absent.
    pub text: &'a str,
}

/// The sender, message id and text of a reply form, or why it is refused (400). Public
/// so that the fuzz targets (`fuzz/`) feed it what a stranger could send.
pub fn read_reply(params: &[(String, String)]) -> Result<Reply<'_>, String> {
    let from = field(params, "From").ok_or("the form has no From field")?;
    // Twilio sends one with every message; a form without it cannot be told from a replay.
    let sid = field(params, "MessageSid").ok_or("the form has no MessageSid field")?;
    let sid = message_id("MessageSid", sid)?;
    let text = field(params, "Body").unwrap_or("");
    Ok(Reply { from, sid, text })
}

/// A TwiML answer: one SMS back with `message`, or nothing.
fn twiml(message: Option<&str>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml")],
        crate::notify::twiml::message(message),
    )
        .into_response()
}
