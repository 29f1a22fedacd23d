//! `tocsin oncall`, `shifts`, `override` and `schedules check`: the schedules API at a
//! terminal, with times read and shown on each schedule's wall clock.
//!
//! A local time on the command line (`2027-01-04T09:00`) is read in the schedule's zone,
//! which the daemon names in `GET /api/v1/schedules`, with the DST rules of the
//! schedules themselves (`schedule::wall`): "from 02:30" on a spring-forward night
//! starts at 03:00, the first instant the clocks show after the gap. "Now" is the
//! daemon's, from the same answer, so an override made "for 8h" lasts 8 hours of the
//! clock that decides who is paged.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::{Client, Target};
use crate::config::HumanDuration;
use crate::http::schedules::MAX_SPAN;
use crate::schedule::wall;
use crate::time::Timestamp;

/// The schedules' commands, flattened into the binary's command list.
#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Who is on call now (or at --at), for every schedule or one: who, why (a
    /// rotation's name, a rule, an override, the fallback) and until when, in the
    /// schedule's zone and UTC.
    #[command(
        after_help = "Examples:\n  tocsin oncall\n  tocsin oncall primary --at 2027-01-09T22:00\n  tocsin oncall primary --at 2027-01-10T04:00:00Z --json"
    )]
    Oncall {
        schedule: Option<String>,
        /// RFC 3339, or YYYY-MM-DDTHH:MM in the schedule's zone (default: now).
        #[arg(long)]
        at: Option<TimeArg>,
        /// Print the API's JSON (a list of answers) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// A schedule's shifts over a range (default: the next 14 days, at most 92), in its
    /// zone.
    #[command(
        after_help = "Examples:\n  tocsin shifts primary\n  tocsin shifts primary --from 2027-03-01T00:00 --to 2027-04-01T00:00 --contact bob"
    )]
    Shifts {
        schedule: String,
        /// RFC 3339, or YYYY-MM-DDTHH:MM in the schedule's zone (default: now).
        #[arg(long)]
        from: Option<TimeArg>,
        /// RFC 3339, or YYYY-MM-DDTHH:MM in the schedule's zone (default: 14 days on).
        #[arg(long)]
        to: Option<TimeArg>,
        /// Only this contact's shifts.
        #[arg(long)]
        contact: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Change who is on call for a while (add, remove or replace a person), list the
    /// overrides in force or ahead, delete one.
    Override {
        #[command(subcommand)]
        action: OverrideAction,
    },
    /// Schedules as a whole.
    Schedules {
        #[command(subcommand)]
        action: SchedulesAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum OverrideAction {
    /// Put CONTACT on call as well.
    #[command(after_help = "Example: tocsin override add primary dana --for 8h")]
    Add {
        schedule: String,
        contact: String,
        #[command(flatten)]
        window: Window,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// Take CONTACT off call (nothing happens while they are not on call).
    #[command(
        after_help = "Example: tocsin override remove primary bob --from 2027-01-08T12:00 --to 2027-01-08T18:00"
    )]
    Remove {
        schedule: String,
        contact: String,
        #[command(flatten)]
        window: Window,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// Put WITH on call instead of CONTACT, while CONTACT is on call.
    #[command(
        after_help = "Example: tocsin override replace primary bob carol --from 2027-01-08T09:00 --for 1d"
    )]
    Replace {
        schedule: String,
        contact: String,
        with: String,
        #[command(flatten)]
        window: Window,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete an override by its id (`tocsin override list` shows them).
    Delete {
        schedule: String,
        id: u64,
        #[command(flatten)]
        target: Target,
    },
    /// The overrides of a schedule in force or ahead.
    List {
        schedule: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand, Debug)]
pub enum SchedulesAction {
    /// Every gap (nobody on call: the fallback is paged) and overlap (two or more on
    /// call at once) in the next --days days, for each schedule or one; exits 1 when
    /// any schedule has a gap.
    #[command(
        after_help = "Exit status: 0 when no schedule has a gap ahead (overlaps are listed, they do not fail it); 1 when one has; 3 when the daemon cannot be reached or refused.\n\nExample (cron, mail on failure): tocsin schedules check --days 7"
    )]
    Check {
        /// Only this schedule.
        schedule: Option<String>,
        /// How far ahead to look, 1 to 92 days.
        #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u64).range(1..=92))]
        days: u64,
        /// Print the API's JSON (a list of answers) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

/// When an override starts and ends.
#[derive(Args, Debug, Clone)]
pub struct Window {
    /// RFC 3339, or YYYY-MM-DDTHH:MM in the schedule's zone (default: now).
    #[arg(long)]
    pub from: Option<TimeArg>,
    #[command(flatten)]
    pub end: End,
}

/// An override's end: a time, or how long after its start.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct End {
    /// RFC 3339, or YYYY-MM-DDTHH:MM in the schedule's zone.
    #[arg(long)]
    pub to: Option<TimeArg>,
    /// How long it lasts from --from, like 8h or 2d (instead of --to).
    #[arg(long = "for", value_name = "DURATION", value_parser = span)]
    pub span: Option<Duration>,
}

/// A `--for` duration: human (`8h`, `2d`), and more than nothing.
pub(crate) fn span(s: &str) -> Result<Duration, String> {
    let d = HumanDuration::parse(s)?.0;
    if d.is_zero() {
        return Err("it must last longer than 0s".into());
    }
    Ok(d)
}

/// A time on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeArg {
    /// With an offset (RFC 3339): the same instant wherever the schedule is.
    Instant(Timestamp),
    /// Without one: the schedule's wall clock.
    Local(DateTime),
}

impl FromStr for TimeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(t) = s.parse::<jiff::Timestamp>() {
            return Ok(TimeArg::Instant(Timestamp(t.as_millisecond())));
        }
        // A civil time carries no offset; one with an offset or a zone was either an
        // instant above or is a typo, and is refused rather than half read.
        let time_part = s.find(['T', 't', ' ']).map_or("", |i| &s[i..]);
        let civil = !s.contains(['[', 'Z', 'z']) && !time_part.contains(['+', '-']);
        match s.parse::<DateTime>() {
            Ok(dt) if civil => Ok(TimeArg::Local(dt)),
            _ => Err(format!(
                "{s:?} is not a time: write RFC 3339 (2027-01-04T15:00:00Z) or a local time without an offset (2027-01-04T09:00)"
            )),
        }
    }
}

impl TimeArg {
    /// The instant this names on `tz`'s wall clock.
    pub fn resolve(self, tz: &TimeZone) -> anyhow::Result<Timestamp> {
        match self {
            TimeArg::Instant(t) => Ok(t),
            TimeArg::Local(dt) => {
                wall::instant(tz, dt).with_context(|| format!("{dt} is out of range"))
            }
        }
    }
}

/// What the commands need of a schedule: its zone and the daemon's now.
pub struct Known {
    pub name: String,
    /// The IANA name, shown to say which wall clock the times are on.
    pub zone: String,
    pub tz: TimeZone,
    pub now: Timestamp,
    /// The schedule's entry in `GET /api/v1/schedules`.
    pub entry: Value,
}

/// The schedules of a `GET /api/v1/schedules` answer.
pub fn known(v: &Value) -> anyhow::Result<Vec<Known>> {
    let mut out = Vec::new();
    for entry in v["schedules"].as_array().into_iter().flatten() {
        let name = entry["name"].as_str().unwrap_or_default().to_string();
        let zone = entry["time_zone"].as_str().unwrap_or("UTC").to_string();
        let tz = TimeZone::get(&zone)
            .with_context(|| format!("schedule {name}: time zone {zone:?} is not known here"))?;
        let now = entry["now"]["at"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339)
            .with_context(|| format!("schedule {name}: the answer has no now.at"))?;
        out.push(Known {
            name,
            zone,
            tz,
            now,
            entry: entry.clone(),
        });
    }
    Ok(out)
}

/// `name` among `all`, or an error naming the schedules there are.
pub fn pick<'a>(all: &'a [Known], name: &str) -> anyhow::Result<&'a Known> {
    if let Some(k) = all.iter().find(|k| k.name == name) {
        return Ok(k);
    }
    let names: Vec<&str> = all.iter().map(|k| k.name.as_str()).collect();
    if names.is_empty() {
        bail!("no schedule {name:?}: the daemon has no schedules");
    }
    bail!("no schedule {name:?} (schedules: {})", names.join(", "))
}

/// The schedules asked about: `name`, or all of them.
fn chosen<'a>(all: &'a [Known], name: Option<&str>) -> anyhow::Result<Vec<&'a Known>> {
    match name {
        Some(n) => Ok(vec![pick(all, n)?]),
        None => Ok(all.iter().collect()),
    }
}

async fn fetch(client: &Client) -> anyhow::Result<Vec<Known>> {
    known(&client.get(&["schedules"], &[]).await?)
}

/// Runs one command. `Ok(false)`: it found what its exit status reports (a gap ahead).
pub async fn run(cmd: ScheduleCommand) -> anyhow::Result<bool> {
    match cmd {
        ScheduleCommand::Oncall {
            schedule,
            at,
            json,
            target,
        } => {
            let client = target.client()?;
            let all = fetch(&client).await?;
            let mut answers = Vec::new();
            for k in chosen(&all, schedule.as_deref())? {
                let view = match at {
                    None => k.entry["now"].clone(),
                    Some(at) => {
                        let at = at.resolve(&k.tz)?;
                        let q = [("at", at.to_rfc3339())];
                        client.get(&["schedules", &k.name, "oncall"], &q).await?
                    }
                };
                answers.push((k, view));
            }
            if json {
                let list: Vec<&Value> = answers.iter().map(|(_, v)| v).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", oncall_table(&answers));
            }
            Ok(true)
        }
        ScheduleCommand::Shifts {
            schedule,
            from,
            to,
            contact,
            json,
            target,
        } => {
            let client = target.client()?;
            let all = fetch(&client).await?;
            let k = pick(&all, &schedule)?;
            let mut q = Vec::new();
            if let Some(f) = from {
                q.push(("from", f.resolve(&k.tz)?.to_rfc3339()));
            }
            if let Some(t) = to {
                q.push(("to", t.resolve(&k.tz)?.to_rfc3339()));
            }
            if let Some(c) = contact {
                q.push(("contact", c));
            }
            let v = client.get(&["schedules", &k.name, "shifts"], &q).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", shifts_table(k, &v));
            }
            Ok(true)
        }
        ScheduleCommand::Override { action } => {
            overrides(action).await?;
            Ok(true)
        }
        ScheduleCommand::Schedules {
            action:
                SchedulesAction::Check {
                    schedule,
                    days,
                    json,
                    target,
                },
        } => {
            let client = target.client()?;
            let all = fetch(&client).await?;
            let mut answers = Vec::new();
            for k in chosen(&all, schedule.as_deref())? {
                let to = k.now.plus(Duration::from_secs(days * 86_400).min(MAX_SPAN));
                let q = [("from", k.now.to_rfc3339()), ("to", to.to_rfc3339())];
                let v = client.get(&["schedules", &k.name, "check"], &q).await?;
                answers.push((k, v));
            }
            let (text, gap) = findings_text(&answers, days);
            if json {
                let list: Vec<&Value> = answers.iter().map(|(_, v)| v).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{text}");
            }
            Ok(!gap)
        }
    }
}

async fn overrides(action: OverrideAction) -> anyhow::Result<()> {
    let (schedule, kind, contact, with, window, by, target) = match action {
        OverrideAction::Add {
            schedule,
            contact,
            window,
            by,
            target,
        } => (schedule, "add", contact, None, window, by, target),
        OverrideAction::Remove {
            schedule,
            contact,
            window,
            by,
            target,
        } => (schedule, "remove", contact, None, window, by, target),
        OverrideAction::Replace {
            schedule,
            contact,
            with,
            window,
            by,
            target,
        } => (schedule, "replace", contact, Some(with), window, by, target),
        OverrideAction::Delete {
            schedule,
            id,
            target,
        } => {
            let client = target.client()?;
            let id = id.to_string();
            client
                .delete(&["schedules", &schedule, "overrides", &id])
                .await?;
            println!("override {id} of {schedule} deleted");
            return Ok(());
        }
        OverrideAction::List {
            schedule,
            json,
            target,
        } => {
            let client = target.client()?;
            let all = fetch(&client).await?;
            let k = pick(&all, &schedule)?;
            let v = client
                .get(&["schedules", &k.name, "overrides"], &[])
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", overrides_table(k, &v));
            }
            return Ok(());
        }
    };
    let client = target.client()?;
    let all = fetch(&client).await?;
    let k = pick(&all, &schedule)?;
    let from = match window.from {
        Some(f) => f.resolve(&k.tz)?,
        None => k.now,
    };
    let to = match (window.end.to, window.end.span) {
        (Some(t), _) => t.resolve(&k.tz)?,
        (None, Some(d)) => from.plus(d),
        (None, None) => bail!("say when it ends: --to TIME or --for 8h"),
    };
    let mut body = json!({
        "kind": kind, "contact": contact, "from": from.to_rfc3339(), "to": to.to_rfc3339(), "by": by,
    });
    if let Some(w) = &with {
        body["with"] = json!(w);
    }
    let v = client
        .post(&["schedules", &k.name, "overrides"], &body)
        .await?;
    let what = match (kind, &with) {
        ("replace", Some(w)) => format!("{w} replaces {contact}"),
        ("remove", _) => format!("{contact} is off call"),
        _ => format!("{contact} is on call as well"),
    };
    println!(
        "override {} of {}: {what} from {} to {} (by {by})",
        v["id"],
        k.name,
        local(&k.tz, from),
        local(&k.tz, to)
    );
    Ok(())
}

mod tables;

use tables::local;
pub(crate) use tables::local_of;
pub use tables::{findings_text, oncall_table, overrides_table, shifts_table};

#[cfg(test)]
mod tests;
