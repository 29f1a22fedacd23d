//! Text going to and coming from IRC: formatting codes, control characters, and lines
//! that must fit in 512 bytes.

/// The longest hostname a server may show in our prefix. We cannot know our own
/// (bouncers and cloaks rewrite it), so the budget assumes the DNS maximum label length
/// that ircds also use as HOSTLEN.
const WORST_CASE_HOST_LEN: usize = 63;

/// RFC 1459 §2.3: a line is at most 512 bytes, CR LF included.
const MAX_LINE: usize = 512;

/// Removes mIRC formatting: bold, colour (with its digits), hex colour, reset, monospace,
/// reverse, italics, strikethrough, underline.
pub fn strip_formatting(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '\x02' | '\x0f' | '\x11' | '\x16' | '\x1d' | '\x1e' | '\x1f' => {}
            '\x03' => rest = skip_colour(rest),
            '\x04' => rest = skip_hex_colour(rest),
            _ => out.push(c),
        }
    }
    out
}

/// After \x03: `fg` (1–2 digits), then `,bg` only when digits follow the comma, so
/// "\x0304,bold" keeps its comma.
fn skip_colour(s: &str) -> &str {
    let after_fg = skip_digits(s, 2);
    if after_fg.len() == s.len() {
        return s;
    }
    match after_fg.strip_prefix(',') {
        Some(bg) if bg.starts_with(|c: char| c.is_ascii_digit()) => skip_digits(bg, 2),
        _ => after_fg,
    }
}

/// After \x04: `RRGGBB`, then `,RRGGBB` only when six hex digits follow the comma.
fn skip_hex_colour(s: &str) -> &str {
    let Some(after_fg) = skip_hex6(s) else {
        return s;
    };
    after_fg
        .strip_prefix(',')
        .and_then(skip_hex6)
        .unwrap_or(after_fg)
}

fn skip_digits(s: &str, max: usize) -> &str {
    let n = s
        .bytes()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    &s[n..]
}

fn skip_hex6(s: &str) -> Option<&str> {
    let hex = s.get(..6)?;
    hex.bytes().all(|b| b.is_ascii_hexdigit()).then(|| &s[6..])
}

/// Formatting stripped and every other control character (CR, LF, NUL, CTCP's \x01)
/// turned into a space: what is left cannot start a new protocol line.
pub fn clean_line(s: &str) -> String {
    strip_formatting(s)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Splits `text` into pieces of at most `max_bytes` bytes, on character boundaries,
/// preferring a space near the end of each piece; no piece is empty.
pub fn split_to_fit(text: &str, max_bytes: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() <= max_bytes {
            pieces.push(rest.to_string());
            break;
        }
        let (piece, next) = cut_piece(rest, max_bytes);
        pieces.push(piece.to_string());
        rest = next;
    }
    pieces
}

/// One piece off the front of `s` (longer than `max`) and what remains after it.
fn cut_piece(s: &str, max: usize) -> (&str, &str) {
    let mut hard = prefix_within(s, max).len();
    if hard == 0 {
        // A budget smaller than one character still has to make progress.
        hard = s.chars().next().map_or(s.len(), char::len_utf8);
    }
    if hard >= s.len() {
        return (s, "");
    }
    // A space exactly at `hard` counts too: the piece then fills the budget.
    let window_start = hard - hard / 4;
    match s.as_bytes()[window_start..=hard]
        .iter()
        .rposition(|&b| b == b' ')
    {
        Some(i) => {
            let space = window_start + i;
            (&s[..space], &s[space + 1..])
        }
        None => (&s[..hard], &s[hard..]),
    }
}

/// The longest prefix of `s` within `max_bytes` that ends on a character boundary
/// (`str::floor_char_boundary` is newer than our MSRV).
pub fn prefix_within(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let end = (0..=max_bytes)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    &s[..end]
}

/// Bytes of text one PRIVMSG/NOTICE to `target` may carry so the line the server relays
/// (`:nick!user@host CMD target :text\r\n`) stays within 512 bytes.
pub fn payload_budget(nick: &str, user: &str, command: &str, target: &str) -> usize {
    // ":" nick "!" user "@" host " " command " " target " :"
    let prefix = 1
        + nick.len()
        + 1
        + user.len()
        + 1
        + WORST_CASE_HOST_LEN
        + 1
        + command.len()
        + 1
        + target.len()
        + 2;
    (MAX_LINE - 2).saturating_sub(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bold_italics_underline_and_friends_vanish() {
        let s = "\x02bold\x02 \x1ditalic\x1d \x1funder\x1f \x1estrike\x1e \x11mono\x11 \x16rev\x16 \x0freset";
        assert_eq!(
            strip_formatting(s),
            "bold italic under strike mono rev reset"
        );
    }

    #[test]
    fn colour_codes_take_their_digits_with_them() {
        assert_eq!(strip_formatting("\x034FIRING\x03 ok"), "FIRING ok");
        assert_eq!(strip_formatting("\x0304,01FIRING\x03"), "FIRING");
        assert_eq!(strip_formatting("\x034,1x"), "x");
        assert_eq!(
            strip_formatting("\x03042 alerts"),
            "2 alerts",
            "at most two fg digits: the third is text"
        );
        assert_eq!(strip_formatting("\x0304,015 down"), "5 down");
    }

    #[test]
    fn a_comma_after_a_colour_stays_when_no_digit_follows() {
        assert_eq!(strip_formatting("\x0304,hello"), ",hello");
        assert_eq!(strip_formatting("\x03,05x"), ",05x", "bg needs an fg");
        assert_eq!(strip_formatting("\x0312, 42"), ", 42");
    }

    #[test]
    fn hex_colour_takes_six_hex_digits_and_an_optional_background() {
        assert_eq!(strip_formatting("\x04FF0000red"), "red");
        assert_eq!(strip_formatting("\x04ff0000,00ff00x"), "x");
        assert_eq!(strip_formatting("\x04ff0000,00ffx"), ",00ffx");
        assert_eq!(
            strip_formatting("\x04abcxyz"),
            "abcxyz",
            "not six hex digits: only the code goes"
        );
        assert_eq!(strip_formatting("\x04FF"), "FF");
    }

    #[test]
    fn formatting_next_to_multibyte_text_keeps_the_text_whole() {
        assert_eq!(strip_formatting("\x03é\x04ü"), "éü");
        assert_eq!(strip_formatting("\x0304日本\x0f語"), "日本語");
    }

    #[test]
    fn crlf_in_an_alert_never_starts_a_new_irc_line() {
        let evil = "disk full\r\nQUIT :pwned\0\x01ACTION\x01\ttab";
        let c = clean_line(evil);
        assert!(!c.contains(['\r', '\n', '\0', '\x01', '\t']), "{c:?}");
        assert_eq!(c, "disk full  QUIT :pwned  ACTION  tab");
    }

    #[test]
    fn clean_line_strips_colours_before_they_become_stray_digits() {
        assert_eq!(
            clean_line("  \x0304FIRING\x03 db1 \x02down\x02\r\n"),
            "FIRING db1 down"
        );
    }

    #[test]
    fn c1_controls_and_del_are_blanked_too() {
        assert_eq!(clean_line("a\u{7f}b\u{85}c\u{9b}d"), "a b c d");
    }

    #[test]
    fn a_short_announcement_goes_out_as_one_line() {
        assert_eq!(
            split_to_fit("#42 DiskFull db1", 400),
            vec!["#42 DiskFull db1"]
        );
        assert_eq!(split_to_fit("exact", 5), vec!["exact"]);
    }

    #[test]
    fn empty_text_sends_nothing() {
        assert!(split_to_fit("", 400).is_empty());
        assert!(split_to_fit("", 0).is_empty());
    }

    #[test]
    fn long_text_breaks_at_a_space_near_the_end() {
        let pieces = split_to_fit("aaaa bbbb cccc dddd", 12);
        assert_eq!(pieces, vec!["aaaa bbbb", "cccc dddd"]);
    }

    #[test]
    fn a_space_right_at_the_budget_makes_a_full_piece() {
        assert_eq!(split_to_fit("abcd efgh", 4), vec!["abcd", "efgh"]);
    }

    #[test]
    fn a_space_early_in_the_piece_is_not_worth_a_short_line() {
        // The only space is at byte 1 of 12: far outside the final quarter.
        let pieces = split_to_fit("a bbbbbbbbbbbbbbbbbbbb", 12);
        assert_eq!(pieces, vec!["a bbbbbbbbbb", "bbbbbbbbbb"]);
    }

    #[test]
    fn a_url_without_spaces_is_cut_hard() {
        let url = "https://am.example/#/alerts?filter=%7Balertname%3D%22DiskFull%22%7D";
        let pieces = split_to_fit(url, 20);
        assert!(pieces.iter().all(|p| p.len() <= 20 && !p.is_empty()));
        assert_eq!(pieces.concat(), url);
    }

    #[test]
    fn multibyte_text_is_never_cut_inside_a_character() {
        let text = "ディスクがいっぱいです ".repeat(40);
        for max in 1..50 {
            let pieces = split_to_fit(&text, max);
            for p in &pieces {
                assert!(!p.is_empty());
                assert!(
                    p.len() <= max.max(3),
                    "max {max}: {} bytes in {p:?}",
                    p.len()
                );
            }
            assert_eq!(
                pieces.concat().replace(' ', ""),
                text.replace(' ', ""),
                "max {max}: only spaces may be dropped"
            );
        }
    }

    #[test]
    fn a_budget_smaller_than_a_character_still_makes_progress() {
        assert_eq!(split_to_fit("日本", 2), vec!["日", "本"]);
        assert_eq!(split_to_fit("ab", 0), vec!["a", "b"]);
        assert_eq!(split_to_fit("a b", 1), vec!["a", "b"]);
    }

    #[test]
    fn pieces_are_never_empty_even_with_runs_of_spaces() {
        for max in 0..12 {
            let pieces = split_to_fit("a     b        c  ", max);
            assert!(
                pieces.iter().all(|p| !p.is_empty()),
                "max {max}: {pieces:?}"
            );
        }
    }

    #[test]
    fn a_capped_value_never_ends_in_half_a_character() {
        assert_eq!(prefix_within("héllo", 2), "h");
        assert_eq!(prefix_within("héllo", 3), "hé");
        assert_eq!(prefix_within("héllo", 99), "héllo");
        assert_eq!(prefix_within("日", 0), "");
    }

    #[test]
    fn relayed_line_with_the_worst_case_host_fits_in_512_bytes() {
        let (nick, user, cmd, target) = ("tocsin", "tocsin", "PRIVMSG", "#ops");
        let budget = payload_budget(nick, user, cmd, target);
        let host = "h".repeat(WORST_CASE_HOST_LEN);
        let text = "x".repeat(budget);
        let line = format!(":{nick}!{user}@{host} {cmd} {target} :{text}\r\n");
        assert_eq!(line.len(), 512);
        assert_eq!(budget, 510 - (1 + 6 + 1 + 6 + 1 + 63 + 1 + 7 + 1 + 4 + 2));
    }

    #[test]
    fn an_absurdly_long_prefix_leaves_no_budget_rather_than_panicking() {
        let long = "x".repeat(600);
        assert_eq!(payload_budget(&long, "u", "NOTICE", "#c"), 0);
    }
}
