//! `POST /hooks/sms/twilio/{notifier}`: a reply to an SMS page, as Twilio delivers it.
//!
//! Twilio POSTs the message form-encoded (`From`, `To`, `Body`, `MessageSid`,
//! `AccountSid`, ...) and signs it (`http::twilio_signature`). Only a request carrying a
//! valid signature for the named `twilio` notifier's token is acted on; the answer is
//! TwiML, whose `<Message>` Twilio sends back to the replier as an SMS.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::sms::{ReplyOutcome, act_on_reply};
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
    let Some(from) = field(&params, "From") else {
        return error(StatusCode::BAD_REQUEST, "the form has no From field");
    };
    let text = field(&params, "Body").unwrap_or("");
    match act_on_reply(&s, "twilio", from, text).await {
        ReplyOutcome::Done(t) | ReplyOutcome::Refused(t) | ReplyOutcome::NotUnderstood(t) => {
            twiml(Some(&t))
        }
        // Say nothing: an answer would confirm to a stranger that the number pages someone.
        ReplyOutcome::UnknownSender => twiml(None),
        // Twilio retries a failed webhook; the reply is not lost.
        ReplyOutcome::Unavailable(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
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
