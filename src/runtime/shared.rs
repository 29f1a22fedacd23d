//! Connecting to a store shared by several instances (`[storage] url`).

use anyhow::Result;

use super::Shared;
use crate::config::Config;

/// The shared store `[storage] url` names, or `None` for a store of this instance's own.
pub(super) async fn connect(config: &Config) -> Result<Option<Shared>> {
    let _ = config;
    Ok(None)
}
