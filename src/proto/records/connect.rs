//! The session handshake: the first frame each way, with no request or reply
//! header.
//!
//! Both records end with a `readOnly` byte that clients older than 3.4 neither
//! send nor expect. Apache detects it by whether the byte is present and then
//! answers in kind; `read_only: None` carries that absence through, so a reply
//! built from a request's `read_only` matches what the client can parse.

use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};

/// `ConnectRequest{int protocolVersion; long lastZxidSeen; int timeOut;
/// long sessionId; buffer passwd; boolean readOnly}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    /// The highest zxid the client has seen; a server behind it must refuse.
    pub last_zxid_seen: i64,
    /// The session timeout the client asks for; the server clamps it.
    pub timeout_ms: i32,
    /// 0 for a new session, otherwise the session to resume.
    pub session_id: i64,
    pub password: Vec<u8>,
    /// `None` when the client omitted the byte.
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = JuteWriter::begin_frame();
        self.write(&mut w);
        w.finish_frame()
    }

    /// Decodes a frame without its length prefix.
    pub fn decode(frame: &[u8]) -> Result<ConnectRequest, DecodeError> {
        ConnectRequest::from_bytes(frame)
    }
}

/// Reads the optional trailing `readOnly` byte: absent only if the record ends
/// exactly where the password did.
fn read_optional_read_only(r: &mut JuteReader<'_>) -> Result<Option<bool>, DecodeError> {
    if r.is_empty() {
        Ok(None)
    } else {
        r.read_bool().map(Some)
    }
}

impl Record for ConnectRequest {
    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.timeout_ms);
        w.write_i64(self.session_id);
        w.write_buffer(&self.password);
        if let Some(read_only) = self.read_only {
            w.write_bool(read_only);
        }
    }

    /// The reader must hold exactly this record: whether `readOnly` is present
    /// is judged by whether any byte follows the password.
    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            password: r.read_buffer()?.to_vec(),
            read_only: read_optional_read_only(r)?,
        })
    }
}

/// `ConnectResponse{int protocolVersion; int timeOut; long sessionId;
/// buffer passwd; boolean readOnly}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    /// The negotiated timeout; 0 tells the client its session is gone.
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    /// Written only when `Some`: set it to `Some` exactly when the request
    /// carried the byte.
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = JuteWriter::begin_frame();
        self.write(&mut w);
        w.finish_frame()
    }

    /// Decodes a frame without its length prefix.
    pub fn decode(frame: &[u8]) -> Result<ConnectResponse, DecodeError> {
        ConnectResponse::from_bytes(frame)
    }
}

impl Record for ConnectResponse {
    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.timeout_ms);
        w.write_i64(self.session_id);
        w.write_buffer(&self.password);
        if let Some(read_only) = self.read_only {
            w.write_bool(read_only);
        }
    }

    /// Like [`ConnectRequest`]'s, the reader must hold exactly this record.
    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            password: r.read_buffer()?.to_vec(),
            read_only: read_optional_read_only(r)?,
        })
    }
}
