//! Durable state behind one trait.
//!
//! The engine's effects for a batch of inputs are committed in one transaction
//! ([`Store::commit`]); only after it returns are webhooks answered and pages sent.
//! Reads serve the API and the notifiers, and [`Store::restore`] rebuilds the engine on
//! start. SQL is kept portable (integer milliseconds, TEXT JSON, `ON CONFLICT ... DO
//! UPDATE`) so a PostgreSQL backend for two instances sharing state is a translation.

#[cfg(test)]
pub(crate) mod contract;
pub mod fence;
pub mod postgres;
pub mod sqlite;
mod stored;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::engine::{
    AlertStatus, Effect, EventKind, IncidentId, IncidentState, OverrideId, OverrideRecord, Page,
    PageId, PageKind, SilenceId, SilenceRecord, Via, WindowId, WindowRecord,
};

/// Defined beside the engine (which consumes it); re-exported here where stores build it.
pub use crate::engine::RestoredIncident;
use crate::time::{Timestamp, rfc3339};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// File name of the SQLite database inside the data dir.
pub const SQLITE_FILE: &str = "tocsin.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the store at {path}: {source}. Check that the data dir exists and is writable by tocsin"
    )]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The data dir, or a file of the store in it, cannot be made private to tocsin.
    #[error("cannot open the store: {0}")]
    DataDir(#[from] crate::data_dir::DataDirError),
    #[error("store write failed: {0}. The change was not recorded; the sender should retry")]
    Write(#[source] rusqlite::Error),
    #[error("store read failed: {0}")]
    Read(#[source] rusqlite::Error),
    #[error("stored data is corrupt ({what}): {detail}")]
    Corrupt { what: String, detail: String },
    #[error("the store's writer has stopped (tocsin is shutting down or the writer thread died)")]
    Closed,
    /// PostgreSQL failed; `kind` tells a database that cannot be reached (retry later)
    /// from one that answered no (fix the config). Never holds the password.
    #[error("PostgreSQL {kind} while {doing}: {source}. {hint}", hint = kind.hint())]
    Postgres {
        doing: &'static str,
        kind: postgres::PgFailure,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A commit under a leadership epoch that is no longer the lease's.
    #[error(
        "another instance leads now (this one held epoch {held}, the lease is at epoch {current}): nothing was recorded, and this instance must stop sending and follow"
    )]
    Fenced { held: u64, current: u64 },
    /// A store without an inbox (SQLite, one instance) was handed inbox rows to mark done.
    #[error("this store has no inbox: forwarded inputs exist only with a shared PostgreSQL store")]
    NoInbox,
}

/// What the engine needs to resume after a restart.
#[derive(Debug, Default)]
pub struct Restored {
    /// Incidents not resolved, with their escalation state.
    pub open: Vec<RestoredIncident>,
    /// Incidents resolved since the cut-off: a late duplicate of their alerts must not reopen them.
    pub recent_resolved: Vec<RestoredIncident>,
    /// Ids are never reused: one above the highest ever written.
    pub next_incident_id: IncidentId,
    pub next_page_id: PageId,
    /// Pages recorded as intents with no outcome: sent again (same id) on start.
    pub pending_pages: Vec<Page>,
    /// Overrides of schedules not deleted and not ended at the cut-off.
    pub overrides: Vec<OverrideRecord>,
    pub next_override_id: OverrideId,
    /// Silences not expired and not ended at the cut-off.
    pub silences: Vec<SilenceRecord>,
    pub next_silence_id: SilenceId,
    /// Maintenance windows not ended at the cut-off.
    pub maintenance: Vec<WindowRecord>,
    pub next_maintenance_id: WindowId,
}

/// What one pass of retention deleted: resolved incidents and what hung off them, and
/// overrides, silences and maintenance windows that ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub incidents: u64,
    pub alerts: u64,
    pub events: u64,
    pub pages: u64,
    pub windows: u64,
}

impl Deleted {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: Deleted) {
        self.incidents += other.incidents;
        self.alerts += other.alerts;
        self.events += other.events;
        self.windows += other.windows;
        self.pages += other.pages;
    }

    /// (what, count) for the metric and the log.
    pub fn by_kind(&self) -> [(&'static str, u64); 5] {
        [
            ("incidents", self.incidents),
            ("alerts", self.alerts),
            ("events", self.events),
            ("pages", self.pages),
            ("windows", self.windows),
        ]
    }
}

/// An incident as the API and the notifiers show it.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    pub id: IncidentId,
    pub state: IncidentState,
    pub title: String,
    pub group_key: String,
    pub source: String,
    /// What its alerts share (Alertmanager `commonLabels`; for IRC, the labels common
    /// to the group's firing alerts), as of the latest batch that changed an alert.
    /// Routing saw those of the first.
    pub labels: BTreeMap<String, String>,
    /// Firing alerts first, then the oldest; capped (20 in lists, 500 in one incident).
    pub alerts: Vec<AlertView>,
    /// How many alerts the incident has in all; `alerts` may list fewer.
    pub alerts_total: u64,
    pub alerts_firing: u64,
    /// Alerts not kept because the incident had `max_alerts_per_incident` already
    /// (like Alertmanager's `truncatedAlerts`): counted, not listed, not firing.
    pub alerts_truncated: u64,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
    #[serde(with = "rfc3339::option")]
    pub resolved_at: Option<Timestamp>,
    pub acked_by: Option<String>,
    #[serde(with = "rfc3339::option")]
    pub acked_at: Option<Timestamp>,
    #[serde(with = "rfc3339::option")]
    pub snoozed_until: Option<Timestamp>,
    #[serde(with = "rfc3339::option")]
    pub ack_expires_at: Option<Timestamp>,
    /// 1-based last step fired (0 before the first).
    pub step: u32,
    /// 0-based pass through the policy.
    pub cycle: u32,
    pub policy: String,
    #[serde(with = "rfc3339::option")]
    pub next_escalation_at: Option<Timestamp>,
    /// Only in the single-incident view: the most recent entries, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<EventView>>,
    /// With `history`, when older entries exist: pass it as `history_before` to read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_next: Option<EventId>,
    /// Only in the single-incident view: the most recent pages, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<Vec<PageView>>,
    /// With `pages`: how many pages the incident has in all; `pages` may list fewer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages_total: Option<u64>,
}

/// An entry of an incident's history, as stored (`events.id`): increases with every entry.
pub type EventId = u64;

/// Which incidents a list read returns, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    /// Only incidents in this state; `None` for every state.
    pub state: Option<IncidentState>,
    /// Only incidents older than this one (the `next` of the page before).
    pub before: Option<IncidentId>,
    /// At most this many incidents.
    pub limit: usize,
    /// Alerts listed per incident (firing first); 0 reads only the counts. A list
    /// reads this for every incident, so it is what makes a list cheap or dear.
    pub alerts: usize,
}

impl ListQuery {
    /// The newest `limit` incidents (of `state`), without their alerts.
    pub fn newest(state: Option<IncidentState>, limit: usize) -> Self {
        ListQuery {
            state,
            before: None,
            limit,
            alerts: 0,
        }
    }
}

/// One page of a list: the incidents and where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct IncidentPage {
    pub incidents: Vec<IncidentView>,
    /// The `before` of the next page; `None` when this page holds the oldest incident.
    pub next: Option<IncidentId>,
}

/// How much of one incident a read takes: an incident may hold thousands of alerts and,
/// after a year of refused IRC commands, a hundred thousand history entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    /// Alerts listed (firing first); `alerts_total` counts them all.
    pub alerts: usize,
    /// The most recent history entries; 0 leaves `history` out.
    pub history: usize,
    /// Only history entries older than this one (a `history_next`).
    pub history_before: Option<EventId>,
    /// The most recent pages; 0 leaves `pages` out.
    pub pages: usize,
}

impl Detail {
    /// What a message about the incident shows: its alerts, no history.
    pub const MESSAGE: Detail = Detail {
        alerts: 500,
        history: 0,
        history_before: None,
        pages: 0,
    };
    /// Only the incident's own fields and its alert counts.
    pub const SUMMARY: Detail = Detail {
        alerts: 0,
        history: 0,
        history_before: None,
        pages: 0,
    };
    /// The single-incident view's default: alerts, the last 100 history entries, the
    /// last 100 pages.
    pub const FULL: Detail = Detail {
        alerts: 500,
        history: 100,
        history_before: None,
        pages: 100,
    };
}

impl IncidentView {
    /// What a message about tocsin itself shows in place of an incident (a test page, a
    /// notice that the store cannot be written): id 0, no alerts, nothing stored.
    pub fn about_tocsin(
        title: String,
        group_key: &str,
        state: IncidentState,
        now: Timestamp,
    ) -> Self {
        IncidentView {
            id: 0,
            state,
            title,
            group_key: group_key.to_string(),
            source: "tocsin".to_string(),
            labels: BTreeMap::from([("severity".to_string(), "info".to_string())]),
            alerts: Vec::new(),
            alerts_total: 0,
            alerts_firing: 0,
            alerts_truncated: 0,
            created_at: now,
            updated_at: now,
            resolved_at: None,
            acked_by: None,
            acked_at: None,
            snoozed_until: None,
            ack_expires_at: None,
            step: 0,
            cycle: 0,
            policy: String::new(),
            next_escalation_at: None,
            history: None,
            history_next: None,
            pages: None,
            pages_total: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub fingerprint: String,
    pub status: AlertStatus,
    #[serde(with = "rfc3339")]
    pub starts_at: Timestamp,
    #[serde(with = "rfc3339::option")]
    pub ends_at: Option<Timestamp>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub generator_url: String,
    #[serde(with = "rfc3339")]
    pub received_at: Timestamp,
}

impl AlertView {
    /// `DiskFull db1: Disk almost full` from alertname, instance and summary, whichever exist.
    pub fn summary(&self) -> String {
        let mut s = self.labels.get("alertname").cloned().unwrap_or_default();
        if let Some(i) = self.labels.get("instance") {
            s.push(' ');
            s.push_str(i);
        }
        if let Some(sum) = self.annotations.get("summary") {
            s.push_str(": ");
            s.push_str(sum);
        }
        if s.is_empty() {
            s = self.fingerprint.clone();
        }
        s
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    #[serde(with = "rfc3339")]
    pub at: Timestamp,
    pub kind: EventKind,
    /// Who, as the history shows it ("alice via irc").
    pub actor: String,
    /// The channel they acted through.
    pub via: Via,
    /// Which link or gateway of it (an ack link's id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub detail: String,
}

crate::engine::named! {
    /// Where a page stands, as stored in `pages.status`.
    pub enum PageStatus {
        /// Intent recorded, outcome not (yet) known.
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
        /// Held by flood control until its incident no longer needed it.
        Cancelled = "cancelled",
        /// A call is ringing; delivered once a key is pressed.
        Placed = "placed",
        /// A call ended without a key.
        NotReached = "not_reached",
    }
}

impl PageStatus {
    /// The status an outcome leaves a page in.
    pub fn of(outcome: &crate::engine::Outcome) -> Self {
        use crate::engine::Outcome;
        match outcome {
            Outcome::Delivered { .. } => PageStatus::Delivered,
            Outcome::Failed { .. } => PageStatus::Failed,
            Outcome::Cancelled { .. } => PageStatus::Cancelled,
            Outcome::Placed { .. } => PageStatus::Placed,
            Outcome::NotReached { .. } => PageStatus::NotReached,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PageView {
    pub id: PageId,
    #[serde(with = "rfc3339")]
    pub at: Timestamp,
    pub kind: PageKind,
    pub step: u32,
    pub cycle: u32,
    pub target: String,
    pub notifier: String,
    pub to: Option<String>,
    pub reason: String,
    pub status: PageStatus,
    pub attempts: u32,
    pub error: Option<String>,
    #[serde(with = "rfc3339::option")]
    pub done_at: Option<Timestamp>,
}

/// Durable state. Implementations must make `commit` atomic and durable (fsync) before
/// returning `Ok`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes every effect in one transaction. `Page` effects are recorded as pending intents.
    async fn commit(&self, effects: Vec<Effect>) -> Result<(), StoreError>;

    /// Everything the engine needs to resume; `resolved_since` bounds the recently-resolved set.
    async fn restore(&self, resolved_since: Timestamp) -> Result<Restored, StoreError>;

    /// One page of incidents, newest first (see [`ListQuery`]).
    async fn incidents(&self, query: ListQuery) -> Result<IncidentPage, StoreError>;

    /// The page [`Store::incidents`] reads, handed to `each` one incident at a time as
    /// it is read, each dropped after: an answer built from them never holds the page's
    /// incidents and their alerts in memory all at once. Returns the page's `next`.
    async fn each_incident(
        &self,
        query: ListQuery,
        each: Box<dyn for<'v> FnMut(&'v IncidentView) + Send + 'static>,
    ) -> Result<Option<IncidentId>, StoreError>;

    /// One incident, as much of it as `detail` asks.
    async fn incident(
        &self,
        id: IncidentId,
        detail: Detail,
    ) -> Result<Option<IncidentView>, StoreError>;

    /// Overrides not deleted that end after `ending_after`, of one schedule or all, in
    /// the order they were made.
    async fn overrides(
        &self,
        schedule: Option<String>,
        ending_after: Timestamp,
    ) -> Result<Vec<OverrideRecord>, StoreError>;

    /// Silences not expired early that end after `ending_after`, in the order they were
    /// made.
    async fn silences(&self, ending_after: Timestamp) -> Result<Vec<SilenceRecord>, StoreError>;

    /// Maintenance windows that end after `ending_after`, in the order they were made.
    async fn maintenance(&self, ending_after: Timestamp) -> Result<Vec<WindowRecord>, StoreError>;

    /// One incident as a page about it shows it ([`Detail::MESSAGE`]), read apart from
    /// every other read: however many API and web reads are waiting, a page is never
    /// queued behind them.
    async fn incident_to_page(&self, id: IncidentId) -> Result<Option<IncidentView>, StoreError>;

    /// When the ack link `link` (its id) acknowledged incident `id`, if it did.
    async fn acked_by_link(
        &self,
        id: IncidentId,
        link: &str,
    ) -> Result<Option<Timestamp>, StoreError>;

    /// How many incidents are in each state.
    async fn counts(&self) -> Result<BTreeMap<IncidentState, u64>, StoreError>;

    /// The open (triggered or acknowledged) incident of a source's alert group, with its
    /// alerts (firing first), without history.
    async fn open_incident_of_group(
        &self,
        source: &str,
        group_key: &str,
    ) -> Result<Option<IncidentView>, StoreError>;

    /// Small state a source keeps across restarts (the IRC link's replay mark), as the
    /// JSON text it saved under `name`; `None` before the first save.
    async fn source_state(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Replaces the state saved under `name`; durable when it returns, like `commit`.
    async fn save_source_state(
        &self,
        name: &str,
        value: String,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Remembers that the message `id` arrived on `channel` (`twilio`, `kannel`) at `at`,
    /// and says whether this is the first time: `false` is a replay or a gateway's
    /// retry of a message already acted on. Durable when it returns, like `commit`, so
    /// a restart forgets nothing; two calls racing for one id get one `true`. Ids older
    /// than `keep` are forgotten a few at a time as new ones arrive.
    async fn first_sight(
        &self,
        channel: &str,
        id: &str,
        at: Timestamp,
        keep: Duration,
    ) -> Result<bool, StoreError>;

    /// Forgets a sighting whose message could not be acted on after all (tocsin could
    /// not record the action), so that the gateway's retry of it is acted on.
    async fn forget_sight(&self, channel: &str, id: &str) -> Result<(), StoreError>;

    /// Deletes up to `batch` incidents resolved before `before`, with their alerts,
    /// history and pages, in one transaction; fewer than `batch` means none are left.
    /// Open incidents are never deleted. A store that keeps everything deletes nothing.
    async fn delete_resolved(
        &self,
        before: Timestamp,
        batch: usize,
    ) -> Result<Deleted, StoreError> {
        let _ = (before, batch);
        Ok(Deleted::default())
    }

    /// Up to `limit` inputs forwarded by followers and not yet consumed, oldest first:
    /// (inbox id, the input as JSON). A store without an inbox has none.
    async fn inbox(&self, limit: usize) -> Result<Vec<(u64, String)>, StoreError> {
        let _ = limit;
        Ok(Vec::new())
    }

    /// Like [`Store::commit`], and marks the `consumed` inbox rows done with their
    /// results (JSON text), in the same transaction.
    async fn commit_consumed(
        &self,
        effects: Vec<Effect>,
        consumed: Vec<(u64, String)>,
    ) -> Result<(), StoreError> {
        if consumed.is_empty() {
            self.commit(effects).await
        } else {
            Err(StoreError::NoInbox)
        }
    }

    /// Notified when a follower forwarded something (the leader then reads
    /// [`Store::inbox`]); `None` for a store without an inbox.
    fn inbox_wakeup(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// Gives up to `pages` free pages of the file back to the file system, and answers
    /// how many free pages are left (0: nothing more to give back).
    async fn reclaim_space(&self, pages: u32) -> Result<u64, StoreError> {
        let _ = pages;
        Ok(0)
    }
}
