//! `[sources.alertmanager] silence_on_ack`: an HA pair, credentials from files and the
//! environment, and every mistake named at its key.

use std::env::VarError;

use super::load::load_with_env;
use super::{DESIGN_EXAMPLE, Presented, edit, errors, line_containing, load};

const HEARTBEAT: &str = r#"heartbeat = { alertname = "Watchdog", within = "10m" }"#;

/// The design example with `silence_on_ack` written as `value`.
fn with(value: &str) -> String {
    edit(HEARTBEAT, &format!("{HEARTBEAT}\nsilence_on_ack = {value}"))
}

fn am_env(name: &str) -> Result<String, VarError> {
    match name {
        "AM_TOKEN" => Ok("am-token-0123456789".to_string()),
        _ => Err(VarError::NotPresent),
    }
}

#[test]
fn no_silence_on_ack_means_acks_silence_nothing() {
    assert!(load(DESIGN_EXAMPLE).unwrap().silence_on_ack.is_none());
}

#[test]
fn an_ha_pair_is_tried_in_order_with_a_token_from_the_environment() {
    let text = with(
        r#"{ url = ["http://am-1:9093", "https://am-2.example.com/alertmanager"], bearer_token_env = "AM_TOKEN" }"#,
    );
    let c = load_with_env(&text, None, &am_env).unwrap_or_else(|e| panic!("{e}"));
    let s = c.silence_on_ack.as_ref().expect("silence_on_ack");
    let urls: Vec<&str> = s.urls.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        urls,
        ["http://am-1:9093/", "https://am-2.example.com/alertmanager"]
    );
    assert_eq!(s.duration.as_secs(), 2 * 3600, "for defaults to 2h");
    assert_eq!(s.timeout.as_secs(), 5, "timeout defaults to 5s");
    match &s.auth {
        Some(Presented::Bearer(t)) => assert_eq!(t.expose(), "am-token-0123456789"),
        other => panic!("{other:?}"),
    }
    assert!(!format!("{c:?}").contains("am-token-0123456789"));

    let one = with(r#"{ url = "http://alertmanager:9093", for = "30m", timeout = "2s" }"#);
    let s = load(&one).unwrap().silence_on_ack.unwrap();
    assert_eq!(s.urls.len(), 1);
    assert_eq!((s.duration.as_secs(), s.timeout.as_secs()), (1800, 2));
    assert!(s.auth.is_none());
}

#[test]
fn an_unknown_key_is_named_with_what_is_allowed() {
    let text = with(r#"{ url = "http://alertmanager:9093", fore = "2h" }"#);
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].key_path, "sources.alertmanager.silence_on_ack.fore",
        "{errs:#?}"
    );
    assert!(
        errs[0].message.contains("did you mean `for`?"),
        "{}",
        errs[0].message
    );
    assert_eq!(errs[0].line, Some(line_containing(&text, "silence_on_ack")));
}

#[test]
fn a_missing_token_file_names_the_key_and_the_path() {
    let text = with(
        r#"{ url = "http://alertmanager:9093", bearer_token_file = "/nonexistent/am-token" }"#,
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].key_path,
        "sources.alertmanager.silence_on_ack.bearer_token_file"
    );
    assert!(
        errs[0].message.contains("/nonexistent/am-token"),
        "{}",
        errs[0].message
    );
}

#[test]
fn every_mistake_is_reported_at_its_key() {
    let text = with(
        r#"{ url = ["http://am-1:9093", "am-2:9093"], for = "0s", timeout = "0s", bearer_token_env = "AM_TOKEN", basic_auth = { username = "", password_env = "AM_PASSWORD" } }"#,
    );
    let errs = load_with_env(&text, None, &am_env).unwrap_err().0;
    let mut paths: Vec<&str> = errs.iter().map(|e| e.key_path.as_str()).collect();
    paths.sort();
    let at = |k: &str| format!("sources.alertmanager.silence_on_ack.{k}");
    let mut want = vec![
        at("url[1]"),
        at("for"),
        at("timeout"),
        at("basic_auth.username"),
        at("basic_auth.password_env"),
        at("basic_auth"),
    ];
    want.sort();
    assert_eq!(paths, want, "{errs:#?}");
    let url = errs.iter().find(|e| e.key_path == at("url[1]")).unwrap();
    assert!(url.message.contains("http://"), "{}", url.message);

    let empty = with(r#"{ url = [] }"#);
    let errs = errors(&empty);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key_path, at("url"));

    let not_a_url = with(r#"{ url = 9093 }"#);
    let errs = errors(&not_a_url);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].message.contains("a URL or a list of URLs"),
        "{}",
        errs[0].message
    );
}

#[test]
fn a_password_in_the_url_is_refused_and_never_shown() {
    let text = with(r#"{ url = ["http://ops:hunter2@am-1:9093", "ftp://ops:hunter2@am-2"] }"#);
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].message.contains("basic_auth"),
        "{}",
        errs[0].message
    );
    assert!(!format!("{errs:?}").contains("hunter2"), "{errs:#?}");
}
