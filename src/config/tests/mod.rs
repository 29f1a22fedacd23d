//! Tests of the whole loader: config text in, a `Config` or located errors out.

use std::env::VarError;
use std::path::Path;

use super::load::load_with_env;
use super::*;

mod am_silence;
mod notifiers;
mod schedules;
mod storage;
mod watchdog;

/// The design's example, with only the notifier types this build has.
const DESIGN_EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:9797"
public_url = "http://127.0.0.1:9797"
max_body = "1MiB"

[storage]
data_dir = "tocsin-data"

[defaults]
ack_timeout = "30m"

[notifiers.console]
type = "log"
[notifiers.hook]
type = "webhook"
url = "http://127.0.0.1:8080/page"

[contacts.alice]
irc_account = "alice"
methods = [
  { notifier = "console", to = "alice" },
  { notifier = "hook", to = "alice", after = "2m" },
]
[contacts.bob]
methods = [{ notifier = "console", to = "bob" }]

[policies.default]
repeat = 2
steps = [
  { after = "0s",  notify = ["console", "alice"] },
  { after = "10m", notify = ["bob"] },
  { after = "20m", notify = ["alice", "bob", "hook"] },
]

[[routes]]
matchers = ['severity="critical"']
policy = "default"
[[routes]]
policy = "default"

[sources.alertmanager]
heartbeat = { alertname = "Watchdog", within = "10m" }
"#;

fn no_env(_: &str) -> Result<String, VarError> {
    Err(VarError::NotPresent)
}

fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_with_env(text, None, &no_env)
}

fn errors(text: &str) -> Vec<ConfigError> {
    match load(text) {
        Ok(_) => panic!("config loaded but should not have"),
        Err(e) => e.0,
    }
}

/// The design example with `from` replaced by `to` (first occurrence).
fn edit(from: &str, to: &str) -> String {
    assert!(DESIGN_EXAMPLE.contains(from), "{from}");
    DESIGN_EXAMPLE.replacen(from, to, 1)
}

fn line_containing(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect(needle) + 1
}

#[test]
fn design_example_loads_and_summary_counts_everything() {
    let c = load(DESIGN_EXAMPLE).unwrap();
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[0].matchers.len(), 1);
    assert!(c.routes[1].matchers.is_empty());
    assert!(c.hook_auth.is_open());
    let s = c.summary();
    assert!(s.contains("contacts: 2 [alice, bob]"), "{s}");
    assert!(
        s.contains("notifiers: 2 [console (log), hook (webhook)]"),
        "{s}"
    );
    assert!(s.contains("policies: 1 [default]"), "{s}");
    assert!(s.contains("routes: 2"), "{s}");
}

#[test]
fn shipped_alerts_toml_loads_on_a_fresh_machine() {
    let c = load_str(include_str!("../../../alerts.toml"), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.file.server.listen, "127.0.0.1:9797");
    assert!(c.file.notifiers.contains_key("console"));
    assert!(c.file.policies.contains_key("default"));
    assert!(
        c.routes.last().unwrap().matchers.is_empty(),
        "last route is the catch-all"
    );
    assert!(
        c.file
            .sources
            .alertmanager
            .as_ref()
            .unwrap()
            .heartbeat
            .is_some()
    );
}

#[test]
fn unknown_key_is_named_with_its_path_and_line() {
    let text = edit("type = \"log\"", "type = \"log\"\ncolour = \"red\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "notifiers.console.colour");
    assert_eq!(errs[0].line, Some(line_containing(&text, "colour")));
    assert!(errs[0].message.contains("colour"), "{}", errs[0].message);
}

#[test]
fn every_unknown_key_of_one_entry_is_reported() {
    let text = edit(
        "max_body = \"1MiB\"",
        "max_body = \"1MiB\"\nlisten_addr = \"x\"\nmax_bodyy = 3",
    );
    let errs = errors(&text);
    let paths: Vec<_> = errs.iter().map(|e| e.key_path.as_str()).collect();
    assert_eq!(paths, ["server.listen_addr", "server.max_bodyy"]);
    assert!(
        errs[1].message.contains("did you mean `max_body`"),
        "{}",
        errs[1].message
    );
}

#[test]
fn two_bad_entries_give_two_errors() {
    let text = edit(
        "url = \"http://127.0.0.1:8080/page\"",
        "url = \"http://127.0.0.1:8080/page\"\ntimeout = \"soon\"",
    )
    .replacen("repeat = 2", "repeat = \"twice\"", 1);
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].key_path, "notifiers.hook.timeout");
    assert_eq!(errs[0].line, Some(line_containing(&text, "\"soon\"")));
    assert_eq!(errs[1].key_path, "policies.default.repeat");
    assert_eq!(errs[1].line, Some(line_containing(&text, "twice")));
}

#[test]
fn route_to_missing_policy_is_reported() {
    let text = edit(
        "policy = \"default\"\n[[routes]]",
        "policy = \"dflt\"\n[[routes]]",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "routes[0].policy");
    assert_eq!(errs[0].line, Some(line_containing(&text, "\"dflt\"")));
    assert!(
        errs[0].message.contains("unknown policy \"dflt\""),
        "{}",
        errs[0].message
    );
}

#[test]
fn step_paging_nobody_known_is_reported() {
    let text = edit("notify = [\"bob\"]", "notify = [\"carol\"]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "policies.default.steps[1].notify[0]");
    assert_eq!(errs[0].line, Some(line_containing(&text, "carol")));
    assert!(
        errs[0].message.contains("alice, bob"),
        "{}",
        errs[0].message
    );
}

#[test]
fn method_through_missing_notifier_is_reported() {
    let text = edit(
        "{ notifier = \"console\", to = \"bob\" }",
        "{ notifier = \"pager\", to = \"bob\" }",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "contacts.bob.methods[0].notifier");
}

#[test]
fn contact_named_like_a_notifier_is_a_clash() {
    let text = edit(
        "[contacts.bob]",
        "[contacts.console]\nirc_account = \"c\"\n[contacts.bob]",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "contacts.console");
    let msg = &errs[0].message;
    assert!(
        msg.contains("notifiers.console") && msg.contains("contacts.console"),
        "{msg}"
    );
}

#[test]
fn duration_typo_names_key_path_and_line() {
    let text = edit("after = \"10m\"", "after = \"5mn\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "policies.default.steps[1].after");
    assert_eq!(errs[0].line, Some(line_containing(&text, "5mn")));
    assert!(
        errs[0].message.contains("invalid duration \"5mn\""),
        "{}",
        errs[0].message
    );
}

#[test]
fn inline_secret_points_to_file_or_env() {
    let text = edit(
        "max_body = \"1MiB\"",
        "max_body = \"1MiB\"\nauth_token = \"hunter2\"",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "server.auth_token");
    assert!(
        errs[0]
            .message
            .contains("secrets are never inline: use auth_token_file or auth_token_env"),
        "{}",
        errs[0].message
    );
    assert!(!format!("{errs:?}").contains("hunter2"));
}

#[test]
fn secrets_come_from_file_and_env_and_never_reach_debug() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "file-secret-123\n").unwrap();
    let text = edit(
        "max_body = \"1MiB\"",
        "max_body = \"1MiB\"\nauth_token_file = \"token\"",
    )
    .replacen(
        "url = \"http://127.0.0.1:8080/page\"",
        "url = \"http://127.0.0.1:8080/page\"\nbearer_token_env = \"HOOK_TOKEN\"",
        1,
    );
    let env = |name: &str| match name {
        "HOOK_TOKEN" => Ok("env-secret-456".to_string()),
        _ => Err(VarError::NotPresent),
    };
    let config = dir.path().join("alerts.toml");
    let c = load_with_env(&text, Some(&config), &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.hook_auth.master_token().unwrap().expose(),
        "file-secret-123"
    );
    assert_eq!(
        c.notifier_secrets["hook"]["bearer_token"].expose(),
        "env-secret-456"
    );
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("file-secret-123") && !debug.contains("env-secret-456"),
        "{debug}"
    );

    let errs = load_with_env(&text, Some(&config), &no_env).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "notifiers.hook.bearer_token_env");
    assert!(
        errs[0].message.contains("HOOK_TOKEN"),
        "{}",
        errs[0].message
    );
}

#[test]
fn unreadable_secret_file_names_the_path() {
    let text = edit(
        "max_body = \"1MiB\"",
        "max_body = \"1MiB\"\nauth_token_file = \"/nonexistent/tocsin-token\"",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "server.auth_token_file");
    assert_eq!(
        errs[0].line,
        Some(line_containing(&text, "auth_token_file"))
    );
    assert!(
        errs[0].message.contains("/nonexistent/tocsin-token"),
        "{}",
        errs[0].message
    );
}

#[test]
fn basic_auth_without_password_and_both_sources_are_errors() {
    let text = edit(
        "max_body = \"1MiB\"",
        "max_body = \"1MiB\"\nauth_token_file = \"/t\"\nauth_token_env = \"T\"\nbasic_auth = { username = \"am\" }",
    );
    let errs = errors(&text);
    let paths: Vec<_> = errs.iter().map(|e| e.key_path.as_str()).collect();
    assert_eq!(
        paths,
        ["server.auth_token_env", "server.basic_auth"],
        "{errs:?}"
    );
}

#[test]
fn routes_after_a_catch_all_are_unreachable() {
    let text =
        format!("{DESIGN_EXAMPLE}\n[[routes]]\nmatchers = ['team=\"db\"']\npolicy = \"default\"\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "routes[2]");
    assert!(errs[0].message.contains("routes[1]"), "{}", errs[0].message);
}

#[test]
fn bad_matcher_names_route_and_matcher_index() {
    let text = edit(
        "matchers = ['severity=\"critical\"']",
        "matchers = ['severity=\"critical\"', 'team~db']",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "routes[0].matchers[1]");
}

#[test]
fn steps_going_back_in_time_and_gapless_repeat_are_errors() {
    let text = edit("{ after = \"20m\"", "{ after = \"5m\"");
    let errs = errors(&text);
    assert_eq!(
        errs[0].key_path, "policies.default.steps[2].after",
        "{errs:?}"
    );

    let text = DESIGN_EXAMPLE
        .replace("after = \"10m\"", "after = \"0s\"")
        .replace("after = \"20m\"", "after = \"0s\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "policies.default.repeat");
    assert!(
        errs[0].message.contains("set repeat_after"),
        "{}",
        errs[0].message
    );
}

#[test]
fn unknown_notifier_type_lists_what_exists() {
    let text = edit("type = \"webhook\"", "type = \"pager-duty\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "notifiers.hook.type");
    let msg = &errs[0].message;
    assert!(
        msg.contains("webhook, email, kannel") && msg.contains("pushover"),
        "{msg}"
    );
}

#[test]
fn contact_without_methods_or_irc_account_is_an_error() {
    let text = edit("methods = [{ notifier = \"console\", to = \"bob\" }]", "");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0]
            .message
            .contains("contact bob has no methods: nobody can be paged"),
        "{}",
        errs[0].message
    );
}

#[test]
fn syntax_error_gives_a_line_and_stops() {
    let text = "[server]\nlisten = \"127.0.0.1:9797\n[[routes]]\npolicy = \"nope\"\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].line, Some(2));
    assert_eq!(errs[0].key_path, "");
    assert!(
        errs[0].message.starts_with("TOML syntax error"),
        "{}",
        errs[0].message
    );
}

#[test]
fn display_lists_each_error_with_file_and_line_then_a_count() {
    let text = edit("after = \"10m\"", "after = \"5mn\"").replacen(
        "policy = \"default\"",
        "policy = \"dflt\"",
        1,
    );
    let e = load_with_env(&text, Some(Path::new("alerts.toml")), &no_env).unwrap_err();
    let shown = e.to_string();
    let lines: Vec<_> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    let step_line = line_containing(&text, "5mn");
    assert!(
        lines[0].starts_with(&format!(
            "alerts.toml:{step_line}: policies.default.steps[1].after: invalid duration \"5mn\""
        )),
        "{shown}"
    );
    assert!(
        lines[1].contains(": routes[0].policy: unknown policy"),
        "{shown}"
    );
    assert_eq!(lines[2], "2 errors in alerts.toml");
}

#[test]
fn missing_config_file_says_which_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.toml");
    let e = load_file(&path).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.path(), Some(path.as_path()));
    let msg = &e.0[0].message;
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("--config"),
        "{msg}"
    );
}

#[test]
fn a_notifier_that_needs_an_address_cannot_be_named_in_a_step() {
    let text = format!(
        "{}\n[notifiers.mail]\ntype = \"email\"\nsmtp_url = \"smtp://127.0.0.1:25\"\nfrom = \"t@example.com\"\n",
        edit("\"bob\", \"hook\"]", "\"bob\", \"mail\"]")
    );
    let errs = errors(&text);
    assert!(
        errs.iter().any(|e| e.message.contains("needs an address")),
        "{errs:?}"
    );
}

#[test]
fn a_contact_method_needs_the_address_its_notifier_uses() {
    let text = format!(
        "{DESIGN_EXAMPLE}\n[notifiers.mail]\ntype = \"email\"\nsmtp_url = \"smtp://127.0.0.1:25\"\nfrom = \"t@example.com\"\n[contacts.dave]\nmethods = [{{ notifier = \"mail\", to = \"+15550100\" }}]\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "contacts.dave.methods[0].to");
    assert!(
        errs[0].message.contains("not an email address"),
        "{}",
        errs[0].message
    );
}

const IRC: &str = r##"
[notifiers.chan]
type = "irc"
channel = "#alerts"
[notifiers.console]
type = "log"
[contacts.alice]
irc_account = "alice"
methods = [{ notifier = "chan", to = "alice" }, { notifier = "console", after = "5m" }]
[policies.default]
steps = [{ after = "0s", notify = ["chan", "alice"] }]
[[routes]]
policy = "default"
[sources.irc]
server = "127.0.0.1:6667"
nick = "tocsin"
sasl_username = "tocsin"
sasl_password_env = "IRC_PASS"
channels = ["#alerts"]
patterns = [{ from = "relay!*@*", preset = "alertmanager-irc-relay" }]
"##;

fn irc_env(name: &str) -> Result<String, VarError> {
    match name {
        "IRC_PASS" => Ok("s3cret".into()),
        _ => Err(VarError::NotPresent),
    }
}

#[test]
fn an_irc_link_with_sasl_loads_and_reads_its_password_from_the_environment() {
    let cfg = load_with_env(IRC, None, &irc_env).unwrap();
    let irc = cfg.file.sources.irc.as_ref().unwrap();
    assert_eq!(irc.username(), "tocsin");
    assert_eq!(irc.ping_timeout.0.as_secs(), 20);
    assert_eq!(
        cfg.irc_secrets.sasl_password.as_ref().unwrap().expose(),
        "s3cret"
    );
}

#[test]
fn irc_mistakes_are_all_reported_with_their_key_paths() {
    let text = IRC
        .replace("nick = \"tocsin\"", "nick = \"tocsin\"\nnickserv = \"x\"")
        .replace("channel = \"#alerts\"", "channel = \"alerts\"")
        .replace(
            "preset = \"alertmanager-irc-relay\"",
            "regex = '(?P<alertname>[a-'",
        );
    let errs = load_with_env(&text, None, &irc_env).unwrap_err().0;
    let paths: Vec<&str> = errs.iter().map(|e| e.key_path.as_str()).collect();
    assert!(paths.contains(&"sources.irc.nickserv"), "{errs:#?}");
    assert!(paths.contains(&"notifiers.chan.channel"), "{errs:#?}");
}

#[test]
fn a_bad_pattern_regex_is_named() {
    let text = IRC.replace(
        "preset = \"alertmanager-irc-relay\"",
        "regex = '(?P<alertname>[a-'",
    );
    let errs = load_with_env(&text, None, &irc_env).unwrap_err().0;
    assert!(
        errs.iter()
            .any(|e| e.key_path == "sources.irc.patterns" && e.message.contains("does not compile")),
        "{errs:#?}"
    );
}

#[test]
fn an_irc_notifier_without_the_link_or_a_mask_without_allow_masks_is_refused() {
    let text = IRC[..IRC.find("[sources.irc]").unwrap()].to_string();
    let errs = load_with_env(&text, None, &irc_env).unwrap_err().0;
    assert!(
        errs.iter()
            .any(|e| e.key_path == "notifiers.chan" && e.message.contains("[sources.irc]")),
        "{errs:#?}"
    );
    let text = IRC.replace("irc_account = \"alice\"", "irc_mask = \"alice!*@*\"");
    let errs = load_with_env(&text, None, &irc_env).unwrap_err().0;
    assert!(
        errs.iter()
            .any(|e| e.key_path == "contacts.alice.irc_mask" && e.message.contains("allow_masks")),
        "{errs:#?}"
    );
}

#[test]
fn watchdog_section_reports_every_mistake_at_once() {
    let text = format!(
        r#"{DESIGN_EXAMPLE}
[watchdog]
policy = "nope"
hold_down = "10s"
checks = ["console", "ghost", "hook"]
peers = ["other:9797", "http://ok:9797"]
ping_url = "ftp://hc"
notifier_failures = 0
self_test = {{ at = "25:00", contact = "carol", ack_within = "0s" }}

[heartbeats."bad name"]
period = "0s"
[heartbeats.backup]
period = "1d"
"#
    );
    let errs = errors(&text);
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| (e.key_path.as_str(), e.message.as_str()))
        .collect();
    let has = |path: &str, words: &str| {
        assert!(
            got.iter().any(|(p, m)| *p == path && m.contains(words)),
            "no error at {path} saying {words:?}: {got:#?}"
        )
    };
    has("watchdog.policy", "unknown policy \"nope\"");
    has(
        "watchdog.checks[0]",
        "a log notifier has no check of its own",
    );
    has("watchdog.checks[1]", "unknown notifier \"ghost\"");
    has("watchdog.peers[0]", "\"other:9797\"");
    has("watchdog.ping_url", "not an http:// or https:// URL");
    has("watchdog.notifier_failures", "at least 1");
    has("watchdog.self_test.at", "not a time of day");
    has("watchdog.self_test.contact", "unknown contact \"carol\"");
    has("watchdog.self_test.ack_within", "more than 0s");
    has("heartbeats.\"bad name\"", "part of the URL");
    has("heartbeats.\"bad name\".period", "more than 0s");
    assert_eq!(errs.len(), 11, "{got:#?}");
}

#[test]
fn an_unknown_watchdog_key_is_named() {
    let text = format!("{DESIGN_EXAMPLE}\n[watchdog]\nhold_dwn = \"1m\"\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key_path, "watchdog.hold_dwn");
    assert!(errs[0].message.contains("hold_down"), "{}", errs[0].message);
}

/// A relay trusted by its nick mask alone is valid but weak: check-config says why at
/// the pattern's line, and says nothing once the pattern names the relay's account.
#[test]
fn a_pattern_trusting_a_nick_mask_alone_is_warned_about() {
    let text = format!(
        "{}\n[sources.irc]\nserver = \"127.0.0.1:6667\"\nchannels = [\"#alerts\"]\npatterns = [\n  {{ from = \"relay!*@*\", preset = \"alertmanager-irc-relay\" }},\n]\n",
        &IRC[..IRC.find("[sources.irc]").unwrap()]
    );
    let cfg = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.warnings.len(), 1, "{:?}", cfg.warnings);
    let w = &cfg.warnings[0];
    assert_eq!(w.key_path, "sources.irc.patterns[0].from");
    assert_eq!(w.line, Some(line_containing(&text, "relay!*@*")));
    assert!(w.message.contains("forged \"resolved\""), "{}", w.message);
    assert!(w.message.contains("from_account"), "{}", w.message);

    let text = edit_in(
        &text,
        "from = \"relay!*@*\",",
        "from = \"relay!*@*\", from_account = \"relaybot\",",
    );
    assert!(load(&text).unwrap().warnings.is_empty());
    let text = edit_in(&text, "\"relaybot\"", "\"\"");
    assert!(
        errors(&text)
            .iter()
            .any(|e| e.key_path == "sources.irc.patterns[0].from_account")
    );
}

fn edit_in(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from} not in the config");
    text.replace(from, to)
}
