use std::path::PathBuf;

use serde::Deserialize;

use super::{LimitsConfig, Problem, SecretRef, check_http_url, default_attempts, default_timeout};
use crate::config::types::HumanDuration;

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

impl NtfyConfig {
    pub fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![SecretRef::optional(
            "token",
            &self.token_file,
            &self.token_env,
        )]
    }

    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        check_http_url("url", &self.url, &mut out);
        out
    }
}
