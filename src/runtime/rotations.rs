//! Rotation member lists across config edits.
//!
//! A rotation's position is computed from its `start`, so a member list edited in
//! alerts.toml would otherwise hand the shift under way to someone else at once. Each
//! list in force is recorded in the store with the moment it took effect; the calendar
//! uses an older list for shifts that started before a newer one, so the person on call
//! now stays on call until the next handoff, and the new list takes over from there.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::schedule::Members;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// One recorded member list, as stored (JSON under `rotation.NAME` in the source state).
#[derive(Serialize, Deserialize)]
struct Version {
    /// None: in force since the rotation's start.
    from: Option<Timestamp>,
    members: Vec<String>,
}

/// Gives every rotation of `cfg` its recorded member lists, recording the config's list
/// as a new one (effective `now`) where it differs from the last one in force. Returns
/// the rotations whose list changed.
pub async fn settle(
    store: &dyn Store,
    cfg: &mut Config,
    now: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let mut changed = Vec::new();
    for (name, rotation) in cfg.calendar.rotations.iter_mut() {
        let key = format!("rotation.{name}");
        let configured = rotation
            .versions
            .last()
            .map(|v| v.members.clone())
            .unwrap_or_default();
        let mut versions: Vec<Version> = match store.source_state(&key).await? {
            Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                what: key.clone(),
                detail: e.to_string(),
            })?,
            None => Vec::new(),
        };
        let last = versions.last().map(|v| &v.members);
        if last != Some(&configured) {
            versions.push(Version {
                // The first list ever recorded has been in force since the start.
                from: (!versions.is_empty()).then_some(now),
                members: configured,
            });
            let text = serde_json::to_string(&versions).unwrap_or_else(|_| "[]".into());
            store.save_source_state(&key, text, now).await?;
            if versions.len() > 1 {
                changed.push(name.clone());
            }
        }
        rotation.versions = versions
            .into_iter()
            .map(|v| Members {
                from: v.from,
                members: v.members,
            })
            .collect();
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    /// A daily rotation handing off at 09:00 UTC, members as given.
    fn config(members: &str) -> Config {
        let text = format!(
            r#"
[notifiers.console]
type = "log"
[contacts.alice]
methods = [{{ notifier = "console", to = "alice" }}]
[contacts.bob]
methods = [{{ notifier = "console", to = "bob" }}]
[contacts.carol]
methods = [{{ notifier = "console", to = "carol" }}]
[rotations.ops]
time_zone = "UTC"
type = "daily"
start = "2026-11-01T09:00"
members = {members}
[schedules.primary]
time_zone = "UTC"
rules = [{{ rotation = "ops" }}]
[policies.default]
steps = [{{ notify = ["primary"] }}]
[[routes]]
policy = "default"
"#
        );
        crate::config::load_str(&text, None).unwrap()
    }

    fn oncall(cfg: &Config, at: &str) -> Vec<String> {
        let oc = cfg
            .calendar
            .oncall("primary", &[], Timestamp::at(at))
            .unwrap();
        oc.contacts.into_iter().map(|c| c.name).collect()
    }

    #[tokio::test]
    async fn a_member_list_edited_mid_shift_takes_over_at_the_next_handoff() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // Day 21 since the start is odd: bob's shift, 2026-11-22 09:00 to 2026-11-23 09:00.
        let mut before = config(r#"["alice", "bob"]"#);
        let first = settle(&store, &mut before, Timestamp::at("2026-11-22T08:00:00Z")).await;
        assert_eq!(
            first.unwrap(),
            Vec::<String>::new(),
            "the first list is no change"
        );
        assert_eq!(oncall(&before, "2026-11-22T12:00:00Z"), ["bob"]);

        // At noon carol joins and is put first: by position alone she would take bob's
        // shift at once.
        let mut after = config(r#"["carol", "alice", "bob"]"#);
        let noon = Timestamp::at("2026-11-22T12:00:00Z");
        assert_eq!(settle(&store, &mut after, noon).await.unwrap(), ["ops"]);
        assert_eq!(
            oncall(&after, "2026-11-22T12:00:00Z"),
            ["bob"],
            "the shift keeps its person"
        );
        // Shift 22 is the first under the new list: 22 % 3 = 1, alice.
        assert_eq!(oncall(&after, "2026-11-23T10:00:00Z"), ["alice"]);

        // The same list again records nothing; a restart reads both lists back.
        let mut again = config(r#"["carol", "alice", "bob"]"#);
        let later = Timestamp::at("2026-11-22T13:00:00Z");
        assert!(settle(&store, &mut again, later).await.unwrap().is_empty());
        assert_eq!(again.calendar.rotations["ops"].versions.len(), 2);
        assert_eq!(oncall(&again, "2026-11-22T14:00:00Z"), ["bob"]);
    }
}
