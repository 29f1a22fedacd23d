//! A time window over alerts that label matchers pick: what silences and maintenance
//! windows share. Checked here once for both.

use std::collections::BTreeMap;
use std::time::Duration;

use super::matcher::Matcher;
use crate::time::Timestamp;

/// Silences and maintenance windows are numbered each on their own.
pub type WindowId = u64;

/// A silence or a maintenance window as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRecord {
    pub id: WindowId,
    /// Alertmanager matchers as written (`service="db"`); all must match.
    pub matchers: Vec<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Why, for whoever wonders where their alerts or pages went.
    pub comment: String,
    pub by: String,
    pub created_at: Timestamp,
}

impl WindowRecord {
    /// A window `by` makes at `now`, numbered `id`.
    pub(super) fn made(
        id: WindowId,
        matchers: Vec<String>,
        (from, to): (Timestamp, Timestamp),
        comment: String,
        by: &super::model::Actor,
        now: Timestamp,
    ) -> Self {
        WindowRecord {
            id,
            matchers,
            from,
            to,
            comment,
            by: by.name.clone(),
            created_at: now,
        }
    }

    pub fn active(&self, at: Timestamp) -> bool {
        self.from <= at && at < self.to
    }
}

/// A window with its matchers parsed once.
#[derive(Debug, Clone)]
pub(super) struct Window {
    pub record: WindowRecord,
    matchers: Vec<Matcher>,
}

impl Window {
    pub fn new(record: WindowRecord) -> Result<Self, String> {
        let matchers = record
            .matchers
            .iter()
            .map(|m| Matcher::parse(m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Window { record, matchers })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// Checks a new window as `what` ("silence", "maintenance window") would have it, and
/// parses it; the error says what to fix.
pub(super) fn check_window(
    what: &str,
    record: WindowRecord,
    now: Timestamp,
    longest: Duration,
) -> Result<Window, String> {
    if record.matchers.is_empty() {
        return Err(format!(
            "a {what} needs at least one matcher, like service=\"db\""
        ));
    }
    if record.comment.trim().is_empty() {
        return Err(
            "say why in a comment: whoever misses these alerts or pages will look".to_string(),
        );
    }
    if record.to <= record.from || record.to <= now {
        return Err(format!(
            "a {what} must end after it starts, and in the future"
        ));
    }
    if record.to.since(record.from.max(now)) > longest {
        return Err(format!(
            "a {what} lasts at most {}",
            crate::time::human(longest)
        ));
    }
    let window = Window::new(record)?;
    // Like Alertmanager: matchers that all match an empty label set would cover every
    // alert, the heartbeat included.
    if window.matches(&BTreeMap::new()) {
        return Err(format!(
            "these matchers match an alert without labels, so the {what} would cover everything: add one that names a value, like service=\"db\""
        ));
    }
    Ok(window)
}
