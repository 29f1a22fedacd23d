use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem, SecretRef, check_http_url,
    default_attempts, default_timeout, secret,
};
use super::{Delivery, Reaches};
use crate::config::types::HumanDuration;
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

    fn delivery(&self) -> Option<Delivery<'_>> {
        Delivery::of(self.timeout, self.max_attempts, &self.limits)
    }

    /// A webhook's destination is a machine: only the overall limit, and only when set.
    fn reaches(&self) -> Reaches {
        Reaches::Machine
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
