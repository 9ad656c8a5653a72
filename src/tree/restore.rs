//! Restoring many nodes quickly, for loading snapshots.
//!
//! [`DataTree::restore_node`] resolves every path from the root. A snapshot
//! lists nodes parent-first, so the parent of each node is almost always the
//! previous node or one of its ancestors: [`Restorer`] remembers them and
//! resolves the parent by comparing path prefixes, falling back to a lookup
//! when the order is different.

use std::sync::Arc;

use super::acl_cache::AclRef;
use super::store::{NodeId, ROOT};
use super::{DataTree, PersistedStat, RestoreError};
use crate::proto::Acl;

/// Restores nodes into a tree with the same outcome as calling
/// [`DataTree::restore_node`] for each, faster when parents come before
/// their children. Call [`DataTree::finish_restore`] once all nodes are in.
pub struct Restorer<'t> {
    tree: &'t mut DataTree,
    /// The path of the last node restored.
    previous: String,
    /// `(length, id)` pairs: `previous[..length]` is the path of node `id`,
    /// with `""` for the root. Lengths ascend.
    known: Vec<(usize, NodeId)>,
    /// The last ACL list interned, compared by value.
    last_acl: Option<(Arc<[Acl]>, AclRef)>,
}

impl DataTree {
    /// A [`Restorer`] for about `expected_nodes` more nodes, for which room
    /// is made up front.
    pub fn restorer(&mut self, expected_nodes: usize) -> Restorer<'_> {
        self.store.reserve(expected_nodes);
        Restorer {
            tree: self,
            previous: String::new(),
            known: vec![(0, ROOT)],
            last_acl: None,
        }
    }
}

impl Restorer<'_> {
    /// Puts a node back as a snapshot recorded it, replacing it if it exists;
    /// see [`DataTree::restore_node`].
    pub fn restore_node(
        &mut self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        stat: PersistedStat,
    ) -> Result<(), RestoreError> {
        let Some(last_slash) = path.rfind('/').filter(|_| path.starts_with('/')) else {
            return Err(RestoreError::InvalidPath(path.to_owned()));
        };
        let shared = self
            .previous
            .bytes()
            .zip(path.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        // Entries no longer than the shared prefix name prefixes of `path`
        // too. The root's entry (length 0) always stays.
        while self.known.len() > 1 && self.known.last().is_some_and(|&(len, _)| len > shared) {
            self.known.pop();
        }
        let acl_ref = self.intern(acl);
        let tree = &mut *self.tree;
        let id = if path == "/" {
            ROOT
        } else {
            let parent_path = if last_slash == 0 {
                "/"
            } else {
                &path[..last_slash]
            };
            let remembered = self
                .known
                .iter()
                .rev()
                .find(|&&(len, _)| len == last_slash)
                .map(|&(_, id)| id);
            let parent = remembered
                .or_else(|| tree.store.lookup(parent_path))
                .ok_or_else(|| RestoreError::MissingParent(path.to_owned()))?;
            let name = &path[last_slash + 1..];
            if name.is_empty() {
                return Err(RestoreError::InvalidPath(path.to_owned()));
            }
            match tree.store.child(parent, name) {
                Some(id) => id,
                None => {
                    let id = tree
                        .store
                        .alloc(parent, name, data, acl_ref, &stat)
                        .map_err(|_| RestoreError::Full)?;
                    tree.attach_node(id);
                    self.remember(path, id);
                    return Ok(());
                }
            }
        };
        tree.unregister(id);
        tree.store.set_data(id, data);
        let mut node = tree.store.get_mut(id);
        node.set_persisted(&stat);
        node.acl = acl_ref;
        tree.register(id);
        self.remember(path, id);
        Ok(())
    }

    /// Puts a session back into the session table.
    pub fn restore_session(&mut self, session_id: i64, timeout_ms: i32) {
        self.tree.restore_session(session_id, timeout_ms);
    }

    fn remember(&mut self, path: &str, id: NodeId) {
        while self.known.len() > 1 && self.known.last().is_some_and(|&(len, _)| len >= path.len()) {
            self.known.pop();
        }
        self.known.push((path.len(), id));
        self.previous.clear();
        self.previous.push_str(path);
    }

    fn intern(&mut self, acl: &[Acl]) -> AclRef {
        if let Some((list, acl_ref)) = &self.last_acl {
            if **list == *acl {
                return *acl_ref;
            }
        }
        let acl_ref = self.tree.acls.intern(acl);
        self.last_acl = Some((Arc::clone(self.tree.acls.get(acl_ref)), acl_ref));
        acl_ref
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Id;
    use crate::tree::TreeOptions;

    type Dump = Vec<(String, Vec<u8>, PersistedStat, Vec<Acl>, Vec<String>)>;

    fn dump(tree: &DataTree) -> Dump {
        let mut out = Vec::new();
        tree.for_each_node(|path, node| {
            out.push((
                path.to_owned(),
                node.data().to_vec(),
                node.persisted_stat(),
                node.acl().to_vec(),
                node.children().map(str::to_owned).collect(),
            ));
        });
        out
    }

    fn stat(n: i64) -> PersistedStat {
        PersistedStat {
            czxid: n,
            mzxid: n + 1,
            cversion: n as i32,
            ephemeral_owner: if n % 5 == 0 { 0x0100_0000_0000_0001 } else { 0 },
            ..PersistedStat::default()
        }
    }

    fn acl(n: usize) -> Vec<Acl> {
        if n % 3 == 0 {
            Acl::read_unsafe()
        } else {
            vec![Acl {
                perms: 31,
                id: Id::new("digest", format!("user{}", n % 2)),
            }]
        }
    }

    /// Paths in several orders, with replacements of existing nodes, a
    /// path that repeats, children of the system nodes, non-ASCII names and
    /// bad entries.
    fn entries() -> Vec<String> {
        let mut paths = vec!["/".to_owned(), "/zookeeper".to_owned()];
        for a in ["a", "ab", "é", "a b"] {
            paths.push(format!("/{a}"));
            for b in ["x", "xy", "ü"] {
                paths.push(format!("/{a}/{b}"));
                paths.push(format!("/{a}/{b}/z"));
            }
        }
        paths.extend(
            [
                "/zookeeper/quota/a",
                "/a/x",
                "/a/x/z",
                "/missing/child",
                "relative",
                "/a/",
                "/ab/xy/z/deep",
                "/é/ü",
            ]
            .map(str::to_owned),
        );
        paths
    }

    fn restore_all(orders: &[String], fast: bool) -> (DataTree, Vec<Result<(), RestoreError>>) {
        let mut tree = DataTree::new(TreeOptions::default());
        let mut results = Vec::new();
        if fast {
            let mut restorer = tree.restorer(orders.len());
            for (n, path) in orders.iter().enumerate() {
                let data = format!("{n}");
                results.push(restorer.restore_node(path, data.as_bytes(), &acl(n), stat(n as i64)));
            }
        } else {
            for (n, path) in orders.iter().enumerate() {
                let data = format!("{n}");
                results.push(tree.restore_node(path, data.as_bytes(), &acl(n), stat(n as i64)));
            }
        }
        tree.finish_restore();
        (tree, results)
    }

    #[test]
    fn restorer_matches_restore_node_in_any_order() {
        let preorder = entries();
        let mut by_depth = preorder.clone();
        by_depth.sort_by_key(|p| p.matches('/').count());
        let mut reversed_siblings = preorder.clone();
        reversed_siblings.reverse();
        let mut shuffled = preorder.clone();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in (1..shuffled.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            shuffled.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for order in [preorder, by_depth, reversed_siblings, shuffled] {
            let (slow, slow_results) = restore_all(&order, false);
            let (fast, fast_results) = restore_all(&order, true);
            for (i, path) in order.iter().enumerate() {
                assert_eq!(fast_results[i], slow_results[i], "{path}");
            }
            assert_eq!(dump(&fast), dump(&slow));
            assert_eq!(fast.ephemeral_count(), slow.ephemeral_count());
            assert_eq!(fast.acl_cache_size(), slow.acl_cache_size());
            assert!(fast_results.iter().any(Result::is_err));
        }
    }

    #[test]
    fn an_empty_component_before_a_name_resolves_to_the_root() {
        let mut tree = DataTree::new(TreeOptions::default());
        let mut restorer = tree.restorer(2);
        restorer.restore_node("/a", b"1", &acl(0), stat(1)).unwrap();
        restorer
            .restore_node("//a", b"2", &acl(0), stat(2))
            .unwrap();
        drop(restorer);
        tree.finish_restore();
        assert_eq!(
            tree.node("/").unwrap().num_children(),
            2,
            "/a and /zookeeper"
        );
        assert_eq!(tree.node("/a").unwrap().data(), b"2");
    }
}
