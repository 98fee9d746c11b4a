//! WebSocket signalling: the typed protocol ([`protocol`]), the conference's publications
//! written as its messages ([`render`]), one task per socket ([`session`]) and the outbox
//! through which the conference reaches each socket ([`outbox`]).
//!
//! `docs/protocol.md` is the contract this module implements; change both together.

pub mod outbox;
pub mod protocol;
pub(crate) mod render;
pub(crate) mod session;
