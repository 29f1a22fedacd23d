//! Silences: known noise that opens no incident. A firing alert whose labels every
//! matcher of an active silence matches is dropped before it can open or join one, and
//! counted; a resolved one still passes, so an incident already open can resolve.
//! Made, refused and expired here, like every decision.

use std::collections::BTreeMap;
use std::time::Duration;

use super::incidents::Engine;
use super::model::{Actor, AlertBatch, AlertStatus, Effect, Refusal};
use crate::time::Timestamp;

use super::window::{Window, WindowId, WindowRecord, check_window};

/// Silences are numbered once.
pub type SilenceId = WindowId;

/// A silence as stored and listed.
pub type SilenceRecord = WindowRecord;

/// The longest silence: noise known for longer is a route or an alert rule to fix.
pub const MAX_SILENCE: Duration = Duration::from_secs(366 * 24 * 3600);

impl Engine {
    pub(super) fn add_silence(
        &mut self,
        now: Timestamp,
        matchers: Vec<String>,
        (from, to): (Timestamp, Timestamp),
        comment: String,
        by: &Actor,
        fx: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let record =
            WindowRecord::made(self.next_silence_id, matchers, (from, to), comment, by, now);
        let silence = check_window("silence", record.clone(), now, MAX_SILENCE)
            .map_err(Refusal::BadSilence)?;
        self.next_silence_id += 1;
        self.silences.push(silence);
        fx.push(Effect::Silence(record));
        Ok(())
    }

    /// Ends a silence now; one that has not started yet is ended before it starts.
    pub(super) fn expire_silence(
        &mut self,
        now: Timestamp,
        id: SilenceId,
        fx: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let Some(i) = self.silences.iter().position(|s| s.record.id == id) else {
            return Err(Refusal::NoSilence(id));
        };
        self.silences.remove(i);
        fx.push(Effect::SilenceExpired { id, at: now });
        Ok(())
    }

    /// Drops the firing alerts of `batch` that an active silence matches, and says how
    /// many were dropped by which silence.
    pub(super) fn apply_silences(
        &self,
        now: Timestamp,
        batch: &mut AlertBatch,
        fx: &mut Vec<Effect>,
    ) {
        if self.silences.is_empty() {
            return;
        }
        let mut dropped: BTreeMap<SilenceId, u64> = BTreeMap::new();
        batch.alerts.retain(|a| {
            if a.status != AlertStatus::Firing {
                return true;
            }
            let labels = a.labels.to_map();
            match self
                .silences
                .iter()
                .find(|s| s.record.active(now) && s.matches(&labels))
            {
                Some(s) => {
                    *dropped.entry(s.record.id).or_default() += 1;
                    false
                }
                None => true,
            }
        });
        for (silence, alerts) in dropped {
            fx.push(Effect::Silenced { silence, alerts });
        }
    }

    /// Silences that ended silence nothing any more; the store keeps them for the list.
    pub(super) fn prune_silences(&mut self, now: Timestamp) {
        self.silences.retain(|s| s.record.to > now);
    }

    /// Silences back from the store on start, and the next id to hand out. Answers
    /// those whose matchers no longer parse (they did when they were made), left out.
    pub fn restore_silences(
        &mut self,
        silences: Vec<SilenceRecord>,
        next_id: SilenceId,
    ) -> Vec<(SilenceId, String)> {
        self.next_silence_id = next_id.max(1);
        let mut broken = Vec::new();
        self.silences = silences
            .into_iter()
            .filter_map(|r| {
                let id = r.id;
                Window::new(r).map_err(|e| broken.push((id, e))).ok()
            })
            .collect();
        self.silences.sort_by_key(|s| s.record.id);
        broken
    }

    /// The silences in force or ahead, in the order they were made.
    pub fn silences(&self) -> impl Iterator<Item = &SilenceRecord> {
        self.silences.iter().map(|s| &s.record)
    }
}
