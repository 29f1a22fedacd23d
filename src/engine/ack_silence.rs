//! An ack that silences Alertmanager (`[sources.alertmanager] silence_on_ack`): the
//! decisions. Acked → create a silence on the incident's group labels for `for`; still
//! acked as its end nears → extend it (the executor extends only while the alerts still
//! fire); unacked, ack expired or resolved → expire it. Whatever Alertmanager answers
//! comes back as [`Input::AckSilenceDone`] and is written in the history; a failure is
//! retried, and never blocks or undoes the ack.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::escalation::{Ctx, Live};
use super::model::{EventKind, IncidentId, IncidentState};
use crate::time::{Timestamp, human};

/// A failed call to Alertmanager is tried again this much later.
pub const RETRY: Duration = Duration::from_secs(60);

/// Where an incident's Alertmanager silence stands; persisted with its escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckSilence {
    /// Alertmanager's id, once it answered.
    pub id: Option<String>,
    /// When the silence ends.
    pub until: Timestamp,
    /// When to act next: extend it, or try a failed create again; `None` while waiting
    /// for an answer, or once its alerts stopped firing.
    pub next: Option<Timestamp>,
}

/// What the executor is asked to do in Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceOp {
    Create {
        incident: IncidentId,
        matchers: BTreeMap<String, String>,
        until: Timestamp,
        comment: String,
    },
    /// Extend only while an alert of `matchers` still fires.
    Extend {
        incident: IncidentId,
        id: String,
        matchers: BTreeMap<String, String>,
        until: Timestamp,
        comment: String,
    },
    Expire {
        incident: IncidentId,
        id: String,
    },
}

/// What Alertmanager answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceDone {
    Created {
        id: String,
    },
    Extended {
        id: String,
    },
    /// Its alerts no longer fire: the silence is left to end.
    NotFiring,
    Expired {
        id: String,
    },
    Failed {
        error: String,
    },
}

/// When the silence is extended: a quarter of its length before it ends.
fn extend_at(now: Timestamp, until: Timestamp) -> Timestamp {
    now.plus(until.since(now) * 3 / 4)
}

impl Live {
    fn came_from_alertmanager(&self) -> bool {
        self.group.starts_with("alertmanager\u{1f}")
    }

    fn silence_comment(&self) -> String {
        format!(
            "acked in tocsin #{} by {}",
            self.id,
            self.acked_by.as_deref().unwrap_or("someone")
        )
    }

    /// Just acked: silence its group in Alertmanager, if configured and it came from there.
    pub(super) fn silence_on_ack(&mut self, cx: &mut Ctx<'_>) {
        let Some(length) = cx.roster.cfg.ack_silence else {
            return;
        };
        let matchers = self.labels.to_map();
        if !self.came_from_alertmanager() || matchers.values().all(String::is_empty) {
            return;
        }
        if self
            .esc
            .ack_silence
            .as_ref()
            .is_some_and(|s| s.id.is_some())
        {
            return;
        }
        let until = cx.now.plus(length);
        self.esc.ack_silence = Some(AckSilence {
            id: None,
            until,
            next: None,
        });
        cx.fx
            .push(super::model::Effect::AckSilence(SilenceOp::Create {
                incident: self.id,
                matchers,
                until,
                comment: self.silence_comment(),
            }));
    }

    /// No longer acked: the silence goes.
    pub(super) fn end_ack_silence(&mut self, cx: &mut Ctx<'_>) {
        if let Some(s) = self.esc.ack_silence.take()
            && let Some(id) = s.id
        {
            cx.fx
                .push(super::model::Effect::AckSilence(SilenceOp::Expire {
                    incident: self.id,
                    id,
                }));
        }
    }

    /// The next moment the silence needs tending.
    pub(super) fn ack_silence_due(&self) -> Option<Timestamp> {
        match self.state {
            IncidentState::Acknowledged => self.esc.ack_silence.as_ref().and_then(|s| s.next),
            _ => None,
        }
    }

    /// Extends the silence, or tries a failed create again, when due.
    pub(super) fn tend_ack_silence(&mut self, cx: &mut Ctx<'_>) {
        if self.state != IncidentState::Acknowledged {
            return;
        }
        let Some(length) = cx.roster.cfg.ack_silence else {
            return;
        };
        let Some(s) = self.esc.ack_silence.clone() else {
            return;
        };
        if s.next.is_none_or(|t| t > cx.now) {
            return;
        }
        let matchers = self.labels.to_map();
        let until = cx.now.plus(length);
        let comment = self.silence_comment();
        let op = match s.id {
            Some(id) => SilenceOp::Extend {
                incident: self.id,
                id,
                matchers,
                until,
                comment,
            },
            None => SilenceOp::Create {
                incident: self.id,
                matchers,
                until,
                comment,
            },
        };
        if let Some(s) = self.esc.ack_silence.as_mut() {
            s.next = None;
        }
        cx.fx.push(super::model::Effect::AckSilence(op));
    }

    /// Alertmanager answered; `until` is the end that was asked for.
    pub(super) fn ack_silence_done(
        &mut self,
        cx: &mut Ctx<'_>,
        done: SilenceDone,
        until: Timestamp,
    ) {
        let acked = self.state == IncidentState::Acknowledged;
        let detail = match done {
            SilenceDone::Created { id } | SilenceDone::Extended { id } if !acked => {
                // Unacked or resolved while Alertmanager was asked: take it back.
                cx.fx
                    .push(super::model::Effect::AckSilence(SilenceOp::Expire {
                        incident: self.id,
                        id: id.clone(),
                    }));
                format!("silence {id} made in Alertmanager after the ack ended; expiring it")
            }
            SilenceDone::Created { id } => {
                let made = format!("silenced in Alertmanager as {id} until {until}");
                self.esc.ack_silence = Some(AckSilence {
                    id: Some(id),
                    until,
                    next: Some(extend_at(cx.now, until)),
                });
                made
            }
            SilenceDone::Extended { id } => {
                let moved = format!("silence {id} in Alertmanager extended until {until}");
                self.esc.ack_silence = Some(AckSilence {
                    id: Some(id),
                    until,
                    next: Some(extend_at(cx.now, until)),
                });
                moved
            }
            SilenceDone::NotFiring => {
                let end = self.esc.ack_silence.as_ref().map(|s| s.until);
                if let Some(s) = self.esc.ack_silence.as_mut() {
                    s.next = None;
                }
                match end {
                    Some(t) => format!(
                        "its alerts no longer fire in Alertmanager; the silence is not extended and ends at {t}"
                    ),
                    None => "its alerts no longer fire in Alertmanager".to_string(),
                }
            }
            SilenceDone::Expired { id } => format!("silence {id} in Alertmanager expired"),
            SilenceDone::Failed { error } => {
                if acked && let Some(s) = self.esc.ack_silence.as_mut() {
                    s.next = Some(cx.now.plus(RETRY));
                }
                format!(
                    "could not reach Alertmanager about the silence ({error}); the ack stands, trying again in {}",
                    human(RETRY)
                )
            }
        };
        cx.event(self.id, EventKind::AckSilence, None, detail);
    }
}
