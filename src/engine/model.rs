//! What goes into the engine and what comes out of it.
//!
//! Inputs are facts (alerts arrived, someone acked, time passed, a page was delivered);
//! effects are what must become durable (incident rows, alert rows, history) and what
//! must be sent (pages). The runtime commits every effect of a batch in one transaction
//! and only then sends the pages and answers the callers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::labels::LabelSet;
use super::policy::PolicySnapshot;
use crate::time::Timestamp;

pub type IncidentId = u64;
pub type PageId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Triggered,
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Triggered => "triggered",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "triggered" => Some(IncidentState::Triggered),
            "acknowledged" => Some(IncidentState::Acknowledged),
            "resolved" => Some(IncidentState::Resolved),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert as a source delivered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertIn {
    /// Alertmanager's label-set hash (16 hex digits), or a hash of IRC captures.
    pub fingerprint: String,
    pub status: AlertStatus,
    pub starts_at: Timestamp,
    /// `None` for firing alerts (Alertmanager sends Go's zero time).
    pub ends_at: Option<Timestamp>,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub generator_url: String,
}

/// One delivery from a source: the alerts of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertBatch {
    /// Which source delivered it (`alertmanager`, `irc`).
    pub source: String,
    /// Alerts group into incidents by this key (Alertmanager `groupKey`).
    pub group_key: String,
    /// Labels the route matchers see (Alertmanager `commonLabels`); an open incident's
    /// labels become these when the batch changes one of its alerts.
    pub labels: BTreeMap<String, String>,
    /// A short human title for a new incident ("DiskFull: Disk almost full on db1").
    pub title: String,
    pub alerts: Vec<AlertIn>,
    /// Alerts the sender dropped (`truncatedAlerts`).
    pub truncated: u64,
    /// A source that knows its policy names it (the watchdog, the self-test); otherwise
    /// the routes choose by `labels`.
    pub policy: Option<String>,
}

/// Declares a closed set of names that are stored and shown as text: the enum, its
/// `as_str` and `parse`, and serde as the same snake_case text.
macro_rules! named {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v,)*
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s,)*
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($s => Some($name::$v),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named;

named! {
    /// The channel through which someone acted.
    pub enum Via {
        /// tocsin itself: deadlines, outcomes, alerts.
        Engine = "engine",
        Api = "api",
        Cli = "cli",
        Web = "web",
        Irc = "irc",
        Sms = "sms",
        /// A signed ack link; the actor's `reference` is the link's id.
        Link = "link",
        /// A Pushover emergency receipt acknowledged on the phone.
        Pushover = "pushover",
        /// A key pressed during a voice call; the actor's `reference` is the call's id.
        Voice = "voice",
    }
}

named! {
    /// What a line of an incident's history records.
    pub enum EventKind {
        Opened = "opened",
        Received = "received",
        Truncated = "truncated",
        Step = "step",
        CatchUp = "catch_up",
        Unreachable = "unreachable",
        PageAttempt = "page_attempt",
        PageDelivered = "page_delivered",
        PageFailed = "page_failed",
        PageCancelled = "page_cancelled",
        /// A call was placed; it is delivered only when someone presses a key.
        PagePlaced = "page_placed",
        /// A call ended without a key (no answer, busy, voicemail, hung up).
        PageNotReached = "page_not_reached",
        Failover = "failover",
        Acked = "acked",
        /// Someone acked an incident that someone else had acked already.
        AlsoAcked = "also_acked",
        AckExpired = "ack_expired",
        Unacked = "unacked",
        Snoozed = "snoozed",
        SnoozeEnded = "snooze_ended",
        EscalateNow = "escalate_now",
        Resolved = "resolved",
        /// A command that was not allowed (an IRC user who is no acker, an SMS from an
        /// unknown number); nothing changed.
        Refused = "refused",
        /// A maintenance window holds its pages.
        Held = "held",
        /// The maintenance window ended: paging starts from step 1.
        HoldEnded = "hold_ended",
        /// Alertmanager silenced (or stopped silencing) the acked incident's alerts.
        AckSilence = "ack_silence",
        /// A page waits for its contact's quiet hours to end.
        Quiet = "quiet",
    }
}

/// Who did something, and through which channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub via: Via,
    /// Which one of the channel: the ack link's id, the SMS gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl Actor {
    pub fn new(name: impl Into<String>, via: Via) -> Self {
        Actor {
            name: name.into(),
            via,
            reference: None,
        }
    }

    /// An actor on one particular link or gateway of a channel.
    pub fn with_reference(name: impl Into<String>, via: Via, reference: impl Into<String>) -> Self {
        Actor {
            reference: Some(reference.into()),
            ..Actor::new(name, via)
        }
    }

    fn system() -> Self {
        Actor::new("tocsin", Via::Engine)
    }

    /// How the history shows them: "alice via link 3f2a", "tocsin".
    pub fn describe(&self) -> String {
        match (self.via, &self.reference) {
            (Via::Engine, _) => self.name.clone(),
            (via, None) => format!("{} via {via}", self.name),
            (via, Some(r)) => format!("{} via {via} {r}", self.name),
        }
    }
}

/// Everything that can happen to the engine.
///
/// What people and sources do can be written as JSON: an instance that does not lead
/// forwards it to the one that does (through the shared store's inbox). What only the
/// leader itself produces (time, page outcomes) is never forwarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    Alerts(AlertBatch),
    Ack {
        id: IncidentId,
        by: Actor,
    },
    Unack {
        id: IncidentId,
        by: Actor,
    },
    Resolve {
        id: IncidentId,
        by: Actor,
    },
    Snooze {
        id: IncidentId,
        by: Actor,
        duration: Duration,
    },
    /// Fire the next step now (an SMS reply `42E`).
    Escalate {
        id: IncidentId,
        by: Actor,
    },
    /// One attempt of a page failed and will be retried: recorded in the history.
    #[serde(skip)]
    PageAttempt {
        page: Page,
        attempt: u32,
        error: String,
    },
    /// A line of history that changes nothing (a refused SMS reply or IRC command).
    Note {
        id: IncidentId,
        kind: EventKind,
        by: Actor,
        detail: String,
    },
    /// Flood control let these held pages (one destination's) go: the engine decides
    /// which are still wanted, and they go out together as one message.
    #[serde(skip)]
    Released {
        pages: Vec<Page>,
    },
    /// Time passed: fire whatever came due.
    #[serde(skip)]
    Tick,
    /// A notifier finished with a page (the page comes back so the engine needs no lookup).
    #[serde(skip)]
    PageOutcome {
        page: Page,
        outcome: Outcome,
    },
    /// Change who is on call for a while (an override of a schedule).
    AddOverride {
        schedule: String,
        change: Change,
        from: Timestamp,
        to: Timestamp,
        by: Actor,
    },
    /// Take an override back, whether it has started or not.
    DeleteOverride {
        schedule: String,
        id: OverrideId,
        by: Actor,
    },
    /// Known noise: firing alerts these matchers match open no incident meanwhile.
    AddSilence {
        matchers: Vec<String>,
        from: Timestamp,
        to: Timestamp,
        comment: String,
        by: Actor,
    },
    /// End a silence now.
    ExpireSilence {
        id: super::silences::SilenceId,
        by: Actor,
    },
    /// Planned work: incidents these matchers match page nobody meanwhile.
    StartMaintenance {
        matchers: Vec<String>,
        from: Timestamp,
        to: Timestamp,
        comment: String,
        by: Actor,
    },
    /// Move a maintenance window's end (later or earlier, still in the future).
    ExtendMaintenance {
        id: super::window::WindowId,
        to: Timestamp,
        by: Actor,
    },
    /// End a maintenance window now: what it held starts paging from step 1.
    EndMaintenance {
        id: super::window::WindowId,
        by: Actor,
    },
    /// What Alertmanager answered about an acked incident's silence; `until` is the end
    /// the operation asked for.
    #[serde(skip)]
    AckSilenceDone {
        incident: IncidentId,
        done: super::ack_silence::SilenceDone,
        until: Timestamp,
    },
}

pub use crate::schedule::Change;

/// Overrides are numbered once, across schedules.
pub type OverrideId = u64;

/// An override as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRecord {
    pub id: OverrideId,
    pub schedule: String,
    pub change: Change,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Who made it (`alice`, `api`), for the list and the history.
    pub by: String,
    pub created_at: Timestamp,
}

impl OverrideRecord {
    /// The contacts it names: two overrides naming one person at once are refused.
    pub fn people(&self) -> Vec<&str> {
        match &self.change {
            Change::Add { contact } | Change::Remove { contact } => vec![contact],
            Change::Replace { contact, with } => vec![contact, with],
        }
    }

    pub fn as_override(&self) -> crate::schedule::Override {
        crate::schedule::Override {
            id: self.id,
            change: self.change.clone(),
            from: self.from,
            to: self.to,
        }
    }
}

/// How a send ended, after the notifier's own retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Delivered {
        attempts: u32,
    },
    Failed {
        attempts: u32,
        /// No retry can help (4xx, bad address): the contact's next method goes at once.
        permanent: bool,
        error: String,
    },
    /// Not sent: by the time flood control let it go, its incident no longer needed it
    /// (acked or resolved while the page was held).
    Cancelled {
        reason: String,
    },
    /// On its way but not yet in front of a person: a call that is ringing. Its real
    /// outcome comes later, as `Delivered` (a key was pressed) or `NotReached`.
    Placed {
        attempts: u32,
        /// The provider's id of the call (Twilio's `CallSid`).
        reference: String,
    },
    /// Placed, but nobody took it: no answer, busy, voicemail, hung up without a key.
    /// The notifier works; the person was not reached, so the contact's next method goes
    /// at once.
    NotReached {
        reason: String,
    },
}

/// Why a page is being sent; the `event` field of webhook pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    Triggered,
    Escalated,
    Reminder,
    Acknowledged,
    Resolved,
    Test,
    /// tocsin about itself, outside any incident (its store cannot be written): nothing
    /// to ack, never recorded.
    Notice,
}

impl PageKind {
    /// Whether the page asks someone to act; the others report a change of state.
    pub fn needs_action(self) -> bool {
        matches!(
            self,
            PageKind::Triggered | PageKind::Escalated | PageKind::Reminder
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PageKind::Triggered => "triggered",
            PageKind::Escalated => "escalated",
            PageKind::Reminder => "reminder",
            PageKind::Acknowledged => "acknowledged",
            PageKind::Resolved => "resolved",
            PageKind::Test => "test",
            PageKind::Notice => "notice",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "triggered" => PageKind::Triggered,
            "escalated" => PageKind::Escalated,
            "reminder" => PageKind::Reminder,
            "acknowledged" => PageKind::Acknowledged,
            "resolved" => PageKind::Resolved,
            "test" => PageKind::Test,
            "notice" => PageKind::Notice,
            _ => return None,
        })
    }
}

/// One message to one destination. Recorded as an intent before it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Unique and stable: a page re-sent after a crash keeps its id, so receivers can dedup.
    pub id: PageId,
    pub incident: IncidentId,
    pub at: Timestamp,
    pub kind: PageKind,
    /// 1-based step that caused it; 0 for status updates.
    pub step: u32,
    /// 0-based pass through the policy.
    pub cycle: u32,
    /// The contact or notifier named in the policy.
    pub target: String,
    /// Set when the target is a contact.
    pub contact: Option<String>,
    /// The notifier that delivers it.
    pub notifier: String,
    /// Index of the contact method used.
    pub method: Option<u32>,
    pub to: Option<String>,
    pub topic: Option<String>,
    /// How late the step fired (tocsin was down when it came due).
    pub late_by_ms: Option<u64>,
    /// Human reason, e.g. "step 2 of policy default" or "failover: push failed permanently".
    pub reason: String,
    /// Retries of this page stop here: the contact's next method is due then (from the
    /// incident's policy snapshot), and a slow failure must not delay a method that could
    /// work. `None`: only the notifier's own retry budget bounds them.
    #[serde(default)]
    pub retry_until: Option<Timestamp>,
    /// Held for the contact's quiet hours until then; flood control lets it go then, in
    /// one message with whatever else is held for them and still wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<Timestamp>,
}

/// The durable fields of a new incident that never change.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentOpened {
    pub id: IncidentId,
    pub source: String,
    pub group_key: String,
    pub title: String,
    pub labels: BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub policy: Arc<PolicySnapshot>,
}

/// Where an incident's escalation stands; persisted whole (as JSON) and restored on start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Escalation {
    /// When the current pass through the steps started.
    pub pass_start: Timestamp,
    /// 0-based pass number; passes beyond `repeat` do not happen.
    pub cycle: u32,
    /// Index of the next step to fire.
    pub next_step: usize,
    /// When it fires; `None` when the policy is exhausted or the incident is acked.
    pub next_step_at: Option<Timestamp>,
    /// Contacts whose methods are still being worked through.
    pub chains: Vec<MethodChain>,
    /// When the current ack expires and the incident re-triggers.
    pub ack_expires_at: Option<Timestamp>,
    /// When the current snooze ends.
    pub snoozed_until: Option<Timestamp>,
    /// Notifier targets (not contacts) paged so far: they get the ack/resolve updates.
    pub announced: Vec<String>,
    /// 1-based number of the last step fired (0 before the first).
    pub step: u32,
    /// The method each contact was last paged through (contact, method index): where a
    /// recovery page goes when the policy asks for one.
    #[serde(default)]
    pub reached: Vec<(String, u32)>,
    /// The maintenance window holding its pages: nothing fires while it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<u64>,
    /// Its silence in Alertmanager while acked (`silence_on_ack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_silence: Option<super::ack_silence::AckSilence>,
    /// Contacts paged because a schedule had them on call, with the methods they had
    /// then: the policy names the schedule, not them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rostered: Vec<Rostered>,
}

/// A contact reached through a schedule, and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rostered {
    pub contact: String,
    pub methods: Vec<super::policy::MethodSnapshot>,
}

/// A contact being paged: its methods go out in order, each at its `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodChain {
    /// Index into the step's targets is not stable across passes; the name is.
    pub contact: String,
    pub step: u32,
    pub cycle: u32,
    pub paged_at: Timestamp,
    /// Index of the next method to try.
    pub next_method: usize,
    /// How late the step that paged them fired; the first method's page says so.
    #[serde(default)]
    pub late_by_ms: Option<u64>,
    /// The schedule that had them on call, when that is how the step reached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// The mutable part of an incident, written after every change.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentStatus {
    pub id: IncidentId,
    pub state: IncidentState,
    pub updated_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub acked_by: Option<String>,
    pub acked_at: Option<Timestamp>,
    /// The earliest moment the engine must look at this incident again.
    pub wake_at: Option<Timestamp>,
    pub escalation: Escalation,
    /// Alerts not kept because the incident had `max_alerts_per_incident` already.
    pub alerts_truncated: u64,
}

/// An alert row (upserted on (incident, fingerprint)).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub incident: IncidentId,
    pub received_at: Timestamp,
    pub alert: AlertIn,
}

/// One line of an incident's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub incident: IncidentId,
    pub at: Timestamp,
    pub kind: EventKind,
    /// Who acted ("alice via irc"; "tocsin" for the engine), as the history shows it.
    pub actor: String,
    /// The channel they acted through, as data (never parsed back out of `actor`).
    pub via: Via,
    /// Which link or gateway of that channel.
    pub reference: Option<String>,
    pub detail: String,
}

impl HistoryEvent {
    pub fn new(
        incident: IncidentId,
        at: Timestamp,
        kind: EventKind,
        actor: &Actor,
        detail: impl Into<String>,
    ) -> Self {
        HistoryEvent {
            incident,
            at,
            kind,
            actor: actor.describe(),
            via: actor.via,
            reference: actor.reference.clone(),
            detail: detail.into(),
        }
    }

    pub fn by_engine(
        incident: IncidentId,
        at: Timestamp,
        kind: EventKind,
        detail: impl Into<String>,
    ) -> Self {
        HistoryEvent::new(incident, at, kind, &Actor::system(), detail)
    }
}

/// What the runtime must do, in order: make durable, then send.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Opened(IncidentOpened),
    Status(IncidentStatus),
    Alert(AlertRecord),
    Event(HistoryEvent),
    /// Record the intent, then (after the commit) send it.
    Page(Page),
    /// Send these recorded pages now, together, past flood control (it released them).
    /// Nothing to make durable: their intents are recorded already.
    Send {
        pages: Vec<Page>,
    },
    /// Record how a page ended.
    PageDone {
        page: PageId,
        at: Timestamp,
        outcome: Outcome,
    },
    /// Replace an incident's labels: a later batch of its group carries other ones
    /// (the labels its alerts share changed as alerts joined or resolved).
    Labels {
        incident: IncidentId,
        labels: BTreeMap<String, String>,
    },
    /// Record a new override of a schedule.
    Override(OverrideRecord),
    /// Forget an override (its row stays, marked deleted at `at`, so ids are not reused).
    OverrideDeleted {
        id: OverrideId,
        at: Timestamp,
    },
    /// Record a new silence.
    Silence(super::silences::SilenceRecord),
    /// A silence ended early, at `at`.
    SilenceExpired {
        id: super::silences::SilenceId,
        at: Timestamp,
    },
    /// Record a new maintenance window.
    Maintenance(super::window::WindowRecord),
    /// A maintenance window's end moved (extended, or ended early: `to` is then now).
    MaintenanceEnd {
        id: super::window::WindowId,
        to: Timestamp,
        by: String,
        at: Timestamp,
    },
    /// Ask Alertmanager to silence, extend or expire (after the commit, like a page).
    AckSilence(super::ack_silence::SilenceOp),
    /// Firing alerts a silence dropped: counted, not stored.
    Silenced {
        silence: super::silences::SilenceId,
        alerts: u64,
    },
}

/// Why the engine refused an input: it would change nothing. The caller is answered with
/// it (one mapping per channel: [`Refusal::http_status`] for HTTP, `Display` for chat and
/// SMS), and nothing about the incident changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no incident #{0}")]
    NotFound(IncidentId),
    #[error("#{0} is already resolved")]
    AlreadyResolved(IncidentId),
    #[error("#{id} was already acknowledged by {by}")]
    AlreadyAcked {
        id: IncidentId,
        /// Who acked first; a second ack never takes their place.
        by: String,
        at: Timestamp,
    },
    #[error("#{0} is not acknowledged")]
    NotAcked(IncidentId),
    #[error("snooze needs a duration above zero")]
    ZeroSnooze,
    #[error("snooze is at most 7 days; for longer, resolve it")]
    SnoozeTooLong,
    #[error("no schedule {0:?}")]
    UnknownSchedule(String),
    #[error("no contact {0:?}")]
    UnknownContact(String),
    #[error("{0}")]
    BadOverride(&'static str),
    #[error("override {id} already changes {contact} at that time; delete it or pick another time")]
    OverrideConflict { id: OverrideId, contact: String },
    #[error("schedule {schedule:?} has no override {id}")]
    NoOverride { schedule: String, id: OverrideId },
    #[error("{0}")]
    BadSilence(String),
    #[error("no silence {0} in force or ahead")]
    NoSilence(super::silences::SilenceId),
    #[error("{0}")]
    BadMaintenance(String),
    #[error("no maintenance window {0} in force or ahead")]
    NoMaintenance(super::window::WindowId),
}

/// The longest snooze: an incident quiet for longer should be resolved, not forgotten.
pub const MAX_SNOOZE: Duration = Duration::from_secs(7 * 24 * 3600);

impl Refusal {
    /// The HTTP status every HTTP path answers this refusal with.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::NotFound(_) => 404,
            Refusal::AlreadyResolved(_) | Refusal::AlreadyAcked { .. } | Refusal::NotAcked(_) => {
                409
            }
            Refusal::ZeroSnooze
            | Refusal::SnoozeTooLong
            | Refusal::UnknownContact(_)
            | Refusal::BadOverride(_)
            | Refusal::BadSilence(_)
            | Refusal::BadMaintenance(_) => 400,
            Refusal::UnknownSchedule(_)
            | Refusal::NoOverride { .. }
            | Refusal::NoSilence(_)
            | Refusal::NoMaintenance(_) => 404,
            Refusal::OverrideConflict { .. } => 409,
        }
    }
}

/// A refused input: why, plus the lines of history the refusal leaves (a second person's
/// ack is noted on the incident, though it changes nothing). The runtime commits
/// `notes` like any effects.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{refusal}")]
pub struct Refused {
    pub refusal: Refusal,
    pub notes: Vec<Effect>,
}

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Self {
        Refused {
            refusal,
            notes: Vec::new(),
        }
    }
}

/// An incident as stored, handed back to the engine on start.
#[derive(Debug, Clone)]
pub struct RestoredIncident {
    pub id: IncidentId,
    pub source: String,
    pub group_key: String,
    pub state: IncidentState,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub acked_by: Option<String>,
    pub acked_at: Option<Timestamp>,
    /// Shared by every incident that opened with the same policy: 10,000 restored
    /// incidents hold a handful of policies, not 10,000 copies.
    pub policy: Arc<PolicySnapshot>,
    pub escalation: Escalation,
    /// ([`fingerprint_key`](super::fingerprint_key), status, startsAt) of every alert
    /// of the incident: the engine keeps no fingerprint text.
    pub alerts: Vec<(u64, AlertStatus, Timestamp)>,
    /// [`labels_hash`](super::labels_hash) of its labels as stored, so that a batch
    /// carrying the same ones changes nothing.
    pub labels_hash: u64,
    /// Alerts not kept because the incident had `max_alerts_per_incident` already.
    pub alerts_truncated: u64,
    /// Its labels as stored, for maintenance windows to match.
    pub labels: super::labels::LabelSet,
}
