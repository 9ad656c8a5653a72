//! The client's record of the watches the server holds for it: what to
//! re-register after a reconnect, what a `removeWatches` can remove, and
//! which one-shot watches an event used up. Paths are server paths.

use std::collections::BTreeSet;

use crate::proto::{EventType, Request, SetWatches, WatcherType};

/// Apache's client keeps each SetWatches under about this many bytes of
/// paths, so that a client with many watches never sends a frame the
/// server refuses.
const SET_WATCHES_BATCH_BYTES: usize = 128 * 1024;

/// The watch a successful request leaves on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchKind {
    /// getData, or exists on a node that exists.
    Data,
    /// exists on a node that does not exist.
    Exist,
    /// getChildren.
    Child,
    /// addWatch, mode PERSISTENT.
    Persistent,
    /// addWatch, mode PERSISTENT_RECURSIVE.
    PersistentRecursive,
}

/// How many watches of each kind are set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchCounts {
    pub data: usize,
    pub exist: usize,
    pub child: usize,
    pub persistent: usize,
    pub persistent_recursive: usize,
}

#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    recursive: BTreeSet<String>,
}

impl WatchRegistry {
    fn set_mut(&mut self, kind: WatchKind) -> &mut BTreeSet<String> {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::PersistentRecursive => &mut self.recursive,
        }
    }

    pub fn add(&mut self, kind: WatchKind, path: &str) {
        self.set_mut(kind).insert(path.to_string());
    }

    pub fn counts(&self) -> WatchCounts {
        WatchCounts {
            data: self.data.len(),
            exist: self.exist.len(),
            child: self.child.len(),
            persistent: self.persistent.len(),
            persistent_recursive: self.recursive.len(),
        }
    }

    /// Forgets the one-shot watches an event fired (persistent ones stay).
    pub fn on_event(&mut self, event_type: EventType, path: &str) {
        match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.data.remove(path);
                self.exist.remove(path);
            }
            EventType::NodeChildrenChanged => {
                self.child.remove(path);
            }
            EventType::NodeDeleted => {
                self.data.remove(path);
                self.exist.remove(path);
                self.child.remove(path);
            }
            _ => {}
        }
    }

    /// Whether a watch of `kind` is set on `path`: Apache's client refuses a
    /// removeWatches with NoWatcher before asking the server otherwise.
    pub fn contains(&self, path: &str, kind: WatcherType) -> bool {
        let data = self.data.contains(path) || self.exist.contains(path);
        let child = self.child.contains(path);
        let persistent = self.persistent.contains(path);
        let recursive = self.recursive.contains(path);
        match kind {
            WatcherType::Children => child,
            WatcherType::Data => data,
            WatcherType::Persistent => persistent,
            WatcherType::PersistentRecursive => recursive,
            WatcherType::Any => data || child || persistent || recursive,
        }
    }

    /// Removes the watches of `kind` on `path` and returns the removal
    /// events Apache's client delivers for them, in its order.
    pub fn remove(&mut self, path: &str, kind: WatcherType) -> Vec<EventType> {
        let mut child = false;
        let mut data = false;
        let mut persistent = false;
        if matches!(kind, WatcherType::Children | WatcherType::Any) {
            child |= self.child.remove(path);
        }
        if matches!(kind, WatcherType::Data | WatcherType::Any) {
            data |= self.data.remove(path);
            data |= self.exist.remove(path);
        }
        if matches!(kind, WatcherType::Persistent | WatcherType::Any) {
            persistent |= self.persistent.remove(path);
        }
        if matches!(kind, WatcherType::PersistentRecursive | WatcherType::Any) {
            persistent |= self.recursive.remove(path);
        }
        let mut events = Vec::new();
        if child {
            events.push(EventType::ChildWatchRemoved);
        }
        if data {
            events.push(EventType::DataWatchRemoved);
        }
        if persistent {
            events.push(EventType::PersistentWatchRemoved);
        }
        events
    }

    /// The requests that re-register every watch after a reconnect, each
    /// under the batch size. Plain `SetWatches` when no persistent watch is
    /// set, so that servers older than 3.6 understand it; `SetWatches2`
    /// otherwise.
    pub fn set_watches_requests(&self, relative_zxid: i64) -> Vec<Request> {
        let mut requests = Vec::new();
        let mut batch = SetWatches {
            relative_zxid,
            ..SetWatches::default()
        };
        let mut batch_bytes = 0;
        let lists: [(&BTreeSet<String>, ListOf); 5] = [
            (&self.data, |b| &mut b.data),
            (&self.exist, |b| &mut b.exist),
            (&self.child, |b| &mut b.child),
            (&self.persistent, |b| &mut b.persistent),
            (&self.recursive, |b| &mut b.persistent_recursive),
        ];
        for (paths, field) in lists {
            for path in paths {
                field(&mut batch).push(path.clone());
                batch_bytes += path.len();
                if batch_bytes >= SET_WATCHES_BATCH_BYTES {
                    requests.push(finish_batch(std::mem::replace(
                        &mut batch,
                        SetWatches {
                            relative_zxid,
                            ..SetWatches::default()
                        },
                    )));
                    batch_bytes = 0;
                }
            }
        }
        if batch_bytes > 0 {
            requests.push(finish_batch(batch));
        }
        requests
    }
}

/// Picks one list of a [`SetWatches`].
type ListOf = fn(&mut SetWatches) -> &mut Vec<String>;

fn finish_batch(batch: SetWatches) -> Request {
    if batch.persistent.is_empty() && batch.persistent_recursive.is_empty() {
        Request::SetWatches(batch)
    } else {
        Request::SetWatches2(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_watches_are_used_up_by_their_events() {
        let mut w = WatchRegistry::default();
        w.add(WatchKind::Data, "/a");
        w.add(WatchKind::Child, "/a");
        w.add(WatchKind::Persistent, "/a");
        w.on_event(EventType::NodeDataChanged, "/a");
        assert!(!w.contains("/a", WatcherType::Data));
        assert!(w.contains("/a", WatcherType::Children));
        w.on_event(EventType::NodeDeleted, "/a");
        assert!(!w.contains("/a", WatcherType::Children));
        assert!(w.contains("/a", WatcherType::Persistent));
    }

    #[test]
    fn removal_reports_what_was_removed() {
        let mut w = WatchRegistry::default();
        w.add(WatchKind::Exist, "/a");
        w.add(WatchKind::Child, "/a");
        w.add(WatchKind::PersistentRecursive, "/a");
        assert_eq!(
            w.remove("/a", WatcherType::Any),
            vec![
                EventType::ChildWatchRemoved,
                EventType::DataWatchRemoved,
                EventType::PersistentWatchRemoved
            ]
        );
        assert!(!w.contains("/a", WatcherType::Any));
        assert!(w.remove("/a", WatcherType::Any).is_empty());
    }

    #[test]
    fn set_watches_is_batched_and_versioned() {
        let mut w = WatchRegistry::default();
        assert!(w.set_watches_requests(7).is_empty());
        let long = format!("/{}", "x".repeat(1000));
        for i in 0..300 {
            w.add(WatchKind::Data, &format!("{long}{i}"));
        }
        let requests = w.set_watches_requests(7);
        assert_eq!(requests.len(), 3);
        assert!(requests
            .iter()
            .all(|r| matches!(r, Request::SetWatches(s) if s.relative_zxid == 7)));
        w.add(WatchKind::Persistent, "/p");
        let requests = w.set_watches_requests(9);
        assert!(matches!(requests.last(), Some(Request::SetWatches2(s)) if s.persistent == ["/p"]));
        let total: usize = requests
            .iter()
            .map(|r| match r {
                Request::SetWatches(s) | Request::SetWatches2(s) => s.data.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(total, 300);
    }
}
