//! `!maint`: the maintenance windows in force or ahead, and starting, ending and
//! extending one. Only ackers may, even to list: a window names the work under way.
//! The engine's refusal is the answer.

use jiff::tz::TimeZone;

use super::IrcDesk;
use crate::engine::{Actor, Input, Refusal, Via, WindowRecord, later_end};
use crate::irc::command::Maint;
use crate::notify::message::clean;
use crate::schedule::wall;
use crate::time::Timestamp;

/// Windows one `!maint` lists at most, a line each; the rest are counted.
const LISTED_MAX: usize = 6;

/// A comment is cut to this many characters in a listed line, to keep it one IRC line.
const COMMENT_CHARS: usize = 80;

impl IrcDesk {
    pub(super) async fn maint(&self, contact: &str, m: &Maint) -> Result<String, String> {
        let now = self.clock.now();
        let by = Actor::new(contact, Via::Irc);
        match m {
            Maint::List => Ok(listed(&self.windows(now).await?, now)),
            Maint::Start {
                duration,
                matchers,
                comment,
            } => {
                let to = now.plus(*duration);
                let input = Input::StartMaintenance {
                    matchers: matchers.clone(),
                    from: now,
                    to,
                    comment: clean(comment),
                    by,
                };
                let applied = self
                    .engine
                    .apply(input)
                    .await
                    .map_err(|e| clean(&e.to_string()))?;
                let id = applied.maintenance_id.unwrap_or_default();
                Ok(format!(
                    "maintenance #{id} started by {contact} until {} for {}: its incidents page nobody until it ends",
                    at(to, now),
                    matchers.join(" ")
                ))
            }
            Maint::End(id) => {
                self.submit(Input::EndMaintenance { id: *id, by }).await?;
                Ok(format!(
                    "maintenance #{id} ended by {contact}; what it held pages from step 1"
                ))
            }
            Maint::Extend(id, more) => {
                let to = later_end(&self.windows(now).await?, *id, *more)
                    .map_err(|r: Refusal| r.to_string())?;
                self.submit(Input::ExtendMaintenance { id: *id, to, by })
                    .await?;
                Ok(format!(
                    "maintenance #{id} extended by {contact} until {}",
                    at(to, now)
                ))
            }
        }
    }

    async fn windows(&self, now: Timestamp) -> Result<Vec<WindowRecord>, String> {
        self.store
            .maintenance(now)
            .await
            .map_err(|e| format!("cannot read the maintenance windows: {e}"))
    }
}

/// `#3 service="db" until 14:00 UTC by alice: db failover test`, a line each.
fn listed(all: &[WindowRecord], now: Timestamp) -> String {
    if all.is_empty() {
        return "no maintenance windows in force or ahead".into();
    }
    let mut lines: Vec<String> = all
        .iter()
        .take(LISTED_MAX)
        .map(|w| {
            let when = if w.active(now) {
                format!("until {}", at(w.to, now))
            } else {
                format!("from {} until {}", at(w.from, now), at(w.to, now))
            };
            let mut comment = clean(&w.comment);
            if let Some((cut, _)) = comment.char_indices().nth(COMMENT_CHARS) {
                comment.truncate(cut);
                comment.push('…');
            }
            format!(
                "#{} {} {when} by {}: {comment}",
                w.id,
                clean(&w.matchers.join(" ")),
                clean(&w.by)
            )
        })
        .collect();
    if all.len() > LISTED_MAX {
        lines.push(format!("and {} more", all.len() - LISTED_MAX));
    }
    lines.join("\n")
}

/// `14:00 UTC` today (UTC), `Tue 8 Dec 14:00 UTC` another day.
fn at(t: Timestamp, now: Timestamp) -> String {
    let day = |t| wall::shown(&TimeZone::UTC, t, "%F");
    let format = if day(t) == day(now) {
        "%H:%M UTC"
    } else {
        "%a %-d %b %H:%M UTC"
    };
    wall::shown(&TimeZone::UTC, t, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(id: u64, from: &str, to: &str, comment: &str) -> WindowRecord {
        WindowRecord {
            id,
            matchers: vec!["service=\"db\"".into(), "env=\"prod\"".into()],
            from: Timestamp::at(from),
            to: Timestamp::at(to),
            comment: comment.into(),
            by: "alice".into(),
            created_at: Timestamp::at(from),
        }
    }

    #[test]
    fn each_window_is_a_line_saying_what_until_when_by_whom_and_why() {
        let now = Timestamp::at("2027-03-10T12:00:00Z");
        let all = [
            window(
                3,
                "2027-03-10T11:00:00Z",
                "2027-03-10T14:00:00Z",
                "db failover test",
            ),
            window(
                4,
                "2027-03-10T22:00:00Z",
                "2027-03-11T02:30:00Z",
                "kernel upgrade",
            ),
        ];
        assert_eq!(
            listed(&all, now),
            "#3 service=\"db\" env=\"prod\" until 14:00 UTC by alice: db failover test\n\
             #4 service=\"db\" env=\"prod\" from 22:00 UTC until Thu 11 Mar 02:30 UTC by alice: kernel upgrade"
        );
        assert_eq!(listed(&[], now), "no maintenance windows in force or ahead");
    }

    #[test]
    fn past_six_windows_the_rest_are_counted_and_long_comments_cut() {
        let now = Timestamp::at("2027-03-10T12:00:00Z");
        let long = "x".repeat(300);
        let all: Vec<WindowRecord> = (1..=9)
            .map(|id| window(id, "2027-03-10T11:00:00Z", "2027-03-10T14:00:00Z", &long))
            .collect();
        let said = listed(&all, now);
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(lines.len(), 7, "{said}");
        assert_eq!(lines[6], "and 3 more");
        assert!(lines[0].len() < 200, "{}", lines[0]);
    }
}
