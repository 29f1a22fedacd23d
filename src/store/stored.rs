//! What both stores read back the same way: text columns into engine values, and what
//! a row that does not parse is called.

use super::{PageStatus, PageView, StoreError};
use crate::engine::{Change, IncidentId, Page};
use crate::time::Timestamp;

/// A stored value of incident `id` that does not parse.
pub(crate) fn corrupt(id: IncidentId, what: &str, detail: String) -> StoreError {
    StoreError::Corrupt {
        what: format!("{what} of incident {id}"),
        detail,
    }
}

/// A JSON column of incident `id`.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    id: IncidentId,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(id, what, e.to_string()))
}

/// An override's change from its `kind`, `contact` and `with` columns.
pub(crate) fn change(
    kind: &str,
    contact: String,
    with: Option<String>,
) -> Result<Change, StoreError> {
    match (kind, with) {
        ("add", _) => Ok(Change::Add { contact }),
        ("remove", _) => Ok(Change::Remove { contact }),
        ("replace", Some(with)) => Ok(Change::Replace { contact, with }),
        _ => Err(StoreError::Corrupt {
            what: "override".into(),
            detail: format!("kind {kind:?} is not add, remove or replace"),
        }),
    }
}

/// A page of incident `id` as listed, from the page and its outcome columns.
pub(crate) fn page_view(
    id: IncidentId,
    page: Page,
    status: &str,
    attempts: u32,
    error: Option<String>,
    done_at: Option<Timestamp>,
) -> Result<PageView, StoreError> {
    let Some(status) = PageStatus::parse(status) else {
        return Err(corrupt(
            id,
            "page status",
            format!("unknown status {status:?}"),
        ));
    };
    Ok(PageView {
        id: page.id,
        at: page.at,
        kind: page.kind,
        step: page.step,
        cycle: page.cycle,
        target: page.target,
        notifier: page.notifier,
        to: page.to,
        reason: page.reason,
        status,
        attempts,
        error,
        done_at,
    })
}
