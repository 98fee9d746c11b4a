//! Bridge health: per-site statistics computed from the media itself and alarm rules.
//!
//! [`stats`] holds the pure arithmetic (loss with reordering and wrap-around, RFC 3550
//! jitter); [`alarms`] the pure alarm rules with hysteresis. Both take time as an input.
//! [`journal`] reads the event log as technicians see it: codes and parameters, not prose.

pub(crate) mod alarms;
pub mod board;
pub(crate) mod journal;
pub(crate) mod monitor;
pub(crate) mod stats;
