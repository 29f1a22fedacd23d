use serde::Deserialize;

use super::{LimitsConfig, Problem, SecretRef};
use crate::config::irc::is_channel;
use crate::config::types::HumanDuration;

/// Announcements through the `[sources.irc]` link.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrcNotifierConfig {
    /// Where a step naming this notifier announces: a channel the link joins. A contact
    /// method's `to` (a nick or another channel) overrides it.
    pub channel: String,
    /// Send NOTICEs instead of PRIVMSGs (bots conventionally never answer NOTICEs).
    #[serde(default)]
    pub notice: bool,
    /// How long a page may wait for the link's send queue before it counts as failed.
    #[serde(default = "default_irc_timeout")]
    pub timeout: HumanDuration,
    /// Attempts; chat is best effort and a link that is down gets one summary line when
    /// it is back, so one attempt is the default.
    #[serde(default = "one")]
    pub max_attempts: u32,
    #[serde(default)]
    pub limits: LimitsConfig,
}

impl IrcNotifierConfig {
    pub fn secrets(&self) -> Vec<SecretRef<'_>> {
        Vec::new()
    }

    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !is_channel(&self.channel) {
            out.push(Problem::new(
                "channel",
                format!(
                    "{:?} is not a channel name: channels start with # or &",
                    self.channel
                ),
            ));
        }
        out
    }
}

fn default_irc_timeout() -> HumanDuration {
    HumanDuration::from_secs(60)
}

fn one() -> u32 {
    1
}
