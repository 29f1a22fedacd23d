//! Which services account is behind a nick, for networks and bouncers that do not put
//! the `account` tag on messages (ZNC 1.8 drops it).
//!
//! The map is filled by extended-join, account-notify and WHOX, and only trusted while
//! account-notify keeps it current: without it a user could log out, or leave and have
//! their nick taken, and the map would still vouch for them. A nick the map does not
//! know is asked about with WHOIS at the moment it gives a command.

use std::collections::HashMap;

use super::mask::CaseMapping;

/// What is known of one nick: `Some(account)` logged in, `None` known not to be.
#[derive(Debug, Default)]
pub struct Accounts {
    by_nick: HashMap<String, Option<String>>,
    casemap: CaseMapping,
}

impl Accounts {
    /// The network said how it folds nicks: keys folded the old way could join two
    /// people, so the map starts afresh.
    pub fn set_casemapping(&mut self, casemap: CaseMapping) {
        if casemap != self.casemap {
            self.casemap = casemap;
            self.by_nick.clear();
        }
    }

    fn key(&self, nick: &str) -> String {
        self.casemap.fold(nick)
    }

    pub fn set(&mut self, nick: &str, account: Option<&str>) {
        let account = account.filter(|a| !a.is_empty() && *a != "*" && *a != "0");
        self.by_nick
            .insert(self.key(nick), account.map(str::to_string));
    }

    /// `None`: unknown; `Some(None)`: known not logged in.
    pub fn get(&self, nick: &str) -> Option<Option<&str>> {
        self.by_nick.get(&self.key(nick)).map(|a| a.as_deref())
    }

    pub fn rename(&mut self, old: &str, new: &str) {
        if let Some(a) = self.by_nick.remove(&self.key(old)) {
            let new = self.key(new);
            self.by_nick.insert(new, a);
        }
    }

    /// They left (QUIT, PART, KICK): no longer watched, so no longer trusted.
    pub fn forget(&mut self, nick: &str) {
        let key = self.key(nick);
        self.by_nick.remove(&key);
    }

    pub fn clear(&mut self) {
        self.by_nick.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_or_zero_account_means_not_logged_in() {
        let mut a = Accounts::default();
        a.set("mallory", Some("*"));
        a.set("eve", Some("0"));
        a.set("Alice", Some("alice"));
        assert_eq!(a.get("mallory"), Some(None));
        assert_eq!(a.get("eve"), Some(None));
        assert_eq!(a.get("ALICE"), Some(Some("alice")));
        assert_eq!(a.get("bob"), None);
    }

    #[test]
    fn a_nick_change_keeps_the_account_and_leaving_forgets_it() {
        let mut a = Accounts::default();
        a.set("alice", Some("alice"));
        a.rename("alice", "alice_away");
        assert_eq!(a.get("alice"), None, "someone else may take the old nick");
        assert_eq!(a.get("alice_away"), Some(Some("alice")));
        a.forget("alice_away");
        assert_eq!(a.get("alice_away"), None);
    }
}
