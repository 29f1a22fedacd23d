//! The `tocsin` binary: parse the command line, set up logging, hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tocsin::cli::maintenance::MaintenanceCommand;
use tocsin::cli::schedules::ScheduleCommand;
use tocsin::cli::silences::SilenceCommand;
use tocsin::cli::{Page, Target, incidents_table, status_text, status_unhealthy};
use tocsin::config::{self, Config};
use tocsin::runtime::{self, Options};
use tracing::{error, info, warn};

/// Exit codes, the same for every command.
const EXIT_CODES: &str = "Exit codes:
  0  done; the config is valid; every test page went out; everything is up
  1  the config is invalid, a test page failed, (status) a channel or an essential
     task is down or the engine stalled, (schedules check) a schedule has a gap
     ahead, or (run) a task kept failing
  2  the command line is wrong
  3  the daemon could not be reached, or refused the request";

const EXAMPLES: &str = "Examples:
  tocsin run --config /etc/tocsin/alerts.toml
  tocsin check-config alerts.toml
  tocsin incidents --state triggered
  tocsin ack 42 --by alice
  tocsin snooze 42 30m
  tocsin status --url http://alerts-host:9797
  tocsin test-notify alice --via sms
  tocsin oncall
  tocsin override replace primary bob carol --from 2027-01-08T09:00 --for 1d
  tocsin schedules check --days 7
  tocsin silence add --match 'service=\"db\"' --for 2h --comment \"db migration\"
  tocsin completions bash > /etc/bash_completion.d/tocsin";

#[derive(Parser)]
#[command(
    name = "tocsin",
    version,
    about = "Alert escalation and watchdog agent: makes sure a page reaches a human",
    after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}")
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
    /// Run the daemon. SIGTERM stops it gracefully, SIGHUP re-reads the config.
    #[command(
        after_help = "Example: tocsin run --config /etc/tocsin/alerts.toml --data-dir /var/lib/tocsin"
    )]
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
    /// Validate a config file; print a summary, or every error with its line (exit 1).
    #[command(after_help = "Example: tocsin check-config /etc/tocsin/alerts.toml")]
    CheckConfig {
        #[arg(default_value = "alerts.toml")]
        file: PathBuf,
    },
    /// List incidents of a running daemon as a table, newest first, a page at a time.
    #[command(
        after_help = "Examples:\n  tocsin incidents\n  tocsin incidents --state all --json\n  tocsin incidents --limit 500 --before 4201"
    )]
    Incidents {
        /// triggered, acknowledged, resolved or all.
        #[arg(long)]
        state: Option<String>,
        /// Incidents on the page (the daemon's default is 100, its maximum 500).
        #[arg(long)]
        limit: Option<usize>,
        /// Only incidents older than this id: the page after one that ended with a
        /// "more:" line.
        #[arg(long)]
        before: Option<u64>,
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
    #[command(after_help = "Example: tocsin ack 42 --by alice")]
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
    #[command(after_help = "Example: tocsin snooze 42 2h --by alice")]
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
    /// Health of a running daemon, its tasks that are down and every channel it watches;
    /// exits 1 when the engine is stalled, an essential task or a channel is down.
    #[command(after_help = "Example: tocsin status --url http://alerts-host:9797")]
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Exit 0 when the daemon answers `/healthz`: its engine loop turns and no essential
    /// task is down (a container or load balancer healthcheck: unlike `status`, a down
    /// channel does not fail it).
    #[command(
        after_help = "Example (Dockerfile): HEALTHCHECK CMD [\"tocsin\", \"health\", \"--url\", \"http://127.0.0.1:9797\"]"
    )]
    Health {
        #[command(flatten)]
        target: Target,
    },
    #[command(flatten)]
    Schedule(ScheduleCommand),
    #[command(flatten)]
    Silence(SilenceCommand),
    #[command(flatten)]
    Maintenance(MaintenanceCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  tocsin completions bash > /etc/bash_completion.d/tocsin\n  tocsin completions zsh > \"${fpath[1]}/_tocsin\"\n  tocsin completions fish > ~/.config/fish/completions/tocsin.fish"
    )]
    Completions { shell: clap_complete::Shell },
    /// Copy a SQLite data dir (incidents, history, pages, ack-link key) into an empty
    /// PostgreSQL database, for instances sharing it. Run it with tocsin stopped.
    #[command(
        after_help = "Example: tocsin migrate --from /var/lib/tocsin --to postgres://tocsin@db1:5432/tocsin --password-file /etc/tocsin/pg-password"
    )]
    Migrate(tocsin::cli::migrate::MigrateArgs),
}

/// Why a command failed, which decides its exit code.
enum Failure {
    /// What was checked is bad (exit 1).
    Checked(anyhow::Error),
    /// The daemon could not be reached or refused (exit 3).
    Daemon(anyhow::Error),
}

impl Failure {
    fn exit(self) -> ExitCode {
        let (code, e) = match self {
            Failure::Checked(e) => (1, e),
            Failure::Daemon(e) => (3, e),
        };
        eprintln!("error: {e:#}");
        ExitCode::from(code)
    }
}

/// Errors talking to the daemon.
fn daemon<T>(r: anyhow::Result<T>) -> Result<T, Failure> {
    r.map_err(Failure::Daemon)
}

/// Errors about what was checked, or the daemon's own run.
fn checked<T>(r: anyhow::Result<T>) -> Result<T, Failure> {
    r.map_err(Failure::Checked)
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
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "tocsin", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::CheckConfig { file } => match config::load_file(&file) {
            Ok(cfg) => {
                println!("{}: OK\n{}", file.display(), cfg.summary());
                for w in &cfg.warnings {
                    eprintln!("{}: warning: {w}", file.display());
                }
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
                Ok(code) => code,
                Err(f) => f.exit(),
            }
        }
    }
}

async fn run_command(command: Command) -> Result<ExitCode, Failure> {
    let ok = Ok(ExitCode::SUCCESS);
    match command {
        Command::Run {
            config,
            listen,
            data_dir,
        } => {
            checked(run_daemon(config, listen, data_dir).await)?;
            ok
        }
        Command::CheckConfig { .. } | Command::Completions { .. } => {
            unreachable!("handled before the runtime starts")
        }
        Command::Migrate(args) => {
            checked(tocsin::cli::migrate::run(&args).await)?;
            ok
        }
        Command::TestNotify {
            target,
            via,
            config,
        } => {
            let cfg = checked(config::load_file(&config).map_err(|e| anyhow::anyhow!("{e}")))?;
            let results = checked(
                tocsin::notify::test_page::test_notify(&cfg, &target, via.as_deref())
                    .await
                    .map_err(|e| anyhow::anyhow!(e)),
            )?;
            for r in &results {
                println!("{r}");
            }
            let failed = results.iter().filter(|r| r.error.is_some()).count();
            if failed > 0 {
                return Err(Failure::Checked(anyhow::anyhow!(
                    "{failed} of {} test page(s) failed",
                    results.len()
                )));
            }
            ok
        }
        Command::Incidents {
            state,
            limit,
            before,
            json,
            target,
        } => {
            let page = Page {
                state: state.as_deref(),
                limit,
                before,
            };
            let v = daemon(daemon(target.client())?.incidents(&page).await)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", incidents_table(&v, &page));
            }
            ok
        }
        Command::Show { id, target } => {
            let v = daemon(daemon(target.client())?.incident(id).await)?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ok
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
            let v = daemon(daemon(target.client())?.status().await)?;
            print!("{}", status_text(&v));
            // Scripts and monitors read the exit code: 1 means something is down.
            Ok(if status_unhealthy(&v) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Schedule(cmd) => Ok(if daemon(tocsin::cli::schedules::run(cmd).await)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Command::Silence(cmd) => {
            daemon(tocsin::cli::silences::run(cmd).await)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Maintenance(cmd) => {
            daemon(tocsin::cli::maintenance::run(cmd).await)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Health { target } => {
            let (healthy, v) = daemon(daemon(target.client())?.healthz().await)?;
            println!("{}", v["status"].as_str().unwrap_or("no answer"));
            Ok(if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn act(
    target: &Target,
    id: u64,
    action: &str,
    by: &str,
    duration: Option<&str>,
) -> Result<ExitCode, Failure> {
    let v = daemon(daemon(target.client())?.act(id, action, by, duration).await)?;
    println!(
        "incident {id} is now {} (by {by})",
        v["state"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
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
    tocsin::http::listener::raise_fd_limit();
    // Before anything answers: a SIGHUP (`systemctl reload`) that comes before the reload
    // task listens must not kill tocsin with the signal's default action. The reload task
    // takes this stream over, with any SIGHUP it already caught.
    let early_hup = std::sync::Arc::new(std::sync::Mutex::new(
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
    ));
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?
        .into_std()
        .context("taking the listening socket")?;
    info!(config = %path.display(), "{}", cfg.summary().replace('\n', "; "));
    for w in &cfg.warnings {
        warn!(config = %path.display(), "{w}");
    }
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut cfg = cfg;
    let mut ready = false;
    loop {
        // The socket stays open across a role change: connections wait in its backlog.
        let socket = tokio::net::TcpListener::from_std(
            listener
                .try_clone()
                .context("sharing the listening socket")?,
        )?;
        let opts = Options::new(cfg.clone(), data_dir.clone());
        let running = runtime::start(opts, socket).await?;
        if !ready {
            // Type=notify: systemd waits for this, and WatchdogSec for the engine loop's pings.
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            ready = true;
        }
        let reload = running.reload.clone();
        let hup = early_hup.clone();
        running.tasks.spawn(
            "sighup",
            runtime::Importance::BestEffort,
            &running.tasks.stopping(),
            move || reload_on_sighup(reload.clone(), hup.clone()),
        );
        let changed = tokio::select! {
            _ = &mut shutdown => None,
            // A task was given up: the daemon stops by itself, `wait` answers which task
            // and why, and the exit status (1) makes systemd start tocsin again.
            _ = running.tasks.failed() => None,
            // On a shared store: take over, or follow the instance that did. The daemon
            // stops by itself and starts again here in its new role.
            change = running.role_changed() => Some(change),
        };
        let Some(change) = changed else {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            running.stop();
            return running.wait().await;
        };
        running.wait().await?;
        info!("{change}: starting again");
        // The file may have changed since: a new leader runs what it says, if it is valid.
        match config::load_file(&path) {
            Ok(c) => cfg = c,
            Err(e) => {
                error!(config = %path.display(), error = %e, "alerts.toml is invalid now; starting again with the config read before")
            }
        }
    }
}

/// SIGHUP re-reads alerts.toml; a bad file keeps the running config (and says why).
async fn reload_on_sighup(
    reload: runtime::ReloadHandle,
    early: std::sync::Arc<std::sync::Mutex<Option<tokio::signal::unix::Signal>>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let taken = early.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut hup = match taken
        .map(Ok)
        .unwrap_or_else(|| signal(SignalKind::hangup()))
    {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot listen for SIGHUP; reload with POST /-/reload");
            // Trying again would fail the same way.
            return std::future::pending().await;
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
