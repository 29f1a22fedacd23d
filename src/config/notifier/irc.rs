use std::sync::Arc;

use serde::Deserialize;

use super::{Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem};
use super::{Delivery, Reaches};
use crate::config::irc::is_channel;
use crate::config::types::HumanDuration;
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

    fn delivery(&self) -> Option<Delivery<'_>> {
        Delivery::of(self.timeout, self.max_attempts, &self.limits)
    }

    fn reaches(&self) -> Reaches {
        Reaches::Chat
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
