//! `tocsin silence add`, `list` and `expire`: the silences API at a terminal.
//!
//! Silences belong to no schedule, so a time without an offset (`2027-01-04T09:00`) is
//! read on this machine's clock (its system time zone, `TZ` when set), with the DST
//! rules of schedules: a time the clocks skip is the instant they jump. Without
//! `--from` a silence starts at the daemon's now, and `--for` counts from there, so a
//! skewed laptop clock neither shortens nor delays it.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::schedules::{TimeArg, local_of, span};
use super::{Target, aligned};

pub(crate) const TIME_HELP: &str = "RFC 3339 (2027-01-04T15:00:00Z), or YYYY-MM-DDTHH:MM on this machine's clock (its system time zone; TZ when set)";

/// The silences' commands.
#[derive(Subcommand, Debug)]
pub enum SilenceCommand {
    /// Known noise: alerts a silence matches open no incident while it lasts (they are
    /// counted in tocsin_alerts_silenced_total). Make one, list them, expire one.
    Silence {
        #[command(subcommand)]
        action: SilenceAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum SilenceAction {
    /// Silence the firing alerts every --match matches, from --from (default: now)
    /// for --for or until --to. Resolved alerts still pass, so an incident already
    /// open can resolve.
    #[command(
        after_help = "Examples:\n  tocsin silence add --match 'service=\"db\"' --for 2h --comment \"db migration, OPS-12\"\n  tocsin silence add --match 'alertname=\"DiskFull\"' --match 'instance=~\"host[0-9]+\"' --from 2027-01-09T22:00 --to 2027-01-10T06:00 --comment \"backup fills /var\"\n\nTimes: RFC 3339, or YYYY-MM-DDTHH:MM read in this machine's time zone (TZ when set)."
    )]
    Add {
        /// An Alertmanager matcher on the alert's labels (label="value", !=, =~, !~);
        /// repeat it: every one must match.
        #[arg(long = "match", value_name = "MATCHER", required = true)]
        matchers: Vec<String>,
        #[arg(long, help = format!("When it starts: {TIME_HELP} (default: the daemon's now)"))]
        from: Option<TimeArg>,
        #[command(flatten)]
        end: SilenceEnd,
        /// Why: whoever misses these alerts will look here.
        #[arg(long)]
        comment: String,
        /// Who makes it, listed with it.
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// The silences in force or ahead.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// End a silence now, by its id (`tocsin silence list` shows them); the alerts it
    /// matched open incidents again.
    #[command(after_help = "Example: tocsin silence expire 3")]
    Expire {
        id: u64,
        #[command(flatten)]
        target: Target,
    },
}

/// A silence's end: a time, or how long after its start.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct SilenceEnd {
    #[arg(long, help = format!("When it ends: {TIME_HELP}"))]
    pub to: Option<TimeArg>,
    /// How long it lasts from --from, like 2h or 1d (instead of --to).
    #[arg(long = "for", value_name = "DURATION", value_parser = span)]
    pub span: Option<Duration>,
}

/// The body of `POST /api/v1/silences`. Without `from`, the daemon's now is the start
/// and `for` counts from it.
pub(crate) fn new_silence(
    matchers: Vec<String>,
    from: Option<TimeArg>,
    end: &SilenceEnd,
    comment: &str,
    by: &str,
    tz: &TimeZone,
) -> anyhow::Result<Value> {
    let mut body = json!({ "matchers": matchers, "comment": comment, "by": by });
    if let Some(f) = from {
        body["from"] = json!(f.resolve(tz)?.to_rfc3339());
    }
    match (end.to, end.span) {
        (Some(t), _) => body["to"] = json!(t.resolve(tz)?.to_rfc3339()),
        (None, Some(d)) => body["for"] = json!(format!("{}ms", d.as_millis())),
        (None, None) => anyhow::bail!("say when it ends: --to TIME or --for 2h"),
    }
    Ok(body)
}

/// The silences of a `GET /api/v1/silences` answer, times on `tz`'s clock.
pub fn silences_table(v: &Value, tz: &TimeZone) -> String {
    windows_table(v, "silences", tz)
}

/// The windows under `key` (`silences`, `maintenance`) of an API answer, as a table.
pub(crate) fn windows_table(v: &Value, key: &str, tz: &TimeZone) -> String {
    let mut rows = vec![
        ["ID", "MATCHERS", "FROM", "TO", "ACTIVE", "BY", "COMMENT"]
            .map(str::to_string)
            .to_vec(),
    ];
    for s in v[key].as_array().into_iter().flatten() {
        let matchers: Vec<&str> = s["matchers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        rows.push(vec![
            s["id"].to_string(),
            matchers.join(", "),
            local_of(tz, &s["from"]),
            local_of(tz, &s["to"]),
            if s["active"] == true {
                "yes"
            } else {
                "not yet"
            }
            .to_string(),
            s["by"].as_str().unwrap_or("").to_string(),
            s["comment"].as_str().unwrap_or("").to_string(),
        ]);
    }
    if rows.len() == 1 {
        return format!("no {key} in force or ahead\n");
    }
    aligned(&rows)
}

/// Runs one command.
pub async fn run(cmd: SilenceCommand) -> anyhow::Result<()> {
    let SilenceCommand::Silence { action } = cmd;
    let tz = TimeZone::try_system().context("this machine's time zone is not known: set TZ")?;
    match action {
        SilenceAction::Add {
            matchers,
            from,
            end,
            comment,
            by,
            target,
        } => {
            let shown_matchers = matchers.join(", ");
            let body = new_silence(matchers, from, &end, &comment, &by, &tz)?;
            let client = target.client()?;
            let id = client.post(&["silences"], &body).await?["id"].clone();
            // The daemon decided the times (its now, the end from --for): show its.
            let list = client.get(&["silences"], &[]).await?;
            let made = list["silences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["id"] == id);
            match made {
                Some(s) => println!(
                    "silence {id}: {shown_matchers} from {} to {} (by {by})",
                    local_of(&tz, &s["from"]),
                    local_of(&tz, &s["to"])
                ),
                None => println!("silence {id}: {shown_matchers} (by {by})"),
            }
        }
        SilenceAction::List { json, target } => {
            let v = target.client()?.get(&["silences"], &[]).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", silences_table(&v, &tz));
            }
        }
        SilenceAction::Expire { id, target } => {
            let id = id.to_string();
            target.client()?.delete(&["silences", &id]).await?;
            println!("silence {id} expired");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Line {
        #[command(subcommand)]
        command: SilenceCommand,
    }

    fn add(args: &[&str]) -> Result<SilenceAction, clap::Error> {
        let all = ["tocsin", "silence", "add"]
            .into_iter()
            .chain(args.iter().copied());
        Line::try_parse_from(all).map(|l| {
            let SilenceCommand::Silence { action } = l.command;
            action
        })
    }

    fn body(args: &[&str]) -> Value {
        let SilenceAction::Add {
            matchers,
            from,
            end,
            comment,
            by,
            ..
        } = add(args).unwrap()
        else {
            panic!("not an add")
        };
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        new_silence(matchers, from, &end, &comment, &by, &tz).unwrap()
    }

    #[test]
    fn for_counts_from_the_daemons_now_and_every_match_is_sent() {
        let b = body(&[
            "--match",
            "service=\"db\"",
            "--match",
            "env=~\"prod|stage\"",
            "--for",
            "2h",
            "--comment",
            "db migration",
            "--by",
            "alice",
        ]);
        assert_eq!(
            b,
            json!({"matchers": ["service=\"db\"", "env=~\"prod|stage\""], "for": "7200000ms",
                   "comment": "db migration", "by": "alice"})
        );
        assert!(crate::config::HumanDuration::parse("7200000ms").is_ok());
    }

    #[test]
    fn a_local_time_is_read_on_this_machines_clock_and_an_instant_as_written() {
        // Berlin is UTC+1 in January; 02:30 on its spring-forward night never shows and
        // is the jump to 03:00 CEST (01:00 UTC).
        let b = body(&[
            "--match",
            "service=\"db\"",
            "--from",
            "2027-03-28T02:30",
            "--to",
            "2027-01-10T06:00:00Z",
            "--comment",
            "backup",
        ]);
        assert_eq!(b["from"], "2027-03-28T01:00:00.000Z", "{b}");
        assert_eq!(b["to"], "2027-01-10T06:00:00.000Z", "{b}");
        let b = body(&[
            "--match",
            "a=\"b\"",
            "--to",
            "2027-01-10T06:00",
            "--comment",
            "x",
        ]);
        assert_eq!(b["to"], "2027-01-10T05:00:00.000Z", "{b}");
        assert!(b.get("from").is_none(), "no --from: the daemon's now");
    }

    #[test]
    fn a_silence_needs_a_matcher_an_end_and_a_comment() {
        use clap::error::ErrorKind;
        let no_match = add(&["--for", "2h", "--comment", "x"]).unwrap_err();
        assert_eq!(no_match.kind(), ErrorKind::MissingRequiredArgument);
        let no_end = add(&["--match", "a=\"b\"", "--comment", "x"]).unwrap_err();
        assert_eq!(no_end.kind(), ErrorKind::MissingRequiredArgument);
        let both = add(&[
            "--match",
            "a=\"b\"",
            "--for",
            "1h",
            "--to",
            "2027-01-10T06:00",
            "--comment",
            "x",
        ])
        .unwrap_err();
        assert_eq!(both.kind(), ErrorKind::ArgumentConflict);
        let no_comment = add(&["--match", "a=\"b\"", "--for", "1h"]).unwrap_err();
        assert_eq!(no_comment.kind(), ErrorKind::MissingRequiredArgument);
        let zero = add(&["--match", "a=\"b\"", "--for", "0s", "--comment", "x"]).unwrap_err();
        assert!(zero.to_string().contains("longer than 0s"), "{zero}");
        let typo = add(&["--match", "a=\"b\"", "--to", "tomorrow", "--comment", "x"]).unwrap_err();
        assert!(typo.to_string().contains("is not a time"), "{typo}");
    }

    #[test]
    fn the_list_shows_each_silence_on_the_local_clock_and_whether_it_is_in_force() {
        let v = json!({"silences": [
            {"id": 1, "matchers": ["service=\"db\"", "env=\"prod\""], "from": "2027-01-09T21:00:00.000Z",
             "to": "2027-01-10T05:00:00.000Z", "comment": "backup", "by": "alice",
             "created_at": "2027-01-09T20:00:00.000Z", "active": true},
            {"id": 2, "matchers": ["alertname=\"DiskFull\""], "from": "2027-01-11T08:00:00.000Z",
             "to": "2027-01-11T09:00:00.000Z", "comment": "disk swap", "by": "bob",
             "created_at": "2027-01-09T20:00:00.000Z", "active": false},
        ]});
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let out = silences_table(&v, &tz);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("ID  MATCHERS"), "{out}");
        assert!(
            lines[1].starts_with("1   service=\"db\", env=\"prod\"")
                && lines[1].contains("Sat 2027-01-09 22:00 CET")
                && lines[1].contains("Sun 2027-01-10 06:00 CET")
                && lines[1].contains(" yes ")
                && lines[1].ends_with("alice  backup"),
            "{out}"
        );
        assert!(lines[2].contains(" not yet "), "{out}");
        assert_eq!(
            silences_table(&json!({"silences": []}), &tz),
            "no silences in force or ahead\n"
        );
    }
}
