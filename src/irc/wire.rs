//! Framing and the few views of a parsed message the link needs.
//!
//! Lines are read with a hard length cap (IRCv3 allows 8191 bytes of tags plus the
//! 512-byte message) and decoded lossily: a bouncer relays whatever bytes users send,
//! and one line of Latin-1 must not end the connection. Parsing and serializing are
//! `irc-proto`'s.

use std::io;

use irc_proto::{Command, Message, Prefix};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest line accepted: 8191 bytes of tags plus a 512-byte message.
pub const MAX_LINE: usize = 8191 + 512;

/// One read from the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Line(String),
    /// A line longer than [`MAX_LINE`] was skipped.
    TooLong,
    Eof,
}

/// Reads the next line (without its CR LF). Invalid UTF-8 becomes U+FFFD.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<Read> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(Read::Eof);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !too_long {
            if buf.len() + used > MAX_LINE + 2 {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        r.consume(used);
        if done {
            if too_long {
                return Ok(Read::TooLong);
            }
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            return Ok(Read::Line(String::from_utf8_lossy(buf).into_owned()));
        }
    }
}

/// A received line: `irc-proto` parses tags (unescaped) and the source; the command is
/// normalized to its name and parameters, so every command (CAP, BATCH, 354 and
/// whatever irc-proto has no variant for) is handled one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub tags: Vec<(String, Option<String>)>,
    pub source: Source,
    /// Upper case: `PRIVMSG`, `CAP`, `001`.
    pub command: String,
    pub params: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    None,
    Server(String),
    User {
        nick: String,
        user: String,
        host: String,
    },
}

impl Msg {
    /// The value of an unprefixed tag. `+account` is a different, client-set (untrusted)
    /// key and never matches `account`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.0 == key)
            .map(|t| t.1.as_deref().unwrap_or(""))
    }

    /// The sender's nick, when a user (not a server) sent it.
    pub fn nick(&self) -> Option<&str> {
        match &self.source {
            Source::User { nick, .. } if !nick.is_empty() => Some(nick),
            _ => None,
        }
    }

    /// `nick!user@host` of the sender, as masks see it.
    pub fn hostmask(&self) -> Option<String> {
        match &self.source {
            Source::User { nick, user, host } => Some(format!("{nick}!{user}@{host}")),
            _ => None,
        }
    }

    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }
}

/// Parses one line; `None` for empty lines and lines that are not IRC (logged by the
/// caller, never fatal).
pub fn parse(line: &str) -> Option<Msg> {
    if line.trim().is_empty() {
        return None;
    }
    let m: Message = line.parse().ok()?;
    let source = match &m.prefix {
        None => Source::None,
        Some(Prefix::ServerName(s)) => Source::Server(s.clone()),
        Some(Prefix::Nickname(n, u, h)) => Source::User {
            nick: n.clone(),
            user: u.clone(),
            host: h.clone(),
        },
    };
    // The command and parameters come from the line itself: irc-proto's typed commands
    // rewrite some (BATCH types are upper-cased), and tocsin needs them as sent.
    let (command, params) = split_command(after_tags_and_source(line));
    Some(Msg {
        tags: m
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.0, t.1))
            .collect(),
        source,
        command: command.to_ascii_uppercase(),
        params,
    })
}

fn after_tags_and_source(line: &str) -> &str {
    let mut rest = line.trim_start();
    for marker in ['@', ':'] {
        if rest.starts_with(marker) {
            rest = rest.split_once(' ').map_or("", |(_, r)| r).trim_start();
        }
    }
    rest
}

/// `CMD a b :trailing text` into `CMD` and `[a, b, trailing text]`.
fn split_command(s: &str) -> (String, Vec<String>) {
    let mut rest = s.trim_end_matches(['\r', '\n']);
    let mut params = Vec::new();
    let command = match rest.split_once(' ') {
        Some((c, r)) => {
            rest = r;
            c.to_string()
        }
        None => return (rest.to_string(), params),
    };
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing.to_string());
            break;
        }
        match rest.split_once(' ') {
            Some((p, r)) => {
                params.push(p.to_string());
                rest = r;
            }
            None => {
                params.push(rest.to_string());
                break;
            }
        }
    }
    (command, params)
}

/// A command as a line ready to send (no CR LF); irc-proto puts the `:` before a last
/// parameter that needs one.
///
/// CR, LF and NUL are dropped from every part: arguments come from the server too (the
/// channel of a JOIN answered with WHO, a PING's token, a nick asked about), and one of
/// them inside a line would end it early for the server, making the rest a command of
/// its own or cutting it off.
pub fn raw(command: &str, args: &[&str]) -> String {
    let one_line = |s: &str| s.replace(['\r', '\n', '\0'], "");
    let command = Command::Raw(
        one_line(command),
        args.iter().map(|a| one_line(a)).collect(),
    );
    let mut s = Message::from(command).to_string();
    while s.ends_with(['\r', '\n']) {
        s.pop();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(bytes: &[u8]) -> Vec<Read> {
        let mut r = tokio::io::BufReader::with_capacity(64, bytes);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let x = read_line(&mut r, &mut buf).await.unwrap();
            let eof = x == Read::Eof;
            out.push(x);
            if eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn latin1_from_a_user_does_not_end_the_connection() {
        let out = read_all(b":bob!b@h PRIVMSG #a :caf\xe9\r\nPING :x\r\n").await;
        assert_eq!(
            out[0],
            Read::Line(":bob!b@h PRIVMSG #a :caf\u{fffd}".into())
        );
        assert_eq!(out[1], Read::Line("PING :x".into()));
        assert_eq!(out[2], Read::Eof);
    }

    #[tokio::test]
    async fn an_endless_line_is_skipped_not_buffered() {
        let mut bytes = vec![b'a'; MAX_LINE * 3];
        bytes.extend_from_slice(b"\r\nPING :after\n");
        let out = read_all(&bytes).await;
        assert_eq!(out[0], Read::TooLong);
        assert_eq!(out[1], Read::Line("PING :after".into()));
    }

    #[test]
    fn tags_are_read_exactly_and_client_tags_are_not_the_account() {
        let m = parse("@+account=mallory;time=2026-11-21T19:37:59.273Z :m!m@h PRIVMSG #a :!ack 1")
            .unwrap();
        assert_eq!(m.tag("account"), None);
        assert_eq!(m.tag("time"), Some("2026-11-21T19:37:59.273Z"));
        let m = parse("@account=alice :o!o@h PRIVMSG #a :!ack 1").unwrap();
        assert_eq!(m.tag("account"), Some("alice"));
        assert_eq!(m.nick(), Some("o"));
        assert_eq!(m.hostmask().unwrap(), "o!o@h");
        assert_eq!(m.params, vec!["#a", "!ack 1"]);
    }

    #[test]
    fn numerics_without_a_name_are_still_numerics() {
        let m = parse(":irc.test.local 354 agent 152 o 127.0.0.1 oncall1 alice").unwrap();
        assert_eq!(m.command, "354");
        assert_eq!(m.param(5), "alice");
        let m = parse(":irc.test.local 001 agent :Welcome").unwrap();
        assert_eq!(m.command, "001");
        assert_eq!(m.source, Source::Server("irc.test.local".into()));
    }

    #[test]
    fn every_command_shape_comes_out_as_name_and_params() {
        let m = parse(":srv CAP * LS * :account-tag batch sasl=PLAIN,EXTERNAL").unwrap();
        assert_eq!(m.command, "CAP");
        assert_eq!(
            m.params,
            vec!["*", "LS", "*", "account-tag batch sasl=PLAIN,EXTERNAL"]
        );
        let m = parse(":znc.in BATCH +0b6e znc.in/playback #alerts").unwrap();
        assert_eq!(m.params, vec!["+0b6e", "znc.in/playback", "#alerts"]);
        let m = parse(":o!o@h JOIN #alerts alice :O").unwrap();
        assert_eq!(m.params, vec!["#alerts", "alice", "O"]);
        let m = parse(":m!m@h ACCOUNT :*").unwrap();
        assert_eq!((m.command.as_str(), m.param(0)), ("ACCOUNT", "*"));
    }

    #[test]
    fn serialized_lines_have_no_line_ending() {
        assert_eq!(
            raw("PRIVMSG", &["#a", "hello there"]),
            "PRIVMSG #a :hello there"
        );
        assert_eq!(raw("WHO", &["#a", "%tnuhar,152"]), "WHO #a %tnuhar,152");
    }

    /// Found by fuzzing (fuzz/fuzz_targets/irc_session.rs): a JOIN for a channel whose
    /// name held a NUL was answered with a WHO line cut short at the NUL.
    #[test]
    fn a_nul_or_line_break_from_the_server_is_never_echoed_inside_a_line() {
        let m = parse(":agent!agent@h JOIN #alert\x05\0:x :A").unwrap();
        assert_eq!(
            raw("WHO", &[m.param(0), "%tnuhar,152"]),
            "WHO #alert\x05:x %tnuhar,152"
        );
        let m = parse("PING :tok\ren\0").unwrap();
        assert_eq!(raw("PONG", &[m.param(0)]), "PONG token");
        assert_eq!(
            raw("PRIVMSG", &["#a", "x\r\nQUIT :bye"]),
            "PRIVMSG #a :xQUIT :bye"
        );
    }
}
