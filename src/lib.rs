//! tocsin makes sure a page reaches a human.
//!
//! Data flow: a **source** (the Alertmanager webhook in [`http`]) turns a delivery into
//! an [`engine::Input`]. The [`runtime`] feeds inputs to the pure [`engine`], which
//! groups alerts into incidents, walks each incident's escalation policy and answers with
//! [`engine::Effect`]s. The runtime commits all effects of a batch to the [`store`] in
//! one transaction (group commit), then answers the senders and hands the pages to the
//! dispatcher, which sends them through the [`notify`] implementations; every attempt,
//! outcome and flood-control release comes back to the engine as an input. Deadlines
//! are wall-clock instants in the store, so a restart resumes every escalation where it
//! stood.
//!
//! The split: the **engine decides** (whom to page, how long a send may retry, whether
//! a released page is still wanted, what a second ack means: [`engine::Refusal`]); the
//! **dispatcher executes** and reports back, never re-reading the store to decide (it
//! reads an incident only to word the message). Whether a notifier is down and routed
//! around is the pure watchdog board's call ([`watchdog`]), asked at send time.
//!
//! Every long-running task (engine loop, dispatcher workers, IRC link, watchdog, probes,
//! pollers) is owned by one [`runtime::Supervisor`]: a task that panics or ends is
//! logged, counted (`tocsin_task_restarts_total`) and restarted with backoff, `/healthz`
//! answers 503 while an essential one is down, and one that keeps failing makes the
//! process exit non-zero so that systemd starts it again from the store.
//!
//! Module map:
//! - [`config`]: `alerts.toml` schema and validation (every error at once).
//! - [`engine`]: the escalation state machine; no IO, no clock. It also decides who a
//!   schedule pages and the overrides of schedules, silences, maintenance windows,
//!   quiet hours, and the Alertmanager silence of an acked incident.
//! - [`runtime`]: the engine loop, page dispatch, start-up restore, shutdown,
//!   [`runtime::retention`] (old resolved incidents deleted), [`runtime::rotations`]
//!   (member lists across config edits), the handoff notices, the task that carries out
//!   Alertmanager silences, the [`runtime::supervisor`] that owns, restarts and
//!   reports every task, and, on a shared store, [`runtime::leadership`] (the lease:
//!   one leader runs the engine) and [`runtime::forward`] (followers hand their inputs
//!   to it through the store's inbox).
//! - [`store`]: durable state behind the [`store::Store`] trait: SQLite for one
//!   instance, PostgreSQL for several, with the [`store::fence`] a leader's commits and
//!   sends check.
//! - [`data_dir`]: the data dir and its files (the store, the ack link key), private to
//!   tocsin's user whatever the umask.
//! - [`notify`]: one file per notifier behind the [`notify::Notifier`] trait; each type's
//!   options are one file of [`config::notifier`] behind [`config::NotifierKind`] (its
//!   secrets, problems, limits and how it is built), registered once.
//! - [`source`]: alert sources (the Alertmanager payload, IRC alert lines, SMS replies),
//!   and [`source::am_silence`], the client that silences an acked incident's alerts in
//!   Alertmanager.
//! - [`irc`]: the IRC link (through a bouncer or straight to a server): session,
//!   accounts, commands, replay of backlog, paced sending (pages, WHOIS and answers in
//!   their own queues), and the intake that keeps alert lines apart from commands.
//! - [`http`]: webhook receiver, incident, schedule, silence and maintenance APIs, the
//!   web view, iCalendar feeds, metrics, health.
//! - [`cli`]: the client commands that talk to a running daemon.
//! - [`metrics`]: tocsin's own Prometheus metrics, on an explicit registry.
//! - [`schedule`]: on-call rotations and schedules, pure: who is on call at an
//!   instant, the shifts over a range, gaps and overlaps, iCalendar feeds.
//! - [`time`]: instants as integers and the injected clock.
//! - [`watchdog`]: the health of every channel; a dark one becomes an incident paged
//!   through the others.

#![forbid(unsafe_code)]

pub mod ack_link;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod engine;
pub mod html;
pub mod http;
pub mod irc;
pub mod metrics;
pub mod notify;
pub mod runtime;
pub mod schedule;
pub mod source;
pub mod store;
pub mod time;
pub mod watchdog;
