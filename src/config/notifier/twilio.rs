use std::path::PathBuf;

use serde::Deserialize;

use super::{
    LimitsConfig, Problem, SecretRef, check_http_url, default_attempts, default_segments,
    default_timeout,
};
use crate::config::types::HumanDuration;

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

fn default_api_url() -> String {
    "https://api.twilio.com".to_string()
}

impl TwilioConfig {
    pub fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![SecretRef::required(
            "auth_token",
            &self.auth_token_file,
            &self.auth_token_env,
        )]
    }

    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        check_http_url("api_url", &self.api_url, &mut out);
        if !self.account_sid.starts_with("AC") {
            out.push(Problem::new(
                "account_sid",
                format!(
                    "account_sid {:?} must start with AC (see the Twilio console)",
                    self.account_sid
                ),
            ));
        }
        if self.from.is_none() && self.messaging_service_sid.is_none() {
            out.push(Problem::new(
                "from",
                "set from (a Twilio number like \"+15550100\") or messaging_service_sid",
            ));
        }
        if self.segments == 0 {
            out.push(Problem::new("segments", "segments must be at least 1"));
        }
        out
    }
}
