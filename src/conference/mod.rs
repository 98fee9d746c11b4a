//! The conference: one actor task owns who holds each site's seat.
//!
//! Others talk to it through a clonable [`ConferenceHandle`]. The actor never touches media
//! or sockets directly: it answers commands, publishes what pages must know in its own terms
//! ([`published`]: snapshots, floor steps, levels, each page's view), which `signal::render`
//! writes as the wire's messages into each session's outbox, and records events in the store
//! off its own task.

mod actor;
mod handle;
pub(crate) mod notice;
pub(crate) mod published;
pub(crate) mod view;
pub(crate) mod vote;

pub use actor::spawn;
pub(crate) use handle::Reason;
pub use handle::{Action, ConferenceHandle, JoinRefused, Receiving, Refused, Seat, SiteView};
