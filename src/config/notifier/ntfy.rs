use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::Delivery;
use super::{
    Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem, SecretRef, check_http_url,
    default_attempts, default_timeout, secret,
};
use crate::config::types::HumanDuration;
use crate::notify::ntfy::NtfyNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyConfig {
    /// The server, like `https://ntfy.sh`; the topic comes from the contact method.
    pub url: String,
    /// Access token (`tk_...`) sent as a bearer token.
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub limits: LimitsConfig,
}

impl NotifierKind for NtfyConfig {
    fn address(&self) -> Address {
        Address::Topic
    }

    fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![SecretRef::optional(
            "token",
            &self.token_file,
            &self.token_env,
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

    fn build(
        &self,
        _name: &str,
        secrets: &NotifierSecrets,
        _: &BuildContext,
        _: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        Ok(Arc::new(NtfyNotifier::new(self, secret(secrets, "token"))?))
    }
}
