//! What the link hears goes to the desk by two paths, each with its own worker: alert
//! lines (and the replay marks between them) in order, never dropped, and commands,
//! which anyone can flood and which are dropped when too many wait. A flood of commands
//! therefore never stands in the way of an alert line: they share neither a queue nor
//! a worker.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use super::link::{Desk, LinkStatus};
use super::replay::Mark;
use super::session::Ask;
use crate::engine::AlertBatch;

/// Alert lines handed to the worker and not yet recorded, at most. When it is full the
/// link stops reading from the server (backpressure) until there is room: the lines
/// wait in the socket and the server's queue, they are not dropped.
pub const ALERTS_WAITING: usize = 1024;

/// Commands waiting for the desk, at most; past it a command is dropped (and logged).
pub const COMMANDS_WAITING: usize = 64;

/// Answers on their way back to the link.
const ANSWERS_WAITING: usize = 64;

/// Work for the alert worker: lines keep their order (firing before resolved).
pub enum Work {
    Alert(AlertBatch),
    /// Save the replay mark, once the alert lines queued before it are recorded.
    Mark(Mark),
}

/// The link's end of both paths.
pub struct Intake {
    alerts: mpsc::Sender<Work>,
    commands: mpsc::Sender<Ask>,
    /// Alert lines heard while the alert queue was full, oldest first: they go before
    /// anything else, and nothing more is read from the server until they have.
    held: VecDeque<Work>,
}

/// The workers' end, spawned by [`Intake::start`].
pub struct Workers {
    pub alerts: tokio::task::JoinHandle<()>,
    pub commands: tokio::task::JoinHandle<()>,
    /// Answers to commands: (to whom, text).
    pub answers: mpsc::Receiver<(String, String)>,
}

impl Intake {
    pub fn start(
        desk: Arc<dyn Desk>,
        status: watch::Receiver<LinkStatus>,
        marks_frozen: Arc<AtomicBool>,
    ) -> (Intake, Workers) {
        let (alerts_tx, alerts_rx) = mpsc::channel(ALERTS_WAITING);
        let (commands_tx, commands_rx) = mpsc::channel(COMMANDS_WAITING);
        let (answers_tx, answers_rx) = mpsc::channel(ANSWERS_WAITING);
        let workers = Workers {
            alerts: tokio::spawn(alert_worker(desk.clone(), alerts_rx, marks_frozen)),
            commands: tokio::spawn(command_worker(desk, commands_rx, answers_tx, status)),
            answers: answers_rx,
        };
        let intake = Intake {
            alerts: alerts_tx,
            commands: commands_tx,
            held: VecDeque::new(),
        };
        (intake, workers)
    }

    /// An alert line: queued, or held until the worker has room (never dropped).
    pub fn alert(&mut self, batch: AlertBatch) {
        self.push(Work::Alert(batch));
    }

    /// A replay mark, behind every alert line heard before it. `false` when it could not
    /// be queued at once (offer it again later).
    pub fn mark(&mut self, mark: Mark) -> bool {
        if !self.held.is_empty() {
            return false;
        }
        self.alerts.try_send(Work::Mark(mark)).is_ok()
    }

    /// A command: queued, or dropped when too many wait.
    pub fn command(&self, ask: Ask) {
        if let Err(TrySendError::Full(ask)) = self.commands.try_send(ask) {
            warn!(
                from = %ask.hostmask,
                "IRC command dropped: {COMMANDS_WAITING} commands are already waiting"
            );
        }
    }

    fn push(&mut self, work: Work) {
        if !self.held.is_empty() {
            self.held.push_back(work);
            return;
        }
        match self.alerts.try_send(work) {
            Ok(()) => {}
            Err(TrySendError::Full(work)) => {
                warn!(
                    "IRC alert lines arrive faster than they are recorded: reading from the server pauses until {ALERTS_WAITING} waiting ones are"
                );
                self.held.push_back(work);
            }
            // The worker is gone (a panic the link is about to see): nothing can keep it.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Whether alert lines wait for room: the link reads nothing more until they are in.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Waits for room for the oldest held line and queues it; the link awaits this in
    /// place of reading while [`Intake::is_holding`]. Cancel-safe: a line leaves `held`
    /// only once it has its place in the queue.
    pub async fn unhold(&mut self) {
        if self.held.is_empty() {
            return std::future::pending().await;
        }
        match self.alerts.reserve().await {
            Ok(permit) => {
                if let Some(work) = self.held.pop_front() {
                    permit.send(work);
                }
            }
            // The worker is gone (a panic the link is about to see).
            Err(_) => self.held.clear(),
        }
    }

    /// The link stops: the held lines are queued (waiting for room), then the last
    /// replay mark behind them, before the queues close and the worker drains them.
    pub async fn close(mut self, mark: Option<Mark>) {
        while self.is_holding() {
            self.unhold().await;
        }
        if let Some(m) = mark {
            let _ = self.alerts.send(Work::Mark(m)).await;
        }
    }
}

async fn alert_worker(
    desk: Arc<dyn Desk>,
    mut rx: mpsc::Receiver<Work>,
    marks_frozen: Arc<AtomicBool>,
) {
    // The newest mark offered: saved once nothing else waits, so a burst of alert lines
    // (a replay) costs one write, and only after every line before it is recorded.
    let mut mark: Option<Mark> = None;
    while let Some(w) = rx.recv().await {
        match w {
            Work::Alert(batch) => {
                let title = batch.title.clone();
                if let Err(e) = desk.alert(batch).await {
                    warn!(%title, error = %e, "an IRC alert line could not be recorded");
                    freeze_marks(&marks_frozen);
                }
            }
            Work::Mark(m) => mark = Some(m),
        }
        if rx.is_empty()
            && let Some(m) = mark.take()
            && !marks_frozen.load(Ordering::Acquire)
            && let Err(e) = desk.save_replay_mark(&m).await
        {
            warn!(
                error = %e,
                "the IRC replay mark could not be saved; after a restart the bouncer's backlog since the last saved one is read again"
            );
        }
    }
}

async fn command_worker(
    desk: Arc<dyn Desk>,
    mut rx: mpsc::Receiver<Ask>,
    answers: mpsc::Sender<(String, String)>,
    status: watch::Receiver<LinkStatus>,
) {
    while let Some(ask) = rx.recv().await {
        let to = ask.reply_to.clone();
        let nick = ask.nick.clone();
        let snapshot = status.borrow().clone();
        let answer = desk.command(ask, &snapshot).await;
        // An answer of several lines (`!oncall`: one per schedule) goes out line by line.
        for line in answer.lines().filter(|l| !l.trim().is_empty()) {
            let _ = answers.send((to.clone(), format!("{nick}: {line}"))).await;
        }
    }
}

/// An alert line was heard and not recorded: marks stop here for this run, so that a
/// restart reads the bouncer's backlog from the last saved mark again (at least once,
/// rather than never).
pub fn freeze_marks(frozen: &AtomicBool) {
    if !frozen.swap(true, Ordering::AcqRel) {
        warn!(
            "the IRC replay mark is no longer saved in this run: after a restart, the bouncer's backlog since the last saved mark is read again"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::irc::link::{LinkState, ProbeStatus};
    use crate::irc::session::Ask;
    use crate::time::Timestamp;

    /// A desk whose engine records alert lines only once `open` is called, and never
    /// answers a command (a stuck `!incidents`).
    struct SlowDesk {
        gate: tokio::sync::Semaphore,
        recorded: Mutex<Vec<String>>,
    }

    impl SlowDesk {
        fn new() -> Arc<Self> {
            Arc::new(SlowDesk {
                gate: tokio::sync::Semaphore::new(0),
                recorded: Mutex::new(Vec::new()),
            })
        }
        fn open(&self) {
            self.gate
                .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
        }
        fn recorded(&self) -> Vec<String> {
            self.recorded.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Desk for SlowDesk {
        async fn alert(&self, batch: AlertBatch) -> Result<(), String> {
            let _permit = self.gate.acquire().await.map_err(|e| e.to_string())?;
            self.recorded.lock().unwrap().push(batch.title);
            Ok(())
        }
        async fn command(&self, _: Ask, _: &LinkStatus) -> String {
            std::future::pending().await
        }
        async fn replay_mark(&self) -> Option<Mark> {
            None
        }
        async fn save_replay_mark(&self, _: &Mark) -> Result<(), String> {
            Ok(())
        }
    }

    fn line(i: usize) -> AlertBatch {
        AlertBatch {
            source: "irc".into(),
            group_key: format!("irc:A{i}"),
            labels: Default::default(),
            title: format!("A{i}"),
            alerts: Vec::new(),
            truncated: 0,
            policy: None,
        }
    }

    fn ask(i: usize) -> Ask {
        Ask {
            nick: format!("m{i}"),
            hostmask: format!("m{i}!m@10.6.6.{i}"),
            account: None,
            account_via: "none",
            reply_to: format!("m{i}"),
            private: true,
            command: Err("flood".into()),
            text: "status".into(),
        }
    }

    fn start(desk: &Arc<SlowDesk>) -> (Intake, Workers) {
        let at = Timestamp::at("2026-11-21T20:00:00Z");
        let (_, status) = watch::channel(LinkStatus {
            state: LinkState::Up,
            since: at,
            detail: String::new(),
            server: String::new(),
            nick: "agent".into(),
            joined: Vec::new(),
            caps: Vec::new(),
            probe: ProbeStatus {
                ok: None,
                detail: String::new(),
                since: at,
            },
            forged_lines: 0,
        });
        Intake::start(desk.clone(), status, Arc::new(AtomicBool::new(false)))
    }

    /// The engine stalls (a slow disk) while a storm of alert lines is heard: past the
    /// queue they are held, and the link stops reading, instead of being dropped. Once
    /// the engine moves, every line is recorded, in the order heard.
    #[tokio::test]
    async fn alert_lines_beyond_the_queue_are_held_not_dropped() {
        let desk = SlowDesk::new();
        let (mut intake, workers) = start(&desk);
        let heard = ALERTS_WAITING + 200;
        for i in 0..heard {
            intake.alert(line(i));
        }
        assert!(intake.is_holding(), "the link must stop reading");
        desk.open();
        while intake.is_holding() {
            intake.unhold().await;
        }
        intake.close(None).await;
        workers.alerts.await.unwrap();
        let expected: Vec<String> = (0..heard).map(|i| format!("A{i}")).collect();
        assert_eq!(desk.recorded(), expected);
    }

    /// Flooders' commands are stuck with the desk and fill their queue: an alert line
    /// heard after them is still recorded at once, on its own path.
    #[tokio::test(start_paused = true)]
    async fn a_command_flood_never_stands_in_front_of_an_alert_line() {
        let desk = SlowDesk::new();
        desk.open();
        let (mut intake, _workers) = start(&desk);
        for i in 0..COMMANDS_WAITING * 4 {
            intake.command(ask(i));
        }
        intake.alert(line(1));
        tokio::time::timeout(Duration::from_secs(1), async {
            while desk.recorded().is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the alert line waited behind commands");
        assert!(!intake.is_holding());
    }
}
