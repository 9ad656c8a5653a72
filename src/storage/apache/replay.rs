//! Replays Apache's logged transactions onto a [`DataTree`] with the outcome
//! Apache's own replay (`FileTxnSnapLog.processTransaction`, then
//! `DataTree.processTxn`) gives.
//!
//! Each transaction goes through [`DataTree::apply`] with its Apache zxid,
//! time and client, as `super` (Apache checked ACLs before logging it). Apache
//! replays differently from how it first applies a request, and this module
//! makes up the difference:
//!
//! - The log records results, not requests: a setData carries the new
//!   version, a create the parent's new cversion. They are applied with "any
//!   version" and the stored values are then set to the logged ones.
//! - Snapshots are fuzzy: taken while transactions were being applied, so
//!   the first transactions after a snapshot's zxid may already be partly in
//!   it. Apache ignores the failures this causes (`NoNode`, `NodeExists`)
//!   but keeps some of the side effects: a create of an existing node still
//!   sets its ACL and (for opcode `create`) raises the parent's cversion and
//!   pzxid; a delete of a missing node still raises the parent's pzxid; a
//!   create never lowers the parent's cversion.
//! - A multi is replayed op by op, each op's failure ignored on its own, and
//!   not at all if the leader logged it as failed.
//! - An ephemeral whose session is not in the session table is still
//!   created; Apache deletes such orphans after loading
//!   ([`Replayer::finish`]).

use crate::proto::{Acl, CreateMode, Id};
use crate::tree::{parent_of, ttl_owner, DataTree, PersistedStat, CONTAINER_OWNER};
use crate::txn::{Applied, CreateOp, Txn, TxnOp, TxnResult};

use super::records::{CreateKind, LoggedCreate, LoggedTxn, TxnHeader};

/// A transaction Apache would replay but this tree cannot represent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ReplayError {
    #[error("create of {path:?} carries TTL {ttl} ms, outside 1..={max}", max = crate::tree::MAX_TTL_MS)]
    BadTtl { path: String, ttl: i64 },
    #[error("node {path:?} cannot be stored: {source}")]
    Restore {
        path: String,
        source: crate::tree::RestoreError,
    },
    #[error("{what} of {path:?} failed here with {code:?} although Apache applies it")]
    Refused {
        what: &'static str,
        path: String,
        code: crate::proto::ErrorCode,
    },
}

/// Applies Apache transactions to a tree.
pub(super) struct Replayer<'t> {
    tree: &'t mut DataTree,
    auth: Vec<Id>,
}

impl<'t> Replayer<'t> {
    pub fn new(tree: &'t mut DataTree) -> Self {
        Replayer {
            tree,
            auth: vec![Id::new("super", "")],
        }
    }

    /// Replays one logged transaction; afterwards the tree's last zxid is the
    /// transaction's.
    pub fn replay(&mut self, header: &TxnHeader, txn: &LoggedTxn) -> Result<(), ReplayError> {
        match txn {
            LoggedTxn::Multi(ops) => {
                // The leader logs a failed multi with every op turned into an
                // error; Apache then applies none of it.
                if !ops.iter().any(|op| matches!(op, LoggedTxn::Error)) {
                    for op in ops {
                        self.replay_op(header, op)?;
                    }
                }
            }
            op => self.replay_op(header, op)?,
        }
        self.tree.set_last_zxid(header.zxid);
        Ok(())
    }

    fn replay_op(&mut self, header: &TxnHeader, txn: &LoggedTxn) -> Result<(), ReplayError> {
        match txn {
            LoggedTxn::CreateSession { timeout_ms } => {
                self.apply(
                    header,
                    TxnOp::CreateSession {
                        timeout_ms: *timeout_ms,
                    },
                );
            }
            LoggedTxn::CloseSession { paths } => {
                // Apache deletes the paths the leader listed, whoever owns
                // them now, then whatever ephemerals the session still has.
                for path in paths.iter().flatten() {
                    self.delete(header, path)?;
                }
                self.apply(header, TxnOp::CloseSession);
            }
            LoggedTxn::Create(create) => self.create(header, create)?,
            LoggedTxn::Delete { path } => self.delete(header, path)?,
            LoggedTxn::SetData {
                path,
                data,
                version,
            } => self.set_data(header, path, data, *version)?,
            LoggedTxn::SetAcl { path, acl, version } => {
                self.set_acl(header, path, acl, *version)?
            }
            LoggedTxn::Check | LoggedTxn::Error | LoggedTxn::Multi(_) => {}
        }
        Ok(())
    }

    /// Deletes the ephemerals of sessions missing from the session table, as
    /// Apache does after loading (`ZooKeeperServer.loadData`), at the last
    /// zxid. Returns how many sessions that concerned.
    pub fn finish(&mut self) -> usize {
        let last_zxid = self.tree.last_zxid();
        let orphaned: Vec<i64> = self
            .tree
            .ephemerals_by_session()
            .map(|(session, _)| session)
            .filter(|&session| self.tree.session_timeout(session).is_none())
            .collect();
        for &session in &orphaned {
            let header = TxnHeader {
                client_id: session,
                cxid: 0,
                zxid: last_zxid,
                time: 0,
                kind: -11,
            };
            self.apply(&header, TxnOp::CloseSession);
        }
        self.tree.set_last_zxid(last_zxid);
        orphaned.len()
    }

    /// Applies `op` as if Apache's leader had sequenced it at the header's zxid.
    fn apply(&mut self, header: &TxnHeader, op: TxnOp) -> Applied {
        self.tree.set_last_zxid(header.zxid.wrapping_sub(1));
        self.tree.apply(&Txn {
            session_id: header.client_id,
            cxid: header.cxid,
            time_ms: header.time,
            auth: self.auth.clone(),
            op,
        })
    }

    fn create(&mut self, header: &TxnHeader, create: &LoggedCreate) -> Result<(), ReplayError> {
        let path = create.path.as_str();
        let Some(parent_path) = parent_of(path) else {
            return Ok(());
        };
        let Some(parent) = self.tree.node(parent_path) else {
            // NoNode: ignored.
            return Ok(());
        };
        let parent_before = parent.persisted_stat();
        let (mode, ttl_ms, owner) = match create.kind {
            CreateKind::Persistent => (CreateMode::Persistent, 0, 0),
            CreateKind::Ephemeral => (CreateMode::Ephemeral, 0, header.client_id),
            CreateKind::Container => (CreateMode::Container, 0, CONTAINER_OWNER),
            CreateKind::Ttl(ttl) => {
                let owner = ttl_owner(ttl).ok_or_else(|| ReplayError::BadTtl {
                    path: path.to_owned(),
                    ttl,
                })?;
                (CreateMode::PersistentWithTtl, ttl, owner)
            }
        };

        if let Some(existing) = self.tree.node(path) {
            // Apache sets the ACL before it notices the node exists.
            if existing.acl()[..] != create.acl[..] {
                let data = existing.data().to_vec();
                let stat = existing.persisted_stat();
                self.restore(path, &data, &create.acl, stat)?;
            }
            if create.plain_create {
                self.raise_parent_cversion(header, parent_path, create.parent_cversion)?;
            }
            return Ok(());
        }

        let applied = self.apply(
            header,
            TxnOp::Create(CreateOp {
                path: path.to_owned(),
                data: create.data.clone(),
                acl: create.acl.clone(),
                mode,
                ttl_ms,
            }),
        );
        if matches!(applied.result, TxnResult::Created { .. }) {
            // Our create normalises the ACL; Apache stores the logged one.
            let stored_acl_differs = self
                .tree
                .node(path)
                .is_some_and(|node| node.acl()[..] != create.acl[..]);
            if stored_acl_differs {
                if let Some(node) = self.tree.node(path) {
                    let data = node.data().to_vec();
                    let stat = node.persisted_stat();
                    self.restore(path, &data, &create.acl, stat)?;
                }
            }
        } else {
            // Checks Apache made before logging (a live session for an
            // ephemeral, path and ACL syntax) are not made again on replay.
            let stat = PersistedStat {
                czxid: header.zxid,
                mzxid: header.zxid,
                ctime: header.time,
                mtime: header.time,
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner: owner,
                pzxid: header.zxid,
            };
            self.restore(path, &create.data, &create.acl, stat)?;
        }

        // The parent's cversion becomes the logged one, but never goes down,
        // and its pzxid moves only with it.
        let target = if create.parent_cversion == -1 {
            parent_before.cversion.wrapping_add(1)
        } else {
            create.parent_cversion
        };
        let mut expected = parent_before;
        if target > parent_before.cversion {
            expected.cversion = target;
            expected.pzxid = header.zxid;
        }
        self.set_stat(parent_path, |stat| {
            stat.cversion = expected.cversion;
            stat.pzxid = expected.pzxid;
        })
    }

    /// Apache's `setCversionPzxid`: raises a parent's cversion (and sets its
    /// pzxid) when a replayed create finds its node already there.
    fn raise_parent_cversion(
        &mut self,
        header: &TxnHeader,
        parent_path: &str,
        cversion: i32,
    ) -> Result<(), ReplayError> {
        self.set_stat(parent_path, |stat| {
            let target = if cversion == -1 {
                stat.cversion.wrapping_add(1)
            } else {
                cversion
            };
            if target > stat.cversion {
                stat.cversion = target;
                stat.pzxid = header.zxid;
            }
        })
    }

    fn delete(&mut self, header: &TxnHeader, path: &str) -> Result<(), ReplayError> {
        let Some(parent_path) = parent_of(path) else {
            return Ok(());
        };
        if self.tree.node(parent_path).is_none() {
            return Ok(());
        }
        let Some(node) = self.tree.node(path) else {
            // Apache raises the parent's pzxid before finding the child gone.
            return self.set_stat(parent_path, |stat| {
                if header.zxid > stat.pzxid {
                    stat.pzxid = header.zxid;
                }
            });
        };
        if node.num_children() > 0 {
            // Only a fuzzy snapshot gets here. Apache unlinks the node and
            // leaves its children unreachable, gone from the next snapshot;
            // here they go at once.
            let mut doomed = Vec::new();
            self.tree.for_each_node(|p, _| {
                if p.len() > path.len() && p.starts_with(path) && p.as_bytes()[path.len()] == b'/' {
                    doomed.push(p.to_owned());
                }
            });
            for child in doomed.iter().rev() {
                self.apply(
                    header,
                    TxnOp::Delete {
                        path: child.clone(),
                        version: -1,
                    },
                );
            }
        }
        let applied = self.apply(
            header,
            TxnOp::Delete {
                path: path.to_owned(),
                version: -1,
            },
        );
        match applied.result {
            TxnResult::Error(code) => Err(ReplayError::Refused {
                what: "delete",
                path: path.to_owned(),
                code,
            }),
            _ => Ok(()),
        }
    }

    fn set_data(
        &mut self,
        header: &TxnHeader,
        path: &str,
        data: &[u8],
        version: i32,
    ) -> Result<(), ReplayError> {
        if self.tree.node(path).is_none() {
            return Ok(());
        }
        let applied = self.apply(
            header,
            TxnOp::SetData {
                path: path.to_owned(),
                data: data.to_vec(),
                version: -1,
            },
        );
        if matches!(applied.result, TxnResult::DataSet { .. }) {
            return self.set_stat(path, |stat| stat.version = version);
        }
        if let Some(node) = self.tree.node(path) {
            let acl = node.acl().to_vec();
            let mut stat = node.persisted_stat();
            stat.version = version;
            stat.mzxid = header.zxid;
            stat.mtime = header.time;
            self.restore(path, data, &acl, stat)?;
        }
        Ok(())
    }

    fn set_acl(
        &mut self,
        header: &TxnHeader,
        path: &str,
        acl: &[Acl],
        version: i32,
    ) -> Result<(), ReplayError> {
        if self.tree.node(path).is_none() {
            return Ok(());
        }
        self.apply(
            header,
            TxnOp::SetAcl {
                path: path.to_owned(),
                acl: acl.to_vec(),
                version: -1,
            },
        );
        // Whether or not our checks let it through, Apache stores exactly the
        // logged list and version.
        if let Some(node) = self.tree.node(path) {
            let mut stat = node.persisted_stat();
            if node.acl()[..] != acl[..] || stat.aversion != version {
                stat.aversion = version;
                let data = node.data().to_vec();
                self.restore(path, &data, acl, stat)?;
            }
        }
        Ok(())
    }

    /// Changes a node's stored stat, keeping its data and ACL.
    fn set_stat(
        &mut self,
        path: &str,
        change: impl FnOnce(&mut PersistedStat),
    ) -> Result<(), ReplayError> {
        let Some(node) = self.tree.node(path) else {
            return Ok(());
        };
        let before = node.persisted_stat();
        let mut stat = before;
        change(&mut stat);
        if stat != before {
            let data = node.data().to_vec();
            let acl = node.acl().to_vec();
            self.restore(path, &data, &acl, stat)?;
        }
        Ok(())
    }

    fn restore(
        &mut self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        stat: PersistedStat,
    ) -> Result<(), ReplayError> {
        self.tree
            .restore_node(path, data, acl, stat)
            .map_err(|source| ReplayError::Restore {
                path: path.to_owned(),
                source,
            })
    }
}
