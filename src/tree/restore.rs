//! Restoring many nodes quickly, for loading snapshots.
//!
//! [`DataTree::restore_node`] resolves every path from the root. A snapshot
//! lists nodes parent-first, so the parent of each node is almost always the
//! previous node or one of its ancestors: [`Restorer`] remembers them and
//! resolves the parent by comparing path prefixes, falling back to a lookup
//! when the order is different.
//!
//! A node whose parent was created in the same pass cannot exist yet (unless
//! the input lists its path twice), so it is neither looked up nor indexed
//! one by one: such nodes are indexed together, in table order, before the
//! next lookup that could need them and when the pass ends. Looking up and
//! indexing a million nodes one at a time costs a cache miss each, about
//! half of a restart's time.
use std::sync::Arc;

use super::acl_cache::AclRef;
use super::store::{NodeId, PendingIndex, ROOT};
use super::{DataTree, PersistedStat, RestoreError};
use crate::proto::Acl;

/// Restores nodes into a tree with the same outcome as calling
/// [`DataTree::restore_node`] for each, faster when parents come before
/// their children, for input that lists every path once: a path listed
/// twice under a parent created in the same pass makes
/// [`Restorer::finish`] fail. Call [`Restorer::finish`], then
/// [`DataTree::finish_restore`], once all nodes are in; dropping a restorer
/// unfinished still leaves every node it restored findable.
pub struct Restorer<'t> {
    tree: &'t mut DataTree,
    /// The path of the last node restored.
    previous: String,
    /// The path of `previous` and of its ancestors that are known.
    known: Vec<Known>,
    /// Attached nodes not yet in the tree's index.
    pending: Vec<PendingIndex>,
    /// The first node found listed twice when pending nodes were indexed.
    duplicate: Option<NodeId>,
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
            known: vec![Known {
                len: 0,
                id: ROOT,
                created: false,
            }],
            pending: Vec::new(),
            duplicate: None,
            last_acl: None,
        }
    }
}

/// `previous[..len]` is the path of node `id` (`""` for the root), which
/// this pass created rather than replaced.
#[derive(Clone, Copy)]
struct Known {
    len: usize,
    id: NodeId,
    created: bool,
}

impl Drop for Restorer<'_> {
    fn drop(&mut self) {
        // Finished or not, every attached node must be findable. A
        // duplicate is reported by `finish`; here both copies stay.
        self.flush();
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
        while self.known.len() > 1 && self.known.last().is_some_and(|known| known.len > shared) {
            self.known.pop();
        }
        let acl_ref = self.intern(acl);
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
                .find(|known| known.len == last_slash)
                .map(|known| (known.id, known.created));
            let (parent, parent_created) = match remembered {
                Some(found) => found,
                None => {
                    // The path may pass through nodes not yet indexed.
                    self.flush();
                    let parent = self
                        .tree
                        .store
                        .lookup(parent_path)
                        .ok_or_else(|| RestoreError::MissingParent(path.to_owned()))?;
                    (parent, false)
                }
            };
            let name = &path[last_slash + 1..];
            if name.is_empty() {
                return Err(RestoreError::InvalidPath(path.to_owned()));
            }
            // Pending nodes are children of nodes remembered as created, so
            // for any other parent the index answers in full.
            let existing = if parent_created {
                None
            } else {
                self.tree.store.child(parent, name)
            };
            match existing {
                Some(id) => id,
                None => {
                    let tree = &mut *self.tree;
                    let id = tree
                        .store
                        .alloc(parent, name, data, acl_ref, &stat)
                        .map_err(|_| RestoreError::Full)?;
                    if parent_created {
                        self.pending.push(tree.store.attach_unindexed(id));
                        tree.register(id);
                    } else {
                        tree.attach_node(id);
                    }
                    self.remember(path, id, true);
                    return Ok(());
                }
            }
        };
        // The node may have been created earlier in this pass, with children
        // not yet indexed; it is remembered as replaced from here on, so its
        // children will be looked up.
        self.flush();
        let tree = &mut *self.tree;
        tree.unregister(id);
        tree.store.set_data(id, data);
        let mut node = tree.store.get_mut(id);
        node.set_persisted(&stat);
        node.acl = acl_ref;
        tree.register(id);
        self.remember(path, id, false);
        Ok(())
    }

    /// Indexes the nodes restored; fails if a path was listed twice under a
    /// parent created in this pass (both copies stay in the tree).
    pub fn finish(mut self) -> Result<(), RestoreError> {
        self.flush();
        match self.duplicate {
            Some(id) => Err(RestoreError::Duplicate(self.tree.store.path_of(id))),
            None => Ok(()),
        }
    }

    /// Indexes the pending nodes, noting the first duplicate.
    fn flush(&mut self) {
        if let Err(id) = self.tree.store.index_pending(&mut self.pending) {
            self.duplicate.get_or_insert(id);
        }
    }

    /// Puts a session back into the session table.
    pub fn restore_session(&mut self, session_id: i64, timeout_ms: i32) {
        self.tree.restore_session(session_id, timeout_ms);
    }

    fn remember(&mut self, path: &str, id: NodeId, created: bool) {
        while self.known.len() > 1
            && self
                .known
                .last()
                .is_some_and(|known| known.len >= path.len())
        {
            self.known.pop();
        }
        self.known.push(Known {
            len: path.len(),
            id,
            created,
        });
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

    #[test]
    fn many_nodes_restored_in_one_pass_are_all_found() {
        let mut tree = DataTree::new(TreeOptions::default());
        let mut paths = Vec::new();
        for dir in 0..40 {
            paths.push(format!("/d{dir}"));
            for leaf in 0..250 {
                paths.push(format!("/d{dir}/n{leaf}"));
                if leaf % 50 == 0 {
                    paths.push(format!("/d{dir}/n{leaf}/deeper"));
                }
            }
        }
        let mut restorer = tree.restorer(paths.len());
        for (n, path) in paths.iter().enumerate() {
            restorer
                .restore_node(path, path.as_bytes(), &acl(n), stat(n as i64 + 1))
                .unwrap();
        }
        restorer.finish().unwrap();
        tree.finish_restore();
        for path in &paths {
            assert_eq!(tree.node(path).unwrap().data(), path.as_bytes(), "{path}");
        }
        assert!(tree.node("/d0/n1/deeper").is_none());
        assert_eq!(tree.node("/d7").unwrap().num_children(), 250);
    }

    #[test]
    fn a_path_listed_twice_under_a_new_parent_fails_the_pass() {
        let mut tree = DataTree::new(TreeOptions::default());
        let mut restorer = tree.restorer(3);
        for path in ["/p", "/p/c", "/p/c"] {
            restorer.restore_node(path, b"", &acl(0), stat(1)).unwrap();
        }
        assert_eq!(
            restorer.finish(),
            Err(RestoreError::Duplicate("/p/c".to_owned()))
        );
    }

    #[test]
    fn a_lookup_in_the_middle_of_a_pass_sees_nodes_not_yet_indexed() {
        let mut tree = DataTree::new(TreeOptions::default());
        let mut restorer = tree.restorer(4);
        for path in ["/p", "/p/c", "/q", "/p/c/d"] {
            restorer.restore_node(path, b"", &acl(0), stat(1)).unwrap();
        }
        restorer.finish().unwrap();
        assert_eq!(tree.node("/p/c").unwrap().num_children(), 1);
        assert!(tree.node("/p/c/d").is_some());
    }

    #[test]
    fn a_created_node_listed_again_has_its_children_found() {
        let mut tree = DataTree::new(TreeOptions::default());
        let mut restorer = tree.restorer(4);
        for (n, path) in ["/a", "/a/b", "/a", "/a/b"].into_iter().enumerate() {
            restorer
                .restore_node(path, format!("{n}").as_bytes(), &acl(0), stat(1))
                .unwrap();
        }
        restorer.finish().unwrap();
        assert_eq!(tree.node("/a").unwrap().num_children(), 1);
        assert_eq!(tree.node("/a/b").unwrap().data(), b"3");
    }
}
