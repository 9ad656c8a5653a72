//! Transactions: the values a write request is prepared into, and what applying
//! one to the data tree produced.
//!
//! A [`Txn`] carries everything [`crate::tree::DataTree::apply`] needs and
//! nothing it must look up elsewhere: the session, the time stamped by the
//! server that sequenced it, and the identities the session had authenticated
//! when it sent the request (for ACL checks, which therefore give the same answer
//! on every replica). Apply is deterministic: the same sequence of `Txn`s applied
//! to the same tree yields the same tree, the same zxids and the same results.
//! That is what lets the very same values be written to the transaction log and
//! replicated.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::proto::{Acl, CreateMode, ErrorCode, Id, Stat};

/// A prepared write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub session_id: i64,
    /// The client's xid for this request (`cxid` in Apache's TxnHeader).
    pub cxid: i32,
    /// Wall-clock milliseconds stamped by the sequencing server; becomes ctime
    /// and mtime, and is the "now" of TTL expiry. Apply never reads a clock.
    pub time_ms: i64,
    /// The session's authenticated identities when the request was prepared.
    pub auth: Vec<Id>,
    pub op: TxnOp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Registers a session in the replicated session table.
    CreateSession {
        timeout_ms: i32,
    },
    /// Removes a session and every ephemeral it owns (client close or expiry).
    CloseSession,
    Create(CreateOp),
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    /// All-or-nothing. Holds only `Create`, `Delete`, `SetData` and `Check`.
    Multi(Vec<TxnOp>),
    /// Server-initiated: deletes a container that has had children and has none
    /// now. Re-checked at apply; a no-op result if the node no longer qualifies.
    DeleteContainer {
        path: String,
    },
    /// Server-initiated: deletes a TTL node unchanged for its TTL (judged
    /// against `Txn::time_ms`) and childless. Re-checked at apply.
    DeleteExpiredTtl {
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOp {
    /// The requested path; for sequential modes the suffix is added at apply.
    pub path: String,
    pub data: Vec<u8>,
    /// Already validated and with `auth` entries expanded by preparation.
    pub acl: Vec<Acl>,
    pub mode: CreateMode,
    /// Milliseconds, for the TTL modes; 0 otherwise.
    pub ttl_ms: i64,
}

/// What applying one [`Txn`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The zxid this transaction was given: one more than the tree's previous
    /// last zxid. Every applied transaction gets one, failed ones included.
    pub zxid: i64,
    pub result: TxnResult,
    /// Node changes in the order they happened, for the watch manager.
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    SessionCreated,
    /// Carries the paths of the ephemerals that were deleted with the session.
    SessionClosed,
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    DataSet {
        stat: Stat,
    },
    AclSet {
        stat: Stat,
    },
    Checked,
    /// One entry per op. When the multi failed, every entry is `Error`: the
    /// failing op's own code, `Ok` for the ops before it and
    /// `RuntimeInconsistency` for those after it, as Apache reports them.
    Multi(Vec<TxnResult>),
    Error(ErrorCode),
}

impl TxnResult {
    pub fn error_code(&self) -> ErrorCode {
        match self {
            TxnResult::Error(code) => *code,
            _ => ErrorCode::Ok,
        }
    }
}

/// One change to the tree, as the watch manager needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
    /// The node's ACL (for a deleted node, the ACL it had), so that watches
    /// which would reveal this path to another session can be checked for READ.
    pub acl: Arc<[Acl]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Created,
    Deleted,
    DataChanged,
    ChildrenChanged,
}
