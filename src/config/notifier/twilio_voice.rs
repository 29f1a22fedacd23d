use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::twilio::{check_account_sid, default_api_url, twilio_sender};
use super::{
    Address, Delivery, LimitsConfig, NotifierKind, NotifierSecrets, Problem, Reaches, SecretRef,
    check_http_url, default_attempts, default_timeout, secret,
};
use crate::config::types::HumanDuration;
use crate::notify::twilio_voice::TwilioVoiceNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

/// `type = "twilio_voice"`: pages by phone call through Twilio's Calls API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioVoiceConfig {
    /// The account SID (`AC...`); the auth token comes from `auth_token_file` or `auth_token_env`.
    pub account_sid: String,
    pub auth_token_file: Option<PathBuf>,
    pub auth_token_env: Option<String>,
    /// The calling number, a Twilio number of the account (`+1555...`).
    pub from: String,
    /// How long the phone rings before the call counts as not answered (Twilio's
    /// `Timeout`, 5 s to 600 s).
    #[serde(default = "default_ring")]
    pub ring: HumanDuration,
    /// How many times the message is spoken while no key is pressed.
    #[serde(default = "default_repeat")]
    pub repeat: u8,
    /// The API base; only tests change it.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub limits: LimitsConfig,
}

fn default_ring() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_repeat() -> u8 {
    3
}

impl NotifierKind for TwilioVoiceConfig {
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
        match twilio_sender(&self.from) {
            Err(e) => out.push(Problem::new("from", e)),
            Ok(()) if !self.from.starts_with('+') => out.push(Problem::new(
                "from",
                format!(
                    "from {:?} is an alphanumeric sender ID, which cannot place calls: use a Twilio number like \"+15550199\"",
                    self.from
                ),
            )),
            Ok(()) => {}
        }
        if !(5..=600).contains(&self.ring.0.as_secs()) {
            out.push(Problem::new(
                "ring",
                format!(
                    "ring must be between 5s and 600s (Twilio's limits), not {}",
                    crate::time::human(self.ring.0)
                ),
            ));
        }
        if !(1..=5).contains(&self.repeat) {
            out.push(Problem::new(
                "repeat",
                format!("repeat must be 1 to 5, not {}", self.repeat),
            ));
        }
        out
    }

    fn delivery(&self) -> Option<Delivery<'_>> {
        Delivery::of(self.timeout, self.max_attempts, &self.limits)
    }

    fn reaches(&self) -> Reaches {
        Reaches::Call
    }

    fn build(
        &self,
        name: &str,
        secrets: &NotifierSecrets,
        cx: &BuildContext,
        _: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        Ok(Arc::new(TwilioVoiceNotifier::new(
            name,
            self,
            secret(secrets, "auth_token"),
            cx,
        )?))
    }
}
