//! `type = "webhook"`: POSTs the page as JSON to a URL.

use std::time::Duration;

use async_trait::async_trait;

use super::{Message, Notifier, NotifyError};
use crate::config::Secret;

pub struct WebhookNotifier {
    url: reqwest::Url,
    client: reqwest::Client,
    token: Option<Secret>,
}

impl WebhookNotifier {
    pub fn new(url: &str, timeout: Duration, token: Option<Secret>) -> Result<Self, NotifyError> {
        let url = reqwest::Url::parse(url).map_err(|e| {
            NotifyError::config(format!(
                "webhook url {:?} is invalid: {e}",
                super::redact_text(url)
            ))
        })?;
        let client = super::http_client(timeout)?;
        Ok(WebhookNotifier { url, client, token })
    }
}

/// 5xx and 429 may pass; other 4xx will fail the same way again. 401 and 403 are the
/// credentials' fault.
pub(crate) fn classify_status(status: reqwest::StatusCode, body: &str) -> NotifyError {
    let msg = format!(
        "HTTP {status}: {}",
        super::message::clean(&body.chars().take(200).collect::<String>())
    );
    let transient = status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
    let kind = match status.as_u16() {
        401 | 403 => super::FailureKind::Auth,
        s => super::FailureKind::Http(s),
    };
    NotifyError::new(kind, transient, msg)
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    async fn check(&self) -> Result<String, NotifyError> {
        crate::notify::reachable(&self.client, &self.url).await
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let mut req = self.client.post(self.url.clone()).json(&msg.to_json());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        // Connection refused, reset, timeouts: the receiver may be back soon.
        let resp = req.send().await.map_err(|e| {
            NotifyError::from_request(&format!("POST {}", super::redact(&self.url)), &e)
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(super::Sent::Delivered);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(classify_status(status, &body))
    }
}
