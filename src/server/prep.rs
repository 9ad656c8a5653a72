//! Request preparation: turning a client's write request into a [`Txn`].
//!
//! Preparation checks what can be judged from the request and the session
//! alone (path syntax, create modes and TTLs, ACL syntax and the expansion of
//! the `auth` scheme) and stamps the time. Everything that depends on the
//! tree (existence, versions, ACL permissions, quotas) is judged when the
//! transaction is applied, so that every replica reaches the same verdict.

use crate::acl;
use crate::proto::records::{CreateRequest, MultiOp, MultiResult, Request};
use crate::proto::{CreateMode, ErrorCode, Id, OpCode};
use crate::tree::validate_path;
use crate::txn::{CreateOp, Txn, TxnOp};

/// The largest TTL a node may have (Apache's `EphemeralType` limit, 2^40 - 1 ms).
pub const MAX_TTL_MS: i64 = 0xff_ffff_ffff;

/// The session-side facts a transaction is stamped with.
#[derive(Debug, Clone, Copy)]
pub struct PrepContext<'a> {
    pub session_id: i64,
    pub cxid: i32,
    pub time_ms: i64,
    pub auth: &'a [Id],
    pub extended_types_enabled: bool,
}

/// Why a write was not turned into a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The request fails with this code.
    Error(ErrorCode),
    /// A multi whose op failed preparation: the per-op results to send.
    Multi(Vec<MultiResult>),
}

/// Prepares a write request. Returns `None` for requests that are not writes.
pub fn prepare(req: &Request, ctx: &PrepContext<'_>) -> Option<Result<Txn, Rejected>> {
    let op = match req {
        Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) => {
            prep_create(req.op_code(), c, ctx).map(TxnOp::Create)
        }
        Request::CreateTtl(c) => prep_create(OpCode::CreateTtl as i32, c, ctx).map(TxnOp::Create),
        Request::Delete { path, version } => prep_delete(path, *version),
        Request::SetData {
            path,
            data,
            version,
        } => prep_set_data(path, data, *version),
        Request::SetAcl { path, acl, version } => prep_set_acl(path, acl, *version, ctx),
        // A bare check is forbidden outside a multi since 3.9
        // (ZOOKEEPER-2623): it answers Unimplemented.
        Request::Check { .. } => Err(ErrorCode::Unimplemented),
        Request::Multi(ops) => return Some(prep_multi(ops, ctx)),
        Request::CloseSession => Ok(TxnOp::CloseSession),
        _ => return None,
    };
    Some(op.map(|op| stamp(op, ctx)).map_err(Rejected::Error))
}

fn stamp(op: TxnOp, ctx: &PrepContext<'_>) -> Txn {
    Txn {
        session_id: ctx.session_id,
        cxid: ctx.cxid,
        time_ms: ctx.time_ms,
        auth: ctx.auth.to_vec(),
        op,
    }
}

fn prep_create(
    op_code: i32,
    req: &CreateRequest,
    ctx: &PrepContext<'_>,
) -> Result<CreateOp, ErrorCode> {
    let mode = CreateMode::from_flag(req.flags).ok_or(ErrorCode::BadArguments)?;
    if mode.is_ttl() && !ctx.extended_types_enabled {
        return Err(ErrorCode::Unimplemented);
    }
    let ttl_ms = if op_code == OpCode::CreateTtl as i32 {
        req.ttl.unwrap_or(-1)
    } else {
        -1
    };
    if mode.is_ttl() {
        if ttl_ms <= 0 || ttl_ms > MAX_TTL_MS {
            return Err(ErrorCode::BadArguments);
        }
    } else if ttl_ms >= 0 {
        // A TTL given for a mode that has none is a client bug, not a no-op.
        return Err(ErrorCode::BadArguments);
    }
    // Only what Apache checks before the ACL and the parent: a slash and no
    // NUL. The full path rules are applied with the tree, after the parent
    // lookup and the CREATE check, so a bad name under a missing parent is
    // NoNode there as it is in Apache.
    if !req.path.contains('/') || req.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let acl = acl::fixup_acl(&req.acl, ctx.auth)?;
    Ok(CreateOp {
        path: req.path.clone(),
        data: req.data.clone(),
        acl,
        mode,
        ttl_ms: ttl_ms.max(0),
    })
}

fn prep_delete(path: &str, version: i32) -> Result<TxnOp, ErrorCode> {
    // Apache checks only for a slash and a NUL here; the tree refuses the
    // reserved paths.
    if !path.contains('/') || path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    Ok(TxnOp::Delete {
        path: path.to_owned(),
        version,
    })
}

fn prep_set_data(path: &str, data: &[u8], version: i32) -> Result<TxnOp, ErrorCode> {
    validate_path(path, false)?;
    Ok(TxnOp::SetData {
        path: path.to_owned(),
        data: data.to_vec(),
        version,
    })
}

fn prep_set_acl(
    path: &str,
    acl_list: &[crate::proto::Acl],
    version: i32,
    ctx: &PrepContext<'_>,
) -> Result<TxnOp, ErrorCode> {
    validate_path(path, false)?;
    let acl = acl::fixup_acl(acl_list, ctx.auth)?;
    Ok(TxnOp::SetAcl {
        path: path.to_owned(),
        acl,
        version,
    })
}

fn prep_check(path: &str, version: i32) -> Result<TxnOp, ErrorCode> {
    validate_path(path, false)?;
    Ok(TxnOp::Check {
        path: path.to_owned(),
        version,
    })
}

fn prep_multi(ops: &[MultiOp], ctx: &PrepContext<'_>) -> Result<Txn, Rejected> {
    let mut prepared = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let result = match op {
            MultiOp::Create { op, req } => prep_create(*op, req, ctx).map(TxnOp::Create),
            MultiOp::Delete { path, version } => prep_delete(path, *version),
            MultiOp::SetData {
                path,
                data,
                version,
            } => prep_set_data(path, data, *version),
            MultiOp::Check { path, version } => prep_check(path, *version),
        };
        match result {
            Ok(txn_op) => prepared.push(txn_op),
            Err(code) => return Err(Rejected::Multi(failed_multi(ops.len(), index, code))),
        }
    }
    Ok(stamp(TxnOp::Multi(prepared), ctx))
}

/// Per-op results of a multi that failed at `failed`: Ok before it, its own
/// code, RuntimeInconsistency after it (Apache's reporting).
pub fn failed_multi(len: usize, failed: usize, code: ErrorCode) -> Vec<MultiResult> {
    (0..len)
        .map(|i| {
            let err = if i < failed {
                ErrorCode::Ok
            } else if i == failed {
                code
            } else {
                ErrorCode::RuntimeInconsistency
            };
            MultiResult::Error { err: err.code() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Acl;

    fn ctx(auth: &[Id]) -> PrepContext<'_> {
        PrepContext {
            session_id: 1,
            cxid: 1,
            time_ms: 1000,
            auth,
            extended_types_enabled: false,
        }
    }

    fn create(path: &str, flags: i32) -> CreateRequest {
        CreateRequest {
            path: path.into(),
            data: vec![],
            acl: Acl::open_unsafe(),
            flags,
            ttl: None,
        }
    }

    #[test]
    fn bad_paths_and_flags_are_bad_arguments() {
        let auth = [];
        for (req, want) in [
            (create("a", 0), ErrorCode::BadArguments),
            (create("/a\0b", 0), ErrorCode::BadArguments),
            (create("/a", 9), ErrorCode::BadArguments),
            (create("/a", 5), ErrorCode::Unimplemented),
        ] {
            let got = prepare(&Request::Create(req), &ctx(&auth));
            assert_eq!(got, Some(Err(Rejected::Error(want))));
        }
    }

    #[test]
    fn full_path_rules_are_left_to_the_tree() {
        let auth = [];
        let got = prepare(&Request::Create(create("/a/", 0)), &ctx(&auth));
        assert!(matches!(got, Some(Ok(_))), "{got:?}");
    }

    #[test]
    fn sequential_paths_may_end_in_a_slash() {
        let auth = [];
        let got = prepare(&Request::Create(create("/a/", 2)), &ctx(&auth));
        assert!(matches!(got, Some(Ok(_))), "{got:?}");
    }

    #[test]
    fn empty_acl_is_invalid() {
        let auth = [];
        let mut req = create("/a", 0);
        req.acl.clear();
        assert_eq!(
            prepare(&Request::Create(req), &ctx(&auth)),
            Some(Err(Rejected::Error(ErrorCode::InvalidAcl)))
        );
    }

    #[test]
    fn a_multi_reports_the_failing_op_in_place() {
        let auth = [];
        let ops = vec![
            MultiOp::Check {
                path: "/a".into(),
                version: 1,
            },
            MultiOp::SetData {
                path: "bad".into(),
                data: vec![],
                version: -1,
            },
            MultiOp::Delete {
                path: "/b".into(),
                version: -1,
            },
        ];
        let got = prepare(&Request::Multi(ops), &ctx(&auth));
        assert_eq!(
            got,
            Some(Err(Rejected::Multi(vec![
                MultiResult::Error { err: 0 },
                MultiResult::Error { err: -8 },
                MultiResult::Error { err: -2 },
            ])))
        );
    }

    #[test]
    fn reads_are_not_prepared() {
        let auth = [];
        let req = Request::GetData {
            path: "/a".into(),
            watch: false,
        };
        assert_eq!(prepare(&req, &ctx(&auth)), None);
    }
}
