//! Điểm Cầu: a video-conference bridge for chaired multi-site meetings.
//!
//! One process serves the web client, the WebSocket signalling and a selective forwarding
//! unit (SFU): every site sends its camera and microphone once, the server forwards them to
//! the other sites. The modules are named by the domain:
//! - [`domain`]: the meeting's own words (site roles, programme items, layout), used by all;
//! - [`config`]: the typed, validated configuration (sites, roles, addresses);
//! - [`auth`]: keys, passwords, session tokens, join tickets and limits: who may do what;
//! - [`conference`]: the conference actor, the single owner of who is present;
//! - [`signal`]: the WebSocket protocol (typed messages) and one task per socket;
//! - [`peer`]: each site's media connection behind one seam, on the lean engine (default) or
//!   a webrtc-rs PeerConnection; the only module that speaks WebRTC;
//! - [`media`]: the routing table and the RTP forwarding path between peers;
//! - [`store`]: the embedded SQLite file (site key hashes, event log);
//! - [`recording`]: every site's forwarded media written to Ogg/Opus and IVF/VP8 files;
//! - [`http`]: the axum router (pages, REST, WebSocket upgrade) and TLS.

pub mod auth;
pub mod cli;
pub mod conference;
pub mod config;
pub mod domain;
pub mod floor;
pub mod health;
pub mod http;
pub mod media;
pub mod peer;
pub mod recording;
pub mod records;
pub mod server;
pub mod signal;
pub mod store;

/// The version printed in logs and reported by `GET /api/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
