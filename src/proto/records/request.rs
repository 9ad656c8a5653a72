//! Requests: what a client sends after the handshake, a [`RequestHeader`]
//! followed by the opcode's record.

use std::fmt;

use super::header::{MultiHeader, RequestHeader};
use super::op;
use super::{read_string_list, write_string_list};
use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};
use crate::proto::data::{read_acl_list, write_acl_list};
use crate::proto::Acl;

/// The record of `create`, `create2` and `createContainer` (`CreateRequest`),
/// and of `createTTL` (`CreateTTLRequest`, the same fields plus `long ttl`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateRequest {
    pub path: String,
    pub data: Vec<u8>,
    pub acl: Vec<Acl>,
    /// A [`crate::proto::CreateMode`] flag, unvalidated.
    pub flags: i32,
    /// `Some` only for `createTTL`, the one opcode whose record carries it.
    /// When encoding a `createTTL`, `None` is written as 0.
    pub ttl: Option<i64>,
}

impl CreateRequest {
    /// The record's layout depends on the opcode, not on the value of `ttl`.
    fn write_body(&self, w: &mut JuteWriter, with_ttl: bool) {
        w.write_string(&self.path);
        w.write_buffer(&self.data);
        write_acl_list(w, &self.acl);
        w.write_i32(self.flags);
        if with_ttl {
            w.write_i64(self.ttl.unwrap_or(0));
        }
    }

    fn read_body(r: &mut JuteReader<'_>, with_ttl: bool) -> Result<CreateRequest, DecodeError> {
        Ok(CreateRequest {
            path: r.read_string("path")?,
            data: r.read_buffer()?.to_vec(),
            acl: read_acl_list(r)?,
            flags: r.read_i32()?,
            ttl: if with_ttl { Some(r.read_i64()?) } else { None },
        })
    }
}

/// A member of a `multi` (opcode 14) request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MultiOp {
    /// `op` is the member's own opcode: create (1), create2 (15),
    /// createContainer (19) or createTTL (21). It decides both the record
    /// (only createTTL carries `ttl`) and, in Apache, the result's shape.
    Create {
        op: i32,
        req: CreateRequest,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

impl MultiOp {
    /// The opcode written in this member's [`MultiHeader`].
    pub fn op_code(&self) -> i32 {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::Delete { .. } => op::DELETE,
            MultiOp::SetData { .. } => op::SET_DATA,
            MultiOp::Check { .. } => op::CHECK,
        }
    }

    /// The path this member acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { req, .. } => &req.path,
            MultiOp::Delete { path, .. }
            | MultiOp::SetData { path, .. }
            | MultiOp::Check { path, .. } => path,
        }
    }

    fn write(&self, w: &mut JuteWriter) {
        MultiHeader::member(self.op_code()).write(w);
        match self {
            MultiOp::Create { op, req } => req.write_body(w, *op == op::CREATE_TTL),
            MultiOp::Delete { path, version } | MultiOp::Check { path, version } => {
                w.write_string(path);
                w.write_i32(*version);
            }
            MultiOp::SetData {
                path,
                data,
                version,
            } => {
                w.write_string(path);
                w.write_buffer(data);
                w.write_i32(*version);
            }
        }
    }

    /// Reads the member announced by `header`. Apache's decoder accepts only
    /// these opcodes in a write multi and fails the whole request otherwise.
    fn read(header: &MultiHeader, r: &mut JuteReader<'_>) -> Result<MultiOp, DecodeError> {
        Ok(match header.op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => MultiOp::Create {
                op: header.op,
                req: CreateRequest::read_body(r, false)?,
            },
            op::CREATE_TTL => MultiOp::Create {
                op: header.op,
                req: CreateRequest::read_body(r, true)?,
            },
            op::DELETE => MultiOp::Delete {
                path: r.read_string("path")?,
                version: r.read_i32()?,
            },
            op::SET_DATA => MultiOp::SetData {
                path: r.read_string("path")?,
                data: r.read_buffer()?.to_vec(),
                version: r.read_i32()?,
            },
            op::CHECK => MultiOp::Check {
                path: r.read_string("path")?,
                version: r.read_i32()?,
            },
            other => return Err(invalid_member(other)),
        })
    }
}

/// A member of a `multiRead` (opcode 22) request.
///
/// Each carries the `watch` byte of its `GetChildrenRequest`/`GetDataRequest`
/// record, but Apache ignores it: a multiRead never sets watches, and its
/// client always sends false.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReadOp {
    GetChildren { path: String, watch: bool },
    GetData { path: String, watch: bool },
}

impl ReadOp {
    /// The opcode written in this member's [`MultiHeader`].
    pub fn op_code(&self) -> i32 {
        match self {
            ReadOp::GetChildren { .. } => op::GET_CHILDREN,
            ReadOp::GetData { .. } => op::GET_DATA,
        }
    }

    /// The path this member reads.
    pub fn path(&self) -> &str {
        match self {
            ReadOp::GetChildren { path, .. } | ReadOp::GetData { path, .. } => path,
        }
    }

    fn write(&self, w: &mut JuteWriter) {
        MultiHeader::member(self.op_code()).write(w);
        match self {
            ReadOp::GetChildren { path, watch } | ReadOp::GetData { path, watch } => {
                w.write_string(path);
                w.write_bool(*watch);
            }
        }
    }

    fn read(header: &MultiHeader, r: &mut JuteReader<'_>) -> Result<ReadOp, DecodeError> {
        Ok(match header.op {
            op::GET_CHILDREN => ReadOp::GetChildren {
                path: r.read_string("path")?,
                watch: r.read_bool()?,
            },
            op::GET_DATA => ReadOp::GetData {
                path: r.read_string("path")?,
                watch: r.read_bool()?,
            },
            other => return Err(invalid_member(other)),
        })
    }
}

/// Apache refuses a multi that mixes reads and writes, or holds anything else.
fn invalid_member(op: i32) -> DecodeError {
    DecodeError::InvalidValue {
        what: "multi member opcode",
        value: i64::from(op),
    }
}

/// Reads members until the header marked done. The end marker's own type and
/// err are not checked, as in Apache. Every member consumes at least a header's
/// bytes, so the loop ends with the frame.
fn read_members<T>(
    r: &mut JuteReader<'_>,
    read_member: impl Fn(&MultiHeader, &mut JuteReader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut members = Vec::new();
    loop {
        let header = MultiHeader::read(r)?;
        if header.done {
            return Ok(members);
        }
        members.push(read_member(&header, r)?);
    }
}

/// The watches a reconnecting client re-registers: `SetWatches` (opcode 101)
/// has the first three lists; `SetWatches2` (105) adds the persistent ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SetWatches {
    /// The last zxid the client saw: watches on nodes changed after it fire at
    /// once.
    pub relative_zxid: i64,
    pub data: Vec<String>,
    pub exist: Vec<String>,
    pub child: Vec<String>,
    /// Only in `SetWatches2`; not written for `SetWatches`.
    pub persistent: Vec<String>,
    /// Only in `SetWatches2`; not written for `SetWatches`.
    pub persistent_recursive: Vec<String>,
}

impl SetWatches {
    fn write_body(&self, w: &mut JuteWriter, with_persistent: bool) {
        w.write_i64(self.relative_zxid);
        write_string_list(w, &self.data);
        write_string_list(w, &self.exist);
        write_string_list(w, &self.child);
        if with_persistent {
            write_string_list(w, &self.persistent);
            write_string_list(w, &self.persistent_recursive);
        }
    }

    fn read_body(r: &mut JuteReader<'_>, with_persistent: bool) -> Result<SetWatches, DecodeError> {
        let relative_zxid = r.read_i64()?;
        let data = read_string_list(r, "data watch path")?;
        let exist = read_string_list(r, "exist watch path")?;
        let child = read_string_list(r, "child watch path")?;
        let (persistent, persistent_recursive) = if with_persistent {
            (
                read_string_list(r, "persistent watch path")?,
                read_string_list(r, "persistent recursive watch path")?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(SetWatches {
            relative_zxid,
            data,
            exist,
            child,
            persistent,
            persistent_recursive,
        })
    }
}

/// The body of `reconfig` (opcode 16), kept raw in [`Request::Reconfig`] and
/// parsed with [`Record::from_bytes`] by whoever implements reconfiguration.
/// Every string may be null (`ZooKeeperAdmin` sends null for "unchanged").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReconfigRequest {
    pub joining_servers: Option<String>,
    pub leaving_servers: Option<String>,
    pub new_members: Option<String>,
    /// The config version the change is based on; -1 for "any".
    pub cur_config_id: i64,
}

impl Record for ReconfigRequest {
    fn write(&self, w: &mut JuteWriter) {
        w.write_opt_string(self.joining_servers.as_deref());
        w.write_opt_string(self.leaving_servers.as_deref());
        w.write_opt_string(self.new_members.as_deref());
        w.write_i64(self.cur_config_id);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(ReconfigRequest {
            joining_servers: r.read_opt_string()?,
            leaving_servers: r.read_opt_string()?,
            new_members: r.read_opt_string()?,
            cur_config_id: r.read_i64()?,
        })
    }
}

/// A decoded request body, one variant per opcode a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// Opcode 1; answered with the created path only.
    Create(CreateRequest),
    /// Opcode 15; answered with path and Stat.
    Create2(CreateRequest),
    /// Opcode 19; answered with path and Stat.
    CreateContainer(CreateRequest),
    /// Opcode 21; `CreateTTLRequest`, answered with path and Stat.
    CreateTtl(CreateRequest),
    Delete {
        path: String,
        version: i32,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// Opcode 8; answered with the names only.
    GetChildren {
        path: String,
        watch: bool,
    },
    /// Opcode 12; answered with the names and the parent's Stat.
    GetChildren2 {
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
    Ping,
    /// Opcode 13 outside a multi (`CheckVersionRequest`).
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<MultiOp>),
    MultiRead(Vec<ReadOp>),
    /// The undecoded [`ReconfigRequest`] body.
    Reconfig {
        raw: Vec<u8>,
    },
    /// `watcher_type` is a [`crate::proto::WatcherType`] value, unvalidated.
    CheckWatches {
        path: String,
        watcher_type: i32,
    },
    /// `watcher_type` is a [`crate::proto::WatcherType`] value, unvalidated.
    RemoveWatches {
        path: String,
        watcher_type: i32,
    },
    /// `AuthPacket`, sent with xid -4. `auth_type` is always 0 in practice.
    Auth {
        auth_type: i32,
        scheme: String,
        auth: Vec<u8>,
    },
    SetWatches(SetWatches),
    SetWatches2(SetWatches),
    /// `GetSASLRequest`.
    Sasl {
        token: Vec<u8>,
    },
    /// A null prefix decodes as empty; Apache treats null, empty and "/" alike
    /// (all of the session's ephemerals).
    GetEphemerals {
        prefix_path: String,
    },
    GetAllChildrenNumber {
        path: String,
    },
    /// `mode` is a [`crate::proto::AddWatchMode`] value, unvalidated.
    AddWatch {
        path: String,
        mode: i32,
    },
    WhoAmI,
    CloseSession,
    /// An opcode no client may send (including the server-internal ones);
    /// its body, whatever it is, is ignored. The server answers it with an
    /// error reply.
    Unknown {
        op: i32,
    },
}

impl Request {
    /// The opcode this request travels under.
    pub fn op_code(&self) -> i32 {
        match self {
            Request::Create(_) => op::CREATE,
            Request::Create2(_) => op::CREATE2,
            Request::CreateContainer(_) => op::CREATE_CONTAINER,
            Request::CreateTtl(_) => op::CREATE_TTL,
            Request::Delete { .. } => op::DELETE,
            Request::Exists { .. } => op::EXISTS,
            Request::GetData { .. } => op::GET_DATA,
            Request::SetData { .. } => op::SET_DATA,
            Request::GetAcl { .. } => op::GET_ACL,
            Request::SetAcl { .. } => op::SET_ACL,
            Request::GetChildren { .. } => op::GET_CHILDREN,
            Request::GetChildren2 { .. } => op::GET_CHILDREN2,
            Request::Sync { .. } => op::SYNC,
            Request::Ping => op::PING,
            Request::Check { .. } => op::CHECK,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::Reconfig { .. } => op::RECONFIG,
            Request::CheckWatches { .. } => op::CHECK_WATCHES,
            Request::RemoveWatches { .. } => op::REMOVE_WATCHES,
            Request::Auth { .. } => op::AUTH,
            Request::SetWatches(_) => op::SET_WATCHES,
            Request::SetWatches2(_) => op::SET_WATCHES2,
            Request::Sasl { .. } => op::SASL,
            Request::GetEphemerals { .. } => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber { .. } => op::GET_ALL_CHILDREN_NUMBER,
            Request::AddWatch { .. } => op::ADD_WATCH,
            Request::WhoAmI => op::WHO_AM_I,
            Request::CloseSession => op::CLOSE_SESSION,
            Request::Unknown { op } => *op,
        }
    }

    /// The single path the request names, for logs and per-path accounting.
    pub fn path(&self) -> Option<&str> {
        match self {
            Request::Create(req)
            | Request::Create2(req)
            | Request::CreateContainer(req)
            | Request::CreateTtl(req) => Some(&req.path),
            Request::Delete { path, .. }
            | Request::Exists { path, .. }
            | Request::GetData { path, .. }
            | Request::SetData { path, .. }
            | Request::GetAcl { path }
            | Request::SetAcl { path, .. }
            | Request::GetChildren { path, .. }
            | Request::GetChildren2 { path, .. }
            | Request::Sync { path }
            | Request::Check { path, .. }
            | Request::CheckWatches { path, .. }
            | Request::RemoveWatches { path, .. }
            | Request::GetAllChildrenNumber { path }
            | Request::AddWatch { path, .. } => Some(path),
            Request::GetEphemerals { prefix_path } => Some(prefix_path),
            Request::Ping
            | Request::Multi(_)
            | Request::MultiRead(_)
            | Request::Reconfig { .. }
            | Request::Auth { .. }
            | Request::SetWatches(_)
            | Request::SetWatches2(_)
            | Request::Sasl { .. }
            | Request::WhoAmI
            | Request::CloseSession
            | Request::Unknown { .. } => None,
        }
    }

    /// The whole frame: length prefix, header with `xid`, body.
    pub fn encode(&self, xid: i32) -> Vec<u8> {
        let header = RequestHeader {
            xid,
            op: self.op_code(),
        };
        let body = self.encode_body();
        let mut frame = Vec::with_capacity(4 + RequestHeader::LEN + body.len());
        frame.extend_from_slice(&((RequestHeader::LEN + body.len()) as i32).to_be_bytes());
        frame.extend_from_slice(&header.to_bytes());
        frame.extend_from_slice(&body);
        frame
    }

    /// The body alone, without header or length prefix.
    pub fn encode_body(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        match self {
            Request::Create(req) | Request::Create2(req) | Request::CreateContainer(req) => {
                req.write_body(&mut w, false)
            }
            Request::CreateTtl(req) => req.write_body(&mut w, true),
            Request::Delete { path, version } | Request::Check { path, version } => {
                w.write_string(path);
                w.write_i32(*version);
            }
            Request::Exists { path, watch }
            | Request::GetData { path, watch }
            | Request::GetChildren { path, watch }
            | Request::GetChildren2 { path, watch } => {
                w.write_string(path);
                w.write_bool(*watch);
            }
            Request::SetData {
                path,
                data,
                version,
            } => {
                w.write_string(path);
                w.write_buffer(data);
                w.write_i32(*version);
            }
            Request::GetAcl { path }
            | Request::Sync { path }
            | Request::GetAllChildrenNumber { path } => w.write_string(path),
            Request::GetEphemerals { prefix_path } => w.write_string(prefix_path),
            Request::SetAcl { path, acl, version } => {
                w.write_string(path);
                write_acl_list(&mut w, acl);
                w.write_i32(*version);
            }
            Request::Multi(ops) => {
                for member in ops {
                    member.write(&mut w);
                }
                MultiHeader::END.write(&mut w);
            }
            Request::MultiRead(ops) => {
                for member in ops {
                    member.write(&mut w);
                }
                MultiHeader::END.write(&mut w);
            }
            Request::Reconfig { raw } => return raw.clone(),
            Request::CheckWatches { path, watcher_type }
            | Request::RemoveWatches { path, watcher_type } => {
                w.write_string(path);
                w.write_i32(*watcher_type);
            }
            Request::Auth {
                auth_type,
                scheme,
                auth,
            } => {
                w.write_i32(*auth_type);
                w.write_string(scheme);
                w.write_buffer(auth);
            }
            Request::SetWatches(watches) => watches.write_body(&mut w, false),
            Request::SetWatches2(watches) => watches.write_body(&mut w, true),
            Request::Sasl { token } => w.write_buffer(token),
            Request::AddWatch { path, mode } => {
                w.write_string(path);
                w.write_i32(*mode);
            }
            Request::Ping | Request::WhoAmI | Request::CloseSession | Request::Unknown { .. } => {}
        }
        w.into_inner()
    }

    /// Decodes the body of a request with opcode `op`. The body must be
    /// consumed exactly, except for `reconfig` (kept raw) and unknown opcodes
    /// (whose bodies are not looked at).
    pub fn decode_body(op: i32, body: &[u8]) -> Result<Request, DecodeError> {
        let mut r = JuteReader::new(body);
        let request = match op {
            op::CREATE => Request::Create(CreateRequest::read_body(&mut r, false)?),
            op::CREATE2 => Request::Create2(CreateRequest::read_body(&mut r, false)?),
            op::CREATE_CONTAINER => {
                Request::CreateContainer(CreateRequest::read_body(&mut r, false)?)
            }
            op::CREATE_TTL => Request::CreateTtl(CreateRequest::read_body(&mut r, true)?),
            op::DELETE => Request::Delete {
                path: r.read_string("path")?,
                version: r.read_i32()?,
            },
            op::EXISTS => Request::Exists {
                path: r.read_string("path")?,
                watch: r.read_bool()?,
            },
            op::GET_DATA => Request::GetData {
                path: r.read_string("path")?,
                watch: r.read_bool()?,
            },
            op::SET_DATA => Request::SetData {
                path: r.read_string("path")?,
                data: r.read_buffer()?.to_vec(),
                version: r.read_i32()?,
            },
            op::GET_ACL => Request::GetAcl {
                path: r.read_string("path")?,
            },
            op::SET_ACL => Request::SetAcl {
                path: r.read_string("path")?,
                acl: read_acl_list(&mut r)?,
                version: r.read_i32()?,
            },
            op::GET_CHILDREN => Request::GetChildren {
                path: r.read_string("path")?,
                watch: r.read_bool()?,
            },
            op::GET_CHILDREN2 => Request::GetChildren2 {
                path: r.read_string("path")?,
                watch: r.read_bool()?,
            },
            op::SYNC => Request::Sync {
                path: r.read_string("path")?,
            },
            op::PING => Request::Ping,
            op::CHECK => Request::Check {
                path: r.read_string("path")?,
                version: r.read_i32()?,
            },
            op::MULTI => Request::Multi(read_members(&mut r, MultiOp::read)?),
            op::MULTI_READ => Request::MultiRead(read_members(&mut r, ReadOp::read)?),
            op::RECONFIG => {
                return Ok(Request::Reconfig { raw: body.to_vec() });
            }
            op::CHECK_WATCHES => Request::CheckWatches {
                path: r.read_string("path")?,
                watcher_type: r.read_i32()?,
            },
            op::REMOVE_WATCHES => Request::RemoveWatches {
                path: r.read_string("path")?,
                watcher_type: r.read_i32()?,
            },
            op::AUTH => Request::Auth {
                auth_type: r.read_i32()?,
                scheme: r.read_string("scheme")?,
                auth: r.read_buffer()?.to_vec(),
            },
            op::SET_WATCHES => Request::SetWatches(SetWatches::read_body(&mut r, false)?),
            op::SET_WATCHES2 => Request::SetWatches2(SetWatches::read_body(&mut r, true)?),
            op::SASL => Request::Sasl {
                token: r.read_buffer()?.to_vec(),
            },
            op::GET_EPHEMERALS => Request::GetEphemerals {
                prefix_path: r.read_opt_string()?.unwrap_or_default(),
            },
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber {
                path: r.read_string("path")?,
            },
            op::ADD_WATCH => Request::AddWatch {
                path: r.read_string("path")?,
                mode: r.read_i32()?,
            },
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            other => return Ok(Request::Unknown { op: other }),
        };
        r.finish()?;
        Ok(request)
    }
}

/// A request frame that could not be decoded. The header is kept when it could
/// be read, so the server can log the xid and opcode and answer that xid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDecodeError {
    /// `None` when the frame was too short to hold even the header.
    pub header: Option<RequestHeader>,
    pub error: DecodeError,
}

impl fmt::Display for RequestDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.header {
            Some(header) => write!(
                f,
                "cannot decode request xid {} op {}: {}",
                header.xid, header.op, self.error
            ),
            None => write!(f, "cannot decode request header: {}", self.error),
        }
    }
}

impl std::error::Error for RequestDecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Decodes a request frame (without its length prefix). An unknown opcode is
/// not an error: it decodes to [`Request::Unknown`].
pub fn decode_request(frame: &[u8]) -> Result<(RequestHeader, Request), RequestDecodeError> {
    let mut r = JuteReader::new(frame);
    let header = RequestHeader::read(&mut r).map_err(|error| RequestDecodeError {
        header: None,
        error,
    })?;
    let body = frame.get(r.position()..).unwrap_or_default();
    let request = Request::decode_body(header.op, body).map_err(|error| RequestDecodeError {
        header: Some(header),
        error,
    })?;
    Ok((header, request))
}
