use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{
    Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem, SecretRef, check_http_url,
    default_attempts, default_timeout, secret,
};
use crate::config::types::{HumanDuration, RateLimit};
use crate::notify::WebhookNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookNotifierConfig {
    pub url: String,
    /// Per-request timeout (connect + send + response).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// How many attempts a transient failure (timeout, 5xx, 429) gets before the page fails.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// File holding a bearer token sent as `Authorization: Bearer ...`.
    pub bearer_token_file: Option<PathBuf>,
    /// Environment variable holding that bearer token.
    pub bearer_token_env: Option<String>,
    #[serde(default)]
    pub limits: LimitsConfig,
}

impl NotifierKind for WebhookNotifierConfig {
    fn address(&self) -> Address {
        Address::None
    }

    fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![SecretRef::optional(
            "bearer_token",
            &self.bearer_token_file,
            &self.bearer_token_env,
        )]
    }

    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        check_http_url("url", &self.url, &mut out);
        out
    }

    fn timeout_and_attempts(&self) -> Option<(Duration, u32)> {
        Some((self.timeout.0, self.max_attempts))
    }

    fn limits_config(&self) -> Option<&LimitsConfig> {
        Some(&self.limits)
    }

    /// A webhook's destination is a machine: only the overall limit, and only when set.
    fn default_per_destination(&self) -> Vec<RateLimit> {
        Vec::new()
    }

    fn limited_by_default(&self) -> bool {
        false
    }

    fn build(
        &self,
        _name: &str,
        secrets: &NotifierSecrets,
        _: &BuildContext,
        _: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        Ok(Arc::new(WebhookNotifier::new(
            &self.url,
            self.timeout.0,
            secret(secrets, "bearer_token"),
        )?))
    }
}
