//! WebSocket signalling: the typed protocol ([`protocol`]) and one task per socket ([`session`]).
//!
//! `docs/protocol.md` is the contract this module implements; change both together.

pub mod protocol;
pub mod session;
