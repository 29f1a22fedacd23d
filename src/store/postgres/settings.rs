//! Settings every instance must share: the ack-link key (a link made by one instance is
//! verified by another).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::read::col;
use super::{PgErrorExt, PostgresStore, Result};
use crate::store::StoreError;

/// The settings row of the ack-link key (base64 of its bytes).
pub const ACK_KEY: &str = "ack_link_key";

/// The key's length, as in the key file of a data dir.
pub const ACK_KEY_LEN: usize = 32;

impl PostgresStore {
    /// The ack-link key, made (random) by the first instance to ask: two racing get one.
    pub async fn ack_key_bytes(&self) -> Result<Vec<u8>> {
        self.timed(async {
            const DOING: &str = "reading the ack link key";
            let mut fresh = [0u8; ACK_KEY_LEN];
            getrandom::fill(&mut fresh).map_err(|e| StoreError::Corrupt {
                what: "a new ack link key".into(),
                detail: e.to_string(),
            })?;
            let client = self.writes.get().await.or_pg(DOING)?;
            client
                .execute(
                    "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&ACK_KEY, &B64.encode(fresh)],
                )
                .await
                .or_pg(DOING)?;
            let row = client
                .query_one("SELECT value FROM settings WHERE name = $1", &[&ACK_KEY])
                .await
                .or_pg(DOING)?;
            decode(col::<Option<String>>(&row, 0)?.as_deref().unwrap_or(""))
        })
        .await
    }
}

impl PostgresStore {
    /// [`PostgresStore::ack_key_bytes`] as the key that signs and verifies ack links.
    pub async fn ack_key(&self) -> Result<crate::ack_link::AckKey> {
        let bytes = self.ack_key_bytes().await?;
        let key: [u8; ACK_KEY_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt {
                    what: "the ack link key in the settings table".into(),
                    detail: format!("{} bytes, not {ACK_KEY_LEN}", bytes.len()),
                })?;
        Ok(crate::ack_link::AckKey::from_bytes(key))
    }
}

/// The key from its settings text; refused unless it is [`ACK_KEY_LEN`] bytes.
pub(super) fn decode(text: &str) -> Result<Vec<u8>> {
    match B64.decode(text.trim()) {
        Ok(bytes) if bytes.len() == ACK_KEY_LEN => Ok(bytes),
        Ok(bytes) => Err(StoreError::Corrupt {
            what: "the ack link key in the settings table".into(),
            detail: format!(
                "{} bytes, not {ACK_KEY_LEN}: delete the row to make a new key (old ack links stop working)",
                bytes.len()
            ),
        }),
        Err(e) => Err(StoreError::Corrupt {
            what: "the ack link key in the settings table".into(),
            detail: format!(
                "not base64 ({e}): delete the row to make a new key (old ack links stop working)"
            ),
        }),
    }
}
