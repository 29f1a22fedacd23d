use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem, SecretRef, check_http_url,
    default_attempts, default_timeout, secret,
};
use super::{Delivery, Reaches};
use crate::config::types::HumanDuration;
use crate::notify::pushover::PushoverNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushoverConfig {
    /// The application's API token; the user key comes from the contact method's `to`.
    pub app_token_file: Option<PathBuf>,
    pub app_token_env: Option<String>,
    /// The API base; only tests change it.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Severities sent as emergency priority (2), which rings until acknowledged.
    #[serde(default = "default_emergency")]
    pub emergency_severities: Vec<String>,
    /// How often Pushover re-alerts an emergency page (at least 30s).
    #[serde(default = "default_retry")]
    pub retry: HumanDuration,
    /// How long it keeps re-alerting (at most 3h).
    #[serde(default = "default_expire")]
    pub expire: HumanDuration,
    /// How often tocsin polls an emergency page's receipt for an acknowledgement.
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub limits: LimitsConfig,
}

fn default_api_url() -> String {
    "https://api.pushover.net".to_string()
}
fn default_emergency() -> Vec<String> {
    vec!["critical".to_string()]
}
fn default_retry() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_expire() -> HumanDuration {
    HumanDuration::from_secs(3600)
}
fn default_poll() -> HumanDuration {
    HumanDuration::from_secs(30)
}

impl NotifierKind for PushoverConfig {
    fn address(&self) -> Address {
        Address::UserKey
    }

    fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![SecretRef::required(
            "app_token",
            &self.app_token_file,
            &self.app_token_env,
        )]
    }

    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        check_http_url("api_url", &self.api_url, &mut out);
        if self.retry.0.as_secs() < 30 {
            out.push(Problem::new(
                "retry",
                "retry must be at least 30s (Pushover's minimum)",
            ));
        }
        if self.expire.0.as_secs() > 10800 || self.expire.0.is_zero() {
            out.push(Problem::new(
                "expire",
                "expire must be between 1s and 3h (Pushover's maximum)",
            ));
        }
        if self.poll_interval.0.as_secs() < 5 {
            out.push(Problem::new(
                "poll_interval",
                "poll_interval must be at least 5s (Pushover asks clients not to poll faster)",
            ));
        }
        out
    }

    fn delivery(&self) -> Option<Delivery<'_>> {
        Delivery::of(self.timeout, self.max_attempts, &self.limits)
    }

    /// Emergency pages ring a phone.
    fn reaches(&self) -> Reaches {
        Reaches::Ringing
    }

    fn build(
        &self,
        name: &str,
        secrets: &NotifierSecrets,
        cx: &BuildContext,
        previous: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        Ok(Arc::new(PushoverNotifier::new(
            name,
            self,
            secret(secrets, "app_token"),
            cx,
            previous,
        )?))
    }
}
