//! What the fuzz targets share: input cut the way tocsin's readers cut it, and the
//! invariants they check.

use tocsin::irc::wire::MAX_LINE;

/// The lines `irc::wire::read_line` hands the session from these bytes: split at LF,
/// the line ending dropped, an over-long line skipped, invalid UTF-8 replaced.
pub fn irc_lines(data: &[u8]) -> impl Iterator<Item = String> + '_ {
    data.split(|&b| b == b'\n').filter_map(|line| {
        let mut end = line.len();
        while end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        (line.len() <= MAX_LINE + 2).then(|| String::from_utf8_lossy(&line[..end]).into_owned())
    })
}

/// A line tocsin writes to a server must be exactly one line: a CR, LF or NUL inside it
/// would let whoever chose its text send commands of their own.
pub fn assert_one_line(line: &str, what: &str) {
    assert!(
        !line.contains(['\r', '\n', '\0']),
        "{what} would break the line: {line:?}"
    );
}

/// Splits `data` at the first `sep`: (before, after), or (all, empty).
pub fn split_at_byte(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
