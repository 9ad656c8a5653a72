//! Apache's transaction records (`zookeeper.jute`, module
//! `org.apache.zookeeper.txn`), decoded from one log entry.
//!
//! A log entry is a `TxnHeader` followed by the record its type names and,
//! since 3.6, an optional `TxnDigest` that nothing here needs.

use crate::jute::{DecodeError, JuteReader};
use crate::proto::data::read_acl_list;
use crate::proto::{Acl, OpCode};

/// `TxnHeader`: who sent the request, and the zxid and time the leader gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TxnHeader {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time: i64,
    /// The opcode (`OpCode`), or -1 for a failed request.
    pub kind: i32,
}

/// What kind of node a logged create makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CreateKind {
    Persistent,
    /// Owned by the header's client id.
    Ephemeral,
    Container,
    /// A TTL node, with its TTL in milliseconds.
    Ttl(i64),
}

/// A logged create. The path is final: any sequential suffix was added by the
/// leader before logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LoggedCreate {
    pub path: String,
    pub data: Vec<u8>,
    pub acl: Vec<Acl>,
    pub kind: CreateKind,
    /// The parent's stored cversion after this create, or -1 ("one more than
    /// now") in records from before 3.3.
    pub parent_cversion: i32,
    /// Logged with opcode `create` (1): only these get Apache's parent
    /// cversion repair when the node already exists.
    pub plain_create: bool,
}

/// One logged transaction, as Apache replays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LoggedTxn {
    CreateSession {
        timeout_ms: i32,
    },
    /// `paths` is `None` for records from before `CloseSessionTxn` existed.
    CloseSession {
        paths: Option<Vec<String>>,
    },
    Create(LoggedCreate),
    Delete {
        path: String,
    },
    /// `version` is the node's version after the change (not an expected one).
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    /// `version` is the node's ACL version after the change.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// A version check inside a multi: changes nothing.
    Check,
    /// A request that failed; changes nothing but takes a zxid.
    Error,
    Multi(Vec<LoggedTxn>),
}

/// Why a log entry could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum RecordError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("transaction type {0} is not one Apache ZooKeeper logs")]
    UnsupportedType(i32),
    #[error("operation type {0} cannot appear inside a multi")]
    UnsupportedMultiOp(i32),
}

/// Decodes one log entry (the bytes its checksum covers).
pub(super) fn decode_entry(bytes: &[u8]) -> Result<(TxnHeader, LoggedTxn), RecordError> {
    let mut r = JuteReader::new(bytes);
    let header = TxnHeader {
        client_id: r.read_i64()?,
        cxid: r.read_i32()?,
        zxid: r.read_i64()?,
        time: r.read_i64()?,
        kind: r.read_i32()?,
    };
    let body = bytes.get(r.position()..).unwrap_or_default();
    let txn = decode_txn(header.kind, body, false)?;
    // Whatever follows (a TxnDigest since 3.6) does not change the tree.
    Ok((header, txn))
}

fn decode_txn(kind: i32, body: &[u8], in_multi: bool) -> Result<LoggedTxn, RecordError> {
    let mut r = JuteReader::new(body);
    let op = OpCode::from_i32(kind);
    let allowed = if in_multi {
        matches!(
            op,
            Some(
                OpCode::Create
                    | OpCode::Create2
                    | OpCode::CreateTtl
                    | OpCode::CreateContainer
                    | OpCode::Delete
                    | OpCode::DeleteContainer
                    | OpCode::SetData
                    | OpCode::Check
                    | OpCode::Error
            )
        )
    } else {
        !matches!(op, Some(OpCode::Check))
    };
    if !allowed {
        return Err(if in_multi {
            RecordError::UnsupportedMultiOp(kind)
        } else {
            RecordError::UnsupportedType(kind)
        });
    }
    Ok(match op {
        Some(OpCode::CreateSession) => LoggedTxn::CreateSession {
            timeout_ms: r.read_i32()?,
        },
        Some(OpCode::CloseSession) => {
            // Records written before 3.6 (or with closeSessionTxn disabled)
            // have no body.
            if r.is_empty() {
                LoggedTxn::CloseSession { paths: None }
            } else {
                let count = r.read_vec_len(4)?;
                let mut paths = Vec::with_capacity(count);
                for _ in 0..count {
                    paths.push(r.read_string("path to delete")?);
                }
                LoggedTxn::CloseSession { paths: Some(paths) }
            }
        }
        Some(OpCode::Create | OpCode::Create2) => {
            LoggedTxn::Create(decode_create(body, op == Some(OpCode::Create))?)
        }
        Some(OpCode::CreateContainer) => LoggedTxn::Create(LoggedCreate {
            path: r.read_string("path")?,
            data: r.read_buffer()?.to_vec(),
            acl: read_acl_list(&mut r)?,
            parent_cversion: r.read_i32()?,
            kind: CreateKind::Container,
            plain_create: false,
        }),
        Some(OpCode::CreateTtl) => {
            let path = r.read_string("path")?;
            let data = r.read_buffer()?.to_vec();
            let acl = read_acl_list(&mut r)?;
            let parent_cversion = r.read_i32()?;
            let ttl = r.read_i64()?;
            LoggedTxn::Create(LoggedCreate {
                path,
                data,
                acl,
                kind: CreateKind::Ttl(ttl),
                parent_cversion,
                plain_create: false,
            })
        }
        Some(OpCode::Delete | OpCode::DeleteContainer) => LoggedTxn::Delete {
            path: r.read_string("path")?,
        },
        // A reconfig is logged as the new contents of /zookeeper/config.
        Some(OpCode::SetData | OpCode::Reconfig) => LoggedTxn::SetData {
            path: r.read_string("path")?,
            data: r.read_buffer()?.to_vec(),
            version: r.read_i32()?,
        },
        Some(OpCode::SetAcl) => LoggedTxn::SetAcl {
            path: r.read_string("path")?,
            acl: read_acl_list(&mut r)?,
            version: r.read_i32()?,
        },
        Some(OpCode::Check) => {
            r.read_string("path")?;
            r.read_i32()?;
            LoggedTxn::Check
        }
        Some(OpCode::Error) => {
            r.read_i32()?;
            LoggedTxn::Error
        }
        Some(OpCode::Multi) => {
            let count = r.read_vec_len(8)?;
            let mut ops = Vec::with_capacity(count);
            for _ in 0..count {
                let sub_kind = r.read_i32()?;
                let sub_body = r.read_buffer()?;
                ops.push(decode_txn(sub_kind, sub_body, true)?);
            }
            LoggedTxn::Multi(ops)
        }
        _ => return Err(RecordError::UnsupportedType(kind)),
    })
}

/// `CreateTxn`, or the `CreateTxnV0` of logs from before 3.3 (no parent
/// cversion), which Apache recognises by the record ending early.
fn decode_create(body: &[u8], plain_create: bool) -> Result<LoggedCreate, RecordError> {
    let mut r = JuteReader::new(body);
    let path = r.read_string("path")?;
    let data = r.read_buffer()?.to_vec();
    let acl = read_acl_list(&mut r)?;
    let ephemeral = r.read_bool()?;
    let parent_cversion = match r.read_i32() {
        Ok(cversion) => cversion,
        Err(DecodeError::Truncated { .. }) if plain_create => -1,
        Err(e) => return Err(e.into()),
    };
    Ok(LoggedCreate {
        path,
        data,
        acl,
        kind: if ephemeral {
            CreateKind::Ephemeral
        } else {
            CreateKind::Persistent
        },
        parent_cversion,
        plain_create,
    })
}
