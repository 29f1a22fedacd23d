//! Policies as the engine uses them: resolved, immutable, snapshotted into each incident.
//!
//! An incident keeps the policy it opened with (as JSON in the store), so editing
//! `alerts.toml` never changes an escalation that is already running.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::matcher::Matcher;
use crate::config::Config;
use crate::schedule::Calendar;

/// Key of the watchdog incidents' policy in [`EscalationConfig::policies`]; the `:` keeps
/// it apart from every name a user can write.
pub const WATCHDOG_POLICY: &str = ":watchdog";
/// Key of the scheduled self-test's policy.
pub const SELF_TEST_POLICY: &str = ":self-test";

/// A policy with every name resolved to what it pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    pub name: String,
    /// Extra passes after the first.
    pub repeat: u32,
    /// Gap between the last step of a pass and the start of the next pass.
    #[serde(with = "millis")]
    pub repeat_after: Duration,
    pub steps: Vec<StepSnapshot>,
    /// Everyone paged hears when the incident resolves (watchdog incidents: the channel
    /// is back), through the method that last reached them.
    #[serde(default)]
    pub page_recovery: bool,
    /// An ack ends the incident (the self-test: the ack is the proof it wanted).
    #[serde(default)]
    pub resolve_on_ack: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSnapshot {
    /// Offset from the start of the pass.
    #[serde(with = "millis")]
    pub after: Duration,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A person: their methods go out in order.
    Contact {
        name: String,
        methods: Vec<MethodSnapshot>,
    },
    /// A notifier paged directly (a log, a channel, a webhook).
    Notifier { name: String },
    /// Whoever the schedule has on call when the step fires, through the methods they
    /// have then.
    Schedule { name: String },
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Contact { name, .. }
            | Target::Notifier { name }
            | Target::Schedule { name } => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodSnapshot {
    pub notifier: String,
    /// Offset from when the contact was paged.
    #[serde(with = "millis")]
    pub after: Duration,
    pub to: Option<String>,
    pub topic: Option<String>,
}

impl PolicySnapshot {
    /// When the pass after the one that started at offset 0 starts.
    pub fn pass_length(&self) -> Duration {
        self.steps.last().map(|s| s.after).unwrap_or_default() + self.repeat_after
    }
}

/// The part of the config the engine needs: routes, policies, defaults.
#[derive(Debug, Clone)]
pub struct EscalationConfig {
    pub policies: BTreeMap<String, Arc<PolicySnapshot>>,
    pub routes: Vec<(Vec<Matcher>, String)>,
    /// `Duration::ZERO` means acks never expire.
    pub ack_timeout: Duration,
    /// Most alerts an incident keeps ([defaults] max_alerts_per_incident); the rest are
    /// only counted.
    pub max_alerts: usize,
    /// Who is on call when: a step naming a schedule asks it as the step fires.
    pub calendar: Arc<Calendar>,
    /// Every contact's methods as configured now, for the contacts a schedule puts on
    /// call (the policy snapshot names the schedule, not them).
    pub contacts: BTreeMap<String, Vec<MethodSnapshot>>,
    /// Schedules whose incoming person is told at the start of a shift.
    pub handoff_notices: std::collections::BTreeSet<String>,
    /// Farthest a maintenance window may end ([defaults] max_maintenance).
    pub max_maintenance: Duration,
    /// Contacts' quiet hours: pages about incidents ranked below `below` wait.
    pub quiet_hours: BTreeMap<String, crate::schedule::QuietHours>,
    /// The `severity` values, least severe first.
    pub severity_order: Vec<String>,
    /// How long an ack silences the incident's alerts in Alertmanager
    /// (`silence_on_ack.for`); `None`: acks silence nothing there.
    pub ack_silence: Option<Duration>,
}

impl EscalationConfig {
    /// Builds from a validated config (references are known to resolve).
    pub fn from_config(cfg: &Config) -> Self {
        let f = &cfg.file;
        let contacts: BTreeMap<String, Vec<MethodSnapshot>> = f
            .contacts
            .iter()
            .map(|(name, c)| {
                let methods = c
                    .methods
                    .iter()
                    .map(|m| MethodSnapshot {
                        notifier: m.notifier.clone(),
                        after: m.after.0,
                        to: m.to.clone(),
                        topic: m.topic.clone(),
                    })
                    .collect();
                (name.clone(), methods)
            })
            .collect();
        let target_for = |name: &String| -> Target {
            match contacts.get(name) {
                Some(methods) => Target::Contact {
                    name: name.clone(),
                    methods: methods.clone(),
                },
                None if f.schedules.contains_key(name) => Target::Schedule { name: name.clone() },
                None => Target::Notifier { name: name.clone() },
            }
        };
        let policies = f
            .policies
            .iter()
            .map(|(name, p)| {
                let steps: Vec<StepSnapshot> = p
                    .steps
                    .iter()
                    .map(|s| StepSnapshot {
                        after: s.after.0,
                        targets: s.notify.iter().map(target_for).collect(),
                    })
                    .collect();
                let last = steps.last().map(|s| s.after).unwrap_or_default();
                let snap = PolicySnapshot {
                    name: name.clone(),
                    repeat: p.repeat,
                    repeat_after: p.repeat_after.map(|d| d.0).unwrap_or(last),
                    steps,
                    page_recovery: p.page_recovery,
                    resolve_on_ack: false,
                };
                (name.clone(), Arc::new(snap))
            })
            .collect();
        let mut policies: BTreeMap<String, Arc<PolicySnapshot>> = policies;
        let everyone = StepSnapshot {
            after: Duration::ZERO,
            targets: f.contacts.keys().map(target_for).collect(),
        };
        let watchdog = match f.watchdog.policy.as_ref().and_then(|n| policies.get(n)) {
            Some(p) => PolicySnapshot {
                page_recovery: true,
                ..(**p).clone()
            },
            None => PolicySnapshot {
                name: "watchdog (every contact)".to_string(),
                repeat: 0,
                repeat_after: Duration::ZERO,
                steps: vec![everyone.clone()],
                page_recovery: true,
                resolve_on_ack: false,
            },
        };
        if let Some(st) = &f.watchdog.self_test {
            let first = watchdog.steps.first().map_or(everyone, |s| s.clone());
            let snap = PolicySnapshot {
                name: "self-test".to_string(),
                repeat: 0,
                repeat_after: Duration::ZERO,
                steps: vec![
                    StepSnapshot {
                        after: Duration::ZERO,
                        targets: vec![target_for(&st.contact)],
                    },
                    StepSnapshot {
                        after: st.ack_within.0,
                        targets: first.targets,
                    },
                ],
                page_recovery: false,
                resolve_on_ack: true,
            };
            policies.insert(SELF_TEST_POLICY.to_string(), Arc::new(snap));
        }
        policies.insert(WATCHDOG_POLICY.to_string(), Arc::new(watchdog));
        EscalationConfig {
            policies,
            routes: cfg
                .routes
                .iter()
                .map(|r| (r.matchers.clone(), r.policy.clone()))
                .collect(),
            ack_timeout: f.defaults.ack_timeout.0,
            max_alerts: f.defaults.max_alerts_per_incident as usize,
            calendar: Arc::new(cfg.calendar.clone()),
            contacts,
            max_maintenance: f.defaults.max_maintenance.0,
            quiet_hours: cfg.quiet_hours.clone(),
            severity_order: f.defaults.severity_order.clone(),
            ack_silence: cfg.silence_on_ack.as_ref().map(|s| s.duration),
            handoff_notices: f
                .schedules
                .iter()
                .filter(|(_, s)| s.notify_handoff)
                .map(|(n, _)| n.clone())
                .collect(),
        }
    }

    /// Who `schedule` has on call at `at` with these overrides (of any schedule);
    /// `None` when the config has no such schedule.
    pub fn oncall(
        &self,
        schedule: &str,
        overrides: &[super::model::OverrideRecord],
        at: crate::time::Timestamp,
    ) -> Option<crate::schedule::OnCall> {
        let mine = super::roster::overrides_of(overrides, schedule);
        self.calendar.oncall(schedule, &mine, at)
    }

    /// The policy for an incident with these labels: the first route whose matchers all match.
    pub fn route(&self, labels: &BTreeMap<String, String>) -> Option<Arc<PolicySnapshot>> {
        self.routes
            .iter()
            .find(|(m, _)| m.iter().all(|m| m.matches(labels)))
            .and_then(|(_, p)| self.policies.get(p).cloned())
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
