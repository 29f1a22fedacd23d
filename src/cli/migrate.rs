//! `tocsin migrate --from DATA_DIR --to postgres://...`: moves a single instance's SQLite
//! store (incidents, history, pages, windows, the ack-link key) into an empty PostgreSQL
//! database, so that two or more instances can share it. Run it with tocsin stopped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::config::Secret;
use crate::store::PostgresStore;
use crate::store::fence::Fence;
use crate::store::postgres::{Copied, PgConfig};

/// The environment variable read for the password when no `--password-file` is given
/// (libpq's own).
pub const PASSWORD_ENV: &str = "PGPASSWORD";

#[derive(clap::Args, Debug, Clone)]
pub struct MigrateArgs {
    /// The data dir of the SQLite store to copy.
    #[arg(long)]
    pub from: PathBuf,
    /// The PostgreSQL database to copy into, as `[storage] url` (no password in it;
    /// sslmode and sslrootcert as there).
    #[arg(long)]
    pub to: String,
    /// File holding the database password (otherwise $PGPASSWORD, when set).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// Runs the command: copies, then prints what was copied.
pub async fn run(args: &MigrateArgs) -> anyhow::Result<()> {
    let password = match &args.password_file {
        Some(file) => Some(read_password(file)?),
        None => std::env::var(PASSWORD_ENV).ok().map(Secret::new),
    };
    let cfg = PgConfig::parse(&args.to, password).context("--to")?;
    let copied = migrate(&args.from, cfg).await?;
    println!("copied {} into {}:\n{copied}", args.from.display(), args.to);
    Ok(())
}

/// Copies the store in `from` into the (empty) database of `cfg`, creating its schema.
pub async fn migrate(from: &Path, cfg: PgConfig) -> anyhow::Result<Copied> {
    cfg.check_tls()
        .map_err(anyhow::Error::msg)
        .context("--to")?;
    let store = PostgresStore::connect(cfg, Arc::new(Fence::new()))
        .await
        .context("connecting to the PostgreSQL database")?;
    store
        .import_sqlite(from)
        .await
        .with_context(|| format!("copying {}", from.display()))
}

fn read_password(file: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read --password-file {}", file.display()))?;
    let text = text.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(
        !text.is_empty(),
        "--password-file {} is empty",
        file.display()
    );
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests;
