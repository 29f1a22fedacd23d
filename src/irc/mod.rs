//! The IRC link: one connection (to a bouncer or a server) that reads alert lines and
//! commands and carries announcements.
//!
//! Why not the `irc` crate's client: it starts its keepalive only after an end-of-MOTD
//! (which ZNC does not send while its upstream is down), never reconnects, has no connect
//! timeout, no flood control, and reports a send on a dead socket as success. Everything
//! tocsin must get right about the link is what that client hides. So the link is our own
//! supervisor (`link.rs`, which hands what it hears to `intake.rs`) around `irc-proto`'s message parser and serializer, with our
//! own framing (`wire.rs`): bounded line length and lossy UTF-8, where `irc-proto`'s
//! codec buffers without bound and fails the stream on invalid UTF-8.

pub mod accounts;
pub mod command;
mod intake;
pub mod link;
pub mod mask;
mod pace;
pub mod replay;
pub mod sendq;
pub mod session;
pub mod text;
pub mod wire;

pub use link::{Desk, IrcHandle, LinkConfig, LinkState, LinkStatus, ProbeStatus, SayError};
