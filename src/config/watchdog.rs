//! `[watchdog]` and `[heartbeats.NAME]`: how tocsin watches the alert path itself.
//!
//! Every source and notifier is a channel with a health state. A channel that stays down
//! for `hold_down` becomes a watchdog incident, paged through the channels that still
//! work; it resolves by itself, with a recovery page, once the channel has been back for
//! `hold_down`.

use std::time::Duration;

use serde::Deserialize;

use super::types::HumanDuration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchdogConfig {
    /// Policy of watchdog incidents. Without it: one step paging every contact, each
    /// through their methods in order, skipping notifiers that are down. Either way it
    /// must reach a contact with a method, not only through the IRC link (checked on load).
    pub policy: Option<String>,
    /// A channel must be down this long before it pages, and up this long before its
    /// incident resolves: a link that drops and returns inside it pages nobody.
    #[serde(default = "default_hold_down")]
    pub hold_down: HumanDuration,
    /// Consecutive failed delivery attempts (timeouts, refused connections, 5xx) that
    /// mark a notifier down; pages then fail over to each contact's next method at once.
    /// Permanent failures (a bad address) say nothing about the channel and do not count.
    #[serde(default = "default_notifier_failures")]
    pub notifier_failures: u32,
    /// A notifier marked down by failed sends lets one page through this often, to find
    /// out whether it is back (notifiers in `checks` are proven by their check instead).
    #[serde(default = "default_retry_down_after")]
    pub retry_down_after: HumanDuration,
    /// Notifiers to check on their own, every `check_interval`, even when nothing is
    /// paged: email connects and says EHLO; HTTP notifiers must answer their URL's host.
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default = "default_check_interval")]
    pub check_interval: HumanDuration,
    /// Other tocsin instances to watch (`http://host:9797`): their `/healthz` must answer.
    #[serde(default)]
    pub peers: Vec<String>,
    /// How often each peer is asked ...
    #[serde(default = "default_peer_interval")]
    pub peer_interval: HumanDuration,
    /// ... and how long without a healthy answer before the peer is down.
    #[serde(default = "default_peer_timeout")]
    pub peer_timeout: HumanDuration,
    /// An outside heartbeat URL (healthchecks.io style), pinged only while tocsin's engine
    /// loop is healthy, so the outside monitor pages when tocsin dies or hangs.
    pub ping_url: Option<String>,
    #[serde(default = "default_ping_interval")]
    pub ping_interval: HumanDuration,
    /// Opt-in: page a contact with a test incident every day; unacked, it escalates.
    pub self_test: Option<SelfTestConfig>,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            policy: None,
            hold_down: default_hold_down(),
            notifier_failures: default_notifier_failures(),
            retry_down_after: default_retry_down_after(),
            checks: Vec::new(),
            check_interval: default_check_interval(),
            peers: Vec::new(),
            peer_interval: default_peer_interval(),
            peer_timeout: default_peer_timeout(),
            ping_url: None,
            ping_interval: default_ping_interval(),
            self_test: None,
        }
    }
}

impl WatchdogConfig {
    /// The durations that must be above zero, by key.
    pub fn durations(&self) -> [(&'static str, Duration); 5] {
        [
            ("retry_down_after", self.retry_down_after.0),
            ("check_interval", self.check_interval.0),
            ("peer_interval", self.peer_interval.0),
            ("peer_timeout", self.peer_timeout.0),
            ("ping_interval", self.ping_interval.0),
        ]
    }
}

/// The scheduled test page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfTestConfig {
    /// Time of day, UTC, `"HH:MM"` or `"HH:MM:SS"`.
    pub at: String,
    /// Who gets the test page.
    pub contact: String,
    /// Unacked this long, the test escalates to the watchdog policy as a real incident:
    /// the paging path itself is broken.
    #[serde(default = "default_ack_within")]
    pub ack_within: HumanDuration,
}

impl SelfTestConfig {
    /// Seconds after midnight UTC, or why `at` is not a time of day.
    pub fn second_of_day(&self) -> Result<u32, String> {
        parse_time_of_day(&self.at)
    }
}

/// `"09:30"` or `"09:30:15"` → seconds after midnight.
pub fn parse_time_of_day(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a time of day: write it like \"09:30\" (UTC)");
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let n: Vec<u32> = parts
        .iter()
        .map(|p| p.parse::<u32>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (h, m, sec) = (n[0], n[1], n.get(2).copied().unwrap_or(0));
    if h > 23 || m > 59 || sec > 59 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60 + sec)
}

/// A heartbeat URL, `/hooks/heartbeat/NAME`: something outside (a cron job, a backup,
/// an outside monitor) must call it every `period`; silence past `period + grace` pages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatUrlConfig {
    pub period: HumanDuration,
    #[serde(default = "default_grace")]
    pub grace: HumanDuration,
}

fn default_hold_down() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_notifier_failures() -> u32 {
    3
}
fn default_retry_down_after() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_check_interval() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_peer_interval() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn default_peer_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_ping_interval() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_ack_within() -> HumanDuration {
    HumanDuration::from_secs(15 * 60)
}
fn default_grace() -> HumanDuration {
    HumanDuration::from_secs(5 * 60)
}

impl super::load::Loader<'_, '_> {
    /// `[watchdog]` and `[heartbeats]`: references, URLs, times of day, durations.
    pub(super) fn check_watchdog(&mut self, p: &super::sections::Parsed) {
        use super::locate::KeyPath;
        let w = &p.file.watchdog;
        let at = KeyPath::default().key("watchdog");
        if let Some(policy) = &w.policy
            && !p.policy_names.contains(policy)
        {
            let names: Vec<&str> = p.policy_names.iter().map(String::as_str).collect();
            self.err(
                &at.key("policy"),
                format!(
                    "unknown policy {policy:?} (policies: {}); leave it out to page every contact",
                    names.join(", ")
                ),
            );
        }
        if let Some(problem) = pages_nobody(p) {
            self.err(&at.key("policy"), problem);
        }
        for (key, d) in w.durations() {
            if d.is_zero() {
                self.err(&at.key(key), format!("{key} must be more than 0s"));
            }
        }
        if w.notifier_failures == 0 {
            self.err(
                &at.key("notifier_failures"),
                "notifier_failures must be at least 1 (failed sends in a row that mark a notifier down)",
            );
        }
        for (i, name) in w.checks.iter().enumerate() {
            match p.file.notifiers.get(name) {
                None if !p.notifier_names.contains(name) => self.err(
                    &at.key("checks").index(i),
                    format!("unknown notifier {name:?}: checks names notifiers to test on their own"),
                ),
                Some(n) if !n.has_check() => self.err(
                    &at.key("checks").index(i),
                    format!(
                        "a {} notifier has no check of its own (email, kannel, twilio, http_sms, webhook and the push notifiers do)",
                        n.type_name()
                    ),
                ),
                _ => {}
            }
        }
        for (i, peer) in w.peers.iter().enumerate() {
            if let Err(e) = http_url(peer) {
                self.err(&at.key("peers").index(i), e);
            }
        }
        if let Some(url) = &w.ping_url
            && let Err(e) = http_url(url)
        {
            self.err(&at.key("ping_url"), e);
        }
        if let Some(st) = &w.self_test {
            let st_at = at.key("self_test");
            if let Err(e) = st.second_of_day() {
                self.err(&st_at.key("at"), e);
            }
            if !p.contact_names.contains(&st.contact) {
                let names: Vec<&str> = p.contact_names.iter().map(String::as_str).collect();
                self.err(
                    &st_at.key("contact"),
                    format!(
                        "unknown contact {:?} (contacts: {})",
                        st.contact,
                        names.join(", ")
                    ),
                );
            }
            if st.ack_within.0.is_zero() {
                self.err(&st_at.key("ack_within"), "ack_within must be more than 0s");
            }
        }
        for (name, h) in &p.file.heartbeats {
            let h_at = KeyPath::default().key("heartbeats").key(name);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            {
                self.err(
                    &h_at,
                    format!("name {name:?} may only have letters, digits, '_', '.' and '-' (it is part of the URL)"),
                );
            }
            if h.period.0.is_zero() {
                self.err(
                    &h_at.key("period"),
                    "period must be more than 0s, like \"1h\"",
                );
            }
        }
    }
}

/// Why watchdog incidents would reach no person, if they would: they are paged through
/// the `[watchdog] policy` (every contact without one), and only a contact's methods reach
/// a person; a notifier named in a step (a log, a webhook, a channel) reaches none. A
/// person reached only through IRC is not reached either when the IRC link is what is
/// down, which is the outage the watchdog exists for.
fn pages_nobody(p: &super::sections::Parsed) -> Option<String> {
    let f = &p.file;
    // An entry that failed on its own is missing here and reported already: judging
    // without it would be a second, wrong error.
    if f.contacts.len() != p.contact_names.len()
        || f.policies.len() != p.policy_names.len()
        || f.notifiers.len() != p.notifier_names.len()
    {
        return None;
    }
    let fix = "add a contact with a method, like [contacts.oncall] methods = [{ notifier = \"mail\", to = \"oncall@example.com\" }]";
    let contacts: Vec<&String> = match &f.watchdog.policy {
        Some(name) => {
            let policy = f.policies.get(name)?;
            let named: Vec<&String> = policy.steps.iter().flat_map(|s| &s.notify).collect();
            // A schedule reaches the people it can have on call, and its fallback.
            let rostered = named
                .iter()
                .filter_map(|n| f.schedules.get(*n))
                .flat_map(|s| {
                    let rules = s.rules.iter().flat_map(|r| {
                        let members = r
                            .rotation
                            .as_ref()
                            .and_then(|name| f.rotations.get(name))
                            .map(|rot| rot.members.iter())
                            .into_iter()
                            .flatten();
                        r.contact.iter().chain(members)
                    });
                    s.fallback.iter().chain(rules)
                });
            let people: Vec<&String> = named
                .iter()
                .copied()
                .chain(rostered)
                .filter(|n| f.contacts.contains_key(*n))
                .collect();
            if people.iter().all(|c| f.contacts[*c].methods.is_empty()) {
                let notifiers: Vec<String> = named
                    .iter()
                    .filter(|n| f.notifiers.contains_key(**n))
                    .map(|n| format!("{n:?}"))
                    .collect();
                let why = if notifiers.is_empty() {
                    "names no contact with a method".to_string()
                } else {
                    format!(
                        "names no contact with a method, and the notifiers it names ({}) reach no person",
                        notifiers.join(", ")
                    )
                };
                return Some(format!(
                    "watchdog incidents page nobody: policy {name:?} {why}; name a contact with methods in one of its steps, or leave [watchdog] policy out to page every contact"
                ));
            }
            people
        }
        None => {
            if f.contacts.is_empty() {
                return Some(format!(
                    "watchdog incidents page nobody: without [watchdog] policy they page every contact, and there is none; {fix}, or add [watchdog] policy = \"...\" naming a policy that pages one"
                ));
            }
            if f.contacts.values().all(|c| c.methods.is_empty()) {
                return Some(format!(
                    "watchdog incidents page nobody: without [watchdog] policy they page every contact, and none has a method (an irc_account only lets someone ack); {fix}"
                ));
            }
            f.contacts.keys().collect()
        }
    };
    let irc_only = contacts
        .iter()
        .flat_map(|c| &f.contacts[*c].methods)
        .all(|m| {
            f.notifiers
                .get(&m.notifier)
                .is_some_and(|n| n.through_irc_link())
        });
    irc_only.then(|| {
        "watchdog incidents reach people only through irc notifiers: when the IRC link is down, the outage the watchdog is for, nobody hears of it; give a contact the watchdog pages a method through email, SMS or push (or add [watchdog] policy = \"...\" naming such a contact)".to_string()
    })
}

/// An absolute http(s) URL, or what is wrong with it.
fn http_url(s: &str) -> Result<(), String> {
    match reqwest::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(_) => Err(format!("{s:?} is not an http:// or https:// URL")),
        Err(e) => Err(format!(
            "{s:?} is not a URL ({e}): write it like \"http://other:9797\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_reads_hours_minutes_and_seconds() {
        assert_eq!(parse_time_of_day("09:30"), Ok(9 * 3600 + 30 * 60));
        assert_eq!(parse_time_of_day("23:59:58"), Ok(86398));
        for bad in ["9:30", "24:00", "12:60", "noon", "12:00:00:00", ""] {
            assert!(parse_time_of_day(bad).is_err(), "{bad:?}");
        }
    }
}
