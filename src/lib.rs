//! tocsin makes sure a page reaches a human.
//!
//! Data flow: a **source** (the Alertmanager webhook in [`http`]) turns a delivery into
//! an [`engine::Input`]. The [`runtime`] feeds inputs to the pure [`engine`], which
//! groups alerts into incidents, walks each incident's escalation policy and answers with
//! [`engine::Effect`]s. The runtime commits all effects of a batch to the [`store`] in
//! one transaction (group commit), then answers the senders and hands the pages to the
//! [`notify`] implementations, whose outcomes come back to the engine as inputs.
//! Deadlines are wall-clock instants in the store, so a restart resumes every
//! escalation where it stood.
//!
//! Module map:
//! - [`config`]: `alerts.toml` schema and validation (every error at once).
//! - [`engine`]: the escalation state machine; no IO, no clock.
//! - [`runtime`]: the engine loop, page dispatch, start-up restore, shutdown.
//! - [`store`]: durable state behind the [`store::Store`] trait; SQLite today.
//! - [`notify`]: one file per notifier behind the [`notify::Notifier`] trait; each type's
//!   options are one file of [`config::notifier`] behind [`config::NotifierKind`] (its
//!   secrets, problems, limits and how it is built), registered once.
//! - [`source`]: alert sources (the Alertmanager payload today).
//! - [`http`]: webhook receiver, incident API, metrics, health.
//! - [`cli`]: the client commands that talk to a running daemon.
//! - [`metrics`]: tocsin's own Prometheus metrics, on an explicit registry.
//! - [`time`]: instants as integers and the injected clock.
//! - [`watchdog`]: the health of every channel; a dark one becomes an incident paged
//!   through the others.

#![forbid(unsafe_code)]

pub mod ack_link;
pub mod cli;
pub mod config;
pub mod engine;
pub mod html;
pub mod http;
pub mod irc;
pub mod metrics;
pub mod notify;
pub mod runtime;
pub mod source;
pub mod store;
pub mod time;
pub mod watchdog;
