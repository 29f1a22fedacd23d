//! tocsin's integration tests: one binary, one module per kind of outage.
//!
//! The harness starts the daemon in-process on port 0 with a fresh data dir
//! (`harness::spawn_app`), and a `catcher::PageCatcher` stands in for every receiver of
//! pages. A test of what the store guarantees runs twice, on SQLite and on a database of
//! a throwaway PostgreSQL (`harness::on_both_stores!`). Real servers come from Debian
//! packages: `promstack` (Prometheus, Alertmanager), `smtp` (aiosmtpd), `kannel_server`
//! (Kannel with its fake SMSC), `ircnet` (InspIRCd, Anope, ZNC); `daemon` runs the built
//! `tocsin` binary where a process must really die.

mod access;
mod ack_link;
mod alertmanager;
mod alerts;
mod am_silence;
mod bad_input;
mod browser;
mod catcher;
mod cli;
mod cluster;
mod crash;
mod cross_site;
mod daemon;
mod deploy;
mod email;
mod escalation;
mod fake_api;
mod fake_push;
mod flood;
mod harness;
mod hostile;
mod http_sms;
mod irc;
mod ircnet;
mod kannel;
mod kannel_server;
mod lifecycle;
mod maintenance;
mod metrics;
mod oncall;
mod outages;
mod promstack;
mod push;
mod push_reload;
mod quiet_hours;
mod reads;
mod reload;
mod retention;
mod schedule_web;
mod silences;
mod smtp;
mod store_failure;
mod test_notify;
mod twilio;
mod voice;
mod watchdog;
mod watchdog_irc;
mod web;
