//! The escalation state machine. Pure: `apply(now, input) -> effects`, no IO, no clock.

mod ack_silence;
mod escalation;
mod incidents;
mod labels;
mod maintenance;
mod matcher;
mod model;
mod policy;
mod roster;
mod silences;
mod window;

pub use ack_silence::{AckSilence, SilenceDone, SilenceOp};
pub(crate) use escalation::labels_hash;
pub(crate) use incidents::fingerprint_key;
pub use incidents::{Engine, RECENT_WINDOW};
pub use labels::LabelSet;
pub use maintenance::later_end;
pub use matcher::Matcher;
pub use model::*;
pub use policy::{
    EscalationConfig, MethodSnapshot, PolicySnapshot, SELF_TEST_POLICY, StepSnapshot, Target,
    WATCHDOG_POLICY,
};
pub use roster::{MAX_OVERRIDE, overrides_of};
pub use silences::{MAX_SILENCE, SilenceId, SilenceRecord};
pub use window::{WindowId, WindowRecord};

#[cfg(test)]
mod tests;
