//! What the schedules' commands print: tables and lines with times on each schedule's
//! wall clock (the zone's abbreviation says which offset), and UTC where it helps.

use jiff::tz::TimeZone;
use serde_json::Value;

use super::Known;
use crate::cli::aligned;
use crate::schedule::wall;
use crate::time::{Timestamp, human};

/// `Mon 2027-01-11 09:00 CST`.
pub(super) fn local(tz: &TimeZone, t: Timestamp) -> String {
    wall::shown(tz, t, "%a %Y-%m-%d %H:%M %Z")
}

/// An API time on `tz`'s wall clock, or the text as given when it is not one.
pub(crate) fn local_of(tz: &TimeZone, v: &Value) -> String {
    let s = v.as_str().unwrap_or("?");
    Timestamp::parse_rfc3339(s).map_or_else(|| s.to_string(), |t| local(tz, t))
}

/// Who is on call in each schedule, one row each.
pub fn oncall_table(answers: &[(&Known, Value)]) -> String {
    let mut rows = vec![vec![
        "SCHEDULE".to_string(),
        "ON CALL".to_string(),
        "VIA".to_string(),
        "UNTIL".to_string(),
    ]];
    for (k, v) in answers {
        let names = strings(&v["oncall"]);
        let who = match (names.is_empty(), v["gap"].as_bool() == Some(true)) {
            (true, _) => "nobody (gap)".to_string(),
            (false, true) => format!("{} (gap: fallback)", names.join(", ")),
            (false, false) => names.join(", "),
        };
        let until = match v["until"].as_str().and_then(Timestamp::parse_rfc3339) {
            Some(t) => format!(
                "{} ({})",
                local(&k.tz, t),
                wall::shown(&TimeZone::UTC, t, "%Y-%m-%d %H:%M UTC")
            ),
            None => "no change ahead".to_string(),
        };
        rows.push(vec![
            k.name.clone(),
            who,
            strings(&v["via"]).join(", "),
            until,
        ]);
    }
    if rows.len() == 1 {
        return "no schedules\n".to_string();
    }
    aligned(&rows)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// A schedule's shifts on its wall clock.
pub fn shifts_table(k: &Known, v: &Value) -> String {
    let mut out = format!(
        "{}: shifts from {} to {} ({})\n",
        k.name,
        local_of(&k.tz, &v["from"]),
        local_of(&k.tz, &v["to"]),
        k.zone
    );
    let mut rows = vec![vec![
        "CONTACT".to_string(),
        "START".to_string(),
        "END".to_string(),
        "VIA".to_string(),
    ]];
    for s in v["shifts"].as_array().into_iter().flatten() {
        rows.push(vec![
            s["contact"].as_str().unwrap_or("?").to_string(),
            local_of(&k.tz, &s["start"]),
            local_of(&k.tz, &s["end"]),
            s["via"].as_str().unwrap_or("").to_string(),
        ]);
    }
    if rows.len() == 1 {
        out.push_str("no shifts in that range\n");
    } else {
        out.push_str(&aligned(&rows));
    }
    out
}

/// A schedule's overrides on its wall clock.
pub fn overrides_table(k: &Known, v: &Value) -> String {
    let mut rows = vec![
        ["ID", "KIND", "CONTACT", "WITH", "FROM", "TO", "BY"]
            .map(str::to_string)
            .to_vec(),
    ];
    for o in v["overrides"].as_array().into_iter().flatten() {
        rows.push(vec![
            o["id"].to_string(),
            o["kind"].as_str().unwrap_or("?").to_string(),
            o["contact"].as_str().unwrap_or("?").to_string(),
            o["with"].as_str().unwrap_or("-").to_string(),
            local_of(&k.tz, &o["from"]),
            local_of(&k.tz, &o["to"]),
            o["by"].as_str().unwrap_or("").to_string(),
        ]);
    }
    if rows.len() == 1 {
        return format!("{}: no overrides in force or ahead\n", k.name);
    }
    aligned(&rows)
}

/// One line per gap and overlap, or per schedule without any; and whether there was a gap.
pub fn findings_text(answers: &[(&Known, Value)], days: u64) -> (String, bool) {
    let mut out = String::new();
    let mut gaps = 0;
    for (k, v) in answers {
        let findings = v["findings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if findings.is_empty() {
            out.push_str(&format!(
                "{}: no gap or overlap in the next {days} days\n",
                k.name
            ));
        }
        for f in findings {
            let start = f["start"].as_str().and_then(Timestamp::parse_rfc3339);
            let end = f["end"].as_str().and_then(Timestamp::parse_rfc3339);
            let long = match (start, end) {
                (Some(s), Some(e)) => human(e.since(s)),
                _ => "?".to_string(),
            };
            let when = format!(
                "{} to {} ({long})",
                local_of(&k.tz, &f["start"]),
                local_of(&k.tz, &f["end"])
            );
            if f["kind"] == "gap" {
                gaps += 1;
                let fallback = match k.entry["fallback"].as_str() {
                    Some(f) => format!("{f} (the fallback) is paged"),
                    None => "nobody is paged: the schedule has no fallback".to_string(),
                };
                out.push_str(&format!(
                    "{}: GAP {when}: nobody on call, {fallback}\n",
                    k.name
                ));
            } else {
                out.push_str(&format!(
                    "{}: overlap {when}: {}\n",
                    k.name,
                    strings(&f["contacts"]).join(", ")
                ));
            }
        }
    }
    if gaps > 0 {
        out.push_str(&format!("{gaps} gap(s) in the next {days} days\n"));
    }
    (out, gaps > 0)
}
