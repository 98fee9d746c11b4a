//! Meeting records: the minutes of a conference, built from its event log.
//!
//! [`minutes::build`] is pure: it reads the events the conference actor, the sessions and the
//! health monitor wrote (joins, floor, programme, alarms) and derives the programme as it ran,
//! who spoke for how long, the speak requests, attendance and incidents. [`render`] turns the
//! result into CSV or a printable Vietnamese HTML page.

pub mod minutes;
pub(crate) mod render;
