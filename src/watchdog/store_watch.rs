//! Whether tocsin's own store takes writes, decided from what commits return.
//!
//! Every page is recorded before it is sent, so a store that cannot write (a full disk, a
//! filesystem remounted read-only, an I/O error) stops all paging, watchdog incidents
//! included: the one outage the watchdog's own incidents cannot report. Left alone it
//! is silent, and busy: a step that is due is retried on every turn of the engine loop.
//!
//! This watch is pure (results and instants in, decisions out) and decides three things:
//! - how long the loop waits before it writes again: the first failure is tried again
//!   at once (a sender's retry should not be refused for one bad write), then after half
//!   a second, doubling up to five, so a due step does not spin the loop and flood the
//!   log; meanwhile senders are answered 503 without a write being tried;
//! - whether tocsin calls itself healthy: not while commits fail, so `/healthz` answers
//!   503, the outside heartbeat is not pinged and peers page;
//! - when the first step of the watchdog policy is told directly, through messages that
//!   are not recorded (nothing can be), that tocsin pages nobody: once the writes have
//!   failed for [`ALARM_AFTER`], again every [`ALARM_EVERY`] while they still fail, and
//!   once more when a write works again.

use std::time::Duration;

use serde::Serialize;

use crate::engine::{
    EscalationConfig, MethodSnapshot, OverrideRecord, Page, PageKind, PolicySnapshot, Target,
};
use crate::time::{Timestamp, human, rfc3339};

/// How long writes must fail before anyone is told: one failed commit that the next
/// one makes good (a lock held by a backup tool) is not worth waking someone.
pub const ALARM_AFTER: Duration = Duration::from_secs(30);
/// How often the alarm is repeated while writes keep failing.
pub const ALARM_EVERY: Duration = Duration::from_secs(3600);
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The store's writes, as the engine loop has seen them.
#[derive(Debug, Clone, Default)]
pub struct StoreWatch {
    trouble: Option<Trouble>,
}

/// Writes that fail, for `/healthz`, `/api/v1/status` and `tocsin status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trouble {
    /// The first failure of this run of failures.
    #[serde(with = "rfc3339")]
    pub since: Timestamp,
    /// Failed writes since then.
    pub failures: u32,
    /// What the latest one said.
    pub error: String,
    /// No write is tried before this instant.
    #[serde(with = "rfc3339")]
    pub retry_at: Timestamp,
    /// When people were last told; `None` before the first alarm.
    #[serde(with = "rfc3339::option")]
    pub alarmed_at: Option<Timestamp>,
}

/// Who is told what, outside the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alarm {
    /// Writes have failed since `since`: nothing is recorded or paged.
    Down { since: Timestamp, error: String },
    /// Writes work again after failing from `since` until `until`.
    Back { since: Timestamp, until: Timestamp },
}

impl StoreWatch {
    /// A write failed at `now` with `error`; says whether to raise the alarm now.
    pub fn failed(&mut self, now: Timestamp, error: &str) -> Option<Alarm> {
        let t = self.trouble.get_or_insert_with(|| Trouble {
            since: now,
            failures: 0,
            error: String::new(),
            retry_at: now,
            alarmed_at: None,
        });
        t.failures = t.failures.saturating_add(1);
        t.error = error.to_string();
        let backoff = match t.failures {
            1 => Duration::ZERO,
            n => BACKOFF_FIRST
                .saturating_mul(1 << (n - 2).min(8))
                .min(BACKOFF_MAX),
        };
        t.retry_at = now.plus(backoff);
        let due = match t.alarmed_at {
            None => now.since(t.since) >= ALARM_AFTER,
            Some(last) => now.since(last) >= ALARM_EVERY,
        };
        if !due {
            return None;
        }
        t.alarmed_at = Some(now);
        Some(Alarm::Down {
            since: t.since,
            error: t.error.clone(),
        })
    }

    /// A write worked at `now`; says who must hear that it is over (only those told it
    /// had begun).
    pub fn wrote(&mut self, now: Timestamp) -> Option<Alarm> {
        let t = self.trouble.take()?;
        t.alarmed_at.map(|_| Alarm::Back {
            since: t.since,
            until: now,
        })
    }

    /// While writes fail: the earliest instant to try again.
    pub fn retry_at(&self) -> Option<Timestamp> {
        self.trouble.as_ref().map(|t| t.retry_at)
    }

    pub fn trouble(&self) -> Option<&Trouble> {
        self.trouble.as_ref()
    }
}

impl Alarm {
    /// The one line every message of the alarm carries.
    pub fn title(&self) -> String {
        match self {
            Alarm::Down { since, error } => format!(
                "tocsin cannot write its store since {since}: nothing is recorded or paged until it can ({error}). Free disk space or repair the data dir"
            ),
            Alarm::Back { since, until } => format!(
                "tocsin writes its store again, after {} of failures since {since}: paging has resumed",
                human(until.since(*since))
            ),
        }
    }

    /// Whether this is the trouble or its end.
    pub fn kind(&self) -> PageKind {
        match self {
            Alarm::Down { .. } => PageKind::Notice,
            Alarm::Back { .. } => PageKind::Resolved,
        }
    }

    /// One message per target of the watchdog policy's first step, each contact through
    /// their first method: the alarm cannot wait for a method's `after`, nor for a
    /// failover the store would have to record.
    /// A schedule among them is asked who is on call now.
    pub fn pages(
        &self,
        watchdog: &PolicySnapshot,
        cfg: &EscalationConfig,
        overrides: &[OverrideRecord],
        now: Timestamp,
    ) -> Vec<Page> {
        let Some(step) = watchdog.steps.first() else {
            return Vec::new();
        };
        let page = |target: &str, contact: Option<&str>, notifier: &str| Page {
            id: 0,
            incident: 0,
            at: now,
            kind: self.kind(),
            step: 0,
            cycle: 0,
            target: target.to_string(),
            contact: contact.map(str::to_string),
            notifier: notifier.to_string(),
            method: contact.map(|_| 0),
            to: None,
            topic: None,
            late_by_ms: None,
            reason: "tocsin's store cannot be written".to_string(),
            retry_until: None,
            hold_until: None,
        };
        let first_method = |name: &str, m: Option<&MethodSnapshot>, target: &str| {
            m.map(|m| Page {
                to: m.to.clone(),
                topic: m.topic.clone(),
                ..page(target, Some(name), &m.notifier)
            })
        };
        step.targets
            .iter()
            .flat_map(|t| match t {
                Target::Contact { name, methods } => first_method(name, methods.first(), name)
                    .into_iter()
                    .collect(),
                Target::Notifier { name } => vec![page(name, None, name)],
                Target::Schedule { name } => cfg
                    .oncall(name, overrides, now)
                    .map(|oc| oc.contacts)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|c| {
                        let methods = cfg.contacts.get(&c.name)?;
                        first_method(&c.name, methods.first(), &c.name)
                    })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{MethodSnapshot, StepSnapshot};

    fn at(s: &str) -> Timestamp {
        Timestamp::at(s)
    }

    #[test]
    fn a_failing_disk_is_retried_with_backoff_not_on_every_turn() {
        let mut w = StoreWatch::default();
        let t0 = at("2026-12-07T03:00:00Z");
        assert_eq!(w.failed(t0, "disk is full"), None);
        assert_eq!(
            w.retry_at(),
            Some(t0),
            "one bad write is tried again at once"
        );
        w.failed(t0, "disk is full");
        assert_eq!(w.retry_at(), Some(at("2026-12-07T03:00:00.500Z")));
        w.failed(at("2026-12-07T03:00:00.500Z"), "disk is full");
        assert_eq!(w.retry_at(), Some(at("2026-12-07T03:00:01.500Z")));
        w.failed(at("2026-12-07T03:00:01.500Z"), "disk is full");
        assert_eq!(w.retry_at(), Some(at("2026-12-07T03:00:03.500Z")));
        w.failed(at("2026-12-07T03:00:03.500Z"), "disk is full");
        assert_eq!(w.retry_at(), Some(at("2026-12-07T03:00:07.500Z")));
        w.failed(at("2026-12-07T03:00:07.500Z"), "disk is full");
        assert_eq!(
            w.retry_at(),
            Some(at("2026-12-07T03:00:12.500Z")),
            "capped at 5 s: a full disk that is cleared is noticed within seconds"
        );
        let t = w.trouble().unwrap();
        assert_eq!((t.since, t.failures), (t0, 6));
    }

    #[test]
    fn people_are_told_after_thirty_seconds_of_failures_then_hourly_then_when_it_is_over() {
        let mut w = StoreWatch::default();
        let t0 = at("2026-12-07T03:00:00Z");
        assert_eq!(w.failed(t0, "disk is full"), None);
        assert_eq!(w.failed(at("2026-12-07T03:00:29Z"), "disk is full"), None);
        let down = Alarm::Down {
            since: t0,
            error: "disk is full".into(),
        };
        assert_eq!(
            w.failed(at("2026-12-07T03:00:30Z"), "disk is full"),
            Some(down.clone())
        );
        assert_eq!(w.failed(at("2026-12-07T03:00:35Z"), "disk is full"), None);
        assert_eq!(w.failed(at("2026-12-07T03:59:59Z"), "disk is full"), None);
        assert_eq!(
            w.failed(at("2026-12-07T04:00:30Z"), "disk is full"),
            Some(down)
        );
        assert_eq!(
            w.wrote(at("2026-12-07T04:00:35Z")),
            Some(Alarm::Back {
                since: t0,
                until: at("2026-12-07T04:00:35Z")
            })
        );
        assert_eq!(w.trouble(), None);
        assert_eq!(w.retry_at(), None);
    }

    #[test]
    fn a_failure_the_next_write_makes_good_tells_nobody() {
        let mut w = StoreWatch::default();
        assert_eq!(w.failed(at("2026-12-07T03:00:00Z"), "locked"), None);
        assert_eq!(w.wrote(at("2026-12-07T03:00:01Z")), None);
        assert_eq!(
            w.failed(at("2026-12-07T03:00:40Z"), "locked"),
            None,
            "a new run of failures counts from its own start"
        );
    }

    #[test]
    fn the_alarm_reaches_each_contact_of_the_first_watchdog_step_through_their_first_method() {
        let method = |notifier: &str, to: &str| MethodSnapshot {
            notifier: notifier.into(),
            after: Duration::ZERO,
            to: Some(to.into()),
            topic: None,
        };
        let policy = PolicySnapshot {
            name: "ops".into(),
            repeat: 0,
            repeat_after: Duration::ZERO,
            steps: vec![
                StepSnapshot {
                    after: Duration::ZERO,
                    targets: vec![
                        Target::Contact {
                            name: "alice".into(),
                            methods: vec![method("sms", "+15550100"), method("mail", "a@x")],
                        },
                        Target::Contact {
                            name: "nobody".into(),
                            methods: vec![],
                        },
                        Target::Notifier {
                            name: "console".into(),
                        },
                    ],
                },
                StepSnapshot {
                    after: Duration::from_secs(600),
                    targets: vec![Target::Notifier {
                        name: "later".into(),
                    }],
                },
            ],
            page_recovery: true,
            resolve_on_ack: false,
        };
        let now = at("2026-12-07T03:00:30Z");
        let alarm = Alarm::Down {
            since: at("2026-12-07T03:00:00Z"),
            error: "database or disk is full".into(),
        };
        let cfg = crate::config::load_str(
            "[notifiers.console]\ntype = \"log\"\n[contacts.alice]\nmethods = [{ notifier = \"console\" }]\n[policies.p]\nsteps = [{ notify = [\"console\"] }]\n[[routes]]\npolicy = \"p\"\n",
            None,
        )
        .unwrap();
        let pages = alarm.pages(&policy, &EscalationConfig::from_config(&cfg), &[], now);
        let sent: Vec<_> = pages
            .iter()
            .map(|p| (p.target.as_str(), p.notifier.as_str(), p.to.as_deref()))
            .collect();
        assert_eq!(
            sent,
            vec![
                ("alice", "sms", Some("+15550100")),
                ("console", "console", None)
            ]
        );
        assert!(pages.iter().all(|p| p.kind == PageKind::Notice));
        assert!(alarm.title().contains("database or disk is full"));
    }
}
