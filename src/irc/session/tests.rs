//! Transcripts of real servers and bouncers (captured from InspIRCd 3.15 + Anope 2.0
//! and ZNC 1.8.2) replayed into the session with literal times.

use super::*;
use crate::irc::command::AckTarget;
use crate::irc::replay::Mark;
use crate::irc::wire::parse;

const T0: &str = "2026-11-21T20:00:00Z";

fn at(secs: u64) -> Timestamp {
    Timestamp::at(T0).plus(Duration::from_secs(secs))
}

fn at_ms(ms: u64) -> Timestamp {
    Timestamp::at(T0).plus(Duration::from_millis(ms))
}

fn cfg() -> SessionConfig {
    SessionConfig {
        nick: "agent".into(),
        username: "agent".into(),
        realname: "tocsin".into(),
        password: None,
        sasl: None,
        channels: vec!["#alerts".into()],
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(20),
        register_timeout: Duration::from_secs(30),
        // The first probe still goes out 5 s after the welcome; the probe tests set
        // their own interval.
        probe_interval: Duration::from_secs(3600),
        probe_timeout: Duration::from_secs(30),
        account_masks: Vec::new(),
    }
}

fn feed(s: &mut Session, lines: &[&str], now: Timestamp) -> Vec<Event> {
    lines
        .iter()
        .flat_map(|l| s.handle(&parse(l).unwrap(), now))
        .collect()
}

fn sent(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Send(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

fn commands(events: &[Event]) -> Vec<Ask> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Command(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

/// WHOIS lines, urgent (the probe) or paced (who sent a command or line).
fn whoises(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Send(l) | Event::Whois(l) if l.starts_with("WHOIS ") => Some(l.clone()),
            _ => None,
        })
        .collect()
}

fn probes(events: &[Event]) -> Vec<(bool, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Probe { ok, detail } => Some((*ok, detail.clone())),
            _ => None,
        })
        .collect()
}

/// A session registered through ZNC 1.8 (no account-tag; account-notify and
/// extended-join come later with CAP NEW), joined to #alerts.
fn through_znc() -> Session {
    through_znc_with(cfg())
}

/// [`through_znc`] probing the network with the default settings: a WHOIS of our own
/// nick every 60 s, answered within 30 s.
fn probing() -> Session {
    let mut c = cfg();
    c.probe_interval = Duration::from_secs(60);
    c.probe_timeout = Duration::from_secs(30);
    through_znc_with(c)
}

fn through_znc_with(mut c: SessionConfig) -> Session {
    c.password = Some("agent/local:agentpass".into());
    let mut s = Session::new(c);
    attach_to_znc(&mut s);
    s
}

/// Connects at 20:00:00 and registers through ZNC 1.8 into #alerts.
fn attach_to_znc(s: &mut Session) {
    s.connect(at(0));
    feed(
        s,
        &[
            ":irc.znc.in CAP unknown-nick LS :batch cap-notify echo-message multi-prefix server-time userhost-in-names znc.in/batch znc.in/self-message znc.in/server-time-iso",
            ":irc.znc.in CAP agent ACK :batch",
            ":irc.znc.in CAP agent ACK :cap-notify",
            ":irc.znc.in CAP agent ACK :server-time",
            "@time=2026-11-21T20:00:00.100Z :irc.test.local 001 agent :Welcome to TestNet",
            ":irc.znc.in CAP agent NEW :account-notify away-notify extended-join",
            ":irc.znc.in CAP agent ACK :account-notify",
            ":irc.znc.in CAP agent ACK :extended-join",
            "@time=2026-11-21T20:00:00.200Z :agent!agent@127.0.0.1 JOIN #alerts * :Escalation Agent",
        ],
        at(0),
    );
}

#[test]
fn registration_asks_for_each_capability_on_its_own_line_then_ends() {
    let mut c = cfg();
    c.password = Some("agent/local:agentpass".into());
    let mut s = Session::new(c);
    let hello = sent(&s.connect(at(0)));
    assert_eq!(
        hello,
        vec![
            "CAP LS 302",
            "PASS agent/local:agentpass",
            "NICK agent",
            "USER agent 0 * tocsin"
        ]
    );
    let out = feed(
        &mut s,
        &[
            ":irc.znc.in CAP unknown-nick LS :batch cap-notify echo-message server-time znc.in/batch",
        ],
        at(0),
    );
    assert_eq!(
        sent(&out),
        vec!["CAP REQ batch", "CAP REQ cap-notify", "CAP REQ server-time"],
        "echo-message is not wanted; one REQ per capability because ZNC NAKs whole lines"
    );
    let out = feed(
        &mut s,
        &[
            ":irc.znc.in CAP agent ACK :batch",
            ":irc.znc.in CAP agent NAK :cap-notify",
        ],
        at(0),
    );
    assert!(sent(&out).is_empty(), "CAP END waits for every answer");
    let out = feed(&mut s, &[":irc.znc.in CAP agent ACK :server-time"], at(0));
    assert_eq!(sent(&out), vec!["CAP END"]);
}

#[test]
fn sasl_plain_logs_in_before_registration_ends() {
    let mut c = cfg();
    c.sasl = Some(("agent".into(), "agentpass".into()));
    let mut s = Session::new(c);
    s.connect(at(0));
    let out = feed(
        &mut s,
        &[
            ":irc.test.local CAP * LS :account-notify account-tag batch sasl=EXTERNAL,PLAIN server-time",
        ],
        at(0),
    );
    assert!(sent(&out).contains(&"CAP REQ sasl".to_string()));
    let mut out = Vec::new();
    for cap in [
        "account-notify",
        "account-tag",
        "batch",
        "sasl",
        "server-time",
    ] {
        out.extend(feed(
            &mut s,
            &[&format!(":irc.test.local CAP agent ACK :{cap}")],
            at(0),
        ));
    }
    assert_eq!(
        sent(&out),
        vec!["AUTHENTICATE PLAIN"],
        "no CAP END while SASL runs"
    );
    let out = feed(&mut s, &["AUTHENTICATE +"], at(0));
    // base64("agent\0agent\0agentpass")
    assert_eq!(
        sent(&out),
        vec!["AUTHENTICATE YWdlbnQAYWdlbnQAYWdlbnRwYXNz"]
    );
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 900 agent agent!agent@127.0.0.1 agent :You are now logged in as agent",
            ":irc.test.local 903 agent :SASL authentication successful",
        ],
        at(0),
    );
    assert_eq!(sent(&out), vec!["CAP END"]);
}

#[test]
fn a_failed_sasl_login_drops_the_link_and_says_what_to_check() {
    let mut c = cfg();
    c.sasl = Some(("agent".into(), "wrong".into()));
    let mut s = Session::new(c);
    s.connect(at(0));
    let out = feed(
        &mut s,
        &[":irc.test.local 904 agent :SASL authentication failed"],
        at(0),
    );
    let Some(Event::Dead(why)) = out.first() else {
        panic!("{out:?}")
    };
    assert!(why.contains("sasl_username"), "{why}");
}

#[test]
fn a_wrong_bouncer_password_is_named() {
    let mut s = Session::new(cfg());
    s.connect(at(0));
    let out = feed(&mut s, &[":irc.znc.in 464 agent :Password required"], at(0));
    assert!(matches!(&out[0], Event::Dead(w) if w.contains("user/network:password")));
}

#[test]
fn a_bouncer_that_accepts_the_connection_and_says_nothing_is_dead_after_the_register_timeout() {
    let mut s = Session::new(cfg());
    s.connect(at(0));
    assert_eq!(s.next_deadline(), Some(at(30)));
    assert!(s.tick(at(29)).is_empty());
    assert!(matches!(&s.tick(at(30))[0], Event::Dead(w) if w.contains("001")));
}

#[test]
fn a_hung_bouncer_is_dead_when_its_pong_does_not_come_back() {
    let mut s = through_znc();
    let out = s.tick(at(30));
    // (The first end-to-end probe has been due since +5 s.)
    assert_eq!(sent(&out), vec!["PING tocsin-1", "WHOIS agent"]);
    // The bouncer answers itself while it runs ...
    feed(&mut s, &[":irc.znc.in PONG irc.znc.in :tocsin-1"], at(31));
    assert!(s.tick(at(51)).iter().all(|e| !matches!(e, Event::Dead(_))));
    // ... and is SIGSTOPped: the socket stays open, nothing comes back.
    let out = s.tick(at(60));
    assert_eq!(sent(&out), vec!["PING tocsin-2"]);
    feed(&mut s, &[":irc.znc.in PONG irc.znc.in :tocsin-1"], at(61)); // stale answer
    let out = s.tick(at(80));
    assert!(
        matches!(&out[0], Event::Dead(w) if w.contains("no PONG within 20s")),
        "{out:?}"
    );
}

#[test]
fn pings_are_answered_with_the_same_token() {
    let mut s = Session::new(cfg());
    s.connect(at(0));
    let out = feed(&mut s, &["PING :soju-msgid-42"], at(0));
    assert_eq!(sent(&out), vec!["PONG soju-msgid-42"]);
}

#[test]
fn the_nick_is_taken_so_registration_tries_another() {
    let mut s = Session::new(cfg());
    s.connect(at(0));
    let out = feed(
        &mut s,
        &[":irc.test.local 433 * agent :Nickname is already in use"],
        at(0),
    );
    assert_eq!(sent(&out), vec!["NICK agent_"]);
}

#[test]
fn kicked_from_the_channel_it_rejoins() {
    let mut s = through_znc();
    assert!(s.is_joined("#Alerts"));
    let out = feed(&mut s, &[":op!o@h KICK #alerts agent :spam"], at(5));
    assert!(matches!(&out[0], Event::Left { reason, .. } if reason.contains("kicked by op")));
    assert!(!s.is_joined("#alerts"));
    let out = s.tick(at(7));
    assert!(sent(&out).contains(&"JOIN #alerts".to_string()), "{out:?}");
}

#[test]
fn a_second_welcome_from_the_real_server_after_znc_reconnects_rejoins() {
    let mut c = cfg();
    c.password = Some("agent/local:agentpass".into());
    let mut s = Session::new(c);
    s.connect(at(0));
    let out = feed(&mut s, &[":irc.znc.in 001 agent :Welcome to ZNC"], at(0));
    assert!(out.contains(&Event::Registered {
        server: "irc.znc.in".into(),
        bouncer_only: true
    }));
    let out = feed(
        &mut s,
        &[
            ":*status!znc@znc.in PRIVMSG agent :Connected!",
            ":irc.test.local 001 agent :Welcome to TestNet",
        ],
        at(3),
    );
    assert!(out.contains(&Event::Upstream {
        connected: true,
        detail: "Connected!".into()
    }));
    assert!(sent(&out).contains(&"JOIN #alerts".to_string()));
}

#[test]
fn znc_status_reports_the_upstream_going_away() {
    let mut s = through_znc();
    let out = feed(
        &mut s,
        &[":*status!znc@znc.in PRIVMSG agent :Disconnected from IRC. Reconnecting..."],
        at(5),
    );
    assert!(matches!(
        &out[0],
        Event::Upstream {
            connected: false,
            ..
        }
    ));
}

#[test]
fn with_account_tag_the_tag_decides_and_its_absence_means_not_logged_in() {
    let mut c = cfg();
    c.sasl = Some(("agent".into(), "agentpass".into()));
    let mut s = Session::new(c);
    s.connect(at(0));
    feed(
        &mut s,
        &[
            ":irc.test.local CAP * LS :account-tag sasl=PLAIN server-time",
            ":irc.test.local CAP agent ACK :account-tag",
            ":irc.test.local CAP agent ACK :server-time",
            ":irc.test.local CAP agent ACK :sasl",
            ":irc.test.local 903 agent :SASL authentication successful",
            ":irc.test.local 001 agent :Welcome",
        ],
        at(0),
    );
    let out = feed(
        &mut s,
        &[
            "@time=2026-11-21T20:00:05.000Z;account=alice :oncall1!o@127.0.0.1 PRIVMSG #alerts :!ack 42",
            "@time=2026-11-21T20:00:06.000Z;+account=alice :oncall1!m@127.0.0.1 PRIVMSG #alerts :!ack 43",
        ],
        at(6),
    );
    let asks = commands(&out);
    assert_eq!(asks.len(), 2);
    assert_eq!(asks[0].account.as_deref(), Some("alice"));
    assert_eq!(asks[0].command, Ok(ChatCommand::Ack(AckTarget::One(42))));
    assert_eq!(asks[0].reply_to, "#alerts");
    assert_eq!(
        asks[1].account, None,
        "a client-set +account tag proves nothing"
    );
    assert!(sent(&out).is_empty(), "no WHOIS needed");
}

#[test]
fn through_znc_the_account_comes_from_extended_join_and_account_notify() {
    let mut s = through_znc();
    let out = feed(
        &mut s,
        &[
            ":oncall1!o@127.0.0.1 JOIN #alerts alice :O",
            ":mallory!m@127.0.0.1 JOIN #alerts * :M",
            "@time=2026-11-21T20:00:05.000Z :oncall1!o@127.0.0.1 PRIVMSG #alerts :!ack 42",
            "@time=2026-11-21T20:00:06.000Z :mallory!m@127.0.0.1 PRIVMSG #alerts :agent: ack 42",
        ],
        at(6),
    );
    let asks = commands(&out);
    assert_eq!(asks[0].account.as_deref(), Some("alice"));
    assert_eq!(asks[0].account_via, "account-notify");
    assert_eq!(asks[1].account, None);
    // mallory identifies as bob later: account-notify keeps the map current.
    let out = feed(
        &mut s,
        &[
            ":mallory!m@127.0.0.1 ACCOUNT :bob",
            "@time=2026-11-21T20:00:07.000Z :mallory!m@127.0.0.1 PRIVMSG #alerts :!ack 42",
        ],
        at(7),
    );
    assert_eq!(commands(&out)[0].account.as_deref(), Some("bob"));
}

#[test]
fn an_unknown_sender_is_asked_about_with_whois_before_the_command_runs() {
    let mut s = through_znc();
    let out = feed(
        &mut s,
        &["@time=2026-11-21T20:00:05.000Z :oncall1!o@127.0.0.1 PRIVMSG agent :ack 42"],
        at(5),
    );
    assert_eq!(whoises(&out), vec!["WHOIS oncall1"]);
    assert!(
        sent(&out).is_empty(),
        "paced like chat, not sent ahead of pages"
    );
    assert!(commands(&out).is_empty(), "held until WHOIS answers");
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 311 agent oncall1 o 127.0.0.1 * :O",
            ":irc.test.local 330 agent oncall1 alice :is logged in as",
            ":irc.test.local 318 agent oncall1 :End of /WHOIS list.",
        ],
        at(5),
    );
    let asks = commands(&out);
    assert_eq!(asks[0].account.as_deref(), Some("alice"));
    assert_eq!(asks[0].account_via, "whois");
    assert!(asks[0].private);
    assert_eq!(asks[0].reply_to, "oncall1");
}

#[test]
fn whois_without_330_means_not_logged_in_and_no_answer_fails_closed() {
    let mut s = through_znc();
    feed(&mut s, &[":eve!e@h PRIVMSG agent :ack 1"], at(5));
    let out = feed(
        &mut s,
        &[":irc.test.local 318 agent eve :End of /WHOIS list."],
        at(5),
    );
    assert_eq!(commands(&out)[0].account, None);
    feed(&mut s, &[":ann!a@h PRIVMSG agent :ack 2"], at(6));
    assert!(commands(&s.tick(at(35))).is_empty(), "30 s for the answer");
    let out = s.tick(at(36));
    let asks = commands(&out);
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].account, None);
}

#[test]
fn whox_after_joining_fills_the_map() {
    let mut s = through_znc();
    feed(
        &mut s,
        &[":irc.test.local 005 agent WHOX CASEMAPPING=rfc1459 :are supported by this server"],
        at(1),
    );
    let out = feed(&mut s, &[":agent!agent@127.0.0.1 PART #alerts"], at(1));
    assert!(matches!(out[0], Event::Left { .. }));
    let out = feed(&mut s, &[":agent!agent@127.0.0.1 JOIN #alerts * :A"], at(3));
    assert!(sent(&out).contains(&"WHO #alerts %tnuhar,152".to_string()));
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 354 agent 152 o 127.0.0.1 oncall1 alice",
            "@time=2026-11-21T20:00:05.000Z :oncall1!o@127.0.0.1 PRIVMSG #alerts :!ack 7",
        ],
        at(5),
    );
    assert_eq!(commands(&out)[0].account.as_deref(), Some("alice"));
}

#[test]
fn a_replayed_ack_acts_on_nothing() {
    let mut s = through_znc();
    let out = feed(
        &mut s,
        &[
            "@time=2026-11-21T20:00:00.888Z :znc.in BATCH +0b6e znc.in/playback #alerts",
            "@batch=0b6e;time=2026-11-21T20:00:00.500Z :oncall1!o@127.0.0.1 PRIVMSG #alerts :!ack 42",
            "@time=2026-11-21T20:00:00.888Z :znc.in BATCH -0b6e",
            // Without server-time ZNC pastes the time into the text instead.
            ":***!znc@znc.in PRIVMSG #alerts :Buffer Playback...",
            ":oncall1!o@127.0.0.1 PRIVMSG #alerts :[19:35:23] !ack 42",
            ":***!znc@znc.in PRIVMSG #alerts :Playback Complete.",
            // Older than this connection, no batch at all.
            "@time=2026-11-21T19:00:00.000Z :oncall1!o@127.0.0.1 PRIVMSG agent :ack 42",
        ],
        at(1),
    );
    assert!(commands(&out).is_empty(), "{out:?}");
    assert!(sent(&out).is_empty(), "not even a WHOIS for history");
    // The text-playback line reads "[19:35:23] !ack 42": not even a command any more.
    assert_eq!(
        out.iter()
            .filter(|e| matches!(e, Event::Ignored(_)))
            .count(),
        2
    );
    assert!(!out.iter().any(|e| matches!(e, Event::Said(_))), "{out:?}");
}

#[test]
fn one_line_never_acks_twice_even_when_replayed_after_a_reconnect() {
    let mut s = through_znc();
    let line = "@time=2026-11-21T20:00:05.000Z;account=alice :o!o@h PRIVMSG #alerts :!ack 42";
    feed(&mut s, &[":o!o@h JOIN #alerts alice :O"], at(4));
    assert_eq!(commands(&feed(&mut s, &[line], at(5))).len(), 1);
    assert_eq!(commands(&feed(&mut s, &[line], at(6))).len(), 0);
}

#[test]
fn bot_alert_lines_are_passed_on_and_notices_are_never_commands() {
    let mut s = through_znc();
    let out = feed(
        &mut s,
        &[
            "@time=2026-11-21T20:00:05.000Z :relay!r@h NOTICE #alerts :Alert DiskFull on db1 is firing",
            "@time=2026-11-21T20:00:06.000Z :relay!r@h NOTICE #alerts :!ack 1",
            ":bob!b@h PRIVMSG #alerts :\u{1}ACTION waves\u{1}",
        ],
        at(6),
    );
    let said: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            Event::Said(s) => Some(s.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(said, vec!["Alert DiskFull on db1 is firing", "!ack 1"]);
    assert!(commands(&out).is_empty());
}

#[test]
fn its_own_lines_and_services_are_not_commands() {
    let mut s = through_znc();
    let out = feed(
        &mut s,
        &[
            ":agent!agent@h PRIVMSG #alerts :!ack 1",
            ":NickServ!services@services.test.local NOTICE agent :!ack 1",
            ":NickServ!services@services.test.local PRIVMSG agent :ack 1",
        ],
        at(6),
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn help_needs_no_account_lookup() {
    let mut s = through_znc();
    let out = feed(&mut s, &[":eve!e@h PRIVMSG #alerts :!help"], at(6));
    assert_eq!(commands(&out)[0].command, Ok(ChatCommand::Help));
    assert!(sent(&out).is_empty());
}

#[test]
fn the_network_behind_the_bouncer_is_proven_by_a_whois_of_our_own_nick() {
    let mut s = probing();
    assert_eq!(
        s.next_deadline(),
        Some(at(5)),
        "a fresh link is proven soon, not a probe_interval later"
    );
    assert!(s.tick(at(4)).is_empty());
    let out = s.tick(at(5));
    assert_eq!(out, vec![Event::Send("WHOIS agent".into())]);
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 311 agent agent agent 127.0.0.1 * :Escalation Agent",
            ":irc.test.local 312 agent agent irc.test.local :TestNet",
            ":irc.test.local 330 agent agent agent :is logged in as",
            ":irc.test.local 318 agent agent :End of /WHOIS list.",
        ],
        at_ms(5_250),
    );
    assert_eq!(
        out,
        vec![Event::Probe {
            ok: true,
            detail: "WHOIS agent answered in 250 ms".into()
        }]
    );
    // The bouncer answers the PING at +30 itself; nothing about the probe is left.
    assert_eq!(sent(&s.tick(at(30))), vec!["PING tocsin-1"]);
    feed(&mut s, &[":irc.znc.in PONG irc.znc.in :tocsin-1"], at(30));
    assert!(probes(&s.tick(at(35))).is_empty(), "answered: no failure");
    assert_eq!(s.next_deadline(), Some(at(60)));
    assert!(whoises(&s.tick(at(64))).is_empty());
    assert_eq!(
        s.next_deadline(),
        Some(at(65)),
        "the next probe, probe_interval after the first"
    );
    assert_eq!(whoises(&s.tick(at(65))), vec!["WHOIS agent"]);
}

#[test]
fn an_unanswered_probe_reports_the_network_unreachable_but_keeps_the_link() {
    let mut s = probing();
    assert_eq!(whoises(&s.tick(at(5))), vec!["WHOIS agent"]);
    // ZNC's upstream hangs: ZNC still answers PINGs, the network answers nothing.
    assert_eq!(sent(&s.tick(at(30))), vec!["PING tocsin-1"]);
    feed(&mut s, &[":irc.znc.in PONG irc.znc.in :tocsin-1"], at(30));
    assert!(probes(&s.tick(at(34))).is_empty());
    assert_eq!(s.next_deadline(), Some(at(35)), "the probe's deadline");
    let out = s.tick(at(35));
    assert_eq!(
        probes(&out),
        vec![(
            false,
            "no answer to WHOIS agent within 30s: the IRC network behind the bouncer is not answering"
                .to_string()
        )]
    );
    assert!(
        !out.iter().any(|e| matches!(e, Event::Dead(_))),
        "the bouncer is fine: no reconnect: {out:?}"
    );
    assert!(probes(&s.tick(at(36))).is_empty(), "reported once");
    // An answer after the deadline does not undo the failure: the next probe decides.
    let out = feed(
        &mut s,
        &[":irc.test.local 318 agent agent :End of /WHOIS list."],
        at(40),
    );
    assert!(probes(&out).is_empty(), "{out:?}");
    assert!(matches!(&out[..], [Event::Ignored(w)] if w.contains("35000 ms")));
    // The link lives on and the next probe still goes out.
    let out = s.tick(at(60));
    assert_eq!(sent(&out), vec!["PING tocsin-2"]);
    feed(&mut s, &[":irc.znc.in PONG irc.znc.in :tocsin-2"], at(60));
    assert_eq!(whoises(&s.tick(at(65))), vec!["WHOIS agent"]);
    let out = feed(
        &mut s,
        &[":irc.test.local 318 agent agent :End of /WHOIS list."],
        at(66),
    );
    assert_eq!(
        probes(&out),
        vec![(true, "WHOIS agent answered in 1000 ms".to_string())]
    );
}

#[test]
fn a_whois_answer_about_someone_else_is_not_the_probes_answer() {
    let mut s = probing();
    assert_eq!(whoises(&s.tick(at(5))), vec!["WHOIS agent"]);
    let out = feed(&mut s, &[":eve!e@h PRIVMSG agent :ack 1"], at(6));
    assert_eq!(whoises(&out), vec!["WHOIS eve"]);
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 311 agent eve e h * :Eve",
            ":irc.test.local 330 agent eve eve :is logged in as",
            ":irc.test.local 318 agent eve :End of /WHOIS list.",
        ],
        at(7),
    );
    let asks = commands(&out);
    assert_eq!(asks.len(), 1, "eve's command is released: {out:?}");
    assert_eq!(asks[0].account.as_deref(), Some("eve"));
    assert!(probes(&out).is_empty(), "{out:?}");
    let out = s.tick(at(35));
    assert!(
        matches!(&probes(&out)[..], [(false, _)]),
        "still waiting for our own 318: {out:?}"
    );
}

#[test]
fn the_answer_about_our_own_nick_releases_no_command_and_lends_no_account() {
    let mut s = probing();
    assert_eq!(whoises(&s.tick(at(5))), vec!["WHOIS agent"]);
    let out = feed(&mut s, &[":ann!a@h PRIVMSG agent :ack 2"], at(6));
    assert_eq!(whoises(&out), vec!["WHOIS ann"]);
    // Our own answer (logged in as "agent") comes first ...
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 311 agent agent agent 127.0.0.1 * :Escalation Agent",
            ":irc.test.local 330 agent agent agent :is logged in as",
            ":irc.test.local 318 agent agent :End of /WHOIS list.",
        ],
        at(7),
    );
    assert_eq!(
        probes(&out),
        vec![(true, "WHOIS agent answered in 2000 ms".to_string())]
    );
    assert!(commands(&out).is_empty(), "ann's WHOIS is not answered yet");
    // ... then ann's, without a 330: not logged in, whatever our own WHOIS said.
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 311 agent ann a h * :Ann",
            ":irc.test.local 318 agent ann :End of /WHOIS list.",
        ],
        at(8),
    );
    let asks = commands(&out);
    assert_eq!(asks.len(), 1, "{out:?}");
    assert_eq!(asks[0].nick, "ann");
    assert_eq!(asks[0].account, None);
    assert!(probes(&out).is_empty());
}

#[test]
fn the_probe_asks_for_the_nick_we_have_now() {
    let mut c = cfg();
    c.probe_interval = Duration::from_secs(60);
    c.probe_timeout = Duration::from_secs(30);
    let mut s = Session::new(c);
    s.connect(at(0));
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 433 * agent :Nickname is already in use",
            ":irc.test.local 001 agent_ :Welcome to TestNet",
        ],
        at(1),
    );
    assert_eq!(sent(&out)[0], "NICK agent_");
    assert_eq!(whoises(&s.tick(at(6))), vec!["WHOIS agent_"]);
    let out = feed(
        &mut s,
        &[":irc.test.local 318 agent_ agent_ :End of /WHOIS list."],
        at(6),
    );
    assert_eq!(
        probes(&out),
        vec![(true, "WHOIS agent_ answered in 0 ms".to_string())]
    );
    // The nick frees up and we take it back.
    feed(&mut s, &[":agent_!agent@127.0.0.1 NICK :agent"], at(20));
    assert_eq!(whoises(&s.tick(at(66))), vec!["WHOIS agent"]);
    let out = feed(
        &mut s,
        &[":irc.test.local 318 agent agent_ :End of /WHOIS list."],
        at(67),
    );
    assert!(probes(&out).is_empty(), "the old nick's answer is not ours");
    let out = feed(
        &mut s,
        &[":irc.test.local 318 agent AGENT :End of /WHOIS list."],
        at(68),
    );
    assert_eq!(
        probes(&out),
        vec![(true, "WHOIS agent answered in 2000 ms".to_string())],
        "nicks compare case-insensitively"
    );
}

/// The ZNC 1.8 playback tocsin gets when it comes back from a restart at 20:00: the
/// channel's buffer, in a `znc.in/playback` batch, after the JOIN.
const PLAYBACK_AFTER_RESTART: &[&str] = &[
    "@time=2026-11-21T20:00:00.300Z :znc.in BATCH +0b6e znc.in/playback #alerts",
    "@batch=0b6e;time=2026-11-21T19:40:00.000Z :relay!relay@127.0.0.1 PRIVMSG #alerts :Alert DiskFull on db1:9100 is firing",
    "@batch=0b6e;time=2026-11-21T19:56:00.000Z :relay!relay@127.0.0.1 PRIVMSG #alerts :Alert DiskFull on db1:9100 is resolved",
    "@batch=0b6e;time=2026-11-21T19:57:00.000Z;account=alice :alice!a@127.0.0.1 PRIVMSG #alerts :!ack 7",
    "@time=2026-11-21T20:00:00.300Z :znc.in BATCH -0b6e",
];

fn said(events: &[Event]) -> Vec<(String, Timestamp)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Said(s) => Some((s.text.clone(), s.at)),
            _ => None,
        })
        .collect()
}

#[test]
fn after_a_restart_lines_said_while_away_are_read_and_commands_still_never_act() {
    let mut c = cfg();
    c.password = Some("agent/local:agentpass".into());
    let mut s = Session::new(c);
    // The previous run had last heard IRC (a PONG) at 19:50, then stopped for an upgrade.
    s.restore_replay(&Mark {
        heard: Timestamp::at("2026-11-21T19:50:00Z"),
        read: Vec::new(),
    });
    attach_to_znc(&mut s);
    let out = feed(&mut s, PLAYBACK_AFTER_RESTART, at(1));
    assert_eq!(
        said(&out),
        vec![(
            "Alert DiskFull on db1:9100 is resolved".to_string(),
            Timestamp::at("2026-11-21T19:56:00Z")
        )],
        "only the line said while tocsin was away, dated when it was said: {out:?}"
    );
    assert!(commands(&out).is_empty(), "{out:?}");
    let tally = out
        .iter()
        .find_map(|e| match e {
            Event::Replayed(t) => Some(t.clone()),
            _ => None,
        })
        .expect("the end of the playback sums it up");
    assert_eq!(
        (
            tally.read,
            tally.older,
            tally.commands,
            tally.target.as_deref()
        ),
        (1, 1, 1, Some("#alerts"))
    );
    assert_eq!(
        s.replay_mark().map(|m| m.heard),
        Some(Timestamp::at("2026-11-21T20:00:00.300Z")),
        "heard up to the batch's end, not up to its history"
    );
}

#[test]
fn without_a_mark_a_first_start_reads_no_old_backlog() {
    let mut s = through_znc();
    let out = feed(&mut s, PLAYBACK_AFTER_RESTART, at(1));
    assert!(said(&out).is_empty(), "{out:?}");
    assert!(commands(&out).is_empty(), "{out:?}");
}

/// alice is known from extended-join; then tocsin stops watching the channel. Whoever
/// holds "oncall1" next must be asked about, not lent alice's account.
fn after_losing_sight(lines: &[&str]) -> Vec<Event> {
    let mut s = through_znc();
    let out = feed(
        &mut s,
        &[
            ":oncall1!o@127.0.0.1 JOIN #alerts alice :O",
            "@time=2026-11-21T20:00:05.000Z :oncall1!o@127.0.0.1 PRIVMSG agent :ack 42",
        ],
        at(5),
    );
    assert_eq!(commands(&out)[0].account.as_deref(), Some("alice"));
    feed(&mut s, lines, at(6));
    // alice left while tocsin could not see it; mallory took her nick.
    feed(
        &mut s,
        &["@time=2026-11-21T20:00:10.000Z :oncall1!m@10.6.6.6 PRIVMSG agent :resolve 42"],
        at(10),
    )
}

#[test]
fn kicked_from_the_channel_the_account_map_is_no_longer_trusted() {
    let out = after_losing_sight(&[":op!o@127.0.0.1 KICK #alerts agent :bye"]);
    assert!(commands(&out).is_empty(), "{out:?}");
    assert_eq!(whoises(&out), ["WHOIS oncall1"], "asked again");
}

#[test]
fn parting_the_channel_the_account_map_is_no_longer_trusted() {
    let out = after_losing_sight(&[":agent!agent@127.0.0.1 PART #alerts :cycling"]);
    assert!(commands(&out).is_empty(), "{out:?}");
    assert_eq!(whoises(&out), ["WHOIS oncall1"]);
}

#[test]
fn when_the_bouncer_loses_its_network_the_account_map_is_no_longer_trusted() {
    let out = after_losing_sight(&[
        ":*status!znc@znc.in PRIVMSG agent :Disconnected from IRC. Reconnecting...",
    ]);
    assert!(commands(&out).is_empty(), "{out:?}");
    assert_eq!(whoises(&out), ["WHOIS oncall1"]);
}

#[test]
fn a_second_welcome_through_the_bouncer_starts_the_account_map_afresh() {
    let out = after_losing_sight(&[
        "@time=2026-11-21T20:00:06.000Z :irc.test.local 001 agent :Welcome to TestNet",
    ]);
    assert!(commands(&out).is_empty(), "{out:?}");
    assert_eq!(whoises(&out), ["WHOIS oncall1"]);
}

/// mallory says "resolve 42" as oncall1, then drops the nick and alice takes it before
/// the WHOIS answer comes: the answer is about alice's connection, not mallory's.
#[test]
fn a_whois_answer_about_another_holder_of_the_nick_lends_no_account() {
    let mut s = through_znc();
    let out = feed(
        &mut s,
        &["@time=2026-11-21T20:00:05.000Z :oncall1!m@10.6.6.6 PRIVMSG agent :resolve 42"],
        at(5),
    );
    assert_eq!(whoises(&out), ["WHOIS oncall1"]);
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 311 agent oncall1 o 127.0.0.1 * :O",
            ":irc.test.local 330 agent oncall1 alice :is logged in as",
            ":irc.test.local 318 agent oncall1 :End of /WHOIS list.",
        ],
        at(5),
    );
    let asks = commands(&out);
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].account, None, "not alice: {:?}", asks[0]);
}

/// On an `ascii` network (InspIRCd 4, Ergo) `alice\m` and `alice|m` are two people:
/// folding them the rfc1459 way would lend one the other's account.
#[test]
fn on_an_ascii_network_a_lookalike_nick_is_not_the_acker() {
    let mut s = through_znc();
    feed(
        &mut s,
        &[
            ":irc.test.local 005 agent WHOX CASEMAPPING=ascii CHANTYPES=# :are supported by this server",
            ":alice|m!a@127.0.0.1 JOIN #alerts alice :A",
        ],
        at(1),
    );
    let out = feed(
        &mut s,
        &["@time=2026-11-21T20:00:05.000Z :alice\\m!e@10.6.6.6 PRIVMSG agent :resolve 42"],
        at(5),
    );
    assert!(commands(&out).is_empty(), "{out:?}");
    assert_eq!(
        whoises(&out),
        ["WHOIS alice\\m"],
        "asked about, not taken for alice|m"
    );
    // The real one still is who she is.
    let out = feed(
        &mut s,
        &["@time=2026-11-21T20:00:06.000Z :ALICE|m!a@127.0.0.1 PRIVMSG agent :ack 42"],
        at(6),
    );
    assert_eq!(commands(&out)[0].account.as_deref(), Some("alice"));
}

#[test]
fn casemappings_fold_as_their_networks_do() {
    use crate::irc::mask::CaseMapping;
    assert!(!CaseMapping::Ascii.same("alice\\m", "alice|m"));
    assert!(CaseMapping::Ascii.same("Alice", "aLICE"));
    assert!(CaseMapping::Rfc1459.same("alice\\m", "ALICE|m"));
    assert!(CaseMapping::Rfc1459.same("bob~", "bob^"));
    assert!(CaseMapping::Rfc1459Strict.same("bob[m]", "bob{m}"));
    assert!(!CaseMapping::Rfc1459Strict.same("bob~", "bob^"));
    assert_eq!(
        CaseMapping::from_isupport("strict-rfc1459"),
        CaseMapping::Rfc1459Strict
    );
    assert_eq!(CaseMapping::from_isupport("rfc7613"), CaseMapping::Ascii);
}

/// mallory floods the bot by PM from one host under twenty nicks: each command would
/// cost a WHOIS, sent ahead of pages. Five per ten seconds get through, the drop is said
/// once, and alice on another host is not held up.
#[test]
fn a_command_flood_from_one_host_is_cut_to_five_per_ten_seconds() {
    let mut s = through_znc();
    let lines: Vec<String> = (0..20)
        .map(|i| {
            format!("@time=2026-11-21T20:00:05.000Z :m{i}!m@10.6.6.6 PRIVMSG agent :resolve 42")
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = feed(&mut s, &refs, at(5));
    assert_eq!(whoises(&out).len(), 5, "{:?}", whoises(&out));
    let dropped = out
        .iter()
        .filter(|e| matches!(e, Event::Ignored(t) if t.contains("commands per 10 s")))
        .count();
    assert_eq!(dropped, 1, "said once");
    let out = feed(
        &mut s,
        &["@time=2026-11-21T20:00:05.500Z :oncall1!o@127.0.0.1 PRIVMSG agent :ack 42"],
        at(5),
    );
    assert_eq!(whoises(&out), ["WHOIS oncall1"]);
    let out = feed(
        &mut s,
        &["@time=2026-11-21T20:00:16.000Z :m99!m@10.6.6.6 PRIVMSG agent :resolve 42"],
        at(16),
    );
    assert_eq!(whoises(&out), ["WHOIS m99"], "the pace comes back");
}

/// Thirty clients on thirty hosts PM `ack 42` at once: each sender is unknown, so each
/// would cost a WHOIS. The WHOIS lines are paced (not sent ahead of pages), at most eight
/// wait for an answer, and the rest are told to try again rather than queued.
#[test]
fn a_pm_flood_from_many_hosts_waits_for_eight_whois_and_tells_the_rest_to_try_again() {
    let mut s = through_znc();
    let lines: Vec<String> = (0..30)
        .map(|i| format!("@time=2026-11-21T20:00:05.000Z :m{i}!m@10.6.6.{i} PRIVMSG agent :ack 42"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = feed(&mut s, &refs, at(5));
    let paced: Vec<&String> = out
        .iter()
        .filter_map(|e| match e {
            Event::Whois(l) => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(paced.len(), MAX_WHOIS, "{paced:?}");
    assert!(sent(&out).is_empty(), "no WHOIS skips the pace: {out:?}");
    let told: Vec<&String> = out
        .iter()
        .filter_map(|e| match e {
            Event::Reply { to, text } if text.contains("try again") => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(told.len(), 30 - MAX_WHOIS);
    assert_eq!(told[0], "m8", "answered where asked (by PM)");
    assert!(commands(&out).is_empty());

    // One answer frees a place: the next sender is asked about.
    feed(
        &mut s,
        &[":irc.test.local 318 agent m0 :End of /WHOIS list."],
        at(6),
    );
    let out = feed(
        &mut s,
        &["@time=2026-11-21T20:00:06.000Z :oncall1!o@127.0.0.1 PRIVMSG agent :ack 42"],
        at(6),
    );
    assert_eq!(whoises(&out), ["WHOIS oncall1"]);
}

fn relay_needs_relaybot() -> Session {
    let mut c = cfg();
    c.account_masks = vec!["relay!*@*".into()];
    through_znc_with(c)
}

fn said_with_account(events: &[Event]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Said(s) => Some((s.text.clone(), s.account.clone())),
            _ => None,
        })
        .collect()
}

/// Through ZNC (no account tag) a line from the relay's mask, whose pattern wants an
/// account, waits for the WHOIS of its sender: the relay's own lines come out as
/// relaybot's, in order; mallory holding the nick from another host gets no account.
#[test]
fn a_line_from_a_sender_that_must_be_logged_in_waits_for_its_whois() {
    let mut s = relay_needs_relaybot();
    let out = feed(
        &mut s,
        &[
            "@time=2026-11-21T20:00:05.000Z :relay!r@10.0.0.9 PRIVMSG #alerts :Alert X on h is firing",
            "@time=2026-11-21T20:00:05.100Z :relay!r@10.0.0.9 PRIVMSG #alerts :Alert Y on h is firing",
        ],
        at(5),
    );
    assert_eq!(whoises(&out), ["WHOIS relay"], "one WHOIS for both");
    assert!(said_with_account(&out).is_empty());
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 311 agent relay r 10.0.0.9 * :relay",
            ":irc.test.local 330 agent relay relaybot :is logged in as",
            ":irc.test.local 318 agent relay :End of /WHOIS list.",
        ],
        at(5),
    );
    let relaybot = Some("relaybot".to_string());
    assert_eq!(
        said_with_account(&out),
        [
            ("Alert X on h is firing".to_string(), relaybot.clone()),
            ("Alert Y on h is firing".to_string(), relaybot),
        ]
    );

    let out = feed(
        &mut s,
        &[
            "@time=2026-11-21T20:00:07.000Z :relay!m@evil.example PRIVMSG #alerts :Alert X on h is resolved",
        ],
        at(7),
    );
    assert_eq!(whoises(&out), ["WHOIS relay"]);
    let out = feed(
        &mut s,
        &[
            ":irc.test.local 311 agent relay m evil.example * :relay",
            ":irc.test.local 318 agent relay :End of /WHOIS list.",
        ],
        at(7),
    );
    assert_eq!(
        said_with_account(&out),
        [("Alert X on h is resolved".to_string(), None)]
    );

    // Someone else's chatter is not asked about.
    let out = feed(
        &mut s,
        &["@time=2026-11-21T20:00:08.000Z :bob!b@h PRIVMSG #alerts :looking"],
        at(8),
    );
    assert!(whoises(&out).is_empty());
    assert_eq!(said_with_account(&out), [("looking".to_string(), None)]);
}

/// Straight to a server, someone whose cloak reads `znc.in` calls themselves `*status`
/// and says the network is gone, or brackets a playback: it is chat, not the bouncer.
#[test]
fn on_a_direct_link_a_znc_in_host_speaks_for_no_bouncer() {
    let mut c = cfg();
    c.sasl = Some(("agent".into(), "agentpass".into()));
    let mut s = Session::new(c);
    s.connect(at(0));
    feed(
        &mut s,
        &[
            ":irc.test.local CAP * LS :account-tag sasl=PLAIN server-time",
            ":irc.test.local CAP agent ACK :account-tag",
            ":irc.test.local CAP agent ACK :server-time",
            ":irc.test.local CAP agent ACK :sasl",
            ":irc.test.local 903 agent :SASL authentication successful",
            ":irc.test.local 001 agent :Welcome",
            ":agent!agent@127.0.0.1 JOIN #alerts",
        ],
        at(0),
    );
    let out = feed(
        &mut s,
        &[
            "@time=2026-11-21T20:00:05.000Z :*status!status@znc.in PRIVMSG agent :Disconnected from IRC. Reconnecting...",
            "@time=2026-11-21T20:00:05.000Z :***!znc@znc.in PRIVMSG #alerts :Buffer Playback...",
        ],
        at(5),
    );
    assert!(
        !out.iter()
            .any(|e| matches!(e, Event::Upstream { .. } | Event::Replayed(_))),
        "{out:?}"
    );
    assert_eq!(
        said(&out).len(),
        2,
        "ordinary chat (alert candidates): {out:?}"
    );
    // Through ZNC the same lines are the bouncer's.
    let mut z = through_znc();
    let out = feed(
        &mut z,
        &[":*status!znc@znc.in PRIVMSG agent :Disconnected from IRC. Reconnecting..."],
        at(5),
    );
    assert!(out.iter().any(|e| matches!(
        e,
        Event::Upstream {
            connected: false,
            ..
        }
    )));
}
