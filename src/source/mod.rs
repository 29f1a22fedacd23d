//! Alert sources: each turns what a channel delivers into [`crate::engine::AlertBatch`]es.
//!
//! The Alertmanager webhook is received by the HTTP server; this module owns the payload
//! contract so that the HTTP layer only moves bytes. `am_silence` talks back to
//! Alertmanager: the silences acks make there.

pub mod alertmanager;
pub mod am_silence;
pub mod irc;
pub mod sms_reply;
