use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem, SecretRef, check_http_url,
    default_attempts, default_segments, default_timeout, secret,
};
use super::{Delivery, Reaches};
use crate::config::types::HumanDuration;
use crate::notify::http_sms::HttpSmsNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

/// Any SMS gateway with an HTTP API, by template. Placeholders `{to}`, `{text}`,
/// `{token}`, `{incident}` and `{page_id}` are replaced in `url`, `headers` and the
/// body, encoded for where they stand (URL-encoded in the URL and form fields, JSON
/// string-escaped in a JSON body).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSmsConfig {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body, if any.
    pub body: Option<HttpSmsBody>,
    /// Status codes that mean "sent"; by default any 2xx.
    pub success_status: Option<Vec<u16>>,
    /// Secret available to the templates as `{token}`.
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    #[serde(default = "default_segments")]
    pub segments: u8,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// `body = { json = '{"to": "{to}", "text": "{text}"}' }` or
/// `body = { form = { to = "{to}", text = "{text}" } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpSmsBody {
    Json(String),
    Form(BTreeMap<String, String>),
}

fn default_method() -> String {
    "POST".to_string()
}

impl NotifierKind for HttpSmsConfig {
    fn address(&self) -> Address {
        Address::Phone
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
        if !["GET", "POST", "PUT"].contains(&self.method.to_ascii_uppercase().as_str()) {
            out.push(Problem::new(
                "method",
                format!("method {:?} must be GET, POST or PUT", self.method),
            ));
        }
        if self.segments == 0 {
            out.push(Problem::new("segments", "segments must be at least 1"));
        }
        if let Some(codes) = &self.success_status
            && (codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)))
        {
            out.push(Problem::new(
                "success_status",
                "success_status is a list of HTTP status codes, like [200, 202]",
            ));
        }
        out
    }

    fn delivery(&self) -> Option<Delivery<'_>> {
        Delivery::of(self.timeout, self.max_attempts, &self.limits)
    }

    fn reaches(&self) -> Reaches {
        Reaches::Phone
    }

    fn build(
        &self,
        _name: &str,
        secrets: &NotifierSecrets,
        _: &BuildContext,
        _: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        Ok(Arc::new(HttpSmsNotifier::new(
            self,
            secret(secrets, "token"),
        )?))
    }
}
