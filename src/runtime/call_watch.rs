//! Gives up on calls the provider never reported on.
//!
//! A voice call's end and its key arrive as callbacks from the provider. When they stop
//! arriving (tocsin's `public_url` unreachable from Twilio, a proxy that drops them), no
//! call would ever count as unanswered and no key could act: each such call is handed to
//! the engine as not reached, so the contact's next method goes now, and the notifier
//! shows down on the channel board until a callback arrives again.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::engine_loop::EngineHandle;
use crate::engine::{Input, Outcome};
use crate::notify::voice_calls::CallBook;
use crate::time::Clock;
use crate::watchdog::Watchdog;

/// How often the book is swept; a call is given up minutes after it stops ringing, so
/// seconds late is fine.
const SWEEP: Duration = Duration::from_secs(5);

pub async fn watch_calls(
    book: Arc<CallBook>,
    engine: EngineHandle,
    watchdog: Arc<Watchdog>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    let mut jumps = clock.jumps();
    loop {
        for silent in book.silent() {
            let reason = &silent.unreached.reason;
            warn!(notifier = %silent.notifier, call = ?silent.call_id, %reason, "call given up: no callback from the provider");
            watchdog.callback_result(
                &silent.notifier,
                Err(format!(
                    "call {}: {reason}",
                    silent.call_id.as_deref().unwrap_or("(not yet named)")
                )),
            );
            for page in silent.unreached.pages {
                let outcome = Outcome::NotReached {
                    reason: format!("{}: {reason}", silent.notifier),
                };
                // Refused (the incident is gone) or the engine stopped: nothing to do.
                let _ = engine.submit(Input::PageOutcome { page, outcome }).await;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SWEEP) => {}
            _ = crate::time::jumped(&mut jumps) => {}
        }
    }
}
