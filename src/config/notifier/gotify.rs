use std::path::PathBuf;

use serde::Deserialize;

use super::{LimitsConfig, Problem, SecretRef, check_http_url, default_attempts, default_timeout};
use crate::config::types::HumanDuration;

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

impl GotifyConfig {
    pub fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![SecretRef::required(
            "app_token",
            &self.app_token_file,
            &self.app_token_env,
        )]
    }

    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        check_http_url("url", &self.url, &mut out);
        out
    }
}
