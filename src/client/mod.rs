//! An asynchronous ZooKeeper client on tokio, speaking the same wire codec as
//! the server ([`crate::proto`]).
//!
//! A [`Client`] is a cheap handle (clone it freely) to one session. Behind it
//! a task owns the connection: it establishes the session, pings at a third of
//! the negotiated timeout, matches replies to requests by xid, and on
//! connection loss moves on through the server list and resumes the session,
//! re-registering credentials and watches (at the last zxid seen). Watch
//! notifications and session state changes arrive, in order, on the
//! [`Events`] returned with the client.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zookeeper_rs::client::Error> {
//! use zookeeper_rs::client::{Client, ClientOptions};
//! use zookeeper_rs::proto::{Acl, CreateMode};
//! let (client, mut events) = Client::connect("127.0.0.1:2181/app", ClientOptions::default()).await?;
//! client.create("/job", b"x", &Acl::open_unsafe(), CreateMode::Persistent).await?;
//! let (data, _stat) = client.get_data("/job", true).await?;
//! # let _ = (data, events.recv().await);
//! client.close().await
//! # }
//! ```
//!
//! Paths are the caller's: under a chroot, `/job` is sent as `/app/job`, and
//! paths coming back (created names, events) have the chroot removed.

mod connect_string;
mod error;
mod event;
mod fourlw;
mod path;
mod session;
mod watches;

pub mod cli;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

pub use connect_string::{ConnectString, HostPort, DEFAULT_PORT};
pub use error::{code_message, keeper_message, Error, Result};
pub use event::{SessionState, Status, WatchedEvent};
pub use fourlw::four_letter;
pub use path::{validate_path, validate_sequential_path, Chroot};
pub use watches::WatchCounts;

use crate::proto::{
    Acl, AddWatchMode, ClientInfo, CreateMode, CreateRequest, ErrorCode, MultiOp, MultiResult,
    ReadOp, Request, Response, Stat, WatcherType, MAX_FRAME_LEN,
};
use session::{Command, Session, SessionConfig, WatchOnReply};

/// Commands a handle may queue before its calls wait for the task.
const COMMAND_QUEUE: usize = 1024;

/// How a client connects and how long it waits.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The session timeout asked for; the server clamps it (Apache: between
    /// 2 and 20 ticks).
    pub session_timeout: Duration,
    /// How long one call waits for its reply, connection included.
    pub request_timeout: Duration,
    /// How long one attempt at one server may take; by default the session
    /// timeout divided by the number of servers, as Apache's client does.
    pub connect_timeout: Option<Duration>,
    /// Accept a read-only server (`-r`).
    pub read_only: bool,
    /// The largest reply accepted; a larger one fails its call with
    /// [`Error::FrameTooLarge`] and the connection stays up.
    pub max_frame_len: usize,
    /// Resume this session (id, password) instead of creating one.
    pub session: Option<(i64, Vec<u8>)>,
    /// Credentials sent on every connection, before any request.
    pub auth: Vec<(String, Vec<u8>)>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            session_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            connect_timeout: None,
            read_only: false,
            max_frame_len: MAX_FRAME_LEN,
            session: None,
            auth: Vec::new(),
        }
    }
}

/// Watch notifications and session state changes, in the order the client
/// saw them. Unbounded, like Apache's event queue: a consumer that stops
/// reading holds events in memory, so drop this if you do not want them.
#[derive(Debug)]
pub struct Events(mpsc::UnboundedReceiver<WatchedEvent>);

impl Events {
    /// The next event; `None` once the client is gone and all were read.
    pub async fn recv(&mut self) -> Option<WatchedEvent> {
        self.0.recv().await
    }

    /// The next event if one is already there.
    pub fn try_recv(&mut self) -> Option<WatchedEvent> {
        self.0.try_recv().ok()
    }

    /// Polls for the next event, for callers that share the stream behind
    /// a lock and must not hold it across an await.
    pub fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<WatchedEvent>> {
        self.0.poll_recv(cx)
    }
}

/// A handle to one ZooKeeper session. Dropping the last handle closes the
/// session.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    chroot: Chroot,
    connect_string: ConnectString,
    request_timeout: Duration,
}

impl Client {
    /// Starts a client and returns at once; the session is established in
    /// the background (see [`Client::wait_connected`]). Calls made before
    /// that wait for it. Must be called within a tokio runtime.
    pub fn start(connect_string: &str, options: ClientOptions) -> Result<(Client, Events)> {
        let parsed = ConnectString::parse(connect_string)?;
        let chroot = Chroot::new(parsed.chroot.clone());
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = watch::channel(Status::initial());
        let config = SessionConfig {
            hosts: parsed.hosts.clone(),
            chroot: chroot.clone(),
            session_timeout: options.session_timeout,
            connect_timeout: options.connect_timeout,
            read_only: options.read_only,
            max_frame_len: options.max_frame_len,
            resume: options.session.clone(),
            auth: options.auth.clone(),
        };
        tokio::spawn(Session::new(config, commands_rx, events_tx, status_tx).run());
        let client = Client {
            inner: Arc::new(Inner {
                commands: commands_tx,
                status: status_rx,
                chroot,
                connect_string: parsed,
                request_timeout: options.request_timeout,
            }),
        };
        Ok((client, Events(events_rx)))
    }

    /// Starts a client and waits until its session is established, for at
    /// most the session timeout.
    pub async fn connect(connect_string: &str, options: ClientOptions) -> Result<(Client, Events)> {
        let wait = options.session_timeout;
        let (client, events) = Client::start(connect_string, options)?;
        client.wait_connected(wait).await?;
        Ok((client, events))
    }

    /// Waits until a server is connected. Fails at once if the session
    /// ended, and with [`Error::Unreachable`] after `limit`.
    pub async fn wait_connected(&self, limit: Duration) -> Result<()> {
        let mut status = self.inner.status.clone();
        let outcome = tokio::time::timeout(limit, async {
            loop {
                let state = status.borrow_and_update().state;
                if state.is_connected() {
                    return Ok(());
                }
                if state.is_final() {
                    return Err(final_error(state));
                }
                if status.changed().await.is_err() {
                    return Err(self.ended_error());
                }
            }
        })
        .await;
        match outcome {
            Ok(result) => result,
            Err(_) => Err(Error::Unreachable {
                servers: self.inner.connect_string.servers(),
                last_error: self
                    .inner
                    .status
                    .borrow()
                    .last_error
                    .clone()
                    .unwrap_or_else(|| format!("no session within {limit:?}")),
            }),
        }
    }

    /// The connection as it stands now.
    pub fn status(&self) -> Status {
        self.inner.status.borrow().clone()
    }

    /// The session state now.
    pub fn state(&self) -> SessionState {
        self.inner.status.borrow().state
    }

    /// A receiver that sees every status change (state, server, errors).
    pub fn status_changes(&self) -> watch::Receiver<Status> {
        self.inner.status.clone()
    }

    /// The session id; 0 before the first connection.
    pub fn session_id(&self) -> i64 {
        self.inner.status.borrow().session_id
    }

    /// The connect string this client was started with.
    pub fn connect_string(&self) -> &ConnectString {
        &self.inner.connect_string
    }

    /// How many watches of each kind the server holds for this session.
    pub async fn watch_counts(&self) -> WatchCounts {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Watches { reply }).await.is_err() {
            return WatchCounts::default();
        }
        rx.await.unwrap_or_default()
    }

    /// Creates a node and returns its path (with the sequence suffix, if
    /// any). Use [`Client::create2`] for the Stat, containers and TTLs.
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        self.create2(path, data, acl, mode, None)
            .await
            .map(|(path, _)| path)
    }

    /// Creates a node and returns its path and Stat. `ttl` (milliseconds) is
    /// required for, and only allowed with, the TTL modes.
    pub async fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl: Option<i64>,
    ) -> Result<(String, Stat)> {
        if mode.is_sequential() {
            validate_sequential_path(path)?;
        } else {
            validate_path(path)?;
        }
        if mode.is_ttl() != ttl.is_some() {
            return Err(Error::InvalidArgument(if mode.is_ttl() {
                "a TTL mode needs a ttl".into()
            } else {
                "ttl is only for the TTL modes".into()
            }));
        }
        let req = CreateRequest {
            path: self.server_path(path),
            data: data.to_vec(),
            acl: acl.to_vec(),
            flags: mode.flag(),
            ttl,
        };
        let request = if mode.is_ttl() {
            Request::CreateTtl(req)
        } else if mode.is_container() {
            Request::CreateContainer(req)
        } else {
            Request::Create2(req)
        };
        match self.call(request, Some(path), None).await? {
            Response::Create2 { path, stat } => Ok((self.client_path(&path), stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes a node; `version` None deletes any version.
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        validate_path(path)?;
        let request = Request::Delete {
            path: self.server_path(path),
            version: version.unwrap_or(-1),
        };
        self.call(request, Some(path), None).await.map(|_| ())
    }

    /// The node's Stat, or `None` if it does not exist. With `watch`, a data
    /// watch is left either way (it fires on creation if the node is
    /// missing).
    pub async fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>> {
        validate_path(path)?;
        let request = Request::Exists {
            path: self.server_path(path),
            watch,
        };
        let watch = watch.then_some(WatchOnReply::Data);
        match self.call(request, Some(path), watch).await {
            Ok(Response::Stat { stat }) => Ok(Some(stat)),
            Ok(other) => Err(unexpected(other)),
            Err(e) if e.is(ErrorCode::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data and Stat; with `watch`, a data watch is left.
    pub async fn get_data(&self, path: &str, watch: bool) -> Result<(Vec<u8>, Stat)> {
        validate_path(path)?;
        let request = Request::GetData {
            path: self.server_path(path),
            watch,
        };
        match self
            .call(request, Some(path), watch.then_some(WatchOnReply::Data))
            .await?
        {
            Response::GetData { data, stat } => Ok((data, stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces the node's data; `version` None for any version.
    pub async fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        validate_path(path)?;
        let request = Request::SetData {
            path: self.server_path(path),
            data: data.to_vec(),
            version: version.unwrap_or(-1),
        };
        match self.call(request, Some(path), None).await? {
            Response::Stat { stat } => Ok(stat),
            other => Err(unexpected(other)),
        }
    }

    /// The node's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        validate_path(path)?;
        let request = Request::GetAcl {
            path: self.server_path(path),
        };
        match self.call(request, Some(path), None).await? {
            Response::GetAcl { acl, stat } => Ok((acl, stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces the node's ACL; `version` (the ACL version) None for any.
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: Option<i32>) -> Result<Stat> {
        validate_path(path)?;
        let request = Request::SetAcl {
            path: self.server_path(path),
            acl: acl.to_vec(),
            version: version.unwrap_or(-1),
        };
        match self.call(request, Some(path), None).await? {
            Response::Stat { stat } => Ok(stat),
            other => Err(unexpected(other)),
        }
    }

    /// The names of the node's children, unsorted; with `watch`, a child
    /// watch is left.
    pub async fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>> {
        validate_path(path)?;
        let request = Request::GetChildren {
            path: self.server_path(path),
            watch,
        };
        match self
            .call(request, Some(path), watch.then_some(WatchOnReply::Child))
            .await?
        {
            Response::GetChildren { children } => Ok(children),
            other => Err(unexpected(other)),
        }
    }

    /// The children's names and the node's Stat.
    pub async fn get_children2(&self, path: &str, watch: bool) -> Result<(Vec<String>, Stat)> {
        validate_path(path)?;
        let request = Request::GetChildren2 {
            path: self.server_path(path),
            watch,
        };
        match self
            .call(request, Some(path), watch.then_some(WatchOnReply::Child))
            .await?
        {
            Response::GetChildren2 { children, stat } => Ok((children, stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Waits until the server this client is connected to has caught up
    /// with the leader for `path`; returns the path.
    pub async fn sync(&self, path: &str) -> Result<String> {
        validate_path(path)?;
        let request = Request::Sync {
            path: self.server_path(path),
        };
        match self.call(request, Some(path), None).await? {
            Response::Sync { path } => Ok(self.client_path(&path)),
            other => Err(unexpected(other)),
        }
    }

    /// Applies `ops` atomically. On failure returns [`Error::Multi`] with
    /// the index and code of the first failing operation. Paths in `ops`
    /// and in the results are the caller's (chroot applied and removed).
    pub async fn multi(&self, ops: Vec<MultiOp>) -> Result<Vec<MultiResult>> {
        let mut server_ops = Vec::with_capacity(ops.len());
        for op in ops {
            validate_path(op.path())?;
            server_ops.push(self.server_op(op));
        }
        let results = match self.call(Request::Multi(server_ops), None, None).await? {
            Response::Multi(results) => results,
            other => return Err(unexpected(other)),
        };
        let failed = results.iter().enumerate().find_map(|(index, r)| match r {
            MultiResult::Error { err } if *err != 0 => Some((index, *err)),
            _ => None,
        });
        if let Some((index, code)) = failed {
            return Err(Error::Multi {
                index,
                code,
                results,
            });
        }
        Ok(results
            .into_iter()
            .map(|r| match r {
                MultiResult::Create { path } => MultiResult::Create {
                    path: self.client_path(&path),
                },
                MultiResult::Create2 { path, stat } => MultiResult::Create2 {
                    path: self.client_path(&path),
                    stat,
                },
                other => other,
            })
            .collect())
    }

    /// Reads several nodes in one round trip; a failed read is an
    /// `MultiResult::Error` among the others.
    pub async fn multi_read(&self, ops: Vec<ReadOp>) -> Result<Vec<MultiResult>> {
        let mut server_ops = Vec::with_capacity(ops.len());
        for op in ops {
            validate_path(op.path())?;
            server_ops.push(match op {
                ReadOp::GetChildren { path, .. } => ReadOp::GetChildren {
                    path: self.server_path(&path),
                    watch: false,
                },
                ReadOp::GetData { path, .. } => ReadOp::GetData {
                    path: self.server_path(&path),
                    watch: false,
                },
            });
        }
        match self
            .call(Request::MultiRead(server_ops), None, None)
            .await?
        {
            Response::Multi(results) => Ok(results),
            other => Err(unexpected(other)),
        }
    }

    /// Sets a persistent (optionally recursive) watch on `path`.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<()> {
        validate_path(path)?;
        let (code, watch) = match mode {
            AddWatchMode::Persistent => (0, WatchOnReply::Persistent),
            AddWatchMode::PersistentRecursive => (1, WatchOnReply::PersistentRecursive),
        };
        let request = Request::AddWatch {
            path: self.server_path(path),
            mode: code,
        };
        self.call(request, Some(path), Some(watch))
            .await
            .map(|_| ())
    }

    /// Removes this session's watches of `kind` on `path`; fails with
    /// NoWatcher if there is none. With `local`, the watches are forgotten
    /// even when the server cannot be reached. Each removal is reported as
    /// a `*WatchRemoved` event.
    pub async fn remove_watches(&self, path: &str, kind: WatcherType, local: bool) -> Result<()> {
        validate_path(path)?;
        let (reply, rx) = oneshot::channel();
        self.send(Command::RemoveWatches {
            server_path: self.server_path(path),
            client_path: path.to_string(),
            kind,
            local,
            reply,
        })
        .await?;
        self.wait(rx).await?
    }

    /// The identities the server associates with this session.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        match self.call(Request::WhoAmI, None, None).await? {
            Response::WhoAmI { clients } => Ok(clients),
            other => Err(unexpected(other)),
        }
    }

    /// The session's ephemeral nodes whose paths start with `prefix` ("/"
    /// for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        let request = Request::GetEphemerals {
            prefix_path: self.server_path(prefix),
        };
        match self.call(request, Some(prefix), None).await? {
            Response::GetEphemerals { ephemerals } => {
                Ok(ephemerals.iter().map(|p| self.client_path(p)).collect())
            }
            other => Err(unexpected(other)),
        }
    }

    /// How many nodes are below `path`, at any depth.
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        validate_path(path)?;
        let request = Request::GetAllChildrenNumber {
            path: self.server_path(path),
        };
        match self.call(request, Some(path), None).await? {
            Response::GetAllChildrenNumber { total } => Ok(total),
            other => Err(unexpected(other)),
        }
    }

    /// The ensemble configuration (`/zookeeper/config`, outside any chroot).
    pub async fn get_config(&self, watch: bool) -> Result<(Vec<u8>, Stat)> {
        const CONFIG_NODE: &str = "/zookeeper/config";
        let request = Request::GetData {
            path: CONFIG_NODE.to_string(),
            watch,
        };
        // The watch is registered under the server path, which the chroot
        // would otherwise rewrite.
        let watch = if watch && self.inner.chroot.prefix().is_none() {
            Some(WatchOnReply::Data)
        } else {
            None
        };
        match self.call(request, Some(CONFIG_NODE), watch).await? {
            Response::GetData { data, stat } => Ok((data, stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Adds credentials (e.g. `digest`, `user:password`) to the session and
    /// waits for the server's verdict. They are sent again on every
    /// reconnect. A refusal ends the session ([`SessionState::AuthFailed`]).
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::AddAuth {
            scheme: scheme.to_string(),
            auth: auth.to_vec(),
            reply,
        })
        .await?;
        self.wait(rx).await?
    }

    /// Ends the session (its ephemeral nodes go) and stops the client. Every
    /// handle fails with [`Error::Closed`] afterwards.
    pub async fn close(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        match self.send(Command::Close { reply }).await {
            Ok(()) => {}
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e),
        }
        match self.wait(rx).await {
            Ok(result) => result,
            Err(Error::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn server_path(&self, path: &str) -> String {
        self.inner.chroot.to_server(path)
    }

    fn client_path(&self, path: &str) -> String {
        self.inner.chroot.to_client(path)
    }

    fn server_op(&self, op: MultiOp) -> MultiOp {
        match op {
            MultiOp::Create { op, mut req } => {
                req.path = self.server_path(&req.path);
                MultiOp::Create { op, req }
            }
            MultiOp::Delete { path, version } => MultiOp::Delete {
                path: self.server_path(&path),
                version,
            },
            MultiOp::SetData {
                path,
                data,
                version,
            } => MultiOp::SetData {
                path: self.server_path(&path),
                data,
                version,
            },
            MultiOp::Check { path, version } => MultiOp::Check {
                path: self.server_path(&path),
                version,
            },
        }
    }

    async fn call(
        &self,
        request: Request,
        path: Option<&str>,
        watch: Option<WatchOnReply>,
    ) -> Result<Response> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Call {
            request,
            path: path.map(str::to_string),
            watch,
            reply,
        })
        .await?;
        self.wait(rx).await?.map(|(_, response)| response)
    }

    async fn send(&self, command: Command) -> Result<()> {
        let sent = tokio::time::timeout(
            self.inner.request_timeout,
            self.inner.commands.send(command),
        )
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.ended_error()),
            Err(_) => Err(Error::Timeout(self.inner.request_timeout)),
        }
    }

    async fn wait<T>(&self, rx: oneshot::Receiver<T>) -> Result<T> {
        match tokio::time::timeout(self.inner.request_timeout, rx).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(self.ended_error()),
            Err(_) => Err(Error::Timeout(self.inner.request_timeout)),
        }
    }

    /// The error for a call made after the session task ended.
    fn ended_error(&self) -> Error {
        final_error(self.inner.status.borrow().state)
    }
}

fn final_error(state: SessionState) -> Error {
    match state {
        SessionState::Expired => Error::SessionExpired,
        SessionState::AuthFailed => Error::AuthFailed,
        _ => Error::Closed,
    }
}

fn unexpected(response: Response) -> Error {
    Error::UnexpectedReply(format!("{response:?}"))
}
