use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem, SecretRef, check_http_url,
    default_attempts, default_segments, default_timeout, secret,
};
use super::{Delivery, Reaches};
use crate::config::types::HumanDuration;
use crate::notify::twilio::TwilioNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The account SID (`AC...`); the auth token comes from `auth_token_file` or `auth_token_env`.
    pub account_sid: String,
    pub auth_token_file: Option<PathBuf>,
    pub auth_token_env: Option<String>,
    /// The sending number (`+1555...`), unless `messaging_service_sid` is set.
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// The API base; only tests change it.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    #[serde(default = "default_segments")]
    pub segments: u8,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub limits: LimitsConfig,
}

pub(super) fn default_api_url() -> String {
    "https://api.twilio.com".to_string()
}

impl NotifierKind for TwilioConfig {
    fn address(&self) -> Address {
        Address::Phone
    }

    fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![SecretRef::required(
            "auth_token",
            &self.auth_token_file,
            &self.auth_token_env,
        )]
    }

    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        check_http_url("api_url", &self.api_url, &mut out);
        check_account_sid(&self.account_sid, &mut out);
        if self.from.is_none() && self.messaging_service_sid.is_none() {
            out.push(Problem::new(
                "from",
                "set from (a Twilio number like \"+15550100\") or messaging_service_sid",
            ));
        }
        if let Some(from) = &self.from
            && let Err(e) = twilio_sender(from)
        {
            out.push(Problem::new("from", e));
        }
        if let Some(sid) = &self.messaging_service_sid
            && !(sid.starts_with("MG")
                && sid.len() > 2
                && sid.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            out.push(Problem::new(
                "messaging_service_sid",
                format!(
                    "messaging_service_sid {sid:?} is not a Messaging Service SID: those start with MG (see the Twilio console)"
                ),
            ));
        }
        if self.segments == 0 {
            out.push(Problem::new("segments", "segments must be at least 1"));
        }
        out
    }

    fn delivery(&self) -> Option<Delivery<'_>> {
        Delivery::of(self.timeout, self.max_attempts, &self.limits)
    }

    fn reaches(&self) -> Reaches {
        Reaches::Phone
    }

    fn build(
        &self,
        _name: &str,
        secrets: &NotifierSecrets,
        _: &BuildContext,
        _: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        Ok(Arc::new(TwilioNotifier::new(
            self,
            secret(secrets, "auth_token"),
        )?))
    }
}

/// A Twilio account SID starts `AC`; anything else is a copy-paste of the wrong field.
pub(super) fn check_account_sid(sid: &str, out: &mut Vec<Problem>) {
    if !sid.starts_with("AC") {
        out.push(Problem::new(
            "account_sid",
            format!("account_sid {sid:?} must start with AC (see the Twilio console)"),
        ));
    }
}

/// What Twilio takes as `From` for an SMS: a number in E.164 form (`+15550199`), or an
/// alphanumeric sender ID (up to 11 letters, digits and spaces, at least one letter).
/// Anything else is refused by Twilio on every page, which is found out at 3 a.m.
pub(super) fn twilio_sender(from: &str) -> Result<(), String> {
    if let Some(digits) = from.strip_prefix('+') {
        let e164 = (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
        if e164 {
            return Ok(());
        }
        let hint = crate::config::types::normalize_phone(from)
            .map(|n| format!(", like {n:?}"))
            .unwrap_or_else(|| ", like \"+15550199\"".to_string());
        return Err(format!(
            "from {from:?} is not a number in E.164 form (a + and 7 to 15 digits, no spaces or dashes){hint}"
        ));
    }
    let alnum = !from.is_empty()
        && from.chars().count() <= 11
        && from.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
        && from.chars().any(|c| c.is_ascii_alphabetic());
    if alnum {
        return Ok(());
    }
    Err(format!(
        "from {from:?} is neither a number in E.164 form (like \"+15550199\") nor an alphanumeric sender ID (up to 11 letters, digits and spaces, at least one letter)"
    ))
}
