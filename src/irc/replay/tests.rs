use super::*;

fn t(s: &str) -> Timestamp {
    Timestamp::at(s)
}

/// A live line at `at` (received now), read as an alert candidate.
fn live(r: &mut Replay, at: &str, key: &str) -> bool {
    let time = Some(t(at));
    r.received(None, time, t(at));
    let f = r.classify(None, time, None, "#alerts", key);
    r.take_alert(f, time, key)
}

/// A line replayed inside batch `b`, read as an alert candidate.
fn replayed(r: &mut Replay, b: &str, at: &str, key: &str) -> bool {
    let time = Some(t(at));
    let f = r.classify(Some(b), time, None, "#alerts", key);
    r.take_alert(f, time, key)
}

/// A bouncer attach at `now`: the welcome and JOIN (live, stamped now), then a playback
/// batch opened for `#alerts`.
fn attach(r: &mut Replay, now: &str, batch: &str) {
    r.connected(t(now));
    r.received(None, Some(t(now)), t(now));
    r.batch_start(batch, "znc.in/playback", "#alerts");
}

#[test]
fn an_ack_replayed_in_a_znc_playback_batch_is_history() {
    let mut r = Replay::default();
    r.connected(t("2026-11-21T20:00:00Z"));
    r.batch_start("0b6e", "znc.in/playback", "#alerts");
    let f = r.classify(
        Some("0b6e"),
        Some(t("2026-11-21T20:00:00.500Z")),
        None,
        "#alerts",
        "bob #alerts !ack 7",
    );
    assert_eq!(
        f,
        Freshness::Replayed,
        "inside the batch, whatever its time"
    );
    r.batch_end("0b6e");
    let f = r.classify(
        None,
        Some(t("2026-11-21T20:00:01Z")),
        None,
        "#alerts",
        "bob #alerts !ack 8",
    );
    assert_eq!(f, Freshness::Live);
}

#[test]
fn a_line_older_than_the_connection_is_history_even_without_a_batch() {
    let mut r = Replay::default();
    r.connected(t("2026-11-21T20:00:00Z"));
    let f = r.classify(None, Some(t("2026-11-21T19:50:00Z")), None, "#alerts", "k");
    assert_eq!(f, Freshness::Replayed);
    let f = r.classify(None, Some(t("2026-11-21T19:59:59Z")), None, "#alerts", "k2");
    assert_eq!(f, Freshness::Live, "within the clock skew allowance");
}

#[test]
fn znc_text_playback_without_server_time_is_history() {
    let mut r = Replay::default();
    r.connected(t("2026-11-21T20:00:00Z"));
    r.text_playback("#alerts", "Buffer Playback...");
    assert_eq!(
        r.classify(None, None, None, "#ALERTS", "bob [19:35:23] !ack 3"),
        Freshness::Replayed
    );
    r.command_ignored();
    let tally = r.text_playback("#alerts", "Playback Complete.").unwrap();
    assert_eq!(
        (tally.commands, tally.target.as_deref()),
        (1, Some("#alerts"))
    );
    assert_eq!(
        r.classify(None, None, None, "#alerts", "x"),
        Freshness::Live
    );
}

#[test]
fn one_line_never_counts_twice() {
    let mut r = Replay::default();
    r.connected(t("2026-11-21T20:00:00Z"));
    let at = Some(t("2026-11-21T20:00:05Z"));
    assert_eq!(
        r.classify(None, at, None, "#a", "bob !ack 1"),
        Freshness::Live
    );
    r.connected(t("2026-11-21T20:10:00Z"));
    r.batch_start("x", "znc.in/playback", "#a");
    assert_eq!(
        r.classify(Some("x"), at, None, "#a", "bob !ack 1"),
        Freshness::Duplicate
    );
    assert_eq!(
        r.classify(None, None, Some("m1"), "#a", "k"),
        Freshness::Live
    );
    assert_eq!(
        r.classify(None, None, Some("m1"), "#a", "k"),
        Freshness::Duplicate
    );
}

#[test]
fn a_line_delivered_with_a_message_id_and_replayed_without_it_is_a_duplicate() {
    let mut r = Replay::default();
    r.connected(t("2026-11-21T20:00:00Z"));
    let at = Some(t("2026-11-21T20:00:05Z"));
    assert_eq!(
        r.classify(
            None,
            at,
            Some("abc"),
            "#a",
            "relay #a Alert X on a is firing"
        ),
        Freshness::Live
    );
    r.connected(t("2026-11-21T20:10:00Z"));
    r.batch_start("x", "znc.in/playback", "#a");
    assert_eq!(
        r.classify(Some("x"), at, None, "#a", "relay #a Alert X on a is firing"),
        Freshness::Duplicate
    );
}

#[test]
fn after_a_reconnect_lines_said_while_away_are_read_and_heard_ones_are_not() {
    let mut r = Replay::default();
    r.connected(t("2026-11-21T20:00:00Z"));
    assert!(live(&mut r, "2026-11-21T20:01:00Z", "relay #alerts A"));
    // A PONG: the channel is quiet, tocsin is still listening.
    r.received(
        None,
        Some(t("2026-11-21T20:02:00Z")),
        t("2026-11-21T20:02:00Z"),
    );
    // The link dropped; the bouncer kept what was said meanwhile and replays it all.
    attach(&mut r, "2026-11-21T20:10:00Z", "p");
    assert!(!replayed(
        &mut r,
        "p",
        "2026-11-21T20:00:30Z",
        "relay #alerts B"
    ));
    assert!(!replayed(
        &mut r,
        "p",
        "2026-11-21T20:01:00Z",
        "relay #alerts A"
    ));
    assert!(
        replayed(&mut r, "p", "2026-11-21T20:05:00Z", "relay #alerts C"),
        "said at 20:05, after the last PONG at 20:02"
    );
    let f = r.classify(Some("p"), None, None, "#alerts", "relay #alerts D");
    assert!(!r.take_alert(f, None, "D"), "undated history is never read");
    let tally = r.batch_end("p").expect("a summary at the end of the batch");
    assert_eq!(
        tally,
        Tally {
            target: Some("#alerts".into()),
            read: 1,
            older: 1,
            duplicate: 1,
            undated: 1,
            commands: 0,
            heard_before: Some(t("2026-11-21T20:02:00Z")),
            connected_at: Some(t("2026-11-21T20:10:00Z")),
        }
    );
    assert_eq!(r.batch_end("p"), None, "summed up once");
}

#[test]
fn after_a_restart_with_nothing_heard_before_old_history_is_not_read() {
    let mut r = Replay::default();
    attach(&mut r, "2026-11-21T20:10:00Z", "p");
    assert!(!replayed(
        &mut r,
        "p",
        "2026-11-21T19:00:00Z",
        "relay #alerts A"
    ));
}

#[test]
fn after_a_restart_the_mark_from_the_store_tells_what_was_said_while_away() {
    // The first run heard up to a PONG at 20:05 (its mark went to the store), then
    // stopped for an upgrade.
    let mut before = Replay::default();
    before.connected(t("2026-11-21T20:00:00Z"));
    assert!(live(
        &mut before,
        "2026-11-21T20:01:00Z",
        "relay #alerts firing"
    ));
    before.received(
        None,
        Some(t("2026-11-21T20:05:00Z")),
        t("2026-11-21T20:05:00Z"),
    );
    let json = serde_json::to_string(&before.mark().unwrap()).unwrap();

    let mut after = Replay::default();
    after.restore(&serde_json::from_str::<Mark>(&json).unwrap());
    attach(&mut after, "2026-11-21T20:10:00Z", "p");
    assert!(
        !replayed(
            &mut after,
            "p",
            "2026-11-21T20:01:00Z",
            "relay #alerts firing"
        ),
        "heard before the restart"
    );
    assert!(
        replayed(
            &mut after,
            "p",
            "2026-11-21T20:07:00Z",
            "relay #alerts resolved"
        ),
        "said during the restart"
    );
    assert_eq!(after.mark().unwrap().heard, t("2026-11-21T20:10:00Z"));
}

#[test]
fn a_line_read_just_before_a_restart_is_not_read_again() {
    let mut before = Replay::default();
    before.connected(t("2026-11-21T20:00:00Z"));
    assert!(live(
        &mut before,
        "2026-11-21T20:05:00Z",
        "relay #alerts firing"
    ));
    // A clock half a second ahead (the bouncer's, stamping its PONG).
    before.received(
        None,
        Some(t("2026-11-21T20:05:00.500Z")),
        t("2026-11-21T20:05:00Z"),
    );
    let mark = before.mark().unwrap();
    assert_eq!(mark.read.len(), 1, "within the skew allowance: listed");

    let mut after = Replay::default();
    after.restore(&mark);
    attach(&mut after, "2026-11-21T20:10:00Z", "p");
    assert!(!replayed(
        &mut after,
        "p",
        "2026-11-21T20:05:00Z",
        "relay #alerts firing"
    ));
    assert!(
        replayed(
            &mut after,
            "p",
            "2026-11-21T20:05:00Z",
            "relay #alerts other"
        ),
        "another line of the same millisecond is new"
    );
    assert_eq!(after.batch_end("p").unwrap().duplicate, 1);
}

#[test]
fn two_alert_lines_of_one_millisecond_said_while_away_are_both_read() {
    let mut r = Replay::default();
    r.connected(t("2026-11-21T20:00:00Z"));
    r.received(
        None,
        Some(t("2026-11-21T20:01:00Z")),
        t("2026-11-21T20:01:00Z"),
    );
    attach(&mut r, "2026-11-21T20:10:00Z", "p");
    let at = "2026-11-21T20:05:00.123Z";
    assert!(replayed(
        &mut r,
        "p",
        at,
        "relay #alerts Alert A on db1 is firing"
    ));
    assert!(replayed(
        &mut r,
        "p",
        at,
        "relay #alerts Alert A on db2 is firing"
    ));
}

#[test]
fn replays_of_two_channels_do_not_hide_each_other() {
    let mut r = Replay::default();
    r.connected(t("2026-11-21T20:00:00Z"));
    r.received(
        None,
        Some(t("2026-11-21T20:01:00Z")),
        t("2026-11-21T20:01:00Z"),
    );
    r.connected(t("2026-11-21T20:10:00Z"));
    r.batch_start("a", "znc.in/playback", "#a");
    let f = r.classify(Some("a"), Some(t("2026-11-21T20:07:00Z")), None, "#a", "x");
    assert!(r.take_alert(f, Some(t("2026-11-21T20:07:00Z")), "x"));
    r.batch_end("a");
    r.batch_start("b", "znc.in/playback", "#b");
    let f = r.classify(Some("b"), Some(t("2026-11-21T20:06:00Z")), None, "#b", "y");
    assert!(
        r.take_alert(f, Some(t("2026-11-21T20:06:00Z")), "y"),
        "#b's backlog is older than #a's, and still new"
    );
}

#[test]
fn a_quiet_channel_still_moves_the_mark_but_cached_lines_and_history_do_not() {
    let mut r = Replay::default();
    assert_eq!(r.mark(), None, "nothing heard yet");
    r.connected(t("2026-11-21T20:00:00Z"));
    // ZNC repeats the network's welcome with the time it first got it.
    r.received(
        None,
        Some(t("2026-11-21T19:00:00Z")),
        t("2026-11-21T20:00:00Z"),
    );
    assert_eq!(r.mark(), None);
    r.received(
        None,
        Some(t("2026-11-21T20:00:30Z")),
        t("2026-11-21T20:00:30Z"),
    );
    r.batch_start("p", "znc.in/playback", "#alerts");
    r.received(
        Some("p"),
        Some(t("2026-11-21T20:00:40Z")),
        t("2026-11-21T20:00:31Z"),
    );
    assert_eq!(r.mark().unwrap().heard, t("2026-11-21T20:00:30Z"));
    // A server clock an hour ahead moves it only to our own now (and the skew).
    r.received(
        None,
        Some(t("2026-11-21T21:00:31Z")),
        t("2026-11-21T20:00:31Z"),
    );
    assert_eq!(r.mark().unwrap().heard, t("2026-11-21T20:00:33Z"));
}

#[test]
fn history_outside_any_batch_is_summed_up_once_no_replay_is_open() {
    let mut r = Replay::default();
    r.connected(t("2026-11-21T20:00:00Z"));
    let f = r.classify(None, Some(t("2026-11-21T19:00:00Z")), None, "#alerts", "k");
    assert!(!r.take_alert(f, Some(t("2026-11-21T19:00:00Z")), "k"));
    r.batch_start("p", "znc.in/playback", "#alerts");
    assert_eq!(r.summary(), None, "a replay is still going on");
    assert_eq!(r.batch_end("p").map(|t| t.older), Some(1));
    assert_eq!(r.summary(), None, "nothing left");
}
