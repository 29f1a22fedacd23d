//! `type = "gotify"`: posts the page to a Gotify server as an application message.
//!
//! The app token (`X-Gotify-Key`) decides where the message goes, so a contact method
//! needs no address. Tapping the notification opens the ack link's confirm page
//! (`client::notification.click`).

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};

use super::http_client;
use super::message::clean;
use super::message::{bounded, worst_severity};
use super::webhook::classify_status;
use super::{Message, Notifier, NotifyError};
use crate::config::{GotifyConfig, Secret};
use crate::engine::PageKind;

/// Gotify stores any length; phones show a few lines. Same bound as ntfy.
const MAX_MESSAGE_BYTES: usize = 4000;
const MAX_TITLE_BYTES: usize = 250;

pub struct GotifyNotifier {
    /// `{url}/message`.
    endpoint: reqwest::Url,
    client: reqwest::Client,
    app_token: Secret,
}

impl GotifyNotifier {
    pub fn new(cfg: &GotifyConfig, app_token: Option<Secret>) -> Result<Self, NotifyError> {
        let app_token = app_token
            .ok_or_else(|| NotifyError::config("gotify needs app_token_file or app_token_env"))?;
        let raw = format!("{}/message", cfg.url.trim_end_matches('/'));
        let endpoint = reqwest::Url::parse(&raw).map_err(|e| {
            NotifyError::config(format!(
                "gotify url {:?} is invalid: {e}",
                super::redact_text(&cfg.url)
            ))
        })?;
        Ok(GotifyNotifier {
            endpoint,
            client: http_client(cfg.timeout.0)?,
            app_token,
        })
    }
}

/// The body of `POST /message` (gotify.net/api-docs).
#[derive(Debug, Serialize)]
struct Post {
    title: String,
    message: String,
    priority: u8,
    extras: Value,
}

fn post(msg: &Message) -> Post {
    Post {
        title: bounded(&clean(&msg.headline()), MAX_TITLE_BYTES),
        message: bounded(&msg.body_text(), MAX_MESSAGE_BYTES),
        priority: priority(msg),
        extras: json!({
            "client::display": {"contentType": "text/plain"},
            "client::notification": {"click": {"url": msg.ack_url}},
        }),
    }
}

/// critical 8 (the Android app's sound-and-popup level), warning 5, else 4; acks and
/// resolves 2, which shows quietly.
fn priority(msg: &Message) -> u8 {
    match msg.page.kind {
        PageKind::Acknowledged | PageKind::Resolved => 2,
        _ => match worst_severity(msg) {
            Some(s) if s.eq_ignore_ascii_case("critical") => 8,
            Some(s) if s.eq_ignore_ascii_case("warning") => 5,
            _ => 4,
        },
    }
}

#[async_trait]
impl Notifier for GotifyNotifier {
    fn kind(&self) -> &'static str {
        "gotify"
    }

    async fn check(&self) -> Result<String, NotifyError> {
        crate::notify::reachable(&self.client, &self.endpoint).await
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let resp = self
            .client
            .post(self.endpoint.clone())
            .header("X-Gotify-Key", self.app_token.expose())
            .json(&post(msg))
            .send()
            .await
            .map_err(|e| {
                NotifyError::from_request(&format!("POST {}", super::redact(&self.endpoint)), &e)
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(super::Sent::Delivered);
        }
        let body = resp.text().await.unwrap_or_default();
        let e = classify_status(status, &body);
        // {"error":"Unauthorized","errorCode":401,"errorDescription":"you need to provide ..."}
        let described = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
            v["errorDescription"]
                .as_str()
                .map(|d| format!("HTTP {}: {d}", status.as_u16()))
        });
        Err(NotifyError {
            message: format!(
                "gotify {} refused the page: {}",
                self.endpoint,
                described.unwrap_or(e.message.clone())
            ),
            ..e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::ntfy::tests::message;
    use super::*;

    #[test]
    fn severity_decides_the_gotify_priority() {
        let p = |kind, sev| priority(&message(kind, "DiskFull", sev));
        assert_eq!(p(PageKind::Triggered, Some("critical")), 8);
        assert_eq!(p(PageKind::Escalated, Some("warning")), 5);
        assert_eq!(p(PageKind::Triggered, Some("info")), 4);
        assert_eq!(p(PageKind::Triggered, None), 4);
        assert_eq!(p(PageKind::Resolved, Some("critical")), 2);
        assert_eq!(p(PageKind::Acknowledged, Some("critical")), 2);
    }

    #[test]
    fn tapping_the_notification_opens_the_ack_link() {
        let m = message(PageKind::Triggered, "DiskFull", Some("critical"));
        let body = serde_json::to_value(post(&m)).unwrap();
        assert_eq!(
            body["extras"]["client::notification"]["click"]["url"],
            m.ack_url
        );
    }

    #[test]
    fn alert_title_cannot_break_the_notification_title() {
        let m = message(PageKind::Triggered, "Disk full\r\nsecond line", None);
        let title = post(&m).title;
        assert!(!title.contains(['\r', '\n']), "{title:?}");
    }
}
