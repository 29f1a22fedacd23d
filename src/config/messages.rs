//! Serde's errors reworded for people editing TOML: what to write instead of an unknown
//! key, and hints for values of the wrong kind.

use super::locate::{KeyPath, Seg};

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, [`a`, `b`]).
pub(super) fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((name.to_string(), expected))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Says what to write instead of an unknown key.
pub(super) fn unknown_key_message(name: &str, expected: &[String], path: &str) -> String {
    let file_key = format!("{name}_file");
    if expected.contains(&file_key) {
        return format!(
            "secrets are never inline: use {name}_file or {name}_env (a file only tocsin can read, or an environment variable)"
        );
    }
    if path == "sources.irc" {
        return "the IRC source is not available in this build yet (the README describes it)"
            .to_string();
    }
    if expected.is_empty() {
        // Only a `log` notifier has no options at all.
        return format!("unknown key `{name}`: a log notifier has no options besides `type`");
    }
    let list = expected
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match expected.iter().min_by_key(|e| edit_distance(name, e)) {
        Some(close) if edit_distance(name, close) <= 2 => {
            format!("unknown key `{name}`: did you mean `{close}`? (allowed here: {list})")
        }
        _ => format!("unknown key `{name}` (allowed here: {list})"),
    }
}

/// Keys whose values are durations, so a bare number gets a hint.
const DURATION_KEYS: &[&str] = &[
    "after",
    "repeat_after",
    "ack_timeout",
    "timeout",
    "within",
    "for",
];

/// Rewords serde's message about a bad value for people editing TOML.
pub(super) fn value_message(message: &str, path: &KeyPath) -> String {
    let message = message.replacen("missing field", "missing required key", 1);
    let is_duration =
        matches!(path.0.last(), Some(Seg::Key(k)) if DURATION_KEYS.contains(&k.as_str()));
    if is_duration && message.starts_with("invalid type") {
        return format!("{message}: durations are quoted, like \"30s\", \"5m\" or \"1h 30m\"");
    }
    message
}

/// `"a table"`, `"an integer"`: for messages about a value of the wrong kind.
pub(super) fn with_article(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}
