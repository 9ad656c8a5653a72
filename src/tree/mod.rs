//! The data tree: znodes, the replicated session table, and the deterministic
//! application of transactions, with Apache ZooKeeper 3.9's semantics.
//!
//! [`DataTree::apply`] does what Apache splits between `PrepRequestProcessor`
//! (the checks: paths, versions, ACLs, quotas, ephemeral rules) and
//! `DataTree.processTxn` (the mutation). Applying transactions one at a time
//! against the committed tree gives the answers Apache's preparation gives
//! against its outstanding changes, and since each [`Txn`] carries its own time
//! and the session's identities, every replica gets the same answers.
//!
//! The tree does no I/O, reads no clock and fires no watches: it reports
//! [`Change`]s for the watch manager.
//!
//! Apache quirks kept on purpose, because clients can observe them:
//! - the stat's `cversion` is derived: the tree stores the number of child
//!   creations (which also numbers sequential children) and reports
//!   `2 * creations - numChildren`, so a fresh `/` shows -1 and `/zookeeper` -2;
//! - containers and TTL nodes show an `ephemeralOwner` of 0;
//! - `/zookeeper/config` starts with `aversion` -1;
//! - the node count and `approximate_data_size` count the root twice, as
//!   Apache's node map holds it under both `""` and `"/"`;
//! - quota usage rewrites do not count towards `approximate_data_size` and do
//!   not touch the usage node's stat.

mod acl_cache;
pub mod ephemeral;
mod frozen;
mod path;
pub mod quota;
mod restore;
mod store;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::acl;
use crate::proto::{perms, Acl, ErrorCode, Id, Stat};
use crate::txn::{Applied, Change, ChangeKind, CreateOp, Txn, TxnOp, TxnResult};

use acl_cache::{AclCache, AclRef};
pub use ephemeral::{ttl_owner, NodeKind, CONTAINER_OWNER, MAX_TTL_MS};
pub use frozen::{FrozenNode, FrozenTree};
use path::{java_length, name_of, top_namespace};
pub use path::{parent_of, validate_path};
use quota::{quota_path_of_parent, LIMITS_NODE, QUOTA_ROOT, STATS_NODE};
pub use quota::{QuotaMetrics, StatsTrack};
pub use restore::Restorer;
use store::{NodeId, NodeStore, Slab, ROOT};

/// The reserved subtree and its fixed children.
pub const ZOOKEEPER_NODE: &str = "/zookeeper";
/// Holds the dynamic ensemble configuration; world-readable only.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// Settings that change how transactions are judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeOptions {
    /// Apache's `skipACL`: every ACL check passes.
    pub skip_acl: bool,
    /// Apache's `enforceQuota`: creates and setData that would pass a hard
    /// quota limit fail with `QuotaExceeded`.
    pub enforce_quota: bool,
}

/// A node's stored metadata, as Apache persists it (`StatPersisted`): the raw
/// `ephemeral_owner` and the stored `cversion` (child creations), from which
/// the client-visible [`Stat`] is derived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistedStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

/// Why [`DataTree::restore_node`] refused a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("path {0:?} is not absolute")]
    InvalidPath(String),
    #[error("parent of {0:?} has not been restored")]
    MissingParent(String),
    #[error("too many nodes")]
    Full,
    #[error("{0:?} is listed twice")]
    Duplicate(String),
}

/// The tree of znodes and the session table.
pub struct DataTree {
    options: TreeOptions,
    store: NodeStore,
    acls: AclCache,
    last_zxid: i64,
    sessions: BTreeMap<i64, i32>,
    ephemerals: BTreeMap<i64, BTreeSet<NodeId>>,
    ephemeral_count: usize,
    containers: BTreeSet<NodeId>,
    ttls: BTreeSet<NodeId>,
    /// Paths with a quota: those with a `zookeeper_limits` node under
    /// `/zookeeper/quota`.
    quota_paths: BTreeSet<String>,
    /// Apache's cached `nodeDataSize`.
    approximate_data_size: i64,
    soft_quota_exceeded: u64,
    hard_quota_exceeded: BTreeMap<String, u64>,
}

/// How to put the tree back the way it was if a multi fails. Entries are
/// undone in reverse order, so each one finds the tree exactly as it left it.
enum Undo {
    /// A new node was attached: detach and free it.
    Attached(NodeId),
    /// A node was detached: put it back before its old successor. Its slot
    /// is freed only on commit.
    Detached {
        id: NodeId,
        before: NodeId,
    },
    Stat {
        id: NodeId,
        stat: PersistedStat,
    },
    Bytes {
        id: NodeId,
        bytes: Box<[u8]>,
    },
    Acl {
        id: NodeId,
        acl: AclRef,
    },
}

/// The transaction being applied.
struct Apply<'t> {
    zxid: i64,
    time_ms: i64,
    session_id: i64,
    auth: &'t [Id],
    changes: Vec<Change>,
    journal: Vec<Undo>,
}

impl DataTree {
    /// A tree as Apache creates it: `/`, `/zookeeper`, `/zookeeper/quota`
    /// (all open, all stats zero) and `/zookeeper/config` (world read-only,
    /// aversion -1), with last zxid 0.
    pub fn new(options: TreeOptions) -> DataTree {
        let mut acls = AclCache::new();
        let open = acls.intern(&Acl::open_unsafe());
        acls.add_user(open);
        let mut tree = DataTree {
            options,
            store: NodeStore::new(&PersistedStat::default(), open),
            acls,
            last_zxid: 0,
            sessions: BTreeMap::new(),
            ephemerals: BTreeMap::new(),
            ephemeral_count: 0,
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            quota_paths: BTreeSet::new(),
            approximate_data_size: 0,
            soft_quota_exceeded: 0,
            hard_quota_exceeded: BTreeMap::new(),
        };
        let config_stat = PersistedStat {
            aversion: -1,
            ..PersistedStat::default()
        };
        let zero = PersistedStat::default();
        let system: [(&str, Vec<Acl>, &PersistedStat); 3] = [
            (ZOOKEEPER_NODE, Acl::open_unsafe(), &zero),
            (QUOTA_ROOT, Acl::open_unsafe(), &zero),
            (CONFIG_NODE, Acl::read_unsafe(), &config_stat),
        ];
        for (path, acl, stat) in system {
            // Cannot fail: each parent precedes its children.
            let _ = tree.restore_node(path, b"", &acl, *stat);
        }
        tree.finish_restore();
        tree
    }

    pub fn options(&self) -> TreeOptions {
        self.options
    }

    /// Changes how later transactions are judged (an imported tree is
    /// replayed with the settings of the server that wrote it, then served
    /// with ours).
    pub fn set_options(&mut self, options: TreeOptions) {
        self.options = options;
    }

    /// The zxid of the last applied transaction.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Sets the last zxid: after restoring a snapshot, or to start a new
    /// epoch (`epoch << 32`).
    pub fn set_last_zxid(&mut self, zxid: i64) {
        self.last_zxid = zxid;
    }

    /// Applies one transaction. It gets zxid `last_zxid() + 1` whether or not
    /// it succeeds. A failed transaction (including any failed op of a multi)
    /// leaves the tree exactly as it was and reports no changes.
    pub fn apply(&mut self, txn: &Txn) -> Applied {
        let zxid = self.last_zxid.wrapping_add(1);
        self.last_zxid = zxid;
        let mut cx = Apply {
            zxid,
            time_ms: txn.time_ms,
            session_id: txn.session_id,
            auth: &txn.auth,
            changes: Vec::new(),
            journal: Vec::new(),
        };
        let size_before = self.approximate_data_size;
        let outcome = match &txn.op {
            TxnOp::Multi(ops) => self.apply_multi(ops, &mut cx),
            op => self.apply_op(op, &mut cx).map_err(TxnResult::Error),
        };
        match outcome {
            Ok(result) => {
                self.commit(cx.journal);
                Applied {
                    zxid,
                    result,
                    changes: cx.changes,
                }
            }
            Err(result) => {
                self.rollback(cx.journal);
                self.approximate_data_size = size_before;
                Applied {
                    zxid,
                    result,
                    changes: Vec::new(),
                }
            }
        }
    }

    fn apply_multi(&mut self, ops: &[TxnOp], cx: &mut Apply<'_>) -> Result<TxnResult, TxnResult> {
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let outcome = match op {
                TxnOp::Create(_)
                | TxnOp::Delete { .. }
                | TxnOp::SetData { .. }
                | TxnOp::Check { .. } => self.apply_op(op, cx),
                // Apache cannot even decode other ops inside a multi.
                _ => Err(ErrorCode::MarshallingError),
            };
            match outcome {
                Ok(result) => results.push(result),
                Err(code) => {
                    let failed = (0..ops.len())
                        .map(|j| {
                            TxnResult::Error(match j.cmp(&index) {
                                std::cmp::Ordering::Less => ErrorCode::Ok,
                                std::cmp::Ordering::Equal => code,
                                std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                            })
                        })
                        .collect();
                    return Err(TxnResult::Multi(failed));
                }
            }
        }
        Ok(TxnResult::Multi(results))
    }

    fn apply_op(&mut self, op: &TxnOp, cx: &mut Apply<'_>) -> Result<TxnResult, ErrorCode> {
        match op {
            TxnOp::CreateSession { timeout_ms } => {
                self.sessions.insert(cx.session_id, *timeout_ms);
                Ok(TxnResult::SessionCreated)
            }
            TxnOp::CloseSession => {
                self.close_session(cx);
                Ok(TxnResult::SessionClosed)
            }
            TxnOp::Create(create) => self.create(create, cx),
            TxnOp::Delete { path, version } => self.delete(path, *version, cx),
            TxnOp::SetData {
                path,
                data,
                version,
            } => self.set_data(path, data, *version, cx),
            TxnOp::SetAcl { path, acl, version } => self.set_acl(path, acl, *version, cx),
            TxnOp::Check { path, version } => self.check(path, *version, cx),
            TxnOp::DeleteContainer { path } => self.delete_unused(path, false, cx),
            TxnOp::DeleteExpiredTtl { path } => self.delete_unused(path, true, cx),
            TxnOp::Multi(_) => Err(ErrorCode::MarshallingError),
        }
    }

    fn create(&mut self, op: &CreateOp, cx: &mut Apply<'_>) -> Result<TxnResult, ErrorCode> {
        let owner = if op.mode.is_ttl() {
            ttl_owner(op.ttl_ms).ok_or(ErrorCode::BadArguments)?
        } else if op.mode.is_container() {
            CONTAINER_OWNER
        } else if op.mode.is_ephemeral() {
            // Apache checks the session is live before preparing an ephemeral;
            // an ephemeral applied after its session closed would never be
            // deleted.
            if !self.sessions.contains_key(&cx.session_id) {
                return Err(ErrorCode::SessionExpired);
            }
            cx.session_id
        } else {
            0
        };
        let path = op.path.as_str();
        let last_slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = acl::fixup_acl(&op.acl, cx.auth)?;
        let parent_path = &path[..last_slash];
        let parent = self.store.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        self.check_perm(parent, perms::CREATE, cx)?;
        let full_path: Cow<'_, str> = if op.mode.is_sequential() {
            Cow::Owned(format!("{path}{:010}", self.store.get(parent).cversion))
        } else {
            Cow::Borrowed(path)
        };
        validate_path(&full_path, false)?;
        if self.store.lookup(&full_path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if let NodeKind::Ephemeral(_) = NodeKind::of_owner(self.store.get(parent).ephemeral_owner())
        {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        self.check_quota(&full_path, len_i64(&op.data), 1)?;

        let stat = PersistedStat {
            czxid: cx.zxid,
            mzxid: cx.zxid,
            ctime: cx.time_ms,
            mtime: cx.time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: cx.zxid,
        };
        let name = name_of(&full_path);
        let acl_ref = self.acls.intern(&acl);
        let id = self
            .store
            .alloc(parent, name, &op.data, acl_ref, &stat)
            .map_err(|_| ErrorCode::SystemError)?;
        self.save_stat(parent, cx);
        let mut parent_node = self.store.get_mut(parent);
        parent_node.cversion = parent_node.cversion.wrapping_add(1);
        parent_node.set_pzxid(cx.zxid);
        self.attach_node(id);
        cx.journal.push(Undo::Attached(id));
        self.approximate_data_size += java_length(&full_path) as i64 + len_i64(&op.data);
        // Apache reports the stat before any quota bookkeeping rewrites the node.
        let created_stat = self.stat_of(id);

        if name == STATS_NODE {
            if let Some(quota_path) = quota_path_of_parent(parent_path) {
                let quota_path = quota_path.to_owned();
                self.recompute_quota_usage(&quota_path, &mut cx.journal);
            }
        }
        if let Some(prefix) = self.quota_prefix(&full_path) {
            self.add_quota_usage(&prefix, 1, len_i64(&op.data), &mut cx.journal);
        }
        let node_acl = Arc::clone(self.acls.get(acl_ref));
        cx.changes.push(Change {
            path: full_path.clone().into_owned(),
            kind: ChangeKind::Created,
            acl: node_acl,
        });
        cx.changes.push(Change {
            path: display_parent(parent_path).to_owned(),
            kind: ChangeKind::ChildrenChanged,
            acl: Arc::clone(self.node_acl(parent)),
        });
        Ok(TxnResult::Created {
            path: full_path.into_owned(),
            stat: created_stat,
        })
    }

    fn delete(
        &mut self,
        path: &str,
        version: i32,
        cx: &mut Apply<'_>,
    ) -> Result<TxnResult, ErrorCode> {
        let parent_path = deletable_parent(path)?;
        let parent = self.store.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        self.check_perm(parent, perms::DELETE, cx)?;
        let id = self.store.lookup(path).ok_or(ErrorCode::NoNode)?;
        let node = self.store.get(id);
        check_version(node.version, version)?;
        if node.num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove_node(id, path, cx);
        Ok(TxnResult::Deleted)
    }

    /// `DeleteContainer` and `DeleteExpiredTtl`: re-checks that the node still
    /// qualifies (`NoNode`, `NotEmpty`, or `BadVersion` if it is of another
    /// kind or its TTL has not run out) and deletes it without ACL checks.
    fn delete_unused(
        &mut self,
        path: &str,
        ttl: bool,
        cx: &mut Apply<'_>,
    ) -> Result<TxnResult, ErrorCode> {
        deletable_parent(path)?;
        let id = self.store.lookup(path).ok_or(ErrorCode::NoNode)?;
        let node = self.store.get(id);
        if node.num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let qualifies = match NodeKind::of_owner(node.ephemeral_owner()) {
            NodeKind::Container => !ttl,
            NodeKind::Ttl(ttl_ms) => ttl && is_expired(node.mtime(), ttl_ms, cx.time_ms),
            _ => false,
        };
        if !qualifies {
            return Err(ErrorCode::BadVersion);
        }
        self.remove_node(id, path, cx);
        Ok(TxnResult::Deleted)
    }

    fn set_data(
        &mut self,
        path: &str,
        data: &[u8],
        version: i32,
        cx: &mut Apply<'_>,
    ) -> Result<TxnResult, ErrorCode> {
        validate_path(path, false)?;
        let id = self.store.lookup(path).ok_or(ErrorCode::NoNode)?;
        self.check_perm(id, perms::WRITE, cx)?;
        let old_len = len_i64(self.store.get(id).data());
        let new_len = len_i64(data);
        self.check_quota(path, new_len - old_len, 0)?;
        let new_version = check_version(self.store.get(id).version, version)?;
        self.save_stat(id, cx);
        let old = self.store.set_data(id, data);
        cx.journal.push(Undo::Bytes { id, bytes: old });
        let mut node = self.store.get_mut(id);
        node.version = new_version;
        node.set_modified(cx.zxid, cx.time_ms);
        self.approximate_data_size += new_len - old_len;
        if let Some(prefix) = self.quota_prefix(path) {
            self.add_quota_usage(&prefix, 0, new_len - old_len, &mut cx.journal);
        }
        cx.changes.push(Change {
            path: path.to_owned(),
            kind: ChangeKind::DataChanged,
            acl: Arc::clone(self.node_acl(id)),
        });
        Ok(TxnResult::DataSet {
            stat: self.stat_of(id),
        })
    }

    fn set_acl(
        &mut self,
        path: &str,
        acl: &[Acl],
        version: i32,
        cx: &mut Apply<'_>,
    ) -> Result<TxnResult, ErrorCode> {
        validate_path(path, false)?;
        let acl = acl::fixup_acl(acl, cx.auth)?;
        let id = self.store.lookup(path).ok_or(ErrorCode::NoNode)?;
        self.check_perm(id, perms::ADMIN, cx)?;
        let new_aversion = check_version(self.store.get(id).aversion, version)?;
        self.save_stat(id, cx);
        let new_ref = self.acls.intern(&acl);
        let old_ref = self.store.get(id).acl;
        if new_ref != old_ref {
            self.swap_acl(id, new_ref);
            cx.journal.push(Undo::Acl { id, acl: old_ref });
        }
        self.store.get_mut(id).aversion = new_aversion;
        Ok(TxnResult::AclSet {
            stat: self.stat_of(id),
        })
    }

    fn check(
        &mut self,
        path: &str,
        version: i32,
        cx: &mut Apply<'_>,
    ) -> Result<TxnResult, ErrorCode> {
        validate_path(path, false)?;
        let id = self.store.lookup(path).ok_or(ErrorCode::NoNode)?;
        self.check_perm(id, perms::READ, cx)?;
        check_version(self.store.get(id).version, version)?;
        Ok(TxnResult::Checked)
    }

    fn close_session(&mut self, cx: &mut Apply<'_>) {
        let owned: Vec<NodeId> = self
            .ephemerals
            .get(&cx.session_id)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        let mut doomed: Vec<(String, NodeId)> = owned
            .into_iter()
            .map(|id| (self.store.path_of(id), id))
            .collect();
        doomed.sort();
        for (path, id) in doomed {
            self.remove_node(id, &path, cx);
        }
        self.sessions.remove(&cx.session_id);
    }

    /// Deletes a childless node, updating its parent, the quota usage and the
    /// data size, and reporting the changes.
    fn remove_node(&mut self, id: NodeId, path: &str, cx: &mut Apply<'_>) {
        let parent = self.store.get(id).parent();
        self.save_stat(parent, cx);
        let mut parent_node = self.store.get_mut(parent);
        if cx.zxid > parent_node.pzxid() {
            parent_node.set_pzxid(cx.zxid);
        }
        let node_acl = Arc::clone(self.node_acl(id));
        let data_len = len_i64(self.store.get(id).data());
        self.unregister(id);
        let before = self.store.detach(id);
        cx.journal.push(Undo::Detached { id, before });
        self.approximate_data_size -= java_length(path) as i64 + data_len;
        if let Some(prefix) = self.quota_prefix(path) {
            self.add_quota_usage(&prefix, -1, -data_len, &mut cx.journal);
        }
        cx.changes.push(Change {
            path: path.to_owned(),
            kind: ChangeKind::Deleted,
            acl: node_acl,
        });
        cx.changes.push(Change {
            path: parent_of(path).unwrap_or("/").to_owned(),
            kind: ChangeKind::ChildrenChanged,
            acl: Arc::clone(self.node_acl(parent)),
        });
    }

    fn check_perm(&self, id: NodeId, perm: i32, cx: &Apply<'_>) -> Result<(), ErrorCode> {
        if acl::check(self.node_acl(id), perm, cx.auth, self.options.skip_acl) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    fn save_stat(&self, id: NodeId, cx: &mut Apply<'_>) {
        cx.journal.push(Undo::Stat {
            id,
            stat: self.store.get(id).persisted(),
        });
    }

    fn node_acl(&self, id: NodeId) -> &Arc<[Acl]> {
        self.acls.get(self.store.get(id).acl)
    }

    fn swap_acl(&mut self, id: NodeId, new_ref: AclRef) {
        let old_ref = std::mem::replace(&mut self.store.get_mut(id).acl, new_ref);
        self.acls.add_user(new_ref);
        self.acls.remove_user(old_ref);
    }

    fn attach_node(&mut self, id: NodeId) {
        self.store.attach(id);
        self.register(id);
    }

    /// Adds an attached node to the indexes derived from it.
    fn register(&mut self, id: NodeId) {
        let node = self.store.get(id);
        self.acls.add_user(node.acl);
        match NodeKind::of_owner(node.ephemeral_owner()) {
            NodeKind::Persistent => {}
            NodeKind::Ephemeral(session) => {
                self.ephemerals.entry(session).or_default().insert(id);
                self.ephemeral_count += 1;
            }
            NodeKind::Container => {
                self.containers.insert(id);
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(id);
            }
        }
        if let Some(quota_path) = self.limits_node_quota_path(id) {
            self.quota_paths.insert(quota_path);
        }
    }

    /// Removes a node from the indexes derived from it, before it is detached.
    fn unregister(&mut self, id: NodeId) {
        let node = self.store.get(id);
        self.acls.remove_user(node.acl);
        match NodeKind::of_owner(node.ephemeral_owner()) {
            NodeKind::Persistent => {}
            NodeKind::Ephemeral(session) => {
                if let Some(ids) = self.ephemerals.get_mut(&session) {
                    if ids.remove(&id) {
                        self.ephemeral_count -= 1;
                    }
                    if ids.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(&id);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(&id);
            }
        }
        if let Some(quota_path) = self.limits_node_quota_path(id) {
            self.quota_paths.remove(&quota_path);
        }
    }

    /// For a `zookeeper_limits` node under `/zookeeper/quota`, the path its
    /// quota applies to.
    fn limits_node_quota_path(&self, id: NodeId) -> Option<String> {
        let node = self.store.get(id);
        if node.name() != LIMITS_NODE {
            return None;
        }
        let parent_path = self.store.path_of(node.parent());
        quota_path_of_parent(&parent_path).map(str::to_owned)
    }

    fn commit(&mut self, journal: Vec<Undo>) {
        for undo in journal {
            if let Undo::Detached { id, .. } = undo {
                self.store.free(id);
            }
        }
        self.acls.purge_unused();
    }

    fn rollback(&mut self, journal: Vec<Undo>) {
        for undo in journal.into_iter().rev() {
            match undo {
                Undo::Attached(id) => {
                    self.unregister(id);
                    self.store.detach(id);
                    self.store.free(id);
                }
                Undo::Detached { id, before } => {
                    self.store.attach_before(id, before);
                    self.register(id);
                }
                Undo::Stat { id, stat } => self.store.get_mut(id).set_persisted(&stat),
                Undo::Bytes { id, bytes } => self.store.restore_bytes(id, bytes),
                Undo::Acl { id, acl } => self.swap_acl(id, acl),
            }
        }
        self.acls.purge_unused();
    }

    // ----- quotas -----

    /// The longest quota'd path that is `path` or one of its ancestors
    /// (Apache's `getMaxPrefixWithQuota`; never the root).
    fn quota_prefix(&self, path: &str) -> Option<String> {
        if self.quota_paths.is_empty() {
            return None;
        }
        let mut candidate = path;
        loop {
            if candidate.len() > 1 && self.quota_paths.contains(candidate) {
                return Some(candidate.to_owned());
            }
            match candidate.rfind('/') {
                Some(0) | None => return None,
                Some(i) => candidate = &candidate[..i],
            }
        }
    }

    /// Apache's `checkQuota` for a create (`count_diff` 1) or setData
    /// (`count_diff` 0), when quotas are enforced. Usage past a soft limit
    /// only counts; past a hard limit it fails. Malformed quota nodes fail the
    /// request with `MarshallingError`, as Apache's parse exception does.
    fn check_quota(
        &mut self,
        path: &str,
        bytes_diff: i64,
        count_diff: i64,
    ) -> Result<(), ErrorCode> {
        if !self.options.enforce_quota {
            return Ok(());
        }
        let Some(prefix) = self.quota_prefix(path) else {
            return Ok(());
        };
        let Some(limits_id) = self.store.lookup(&quota::limits_path(&prefix)) else {
            return Ok(());
        };
        let limits = StatsTrack::parse(self.store.get(limits_id).data())
            .map_err(|_| ErrorCode::MarshallingError)?;
        let check_count =
            count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(stats_id) = self.store.lookup(&quota::stats_path(&prefix)) else {
            return Ok(());
        };
        let usage = StatsTrack::parse(self.store.get(stats_id).data())
            .map_err(|_| ErrorCode::MarshallingError)?;
        let checks = [
            (
                check_count,
                usage.count(),
                count_diff,
                limits.count_hard_limit(),
                limits.count(),
            ),
            (
                check_bytes,
                usage.bytes(),
                bytes_diff,
                limits.byte_hard_limit(),
                limits.bytes(),
            ),
        ];
        for (enabled, current, diff, hard, soft) in checks {
            if !enabled {
                continue;
            }
            let limit = if hard > -1 { hard } else { soft };
            if current.wrapping_add(diff) <= limit {
                continue;
            }
            if hard > -1 {
                if let Some(namespace) = top_namespace(path) {
                    *self
                        .hard_quota_exceeded
                        .entry(namespace.to_owned())
                        .or_default() += 1;
                }
                return Err(ErrorCode::QuotaExceeded);
            }
            self.soft_quota_exceeded += 1;
        }
        Ok(())
    }

    /// Adds to a quota's usage node (Apache's `updateQuotaStat`). A missing
    /// or unreadable usage node is left alone.
    fn add_quota_usage(
        &mut self,
        prefix: &str,
        count_diff: i64,
        bytes_diff: i64,
        journal: &mut Vec<Undo>,
    ) {
        let Some(id) = self.store.lookup(&quota::stats_path(prefix)) else {
            return;
        };
        let Ok(mut usage) = StatsTrack::parse(self.store.get(id).data()) else {
            return;
        };
        usage.add(count_diff, bytes_diff);
        let old = self.store.set_data(id, &usage.to_bytes());
        journal.push(Undo::Bytes { id, bytes: old });
    }

    /// Counts the quota'd subtree afresh into its usage node (Apache's
    /// `updateQuotaForPath`, run when the usage node is created).
    fn recompute_quota_usage(&mut self, quota_path: &str, journal: &mut Vec<Undo>) {
        let Some(stats_id) = self.store.lookup(&quota::stats_path(quota_path)) else {
            return;
        };
        let (count, bytes) = self.subtree_usage(quota_path);
        let old = self
            .store
            .set_data(stats_id, &StatsTrack::usage(count, bytes).to_bytes());
        journal.push(Undo::Bytes {
            id: stats_id,
            bytes: old,
        });
    }

    /// Nodes and data bytes in the subtree at `path` (itself included).
    fn subtree_usage(&self, path: &str) -> (i64, i64) {
        let Some(top) = self.store.lookup(path) else {
            return (0, 0);
        };
        let mut count = 0i64;
        let mut bytes = 0i64;
        let mut pending = vec![top];
        while let Some(id) = pending.pop() {
            count += 1;
            bytes += len_i64(self.store.get(id).data());
            pending.extend(self.store.children(id));
        }
        (count, bytes)
    }

    // ----- reads -----

    /// The node at `path`, if any. Lookups are exact: `/a/` is not `/a`.
    /// As in Apache's node map, `""` names the root.
    pub fn node(&self, path: &str) -> Option<NodeRef<'_>> {
        self.store.lookup(path).map(|id| NodeRef { tree: self, id })
    }

    /// The number of nodes below `path` (Apache's `getAllChildrenNumber`), or
    /// `None` if there is no such node.
    pub fn count_descendants(&self, path: &str) -> Option<i32> {
        let id = self.store.lookup(path)?;
        let nodes = self.store_node_count();
        let count = match path {
            // Apache counts the keys starting with "/": every node once.
            "" => nodes,
            "/" => nodes - 1,
            _ => {
                let mut count = 0usize;
                let mut pending: Vec<NodeId> = self.store.children(id).collect();
                while let Some(next) = pending.pop() {
                    count += 1;
                    pending.extend(self.store.children(next));
                }
                count
            }
        };
        Some(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// Paths of the ephemeral nodes `session_id` owns, sorted.
    pub fn ephemerals(&self, session_id: i64) -> Vec<String> {
        let mut paths: Vec<String> = self
            .ephemerals
            .get(&session_id)
            .map(|ids| ids.iter().map(|&id| self.store.path_of(id)).collect())
            .unwrap_or_default();
        paths.sort();
        paths
    }

    /// Every session owning ephemerals, in session id order, with its sorted
    /// ephemeral paths (for the `dump` command).
    pub fn ephemerals_by_session(&self) -> impl Iterator<Item = (i64, Vec<String>)> + '_ {
        self.ephemerals
            .keys()
            .map(|&session| (session, self.ephemerals(session)))
    }

    /// The replicated session table: `(session id, timeout in ms)` in id order.
    pub fn sessions(&self) -> impl Iterator<Item = (i64, i32)> + '_ {
        self.sessions.iter().map(|(&id, &timeout)| (id, timeout))
    }

    pub fn session_timeout(&self, session_id: i64) -> Option<i32> {
        self.sessions.get(&session_id).copied()
    }

    fn store_node_count(&self) -> usize {
        // Slots awaiting commit are never visible between transactions.
        self.store.live()
    }

    /// The node count as Apache reports it (`srvr`, `mntr`): one more than
    /// the number of nodes, since Apache's map holds the root twice.
    pub fn node_count(&self) -> usize {
        self.store_node_count() + 1
    }

    /// Ephemeral nodes across all sessions.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemeral_count
    }

    /// Apache's `cachedApproximateDataSize`: path lengths (UTF-16 units) plus
    /// data lengths, as maintained by creates, deletes and setData.
    pub fn approximate_data_size(&self) -> u64 {
        u64::try_from(self.approximate_data_size).unwrap_or(0)
    }

    /// Distinct ACL lists in use.
    pub fn acl_cache_size(&self) -> usize {
        self.acls.len()
    }

    /// How often a soft quota limit has been passed (Apache only logs these).
    pub fn soft_quota_exceeded_count(&self) -> u64 {
        self.soft_quota_exceeded
    }

    /// Requests refused for a hard quota limit, by top-level namespace
    /// (Apache's `quota_exceeded_error_per_namespace`).
    pub fn quota_exceeded_by_namespace(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.hard_quota_exceeded
            .iter()
            .map(|(ns, &n)| (ns.as_str(), n))
    }

    /// Quota limits and usage summed per top-level namespace, from the leaf
    /// nodes under `/zookeeper/quota`, as Apache's `QuotaMetricsUtils` reads
    /// them. Unreadable quota nodes are skipped.
    pub fn quota_metrics(&self) -> QuotaMetrics {
        let mut metrics = QuotaMetrics::default();
        let Some(top) = self.store.lookup(QUOTA_ROOT) else {
            return metrics;
        };
        let mut pending = vec![(top, QUOTA_ROOT.to_owned())];
        while let Some((id, path)) = pending.pop() {
            let mut children = self.store.children(id).peekable();
            if children.peek().is_some() {
                for child in children {
                    pending.push((child, format!("{path}/{}", self.store.get(child).name())));
                }
                continue;
            }
            let Some(namespace) = path.strip_prefix(QUOTA_ROOT).and_then(top_namespace) else {
                continue;
            };
            let Ok(track) = StatsTrack::parse(self.store.get(id).data()) else {
                continue;
            };
            let hard_or_soft = |hard: i64, soft: i64| if hard > -1 { hard } else { soft };
            let add = |map: &mut BTreeMap<String, i64>, value: i64| {
                *map.entry(namespace.to_owned()).or_default() += value;
            };
            if path.ends_with(&format!("/{LIMITS_NODE}")) {
                add(
                    &mut metrics.count_limit,
                    hard_or_soft(track.count_hard_limit(), track.count()),
                );
                add(
                    &mut metrics.bytes_limit,
                    hard_or_soft(track.byte_hard_limit(), track.bytes()),
                );
            } else if path.ends_with(&format!("/{STATS_NODE}")) {
                add(&mut metrics.count_usage, track.count());
                add(&mut metrics.bytes_usage, track.bytes());
            }
        }
        metrics
    }

    /// Nodes due for deletion by the server: containers that have had a child
    /// (stored cversion > 0) and have none now, and TTL nodes without children
    /// whose mtime is more than their TTL before `now_ms`. Sorted by path.
    pub fn expired_candidates(&self, now_ms: i64) -> Vec<TxnOp> {
        self.expired_candidates_with(now_ms, None)
    }

    /// [`DataTree::expired_candidates`], also proposing containers that never
    /// had a child once their mtime is more than `never_used_container_ms`
    /// old (Apache's `znode.container.maxNeverUsedIntervalMs`; 0 or `None`
    /// disables this).
    pub fn expired_candidates_with(
        &self,
        now_ms: i64,
        never_used_container_ms: Option<i64>,
    ) -> Vec<TxnOp> {
        let never_used = never_used_container_ms.filter(|&ms| ms != 0);
        let mut candidates: Vec<TxnOp> = Vec::new();
        for &id in &self.containers {
            let node = self.store.get(id);
            if node.num_children() > 0 {
                continue;
            }
            let due = node.cversion > 0
                || never_used.is_some_and(|ms| now_ms.saturating_sub(node.mtime()) > ms);
            if due {
                candidates.push(TxnOp::DeleteContainer {
                    path: self.store.path_of(id),
                });
            }
        }
        for &id in &self.ttls {
            let node = self.store.get(id);
            if node.num_children() > 0 {
                continue;
            }
            if let NodeKind::Ttl(ttl_ms) = NodeKind::of_owner(node.ephemeral_owner()) {
                if is_expired(node.mtime(), ttl_ms, now_ms) {
                    candidates.push(TxnOp::DeleteExpiredTtl {
                        path: self.store.path_of(id),
                    });
                }
            }
        }
        candidates.sort_by(|a, b| candidate_path(a).cmp(candidate_path(b)));
        candidates
    }

    /// Visits every node in pre-order (parents before children, children in
    /// the order [`NodeRef::children`] gives), with its path; the root is `/`.
    pub fn for_each_node(&self, mut visit: impl FnMut(&str, NodeRef<'_>)) {
        walk_preorder(self.store.nodes(), |path, id| {
            visit(path, NodeRef { tree: self, id })
        });
    }

    /// A read-only copy of the replicated state as it is now: every node,
    /// the session table and the last zxid. It shares the node storage with
    /// the tree (copy-on-write), so it costs a reference count per 512 nodes
    /// plus a copy of the session table and of the distinct ACL lists, and
    /// the tree stays free to change while the copy is read elsewhere.
    pub fn freeze(&self) -> FrozenTree {
        FrozenTree::new(
            self.store.freeze(),
            self.acls.freeze(),
            self.sessions().collect(),
            self.last_zxid,
            self.store_node_count(),
        )
    }

    /// Copies the node storage without sharing it, as a plain clone of the
    /// tree would, and returns the number of chunks copied; for measuring
    /// what [`DataTree::freeze`] saves.
    #[cfg(test)]
    pub(crate) fn copy_nodes_deeply(&self) -> usize {
        self.store.nodes().deep_clone().chunk_count()
    }

    // ----- restoring from a snapshot -----

    /// Puts a node back as a snapshot recorded it, replacing it if it exists
    /// (as the system nodes do). Parents must come before their children.
    /// Not a transaction: no zxid, no checks, no changes. Call
    /// [`DataTree::finish_restore`] once all nodes are in.
    pub fn restore_node(
        &mut self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        stat: PersistedStat,
    ) -> Result<(), RestoreError> {
        if !path.starts_with('/') {
            return Err(RestoreError::InvalidPath(path.to_owned()));
        }
        let acl_ref = self.acls.intern(acl);
        if let Some(id) = self.store.lookup(path) {
            self.unregister(id);
            self.store.set_data(id, data);
            let mut node = self.store.get_mut(id);
            node.set_persisted(&stat);
            node.acl = acl_ref;
            self.register(id);
            return Ok(());
        }
        let parent_path =
            parent_of(path).ok_or_else(|| RestoreError::InvalidPath(path.to_owned()))?;
        let parent = self
            .store
            .lookup(parent_path)
            .ok_or_else(|| RestoreError::MissingParent(path.to_owned()))?;
        let name = name_of(path);
        if name.is_empty() {
            return Err(RestoreError::InvalidPath(path.to_owned()));
        }
        let id = self
            .store
            .alloc(parent, name, data, acl_ref, &stat)
            .map_err(|_| RestoreError::Full)?;
        self.attach_node(id);
        Ok(())
    }

    /// Puts a session back into the session table.
    pub fn restore_session(&mut self, session_id: i64, timeout_ms: i32) {
        self.sessions.insert(session_id, timeout_ms);
    }

    /// Recomputes what Apache recomputes after loading a snapshot: quota
    /// usage nodes and the approximate data size.
    pub fn finish_restore(&mut self) {
        let mut discard = Vec::new();
        for quota_path in self.quota_paths.clone() {
            self.recompute_quota_usage(&quota_path, &mut discard);
        }
        drop(discard);
        let mut size = 0i64;
        let mut root_data = 0i64;
        self.for_each_node(|path, node| {
            size += java_length(path) as i64 + len_i64(node.data());
            if path == "/" {
                root_data = len_i64(node.data());
            }
        });
        // The root's alias "" adds its data once more.
        self.approximate_data_size = size + root_data;
        self.acls.purge_unused();
    }

    /// Sets `/zookeeper/config` as Apache does when a quorum peer starts
    /// (`initConfigInZKDatabase`): data, version -1, mzxid = the configuration
    /// version, mtime = `time_ms`. Not a transaction.
    pub fn init_config(&mut self, data: &[u8], config_version: i64, time_ms: i64) {
        let Some(id) = self.store.lookup(CONFIG_NODE) else {
            return;
        };
        let old_len = len_i64(self.store.get(id).data());
        self.store.set_data(id, data);
        self.approximate_data_size += len_i64(data) - old_len;
        let mut node = self.store.get_mut(id);
        node.version = -1;
        node.set_modified(config_version, time_ms);
    }

    fn stat_of(&self, id: NodeId) -> Stat {
        let node = self.store.get(id);
        let num_children = i32::try_from(node.num_children()).unwrap_or(i32::MAX);
        Stat {
            czxid: node.czxid,
            mzxid: node.mzxid(),
            ctime: node.ctime,
            mtime: node.mtime(),
            version: node.version,
            cversion: node.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: node.aversion,
            ephemeral_owner: ephemeral::visible_owner(node.ephemeral_owner()),
            data_length: i32::try_from(node.data().len()).unwrap_or(i32::MAX),
            num_children,
            pzxid: node.pzxid(),
        }
    }
}

/// A node of the tree, borrowed.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    tree: &'a DataTree,
    id: NodeId,
}

impl<'a> NodeRef<'a> {
    pub fn data(&self) -> &'a [u8] {
        self.tree.store.get(self.id).data()
    }

    /// The stat as clients see it.
    pub fn stat(&self) -> Stat {
        self.tree.stat_of(self.id)
    }

    /// The stat as stored (for snapshots).
    pub fn persisted_stat(&self) -> PersistedStat {
        self.tree.store.get(self.id).persisted()
    }

    pub fn kind(&self) -> NodeKind {
        NodeKind::of_owner(self.tree.store.get(self.id).ephemeral_owner())
    }

    /// The node's ACL, shared with every node that has the same list.
    pub fn acl(&self) -> &'a Arc<[Acl]> {
        self.tree.node_acl(self.id)
    }

    /// The children's names, oldest first.
    pub fn children(&self) -> impl Iterator<Item = &'a str> + 'a {
        let store = &self.tree.store;
        store.children(self.id).map(move |id| store.get(id).name())
    }

    pub fn num_children(&self) -> usize {
        self.tree.store.get(self.id).num_children() as usize
    }
}

impl std::fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRef")
            .field("stat", &self.stat())
            .field("data_length", &self.data().len())
            .finish()
    }
}

/// Visits every attached node in pre-order (parents before children,
/// children oldest first) with its path; the root is `/`.
fn walk_preorder(slab: &Slab, mut visit: impl FnMut(&str, NodeId)) {
    visit("/", ROOT);
    let mut path = String::new();
    // One sibling cursor per level, with the length of the parent's path:
    // memory grows with the depth, not with the widest parent (a million
    // children would otherwise mean megabytes per walk).
    let mut levels = vec![(slab.children(ROOT), 0usize)];
    while let Some((siblings, prefix_len)) = levels.last_mut() {
        let prefix_len = *prefix_len;
        let Some(id) = siblings.next() else {
            levels.pop();
            continue;
        };
        path.truncate(prefix_len);
        path.push('/');
        path.push_str(slab.get(id).name());
        visit(&path, id);
        levels.push((slab.children(id), path.len()));
    }
}

/// Apache's `getParentPathAndValidate`: the parent of a node to delete, or
/// `BadArguments` for the root, the system nodes and malformed paths.
fn deletable_parent(path: &str) -> Result<&str, ErrorCode> {
    let last_slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
    let system = matches!(path, "/" | ZOOKEEPER_NODE | QUOTA_ROOT | CONFIG_NODE);
    if system || path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    Ok(&path[..last_slash])
}

/// Apache's `checkAndIncVersion`: -1 matches any version.
fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn is_expired(mtime: i64, ttl_ms: i64, now_ms: i64) -> bool {
    ttl_ms != 0 && now_ms.saturating_sub(mtime) > ttl_ms
}

fn display_parent(parent_path: &str) -> &str {
    if parent_path.is_empty() {
        "/"
    } else {
        parent_path
    }
}

fn len_i64(bytes: &[u8]) -> i64 {
    i64::try_from(bytes.len()).unwrap_or(i64::MAX)
}

fn candidate_path(op: &TxnOp) -> &str {
    match op {
        TxnOp::DeleteContainer { path } | TxnOp::DeleteExpiredTtl { path } => path,
        _ => "",
    }
}

#[cfg(test)]
mod tests;
