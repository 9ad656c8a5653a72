//! A read-only copy of the replicated state at one moment, made by
//! [`DataTree::freeze`](super::DataTree::freeze) for snapshots: taken under
//! the tree's lock in time proportional to the number of node chunks, then
//! read on another thread while the tree goes on changing.

use std::sync::Arc;

use super::acl_cache::FrozenAcls;
use super::store::{NodeId, Slab};
use super::{walk_preorder, NodeKind, PersistedStat};
use crate::proto::Acl;

/// Every node (data, ACL, persisted stat), the session table and the last
/// zxid of a [`super::DataTree`] as they were when it was frozen.
pub struct FrozenTree {
    nodes: Slab,
    acls: FrozenAcls,
    sessions: Vec<(i64, i32)>,
    last_zxid: i64,
    node_count: usize,
}

impl FrozenTree {
    pub(super) fn new(
        nodes: Slab,
        acls: FrozenAcls,
        sessions: Vec<(i64, i32)>,
        last_zxid: i64,
        node_count: usize,
    ) -> FrozenTree {
        FrozenTree {
            nodes,
            acls,
            sessions,
            last_zxid,
            node_count,
        }
    }

    /// The zxid of the last transaction applied before freezing.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The session table: `(session id, timeout in ms)` in id order.
    pub fn sessions(&self) -> &[(i64, i32)] {
        &self.sessions
    }

    /// The number of nodes, the root counted once (one less than
    /// [`super::DataTree::node_count`], which counts it twice as Apache does).
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Visits every node in pre-order, as [`super::DataTree::for_each_node`]
    /// does.
    pub fn for_each_node(&self, mut visit: impl FnMut(&str, FrozenNode<'_>)) {
        walk_preorder(&self.nodes, |path, id| {
            visit(path, FrozenNode { tree: self, id })
        });
    }
}

/// A node of a [`FrozenTree`], borrowed.
#[derive(Clone, Copy)]
pub struct FrozenNode<'a> {
    tree: &'a FrozenTree,
    id: NodeId,
}

impl<'a> FrozenNode<'a> {
    pub fn data(&self) -> &'a [u8] {
        self.tree.nodes.get(self.id).data()
    }

    /// The stat as stored.
    pub fn persisted_stat(&self) -> PersistedStat {
        self.tree.nodes.get(self.id).persisted()
    }

    /// The node's ACL. Nodes with equal lists share one allocation, so the
    /// pointer identifies the list.
    pub fn acl(&self) -> &'a Arc<[Acl]> {
        self.tree.acls.get(self.tree.nodes.get(self.id).acl)
    }

    pub fn kind(&self) -> NodeKind {
        NodeKind::of_owner(self.tree.nodes.get(self.id).ephemeral_owner())
    }

    pub fn num_children(&self) -> usize {
        self.tree.nodes.get(self.id).num_children() as usize
    }
}

impl std::fmt::Debug for FrozenNode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrozenNode")
            .field("stat", &self.persisted_stat())
            .field("data_length", &self.data().len())
            .finish()
    }
}
