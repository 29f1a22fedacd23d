//! Connecting to a store shared by several instances (`[storage] url`): the store, its
//! lease and its inbox, with the fence its commits check.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::Shared;
use super::forward::Inbox;
use super::leadership::{InstanceRow, LeaderRow, Lease};
use crate::ack_link::AckKey;
use crate::store::StoreError;
use crate::store::fence::Fence;
use crate::store::postgres::{PgConfig, PostgresStore};
use crate::time::Timestamp;

/// The shared store `[storage] url` names, or `None` for a store of this instance's own.
pub(super) async fn connect(config: &crate::config::Config) -> anyhow::Result<Option<Shared>> {
    match &config.postgres {
        Some(pg) => Ok(Some(open(pg.clone()).await?)),
        None => Ok(None),
    }
}

/// Opens the PostgreSQL store `pg` names (migrating its schema if this instance is the
/// first of a new version), with this instance's name and lease.
pub async fn open(pg: PgConfig) -> anyhow::Result<Shared> {
    let (target, lease_len, name) = (pg.url.clone(), pg.lease, pg.instance.clone());
    let fence = Arc::new(Fence::new());
    let store = Arc::new(
        PostgresStore::connect(pg, fence.clone())
            .await
            .with_context(|| format!("connecting to the shared store {target}"))?,
    );
    let key = store
        .ack_key_bytes()
        .await
        .context("reading the ack link key from the shared store")?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| anyhow::anyhow!("the shared store's ack link key is not 32 bytes"))?;
    Ok(Shared {
        store: store.clone(),
        lease: store.clone(),
        inbox: store,
        fence,
        ack_key: AckKey::from_bytes(key),
        lease_len,
        name,
    })
}

#[async_trait::async_trait]
impl Lease for PostgresStore {
    async fn try_lead(&self, holder: &str, lease: Duration) -> Result<Option<u64>, StoreError> {
        PostgresStore::try_lead(self, holder, lease).await
    }
    async fn renew(&self, epoch: u64, lease: Duration) -> Result<bool, StoreError> {
        PostgresStore::renew(self, epoch, lease).await
    }
    async fn release(&self, epoch: u64) -> Result<(), StoreError> {
        PostgresStore::release(self, epoch).await
    }
    async fn leader(&self) -> Result<LeaderRow, StoreError> {
        PostgresStore::leader(self).await
    }
    async fn heartbeat(&self, me: &InstanceRow) -> Result<(), StoreError> {
        PostgresStore::heartbeat(self, me).await
    }
    async fn instances(&self) -> Result<Vec<InstanceRow>, StoreError> {
        PostgresStore::instances(self).await
    }
}

#[async_trait::async_trait]
impl Inbox for PostgresStore {
    async fn forward(&self, origin: &str, input: String, at: Timestamp) -> Result<u64, StoreError> {
        PostgresStore::forward(self, origin, input, at).await
    }
    async fn answer(&self, id: u64) -> Result<Option<String>, StoreError> {
        self.forwarded_result(id).await
    }
}
