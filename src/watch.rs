//! Watches: which connection watches which path, and which notifications a
//! change to the tree sends to whom.
//!
//! Behaviour follows Apache ZooKeeper 3.9's default `WatchManager` as the data
//! tree drives it. Apache keeps two tables, one for data watches
//! (`getData`/`exists`, plus persistent and persistent-recursive watches) and
//! one for child watches (`getChildren`, plus persistent watches, which live in
//! both). Here a single table holds, per (path, watcher), a set of flags; the
//! two Apache tables are the two "sides" of those flags ([`DATA_SIDE`],
//! [`CHILD_SIDE`]). The side a flag belongs to decides which event types it
//! receives and how it is counted:
//!
//! * `NodeCreated` and `NodeDataChanged` for a path reach its data side;
//!   `NodeChildrenChanged` reaches its child side; `NodeDeleted` reaches both,
//!   and a watcher present on both sides gets it once.
//! * Persistent-recursive watches on any ancestor also receive `NodeCreated`,
//!   `NodeDeleted` and `NodeDataChanged` for the changed path, never
//!   `NodeChildrenChanged`.
//! * One-shot watches are consumed when they fire, even when the event is then
//!   withheld for lack of READ; persistent watches stay.
//! * Every delivery is subject to READ on the changed node's ACL (on the
//!   parent's ACL for `NodeChildrenChanged`), as Apache's connections check it
//!   when they are handed an event (the CVE-2024-23944 fix).
//!
//! The manager holds no lock and does no I/O: the server calls it while it
//! holds its own lock, in the same order it applies transactions.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::proto::{Acl, AddWatchMode, EventType, WatcherType};
use crate::txn::{Change, ChangeKind};

/// Identifies one client connection, the owner of watches.
pub type WatcherId = u64;

/// The kind of watch a request sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// One-shot watch set by `getData` or `exists` (also on a missing node).
    Data,
    /// One-shot watch set by `getChildren`.
    Child,
    /// `addWatch` mode 0: every event for the path itself, until removed.
    Persistent,
    /// `addWatch` mode 1: data events for the path and its whole subtree,
    /// until removed.
    PersistentRecursive,
}

impl From<AddWatchMode> for WatchKind {
    fn from(mode: AddWatchMode) -> Self {
        match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        }
    }
}

/// A notification for one connection. Its keeper state is always
/// `SyncConnected`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchEvent {
    pub event_type: EventType,
    pub path: String,
}

/// The watch modes one watcher holds on one path, as bits.
type Flags = u8;

const DATA: Flags = 1;
const CHILD: Flags = 1 << 1;
const PERSISTENT: Flags = 1 << 2;
const RECURSIVE: Flags = 1 << 3;
const ALL: Flags = DATA | CHILD | PERSISTENT | RECURSIVE;

/// Flags that Apache keeps in its data-watch table.
const DATA_SIDE: Flags = DATA | PERSISTENT | RECURSIVE;
/// Flags that Apache keeps in its child-watch table.
const CHILD_SIDE: Flags = CHILD | PERSISTENT;

impl WatchKind {
    fn flag(self) -> Flags {
        match self {
            WatchKind::Data => DATA,
            WatchKind::Child => CHILD,
            WatchKind::Persistent => PERSISTENT,
            WatchKind::PersistentRecursive => RECURSIVE,
        }
    }
}

/// The flags a `removeWatches`/`checkWatches` request of this type matches.
fn matched_by(watcher_type: WatcherType) -> Flags {
    match watcher_type {
        WatcherType::Children => CHILD,
        WatcherType::Data => DATA,
        WatcherType::Persistent => PERSISTENT,
        WatcherType::PersistentRecursive => RECURSIVE,
        WatcherType::Any => ALL,
    }
}

/// How many of Apache's two tables hold an entry for these flags; that is
/// what `zk_watch_count` adds up.
fn sides(flags: Flags) -> usize {
    usize::from(flags & DATA_SIDE != 0) + usize::from(flags & CHILD_SIDE != 0)
}

fn on_data_side(flags: Flags) -> bool {
    flags & DATA_SIDE != 0
}

/// The strict ancestors of a path, nearest first, ending with `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        if rest == "/" {
            return None;
        }
        let cut = rest.rfind('/')?;
        rest = if cut == 0 { "/" } else { &rest[..cut] };
        Some(rest)
    })
}

#[derive(Debug, Default)]
struct PathWatches {
    watchers: HashMap<WatcherId, Flags>,
    /// Watchers here with a data-side flag: the ones the `wch*` reports show.
    data_side: usize,
}

#[derive(Debug, Default)]
struct WatcherWatches {
    /// Shares the string with the path table's key.
    paths: HashSet<Arc<str>>,
    /// Paths here with a data-side flag.
    data_side: usize,
}

/// Every watch of every connection. See the module documentation for the
/// delivery rules.
#[derive(Debug, Default)]
pub struct WatchManager {
    paths: HashMap<Arc<str>, PathWatches>,
    watchers: HashMap<WatcherId, WatcherWatches>,
    /// Persistent-recursive watchers by path: an index over `paths` so that a
    /// change looks up only its ancestors, and skips even that when empty.
    recursive: HashMap<Arc<str>, HashSet<WatcherId>>,
    /// Entries over Apache's two tables (`DataTree.getWatchCount`).
    watch_count: usize,
    /// (path, watcher) pairs with a data-side flag.
    data_side_watches: usize,
    /// Paths with at least one data-side watcher.
    data_side_paths: usize,
    /// Watchers with at least one data-side watch.
    data_side_watchers: usize,
}

impl WatchManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a watch. Setting one the watcher already has on the path is a
    /// no-op; kinds accumulate (a data watch and a persistent watch on the
    /// same path are two watches).
    pub fn add(&mut self, path: &str, kind: WatchKind, watcher: WatcherId) {
        let flag = kind.flag();
        self.update(path, watcher, |flags| flags | flag);
    }

    /// The notifications one change sends, at most one per watcher, ordered by
    /// watcher. One-shot watches that match are consumed.
    ///
    /// `can_read(watcher, acl)` must say whether the watcher's connection has
    /// READ under `acl` (which is `change.acl`); it is asked once for every
    /// watcher reached, and `false` withholds that watcher's event. The watch
    /// is consumed either way, as in Apache.
    pub fn trigger(
        &mut self,
        change: &Change,
        mut can_read: impl FnMut(WatcherId, &[Acl]) -> bool,
    ) -> Vec<(WatcherId, WatchEvent)> {
        let path = change.path.as_str();
        // (event, flags reached on the path itself, one-shot flags consumed,
        // whether recursive watches on ancestors see it)
        let (event_type, reached_here, consumed, reaches_ancestors) = match change.kind {
            ChangeKind::Created => (EventType::NodeCreated, DATA_SIDE, DATA, true),
            ChangeKind::DataChanged => (EventType::NodeDataChanged, DATA_SIDE, DATA, true),
            ChangeKind::Deleted => (
                EventType::NodeDeleted,
                DATA_SIDE | CHILD_SIDE,
                DATA | CHILD,
                true,
            ),
            ChangeKind::ChildrenChanged => {
                (EventType::NodeChildrenChanged, CHILD_SIDE, CHILD, false)
            }
        };

        let mut reached = Vec::new();
        let mut to_consume = Vec::new();
        if let Some(here) = self.paths.get(path) {
            for (&watcher, &flags) in &here.watchers {
                if flags & reached_here != 0 {
                    reached.push(watcher);
                    if flags & consumed != 0 {
                        to_consume.push(watcher);
                    }
                }
            }
        }
        for watcher in to_consume {
            self.update(path, watcher, |flags| flags & !consumed);
        }
        if reaches_ancestors && !self.recursive.is_empty() {
            for ancestor in ancestors(path) {
                if let Some(watchers) = self.recursive.get(ancestor) {
                    reached.extend(watchers.iter().copied());
                }
            }
        }

        reached.sort_unstable();
        reached.dedup();
        reached
            .into_iter()
            .filter(|&watcher| can_read(watcher, &change.acl))
            .map(|watcher| {
                let event = WatchEvent {
                    event_type,
                    path: change.path.clone(),
                };
                (watcher, event)
            })
            .collect()
    }

    /// `removeWatches`: removes the watcher's watches of `watcher_type` on
    /// exactly `path` (`Any` removes all of them, persistent and recursive
    /// included). Returns one event per kind of watch removed
    /// (`DataWatchRemoved`, `ChildWatchRemoved`, `PersistentWatchRemoved` for
    /// either persistent kind); empty means there was none, which the reply
    /// reports as `NoWatcher`.
    ///
    /// Apache's server only answers OK or `NoWatcher`; the client library
    /// raises these events to its own watchers itself, so they are not meant
    /// to be sent as notifications.
    pub fn remove(
        &mut self,
        path: &str,
        watcher: WatcherId,
        watcher_type: WatcherType,
    ) -> Vec<WatchEvent> {
        let cleared = matched_by(watcher_type);
        let removed = self.flags(path, watcher) & cleared;
        if removed == 0 {
            return Vec::new();
        }
        self.update(path, watcher, |flags| flags & !cleared);

        let mut events = Vec::new();
        let mut push = |event_type| {
            events.push(WatchEvent {
                event_type,
                path: path.to_owned(),
            })
        };
        if removed & DATA != 0 {
            push(EventType::DataWatchRemoved);
        }
        if removed & CHILD != 0 {
            push(EventType::ChildWatchRemoved);
        }
        if removed & (PERSISTENT | RECURSIVE) != 0 {
            push(EventType::PersistentWatchRemoved);
        }
        events
    }

    /// `checkWatches`: whether the watcher has a watch of `watcher_type` on
    /// exactly `path` (`Any`: a watch of any kind).
    pub fn contains(&self, path: &str, watcher: WatcherId, watcher_type: WatcherType) -> bool {
        self.flags(path, watcher) & matched_by(watcher_type) != 0
    }

    /// Drops every watch of a connection that closed.
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(owned) = self.watchers.get(&watcher) else {
            return;
        };
        let paths: Vec<Arc<str>> = owned.paths.iter().cloned().collect();
        for path in paths {
            self.update(&path, watcher, |_| 0);
        }
    }

    /// Total watches as `mntr` reports `zk_watch_count`: Apache counts a
    /// persistent watch twice (it sits in both its data and child tables), and
    /// a data watch plus a child watch by one connection on one path as two.
    pub fn watch_count(&self) -> usize {
        self.watch_count
    }

    /// Paths with a data-side watch (`wchs` "watching N paths").
    pub fn watched_path_count(&self) -> usize {
        self.data_side_paths
    }

    /// Total watches as `wchs` and the admin `watch_summary` report them
    /// ("Total watches", `num_total_watches`): (path, connection) pairs with a
    /// data-side watch.
    pub fn summary_watch_count(&self) -> usize {
        self.data_side_watches
    }

    /// Connections with a data-side watch (`wchs` "N connections").
    pub fn watcher_count(&self) -> usize {
        self.data_side_watchers
    }

    /// `wchc`: each connection's watched paths, sorted.
    ///
    /// Like Apache's `wchc`, `wchp` and `wchs`, this reports only the data side
    /// (data, exists, persistent and persistent-recursive watches): a
    /// connection's `getChildren` watches do not show.
    pub fn by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        let mut report: Vec<(WatcherId, Vec<String>)> = self
            .watchers
            .iter()
            .filter(|(_, owned)| owned.data_side > 0)
            .map(|(&watcher, owned)| {
                let mut paths: Vec<String> = owned
                    .paths
                    .iter()
                    .filter(|path| on_data_side(self.flags(path, watcher)))
                    .map(|path| path.to_string())
                    .collect();
                paths.sort_unstable();
                (watcher, paths)
            })
            .collect();
        report.sort_unstable_by_key(|(watcher, _)| *watcher);
        report
    }

    /// `wchp`: each watched path's connections, sorted; the data side only,
    /// as for [`WatchManager::by_watcher`].
    pub fn by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        let mut report: Vec<(String, Vec<WatcherId>)> = self
            .paths
            .iter()
            .filter(|(_, here)| here.data_side > 0)
            .map(|(path, here)| {
                let mut watchers: Vec<WatcherId> = here
                    .watchers
                    .iter()
                    .filter(|(_, &flags)| on_data_side(flags))
                    .map(|(&watcher, _)| watcher)
                    .collect();
                watchers.sort_unstable();
                (path.to_string(), watchers)
            })
            .collect();
        report.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        report
    }

    fn flags(&self, path: &str, watcher: WatcherId) -> Flags {
        self.paths
            .get(path)
            .and_then(|here| here.watchers.get(&watcher))
            .copied()
            .unwrap_or(0)
    }

    /// The one place watch flags change, so that the path table, the watcher
    /// table, the recursive index and the counters cannot drift apart.
    fn update(&mut self, path: &str, watcher: WatcherId, change: impl FnOnce(Flags) -> Flags) {
        let old = self.flags(path, watcher);
        let new = change(old) & ALL;
        if old == new {
            return;
        }

        let key: Arc<str> = match self.paths.get_key_value(path) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(path),
        };

        self.watch_count = self.watch_count + sides(new) - sides(old);

        let data_side_delta = (on_data_side(old), on_data_side(new));

        // Path table.
        let here = self.paths.entry(Arc::clone(&key)).or_default();
        if new == 0 {
            here.watchers.remove(&watcher);
        } else {
            here.watchers.insert(watcher, new);
        }
        match data_side_delta {
            (false, true) => {
                here.data_side += 1;
                if here.data_side == 1 {
                    self.data_side_paths += 1;
                }
            }
            (true, false) => {
                here.data_side -= 1;
                if here.data_side == 0 {
                    self.data_side_paths -= 1;
                }
            }
            _ => {}
        }
        if here.watchers.is_empty() {
            self.paths.remove(path);
        }

        // Watcher table.
        let owned = self.watchers.entry(watcher).or_default();
        if old == 0 {
            owned.paths.insert(Arc::clone(&key));
        } else if new == 0 {
            owned.paths.remove(path);
        }
        match data_side_delta {
            (false, true) => {
                owned.data_side += 1;
                self.data_side_watches += 1;
                if owned.data_side == 1 {
                    self.data_side_watchers += 1;
                }
            }
            (true, false) => {
                owned.data_side -= 1;
                self.data_side_watches -= 1;
                if owned.data_side == 0 {
                    self.data_side_watchers -= 1;
                }
            }
            _ => {}
        }
        if owned.paths.is_empty() {
            self.watchers.remove(&watcher);
        }

        // Recursive index.
        match (old & RECURSIVE != 0, new & RECURSIVE != 0) {
            (false, true) => {
                self.recursive.entry(key).or_default().insert(watcher);
            }
            (true, false) => {
                if let Entry::Occupied(mut at) = self.recursive.entry(key) {
                    at.get_mut().remove(&watcher);
                    if at.get().is_empty() {
                        at.remove();
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Id;

    fn open() -> Arc<[Acl]> {
        Acl::open_unsafe().into()
    }

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change {
            path: path.to_owned(),
            kind,
            acl: open(),
        }
    }

    fn fire(
        manager: &mut WatchManager,
        path: &str,
        kind: ChangeKind,
    ) -> Vec<(WatcherId, WatchEvent)> {
        manager.trigger(&change(path, kind), |_, _| true)
    }

    fn event(event_type: EventType, path: &str) -> WatchEvent {
        WatchEvent {
            event_type,
            path: path.to_owned(),
        }
    }

    fn to(
        watchers: &[WatcherId],
        event_type: EventType,
        path: &str,
    ) -> Vec<(WatcherId, WatchEvent)> {
        watchers
            .iter()
            .map(|&watcher| (watcher, event(event_type, path)))
            .collect()
    }

    #[test]
    fn ancestors_walk_up_to_the_root() {
        assert_eq!(
            ancestors("/a/b/c").collect::<Vec<_>>(),
            vec!["/a/b", "/a", "/"]
        );
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), vec!["/"]);
        assert_eq!(ancestors("/").count(), 0);
        assert_eq!(ancestors("").count(), 0);
        assert_eq!(ancestors("no-slash").count(), 0);
    }

    #[test]
    fn created_reaches_data_watches_only() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 2);
        assert_eq!(
            fire(&mut m, "/a", ChangeKind::Created),
            to(&[1], EventType::NodeCreated, "/a")
        );
        assert!(m.contains("/a", 2, WatcherType::Children));
    }

    #[test]
    fn data_changed_reaches_data_watches_only() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 2);
        assert_eq!(
            fire(&mut m, "/a", ChangeKind::DataChanged),
            to(&[1], EventType::NodeDataChanged, "/a")
        );
    }

    #[test]
    fn children_changed_reaches_child_watches_only() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 2);
        assert_eq!(
            fire(&mut m, "/a", ChangeKind::ChildrenChanged),
            to(&[2], EventType::NodeChildrenChanged, "/a")
        );
        assert!(m.contains("/a", 1, WatcherType::Data));
    }

    #[test]
    fn deleted_reaches_data_and_child_watches() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 2);
        assert_eq!(
            fire(&mut m, "/a", ChangeKind::Deleted),
            to(&[1, 2], EventType::NodeDeleted, "/a")
        );
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn events_do_not_reach_other_paths() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 1);
        m.add("/a", WatchKind::Persistent, 1);
        assert!(fire(&mut m, "/a/b", ChangeKind::Created).is_empty());
        assert!(fire(&mut m, "/ab", ChangeKind::DataChanged).is_empty());
        assert!(fire(&mut m, "/", ChangeKind::ChildrenChanged).is_empty());
        // Untouched: one entry in each of Apache's two tables.
        assert_eq!(m.watch_count(), 2);
    }

    #[test]
    fn one_shot_watches_are_consumed_when_they_fire() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 1);
        assert_eq!(fire(&mut m, "/a", ChangeKind::DataChanged).len(), 1);
        assert!(!m.contains("/a", 1, WatcherType::Data));
        assert!(fire(&mut m, "/a", ChangeKind::DataChanged).is_empty());

        assert_eq!(fire(&mut m, "/a", ChangeKind::ChildrenChanged).len(), 1);
        assert!(fire(&mut m, "/a", ChangeKind::ChildrenChanged).is_empty());
        assert_eq!(m.watch_count(), 0);
        assert_eq!(m.watcher_count(), 0);
    }

    #[test]
    fn a_one_shot_watch_of_the_other_side_survives_a_data_event() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 1);
        fire(&mut m, "/a", ChangeKind::Created);
        assert!(!m.contains("/a", 1, WatcherType::Data));
        assert!(m.contains("/a", 1, WatcherType::Children));
    }

    #[test]
    fn persistent_watch_gets_every_event_type_and_stays() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Persistent, 7);
        for (kind, event_type) in [
            (ChangeKind::Created, EventType::NodeCreated),
            (ChangeKind::DataChanged, EventType::NodeDataChanged),
            (ChangeKind::ChildrenChanged, EventType::NodeChildrenChanged),
            (ChangeKind::Deleted, EventType::NodeDeleted),
            (ChangeKind::Created, EventType::NodeCreated),
        ] {
            assert_eq!(fire(&mut m, "/a", kind), to(&[7], event_type, "/a"));
        }
        assert!(m.contains("/a", 7, WatcherType::Persistent));
    }

    #[test]
    fn persistent_watch_is_not_recursive() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Persistent, 7);
        assert!(fire(&mut m, "/a/b", ChangeKind::Created).is_empty());
        assert!(fire(&mut m, "/a/b", ChangeKind::Deleted).is_empty());
    }

    #[test]
    fn recursive_watch_gets_data_events_for_its_path_and_every_descendant() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::PersistentRecursive, 3);
        for path in ["/a", "/a/b", "/a/b/c/d"] {
            for (kind, event_type) in [
                (ChangeKind::Created, EventType::NodeCreated),
                (ChangeKind::DataChanged, EventType::NodeDataChanged),
                (ChangeKind::Deleted, EventType::NodeDeleted),
            ] {
                assert_eq!(fire(&mut m, path, kind), to(&[3], event_type, path));
            }
        }
        assert!(m.contains("/a", 3, WatcherType::PersistentRecursive));
    }

    #[test]
    fn recursive_watch_on_root_sees_the_whole_tree() {
        let mut m = WatchManager::new();
        m.add("/", WatchKind::PersistentRecursive, 3);
        assert_eq!(
            fire(&mut m, "/x/y", ChangeKind::Created),
            to(&[3], EventType::NodeCreated, "/x/y")
        );
    }

    #[test]
    fn recursive_watch_ignores_siblings_and_ancestors() {
        let mut m = WatchManager::new();
        m.add("/a/b", WatchKind::PersistentRecursive, 3);
        assert!(fire(&mut m, "/a", ChangeKind::DataChanged).is_empty());
        assert!(fire(&mut m, "/a/bc", ChangeKind::Created).is_empty());
        assert!(fire(&mut m, "/", ChangeKind::DataChanged).is_empty());
    }

    #[test]
    fn recursive_watch_never_gets_children_changed() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::PersistentRecursive, 3);
        assert!(fire(&mut m, "/a", ChangeKind::ChildrenChanged).is_empty());
        assert!(fire(&mut m, "/a/b", ChangeKind::ChildrenChanged).is_empty());
    }

    #[test]
    fn a_watcher_reached_twice_by_one_change_gets_one_event() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 1);
        m.add("/a", WatchKind::Persistent, 1);
        m.add("/a", WatchKind::PersistentRecursive, 1);
        m.add("/", WatchKind::PersistentRecursive, 1);
        assert_eq!(
            fire(&mut m, "/a", ChangeKind::Deleted),
            to(&[1], EventType::NodeDeleted, "/a")
        );
        // Both one-shot watches were used up by the single delivery.
        assert!(!m.contains("/a", 1, WatcherType::Data));
        assert!(!m.contains("/a", 1, WatcherType::Children));
        assert!(m.contains("/a", 1, WatcherType::Persistent));
    }

    #[test]
    fn a_data_watch_and_a_persistent_watch_give_one_event_and_the_persistent_stays() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Persistent, 1);
        assert_eq!(
            fire(&mut m, "/a", ChangeKind::DataChanged),
            to(&[1], EventType::NodeDataChanged, "/a")
        );
        assert!(!m.contains("/a", 1, WatcherType::Data));
        assert_eq!(
            fire(&mut m, "/a", ChangeKind::DataChanged),
            to(&[1], EventType::NodeDataChanged, "/a")
        );
    }

    #[test]
    fn several_watchers_each_get_their_event_in_watcher_order() {
        let mut m = WatchManager::new();
        m.add("/a/b", WatchKind::Data, 9);
        m.add("/a", WatchKind::PersistentRecursive, 4);
        m.add("/a/b", WatchKind::Persistent, 6);
        m.add("/", WatchKind::PersistentRecursive, 1);
        assert_eq!(
            fire(&mut m, "/a/b", ChangeKind::DataChanged),
            to(&[1, 4, 6, 9], EventType::NodeDataChanged, "/a/b")
        );
    }

    #[test]
    fn unreadable_node_withholds_the_event_from_every_watch_kind() {
        let secret: Arc<[Acl]> = vec![Acl {
            perms: crate::proto::perms::ALL,
            id: Id {
                scheme: "digest".into(),
                id: "owner:hash".into(),
            },
        }]
        .into();
        let mut m = WatchManager::new();
        m.add("/", WatchKind::PersistentRecursive, 1);
        m.add("/a", WatchKind::Persistent, 2);
        m.add("/a", WatchKind::Data, 3);
        m.add("/a", WatchKind::PersistentRecursive, 4);
        m.add("/a", WatchKind::Data, 5);
        let created = Change {
            path: "/a".into(),
            kind: ChangeKind::Created,
            acl: secret.clone(),
        };
        let mut asked = Vec::new();
        let events = m.trigger(&created, |watcher, acl| {
            assert_eq!(acl, &secret[..]);
            asked.push(watcher);
            watcher == 5
        });
        assert_eq!(events, to(&[5], EventType::NodeCreated, "/a"));
        assert_eq!(asked, vec![1, 2, 3, 4, 5]);
        // The one-shot watch is used up even though its event was withheld.
        assert!(!m.contains("/a", 3, WatcherType::Data));
        assert!(m.contains("/", 1, WatcherType::PersistentRecursive));
    }

    #[test]
    fn can_read_is_not_asked_when_nobody_is_reached() {
        let mut m = WatchManager::new();
        m.add("/other", WatchKind::Data, 1);
        let events = m.trigger(&change("/a", ChangeKind::DataChanged), |_, _| {
            panic!("nobody watches /a")
        });
        assert!(events.is_empty());
    }

    #[test]
    fn adding_the_same_watch_twice_counts_once() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Data, 1);
        assert_eq!(m.watch_count(), 1);
        assert_eq!(fire(&mut m, "/a", ChangeKind::DataChanged).len(), 1);
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn remove_children_removes_only_the_child_watch() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Child, 1);
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Persistent, 1);
        assert_eq!(
            m.remove("/a", 1, WatcherType::Children),
            vec![event(EventType::ChildWatchRemoved, "/a")]
        );
        assert!(!m.contains("/a", 1, WatcherType::Children));
        assert!(m.contains("/a", 1, WatcherType::Data));
        assert!(m.contains("/a", 1, WatcherType::Persistent));
        assert!(m.remove("/a", 1, WatcherType::Children).is_empty());
    }

    #[test]
    fn remove_data_removes_only_the_data_watch() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 1);
        assert_eq!(
            m.remove("/a", 1, WatcherType::Data),
            vec![event(EventType::DataWatchRemoved, "/a")]
        );
        assert!(!m.contains("/a", 1, WatcherType::Data));
        assert!(m.contains("/a", 1, WatcherType::Children));
        assert!(m.remove("/a", 1, WatcherType::Data).is_empty());
    }

    #[test]
    fn remove_persistent_leaves_one_shot_and_recursive_watches() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Persistent, 1);
        m.add("/a", WatchKind::PersistentRecursive, 1);
        m.add("/a", WatchKind::Data, 1);
        assert_eq!(
            m.remove("/a", 1, WatcherType::Persistent),
            vec![event(EventType::PersistentWatchRemoved, "/a")]
        );
        assert!(!m.contains("/a", 1, WatcherType::Persistent));
        assert!(m.contains("/a", 1, WatcherType::PersistentRecursive));
        assert!(m.contains("/a", 1, WatcherType::Data));
        // No NodeChildrenChanged any more: that came from the persistent watch.
        assert!(fire(&mut m, "/a", ChangeKind::ChildrenChanged).is_empty());
        assert!(m.remove("/a", 1, WatcherType::Persistent).is_empty());
    }

    #[test]
    fn remove_recursive_stops_descendant_events() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::PersistentRecursive, 1);
        m.add("/a", WatchKind::Persistent, 1);
        assert_eq!(
            m.remove("/a", 1, WatcherType::PersistentRecursive),
            vec![event(EventType::PersistentWatchRemoved, "/a")]
        );
        assert!(fire(&mut m, "/a/b", ChangeKind::Created).is_empty());
        assert!(m.contains("/a", 1, WatcherType::Persistent));
        assert!(m
            .remove("/a", 1, WatcherType::PersistentRecursive)
            .is_empty());
    }

    #[test]
    fn remove_any_removes_every_kind_on_the_path() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 1);
        m.add("/a", WatchKind::Persistent, 1);
        m.add("/a", WatchKind::PersistentRecursive, 1);
        m.add("/b", WatchKind::Data, 1);
        m.add("/a", WatchKind::Data, 2);
        assert_eq!(
            m.remove("/a", 1, WatcherType::Any),
            vec![
                event(EventType::DataWatchRemoved, "/a"),
                event(EventType::ChildWatchRemoved, "/a"),
                event(EventType::PersistentWatchRemoved, "/a"),
            ]
        );
        assert!(!m.contains("/a", 1, WatcherType::Any));
        assert!(m.contains("/b", 1, WatcherType::Data));
        assert!(m.contains("/a", 2, WatcherType::Data));
        assert!(fire(&mut m, "/a/x", ChangeKind::Created).is_empty());
        assert!(m.remove("/a", 1, WatcherType::Any).is_empty());
    }

    #[test]
    fn remove_any_with_only_a_recursive_watch_reports_persistent_removed() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::PersistentRecursive, 1);
        assert_eq!(
            m.remove("/a", 1, WatcherType::Any),
            vec![event(EventType::PersistentWatchRemoved, "/a")]
        );
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn remove_is_exact_about_path_and_watcher() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::PersistentRecursive, 1);
        assert!(m.remove("/a/b", 1, WatcherType::Any).is_empty());
        assert!(m.remove("/a", 2, WatcherType::Any).is_empty());
        assert!(m.remove("/nowhere", 1, WatcherType::Any).is_empty());
        assert!(m.contains("/a", 1, WatcherType::PersistentRecursive));
    }

    #[test]
    fn contains_matches_each_watcher_type() {
        let cases = [
            (WatchKind::Data, WatcherType::Data),
            (WatchKind::Child, WatcherType::Children),
            (WatchKind::Persistent, WatcherType::Persistent),
            (
                WatchKind::PersistentRecursive,
                WatcherType::PersistentRecursive,
            ),
        ];
        for (kind, matching) in cases {
            let mut m = WatchManager::new();
            m.add("/a", kind, 1);
            for (_, watcher_type) in cases {
                assert_eq!(
                    m.contains("/a", 1, watcher_type),
                    watcher_type == matching,
                    "{kind:?} checked as {watcher_type:?}"
                );
            }
            assert!(m.contains("/a", 1, WatcherType::Any));
            assert!(!m.contains("/a", 2, WatcherType::Any));
            assert!(!m.contains("/b", 1, WatcherType::Any));
        }
    }

    #[test]
    fn remove_watcher_drops_everything_of_that_connection() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 1);
        m.add("/b", WatchKind::Persistent, 1);
        m.add("/", WatchKind::PersistentRecursive, 1);
        m.add("/a", WatchKind::Data, 2);
        m.remove_watcher(1);
        for path in ["/a", "/b", "/"] {
            assert!(!m.contains(path, 1, WatcherType::Any));
        }
        assert!(m.recursive.is_empty());
        assert_eq!(m.watch_count(), 1);
        assert_eq!(m.watcher_count(), 1);
        assert_eq!(m.watched_path_count(), 1);
        assert_eq!(
            fire(&mut m, "/a", ChangeKind::Deleted),
            to(&[2], EventType::NodeDeleted, "/a")
        );
        m.remove_watcher(2);
        m.remove_watcher(3);
        assert!(m.paths.is_empty());
        assert!(m.watchers.is_empty());
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn watch_count_counts_like_mntr() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 1);
        m.add("/b", WatchKind::Persistent, 1);
        m.add("/c", WatchKind::PersistentRecursive, 2);
        m.add("/c", WatchKind::Data, 2);
        // Data and child on /a: 2; persistent sits in both tables: 2;
        // recursive plus data on /c share the data table: 1.
        assert_eq!(m.watch_count(), 5);
        m.remove("/b", 1, WatcherType::Persistent);
        assert_eq!(m.watch_count(), 3);
    }

    #[test]
    fn summary_counts_only_the_data_side() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::Data, 1);
        m.add("/a", WatchKind::Child, 1);
        m.add("/b", WatchKind::Persistent, 1);
        m.add("/c", WatchKind::Child, 2);
        m.add("/d", WatchKind::PersistentRecursive, 3);
        m.add("/d", WatchKind::Data, 3);
        assert_eq!(m.watcher_count(), 2);
        assert_eq!(m.watched_path_count(), 3);
        assert_eq!(m.summary_watch_count(), 3);
        m.remove("/a", 1, WatcherType::Data);
        assert_eq!(m.watched_path_count(), 2);
        assert_eq!(m.watcher_count(), 2);
        m.remove("/b", 1, WatcherType::Persistent);
        assert_eq!(m.watcher_count(), 1);
        assert_eq!(m.summary_watch_count(), 1);
    }

    #[test]
    fn reports_are_sorted_and_show_the_data_side() {
        let mut m = WatchManager::new();
        m.add("/z", WatchKind::Data, 5);
        m.add("/a", WatchKind::PersistentRecursive, 5);
        m.add("/a", WatchKind::Persistent, 2);
        m.add("/m", WatchKind::Child, 2);
        m.add("/k", WatchKind::Child, 9);
        assert_eq!(
            m.by_watcher(),
            vec![
                (2, vec!["/a".to_owned()]),
                (5, vec!["/a".to_owned(), "/z".to_owned()]),
            ]
        );
        assert_eq!(
            m.by_path(),
            vec![("/a".to_owned(), vec![2, 5]), ("/z".to_owned(), vec![5])]
        );
    }

    #[test]
    fn recursive_index_follows_every_removal_path() {
        let mut m = WatchManager::new();
        m.add("/a", WatchKind::PersistentRecursive, 1);
        m.add("/a", WatchKind::PersistentRecursive, 2);
        m.remove("/a", 1, WatcherType::PersistentRecursive);
        m.remove("/a", 2, WatcherType::Any);
        assert!(m.recursive.is_empty());
        // Deleting the watched node keeps the recursive watch, as in Apache.
        m.add("/b", WatchKind::PersistentRecursive, 3);
        fire(&mut m, "/b", ChangeKind::Deleted);
        assert_eq!(m.recursive.len(), 1);
        assert_eq!(
            fire(&mut m, "/b/c", ChangeKind::Created),
            to(&[3], EventType::NodeCreated, "/b/c")
        );
    }

    #[test]
    fn paths_are_shared_between_tables() {
        let mut m = WatchManager::new();
        m.add("/shared", WatchKind::Data, 1);
        m.add("/shared", WatchKind::PersistentRecursive, 2);
        let (key, _) = m.paths.get_key_value("/shared").unwrap();
        // One in the path table, one per watcher, one in the recursive index.
        assert_eq!(Arc::strong_count(key), 4);
    }

    #[test]
    fn watch_kind_from_add_watch_mode() {
        assert_eq!(
            WatchKind::from(AddWatchMode::Persistent),
            WatchKind::Persistent
        );
        assert_eq!(
            WatchKind::from(AddWatchMode::PersistentRecursive),
            WatchKind::PersistentRecursive
        );
    }
}
