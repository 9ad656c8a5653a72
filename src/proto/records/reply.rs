//! Replies: a [`ReplyHeader`] followed by the record Apache's server writes
//! for the request's opcode, or by nothing when the request failed.

use super::header::{MultiHeader, ReplyHeader, WatcherEvent};
use super::op;
use super::{read_string_list, write_string_list, MIN_STRING_LEN};
use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};
use crate::proto::data::{read_acl_list, write_acl_list};
use crate::proto::{xid, Acl, Stat};

/// One authenticated identity as `whoAmI` reports it
/// (`ClientInfo{ustring authScheme; ustring user}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientInfo {
    pub auth_scheme: String,
    /// The user name, or another id such as the client's address for `ip`.
    pub user: String,
}

impl ClientInfo {
    /// Two empty strings.
    const MIN_LEN: usize = 2 * MIN_STRING_LEN;
}

impl Record for ClientInfo {
    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.auth_scheme);
        w.write_string(&self.user);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(ClientInfo {
            auth_scheme: r.read_opt_string()?.unwrap_or_default(),
            user: r.read_opt_string()?.unwrap_or_default(),
        })
    }
}

/// One result of a `multi` or `multiRead` reply.
///
/// A failed multi is answered with header err 0 and one `Error` per op: the
/// failing op's code, 0 for the ops before it and `RuntimeInconsistency` for
/// those after it. A multiRead reports each failed read as an `Error` and the
/// others normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// For a `create` member.
    Create {
        path: String,
    },
    /// For `create2`, `createContainer` and `createTTL` members.
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    GetData {
        data: Vec<u8>,
        stat: Stat,
    },
    GetChildren {
        children: Vec<String>,
    },
    /// Header type -1 carrying `err`, followed by an `ErrorResponse{err}`.
    Error {
        err: i32,
    },
}

impl MultiResult {
    /// The type written in this result's [`MultiHeader`].
    pub fn op_code(&self) -> i32 {
        match self {
            MultiResult::Create { .. } => op::CREATE,
            MultiResult::Create2 { .. } => op::CREATE2,
            MultiResult::Delete => op::DELETE,
            MultiResult::SetData { .. } => op::SET_DATA,
            MultiResult::Check => op::CHECK,
            MultiResult::GetData { .. } => op::GET_DATA,
            MultiResult::GetChildren { .. } => op::GET_CHILDREN,
            MultiResult::Error { .. } => op::ERROR,
        }
    }

    fn write(&self, w: &mut JuteWriter) {
        let err = match self {
            MultiResult::Error { err } => *err,
            _ => 0,
        };
        MultiHeader {
            op: self.op_code(),
            done: false,
            err,
        }
        .write(w);
        match self {
            MultiResult::Create { path } => w.write_string(path),
            MultiResult::Create2 { path, stat } => {
                w.write_string(path);
                stat.write(w);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData { stat } => stat.write(w),
            MultiResult::GetData { data, stat } => {
                w.write_buffer(data);
                stat.write(w);
            }
            MultiResult::GetChildren { children } => write_string_list(w, children),
            MultiResult::Error { err } => w.write_i32(*err),
        }
    }

    fn read(header: &MultiHeader, r: &mut JuteReader<'_>) -> Result<MultiResult, DecodeError> {
        Ok(match header.op {
            op::CREATE => MultiResult::Create {
                path: r.read_string("path")?,
            },
            op::CREATE2 => MultiResult::Create2 {
                path: r.read_string("path")?,
                stat: Stat::read(r)?,
            },
            op::DELETE => MultiResult::Delete,
            op::SET_DATA => MultiResult::SetData {
                stat: Stat::read(r)?,
            },
            op::CHECK => MultiResult::Check,
            op::GET_DATA => MultiResult::GetData {
                data: r.read_buffer()?.to_vec(),
                stat: Stat::read(r)?,
            },
            op::GET_CHILDREN => MultiResult::GetChildren {
                children: read_string_list(r, "child name")?,
            },
            // The body's code is authoritative; Apache's client ignores the
            // header's copy.
            op::ERROR => MultiResult::Error { err: r.read_i32()? },
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "multi result type",
                    value: i64::from(other),
                })
            }
        })
    }
}

/// A reply body. Which variant answers which opcode is fixed by Apache's
/// server; [`decode_reply`] documents the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: delete, ping, auth, setWatches, setWatches2, checkWatches,
    /// removeWatches, closeSession, and every reply whose header carries an
    /// error (except a failed multi, whose header err is 0).
    Empty,
    /// `create` (1) only.
    Create {
        path: String,
    },
    /// `create2`, `createContainer` and `createTTL`.
    Create2 {
        path: String,
        stat: Stat,
    },
    /// `exists`, `setData`, `setACL` and a bare `check` (13): Apache answers
    /// all four with a single Stat (`ExistsResponse`, `SetDataResponse`,
    /// `SetACLResponse`).
    Stat {
        stat: Stat,
    },
    /// `getData`, and `reconfig` (the new config and the config node's Stat).
    GetData {
        data: Vec<u8>,
        stat: Stat,
    },
    GetAcl {
        acl: Vec<Acl>,
        stat: Stat,
    },
    /// `getChildren` (8): names only.
    GetChildren {
        children: Vec<String>,
    },
    /// `getChildren2` (12): names and the parent's Stat.
    GetChildren2 {
        children: Vec<String>,
        stat: Stat,
    },
    /// `sync` echoes the path it was given.
    Sync {
        path: String,
    },
    /// `multi` and `multiRead`.
    Multi(Vec<MultiResult>),
    GetEphemerals {
        ephemerals: Vec<String>,
    },
    GetAllChildrenNumber {
        total: i32,
    },
    WhoAmI {
        clients: Vec<ClientInfo>,
    },
    /// A successful `addWatch`: Apache writes an `ErrorResponse` with code 0,
    /// and its client reads those four bytes, failing the connection if they
    /// are missing. Never use [`Response::Empty`] for a successful addWatch.
    AddWatch,
    /// `sasl` (102): `SetSASLResponse`, the server's next challenge token.
    Sasl {
        token: Vec<u8>,
    },
}

impl Response {
    /// Writes the body alone.
    pub fn write_body(&self, w: &mut JuteWriter) {
        match self {
            Response::Empty => {}
            Response::Create { path } | Response::Sync { path } => w.write_string(path),
            Response::Create2 { path, stat } => {
                w.write_string(path);
                stat.write(w);
            }
            Response::Stat { stat } => stat.write(w),
            Response::GetData { data, stat } => {
                w.write_buffer(data);
                stat.write(w);
            }
            Response::GetAcl { acl, stat } => {
                write_acl_list(w, acl);
                stat.write(w);
            }
            Response::GetChildren { children } => write_string_list(w, children),
            Response::GetChildren2 { children, stat } => {
                write_string_list(w, children);
                stat.write(w);
            }
            Response::Multi(results) => {
                for result in results {
                    result.write(w);
                }
                MultiHeader::END.write(w);
            }
            Response::GetEphemerals { ephemerals } => write_string_list(w, ephemerals),
            Response::GetAllChildrenNumber { total } => w.write_i32(*total),
            Response::WhoAmI { clients } => {
                w.write_vec_len(clients.len());
                for client in clients {
                    client.write(w);
                }
            }
            Response::AddWatch => w.write_i32(0),
            Response::Sasl { token } => w.write_buffer(token),
        }
    }

    /// Decodes the body of a successful reply to a request with opcode `op`,
    /// consuming it exactly.
    pub fn decode_body(op: i32, body: &[u8]) -> Result<Response, DecodeError> {
        let mut r = JuteReader::new(body);
        let response = Response::read_body(op, &mut r)?;
        r.finish()?;
        Ok(response)
    }

    fn read_body(op: i32, r: &mut JuteReader<'_>) -> Result<Response, DecodeError> {
        Ok(match op {
            op::CREATE => Response::Create {
                path: r.read_string("path")?,
            },
            op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => Response::Create2 {
                path: r.read_string("path")?,
                stat: Stat::read(r)?,
            },
            op::EXISTS | op::SET_DATA | op::SET_ACL | op::CHECK => Response::Stat {
                stat: Stat::read(r)?,
            },
            op::GET_DATA | op::RECONFIG => Response::GetData {
                data: r.read_buffer()?.to_vec(),
                stat: Stat::read(r)?,
            },
            op::GET_ACL => Response::GetAcl {
                acl: read_acl_list(r)?,
                stat: Stat::read(r)?,
            },
            op::GET_CHILDREN => Response::GetChildren {
                children: read_string_list(r, "child name")?,
            },
            op::GET_CHILDREN2 => Response::GetChildren2 {
                children: read_string_list(r, "child name")?,
                stat: Stat::read(r)?,
            },
            op::SYNC => Response::Sync {
                path: r.read_string("path")?,
            },
            op::MULTI | op::MULTI_READ => Response::Multi(read_results(r)?),
            op::GET_EPHEMERALS => Response::GetEphemerals {
                ephemerals: read_string_list(r, "ephemeral path")?,
            },
            op::GET_ALL_CHILDREN_NUMBER => Response::GetAllChildrenNumber {
                total: r.read_i32()?,
            },
            op::WHO_AM_I => {
                let count = r.read_vec_len(ClientInfo::MIN_LEN)?;
                let mut clients = Vec::with_capacity(count);
                for _ in 0..count {
                    clients.push(ClientInfo::read(r)?);
                }
                Response::WhoAmI { clients }
            }
            op::ADD_WATCH => {
                // Like Apache's client, the code inside is not looked at: the
                // header's err is what reports failure.
                r.read_i32()?;
                Response::AddWatch
            }
            op::SASL => Response::Sasl {
                token: r.read_buffer()?.to_vec(),
            },
            _ => Response::Empty,
        })
    }
}

/// Reads results up to the header marked done; each result consumes at least
/// a header's bytes, so the loop ends with the frame.
fn read_results(r: &mut JuteReader<'_>) -> Result<Vec<MultiResult>, DecodeError> {
    let mut results = Vec::new();
    loop {
        let header = MultiHeader::read(r)?;
        if header.done {
            return Ok(results);
        }
        results.push(MultiResult::read(&header, r)?);
    }
}

/// The whole reply frame, length prefix included. The body is written as
/// given, so pass [`Response::Empty`] with an error header.
pub fn encode_reply(header: &ReplyHeader, body: &Response) -> Vec<u8> {
    let mut w = JuteWriter::begin_frame();
    header.write(&mut w);
    body.write_body(&mut w);
    w.finish_frame()
}

/// A watch notification frame: xid -1, err 0, then the event.
pub fn encode_watch_event(zxid: i64, event: &WatcherEvent) -> Vec<u8> {
    let mut w = JuteWriter::begin_frame();
    ReplyHeader {
        xid: xid::WATCH_EVENT,
        zxid,
        err: 0,
    }
    .write(&mut w);
    event.write(&mut w);
    w.finish_frame()
}

/// Reads only the header of a reply frame (without its length prefix), so a
/// client can tell notifications, pings and auth replies from the replies it
/// is waiting for before it knows the body's shape.
pub fn decode_reply_header(frame: &[u8]) -> Result<ReplyHeader, DecodeError> {
    ReplyHeader::read(&mut JuteReader::new(frame))
}

/// Decodes a reply frame (without its length prefix) to a request with opcode
/// `op`.
///
/// When the header carries an error the body is [`Response::Empty`] and any
/// bytes after the header are ignored, as Apache's client does (Apache's
/// server sometimes leaves a body there). A failed `multi` is not such a
/// case: its header err is 0 and its results carry the errors.
pub fn decode_reply(op: i32, frame: &[u8]) -> Result<(ReplyHeader, Response), DecodeError> {
    let mut r = JuteReader::new(frame);
    let header = ReplyHeader::read(&mut r)?;
    if header.err != 0 {
        return Ok((header, Response::Empty));
    }
    let response = Response::read_body(op, &mut r)?;
    r.finish()?;
    Ok((header, response))
}

/// Decodes a notification frame (without its length prefix).
pub fn decode_watch_event(frame: &[u8]) -> Result<(ReplyHeader, WatcherEvent), DecodeError> {
    let mut r = JuteReader::new(frame);
    let header = ReplyHeader::read(&mut r)?;
    let event = WatcherEvent::read(&mut r)?;
    r.finish()?;
    Ok((header, event))
}
