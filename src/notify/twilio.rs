//! `type = "twilio"`: one SMS through Twilio's Messages API.
//!
//! `POST {api_url}/2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP basic auth
//! (account SID, auth token) and a form body `To`, `From` / `MessagingServiceSid`, `Body`.
//! Twilio answers 201 with the message resource (its `sid`), or an error object
//! `{"code": 21211, "message": "...", "more_info": "...", "status": 400}` whose code and
//! message go into the [`NotifyError`], so the incident history says why a number failed.
//! Replies come back through `POST /hooks/sms/twilio/{notifier}` (`http::twilio_inbound`).

use async_trait::async_trait;
use serde::Deserialize;
use tracing::debug;

use super::webhook::classify_status;
use super::{Message, Notifier, NotifyError, sms_text};
use crate::config::types::normalize_phone;
use crate::config::{Secret, TwilioConfig};
use crate::notify::message::clean;

/// Sends pages as SMS through one Twilio account.
pub struct TwilioNotifier {
    /// The account's Messages resource.
    api: Api,
    /// `From`: a Twilio number of the account.
    from: Option<String>,
    /// `MessagingServiceSid`: lets Twilio pick the sender from a pool.
    messaging_service_sid: Option<String>,
    /// How many segments the text may take (cost and readability).
    segments: u8,
}

/// One resource of one Twilio account that pages are created at (Messages, Calls).
pub(super) struct Api {
    /// `{api_url}/2010-04-01/Accounts/{sid}/{resource}.json`.
    pub(super) endpoint: reqwest::Url,
    /// The basic-auth user name.
    account_sid: String,
    /// The basic-auth password.
    auth_token: Secret,
    /// Bounded by the notifier's `timeout`.
    client: reqwest::Client,
}

impl Api {
    pub(super) fn new(
        api_url: &str,
        account_sid: &str,
        auth_token: Secret,
        resource: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, NotifyError> {
        Ok(Api {
            endpoint: resource_url(api_url, account_sid, resource)?,
            account_sid: account_sid.to_string(),
            auth_token,
            client: super::http_client(timeout)?,
        })
    }

    pub(super) async fn check(&self) -> Result<String, NotifyError> {
        crate::notify::reachable(&self.client, &self.endpoint).await
    }

    /// Creates one resource from `form`; Twilio's `sid` of it.
    pub(super) async fn create(&self, form: &[(&str, &str)]) -> Result<String, NotifyError> {
        let resp = self
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(form)
            .send()
            .await
            .map_err(|e| {
                // Connection refused, reset, timeouts: Twilio or the path to it may be back soon.
                NotifyError::from_request(&format!("POST {}", super::redact(&self.endpoint)), &e)
            })?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(refused(status, &body));
        }
        match serde_json::from_str::<Created>(&body) {
            Ok(Created { sid: Some(sid) }) => Ok(sid),
            // Something answered 2xx that is not Twilio's API.
            _ => Err(NotifyError::permanent(format!(
                "{} answered HTTP {status} without a sid; is api_url right? body: {}",
                super::redact(&self.endpoint),
                clean(&body).chars().take(200).collect::<String>()
            ))),
        }
    }
}

impl TwilioNotifier {
    pub fn new(cfg: &TwilioConfig, auth_token: Option<Secret>) -> Result<Self, NotifyError> {
        let auth_token = auth_token.ok_or_else(|| {
            NotifyError::permanent(
                "the twilio notifier needs its auth token: set auth_token_file or auth_token_env",
            )
        })?;
        Ok(TwilioNotifier {
            api: Api::new(
                &cfg.api_url,
                &cfg.account_sid,
                auth_token,
                "Messages",
                cfg.timeout.0,
            )?,
            from: cfg.from.clone(),
            messaging_service_sid: cfg.messaging_service_sid.clone(),
            segments: cfg.segments,
        })
    }
}

/// `{api_url}/2010-04-01/Accounts/{sid}/{resource}.json`, the SID encoded as a path segment.
fn resource_url(
    api_url: &str,
    account_sid: &str,
    resource: &str,
) -> Result<reqwest::Url, NotifyError> {
    let bad = |why: String| NotifyError::permanent(format!("twilio api_url {api_url:?} {why}"));
    let mut url = reqwest::Url::parse(api_url).map_err(|e| bad(format!("is invalid: {e}")))?;
    url.path_segments_mut()
        .map_err(|()| bad("cannot have a path".to_string()))?
        .pop_if_empty()
        .extend([
            "2010-04-01",
            "Accounts",
            account_sid,
            &format!("{resource}.json"),
        ]);
    Ok(url)
}

/// What Twilio answers when it refuses a request.
#[derive(Debug, Deserialize)]
struct TwilioError {
    /// Twilio's error code (21211: invalid `To`; 20003: authentication failed).
    code: Option<u64>,
    message: Option<String>,
    more_info: Option<String>,
}

/// The part of the created message tocsin reads.
#[derive(Debug, Deserialize)]
struct Created {
    sid: Option<String>,
}

/// A refusal as a [`NotifyError`]: retryable as webhooks are (5xx, 429, 408), with
/// Twilio's code and message when the body has them.
fn refused(status: reqwest::StatusCode, body: &str) -> NotifyError {
    let mut err = classify_status(status, body);
    if let Ok(TwilioError {
        code,
        message: Some(message),
        more_info,
    }) = serde_json::from_str::<TwilioError>(body)
    {
        let code = code.map(|c| format!(" {c}")).unwrap_or_default();
        let more = more_info.map(|m| format!(" (see {m})")).unwrap_or_default();
        let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
            "; check account_sid and the auth token"
        } else {
            ""
        };
        err.message = format!(
            "Twilio refused the request, HTTP {status}, error{code}: {}{more}{hint}",
            clean(&message).chars().take(300).collect::<String>()
        );
    } else {
        err.message = format!("Twilio refused the request: {}", err.message);
    }
    err
}

#[async_trait]
impl Notifier for TwilioNotifier {
    fn kind(&self) -> &'static str {
        "twilio"
    }

    async fn check(&self) -> Result<String, NotifyError> {
        self.api.check().await
    }

    async fn send(&self, msg: &Message) -> Result<super::Sent, NotifyError> {
        let raw_to = msg.page.to.as_deref().ok_or_else(|| {
            NotifyError::bad_address("the contact method has no `to` phone number for twilio")
        })?;
        let to = normalize_phone(raw_to).ok_or_else(|| {
            NotifyError::permanent(format!(
                "{raw_to:?} is not a phone number in international form like +15550100"
            ))
        })?;
        let sms = sms_text::render(msg, self.segments);
        let mut form: Vec<(&str, &str)> = vec![("To", &to)];
        if let Some(from) = &self.from {
            form.push(("From", from));
        }
        if let Some(service) = &self.messaging_service_sid {
            form.push(("MessagingServiceSid", service));
        }
        let text = clean(&sms.text);
        form.push(("Body", &text));
        let sid = self.api.create(&form).await?;
        debug!(%sid, to = %to, "Twilio accepted the SMS");
        Ok(super::Sent::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn the_messages_url_is_twilios_path_under_any_api_base() {
        for base in ["https://api.twilio.com", "https://api.twilio.com/"] {
            assert_eq!(
                resource_url(base, "AC123", "Messages").unwrap().as_str(),
                "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
            );
        }
        assert_eq!(
            resource_url("http://127.0.0.1:9/fake", "AC1/../x", "Messages")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/fake/2010-04-01/Accounts/AC1%2F..%2Fx/Messages.json"
        );
        assert!(resource_url("not a url", "AC1", "Messages").is_err());
    }

    #[test]
    fn an_invalid_number_is_permanent_and_names_twilios_code() {
        let body = r#"{"code": 21211, "message": "The 'To' number 5551234 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        let e = refused(StatusCode::BAD_REQUEST, body);
        assert!(!e.transient);
        assert!(e.message.contains("21211"), "{}", e.message);
        assert!(
            e.message.contains("is not a valid phone number"),
            "{}",
            e.message
        );
    }

    #[test]
    fn overload_and_server_errors_are_retried_auth_errors_are_not() {
        for (status, transient) in [
            (StatusCode::TOO_MANY_REQUESTS, true),
            (StatusCode::INTERNAL_SERVER_ERROR, true),
            (StatusCode::SERVICE_UNAVAILABLE, true),
            (StatusCode::UNAUTHORIZED, false),
            (StatusCode::FORBIDDEN, false),
            (StatusCode::NOT_FOUND, false),
        ] {
            let e = refused(
                status,
                r#"{"code": 20003, "message": "Authenticate", "status": 401}"#,
            );
            assert_eq!(e.transient, transient, "{status}: {e:?}");
        }
        // A proxy's HTML error page still gets a status and a snippet.
        let e = refused(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>");
        assert!(e.transient);
        assert!(e.message.contains("502"), "{}", e.message);
    }
}
