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
