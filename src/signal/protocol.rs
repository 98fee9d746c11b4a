//! Signalling messages, exactly as `docs/protocol.md` describes them.
//!
//! Every message is a JSON object with a `type` field. Client input is parsed in two steps so
//! that each way of being wrong gets its own stable error code: not JSON (`bad_json`), no
//! known `type` (`unknown_type`), right type but wrong fields (`invalid_message`).

use serde::{Deserialize, Serialize};

/// Largest client message accepted, in bytes; larger ones get `too_large` and are discarded.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Take the seat of `site`, proving it with the site's key.
    Join { site: String, key: String },
    /// An SDP offer from the browser (its first negotiation, or an ICE restart).
    Offer { sdp: String },
    /// The browser's answer to a server offer.
    Answer { sdp: String },
    /// A trickled ICE candidate from the browser.
    Candidate { candidate: IceCandidate },
    /// Leave the conference; the server closes the socket.
    Leave,
    /// Keep-alive; answered with `pong`.
    Ping,
}

impl ClientMessage {
    pub const TYPES: &'static [&'static str] = &["join", "offer", "answer", "candidate", "leave", "ping"];

    /// The `type` tag, for error replies and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::Leave => "leave",
            ClientMessage::Ping => "ping",
        }
    }
}

/// An ICE candidate in the browser's `RTCIceCandidateInit` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex", skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The join succeeded: this socket now holds the site's seat.
    Joined { session: String, site: SiteInfo, conference: ConferenceInfo, ice_servers: Vec<IceServer> },
    /// Who is present; sent after `joined` and whenever presence changes.
    State { sites: Vec<SitePresence> },
    /// A server offer (renegotiation: a new site's media to receive).
    Offer { sdp: String },
    /// The server's answer to the browser's offer.
    Answer { sdp: String },
    /// A trickled ICE candidate of the server.
    Candidate { candidate: IceCandidate },
    /// The server side of this site's media connection changed state.
    Media { state: MediaState },
    /// A newer join took this site's seat; the server closes this socket next.
    Replaced { message: String },
    /// Something the client sent was refused; nothing changed because of it.
    Error {
        code: ErrorCode,
        message: String,
        /// The `type` of the refused message, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
    Pong,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    pub id: String,
    pub name: String,
    pub role: crate::config::Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceInfo {
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitePresence {
    pub id: String,
    pub name: String,
    pub role: crate::config::Role,
    pub present: bool,
    /// Unix milliseconds of the current join (present) or last leave (absent); absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// Stable error codes; `docs/protocol.md` lists each with its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    InvalidMessage,
    TooLarge,
    NotJoined,
    AlreadyJoined,
    SiteUnknown,
    BadKey,
    SdpInvalid,
    BadCandidate,
    NegotiationFailed,
    Internal,
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>, request: Option<&str>) -> Self {
        ServerMessage::Error { code, message: message.into(), request: request.map(str::to_string) }
    }
}

/// A refused client message: the code and what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub request: Option<String>,
}

impl From<Refusal> for ServerMessage {
    fn from(r: Refusal) -> Self {
        ServerMessage::Error { code: r.code, message: r.message, request: r.request }
    }
}

/// Parses one text frame from a client.
pub fn parse_client(text: &str) -> Result<ClientMessage, Refusal> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal {
            code: ErrorCode::TooLarge,
            message: format!("message of {} bytes is over the {} byte limit", text.len(), MAX_MESSAGE_BYTES),
            request: None,
        });
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Refusal {
        code: ErrorCode::BadJson,
        message: format!("not valid JSON: {e}"),
        request: None,
    })?;
    let kind = match value.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(_) => {
            return Err(Refusal { code: ErrorCode::InvalidMessage, message: "\"type\" must be a string".into(), request: None })
        }
        None if value.is_object() => {
            return Err(Refusal { code: ErrorCode::InvalidMessage, message: "message has no \"type\" field".into(), request: None })
        }
        None => return Err(Refusal { code: ErrorCode::InvalidMessage, message: "message must be a JSON object".into(), request: None }),
    };
    if !ClientMessage::TYPES.contains(&kind.as_str()) {
        return Err(Refusal {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type {kind:?}"),
            request: Some(kind.chars().take(64).collect()),
        });
    }
    serde_json::from_value(value).map_err(|e| Refusal {
        code: ErrorCode::InvalidMessage,
        message: format!("invalid {kind} message: {e}"),
        request: Some(kind),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;

    fn round_trip_client(m: ClientMessage) {
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(parse_client(&text).unwrap(), m, "{text}");
    }

    fn round_trip_server(m: ServerMessage) {
        let text = serde_json::to_string(&m).unwrap();
        let back: ServerMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m, "{text}");
    }

    fn candidate() -> IceCandidate {
        IceCandidate {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: Some("abcd".into()),
        }
    }

    #[test]
    fn every_client_message_round_trips() {
        round_trip_client(ClientMessage::Join { site: "hang-gai".into(), key: "k".into() });
        round_trip_client(ClientMessage::Offer { sdp: "v=0".into() });
        round_trip_client(ClientMessage::Answer { sdp: "v=0".into() });
        round_trip_client(ClientMessage::Candidate { candidate: candidate() });
        round_trip_client(ClientMessage::Leave);
        round_trip_client(ClientMessage::Ping);
        assert_eq!(ClientMessage::TYPES.len(), 6);
    }

    #[test]
    fn every_server_message_round_trips() {
        round_trip_server(ServerMessage::Joined {
            session: "s".into(),
            site: SiteInfo { id: "hq".into(), name: "Trụ sở Quận ủy – 21 Bà Triệu".into(), role: Role::Chair },
            conference: ConferenceInfo { title: "Hội nghị".into() },
            ice_servers: vec![IceServer { urls: vec!["stun:x".into()], username: None, credential: None }],
        });
        round_trip_server(ServerMessage::State {
            sites: vec![SitePresence { id: "hq".into(), name: "Trụ sở".into(), role: Role::Chair, present: true, since_ms: Some(1) }],
        });
        round_trip_server(ServerMessage::Offer { sdp: "v=0".into() });
        round_trip_server(ServerMessage::Answer { sdp: "v=0".into() });
        round_trip_server(ServerMessage::Candidate { candidate: candidate() });
        round_trip_server(ServerMessage::Media { state: MediaState::Connected });
        round_trip_server(ServerMessage::Replaced { message: "x".into() });
        round_trip_server(ServerMessage::error(ErrorCode::BadKey, "wrong key", Some("join")));
        round_trip_server(ServerMessage::Pong);
    }

    #[test]
    fn wire_format_matches_the_protocol_document() {
        let m = ServerMessage::error(ErrorCode::NotJoined, "join first", Some("offer"));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"type": "error", "code": "not_joined", "message": "join first", "request": "offer"})
        );
        let c: ClientMessage = parse_client(
            r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
        )
        .unwrap();
        assert!(matches!(c, ClientMessage::Candidate { candidate: IceCandidate { sdp_m_line_index: Some(0), .. } }));
    }

    #[test]
    fn each_kind_of_bad_input_has_its_own_code() {
        let code = |t: &str| parse_client(t).unwrap_err().code;
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"site":"hq"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"launch_missiles"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"join","site":"hq"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"join","site":42,"key":"k"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"join","site":"hq","key":"k","admin":true}"#), ErrorCode::InvalidMessage);
        let big = format!(r#"{{"type":"offer","sdp":"{}"}}"#, "a".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(code(&big), ErrorCode::TooLarge);
    }

    #[test]
    fn refusals_name_the_request_when_known() {
        let r = parse_client(r#"{"type":"offer"}"#).unwrap_err();
        assert_eq!(r.request.as_deref(), Some("offer"));
        assert!(r.message.contains("sdp"), "{}", r.message);
    }
}
