//! Request and reply records of the client protocol, both directions.
//!
//! The server decodes requests with [`decode_request`] and writes replies with
//! [`encode_reply`] and [`encode_watch_event`]; a client (and the tests that
//! speak raw protocol) encodes requests with [`Request::encode`] and decodes
//! replies with [`decode_reply`]. The session handshake, which has no request
//! header, is [`ConnectRequest`]/[`ConnectResponse`].
//!
//! Field order follows Apache's `zookeeper.jute`; the choice of reply record per
//! opcode follows what Apache's server actually writes, which is not always what
//! the record names suggest (`exists` and `check` answer with a `SetDataResponse`,
//! `addWatch` with an `ErrorResponse`, `reconfig` with a `GetDataResponse`).
//!
//! Decoders never trust a length from the wire: every buffer, string and vector
//! is checked against the bytes actually present before anything is allocated,
//! and a record followed by stray bytes is rejected.

mod connect;
mod header;
mod reply;
mod request;
#[cfg(test)]
mod tests;

pub use connect::{ConnectRequest, ConnectResponse};
pub use header::{MultiHeader, ReplyHeader, RequestHeader, WatcherEvent};
pub use reply::{
    decode_reply, decode_reply_header, decode_watch_event, encode_reply, encode_watch_event,
    ClientInfo, MultiResult, Response,
};
pub use request::{
    decode_request, CreateRequest, MultiOp, ReadOp, ReconfigRequest, Request, RequestDecodeError,
    SetWatches,
};

use crate::jute::{DecodeError, JuteReader, JuteWriter};

/// Smallest encoded string: its length prefix alone.
const MIN_STRING_LEN: usize = 4;

fn write_string_list(w: &mut JuteWriter, items: &[String]) {
    w.write_vec_len(items.len());
    for item in items {
        w.write_string(item);
    }
}

fn read_string_list(
    r: &mut JuteReader<'_>,
    what: &'static str,
) -> Result<Vec<String>, DecodeError> {
    let count = r.read_vec_len(MIN_STRING_LEN)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(r.read_string(what)?);
    }
    Ok(items)
}

/// Opcodes as plain integers, for matching on the wire value.
mod op {
    use crate::proto::OpCode;

    pub const ERROR: i32 = OpCode::Error as i32;
    pub const CREATE: i32 = OpCode::Create as i32;
    pub const DELETE: i32 = OpCode::Delete as i32;
    pub const EXISTS: i32 = OpCode::Exists as i32;
    pub const GET_DATA: i32 = OpCode::GetData as i32;
    pub const SET_DATA: i32 = OpCode::SetData as i32;
    pub const GET_ACL: i32 = OpCode::GetAcl as i32;
    pub const SET_ACL: i32 = OpCode::SetAcl as i32;
    pub const GET_CHILDREN: i32 = OpCode::GetChildren as i32;
    pub const SYNC: i32 = OpCode::Sync as i32;
    pub const PING: i32 = OpCode::Ping as i32;
    pub const GET_CHILDREN2: i32 = OpCode::GetChildren2 as i32;
    pub const CHECK: i32 = OpCode::Check as i32;
    pub const MULTI: i32 = OpCode::Multi as i32;
    pub const CREATE2: i32 = OpCode::Create2 as i32;
    pub const RECONFIG: i32 = OpCode::Reconfig as i32;
    pub const CHECK_WATCHES: i32 = OpCode::CheckWatches as i32;
    pub const REMOVE_WATCHES: i32 = OpCode::RemoveWatches as i32;
    pub const CREATE_CONTAINER: i32 = OpCode::CreateContainer as i32;
    pub const CREATE_TTL: i32 = OpCode::CreateTtl as i32;
    pub const MULTI_READ: i32 = OpCode::MultiRead as i32;
    pub const AUTH: i32 = OpCode::Auth as i32;
    pub const SET_WATCHES: i32 = OpCode::SetWatches as i32;
    pub const SASL: i32 = OpCode::Sasl as i32;
    pub const GET_EPHEMERALS: i32 = OpCode::GetEphemerals as i32;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = OpCode::GetAllChildrenNumber as i32;
    pub const SET_WATCHES2: i32 = OpCode::SetWatches2 as i32;
    pub const ADD_WATCH: i32 = OpCode::AddWatch as i32;
    pub const WHO_AM_I: i32 = OpCode::WhoAmI as i32;
    pub const CLOSE_SESSION: i32 = OpCode::CloseSession as i32;
}
