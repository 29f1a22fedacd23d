//! Chat commands: `!ack 42`, `tocsin: ack 42`, or `ack 42` in a private message.

use std::time::Duration;

use super::mask::same_name;
use super::text::{clean_line, strip_formatting};
use crate::config::HumanDuration;
use crate::engine::{IncidentId, MAX_SNOOZE, WindowId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    Ack(AckTarget),
    Unack(IncidentId),
    Snooze(IncidentId, Duration),
    Resolve(IncidentId),
    Incidents,
    /// Who is on call: in every schedule, or the one named (as typed; the desk looks it up).
    Oncall(Option<String>),
    Status,
    Help,
    Maint(Maint),
}

/// `!maint`: planned work whose incidents page nobody while its window lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maint {
    /// The windows in force or ahead.
    List,
    /// `!maint start 2h service="db" env="prod" db failover test`.
    Start {
        duration: Duration,
        /// As typed, one per matcher; the engine reads them.
        matchers: Vec<String>,
        comment: String,
    },
    /// `!maint end 3`: now; what it held pages from step 1.
    End(WindowId),
    /// `!maint extend 3 1h`: its end that much later.
    Extend(WindowId, Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckTarget {
    One(IncidentId),
    /// Every incident currently triggered.
    All,
}

impl ChatCommand {
    /// Whether the answer depends on who asks, so the sender's account must be known:
    /// every command but `!help`. State changes need an acker; `!incidents`, `!oncall`
    /// and `!status` too once credentials are configured (they name incidents, who
    /// acked, who is on call and the links tocsin depends on).
    pub fn needs_sender(&self) -> bool {
        !matches!(self, ChatCommand::Help)
    }

    /// Whether it changes an incident or a maintenance window.
    pub fn changes_state(&self) -> bool {
        matches!(
            self,
            ChatCommand::Ack(_)
                | ChatCommand::Unack(_)
                | ChatCommand::Snooze(..)
                | ChatCommand::Resolve(_)
                | ChatCommand::Maint(Maint::Start { .. } | Maint::End(_) | Maint::Extend(..))
        )
    }
}

/// The one-line help `!help` answers and errors point at.
pub const HELP: &str = "commands: !ack ID|all, !unack ID, !snooze ID 30m, !resolve ID, !incidents, !oncall [schedule], !status, !help, !maint (windows), !maint start 2h service=\"db\" [more matchers] comment, !maint end ID, !maint extend ID 1h";

/// Words people type back at us are quoted in replies; a cap keeps the reply on one line.
const MAX_ECHOED_CHARS: usize = 32;

/// Words a line may start with, in any case, to be read as a command.
const COMMAND_WORDS: &[&str] = &[
    "ack",
    "unack",
    "snooze",
    "resolve",
    "incidents",
    "list",
    "oncall",
    "status",
    "help",
    "maint",
];

/// How a line got to us decides how much we may assume it was meant for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addressing {
    /// `!word` in a channel: other bots share the `!` prefix, so unknown words are theirs.
    Bang,
    /// `tocsin: word`, or `!word` in private: certainly for us.
    Direct,
    /// `word` in private: for us only when it is one of our words.
    Bare,
}

/// Reads a line addressed to the bot. `None`: not for us (ordinary chat, CTCP).
/// `Some(Err(reply))`: for us but not understood; the reply says why, briefly.
pub fn parse(text: &str, my_nick: &str, private: bool) -> Option<Result<ChatCommand, String>> {
    // clean_line would blank the \x01 and hide that this is a CTCP (an ACTION says
    // "/me ack 42" about someone, it is not a command).
    if strip_formatting(text).trim_start().starts_with('\x01') {
        return None;
    }
    let line = clean_line(text);
    let (rest, addressing) = addressed(&line, my_nick, private)?;
    let Some((word, tail)) = next_word(rest) else {
        // "tocsin:" on its own is someone asking what the bot can do.
        return (addressing == Addressing::Direct).then_some(Ok(ChatCommand::Help));
    };
    let word = word.to_lowercase();
    if !COMMAND_WORDS.contains(&word.as_str()) {
        return match addressing {
            Addressing::Bang | Addressing::Bare => None,
            Addressing::Direct => Some(Err(format!("unknown command {}; {HELP}", quoted(&word)))),
        };
    }
    if word == "maint" {
        // Matcher values may hold spaces inside their quotes: read as typed, not as words.
        return Some(maint(tail).map(ChatCommand::Maint));
    }
    let args: Vec<&str> = tail.split_whitespace().collect();
    Some(command(&word, &args))
}

/// The first word of `s` and what follows it, or `None` when `s` is blank.
fn next_word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    Some(s.split_once(char::is_whitespace).unwrap_or((s, "")))
}

/// The part of `line` after whatever addressed it to us, or `None` for ordinary chat.
fn addressed<'a>(line: &'a str, my_nick: &str, private: bool) -> Option<(&'a str, Addressing)> {
    if let Some(rest) = line.strip_prefix('!') {
        let how = if private {
            Addressing::Direct
        } else {
            Addressing::Bang
        };
        return Some((rest, how));
    }
    if let Some(rest) = after_nick(line, my_nick) {
        return Some((rest, Addressing::Direct));
    }
    // In private only a known command word counts: relay bots may send their alert
    // lines to us privately, and answering each with "unknown command" would be spam.
    let first = line.split_whitespace().next()?.to_lowercase();
    (private && COMMAND_WORDS.contains(&first.as_str())).then_some((line, Addressing::Bare))
}

/// `Tocsin: rest` or `tocsin, rest` → `rest`.
fn after_nick<'a>(line: &'a str, my_nick: &str) -> Option<&'a str> {
    if my_nick.is_empty() {
        return None;
    }
    let prefix = line.get(..my_nick.len())?;
    if !same_name(prefix, my_nick) {
        return None;
    }
    let rest = &line[my_nick.len()..];
    rest.strip_prefix(':').or_else(|| rest.strip_prefix(','))
}

fn command(word: &str, args: &[&str]) -> Result<ChatCommand, String> {
    match word {
        "ack" => ack(args.first().copied()),
        "unack" => Ok(ChatCommand::Unack(required_id(args, "unack")?)),
        "snooze" => snooze(args),
        "resolve" => Ok(ChatCommand::Resolve(required_id(args, "resolve")?)),
        "incidents" | "list" => Ok(ChatCommand::Incidents),
        "oncall" => Ok(ChatCommand::Oncall(args.first().map(|s| s.to_string()))),
        "status" => Ok(ChatCommand::Status),
        "help" => Ok(ChatCommand::Help),
        other => unreachable!("{other} is in COMMAND_WORDS but has no parser"),
    }
}

fn ack(arg: Option<&str>) -> Result<ChatCommand, String> {
    match arg {
        None => Err("ack needs an incident number: !ack 42 (or !ack all)".into()),
        Some(a) if a.eq_ignore_ascii_case("all") => Ok(ChatCommand::Ack(AckTarget::All)),
        Some(a) => Ok(ChatCommand::Ack(AckTarget::One(id(a, "!ack 42")?))),
    }
}

/// The first argument as an incident number; words after it are a note for humans.
fn required_id(args: &[&str], name: &str) -> Result<IncidentId, String> {
    let example = format!("!{name} 42");
    match args.first() {
        None => Err(format!("{name} needs an incident number: {example}")),
        Some(a) => id(a, &example),
    }
}

fn snooze(args: &[&str]) -> Result<ChatCommand, String> {
    const EXAMPLE: &str = "!snooze 42 30m";
    let Some((first, rest)) = args.split_first() else {
        return Err(format!(
            "snooze needs an incident number and a duration: {EXAMPLE}"
        ));
    };
    let incident = id(first, EXAMPLE)?;
    let Some(d) = longest_duration(rest) else {
        return Err(match rest.first() {
            None => format!("snooze needs a duration: {EXAMPLE}"),
            Some(w) => format!("{} is not a duration: {EXAMPLE}", quoted(w)),
        });
    };
    if d.is_zero() {
        return Err(format!("snooze needs a duration above 0: {EXAMPLE}"));
    }
    if d > MAX_SNOOZE {
        return Err(format!(
            "snooze is at most 7 days; for longer, resolve it: {EXAMPLE}"
        ));
    }
    Ok(ChatCommand::Snooze(incident, d))
}

/// The longest run of leading words that reads as one duration, so that both
/// `!snooze 42 1h 30m` and `!snooze 42 2h deploying the fix` mean what they say.
fn longest_duration(words: &[&str]) -> Option<Duration> {
    // "1w 2d 3h 4m 5s" is as long as a real duration gets; the rest is a note.
    (1..=words.len().min(5))
        .rev()
        .find_map(|n| HumanDuration::parse(&words[..n].join(" ")).ok())
        .map(|d| d.0)
}

const MAINT_START: &str = "!maint start 2h service=\"db\" db failover test";

/// `!maint`, `!maint start DURATION MATCHER... COMMENT`, `!maint end ID`,
/// `!maint extend ID DURATION`; `rest` is what follows `maint`.
fn maint(rest: &str) -> Result<Maint, String> {
    let Some((sub, rest)) = next_word(rest) else {
        return Ok(Maint::List);
    };
    match sub.to_lowercase().as_str() {
        "list" => Ok(Maint::List),
        "start" => maint_start(rest),
        "end" => {
            let args: Vec<&str> = rest.split_whitespace().collect();
            let window = window_id(args.first().copied(), "!maint end 3")?;
            Ok(Maint::End(window))
        }
        "extend" => {
            const EXAMPLE: &str = "!maint extend 3 1h";
            let args: Vec<&str> = rest.split_whitespace().collect();
            let window = window_id(args.first().copied(), EXAMPLE)?;
            match longest_duration(args.get(1..).unwrap_or_default()) {
                Some(d) if !d.is_zero() => Ok(Maint::Extend(window, d)),
                _ => Err(format!(
                    "extend needs how much longer, after the window number: {EXAMPLE}"
                )),
            }
        }
        other => Err(format!(
            "{} is not a !maint command: !maint, {MAINT_START}, !maint end 3, !maint extend 3 1h",
            quoted(other)
        )),
    }
}

/// `2h service="db" env=~"prod|stage" db failover test`: the duration (as many words
/// as read as one), then every word that is a matcher (a quoted value may hold spaces),
/// then the comment.
fn maint_start(rest: &str) -> Result<Maint, String> {
    let words: Vec<&str> = rest.split_whitespace().take(5).collect();
    let Some((duration, n)) = (1..=words.len())
        .rev()
        .find_map(|n| Some((HumanDuration::parse(&words[..n].join(" ")).ok()?.0, n)))
    else {
        return Err(match words.first() {
            None => format!("maint start needs a duration, matchers and a comment: {MAINT_START}"),
            Some(w) => format!("{} is not a duration: {MAINT_START}", quoted(w)),
        });
    };
    let mut rest = rest;
    for _ in 0..n {
        rest = next_word(rest).map_or("", |(_, r)| r);
    }
    let mut matchers = Vec::new();
    let mut rest = rest.trim_start();
    while let Some(len) = matcher_len(rest) {
        matchers.push(rest[..len].to_string());
        rest = rest[len..].trim_start();
    }
    if matchers.is_empty() {
        return Err(match next_word(rest) {
            None => format!("maint start needs matchers after the duration: {MAINT_START}"),
            Some((w, _)) => format!(
                "{} is not a matcher like service=\"db\": {MAINT_START}",
                quoted(w)
            ),
        });
    }
    Ok(Maint::Start {
        duration,
        matchers,
        comment: rest.trim().to_string(),
    })
}

/// How long the matcher `s` starts with is: a label name, `=`, `!=`, `=~` or `!~`, and
/// a value up to the next space or, quoted, up to its closing quote (`\"` inside).
/// `None` when `s` does not start with one.
fn matcher_len(s: &str) -> Option<usize> {
    let name = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    if name == 0 || s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let op = ["=~", "!=", "!~", "="]
        .into_iter()
        .find(|op| s[name..].starts_with(op))?;
    let value = &s[name + op.len()..];
    let len = match value.strip_prefix('"') {
        Some(quoted) => {
            let mut escaped = false;
            let close = quoted.char_indices().find_map(|(i, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end.then_some(i)
            })?;
            1 + close + 1
        }
        None => value.find(char::is_whitespace).unwrap_or(value.len()),
    };
    let end = name + op.len() + len;
    // `service="db"x` is not a matcher followed by a comment: it is a typo.
    s[end..]
        .chars()
        .next()
        .is_none_or(char::is_whitespace)
        .then_some(end)
}

/// A maintenance window's number, `3` or `#3`.
fn window_id(word: Option<&str>, example: &str) -> Result<WindowId, String> {
    let Some(word) = word else {
        return Err(format!("say which window: {example}"));
    };
    id(word, example).map_err(|_| format!("{} is not a window number: {example}", quoted(word)))
}

/// A positive incident number, `42` or `#42`.
fn id(word: &str, example: &str) -> Result<IncidentId, String> {
    let digits = word.strip_prefix('#').unwrap_or(word);
    let parsed = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<IncidentId>().ok().filter(|&n| n > 0)
    } else {
        None
    };
    parsed.ok_or_else(|| format!("{} is not an incident number: {example}", quoted(word)))
}

/// `"word"`, shortened so a pasted paragraph cannot push the reply past one line.
pub(crate) fn quoted(word: &str) -> String {
    match word.char_indices().nth(MAX_ECHOED_CHARS) {
        Some((cut, _)) => format!("\"{}…\"", &word[..cut]),
        None => format!("\"{word}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irc::text::payload_budget;

    fn chan(text: &str) -> Option<Result<ChatCommand, String>> {
        parse(text, "tocsin", false)
    }

    fn private(text: &str) -> Option<Result<ChatCommand, String>> {
        parse(text, "tocsin", true)
    }

    fn ok(c: ChatCommand) -> Option<Result<ChatCommand, String>> {
        Some(Ok(c))
    }

    fn err(text: Option<Result<ChatCommand, String>>) -> String {
        match text {
            Some(Err(e)) => e,
            other => panic!("expected an error reply, got {other:?}"),
        }
    }

    #[test]
    fn bang_ack_stops_the_escalation() {
        assert_eq!(chan("!ack 42"), ok(ChatCommand::Ack(AckTarget::One(42))));
        assert_eq!(chan("!ack #42"), ok(ChatCommand::Ack(AckTarget::One(42))));
        assert_eq!(chan("!ACK 42"), ok(ChatCommand::Ack(AckTarget::One(42))));
        assert_eq!(chan("!ack all"), ok(ChatCommand::Ack(AckTarget::All)));
        assert_eq!(chan("!ack ALL"), ok(ChatCommand::Ack(AckTarget::All)));
    }

    #[test]
    fn a_note_after_the_incident_number_is_ignored() {
        assert_eq!(
            chan("!ack 42 on it, rolling back"),
            ok(ChatCommand::Ack(AckTarget::One(42)))
        );
        assert_eq!(
            chan("!resolve 7 fixed by restart"),
            ok(ChatCommand::Resolve(7))
        );
    }

    #[test]
    fn addressing_the_bot_by_nick_works_in_any_case() {
        let want = ok(ChatCommand::Ack(AckTarget::One(42)));
        assert_eq!(chan("tocsin: ack 42"), want);
        assert_eq!(chan("Tocsin: ack 42"), want);
        assert_eq!(chan("TOCSIN, ack 42"), want);
        assert_eq!(chan("tocsin:ack 42"), want);
        assert_eq!(
            parse("Alert[bot]: ack 42", "alert{bot}", false),
            want,
            "rfc1459 casemapping"
        );
    }

    #[test]
    fn a_similar_nick_is_not_the_bot() {
        assert_eq!(chan("tocsinbot: ack 42"), None);
        assert_eq!(chan("tocsin ack 42"), None);
        assert_eq!(chan("toc: ack 42"), None);
    }

    #[test]
    fn in_private_the_bare_command_is_enough() {
        assert_eq!(private("ack 42"), ok(ChatCommand::Ack(AckTarget::One(42))));
        assert_eq!(private("!ack 42"), ok(ChatCommand::Ack(AckTarget::One(42))));
        assert_eq!(private("status"), ok(ChatCommand::Status));
    }

    #[test]
    fn in_a_channel_the_bare_command_is_just_talk() {
        assert_eq!(chan("ack 42"), None);
        assert_eq!(chan("status is fine now"), None);
    }

    #[test]
    fn ordinary_chat_gets_no_reply() {
        assert_eq!(chan("is db1 down again?"), None);
        assert_eq!(chan(""), None);
        assert_eq!(chan("!"), None);
        assert_eq!(private("thanks!"), None);
        assert_eq!(private(""), None);
    }

    #[test]
    fn relay_alert_lines_sent_privately_are_not_answered_as_unknown_commands() {
        assert_eq!(private("Alert DiskFull on db1:9100 is firing"), None);
    }

    #[test]
    fn another_bots_bang_command_is_left_to_that_bot() {
        assert_eq!(chan("!weather berlin"), None);
        assert_eq!(chan("!deploy web"), None);
    }

    #[test]
    fn an_unknown_command_addressed_to_us_gets_the_help_line() {
        let e = err(chan("tocsin: deploy web"));
        assert_eq!(e, format!("unknown command \"deploy\"; {HELP}"));
        assert_eq!(
            err(private("!deploy web")),
            format!("unknown command \"deploy\"; {HELP}")
        );
    }

    #[test]
    fn the_nick_alone_gets_help() {
        assert_eq!(chan("tocsin:"), ok(ChatCommand::Help));
    }

    #[test]
    fn a_ctcp_action_mentioning_ack_is_not_an_ack() {
        assert_eq!(chan("\x01ACTION !ack 42\x01"), None);
        assert_eq!(private("\x01ACTION ack 42\x01"), None);
        assert_eq!(private("\x01VERSION\x01"), None);
        assert_eq!(chan("\x02\x01ACTION !ack 42\x01"), None);
    }

    #[test]
    fn colour_codes_do_not_hide_or_garble_a_command() {
        assert_eq!(
            chan("\x0304!ack\x03 \x0242\x02"),
            ok(ChatCommand::Ack(AckTarget::One(42)))
        );
        assert_eq!(
            chan("\x02tocsin\x02: ack 42"),
            ok(ChatCommand::Ack(AckTarget::One(42)))
        );
    }

    #[test]
    fn a_crlf_smuggled_in_a_command_cannot_be_echoed_into_a_new_line() {
        let e = err(chan("tocsin: x\r\nQUIT"));
        assert!(!e.contains(['\r', '\n']), "{e:?}");
    }

    #[test]
    fn ack_without_a_number_says_how() {
        assert_eq!(
            err(chan("!ack")),
            "ack needs an incident number: !ack 42 (or !ack all)"
        );
    }

    #[test]
    fn ack_with_a_word_says_it_is_not_a_number() {
        assert_eq!(
            err(chan("!ack banana")),
            "\"banana\" is not an incident number: !ack 42"
        );
    }

    #[test]
    fn incident_numbers_are_positive_integers() {
        for bad in [
            "0",
            "#0",
            "-1",
            "+5",
            "#",
            "##42",
            "4.2",
            "18446744073709551616",
        ] {
            assert!(
                matches!(chan(&format!("!ack {bad}")), Some(Err(_))),
                "{bad} was accepted"
            );
        }
        assert_eq!(
            chan("!ack 18446744073709551615"),
            ok(ChatCommand::Ack(AckTarget::One(u64::MAX)))
        );
    }

    #[test]
    fn unack_and_resolve_need_a_number() {
        assert_eq!(chan("!unack 42"), ok(ChatCommand::Unack(42)));
        assert_eq!(chan("!resolve #9"), ok(ChatCommand::Resolve(9)));
        assert_eq!(
            err(chan("!unack")),
            "unack needs an incident number: !unack 42"
        );
        assert_eq!(
            err(chan("!resolve it")),
            "\"it\" is not an incident number: !resolve 42"
        );
    }

    #[test]
    fn snooze_takes_a_human_duration() {
        assert_eq!(
            chan("!snooze 42 30m"),
            ok(ChatCommand::Snooze(42, Duration::from_secs(1800)))
        );
        assert_eq!(
            chan("!snooze #42 2h"),
            ok(ChatCommand::Snooze(42, Duration::from_secs(7200)))
        );
        assert_eq!(
            chan("!snooze 42 1h 30m"),
            ok(ChatCommand::Snooze(42, Duration::from_secs(5400)))
        );
        assert_eq!(
            chan("!snooze 42 2h deploying the fix"),
            ok(ChatCommand::Snooze(42, Duration::from_secs(7200)))
        );
        assert_eq!(
            chan("!snooze 42 7d"),
            ok(ChatCommand::Snooze(42, MAX_SNOOZE))
        );
    }

    #[test]
    fn snooze_with_a_bad_duration_says_how() {
        assert_eq!(
            err(chan("!snooze 42 banana")),
            "\"banana\" is not a duration: !snooze 42 30m"
        );
        assert_eq!(
            err(chan("!snooze 42 30")),
            "\"30\" is not a duration: !snooze 42 30m",
            "a bare number is ambiguous: minutes or seconds?"
        );
        assert_eq!(
            err(chan("!snooze 42")),
            "snooze needs a duration: !snooze 42 30m"
        );
        assert_eq!(
            err(chan("!snooze")),
            "snooze needs an incident number and a duration: !snooze 42 30m"
        );
        assert_eq!(
            err(chan("!snooze 30m 42")),
            "\"30m\" is not an incident number: !snooze 42 30m"
        );
    }

    #[test]
    fn a_zero_or_month_long_snooze_is_refused() {
        assert!(err(chan("!snooze 42 0s")).contains("above 0"));
        assert!(err(chan("!snooze 42 8d")).contains("at most 7 days"));
        assert!(err(chan("!snooze 42 7d 1s")).contains("at most 7 days"));
    }

    #[test]
    fn list_and_incidents_are_the_same() {
        assert_eq!(chan("!incidents"), ok(ChatCommand::Incidents));
        assert_eq!(chan("!list"), ok(ChatCommand::Incidents));
        assert_eq!(chan("!status"), ok(ChatCommand::Status));
        assert_eq!(chan("!help"), ok(ChatCommand::Help));
        assert_eq!(chan("tocsin, HELP"), ok(ChatCommand::Help));
    }

    #[test]
    fn oncall_asks_about_every_schedule_or_the_one_named() {
        assert_eq!(chan("!oncall"), ok(ChatCommand::Oncall(None)));
        assert_eq!(
            chan("!oncall primary"),
            ok(ChatCommand::Oncall(Some("primary".into())))
        );
        assert_eq!(
            chan("tocsin: ONCALL db please"),
            ok(ChatCommand::Oncall(Some("db".into())))
        );
        assert_eq!(private("oncall"), ok(ChatCommand::Oncall(None)));
        assert!(!ChatCommand::Oncall(None).changes_state());
        assert!(
            ChatCommand::Oncall(None).needs_sender(),
            "who is on call is a read like !incidents: ackers only once credentials are set"
        );
        assert_eq!(chan("who is oncall?"), None, "just talk");
    }

    #[test]
    fn only_acks_snoozes_and_resolves_need_authorization() {
        assert!(ChatCommand::Ack(AckTarget::All).changes_state());
        assert!(ChatCommand::Snooze(1, Duration::from_secs(60)).changes_state());
        assert!(!ChatCommand::Status.changes_state());
        assert!(!ChatCommand::Help.changes_state());
        assert!(ChatCommand::Status.needs_sender() && ChatCommand::Incidents.needs_sender());
        assert!(!ChatCommand::Help.needs_sender());
    }

    #[test]
    fn every_reply_fits_on_one_irc_line() {
        let budget = payload_budget("tocsin", "tocsin", "NOTICE", "#operations-oncall");
        let huge = "x".repeat(400);
        let replies = [
            err(chan(&format!("tocsin: {huge}"))),
            err(chan(&format!("!ack {huge}"))),
            err(chan(&format!("!snooze 42 {huge}"))),
            err(chan("!ack")),
            HELP.to_string(),
        ];
        for r in replies {
            assert!(r.len() <= budget, "{} bytes: {r}", r.len());
        }
    }

    fn start(
        duration_s: u64,
        matchers: &[&str],
        comment: &str,
    ) -> Option<Result<ChatCommand, String>> {
        ok(ChatCommand::Maint(Maint::Start {
            duration: Duration::from_secs(duration_s),
            matchers: matchers.iter().map(|m| m.to_string()).collect(),
            comment: comment.into(),
        }))
    }

    #[test]
    fn maint_start_reads_the_duration_then_the_matchers_then_the_comment() {
        assert_eq!(
            chan("!maint start 2h service=\"db\" db failover test"),
            start(7200, &["service=\"db\""], "db failover test")
        );
        assert_eq!(
            chan(
                "!maint start 1h 30m service=\"db\" env=~\"prod|stage\" team!=\"web\" OPS-12: swap disks"
            ),
            start(
                5400,
                &["service=\"db\"", "env=~\"prod|stage\"", "team!=\"web\""],
                "OPS-12: swap disks"
            )
        );
        assert_eq!(
            private("maint start 30m alertname!~\"Disk.*\" x"),
            start(1800, &["alertname!~\"Disk.*\""], "x")
        );
    }

    #[test]
    fn a_quoted_matcher_value_keeps_its_spaces_and_escaped_quotes() {
        assert_eq!(
            chan(
                "!MAINT start 2h  service=\"db primary\"   job=\"say \\\"hi\\\" now\"  moving the  rack "
            ),
            start(
                7200,
                &["service=\"db primary\"", "job=\"say \\\"hi\\\" now\""],
                "moving the  rack"
            )
        );
        assert_eq!(
            chan("!maint start 2h host=db1 rebooting"),
            start(7200, &["host=db1"], "rebooting"),
            "unquoted values are passed on for the engine to judge"
        );
    }

    #[test]
    fn maint_start_without_a_duration_or_matchers_says_the_grammar() {
        for (line, says) in [
            ("!maint start", "needs a duration, matchers and a comment"),
            (
                "!maint start soon service=\"db\" x",
                "\"soon\" is not a duration",
            ),
            ("!maint start 2h", "needs matchers after the duration"),
            ("!maint start 2h db failover", "\"db\" is not a matcher"),
            (
                "!maint start 2h service=\"db failover",
                "\"service=\"db\" is not a matcher",
            ),
            ("!maint start 2h service=\"db\"x y", "is not a matcher"),
            ("!maint pause 3", "\"pause\" is not a !maint command"),
        ] {
            let e = err(chan(line));
            assert!(e.contains(says), "{line}: {e}");
            assert!(e.contains("!maint start 2h service=\"db\""), "{line}: {e}");
        }
    }

    #[test]
    fn maint_lists_ends_and_extends_by_window_number() {
        assert_eq!(chan("!maint"), ok(ChatCommand::Maint(Maint::List)));
        assert_eq!(
            chan("tocsin: maint list"),
            ok(ChatCommand::Maint(Maint::List))
        );
        assert_eq!(chan("!maint end 3"), ok(ChatCommand::Maint(Maint::End(3))));
        assert_eq!(
            chan("!maint end #3 done early"),
            ok(ChatCommand::Maint(Maint::End(3)))
        );
        assert_eq!(
            chan("!maint extend 3 1h"),
            ok(ChatCommand::Maint(Maint::Extend(
                3,
                Duration::from_secs(3600)
            )))
        );
        assert_eq!(
            chan("!maint extend 3 1h 30m the rack is heavy"),
            ok(ChatCommand::Maint(Maint::Extend(
                3,
                Duration::from_secs(5400)
            )))
        );
        assert_eq!(err(chan("!maint end")), "say which window: !maint end 3");
        assert_eq!(
            err(chan("!maint end db")),
            "\"db\" is not a window number: !maint end 3"
        );
        assert!(err(chan("!maint extend 3")).contains("how much longer"));
        assert!(err(chan("!maint extend 3 0s")).contains("how much longer"));
        assert!(!ChatCommand::Maint(Maint::List).changes_state());
        assert!(ChatCommand::Maint(Maint::End(3)).changes_state());
    }

    #[test]
    fn help_names_every_command() {
        for word in COMMAND_WORDS.iter().filter(|w| **w != "list") {
            assert!(
                HELP.contains(&format!("!{word}")),
                "{word} missing from HELP"
            );
        }
    }
}
