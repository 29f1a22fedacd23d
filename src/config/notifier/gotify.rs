use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::Delivery;
use super::{
    Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem, SecretRef, check_http_url,
    default_attempts, default_timeout, secret,
};
use crate::config::types::HumanDuration;
use crate::notify::gotify::GotifyNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GotifyConfig {
    /// The server, like `https://gotify.example.com`.
    pub url: String,
    /// The application token (`X-Gotify-Key`).
    pub app_token_file: Option<PathBuf>,
    pub app_token_env: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub limits: LimitsConfig,
}

impl NotifierKind for GotifyConfig {
    fn address(&self) -> Address {
        Address::App
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
        Ok(Arc::new(GotifyNotifier::new(
            self,
            secret(secrets, "app_token"),
        )?))
    }
}
