use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem, SecretRef, check_http_url,
    default_attempts, default_segments, default_timeout, secret,
};
use super::{Delivery, Reaches};
use crate::config::types::HumanDuration;
use crate::notify::kannel::KannelNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KannelConfig {
    /// smsbox's sendsms URL, like `http://127.0.0.1:13013/cgi-bin/sendsms`.
    pub url: String,
    /// A `sendsms-user` of smsbox; its password comes from `password_file` or `password_env`.
    pub username: String,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// Sender number or name.
    pub from: Option<String>,
    /// Delivery reports: Kannel calls this URL (its `%d`-style escapes are passed through).
    pub dlr_url: Option<String>,
    /// Kannel `dlr-mask` sent with `dlr_url`.
    pub dlr_mask: Option<u32>,
    /// How many 160-character segments one message may use.
    #[serde(default = "default_segments")]
    pub segments: u8,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub limits: LimitsConfig,
}

impl NotifierKind for KannelConfig {
    fn address(&self) -> Address {
        Address::Phone
    }

    fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![SecretRef::required(
            "password",
            &self.password_file,
            &self.password_env,
        )]
    }

    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        check_http_url("url", &self.url, &mut out);
        if let Some(d) = &self.dlr_url {
            check_http_url("dlr_url", d, &mut out);
        }
        if self.segments == 0 {
            out.push(Problem::new("segments", "segments must be at least 1"));
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
        Ok(Arc::new(KannelNotifier::new(
            self,
            secret(secrets, "password"),
        )?))
    }
}
