//! `type = "twilio_voice"`: a page as a phone call through Twilio's Calls API.
//!
//! `POST {api_url}/2010-04-01/Accounts/{AccountSid}/Calls.json` (basic auth with the
//! account SID and auth token) with `To`, `From`, `Url` (where Twilio fetches what to
//! say once the call is answered), `StatusCallback` (where it reports how the call
//! ended), `MachineDetection=Enable` and `Timeout` (seconds it rings). Both URLs are
//! `{public_url}/hooks/voice/twilio/{notifier}/{token}[/status]`, the token naming the
//! call in the [`CallBook`]; `http::twilio_voice` answers them.
//!
//! The call speaks one incident (the newest critical one of the page, with how many
//! others there are) and listens for one key: 4 acks, 5 escalates, 6 resolves, star
//! repeats. A call is placed ([`Sent::Placed`]), not delivered: it is delivered when a
//! key is pressed, and one that ends without a key (no answer, busy, voicemail, hung up)
//! reached nobody, so the contact's next method goes at once.
//!
//! Two kinds of call need no answer from tocsin and carry their TwiML inline: a test
//! call (it asks for a 4, which the daemon confirms), and a status update (acked,
//! resolved), which is spoken once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::debug;

use super::twilio::Api;
use super::voice_calls::{Call, CallBook};
use super::{BuildContext, Message, Notifier, NotifyError, Sent, twiml};
use crate::config::types::normalize_phone;
use crate::config::{Secret, TwilioVoiceConfig};
use crate::engine::PageKind;
use crate::notify::message::{clean, kind_word};
use crate::store::IncidentView;
use crate::time::human;

/// Longest title spoken: a call is not the place for a whole annotation.
const MAX_SPOKEN_TITLE: usize = 160;

pub struct TwilioVoiceNotifier {
    name: String,
    /// The account's Calls resource.
    api: Api,
    from: String,
    ring: Duration,
    repeat: u8,
    /// `server.public_url`: the base of the URLs Twilio calls back.
    public_url: String,
    /// The daemon's calls in progress; `None` in `tocsin test-notify`.
    calls: Option<Arc<CallBook>>,
}

impl TwilioVoiceNotifier {
    pub fn new(
        name: &str,
        cfg: &TwilioVoiceConfig,
        auth_token: Option<Secret>,
        cx: &BuildContext,
    ) -> Result<Self, NotifyError> {
        let auth_token = auth_token.ok_or_else(|| {
            NotifyError::config(
                "the twilio_voice notifier needs its auth token: set auth_token_file or auth_token_env",
            )
        })?;
        Ok(TwilioVoiceNotifier {
            name: name.to_string(),
            api: Api::new(
                &cfg.api_url,
                &cfg.account_sid,
                auth_token,
                "Calls",
                cfg.timeout.0,
            )?,
            from: cfg.from.clone(),
            ring: cfg.ring.0,
            repeat: cfg.repeat,
            public_url: cx.public_url.trim_end_matches('/').to_string(),
            calls: cx.calls.clone(),
        })
    }

    /// `{public_url}/hooks/voice/twilio/{notifier}/{last}`, each part one path segment.
    fn callback(&self, last: &str) -> Result<String, NotifyError> {
        let mut url = reqwest::Url::parse(&self.public_url).map_err(|e| {
            NotifyError::config(format!(
                "server.public_url {:?} is not a URL Twilio can call back: {e}",
                self.public_url
            ))
        })?;
        url.path_segments_mut()
            .map_err(|()| NotifyError::config("server.public_url cannot have a path"))?
            .pop_if_empty()
            .extend(["hooks", "voice", "twilio", &self.name, last]);
        Ok(url.to_string())
    }

    async fn place(&self, to: &str, what: What<'_>) -> Result<String, NotifyError> {
        let ring = self.ring.as_secs().to_string();
        let mut form: Vec<(&str, &str)> = vec![
            ("To", to),
            ("From", &self.from),
            ("Timeout", &ring),
            ("MachineDetection", "Enable"),
        ];
        let status;
        match what {
            What::Twiml(t) => form.push(("Twiml", t)),
            What::Url(u) => {
                status = format!("{u}/status");
                form.extend([
                    ("Url", u),
                    ("Method", "POST"),
                    ("StatusCallback", &status),
                    ("StatusCallbackMethod", "POST"),
                ]);
            }
        }
        self.api.create(&form).await
    }
}

/// What Twilio plays when the call is answered.
enum What<'a> {
    /// Inline TwiML: nothing to call back.
    Twiml(&'a str),
    /// Fetched from tocsin.
    Url(&'a str),
}

/// The incident a call speaks of: the newest critical one, else the newest.
fn spoken(msg: &Message) -> (&crate::engine::Page, &IncidentView) {
    let critical = |i: &IncidentView| {
        i.labels
            .get("severity")
            .is_some_and(|s| s.eq_ignore_ascii_case("critical"))
    };
    msg.items()
        .max_by_key(|(_, i)| (critical(i), i.id))
        .expect("a message has a page")
}

/// "tocsin. Triggered: incident 42. DiskFull on db1, critical. 2 more incidents are open."
pub fn script(msg: &Message) -> String {
    let (page, inc) = spoken(msg);
    let mut title = clean(&inc.title);
    if title.chars().count() > MAX_SPOKEN_TITLE {
        title = title.chars().take(MAX_SPOKEN_TITLE).collect();
    }
    let mut s = format!(
        "tocsin. {}: incident {}. {title}",
        kind_word(page.kind).to_lowercase(),
        inc.id
    );
    if let Some(instance) = inc.labels.get("instance") {
        s.push_str(&format!(" on {}", clean(instance)));
    }
    if let Some(sev) = inc.labels.get("severity") {
        s.push_str(&format!(", {}", clean(sev)));
    }
    s.push('.');
    if let Some(ms) = page.late_by_ms {
        s.push_str(&format!(
            " This page is late by {}.",
            human(Duration::from_millis(ms))
        ));
    }
    match msg.more.len() {
        0 => {}
        1 => s.push_str(" 1 more incident is open."),
        n => s.push_str(&format!(" {n} more incidents are open.")),
    }
    s
}

#[async_trait]
impl Notifier for TwilioVoiceNotifier {
    fn kind(&self) -> &'static str {
        "twilio_voice"
    }

    async fn check(&self) -> Result<String, NotifyError> {
        self.api.check().await
    }

    async fn send(&self, msg: &Message) -> Result<Sent, NotifyError> {
        let raw_to = msg.page.to.as_deref().ok_or_else(|| {
            NotifyError::bad_address("the contact method has no `to` phone number to call")
        })?;
        let to = normalize_phone(raw_to).ok_or_else(|| {
            NotifyError::bad_address(format!(
                "{raw_to:?} is not a phone number in international form like +15550100"
            ))
        })?;
        if msg.page.kind == PageKind::Test {
            let xml = twiml::menu(
                "This is a test call from tocsin. Press 4 to confirm that pages reach you by phone.",
                &self.callback("test")?,
                self.repeat,
                "No key was pressed. Goodbye.",
            );
            let sid = self.place(&to, What::Twiml(&xml)).await?;
            return Ok(Sent::Placed { reference: sid });
        }
        if !msg.wants_ack() {
            // Acked, resolved: nothing to press, so nothing to call back.
            let xml = twiml::say_and_hang_up(&script(msg));
            let sid = self.place(&to, What::Twiml(&xml)).await?;
            debug!(%sid, to = %to, "Twilio placed a status call");
            return Ok(Sent::Delivered);
        }
        let calls = self.calls.as_ref().ok_or_else(|| {
            NotifyError::config("a call that asks for a key needs the daemon to answer it")
        })?;
        let (_, incident) = spoken(msg);
        let call = Call::new(
            &self.name,
            msg.items().map(|(p, _)| p.clone()).collect(),
            incident.id,
            script(msg),
            self.ring,
        );
        let token = calls.open(call);
        let url = match self.callback(&token) {
            Ok(u) => u,
            Err(e) => {
                calls.forget(&token);
                return Err(e);
            }
        };
        match self.place(&to, What::Url(&url)).await {
            Ok(sid) => {
                calls.placed(&token, &sid);
                debug!(%sid, to = %to, "Twilio placed the call");
                Ok(Sent::Placed { reference: sid })
            }
            Err(e) => {
                calls.forget(&token);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::fixtures;

    #[test]
    fn a_call_speaks_the_newest_critical_incident_and_counts_the_others() {
        let mut msg = fixtures::bundle(&[
            (7, "Old critical"),
            (8, "Newer warning"),
            (9, "Newest info"),
        ]);
        msg.incident
            .labels
            .insert("severity".into(), "critical".into());
        msg.more[0]
            .incident
            .labels
            .insert("severity".into(), "warning".into());
        let text = script(&msg);
        assert!(
            text.contains("incident 7. Old critical, critical."),
            "{text}"
        );
        assert!(text.ends_with("2 more incidents are open."), "{text}");
        msg.incident.labels.clear();
        assert!(
            script(&msg).contains("incident 9."),
            "the newest without a critical one"
        );
    }
}
