use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem};
use crate::config::irc::is_channel;
use crate::config::types::{HumanDuration, RateLimit};
use crate::notify::irc::IrcNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

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

impl NotifierKind for IrcNotifierConfig {
    fn address(&self) -> Address {
        Address::Irc
    }

    fn problems(&self) -> Vec<Problem> {
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

    fn timeout_and_attempts(&self) -> Option<(Duration, u32)> {
        Some((self.timeout.0, self.max_attempts))
    }

    fn limits_config(&self) -> Option<&LimitsConfig> {
        Some(&self.limits)
    }

    /// A channel reads fast but servers pace at ~1 line per 2 s: five lines, then one
    /// bundle per half minute instead of an hour-long queue under a storm.
    fn default_per_destination(&self) -> Vec<RateLimit> {
        vec![RateLimit::new(5, 30)]
    }

    /// Its health is the IRC link's, which the watchdog watches.
    fn has_check(&self) -> bool {
        false
    }

    fn through_irc_link(&self) -> bool {
        true
    }

    fn build(
        &self,
        _name: &str,
        _: &NotifierSecrets,
        cx: &BuildContext,
        _: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        Ok(Arc::new(IrcNotifier::new(self, cx.irc.clone())))
    }
}

fn default_irc_timeout() -> HumanDuration {
    HumanDuration::from_secs(60)
}

fn one() -> u32 {
    1
}
