//! The IRC session machine fed a whole conversation: lines from a server or bouncer,
//! with the clock moving between them and the session's timers firing. A line that
//! starts with NUL (never in IRC) is not sent: its next byte is seconds to let pass
//! before a tick.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tocsin::irc::session::{Event, Session, SessionConfig};
use tocsin::irc::wire::parse;
use tocsin::time::Timestamp;
use tocsin_fuzz::{assert_one_line, irc_lines};

fn config() -> SessionConfig {
    SessionConfig {
        nick: "agent".into(),
        username: "agent".into(),
        realname: "tocsin".into(),
        password: Some("bouncer-pass".into()),
        sasl: Some(("agent".into(), "sasl-pass".into())),
        channels: vec!["#alerts".into(), "#ops".into()],
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(20),
        register_timeout: Duration::from_secs(30),
        probe_interval: Duration::from_secs(60),
        probe_timeout: Duration::from_secs(30),
        // A relay whose lines must come from a services account: its lines wait for
        // WHOIS answers the fuzzer may forge.
        account_masks: vec!["relay!*@*".into()],
    }
}

fn check(events: &[Event]) {
    for e in events {
        if let Event::Send(line) = e {
            assert_one_line(line, "a line the session sends");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new(config());
    let mut now = Timestamp::at("2026-11-21T20:00:00Z");
    check(&session.connect(now));
    for line in irc_lines(data) {
        if let Some(rest) = line.strip_prefix('\0') {
            let secs = rest.bytes().next().unwrap_or(1);
            now = now.plus(Duration::from_secs(u64::from(secs)));
            check(&session.tick(now));
            continue;
        }
        now = now.plus(Duration::from_millis(250));
        if session.next_deadline().is_some_and(|d| d <= now) {
            check(&session.tick(now));
        }
        if let Some(m) = parse(&line) {
            check(&session.handle(&m, now));
        }
    }
    let _ = (
        session.is_registered(),
        session.replay_mark(),
        session.joined().count(),
    );
});
