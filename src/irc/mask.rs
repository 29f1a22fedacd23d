//! IRC names compare case-insensitively, by the network's `CASEMAPPING` (rfc1459 unless
//! the server says otherwise), and senders match `nick!user@host` masks.

/// How a network folds the case of nicks and channels (ISUPPORT `CASEMAPPING`). They
/// differ on `[]\~` and `{}|^`: under `ascii`, `alice\m` and `alice|m` are two people,
/// and folding them together would lend one the other's account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CaseMapping {
    /// Only A-Z (InspIRCd 4's default, Ergo, most modern networks).
    Ascii,
    /// A-Z, and `[]\~` as the upper case of `{}|^`.
    #[default]
    Rfc1459,
    /// A-Z, and `[]\` as the upper case of `{}|` (`~` and `^` differ).
    Rfc1459Strict,
}

impl CaseMapping {
    /// The mapping an ISUPPORT token names (`CASEMAPPING=ascii`); unknown ones (like
    /// `rfc7613`) fold like `ascii`, the part every mapping shares.
    pub fn from_isupport(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "rfc1459" => CaseMapping::Rfc1459,
            "strict-rfc1459" | "rfc1459-strict" => CaseMapping::Rfc1459Strict,
            _ => CaseMapping::Ascii,
        }
    }

    fn fold_char(self, c: char) -> char {
        match (self, c) {
            (_, 'A'..='Z') => c.to_ascii_lowercase(),
            (CaseMapping::Ascii, _) => c,
            (_, '[') => '{',
            (_, ']') => '}',
            (_, '\\') => '|',
            (CaseMapping::Rfc1459, '~') => '^',
            _ => c,
        }
    }

    pub fn fold(self, s: &str) -> String {
        s.chars().map(|c| self.fold_char(c)).collect()
    }

    pub fn same(self, a: &str, b: &str) -> bool {
        self.fold(a) == self.fold(b)
    }
}

/// Lower-cases under rfc1459, for names whose network has not said otherwise.
pub fn casefold(s: &str) -> String {
    CaseMapping::Rfc1459.fold(s)
}

fn fold_char(c: char) -> char {
    CaseMapping::Rfc1459.fold_char(c)
}

/// Whether two nicks, channels or accounts are the same name.
pub fn same_name(a: &str, b: &str) -> bool {
    casefold(a) == casefold(b)
}

/// Whether `hostmask` (`nick!user@host`) matches `mask` (`*` any run, `?` one char),
/// case-insensitively.
pub fn mask_matches(mask: &str, hostmask: &str) -> bool {
    let pattern: Vec<char> = mask.chars().map(fold_char).collect();
    let text: Vec<char> = hostmask.chars().map(fold_char).collect();
    glob(&pattern, &text)
}

/// Two-pointer glob: on a mismatch, only the latest `*` is retried one char further.
/// Earlier stars never need revisiting, so a hostile mask like `*a*a*a*a*b` costs
/// O(mask × text) at worst instead of exponential backtracking.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Position of the last `*` seen, and where in the text it currently stops.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_fold_like_the_server_folds_them() {
        assert_eq!(casefold("Bob[AWAY]\\~"), "bob{away}|^");
        assert!(same_name("Alice[m]", "alice{M}"));
        assert!(same_name("#Ops", "#ops"));
        assert!(!same_name("alice", "alice_"));
    }

    #[test]
    fn non_ascii_letters_are_left_alone() {
        // rfc1459 folds ASCII only; the server would not treat these as equal either.
        assert_eq!(casefold("ÉLODIE"), "Élodie");
        assert!(!same_name("Ä", "ä"));
    }

    #[test]
    fn relay_bot_matches_its_configured_mask() {
        let from = "am-relay!~relay@monitoring.example.net";
        assert!(mask_matches("am-relay!*@monitoring.example.net", from));
        assert!(mask_matches("AM-Relay!*@*.EXAMPLE.net", from));
        assert!(mask_matches("*", from));
        assert!(mask_matches("*!*@*", from));
    }

    #[test]
    fn an_impostor_on_another_host_does_not_match() {
        assert!(!mask_matches(
            "am-relay!*@monitoring.example.net",
            "am-relay!~relay@evil.example.org"
        ));
        assert!(!mask_matches("am-relay!*@*", "am-relay2!~relay@host"));
    }

    #[test]
    fn the_whole_hostmask_must_match_not_a_prefix_or_suffix() {
        assert!(!mask_matches("bot", "bot!u@h"));
        assert!(!mask_matches("u@h", "bot!u@h"));
        assert!(mask_matches("bot!u@h", "bot!u@h"));
    }

    #[test]
    fn question_mark_is_exactly_one_character() {
        assert!(mask_matches("bot?!*@*", "bot1!u@h"));
        assert!(!mask_matches("bot?!*@*", "bot!u@h"));
        assert!(!mask_matches("bot?!*@*", "bot12!u@h"));
        assert!(mask_matches("b?t!*@*", "bét!u@h"), "one char, not one byte");
    }

    #[test]
    fn star_matches_an_empty_run() {
        assert!(mask_matches("bot*!*@*", "bot!u@h"));
        assert!(mask_matches("**", ""));
        assert!(mask_matches("", ""));
        assert!(!mask_matches("", "x"));
        assert!(!mask_matches("?", ""));
    }

    #[test]
    fn mask_casefolds_brackets_too() {
        assert!(mask_matches("Relay[bot]!*@*", "relay{BOT}!u@h"));
    }

    #[test]
    fn star_backtracks_to_find_a_later_match() {
        assert!(mask_matches("*.example.net", "a.example.example.net"));
        assert!(mask_matches("a*b*c", "aXbYbZc"));
        assert!(!mask_matches("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn a_hostile_mask_cannot_stall_the_reader() {
        let mask = format!("{}b", "*a".repeat(50));
        let text = "a".repeat(5000);
        let start = std::time::Instant::now();
        assert!(!mask_matches(&mask, &text));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            start.elapsed()
        );
    }
}
