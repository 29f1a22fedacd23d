//! The PostgreSQL a `--store postgres` run writes to: a throwaway cluster on this
//! machine, durable as production runs it.

use super::*;
use tocsin::store::postgres::scratch::ScratchServer;

/// Starts a scratch PostgreSQL 15 (initdb in a temp dir, a free port) and prints the
/// settings that make a commit durable, read back from the server, so the figures
/// say what they cost.
pub async fn start() -> Result<ScratchServer> {
    // ScratchServer panics when PostgreSQL is missing or does not start; its message
    // says what to install.
    let server = tokio::task::spawn_blocking(ScratchServer::new)
        .await
        .map_err(|e| anyhow::anyhow!("starting a scratch PostgreSQL: {e}"))?;
    let url = server.url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let driver = tokio::spawn(connection);
    let mut settings = Vec::new();
    for name in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_sync_method",
    ] {
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .with_context(|| format!("SHOW {name}"))?;
        settings.push(format!("{name} = {}", row.get::<_, String>(0)));
    }
    drop(client);
    let _ = driver.await;
    println!("PostgreSQL at {url}: {}", settings.join(", "));
    Ok(server)
}
