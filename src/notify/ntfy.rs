//! `type = "ntfy"`: publishes the page to an ntfy server as JSON, with an Ack button.
//!
//! ntfy's JSON form is a POST to the server's root (not to the topic URL) carrying the
//! topic in the body; it takes UTF-8 everywhere, unlike its header form. The Ack button
//! is an `http` action: the ntfy app POSTs to the signed ack link itself, so acking
//! needs no browser. The click target opens the same link's confirm page.
//!
//! This file also holds the two helpers every push notifier (ntfy, Pushover, Gotify)
//! shares: which severity a page pages with, and how a text is cut to a service's limit.

use async_trait::async_trait;
use serde::Serialize;

use super::http_client;
use super::message::{bounded, clean, worst_severity};
use super::webhook::classify_status;
use super::{Message, Notifier, NotifyError};
use crate::config::{NtfyConfig, Secret};
use crate::engine::PageKind;

/// ntfy.sh turns a message over 4096 bytes into an attachment (or refuses it where
/// attachments are off); stay below with room for the cut marker.
const MAX_MESSAGE_BYTES: usize = 4000;
/// Titles have no documented limit, but a phone shows one line of it.
const MAX_TITLE_BYTES: usize = 250;

pub struct NtfyNotifier {
    /// The server root: the JSON form is POSTed here, never to `{url}/{topic}`.
    url: reqwest::Url,
    client: reqwest::Client,
    /// Access token (`tk_...`) for servers with access control; sent as a bearer token.
    token: Option<Secret>,
}

impl NtfyNotifier {
    pub fn new(cfg: &NtfyConfig, token: Option<Secret>) -> Result<Self, NotifyError> {
        let url = reqwest::Url::parse(&cfg.url).map_err(|e| {
            NotifyError::config(format!(
                "ntfy url {:?} is invalid: {e}",
                super::redact_text(&cfg.url)
            ))
        })?;
        Ok(NtfyNotifier {
            url,
            client: http_client(cfg.timeout.0)?,
            token,
        })
    }
}

/// The JSON body of ntfy's "publish as JSON" (docs.ntfy.sh/publish/#publish-as-json).
#[derive(Debug, Serialize)]
struct Publish<'a> {
    topic: &'a str,
    title: String,
    message: String,
    /// 1 (min) to 5 (max); 5 breaks through Do Not Disturb on Android.
    priority: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'static str>,
    click: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action<'a>>,
}

/// An `http` action button: the app sends the request itself when it is tapped.
#[derive(Debug, Serialize)]
struct Action<'a> {
    action: &'static str,
    label: &'static str,
    url: &'a str,
    method: &'static str,
    /// Dismisses the notification once the ack went through.
    clear: bool,
}

fn publish<'a>(msg: &'a Message, topic: &'a str) -> Publish<'a> {
    let actions = if msg.wants_ack() {
        vec![Action {
            action: "http",
            label: "Ack",
            url: &msg.ack_url,
            method: "POST",
            clear: true,
        }]
    } else {
        Vec::new()
    };
    Publish {
        topic,
        title: bounded(&clean(&msg.headline()), MAX_TITLE_BYTES),
        message: bounded(&msg.body_text(), MAX_MESSAGE_BYTES),
        priority: priority(msg),
        tags: tags(msg),
        click: &msg.ack_url,
        actions,
    }
}

/// critical 5, warning 4, info 3, anything else 4; an ack 2 and a resolve 3, which
/// nobody has to act on.
fn priority(msg: &Message) -> u8 {
    match msg.page.kind {
        PageKind::Acknowledged => 2,
        PageKind::Resolved => 3,
        _ => match worst_severity(msg) {
            Some(s) if s.eq_ignore_ascii_case("critical") => 5,
            Some(s) if s.eq_ignore_ascii_case("info") => 3,
            _ => 4,
        },
    }
}

/// Tags that are ntfy emoji short codes show as an emoji before the title.
fn tags(msg: &Message) -> Vec<&'static str> {
    let tag = match msg.page.kind {
        PageKind::Acknowledged => "eyes",
        PageKind::Resolved => "white_check_mark",
        _ => match worst_severity(msg) {
            Some(s) if s.eq_ignore_ascii_case("critical") => "rotating_light",
            Some(s) if s.eq_ignore_ascii_case("warning") => "warning",
            Some(s) if s.eq_ignore_ascii_case("info") => "information_source",
            _ => "bell",
        },
    };
    vec![tag]
}

#[async_trait]
impl Notifier for NtfyNotifier {
    fn kind(&self) -> &'static str {
        "ntfy"
    }

    async fn check(&self) -> Result<String, NotifyError> {
        crate::notify::reachable(&self.client, &self.url).await
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let Some(topic) = msg.page.topic.as_deref() else {
            return Err(NotifyError::permanent(format!(
                "ntfy page to {} has no topic: give the contact method topic = \"...\"",
                msg.page.target
            )));
        };
        let mut req = self
            .client
            .post(self.url.clone())
            .json(&publish(msg, topic));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        let resp = req.send().await.map_err(|e| {
            NotifyError::from_request(&format!("POST {}", super::redact(&self.url)), &e)
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(super::Sent::Delivered);
        }
        // ntfy answers {"code":40101,"http":401,"error":"unauthorized","link":"..."}.
        let body = resp.text().await.unwrap_or_default();
        let e = classify_status(status, &body);
        Err(NotifyError {
            message: format!("ntfy {} refused topic {topic:?}: {}", self.url, e.message),
            ..e
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::notify::message::fixtures;

    /// A page of `kind` about incident 7 titled `title`, labelled with `severity`, to
    /// alice's push topic.
    pub(in crate::notify) fn message(
        kind: PageKind,
        title: &str,
        severity: Option<&str>,
    ) -> Message {
        let mut m = fixtures::message(7, kind, title);
        m.page.notifier = "push".into();
        m.page.to = Some("uQiRzpo4DXghDmr9QzzfQu27cmVRsG".into());
        m.page.topic = Some("alice-pager".into());
        if let Some(sev) = severity {
            m.incident
                .labels
                .insert("severity".to_string(), sev.to_string());
        }
        m
    }

    #[test]
    fn severity_decides_how_loud_the_phone_rings() {
        let p = |kind, sev| priority(&message(kind, "DiskFull", sev));
        assert_eq!(p(PageKind::Triggered, Some("critical")), 5);
        assert_eq!(p(PageKind::Escalated, Some("warning")), 4);
        assert_eq!(p(PageKind::Triggered, Some("info")), 3);
        assert_eq!(p(PageKind::Triggered, None), 4);
        assert_eq!(p(PageKind::Triggered, Some("unheard-of")), 4);
        assert_eq!(p(PageKind::Acknowledged, Some("critical")), 2);
        assert_eq!(p(PageKind::Resolved, Some("critical")), 3);
    }

    #[test]
    fn an_open_page_has_an_ack_button_that_posts_to_the_link() {
        let m = message(PageKind::Triggered, "DiskFull", Some("critical"));
        let body = serde_json::to_value(publish(&m, "alice-pager")).unwrap();
        assert_eq!(body["topic"], "alice-pager");
        assert_eq!(body["tags"], serde_json::json!(["rotating_light"]));
        assert_eq!(body["click"], m.ack_url);
        assert_eq!(
            body["actions"],
            serde_json::json!([{"action": "http", "label": "Ack", "url": m.ack_url,
                                "method": "POST", "clear": true}])
        );
        let resolved = message(PageKind::Resolved, "DiskFull", Some("critical"));
        let body = serde_json::to_value(publish(&resolved, "alice-pager")).unwrap();
        assert!(body.get("actions").is_none(), "nothing to ack: {body}");
        assert_eq!(body["tags"], serde_json::json!(["white_check_mark"]));
    }

    #[test]
    fn alert_title_cannot_break_the_notification_title() {
        let m = message(
            PageKind::Triggered,
            "Disk full\r\nX-Evil: 1\u{7}",
            Some("critical"),
        );
        let title = publish(&m, "t").title;
        assert!(!title.contains(['\r', '\n', '\u{7}']), "{title:?}");
        assert!(title.contains("Disk full"), "{title:?}");
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let s = "é".repeat(3000);
        let cut = bounded(&s, MAX_MESSAGE_BYTES);
        assert!(cut.len() <= MAX_MESSAGE_BYTES);
        assert!(cut.ends_with('…'));
        assert_eq!(bounded("short", 10), "short");
    }
}
