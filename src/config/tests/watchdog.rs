//! Watchdog incidents must reach a person: a config where the Alertmanager heartbeat (or
//! any channel) could stop and tocsin would "page through the channels that still work"
//! to nobody is refused, saying how to fix it.

use super::{errors, line_containing, load};

const NOTIFIERS: &str = r##"
[notifiers.console]
type = "log"
[notifiers.hook]
type = "webhook"
url = "http://127.0.0.1:8080/page"
[notifiers.chan]
type = "irc"
channel = "#alerts"
[sources.irc]
server = "127.0.0.1:6667"
channels = ["#alerts"]
[sources.alertmanager]
heartbeat = { alertname = "Watchdog", within = "10m" }
"##;

/// `NOTIFIERS`, `rest`, and a catch-all route to the policy `default` (which `rest`
/// defines).
fn config(rest: &str) -> String {
    format!("{NOTIFIERS}\n{rest}\n[[routes]]\npolicy = \"default\"\n")
}

/// The only error of `text` is at `watchdog.policy` and says each of `words`.
fn refused(text: &str, words: &[&str]) -> usize {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key_path, "watchdog.policy", "{errs:#?}");
    for w in words {
        assert!(
            errs[0].message.contains(w),
            "{:?} does not say {w:?}",
            errs[0].message
        );
    }
    errs[0].line.unwrap_or(0)
}

#[test]
fn no_contacts_and_no_watchdog_policy_is_refused() {
    let text = config(
        "[policies.default]\nsteps = [{ after = \"0s\", notify = [\"console\", \"hook\"] }]",
    );
    refused(
        &text,
        &[
            "watchdog incidents page nobody",
            "add a contact with a method",
            "[watchdog] policy",
        ],
    );
}

#[test]
fn contacts_that_can_only_ack_are_nobody_to_page() {
    let text = config(
        "[contacts.alice]\nirc_account = \"alice\"\n[policies.default]\nsteps = [{ after = \"0s\", notify = [\"hook\"] }]",
    );
    refused(&text, &["none has a method", "add a contact with a method"]);
}

#[test]
fn a_watchdog_policy_naming_only_notifiers_is_refused_at_its_line() {
    let text = config(
        r#"[contacts.alice]
methods = [{ notifier = "hook" }]
[policies.default]
steps = [{ after = "0s", notify = ["alice"] }]
[policies.machines]
steps = [{ after = "0s", notify = ["console"] }, { after = "5m", notify = ["hook", "chan"] }]
[watchdog]
policy = "machines"
"#,
    );
    let line = refused(
        &text,
        &[
            "policy \"machines\" names no contact with a method",
            "\"console\", \"hook\", \"chan\"",
            "leave [watchdog] policy out",
        ],
    );
    assert_eq!(line, line_containing(&text, "policy = \"machines\""));
}

#[test]
fn people_reached_only_through_the_irc_link_are_not_reached_when_it_is_down() {
    let only_irc = "[contacts.alice]\nmethods = [{ notifier = \"chan\", to = \"alice\" }]\n";
    let policy = "[policies.default]\nsteps = [{ after = \"0s\", notify = [\"alice\"] }]\n";
    // Every contact (no [watchdog] policy), and a [watchdog] policy naming alice.
    for watchdog in ["", "[watchdog]\npolicy = \"default\"\n"] {
        let text = config(&format!("{only_irc}{policy}{watchdog}"));
        refused(&text, &["only through irc notifiers", "email, SMS or push"]);
    }
    // A second way to alice that is not the link is enough.
    let text = config(&format!(
        "[contacts.alice]\nmethods = [{{ notifier = \"chan\", to = \"alice\" }}, {{ notifier = \"hook\", after = \"1m\" }}]\n{policy}"
    ));
    load(&text).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_watchdog_that_reaches_someone_loads() {
    let people = "[contacts.alice]\nmethods = [{ notifier = \"hook\" }]\n[contacts.bob]\nirc_account = \"bob\"\n";
    for rest in [
        // Every contact: alice has a method, bob only acks.
        format!(
            "{people}[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"console\"] }}]"
        ),
        // A policy whose later step names alice.
        format!(
            "{people}[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"console\"] }}, {{ after = \"5m\", notify = [\"bob\", \"alice\"] }}]\n[watchdog]\npolicy = \"default\""
        ),
    ] {
        let text = config(&rest);
        load(&text).unwrap_or_else(|e| panic!("{e}\n--- config ---\n{text}"));
    }
}

#[test]
fn a_broken_contact_is_not_also_blamed_on_the_watchdog() {
    let text = config(
        "[contacts.alice]\nmethods = [{ notifier = \"hook\", after = \"soon\" }]\n[policies.default]\nsteps = [{ after = \"0s\", notify = [\"alice\"] }]",
    );
    let errs = errors(&text);
    assert!(
        errs.iter().all(|e| !e.key_path.starts_with("watchdog")),
        "{errs:#?}"
    );
}
