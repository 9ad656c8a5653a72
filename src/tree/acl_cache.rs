//! Interned ACL lists, as Apache's `ReferenceCountedACLCache` keeps them: each
//! distinct list is stored once and nodes hold a 4-byte reference to it.
//!
//! An entry whose last user went away is only reclaimed by
//! [`AclCache::purge_unused`], which the tree calls once a transaction has
//! committed: an aborted multi may still need to restore a reference to it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::proto::Acl;

/// A reference to an interned ACL list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct AclRef(u32);

struct Entry {
    list: Arc<[Acl]>,
    users: u64,
}

pub(crate) struct AclCache {
    entries: Vec<Entry>,
    by_list: HashMap<Arc<[Acl]>, AclRef>,
    free: Vec<u32>,
    /// Entries that may have no users left.
    unused_candidates: Vec<AclRef>,
    empty: Arc<[Acl]>,
}

impl AclCache {
    pub(crate) fn new() -> AclCache {
        AclCache {
            entries: Vec::new(),
            by_list: HashMap::new(),
            free: Vec::new(),
            unused_candidates: Vec::new(),
            empty: Arc::from(Vec::new()),
        }
    }

    /// The reference for `list`, adding it if new. Does not count a user.
    pub(crate) fn intern(&mut self, list: &[Acl]) -> AclRef {
        if let Some(&existing) = self.by_list.get(list) {
            return existing;
        }
        let list: Arc<[Acl]> = Arc::from(list);
        let entry = Entry {
            list: Arc::clone(&list),
            users: 0,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.entries[slot as usize] = entry;
                slot
            }
            None => {
                // More distinct ACL lists than nodes cannot happen; u32 is plenty.
                let slot = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
                self.entries.push(entry);
                slot
            }
        };
        let acl_ref = AclRef(slot);
        self.by_list.insert(list, acl_ref);
        self.unused_candidates.push(acl_ref);
        acl_ref
    }

    pub(crate) fn get(&self, acl_ref: AclRef) -> &Arc<[Acl]> {
        self.entries
            .get(acl_ref.0 as usize)
            .map_or(&self.empty, |entry| &entry.list)
    }

    pub(crate) fn add_user(&mut self, acl_ref: AclRef) {
        if let Some(entry) = self.entries.get_mut(acl_ref.0 as usize) {
            entry.users += 1;
        }
    }

    pub(crate) fn remove_user(&mut self, acl_ref: AclRef) {
        if let Some(entry) = self.entries.get_mut(acl_ref.0 as usize) {
            entry.users = entry.users.saturating_sub(1);
            if entry.users == 0 {
                self.unused_candidates.push(acl_ref);
            }
        }
    }

    /// Drops entries nobody uses any more.
    pub(crate) fn purge_unused(&mut self) {
        for acl_ref in std::mem::take(&mut self.unused_candidates) {
            let Some(entry) = self.entries.get_mut(acl_ref.0 as usize) else {
                continue;
            };
            if entry.users != 0 {
                continue;
            }
            let list = std::mem::replace(&mut entry.list, Arc::clone(&self.empty));
            // A slot listed twice is freed only once.
            if self.by_list.get(&list) == Some(&acl_ref) {
                self.by_list.remove(&list);
                self.free.push(acl_ref.0);
            }
        }
    }

    /// Every list by reference, as it is now, for a frozen view of the tree.
    pub(crate) fn freeze(&self) -> FrozenAcls {
        FrozenAcls {
            lists: self.entries.iter().map(|e| Arc::clone(&e.list)).collect(),
            empty: Arc::clone(&self.empty),
        }
    }

    /// Distinct ACL lists in use (Apache's `aclCacheSize`).
    pub(crate) fn len(&self) -> usize {
        self.by_list.len()
    }
}

/// The lists of an [`AclCache`] at one moment, read-only.
pub(crate) struct FrozenAcls {
    lists: Vec<Arc<[Acl]>>,
    empty: Arc<[Acl]>,
}

impl FrozenAcls {
    pub(crate) fn get(&self, acl_ref: AclRef) -> &Arc<[Acl]> {
        self.lists.get(acl_ref.0 as usize).unwrap_or(&self.empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Id;

    fn list(perms: i32) -> Vec<Acl> {
        vec![Acl {
            perms,
            id: Id::anyone(),
        }]
    }

    #[test]
    fn interning_shares_and_purges() {
        let mut cache = AclCache::new();
        let a = cache.intern(&list(31));
        let b = cache.intern(&list(31));
        assert_eq!(a, b);
        assert!(Arc::ptr_eq(cache.get(a), cache.get(b)));
        cache.add_user(a);
        cache.add_user(a);
        let c = cache.intern(&list(1));
        cache.add_user(c);
        assert_eq!(cache.len(), 2);
        cache.remove_user(c);
        // Not reclaimed until purge.
        assert_eq!(cache.get(c).as_ref(), list(1).as_slice());
        cache.purge_unused();
        assert_eq!(cache.len(), 1);
        cache.remove_user(a);
        cache.purge_unused();
        assert_eq!(cache.len(), 1, "one user left");
        // A purged slot is reused for a new list.
        let d = cache.intern(&list(3));
        assert_eq!(d, c);
        assert_eq!(cache.get(d).as_ref(), list(3).as_slice());
        // Interned but never used: purged too.
        cache.purge_unused();
        assert_eq!(cache.len(), 1);
    }
}
