//! The `tocsin` binary: parse the command line, set up logging, hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tocsin::cli::{Client, incidents_table, status_text, status_unhealthy};
use tocsin::config::{self, Config};
use tocsin::runtime::{self, Options};
use tracing::{error, info};

#[derive(Parser)]
#[command(
    name = "tocsin",
    version,
    about = "Alert escalation and watchdog agent: makes sure a page reaches a human"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, default_value = "alerts.toml")]
        config: PathBuf,
        /// Overrides server.listen.
        #[arg(long)]
        listen: Option<String>,
        /// Overrides storage.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate a config file; print a summary, or every error with its line.
    CheckConfig {
        #[arg(default_value = "alerts.toml")]
        file: PathBuf,
    },
    /// List incidents of a running daemon.
    Incidents {
        /// triggered, acknowledged, resolved or all.
        #[arg(long)]
        state: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Show one incident with its history.
    Show {
        id: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Acknowledge an incident: escalation stops until the ack expires.
    Ack {
        id: u64,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// Take an ack back: escalation starts again from step 1.
    Unack {
        id: u64,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// Resolve an incident by hand.
    Resolve {
        id: u64,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// Hold paging for a while (e.g. 30m); it resumes from step 1 afterwards.
    Snooze {
        id: u64,
        duration: String,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// Send a real test page to a contact (each of their methods, or only --via) or
    /// through one notifier, straight from the config; exits 1 if any send failed.
    ///
    /// Example: tocsin test-notify alice --via sms
    TestNotify {
        /// A contact, or a notifier name.
        target: String,
        /// Only the method that uses this notifier.
        #[arg(long)]
        via: Option<String>,
        #[arg(long, default_value = "alerts.toml")]
        config: PathBuf,
    },
    /// Health of a running daemon and of every channel it watches; exits 1 when the
    /// engine is stalled or a channel is down.
    Status {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(clap::Args)]
struct Target {
    /// Base URL of the daemon (default: http:// + the config's server.listen).
    #[arg(long)]
    url: Option<String>,
    /// Config to take the address and API token from.
    #[arg(long, default_value = "alerts.toml")]
    config: PathBuf,
}

impl Target {
    fn client(&self) -> anyhow::Result<Client> {
        // The config is optional for clients: without it, the defaults apply.
        let cfg = config::load_file(&self.config).ok();
        Client::new(self.url.clone(), cfg.as_ref())
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS provider for the whole process, before any client exists.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.command {
        Command::CheckConfig { file } => match config::load_file(&file) {
            Ok(cfg) => {
                println!("{}: OK\n{}", file.display(), cfg.summary());
                ExitCode::SUCCESS
            }
            Err(errs) => {
                eprintln!("{errs}");
                ExitCode::FAILURE
            }
        },
        command => {
            init_logs(cli.log_format);
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(run_command(command)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            config,
            listen,
            data_dir,
        } => run_daemon(config, listen, data_dir).await,
        Command::CheckConfig { .. } => unreachable!("handled before the runtime starts"),
        Command::TestNotify {
            target,
            via,
            config,
        } => {
            let cfg = config::load_file(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let results = tocsin::notify::test_page::test_notify(&cfg, &target, via.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            for r in &results {
                println!("{r}");
            }
            let failed = results.iter().filter(|r| r.error.is_some()).count();
            if failed > 0 {
                anyhow::bail!("{failed} of {} test page(s) failed", results.len());
            }
            Ok(())
        }
        Command::Incidents {
            state,
            json,
            target,
        } => {
            let v = target.client()?.incidents(state.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", incidents_table(&v));
            }
            Ok(())
        }
        Command::Show { id, target } => {
            let v = target.client()?.incident(id).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Command::Ack { id, by, target } => act(&target, id, "ack", &by, None).await,
        Command::Unack { id, by, target } => act(&target, id, "unack", &by, None).await,
        Command::Resolve { id, by, target } => act(&target, id, "resolve", &by, None).await,
        Command::Snooze {
            id,
            duration,
            by,
            target,
        } => act(&target, id, "snooze", &by, Some(&duration)).await,
        Command::Status { target } => {
            let v = target.client()?.status().await?;
            print!("{}", status_text(&v));
            if status_unhealthy(&v) {
                // Scripts and monitors read the exit code: 1 means something is down.
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn act(
    target: &Target,
    id: u64,
    action: &str,
    by: &str,
    duration: Option<&str>,
) -> anyhow::Result<()> {
    let v = target.client()?.act(id, action, by, duration).await?;
    println!(
        "incident {id} is now {} (by {by})",
        v["state"].as_str().unwrap_or("?")
    );
    Ok(())
}

async fn run_daemon(
    path: PathBuf,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cfg: Config = config::load_file(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The override is not written into the config, so a reload compares file with file.
    let listen = listen.unwrap_or_else(|| cfg.file.server.listen.clone());
    let data_dir = data_dir.unwrap_or_else(|| cfg.file.storage.data_dir.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    info!(config = %path.display(), "{}", cfg.summary().replace('\n', "; "));
    let opts = Options::new(cfg, data_dir);
    let running = runtime::start(opts, listener).await?;
    // Type=notify: systemd waits for this, and WatchdogSec for the engine loop's pings.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let reload = running.reload.clone();
    tokio::spawn(async move { reload_on_sighup(reload).await });
    shutdown_signal().await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    running.stop();
    running.wait().await
}

/// SIGHUP re-reads alerts.toml; a bad file keeps the running config (and says why).
async fn reload_on_sighup(reload: runtime::ReloadHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot listen for SIGHUP; reload with POST /-/reload");
            return;
        }
    };
    while hup.recv().await.is_some() {
        info!("SIGHUP: reloading the config");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        // The outcome is logged (and counted) by the reload itself.
        let _ = reload.reload().await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// SIGTERM or Ctrl-C starts a graceful stop; a second one exits at once.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping gracefully"),
        _ = tokio::signal::ctrl_c() => info!("interrupt: stopping gracefully (again to exit at once)"),
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        error!("second signal: exiting without draining");
        std::process::exit(130);
    });
}
