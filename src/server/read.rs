//! Reads, and the other requests answered from local state without a
//! transaction: watch registration, session introspection, sync.
//!
//! A read runs under the tree's shared lock, and any watch it sets is
//! registered before that lock is released, so no change can slip between the
//! state a client read and the watch that should tell it of the next change.

use crate::acl;
use crate::proto::codes::{perms, AddWatchMode, EventType, KeeperState, WatcherType};
use crate::proto::records::{
    encode_watch_event, ClientInfo, MultiResult, ReadOp, Request, Response, SetWatches,
    WatcherEvent,
};
use crate::proto::{Acl, ErrorCode, Id};
use crate::tree::DataTree;
use crate::watch::WatchKind;

use super::{ConnId, Shared};

/// What a read produced.
#[derive(Debug)]
pub struct ReadOutcome {
    pub zxid: i64,
    pub err: ErrorCode,
    pub body: Response,
    /// Watch events to deliver before the reply (setWatches on reconnect
    /// fires the watches whose node changed while the client was away).
    pub events_before: Vec<Vec<u8>>,
}

/// The connection-side facts a read needs.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    pub conn: ConnId,
    pub session_id: i64,
    pub auth: &'a [Id],
}

/// Executes a read-side request. Returns `None` for requests it does not
/// handle (writes).
pub fn execute(shared: &Shared, ctx: &ReadContext<'_>, req: &Request) -> Option<ReadOutcome> {
    let tree = shared.tree();
    let zxid = tree.last_zxid();
    let reader = Reader {
        shared,
        ctx,
        tree: &tree,
    };
    let mut events_before = Vec::new();
    let result: Result<Response, ErrorCode> = match req {
        Request::Ping => Ok(Response::Empty),
        Request::Exists { path, watch } => reader.exists(path, *watch),
        Request::GetData { path, watch } => reader
            .get_data(path, *watch)
            .map(|(data, stat)| Response::GetData { data, stat }),
        Request::GetAcl { path } => reader.get_acl(path),
        Request::GetChildren { path, watch } => reader
            .get_children(path, *watch)
            .map(|(children, _)| Response::GetChildren { children }),
        Request::GetChildren2 { path, watch } => reader
            .get_children(path, *watch)
            .map(|(children, stat)| Response::GetChildren2 { children, stat }),
        Request::Sync { path } => Ok(Response::Sync { path: path.clone() }),
        Request::MultiRead(ops) => Ok(reader.multi_read(ops)),
        Request::CheckWatches { path, watcher_type } => reader.check_watches(path, *watcher_type),
        Request::RemoveWatches { path, watcher_type } => reader.remove_watches(path, *watcher_type),
        Request::AddWatch { path, mode } => reader.add_watch(path, *mode),
        Request::SetWatches(w) | Request::SetWatches2(w) => {
            events_before = reader.set_watches(w);
            Ok(Response::Empty)
        }
        Request::GetEphemerals { prefix_path } => Ok(reader.ephemerals(prefix_path)),
        Request::GetAllChildrenNumber { path } => reader.all_children_number(path),
        Request::WhoAmI => Ok(Response::WhoAmI {
            clients: who_am_i(ctx.auth),
        }),
        _ => return None,
    };
    let (err, body) = match result {
        Ok(body) => (ErrorCode::Ok, body),
        Err(code) => (code, Response::Empty),
    };
    Some(ReadOutcome {
        zxid,
        err,
        body,
        events_before,
    })
}

struct Reader<'a> {
    shared: &'a Shared,
    ctx: &'a ReadContext<'a>,
    tree: &'a DataTree,
}

impl Reader<'_> {
    fn allowed(&self, acl: &[Acl], perm: i32) -> bool {
        acl::check(acl, perm, self.ctx.auth, self.shared.options.skip_acl())
    }

    fn watch(&self, path: &str, kind: WatchKind) {
        self.shared.hub().watches.add(path, kind, self.ctx.conn);
    }

    fn exists(&self, path: &str, watch: bool) -> Result<Response, ErrorCode> {
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        match self.tree.node(path) {
            Some(node) => {
                if !self.allowed(node.acl(), perms::READ) {
                    return Err(ErrorCode::NoAuth);
                }
                if watch {
                    self.watch(path, WatchKind::Data);
                }
                Ok(Response::Stat { stat: node.stat() })
            }
            None => {
                // A watch on a missing node is how a client waits for it to
                // be created.
                if watch {
                    self.watch(path, WatchKind::Data);
                }
                Err(ErrorCode::NoNode)
            }
        }
    }

    fn get_data(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<u8>, crate::proto::Stat), ErrorCode> {
        let node = self.tree.node(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(node.acl(), perms::READ) {
            return Err(ErrorCode::NoAuth);
        }
        if watch {
            self.watch(path, WatchKind::Data);
        }
        Ok((node.data().to_vec(), node.stat()))
    }

    fn get_children(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, crate::proto::Stat), ErrorCode> {
        let node = self.tree.node(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(node.acl(), perms::READ) {
            return Err(ErrorCode::NoAuth);
        }
        if watch {
            self.watch(path, WatchKind::Child);
        }
        let children = node.children().map(str::to_owned).collect();
        Ok((children, node.stat()))
    }

    fn get_acl(&self, path: &str) -> Result<Response, ErrorCode> {
        let node = self.tree.node(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(node.acl(), perms::READ | perms::ADMIN) {
            return Err(ErrorCode::NoAuth);
        }
        let acl = if self.allowed(node.acl(), perms::ADMIN) {
            node.acl().to_vec()
        } else {
            // Without ADMIN the digest hashes stay hidden, as in Apache.
            node.acl().iter().map(redact_digest).collect()
        };
        Ok(Response::GetAcl {
            acl,
            stat: node.stat(),
        })
    }

    fn multi_read(&self, ops: &[ReadOp]) -> Response {
        let results = ops
            .iter()
            .map(|op| {
                let outcome = match op {
                    ReadOp::GetData { path, watch } => self
                        .get_data(path, *watch)
                        .map(|(data, stat)| MultiResult::GetData { data, stat }),
                    ReadOp::GetChildren { path, watch } => self
                        .get_children(path, *watch)
                        .map(|(children, _)| MultiResult::GetChildren { children }),
                };
                outcome.unwrap_or_else(|code| MultiResult::Error { err: code.code() })
            })
            .collect();
        Response::Multi(results)
    }

    fn check_watches(&self, path: &str, watcher_type: i32) -> Result<Response, ErrorCode> {
        let kind = WatcherType::from_i32(watcher_type).ok_or(ErrorCode::BadArguments)?;
        if self
            .shared
            .hub()
            .watches
            .contains(path, self.ctx.conn, kind)
        {
            Ok(Response::Empty)
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    fn remove_watches(&self, path: &str, watcher_type: i32) -> Result<Response, ErrorCode> {
        let kind = WatcherType::from_i32(watcher_type).ok_or(ErrorCode::BadArguments)?;
        // The client raises the *WatchRemoved events itself; the server only
        // says whether there was anything to remove.
        let removed = self.shared.hub().watches.remove(path, self.ctx.conn, kind);
        if removed.is_empty() {
            Err(ErrorCode::NoWatcher)
        } else {
            Ok(Response::Empty)
        }
    }

    fn add_watch(&self, path: &str, mode: i32) -> Result<Response, ErrorCode> {
        let kind = match AddWatchMode::from_i32(mode).ok_or(ErrorCode::BadArguments)? {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        };
        self.watch(path, kind);
        Ok(Response::AddWatch)
    }

    fn set_watches(&self, w: &SetWatches) -> Vec<Vec<u8>> {
        let mut fired = Vec::new();
        let mut fire = |event_type: EventType, path: &str| {
            fired.push(encode_watch_event(
                -1,
                &WatcherEvent {
                    event_type: event_type as i32,
                    state: KeeperState::SyncConnected as i32,
                    path: path.to_owned(),
                },
            ));
        };
        let mut hub = self.shared.hub();
        let conn = self.ctx.conn;
        for path in &w.data {
            match self.tree.node(path) {
                None => fire(EventType::NodeDeleted, path),
                Some(n) if n.stat().mzxid > w.relative_zxid => {
                    fire(EventType::NodeDataChanged, path)
                }
                Some(_) => hub.watches.add(path, WatchKind::Data, conn),
            }
        }
        for path in &w.exist {
            match self.tree.node(path) {
                Some(_) => fire(EventType::NodeCreated, path),
                None => hub.watches.add(path, WatchKind::Data, conn),
            }
        }
        for path in &w.child {
            match self.tree.node(path) {
                None => fire(EventType::NodeDeleted, path),
                Some(n) if n.stat().pzxid > w.relative_zxid => {
                    fire(EventType::NodeChildrenChanged, path)
                }
                Some(_) => hub.watches.add(path, WatchKind::Child, conn),
            }
        }
        for path in &w.persistent {
            hub.watches.add(path, WatchKind::Persistent, conn);
        }
        for path in &w.persistent_recursive {
            hub.watches.add(path, WatchKind::PersistentRecursive, conn);
        }
        fired
    }

    fn ephemerals(&self, prefix: &str) -> Response {
        let all = self.tree.ephemerals(self.ctx.session_id);
        let prefix = prefix.trim();
        let ephemerals = if prefix.is_empty() || prefix == "/" {
            all
        } else {
            all.into_iter().filter(|p| p.starts_with(prefix)).collect()
        };
        Response::GetEphemerals { ephemerals }
    }

    fn all_children_number(&self, path: &str) -> Result<Response, ErrorCode> {
        let node = self.tree.node(path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(node.acl(), perms::READ) {
            return Err(ErrorCode::NoAuth);
        }
        let total = self.tree.count_descendants(path).ok_or(ErrorCode::NoNode)?;
        Ok(Response::GetAllChildrenNumber { total })
    }
}

fn redact_digest(acl: &Acl) -> Acl {
    if acl.id.scheme != "digest" {
        return acl.clone();
    }
    let user = acl.id.id.split(':').next().unwrap_or("");
    Acl {
        perms: acl.perms,
        id: Id::new("digest", format!("{user}:x")),
    }
}

/// whoAmI: one entry per authenticated identity, with the user name the way
/// the scheme's provider reports it.
fn who_am_i(auth: &[Id]) -> Vec<ClientInfo> {
    auth.iter()
        .map(|id| ClientInfo {
            auth_scheme: id.scheme.clone(),
            user: if id.scheme == "digest" {
                id.id.split(':').next().unwrap_or("").to_owned()
            } else {
                id.id.clone()
            },
        })
        .collect()
}
