use std::path::PathBuf;

use serde::Deserialize;

use super::{LimitsConfig, Problem, SecretRef, check_http_url, default_attempts, default_timeout};
use crate::config::types::HumanDuration;

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

impl WebhookNotifierConfig {
    pub fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![SecretRef::optional(
            "bearer_token",
            &self.bearer_token_file,
            &self.bearer_token_env,
        )]
    }

    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        check_http_url("url", &self.url, &mut out);
        out
    }
}
