//! How an instance that does not lead hands what it was told to the one that does.
//!
//! A follower serves the whole API and the webhook, but decides nothing: it writes each
//! input into the shared store's inbox and, once that is durable, the sender can be
//! answered (a webhook's 200 means "committed" on every instance). The leader consumes
//! the inbox in order and writes each input's answer beside it in the same transaction
//! as its effects; a follower waits a little for that answer so an ack through it says
//! what an ack through the leader says.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::engine_loop::{Applied, SubmitError};
use crate::engine::Input;
use crate::store::StoreError;
use crate::time::{Clock, Timestamp};

/// How long a follower waits for the leader's answer to an ack or a change before it
/// says the input is queued. Alerts are answered as soon as they are durable.
pub const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// The shared store's inbox, as a follower writes to it.
#[async_trait::async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Records `input` (JSON) durably and wakes the leader; answers the row's id.
    async fn forward(&self, origin: &str, input: String, at: Timestamp) -> Result<u64, StoreError>;
    /// The leader's answer to a forwarded input, once it consumed it.
    async fn answer(&self, id: u64) -> Result<Option<String>, StoreError>;
}

/// What the leader answered a forwarded input, as stored beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Applied(Applied),
    /// Refused or not recorded: the HTTP status every channel maps it to, and why.
    Refused {
        status: u16,
        message: String,
    },
}

impl Answer {
    pub fn of(r: &Result<Applied, SubmitError>) -> Self {
        match r {
            Ok(a) => Answer::Applied(*a),
            Err(e) => Answer::Refused {
                status: e.http_status(),
                message: e.to_string(),
            },
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an answer serializes")
    }

    fn into_result(self) -> Result<Applied, SubmitError> {
        match self {
            Answer::Applied(a) => Ok(a),
            Answer::Refused { status, message } => Err(SubmitError::Forwarded { status, message }),
        }
    }
}

/// Something outside said it is alive: the watchdog of the instance that leads must
/// hear it, whichever instance was called. Not an engine input (the watchdog keeps its
/// board in memory), but forwarded through the same inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Beat {
    /// The Alertmanager heartbeat alert arrived.
    Alertmanager { alertname: String },
    /// `/hooks/heartbeat/{name}` was called.
    Url { name: String },
}

impl Beat {
    /// Tells `watchdog`; `false` for a heartbeat URL it does not know.
    pub fn apply(&self, watchdog: &crate::watchdog::Watchdog) -> bool {
        match self {
            Beat::Alertmanager { alertname } => {
                watchdog.alertmanager_heartbeat(alertname);
                true
            }
            Beat::Url { name } => watchdog.heartbeat_url(name),
        }
    }
}

/// An inbox row that is not an engine input.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Other {
    Beat(Beat),
}

/// A follower's way to the engine.
pub struct Forwarder {
    pub inbox: Arc<dyn Inbox>,
    /// This instance's name, kept with each forwarded input.
    pub origin: String,
    pub clock: Arc<dyn Clock>,
}

impl Forwarder {
    /// Forwards a heartbeat; answered once it is durable, like alerts.
    pub async fn beat(&self, beat: Beat) -> Result<(), SubmitError> {
        let json = serde_json::to_string(&Other::Beat(beat)).expect("a beat serializes");
        self.inbox
            .forward(&self.origin, json, self.clock.now())
            .await
            .map(|_| ())
            .map_err(|e| SubmitError::Unavailable(e.to_string()))
    }

    pub async fn apply(&self, input: Input) -> Result<Applied, SubmitError> {
        let wait = !matches!(input, Input::Alerts(_));
        let json = serde_json::to_string(&input).map_err(|e| {
            SubmitError::Unavailable(format!("this input cannot be forwarded to the leader: {e}"))
        })?;
        let id = self
            .inbox
            .forward(&self.origin, json, self.clock.now())
            .await
            .map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        if !wait {
            return Ok(Applied::default());
        }
        let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
        let mut pause = Duration::from_millis(20);
        loop {
            match self.inbox.answer(id).await {
                Ok(Some(text)) => {
                    return serde_json::from_str::<Answer>(&text)
                        .map_err(|e| {
                            SubmitError::Unavailable(format!(
                                "the leader's answer cannot be read ({e}); the input was applied"
                            ))
                        })?
                        .into_result();
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "reading a forwarded input's answer"),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SubmitError::Queued(
                    "recorded; no leader has applied it yet (one is taking over), it will be applied when one does"
                        .into(),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Actor, Via};
    use std::sync::Mutex;

    /// An inbox in memory whose leader answers each input as `answer` says.
    #[derive(Default)]
    struct Memory {
        rows: Mutex<Vec<(String, Option<String>)>>,
    }

    #[async_trait::async_trait]
    impl Inbox for Memory {
        async fn forward(&self, _: &str, input: String, _: Timestamp) -> Result<u64, StoreError> {
            let mut rows = self.rows.lock().unwrap();
            rows.push((input, None));
            Ok(rows.len() as u64)
        }
        async fn answer(&self, id: u64) -> Result<Option<String>, StoreError> {
            Ok(self.rows.lock().unwrap()[id as usize - 1].1.clone())
        }
    }

    fn forwarder(inbox: Arc<Memory>) -> Forwarder {
        Forwarder {
            inbox,
            origin: "b".into(),
            clock: Arc::new(crate::time::SystemClock),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_ack_through_a_follower_answers_what_the_leader_decided() {
        let inbox = Arc::new(Memory::default());
        let f = forwarder(inbox.clone());
        let ack = Input::Ack {
            id: 42,
            by: Actor::new("alice", Via::Api),
        };
        let leader = {
            let inbox = inbox.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let mut rows = inbox.rows.lock().unwrap();
                    if let Some(row) = rows.first_mut() {
                        let input: Input = serde_json::from_str(&row.0).unwrap();
                        assert_eq!(
                            input,
                            Input::Ack {
                                id: 42,
                                by: Actor::new("alice", Via::Api)
                            }
                        );
                        row.1 = Some(
                            Answer::Refused {
                                status: 404,
                                message: "no incident #42".into(),
                            }
                            .to_json(),
                        );
                        return;
                    }
                }
            }
        };
        let (answer, ()) = tokio::join!(f.apply(ack), leader);
        let err = answer.unwrap_err();
        assert_eq!(err.http_status(), 404);
        assert_eq!(err.to_string(), "no incident #42");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_leader_an_ack_is_queued_not_lost() {
        let inbox = Arc::new(Memory::default());
        let f = forwarder(inbox.clone());
        let err = f
            .apply(Input::Ack {
                id: 1,
                by: Actor::new("alice", Via::Api),
            })
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 202, "{err}");
        assert_eq!(
            inbox.rows.lock().unwrap().len(),
            1,
            "the ack waits in the inbox"
        );
    }

    #[test]
    fn what_only_the_leader_makes_is_never_forwarded() {
        assert!(serde_json::to_string(&Input::Tick).is_err());
    }
}
