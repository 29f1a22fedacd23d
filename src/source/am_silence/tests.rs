//! The requests the silence client sends, without a network: what Alertmanager would be
//! told, and what is refused before it could be.

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn an_ack_silences_exactly_the_group_labels_and_says_who_and_why() {
    let m = labels(&[("alertname", "DiskFull"), ("instance", "db-1:9100")]);
    let body = PostableSilence::new(
        &m,
        Timestamp::at("2026-12-07T10:05:00Z"),
        Timestamp::at("2026-12-07T12:05:00Z"),
        CREATED_BY,
        "acked in tocsin #42 by alice",
    )
    .unwrap();
    let json = serde_json::to_value(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "matchers": [
                {"name": "alertname", "value": "DiskFull", "isRegex": false, "isEqual": true},
                {"name": "instance", "value": "db-1:9100", "isRegex": false, "isEqual": true},
            ],
            "startsAt": "2026-12-07T10:05:00.000Z",
            "endsAt": "2026-12-07T12:05:00.000Z",
            "createdBy": "tocsin",
            "comment": "acked in tocsin #42 by alice",
        })
    );
}

#[test]
fn a_silence_that_would_cover_every_alert_is_never_sent() {
    let now = Timestamp::at("2026-12-07T10:00:00Z");
    let end = Timestamp::at("2026-12-07T12:00:00Z");
    let none = BTreeMap::new();
    let e = PostableSilence::new(&none, now, end, CREATED_BY, "x").unwrap_err();
    assert!(!e.is_retryable() && e.kind().is_none(), "{e:?}");
    assert!(e.to_string().contains("no matchers"), "{e}");

    let blank = labels(&[("job", ""), ("team", "")]);
    let e = PostableSilence::new(&blank, now, end, CREATED_BY, "x").unwrap_err();
    assert!(!e.is_retryable());
    assert!(e.to_string().contains(r#"{job="", team=""}"#), "{e}");
    assert!(e.to_string().contains("Watchdog"), "{e}");

    // One empty value beside a real one is a narrow silence ("no such label").
    let some = labels(&[("alertname", "DiskFull"), ("team", "")]);
    assert!(PostableSilence::new(&some, now, end, CREATED_BY, "x").is_ok());
}

#[test]
fn filters_quote_values_so_labels_cannot_widen_the_query() {
    assert_eq!(filter("alertname", "DiskFull"), r#"alertname="DiskFull""#);
    assert_eq!(
        filter("msg", "a\"b\\c\nd"),
        r#"msg="a\"b\\c\nd""#,
        "quotes, backslashes and newlines are escaped"
    );
    assert_eq!(
        filter("app.kubernetes.io/name", "x"),
        r#""app.kubernetes.io/name"="x""#
    );
    assert_eq!(filter("_x9", ""), r#"_x9="""#);
}

#[test]
fn an_alertmanager_behind_a_proxy_prefix_keeps_its_prefix() {
    let peer = Url::parse("https://ops.example.com/alertmanager/").unwrap();
    assert_eq!(
        endpoint(&peer, "/api/v2/silences").as_str(),
        "https://ops.example.com/alertmanager/api/v2/silences"
    );
    let plain = Url::parse("http://alertmanager:9093").unwrap();
    let id = SilenceId("4d2d1b2e-5b4b-4b0e-9d1c-0a0b0c0d0e0f".into());
    assert_eq!(
        silence_url(&plain, &id).as_str(),
        "http://alertmanager:9093/api/v2/silence/4d2d1b2e-5b4b-4b0e-9d1c-0a0b0c0d0e0f"
    );
    // An id is one path segment, whatever it holds.
    let odd = SilenceId("../silences?x".into());
    assert!(
        silence_url(&plain, &odd)
            .path()
            .ends_with("/api/v2/silence/..%2Fsilences%3Fx"),
        "{}",
        silence_url(&plain, &odd)
    );
}

#[test]
fn a_silence_already_gone_is_expired_enough() {
    assert!(is_gone(StatusCode::NOT_FOUND, ""));
    // Alertmanager 0.25 answers an unknown id with 500.
    assert!(is_gone(
        StatusCode::INTERNAL_SERVER_ERROR,
        "\"silence not found\"\n"
    ));
    assert!(!is_gone(
        StatusCode::INTERNAL_SERVER_ERROR,
        "database locked"
    ));
    assert!(!is_gone(StatusCode::BAD_REQUEST, "silence not found"));
}

#[test]
fn refusals_are_retryable_only_when_they_may_pass() {
    let what = "POST http://am:9093/api/v2/silences";
    let bad = refused(what, StatusCode::BAD_REQUEST, "\"silence invalid\"");
    assert!(!bad.is_retryable());
    assert_eq!(bad.kind(), Some(FailureKind::Http(400)));
    assert!(bad.to_string().contains("silence invalid"), "{bad}");
    let busy = refused(what, StatusCode::SERVICE_UNAVAILABLE, "");
    assert!(busy.is_retryable());
    assert_eq!(busy.kind(), Some(FailureKind::Http(503)));
    let auth = refused(what, StatusCode::UNAUTHORIZED, "");
    assert_eq!(
        (auth.is_retryable(), auth.kind()),
        (false, Some(FailureKind::Auth))
    );
}

#[test]
fn the_alerts_list_is_read_from_its_start() {
    assert_eq!(alerts_listed("[]"), Some(false));
    assert_eq!(alerts_listed(" [ \n ]\n"), Some(false));
    // Cut off after the cap: still clearly not empty.
    assert_eq!(
        alerts_listed(r#"[{"labels":{"alertname":"Disk"#),
        Some(true)
    );
    assert_eq!(alerts_listed(r#"{"error":"x"}"#), None);
    assert_eq!(alerts_listed(""), None);
}
