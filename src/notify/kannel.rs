//! `type = "kannel"`: sends the page through Kannel's smsbox (`GET /cgi-bin/sendsms`).
//!
//! Kannel needs a `sendsms-user` for tocsin. For pages longer than one SMS it must allow
//! as many parts as `segments` (Kannel's `max-messages` defaults to 1) and concatenation:
//!
//! ```text
//! group = sendsms-user
//! username = tocsin
//! password = <the content of password_file>
//! max-messages = 3          # >= segments
//! concatenation = true
//! ```
//!
//! Kannel refuses a message without a sender unless smsbox has `global-sender`, so set
//! `from` here or there. smsbox answers `202 0: Accepted for delivery`, or `202 3:
//! Queued for later delivery` when no SMSC is connected (Kannel delivers it once one
//! is): both are a success for tocsin. Refusals (`403 Authorization failed for sendsms`,
//! `400 Sender missing ...`) will not change on a retry; 5xx, timeouts and a smsbox
//! that is not listening will.

use async_trait::async_trait;

use super::sms_text::{self, Encoding};
use super::webhook::classify_status;
use super::{Message, Notifier, NotifyError};
use crate::config::types::normalize_phone;
use crate::config::{KannelConfig, Secret};

/// The `dlr-mask` sent with `dlr_url` when none is configured: delivered (1) and
/// failed (2), the two reports worth knowing about.
const DEFAULT_DLR_MASK: u32 = 3;

pub struct KannelNotifier {
    /// smsbox's sendsms URL.
    url: reqwest::Url,
    /// Bounded by `timeout`, so one attempt never hangs the dispatcher.
    client: reqwest::Client,
    /// A `sendsms-user` of smsbox.
    username: String,
    password: Secret,
    /// Sender number or name; smsbox's `global-sender` when unset.
    from: Option<String>,
    /// Where Kannel reports delivery, with the mask of reports wanted.
    dlr: Option<(String, u32)>,
    /// How many SMS one page may use.
    segments: u8,
}

impl KannelNotifier {
    pub fn new(cfg: &KannelConfig, password: Option<Secret>) -> Result<Self, NotifyError> {
        let url = reqwest::Url::parse(&cfg.url).map_err(|e| {
            NotifyError::permanent(format!("kannel url {:?} is invalid: {e}", cfg.url))
        })?;
        let password = password.ok_or_else(|| {
            NotifyError::permanent(
                "the kannel notifier needs the sendsms-user's password: set password_file or password_env",
            )
        })?;
        let timeout = cfg.timeout.0;
        let client = super::http_client(timeout)?;
        Ok(KannelNotifier {
            url,
            client,
            username: cfg.username.clone(),
            password,
            from: cfg.from.clone(),
            dlr: cfg
                .dlr_url
                .clone()
                .map(|u| (u, cfg.dlr_mask.unwrap_or(DEFAULT_DLR_MASK))),
            segments: cfg.segments.max(1),
        })
    }

    /// The query of one sendsms request (the password included: never log it).
    fn query(&self, to: &str, sms: &sms_text::SmsText) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("username", self.username.clone()),
            ("password", self.password.expose().to_string()),
            ("to", to.to_string()),
            ("text", sms.text.clone()),
            // The text is UTF-8 either way; Kannel converts it to GSM-7 or UCS-2.
            ("charset", "UTF-8".to_string()),
        ];
        if sms.encoding == Encoding::Ucs2 {
            q.push(("coding", "2".to_string()));
        }
        if let Some(from) = &self.from {
            q.push(("from", from.clone()));
        }
        if let Some((url, mask)) = &self.dlr {
            q.push(("dlr-url", url.clone()));
            q.push(("dlr-mask", mask.to_string()));
        }
        q
    }
}

/// smsbox's answer to a sendsms request that it took (`0: Accepted for delivery`,
/// `3: Queued for later delivery`), or the error to report.
fn classify(status: reqwest::StatusCode, body: &str) -> Result<(), NotifyError> {
    let body = body.trim();
    if !status.is_success() {
        return Err(classify_status(status, body));
    }
    if body.starts_with("0:") || body.starts_with("3:") {
        return Ok(());
    }
    // Something answered 2xx that is not smsbox (a proxy's error page?): the message
    // may not have been taken, so try again.
    Err(NotifyError::transient(format!(
        "HTTP {status} with an answer that is not Kannel's \"0: Accepted for delivery\": {}",
        body.chars().take(200).collect::<String>()
    )))
}

#[async_trait]
impl Notifier for KannelNotifier {
    fn kind(&self) -> &'static str {
        "kannel"
    }

    async fn check(&self) -> Result<String, NotifyError> {
        crate::notify::reachable(&self.client, &self.url).await
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let raw_to = msg.page.to.as_deref().ok_or_else(|| {
            NotifyError::bad_address(
                "the contact method has no `to` phone number for kannel (to = \"+15550100\")",
            )
        })?;
        // Kannel reads spaces in `to` as several recipients: send the number as digits.
        let to = normalize_phone(raw_to).ok_or_else(|| {
            NotifyError::bad_address(format!(
                "{raw_to:?} is not a phone number in international form like +15550100"
            ))
        })?;
        let sms = sms_text::render(msg, self.segments);
        let resp = self
            .client
            .get(self.url.clone())
            .query(&self.query(&to, &sms))
            .send()
            .await
            .map_err(|e| {
                let hint = if e.is_connect() {
                    " (is smsbox running, with this sendsms-port?)"
                } else if e.is_timeout() {
                    " (no answer within the notifier's timeout)"
                } else {
                    ""
                };
                // The URL carries the password: the error is made without it.
                let mut err = NotifyError::from_request(
                    &format!("sendsms request to {}", super::redact(&self.url)),
                    &e,
                );
                err.message.push_str(hint);
                err
            })?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        classify(status, &body).map(|()| super::Sent::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn accepted_and_queued_are_both_delivered_to_kannel() {
        assert_eq!(
            classify(StatusCode::ACCEPTED, "0: Accepted for delivery"),
            Ok(())
        );
        assert_eq!(
            classify(StatusCode::ACCEPTED, "3: Queued for later delivery"),
            Ok(())
        );
    }

    #[test]
    fn a_refusal_is_permanent_and_an_outage_is_not() {
        let e = classify(StatusCode::FORBIDDEN, "Authorization failed for sendsms").unwrap_err();
        assert!(
            !e.transient && e.message.contains("Authorization failed"),
            "{e:?}"
        );
        let e = classify(
            StatusCode::BAD_REQUEST,
            "Sender missing and no global set, rejected",
        )
        .unwrap_err();
        assert!(!e.transient, "{e:?}");
        let e = classify(StatusCode::SERVICE_UNAVAILABLE, "Sending failed.").unwrap_err();
        assert!(e.transient, "{e:?}");
    }

    #[test]
    fn a_2xx_that_is_not_kannel_is_retried_with_its_body_shown() {
        let e = classify(StatusCode::OK, "<html>captive portal</html>").unwrap_err();
        assert!(e.transient && e.message.contains("captive portal"), "{e:?}");
    }

    #[tokio::test]
    async fn a_failed_request_never_shows_the_password_in_the_url() {
        // Nothing listens on port 9: the connection is refused, and reqwest's own error
        // text names the URL with its query, where Kannel's password travels.
        let client = reqwest::Client::new();
        let url = reqwest::Url::parse(
            "http://tocsin:s3cret-pw@127.0.0.1:9/cgi-bin/sendsms?username=tocsin&password=s3cret-pw&to=1",
        )
        .unwrap();
        let e = client.get(url.clone()).send().await.unwrap_err();
        let err = NotifyError::from_request(
            &format!("sendsms request to {}", crate::notify::redact(&url)),
            &e,
        );
        assert!(!err.message.contains("s3cret-pw"), "{}", err.message);
        assert!(
            err.message.contains("127.0.0.1:9/cgi-bin/sendsms"),
            "{}",
            err.message
        );
        assert_eq!(err.kind, crate::notify::FailureKind::Refused, "{err:?}");
        assert!(err.transient);
    }
}
