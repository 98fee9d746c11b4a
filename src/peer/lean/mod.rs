//! The lean media engine (in progress): one task per site that owns its [`super::transport`],
//! negotiates with [`sdp`] and moves packets between the shared UDP port and the router
//! without a PeerConnection.

pub mod sdp;
