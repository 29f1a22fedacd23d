//! Acks that silence Alertmanager (`[sources.alertmanager] silence_on_ack`): the client
//! that makes, extends and expires the silence of an acked incident through Alertmanager's
//! API v2, and asks Alertmanager whether the incident's alerts still fire.
//!
//! It decides nothing and reads no clock: the engine says when (an ack creates, an
//! incident still acked whose alerts fire extends, unack, ack timeout and resolve expire)
//! and passes the time in.
//!
//! Every call goes to the configured peers in order, and the first that takes it is
//! enough: HA peers gossip silences to each other. A round in which every peer failed in a
//! way that may pass (a timeout, a refused connection, 5xx) is tried again a few times
//! with jittered backoff; anything else (400: the silence is invalid) is returned at once,
//! since every peer would say the same. The caller records a failure and tries again
//! later: an ack never waits on Alertmanager.
//!
//! Whether the alerts still fire is asked of Alertmanager, not learned from its webhooks:
//! the resolved notification of a silenced alert is never sent.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::{Presented, SilenceOnAck};
use crate::notify::webhook::classify_status;
use crate::notify::{FailureKind, NotifyError, http_client, redact};
use crate::time::Timestamp;

/// `createdBy` of the silences tocsin makes, so that people, amtool and karma can tell
/// them from their own.
pub const CREATED_BY: &str = "tocsin";

/// Rounds over the peers after the first, for failures that may pass.
const RETRIES: usize = 2;

/// Most of an answer that is read: a silence's JSON is far smaller, and of the alerts
/// list only its start matters.
const MAX_ANSWER: usize = 64 * 1024;

/// Alertmanager's id of a silence (a UUID), as it answered it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SilenceId(pub String);

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a silence could not be made, extended, expired or looked at. Its text never holds
/// a token or a URL's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// The matchers would silence more than the incident: none at all, or only empty
    /// values, which match every alert that lacks those labels (the Watchdog too).
    /// Never sent, never worth retrying.
    #[error("refusing to silence {matchers}: {why}")]
    TooBroad {
        /// The matchers as Alertmanager would show them, `{job=""}`.
        matchers: String,
        why: &'static str,
    },
    /// No peer took the request. Its kind (timeout, refused, HTTP status) and whether a
    /// later try may succeed are the last peer's; the text names that peer, redacted.
    #[error("Alertmanager: {0}")]
    Alertmanager(NotifyError),
}

impl SilenceError {
    /// Timeouts, refused connections, 5xx and 429: trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SilenceError::TooBroad { .. } => false,
            SilenceError::Alertmanager(e) => e.transient,
        }
    }

    /// What failed on the way to Alertmanager, for metrics and the channel board; `None`
    /// when nothing was sent.
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            SilenceError::TooBroad { .. } => None,
            SilenceError::Alertmanager(e) => Some(e.kind),
        }
    }
}

/// Talks to the Alertmanager peers of `silence_on_ack`.
#[derive(Debug)]
pub struct AmSilencer {
    /// Base URLs, tried in order (a path prefix is kept: Alertmanager behind a proxy).
    peers: Vec<Url>,
    /// Bounded by `timeout` per request.
    client: reqwest::Client,
    /// Sent with every request.
    auth: Option<Presented>,
    /// Most time spent waiting between rounds, all waits together.
    retry_budget: Duration,
}

impl AmSilencer {
    /// Builds the client; touches no network.
    pub fn new(cfg: &SilenceOnAck) -> Result<Self, SilenceError> {
        Ok(AmSilencer {
            peers: cfg.urls.clone(),
            client: http_client(cfg.timeout).map_err(SilenceError::Alertmanager)?,
            auth: cfg.auth.clone(),
            retry_budget: cfg.timeout,
        })
    }

    /// Silences the alerts whose labels equal `matchers` from `now` until `ends_at`
    /// (`POST /api/v2/silences`), and answers the new silence's id.
    pub async fn create(
        &self,
        matchers: &BTreeMap<String, String>,
        now: Timestamp,
        ends_at: Timestamp,
        created_by: &str,
        comment: &str,
    ) -> Result<SilenceId, SilenceError> {
        let body = PostableSilence::new(matchers, now, ends_at, created_by, comment)?;
        self.on_peers(|peer| self.post(peer, &body)).await
    }

    /// Moves the end of silence `id` to `ends_at` (and its matchers and comment to these),
    /// and answers the id it has now. Alertmanager keeps the id when it can update the
    /// silence in place; a silence that expired or is gone is made anew, with a new id,
    /// which the caller must keep from then on.
    pub async fn extend(
        &self,
        id: &SilenceId,
        matchers: &BTreeMap<String, String>,
        now: Timestamp,
        ends_at: Timestamp,
        created_by: &str,
        comment: &str,
    ) -> Result<SilenceId, SilenceError> {
        let fresh = PostableSilence::new(matchers, now, ends_at, created_by, comment)?;
        self.on_peers(|peer| {
            let fresh = &fresh;
            async move {
                // Alertmanager updates an active silence in place only when its startsAt
                // is unchanged (to the second); any other startsAt expires it and makes a
                // copy, which would leave one expired silence behind every extension. So
                // the startsAt it holds is read and sent back as it was written.
                match self.get(peer, id).await? {
                    Some(held) if held.status.state != "expired" => {
                        let body = PostableSilence {
                            id: Some(&id.0),
                            starts_at: held.starts_at,
                            ..fresh.clone()
                        };
                        self.post(peer, &body).await
                    }
                    _ => self.post(peer, fresh).await,
                }
            }
        })
        .await
    }

    /// Ends silence `id` now (`DELETE /api/v2/silence/{id}`). A silence already expired or
    /// unknown is fine: it silences nothing.
    pub async fn expire(&self, id: &SilenceId) -> Result<(), SilenceError> {
        self.on_peers(|peer| async move {
            let url = silence_url(peer, id);
            let what = format!("DELETE {}", redact(&url));
            let (status, body) = self.call(self.client.delete(url), &what).await?;
            if status.is_success() || is_gone(status, &body) {
                Ok(())
            } else {
                Err(refused(&what, status, &body))
            }
        })
        .await
    }

    /// Whether any alert whose labels equal `matchers` still fires, silenced or not
    /// (`GET /api/v2/alerts`; Alertmanager lists no resolved alert there).
    pub async fn still_firing(
        &self,
        matchers: &BTreeMap<String, String>,
    ) -> Result<bool, SilenceError> {
        check_narrow(matchers)?;
        let mut query: Vec<(&str, String)> = matchers
            .iter()
            .map(|(n, v)| ("filter", filter(n, v)))
            .collect();
        for state in ["active", "silenced", "inhibited", "unprocessed"] {
            query.push((state, "true".to_string()));
        }
        let query = &query;
        self.on_peers(|peer| async move {
            let url = endpoint(peer, "/api/v2/alerts");
            let what = format!("GET {}", redact(&url));
            let (status, body) = self.call(self.client.get(url).query(query), &what).await?;
            if !status.is_success() {
                return Err(refused(&what, status, &body));
            }
            alerts_listed(&body).ok_or_else(|| unreadable(&what, &body))
        })
        .await
    }

    /// `op` on each peer in order until one succeeds; rounds that failed only in ways that
    /// may pass are retried with backoff.
    async fn on_peers<'a, T, F, Fut>(&'a self, op: F) -> Result<T, SilenceError>
    where
        F: Fn(&'a Url) -> Fut,
        Fut: Future<Output = Result<T, SilenceError>>,
    {
        let op = &op;
        let round = || async move {
            let mut last = None;
            for peer in &self.peers {
                match op(peer).await {
                    Ok(t) => return Ok(t),
                    Err(e) if e.is_retryable() => {
                        warn!(error = %e, "Alertmanager peer failed, trying the next");
                        last = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                SilenceError::Alertmanager(NotifyError::config("no Alertmanager URL configured"))
            }))
        };
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(RETRIES)
            .with_total_delay(Some(self.retry_budget));
        round
            .retry(backoff)
            .when(SilenceError::is_retryable)
            .notify(|e, wait| warn!(error = %e, ?wait, "no Alertmanager peer answered, retrying"))
            .await
    }

    /// `POST /api/v2/silences` to one peer; the id it answers.
    async fn post(
        &self,
        peer: &Url,
        body: &PostableSilence<'_>,
    ) -> Result<SilenceId, SilenceError> {
        let url = endpoint(peer, "/api/v2/silences");
        let what = format!("POST {}", redact(&url));
        let (status, text) = self.call(self.client.post(url).json(body), &what).await?;
        if !status.is_success() {
            return Err(refused(&what, status, &text));
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "silenceID")]
            silence_id: String,
        }
        match serde_json::from_str::<Answer>(&text) {
            Ok(a) if !a.silence_id.is_empty() => Ok(SilenceId(a.silence_id)),
            _ => Err(unreadable(&what, &text)),
        }
    }

    /// `GET /api/v2/silence/{id}` from one peer; `None` when it does not know the id.
    async fn get(&self, peer: &Url, id: &SilenceId) -> Result<Option<HeldSilence>, SilenceError> {
        let url = silence_url(peer, id);
        let what = format!("GET {}", redact(&url));
        let (status, text) = self.call(self.client.get(url), &what).await?;
        if is_gone(status, &text) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(refused(&what, status, &text));
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| unreadable(&what, &text))
    }

    /// One request with the credentials; its status and (capped) body, or why there was
    /// no answer.
    async fn call(
        &self,
        req: RequestBuilder,
        what: &str,
    ) -> Result<(StatusCode, String), SilenceError> {
        let req = match &self.auth {
            Some(Presented::Bearer(t)) => req.bearer_auth(t.expose()),
            Some(Presented::Basic { username, password }) => {
                req.basic_auth(username, Some(password.expose()))
            }
            None => req,
        };
        let no_answer =
            |e: reqwest::Error| SilenceError::Alertmanager(NotifyError::from_request(what, &e));
        let mut resp = req.send().await.map_err(no_answer)?;
        let status = resp.status();
        let mut body = Vec::new();
        while body.len() < MAX_ANSWER
            && let Some(chunk) = resp.chunk().await.map_err(no_answer)?
        {
            body.extend_from_slice(&chunk);
        }
        body.truncate(MAX_ANSWER);
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// What `GET /api/v2/silence/{id}` says that an extension needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeldSilence {
    status: HeldStatus,
    /// As Alertmanager wrote it, so that sending it back changes nothing.
    starts_at: String,
}

#[derive(Debug, Deserialize)]
struct HeldStatus {
    /// `active`, `pending` or `expired`.
    state: String,
}

/// The body of `POST /api/v2/silences` (Alertmanager's `postableSilence`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence<'a> {
    /// The silence to update; none makes a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    matchers: Vec<MatcherBody<'a>>,
    starts_at: String,
    ends_at: String,
    created_by: &'a str,
    comment: &'a str,
}

/// One label matcher: always exact equality, never a regex.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct MatcherBody<'a> {
    name: &'a str,
    value: &'a str,
    is_regex: bool,
    is_equal: bool,
}

impl<'a> PostableSilence<'a> {
    /// A new silence of exact `matchers`, refused when they would cover more than the
    /// incident.
    fn new(
        matchers: &'a BTreeMap<String, String>,
        now: Timestamp,
        ends_at: Timestamp,
        created_by: &'a str,
        comment: &'a str,
    ) -> Result<Self, SilenceError> {
        check_narrow(matchers)?;
        Ok(PostableSilence {
            id: None,
            matchers: matchers
                .iter()
                .map(|(name, value)| MatcherBody {
                    name,
                    value,
                    is_regex: false,
                    is_equal: true,
                })
                .collect(),
            starts_at: now.to_rfc3339(),
            ends_at: ends_at.to_rfc3339(),
            created_by,
            comment,
        })
    }
}

/// Alertmanager's rule, applied before anything is sent: at least one matcher must not
/// match the empty string, or the silence would cover every alert lacking a label.
fn check_narrow(matchers: &BTreeMap<String, String>) -> Result<(), SilenceError> {
    let why = if matchers.is_empty() {
        "no matchers: it would silence every alert (group the route by labels, so the incident has group labels)"
    } else if matchers.values().all(String::is_empty) {
        "every matcher has an empty value, so it would silence every alert without those labels, the Watchdog among them"
    } else {
        return Ok(());
    };
    let shown: Vec<String> = matchers.iter().map(|(n, v)| filter(n, v)).collect();
    Err(SilenceError::TooBroad {
        matchers: format!("{{{}}}", shown.join(", ")),
        why,
    })
}

/// `name="value"` in Alertmanager's matcher syntax, the value quoted and escaped; a name
/// that is not a classic label name is quoted too (Alertmanager 0.27's UTF-8 names).
fn filter(name: &str, value: &str) -> String {
    let classic = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        && !name.is_empty();
    let name = if classic {
        name.to_string()
    } else {
        quote(name)
    };
    format!("{name}={}", quote(value))
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `path` under `peer`'s own path: `http://proxy/alertmanager` + `/api/v2/alerts`.
fn endpoint(peer: &Url, path: &str) -> Url {
    let mut url = peer.clone();
    let base = peer.path().trim_end_matches('/');
    url.set_path(&format!("{base}{path}"));
    url.set_query(None);
    url
}

fn silence_url(peer: &Url, id: &SilenceId) -> Url {
    let mut url = endpoint(peer, "/api/v2/silence");
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.push(&id.0);
    }
    url
}

/// The silence is not there: 404, or 500 "silence not found" from Alertmanager up to
/// 0.26, which answers an unknown id so.
fn is_gone(status: StatusCode, body: &str) -> bool {
    status == StatusCode::NOT_FOUND
        || (status == StatusCode::INTERNAL_SERVER_ERROR && body.contains("silence not found"))
}

/// Whether an alerts list (a JSON array) has any alert, read from its start only, so a
/// list longer than [`MAX_ANSWER`] is still understood; `None` when it is no array.
fn alerts_listed(body: &str) -> Option<bool> {
    let rest = body.trim_start().strip_prefix('[')?.trim_start();
    match rest.chars().next()? {
        ']' => Some(false),
        '{' => Some(true),
        _ => None,
    }
}

fn refused(what: &str, status: StatusCode, body: &str) -> SilenceError {
    let mut e = classify_status(status, body);
    e.message = format!("{what} answered {}", e.message);
    SilenceError::Alertmanager(e)
}

fn unreadable(what: &str, body: &str) -> SilenceError {
    let shown: String = body.chars().take(200).collect();
    SilenceError::Alertmanager(NotifyError::permanent(format!(
        "{what} answered something that is not Alertmanager's API v2: {:?}",
        crate::notify::message::clean(&shown)
    )))
}

#[cfg(test)]
mod tests;
