//! Notifier settings that only the notifier itself can judge (a relay URL's TLS mode, a
//! mailbox, a URL that does not parse, a template that renders no request) are refused
//! when the file is loaded, so `check-config` and a reload see them, not only a start.

use std::env::VarError;

use super::super::load::load_with_env;
use super::super::{ConfigError, ConfigErrors};

/// Secrets the notifiers below read from the environment.
fn env(name: &str) -> Result<String, VarError> {
    match name {
        "SECRET" => Ok("s3cret-value".to_string()),
        _ => Err(VarError::NotPresent),
    }
}

/// alice, paged through the notifier `n` (`notifier` is the inside of its table) with
/// the method's address `method` (like `, to = "+15550100"`).
fn paging_through(notifier: &str, method: &str) -> String {
    format!(
        r#"
[notifiers.n]
{notifier}

[contacts.alice]
methods = [{{ notifier = "n"{method} }}]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]

[[routes]]
policy = "default"
"#
    )
}

fn load(text: &str) -> Result<super::super::Config, ConfigErrors> {
    load_with_env(text, None, &env)
}

fn errors(text: &str) -> Vec<ConfigError> {
    match load(text) {
        Ok(_) => panic!("config loaded but should not have:\n{text}"),
        Err(e) => e.0,
    }
}

/// The one error of `text`, which must be at `key_path`, on the line of `line_with`,
/// and say each of `words`.
fn one_error(text: &str, key_path: &str, line_with: &str, words: &[&str]) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = &errs[0];
    assert_eq!(e.key_path, key_path, "{e:?}");
    let line = text.lines().position(|l| l.contains(line_with)).unwrap() + 1;
    assert_eq!(e.line, Some(line), "{e:?}");
    for w in words {
        assert!(e.message.contains(w), "{:?} does not say {w:?}", e.message);
    }
}

const MAIL: &str =
    "type = \"email\"\nsmtp_url = \"smtp://127.0.0.1:25\"\nfrom = \"tocsin <tocsin@example.com>\"";
const TO_ALICE: &str = ", to = \"alice@example.com\"";

#[test]
fn a_good_notifier_of_every_kind_loads() {
    let good = [
        (MAIL, TO_ALICE),
        (
            "type = \"email\"\nsmtp_url = \"smtps://mail.example.com\"\nfrom = \"t@example.com\"\nusername = \"t\"\npassword_env = \"SECRET\"",
            TO_ALICE,
        ),
        (
            "type = \"webhook\"\nurl = \"http://127.0.0.1:8080/page\"",
            "",
        ),
        (
            "type = \"kannel\"\nurl = \"http://127.0.0.1:13013/cgi-bin/sendsms\"\nusername = \"u\"\npassword_env = \"SECRET\"",
            ", to = \"+15550100\"",
        ),
        (
            "type = \"twilio\"\naccount_sid = \"AC123\"\nauth_token_env = \"SECRET\"\nfrom = \"+15550199\"",
            ", to = \"+15550100\"",
        ),
        (
            "type = \"twilio\"\naccount_sid = \"AC123\"\nauth_token_env = \"SECRET\"\nfrom = \"Tocsin\"",
            ", to = \"+15550100\"",
        ),
        (
            "type = \"twilio\"\naccount_sid = \"AC123\"\nauth_token_env = \"SECRET\"\nmessaging_service_sid = \"MG0123\"",
            ", to = \"+15550100\"",
        ),
        (
            "type = \"twilio_voice\"\naccount_sid = \"AC123\"\nauth_token_env = \"SECRET\"\nfrom = \"+15550199\"",
            ", to = \"+15550100\"",
        ),
        (
            "type = \"http_sms\"\nurl = \"https://gw.example.com/send?to={to}&text={text}\"\ntoken_env = \"SECRET\"\nheaders = { Authorization = \"Bearer {token}\" }",
            ", to = \"+15550100\"",
        ),
        (
            "type = \"ntfy\"\nurl = \"https://ntfy.sh\"",
            ", topic = \"alice\"",
        ),
        (
            "type = \"pushover\"\napp_token_env = \"SECRET\"",
            ", to = \"uQiRzpo4DXghDmr9QzzfQu27cmVRsG\"",
        ),
        (
            "type = \"gotify\"\nurl = \"https://gotify.example.com\"\napp_token_env = \"SECRET\"",
            "",
        ),
    ];
    for (notifier, method) in good {
        let text = paging_through(notifier, method);
        if let Err(e) = load(&text) {
            panic!("{e}\n--- config ---\n{text}");
        }
    }
}

#[test]
fn an_smtp_url_the_mailer_cannot_use_is_refused_at_its_line() {
    let cases = [
        (
            "smtp://h?tls=maybe",
            &["tls=\"maybe\"", "?tls=starttls"][..],
        ),
        ("smtp://user:pw@h", &["credentials", "password_file"][..]),
        ("smtps://h?tls=starttls", &["drop ?tls="][..]),
        ("smtp://h/relay", &["path"][..]),
        ("smtp://h?port=25", &["unknown or repeated parameter"][..]),
        ("smtp:///", &["no host"][..]),
        ("smtp://h:99999", &["not a URL"][..]),
    ];
    for (url, words) in cases {
        let text = paging_through(&MAIL.replace("smtp://127.0.0.1:25", url), TO_ALICE);
        one_error(&text, "notifiers.n.smtp_url", "smtp_url", words);
    }
}

#[test]
fn a_from_the_mailer_cannot_parse_is_refused() {
    for from in [
        "tocsin <tocsin@>",
        "tocsin tocsin@example.com",
        "@example.com",
    ] {
        let text = paging_through(&MAIL.replace("tocsin <tocsin@example.com>", from), TO_ALICE);
        one_error(
            &text,
            "notifiers.n.from",
            "from =",
            &["not a mail address", "tocsin <tocsin@example.com>"],
        );
    }
}

#[test]
fn an_smtp_password_without_a_username_is_refused() {
    let text = paging_through(&format!("{MAIL}\npassword_env = \"SECRET\""), TO_ALICE);
    one_error(
        &text,
        "notifiers.n.username",
        "[notifiers.n]",
        &["add username"],
    );
}

#[test]
fn an_smtp_login_that_would_cross_the_network_in_clear_is_refused() {
    let remote = MAIL.replace("smtp://127.0.0.1:25", "smtp://mail.example.com:25");
    let text = paging_through(
        &format!("{remote}\nusername = \"tocsin\"\npassword_env = \"SECRET\""),
        TO_ALICE,
    );
    one_error(
        &text,
        "notifiers.n.smtp_url",
        "smtp_url =",
        &["in clear", "?tls=starttls"],
    );
    for fine in [
        "smtp://127.0.0.1:25",
        "smtp://localhost:25",
        "smtp://[::1]:25",
        "smtp://mail.example.com:587?tls=starttls",
        "smtps://mail.example.com",
    ] {
        let mail = MAIL.replace("smtp://127.0.0.1:25", fine);
        let text = paging_through(
            &format!("{mail}\nusername = \"tocsin\"\npassword_env = \"SECRET\""),
            TO_ALICE,
        );
        if let Err(e) = load(&text) {
            panic!("a login to {fine} was refused: {e:?}");
        }
    }
}

#[test]
fn a_mail_address_the_mailer_cannot_parse_is_refused() {
    for to in ["alice@", "Alice <alice@example.com", "alice@@example.com"] {
        let text = paging_through(MAIL, &format!(", to = \"{to}\""));
        one_error(
            &text,
            "contacts.alice.methods[0].to",
            "methods",
            &["not an email address"],
        );
    }
}

#[test]
fn a_url_that_does_not_parse_is_refused_for_every_http_notifier() {
    let cases = [
        ("type = \"webhook\"\nurl = \"http://\"", "", "url"),
        (
            "type = \"webhook\"\nurl = \"http://exa mple.com/page\"",
            "",
            "url",
        ),
        (
            "type = \"ntfy\"\nurl = \"https://[::1\"",
            ", topic = \"alice\"",
            "url",
        ),
        (
            "type = \"gotify\"\nurl = \"https://\"\napp_token_env = \"SECRET\"",
            "",
            "url",
        ),
        (
            "type = \"pushover\"\napp_token_env = \"SECRET\"\napi_url = \"https://:80\"",
            ", to = \"uQiRzpo4DXghDmr9QzzfQu27cmVRsG\"",
            "api_url",
        ),
        (
            "type = \"kannel\"\nurl = \"http://h:port/cgi-bin/sendsms\"\nusername = \"u\"\npassword_env = \"SECRET\"",
            ", to = \"+15550100\"",
            "url",
        ),
        (
            "type = \"twilio\"\naccount_sid = \"AC1\"\nauth_token_env = \"SECRET\"\nfrom = \"+15550199\"\napi_url = \"https://\"",
            ", to = \"+15550100\"",
            "api_url",
        ),
    ];
    for (notifier, method, key) in cases {
        let text = paging_through(notifier, method);
        one_error(
            &text,
            &format!("notifiers.n.{key}"),
            &format!("{key} = "),
            &["is not a URL", "write it like"],
        );
    }
}

#[test]
fn an_http_sms_template_that_renders_no_request_is_refused_naming_the_notifier() {
    let sms = "type = \"http_sms\"\nurl = \"https://gw.example.com/send\"";
    let cases = [
        (
            format!("{sms}\nbody = {{ json = '{{\"to\": {{to}}}}' }}"),
            &["does not render to valid JSON", "inside a JSON string"][..],
        ),
        (
            format!("{sms}\nheaders = {{ Authorization = \"Bearer {{token}}\" }}"),
            &["{token}", "token_file"][..],
        ),
        (
            format!("{sms}\nheaders = {{ \"bad header\" = \"x\" }}"),
            &["header name \"bad header\""][..],
        ),
    ];
    for (notifier, words) in cases {
        let text = paging_through(&notifier, ", to = \"+15550100\"");
        one_error(&text, "notifiers.n", "[notifiers.n]", words);
    }
}

#[test]
fn a_twilio_sender_twilio_would_refuse_is_refused() {
    let twilio = "type = \"twilio\"\naccount_sid = \"AC123\"\nauth_token_env = \"SECRET\"";
    for (line, key, words) in [
        (
            "from = \"+1 555 0199\"",
            "from",
            &["E.164", "+15550199"][..],
        ),
        ("from = \"15550199\"", "from", &["E.164"][..]),
        (
            "from = \"Tocsin Alerts Ltd\"",
            "from",
            &["alphanumeric sender ID", "11"][..],
        ),
        (
            "messaging_service_sid = \"AC123\"",
            "messaging_service_sid",
            &["MG"][..],
        ),
    ] {
        let text = paging_through(&format!("{twilio}\n{line}"), ", to = \"+15550100\"");
        one_error(&text, &format!("notifiers.n.{key}"), line, words);
    }
}

#[test]
fn a_voice_notifier_twilio_could_not_call_from_is_refused() {
    let voice = "type = \"twilio_voice\"\naccount_sid = \"AC123\"\nauth_token_env = \"SECRET\"";
    for (line, key, words) in [
        (
            "from = \"Tocsin\"",
            "from",
            &["cannot place calls", "+15550199"][..],
        ),
        ("from = \"+1 555 0199\"", "from", &["E.164"][..]),
    ] {
        let text = paging_through(&format!("{voice}\n{line}"), ", to = \"+15550100\"");
        one_error(&text, &format!("notifiers.n.{key}"), line, words);
    }
    let from = "from = \"+15550199\"";
    for (line, key, words) in [
        ("ring = \"2s\"", "ring", &["between 5s and 600s"][..]),
        ("ring = \"20m\"", "ring", &["between 5s and 600s"][..]),
        ("repeat = 0", "repeat", &["1 to 5"][..]),
    ] {
        let text = paging_through(&format!("{voice}\n{from}\n{line}"), ", to = \"+15550100\"");
        one_error(&text, &format!("notifiers.n.{key}"), line, words);
    }
}

/// A call wakes the house: by default one per minute and three per quarter hour per
/// number, as GoAlert limits voice, and never more than SMS would allow.
#[test]
fn voice_calls_are_limited_like_goalerts_by_default() {
    use super::super::types::RateLimit;
    let text = paging_through(
        "type = \"twilio_voice\"\naccount_sid = \"AC123\"\nauth_token_env = \"SECRET\"\nfrom = \"+15550199\"",
        ", to = \"+15550100\"",
    );
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let limits = c.file.notifiers["n"].limits();
    assert_eq!(
        limits.per_destination,
        [RateLimit::new(1, 60), RateLimit::new(3, 15 * 60)]
    );
    assert!(
        !c.file.notifiers["n"].is_sms(),
        "replies to a call are keys, not SMS"
    );
}

#[test]
fn every_registered_type_is_read_by_its_name_and_gives_back_its_options() {
    use super::super::notifier::{KINDS, NotifierConfig, WebhookNotifierConfig};
    // Through the loader (spans kept for errors) ...
    let text = paging_through(
        "type = \"webhook\"\nurl = \"http://127.0.0.1:8080/page\"",
        "",
    );
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let n = &c.file.notifiers["n"];
    assert_eq!(n.type_name(), "webhook");
    assert_eq!(
        n.get::<WebhookNotifierConfig>().map(|w| w.url.as_str()),
        Some("http://127.0.0.1:8080/page")
    );
    assert!(n.get::<super::super::notifier::EmailConfig>().is_none());
    // ... and through plain serde.
    let n: NotifierConfig =
        toml::from_str("type = \"webhook\"\nurl = \"http://127.0.0.1:8080/page\"").unwrap();
    assert_eq!(n.type_name(), "webhook");
    let e = toml::from_str::<NotifierConfig>("type = \"pager\"").unwrap_err();
    assert!(
        e.to_string().contains("unknown notifier type \"pager\""),
        "{e}"
    );
    // The unknown-type message lists every registered type.
    let errs = errors(&paging_through("type = \"pager\"", ""));
    for k in KINDS {
        assert!(errs[0].message.contains(k.name), "{:?}", errs[0].message);
    }
}

#[test]
fn a_url_that_cannot_work_is_named_without_its_password_or_token() {
    let text = paging_through(
        "type = \"webhook\"\nurl = \"ftp://ops:hunter2@hooks.example.com/page?token=abc123\"",
        "",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let shown = errs[0].to_string();
    assert!(shown.contains("hooks.example.com/page"), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("abc123"),
        "a config error shows a secret: {shown}"
    );
}
