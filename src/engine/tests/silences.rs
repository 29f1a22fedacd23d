//! Silences: known noise opens no incident while a silence lasts, and nothing else.

use super::*;

fn silence(matchers: &[&str], from: &str, to: &str, comment: &str) -> Input {
    Input::AddSilence {
        matchers: matchers.iter().map(|m| m.to_string()).collect(),
        from: t(from),
        to: t(to),
        comment: comment.into(),
        by: Actor::new("alice", Via::Api),
    }
}

fn opened(fx: &[Effect]) -> usize {
    fx.iter().filter(|e| matches!(e, Effect::Opened(_))).count()
}

#[test]
fn flapping_disk_alerts_under_a_silence_open_nothing_and_are_counted() {
    let mut e = engine();
    let made = e
        .apply(
            t("10:00:00"),
            silence(
                &["alertname=\"DiskFull\""],
                "10:00:00",
                "12:00:00",
                "known flapping",
            ),
        )
        .unwrap();
    assert!(matches!(&made[..], [Effect::Silence(s)] if s.id == 1 && s.by == "alice"));
    let fx = e
        .apply(t("10:30:00"), fire("g1", "a1", "10:29:00"))
        .unwrap();
    assert_eq!(opened(&fx), 0, "{fx:?}");
    assert!(pages(&fx).is_empty());
    assert_eq!(
        fx,
        [Effect::Silenced {
            silence: 1,
            alerts: 1
        }]
    );
    // The silence has ended: the same alert opens an incident and pages.
    let fx = e
        .apply(t("12:00:00"), fire("g1", "a1", "10:29:00"))
        .unwrap();
    assert_eq!(opened(&fx), 1);
    assert!(!pages(&fx).is_empty());
}

#[test]
fn a_silence_made_later_lets_the_open_incident_resolve() {
    let mut e = engine();
    run_table(
        &mut e,
        &[
            (
                "10:00:00",
                fire("g1", "a1", "09:59:00"),
                &[
                    "console:console:triggered:s1c0",
                    "alice:push:triggered:s1c0",
                ],
            ),
            (
                "10:01:00",
                silence(&["alertname=\"DiskFull\""], "10:01:00", "12:00:00", "noise"),
                &[],
            ),
        ],
    );
    let fx = e
        .apply(t("10:02:00"), clear("g1", "a1", "09:59:00"))
        .unwrap();
    let resolved = fx
        .iter()
        .any(|x| matches!(x, Effect::Status(s) if s.state == IncidentState::Resolved));
    assert!(resolved, "{fx:?}");
}

#[test]
fn a_silence_that_has_not_started_silences_nothing_yet() {
    let mut e = engine();
    e.apply(
        t("10:00:00"),
        silence(
            &["alertname=\"DiskFull\""],
            "11:00:00",
            "12:00:00",
            "maintenance tonight",
        ),
    )
    .unwrap();
    let fx = e
        .apply(t("10:30:00"), fire("g1", "a1", "10:29:00"))
        .unwrap();
    assert_eq!(opened(&fx), 1);
}

#[test]
fn an_expired_silence_silences_nothing_and_cannot_be_expired_twice() {
    let mut e = engine();
    e.apply(
        t("10:00:00"),
        silence(&["alertname=\"DiskFull\""], "10:00:00", "12:00:00", "noise"),
    )
    .unwrap();
    let expire = |id| Input::ExpireSilence {
        id,
        by: Actor::new("bob", Via::Api),
    };
    let fx = e.apply(t("10:10:00"), expire(1)).unwrap();
    assert!(matches!(&fx[..], [Effect::SilenceExpired { id: 1, .. }]));
    let fx = e
        .apply(t("10:20:00"), fire("g1", "a1", "10:19:00"))
        .unwrap();
    assert_eq!(opened(&fx), 1);
    let again = e.apply(t("10:30:00"), expire(1)).unwrap_err();
    assert_eq!(again.refusal, Refusal::NoSilence(1));
    assert_eq!(again.refusal.http_status(), 404);
}

#[test]
fn a_silence_that_would_hide_everything_or_says_nothing_is_refused() {
    let mut e = engine();
    let refusal = |e: &mut Engine, input| match e.apply(t("10:00:00"), input) {
        Err(r) => r.refusal.to_string(),
        Ok(fx) => panic!("accepted: {fx:?}"),
    };
    let everything = silence(&["alertname=~\".*\""], "10:00:00", "11:00:00", "shh");
    assert!(refusal(&mut e, everything).contains("would cover everything"));
    let none = silence(&[], "10:00:00", "11:00:00", "shh");
    assert!(refusal(&mut e, none).contains("at least one matcher"));
    let mute = silence(&["service=\"db\""], "10:00:00", "11:00:00", "  ");
    assert!(refusal(&mut e, mute).contains("comment"));
    let past = silence(&["service=\"db\""], "08:00:00", "09:00:00", "late");
    assert!(refusal(&mut e, past).contains("in the future"));
    let typo = silence(&["service"], "10:00:00", "11:00:00", "typo");
    assert!(refusal(&mut e, typo).contains("no operator"));
    assert_eq!(e.silences().count(), 0);
}
