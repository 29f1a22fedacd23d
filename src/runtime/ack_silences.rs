//! Carries out what the engine decided about acked incidents' silences in Alertmanager
//! (`silence_on_ack`), after the commit, and reports each answer back to the engine,
//! which writes it in the history. Nothing here decides: an extension is skipped only
//! because Alertmanager says the alerts no longer fire, which is the answer reported.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::engine_loop::EngineHandle;
use crate::engine::{Input, SilenceDone, SilenceOp};
use crate::source::am_silence::{AmSilencer, CREATED_BY, SilenceId};
use crate::time::{Clock, Timestamp};

/// Whether the last call to Alertmanager failed: since when, and why (the channel
/// board shows it).
#[derive(Debug, Default)]
pub struct SilenceHealth {
    failing: Mutex<Option<(Timestamp, String)>>,
}

impl SilenceHealth {
    pub fn failing(&self) -> Option<(Timestamp, String)> {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, now: Timestamp, error: Option<String>) {
        let mut f = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        *f = match (f.take(), error) {
            (_, None) => None,
            (Some((since, _)), Some(e)) => Some((since, e)),
            (None, Some(e)) => Some((now, e)),
        };
    }
}

/// Runs until `stop`, one operation at a time (each bounded by the client's timeout and
/// retries), in the order the engine decided them.
pub async fn run(
    silencer: Arc<AmSilencer>,
    ops: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<SilenceOp>>>,
    engine: EngineHandle,
    clock: Arc<dyn Clock>,
    health: Arc<SilenceHealth>,
    stop: CancellationToken,
) {
    // Held while running; a restarted task takes over the same queue.
    let mut ops = ops.lock().await;
    loop {
        let op = tokio::select! {
            _ = stop.cancelled() => return,
            op = ops.recv() => match op {
                Some(op) => op,
                None => return,
            },
        };
        let now = clock.now();
        let (incident, until, done) = carry_out(&silencer, op, now).await;
        match &done {
            SilenceDone::Failed { error } => {
                warn!(incident, %error, "Alertmanager silence failed; the engine retries");
                health.set(now, Some(error.clone()));
            }
            other => {
                info!(incident, answer = ?other, "Alertmanager silence");
                health.set(now, None);
            }
        }
        let input = Input::AckSilenceDone {
            incident,
            done,
            until,
        };
        if let Err(e) = engine.submit(input).await {
            warn!(incident, error = %e, "Alertmanager's answer about a silence was not recorded");
        }
    }
}

async fn carry_out(
    silencer: &AmSilencer,
    op: SilenceOp,
    now: Timestamp,
) -> (crate::engine::IncidentId, Timestamp, SilenceDone) {
    let failed = |e: crate::source::am_silence::SilenceError| SilenceDone::Failed {
        error: e.to_string(),
    };
    match op {
        SilenceOp::Create {
            incident,
            matchers,
            until,
            comment,
        } => {
            let done = match silencer
                .create(&matchers, now, until, CREATED_BY, &comment)
                .await
            {
                Ok(SilenceId(id)) => SilenceDone::Created { id },
                Err(e) => failed(e),
            };
            (incident, until, done)
        }
        SilenceOp::Extend {
            incident,
            id,
            matchers,
            until,
            comment,
        } => {
            let done = match silencer.still_firing(&matchers).await {
                Ok(false) => SilenceDone::NotFiring,
                Ok(true) => match silencer
                    .extend(&SilenceId(id), &matchers, now, until, CREATED_BY, &comment)
                    .await
                {
                    Ok(SilenceId(id)) => SilenceDone::Extended { id },
                    Err(e) => failed(e),
                },
                Err(e) => failed(e),
            };
            (incident, until, done)
        }
        SilenceOp::Expire { incident, id } => {
            let done = match silencer.expire(&SilenceId(id.clone())).await {
                Ok(()) => SilenceDone::Expired { id },
                Err(e) => failed(e),
            };
            (incident, now, done)
        }
    }
}
