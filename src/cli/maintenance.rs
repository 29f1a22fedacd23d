//! `tocsin maintenance start`, `list`, `extend` and `end`: maintenance windows at a
//! terminal. Times are read as for silences (on this machine's clock without an
//! offset), and the body is the silences' body.

use anyhow::Context;
use clap::Subcommand;
use jiff::tz::TimeZone;
use serde_json::json;

use super::Target;
use super::schedules::TimeArg;
use super::silences::{SilenceEnd, TIME_HELP, new_silence, windows_table};

/// The maintenance windows' commands.
#[derive(Subcommand, Debug)]
pub enum MaintenanceCommand {
    /// Planned work: incidents a window matches are recorded but page nobody until it
    /// ends; then what is still open pages from step 1. Start one, list, extend, end.
    Maintenance {
        #[command(subcommand)]
        action: MaintenanceAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum MaintenanceAction {
    /// Hold the pages of incidents every --match matches (on the incident's labels),
    /// from --from (default: now) for --for or until --to, at most [defaults]
    /// max_maintenance (24h) away.
    #[command(
        after_help = "Example:\n  tocsin maintenance start --match 'service=\"db\"' --for 2h --comment \"db failover test\""
    )]
    Start {
        /// An Alertmanager matcher on the incident's labels; repeat it: every one must match.
        #[arg(long = "match", value_name = "MATCHER", required = true)]
        matchers: Vec<String>,
        #[arg(long, help = format!("When it starts: {TIME_HELP} (default: the daemon's now)"))]
        from: Option<TimeArg>,
        #[command(flatten)]
        end: SilenceEnd,
        /// What the work is, said in the history of every incident it holds.
        #[arg(long)]
        comment: String,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// The windows in force or ahead.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// The work runs long: move the window's end (--for counts from now).
    #[command(after_help = "Example: tocsin maintenance extend 3 --for 1h")]
    Extend {
        id: u64,
        #[command(flatten)]
        end: SilenceEnd,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// End a window now: what it held pages from step 1.
    #[command(after_help = "Example: tocsin maintenance end 3")]
    End {
        id: u64,
        #[command(flatten)]
        target: Target,
    },
}

/// Runs one command.
pub async fn run(cmd: MaintenanceCommand) -> anyhow::Result<()> {
    let MaintenanceCommand::Maintenance { action } = cmd;
    let tz = TimeZone::try_system().context("this machine's time zone is not known: set TZ")?;
    match action {
        MaintenanceAction::Start {
            matchers,
            from,
            end,
            comment,
            by,
            target,
        } => {
            let shown = matchers.join(", ");
            let body = new_silence(matchers, from, &end, &comment, &by, &tz)?;
            let id = target.client()?.post(&["maintenance"], &body).await?["id"].clone();
            println!(
                "maintenance {id}: {shown} (by {by}); incidents it matches page nobody until it ends"
            );
        }
        MaintenanceAction::List { json, target } => {
            let v = target.client()?.get(&["maintenance"], &[]).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", windows_table(&v, "maintenance", &tz));
            }
        }
        MaintenanceAction::Extend {
            id,
            end,
            by,
            target,
        } => {
            let mut body = json!({ "by": by });
            match (end.to, end.span) {
                (Some(t), _) => body["to"] = json!(t.resolve(&tz)?.to_rfc3339()),
                (None, Some(d)) => body["for"] = json!(format!("{}ms", d.as_millis())),
                (None, None) => anyhow::bail!("say when it ends: --to TIME or --for 1h"),
            }
            let id = id.to_string();
            let v = target
                .client()?
                .post(&["maintenance", &id, "extend"], &body)
                .await?;
            println!(
                "maintenance {id} now ends at {}",
                v["to"].as_str().unwrap_or("?")
            );
        }
        MaintenanceAction::End { id, target } => {
            let id = id.to_string();
            target.client()?.delete(&["maintenance", &id]).await?;
            println!("maintenance {id} ended; what it held pages from step 1");
        }
    }
    Ok(())
}
