//! One line from the IRC server or bouncer, as `wire::read_line` hands it on: parsed,
//! viewed the way the session views it, and written back out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin::irc::wire::{parse, raw};
use tocsin_fuzz::{assert_one_line, irc_lines};

fuzz_target!(|data: &[u8]| {
    for line in irc_lines(data) {
        let Some(m) = parse(&line) else { continue };
        let _ = (
            m.nick(),
            m.hostmask(),
            m.tag("account"),
            m.param(0),
            m.param(99),
        );
        assert!(
            !m.command.contains(' '),
            "command {:?} has a space",
            m.command
        );
        let params: Vec<&str> = m.params.iter().map(String::as_str).collect();
        // What was read on one line is written back on one line (PONG echoes a PING's
        // token, WHOIS a nick that spoke).
        assert_one_line(&raw(&m.command, &params), "a re-serialized line");
    }
});
