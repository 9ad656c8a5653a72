//! The task behind a [`super::Client`]: it owns the socket, establishes and
//! resumes the session, pings, matches replies to requests by xid, keeps the
//! watch registry, delivers events, and reconnects across the server list.
//!
//! Handles talk to it over one bounded command channel; each request carries
//! the oneshot its reply goes to. Everything mutable lives in this task, so
//! nothing here takes a lock.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout, Instant};

use super::connect_string::HostPort;
use super::error::Error;
use super::event::{SessionState, Status, WatchedEvent};
use super::path::Chroot;
use super::watches::{WatchCounts, WatchKind, WatchRegistry};
use crate::jute::DecodeError;
use crate::proto::{
    decode_reply, decode_reply_header, decode_watch_event, xid, ConnectRequest, ConnectResponse,
    ErrorCode, EventType, KeeperState, OpCode, ReplyHeader, Request, Response, WatcherType,
};

/// The longest pause between two rounds of connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// The first pause after a round in which no server answered.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// How long `close` waits for the server to confirm.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Frames the reader may queue before it stops reading the socket.
const READER_QUEUE: usize = 64;

/// Settings the task needs; see [`super::ClientOptions`].
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub hosts: Vec<HostPort>,
    pub chroot: Chroot,
    pub session_timeout: Duration,
    pub connect_timeout: Option<Duration>,
    pub read_only: bool,
    pub max_frame_len: usize,
    pub resume: Option<(i64, Vec<u8>)>,
    pub auth: Vec<(String, Vec<u8>)>,
}

/// The watch a request leaves if it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchOnReply {
    /// getData, or exists (an exist watch when the node is missing).
    Data,
    Child,
    Persistent,
    PersistentRecursive,
}

pub(crate) type Reply = oneshot::Sender<Result<(ReplyHeader, Response), Error>>;

/// What a handle asks of the task.
pub(crate) enum Command {
    /// A request to send. `path` is the caller's path, for error messages.
    Call {
        request: Request,
        path: Option<String>,
        watch: Option<WatchOnReply>,
        reply: Reply,
    },
    /// `removeWatches`: checked against the registry first, as Apache's
    /// client does. With `local`, the watches are forgotten even if the
    /// server cannot be asked.
    RemoveWatches {
        server_path: String,
        client_path: String,
        kind: WatcherType,
        local: bool,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Adds credentials, now and on every reconnect.
    AddAuth {
        scheme: String,
        auth: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Counts the watches set.
    Watches { reply: oneshot::Sender<WatchCounts> },
    /// Ends the session.
    Close {
        reply: oneshot::Sender<Result<(), Error>>,
    },
}

/// A request on the wire, waiting for its reply.
struct Pending {
    op: i32,
    path: Option<String>,
    watch: Option<WatchOnReply>,
    reply: PendingReply,
}

enum PendingReply {
    Call(Reply),
    RemoveWatches {
        server_path: String,
        client_path: String,
        kind: WatcherType,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Close(oneshot::Sender<Result<(), Error>>),
}

/// What the reader task hands over.
enum Frame {
    Data(Vec<u8>),
    /// A frame over the limit, read and dropped; its header if it had one.
    TooLarge {
        header: Option<ReplyHeader>,
        len: usize,
    },
    Closed(String),
}

/// How a connection ended.
enum Ended {
    /// Try the next server.
    Lost(String),
    /// The client is done.
    Final(SessionState),
}

pub(crate) struct Session {
    config: SessionConfig,
    commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<WatchedEvent>,
    status: watch::Sender<Status>,
    session_id: i64,
    password: Vec<u8>,
    negotiated_timeout: Duration,
    last_zxid: i64,
    next_xid: i32,
    next_host: usize,
    watches: WatchRegistry,
    auth: Vec<(String, Vec<u8>)>,
    /// Commands that arrived while no server was connected.
    queued: VecDeque<Command>,
    /// The state of the last session event delivered: Apache delivers a
    /// state change once, not again for the same state.
    last_event_state: Option<KeeperState>,
    /// `close` callers, answered once the final state is published.
    close_waiters: Vec<oneshot::Sender<Result<(), Error>>>,
}

impl Session {
    pub fn new(
        config: SessionConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::UnboundedSender<WatchedEvent>,
        status: watch::Sender<Status>,
    ) -> Session {
        let (session_id, password) = config.resume.clone().unwrap_or((0, vec![0; 16]));
        let auth = config.auth.clone();
        let negotiated_timeout = config.session_timeout;
        Session {
            config,
            commands,
            events,
            status,
            session_id,
            password,
            negotiated_timeout,
            last_zxid: 0,
            next_xid: 1,
            next_host: 0,
            watches: WatchRegistry::default(),
            auth,
            queued: VecDeque::new(),
            last_event_state: None,
            close_waiters: Vec::new(),
        }
    }

    /// Runs until the session ends (closed, expired, refused) or every
    /// handle is gone.
    pub async fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        let final_state = 'session: loop {
            let mut connected = None;
            for _ in 0..self.config.hosts.len() {
                let host = self.config.hosts[self.next_host % self.config.hosts.len()].clone();
                self.next_host = (self.next_host + 1) % self.config.hosts.len();
                match self.try_host(&host).await {
                    Attempt::Connected(stream) => {
                        connected = Some(stream);
                        break;
                    }
                    Attempt::Failed(reason) => {
                        self.update_status(|s| s.last_error = Some(format!("{host}: {reason}")));
                    }
                    Attempt::Final(state) => break 'session state,
                }
            }
            let Some(stream) = connected else {
                // A full round failed: what waits cannot be sent soon.
                self.fail_queued(|| Error::ConnectionLoss);
                if let Some(state) = self.pause(backoff).await {
                    break 'session state;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            };
            let started = Instant::now();
            match self.serve(stream).await {
                Ended::Lost(reason) => {
                    self.update_status(|s| {
                        s.state = SessionState::Disconnected;
                        s.last_error = Some(reason.clone());
                    });
                    self.deliver_state(KeeperState::Disconnected);
                    // A server that drops every session at once must not
                    // make the client spin.
                    if started.elapsed() < Duration::from_secs(1) {
                        if let Some(state) = self.pause(backoff).await {
                            break 'session state;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    } else {
                        backoff = FIRST_BACKOFF;
                    }
                }
                Ended::Final(state) => break 'session state,
            }
        };
        self.finish(final_state).await;
    }

    /// Waits out a backoff while still taking commands.
    async fn pause(&mut self, pause: Duration) -> Option<SessionState> {
        let until = Instant::now() + pause;
        loop {
            tokio::select! {
                _ = sleep_until(until) => return None,
                command = self.commands.recv() => {
                    if let Some(state) = self.queue_while_disconnected(command) {
                        return Some(state);
                    }
                }
            }
        }
    }

    /// Queues a command that arrived with no connection; a close or the
    /// last handle going away ends the session at once.
    fn queue_while_disconnected(&mut self, command: Option<Command>) -> Option<SessionState> {
        match command {
            None => Some(SessionState::Closed),
            Some(Command::Close { reply }) => {
                self.close_waiters.push(reply);
                Some(SessionState::Closed)
            }
            Some(Command::Watches { reply }) => {
                let _ = reply.send(self.watches.counts());
                None
            }
            Some(Command::RemoveWatches {
                server_path,
                client_path,
                kind,
                local: true,
                reply,
            }) => {
                let result = if self.watches.contains(&server_path, kind) {
                    self.remove_watches_locally(&server_path, &client_path, kind, false);
                    Ok(())
                } else {
                    Err(Error::keeper(ErrorCode::NoWatcher.code(), &client_path))
                };
                let _ = reply.send(result);
                None
            }
            Some(other) => {
                self.queued.push_back(other);
                None
            }
        }
    }

    fn fail_queued(&mut self, error: impl Fn() -> Error) {
        for command in self.queued.drain(..) {
            fail_command(command, error());
        }
    }

    fn connect_timeout(&self) -> Duration {
        self.config.connect_timeout.unwrap_or_else(|| {
            let hosts = u32::try_from(self.config.hosts.len())
                .unwrap_or(u32::MAX)
                .max(1);
            (self.config.session_timeout / hosts).max(Duration::from_millis(500))
        })
    }

    /// One server: resolve, connect, handshake. Takes commands meanwhile.
    async fn try_host(&mut self, host: &HostPort) -> Attempt {
        let deadline = Instant::now() + self.connect_timeout();
        let attempt = connect_and_handshake(
            host.clone(),
            self.handshake_request(),
            self.config.max_frame_len,
            deadline,
        );
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                outcome = &mut attempt => {
                    return match outcome {
                        Ok((stream, addr, response)) => self.on_handshake(stream, addr, response),
                        Err(reason) => Attempt::Failed(reason),
                    };
                }
                command = self.commands.recv() => {
                    if let Some(state) = self.queue_while_disconnected(command) {
                        return Attempt::Final(state);
                    }
                }
            }
        }
    }

    fn handshake_request(&self) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: i32::try_from(self.config.session_timeout.as_millis()).unwrap_or(i32::MAX),
            session_id: self.session_id,
            password: self.password.clone(),
            read_only: Some(self.config.read_only),
        }
    }

    fn on_handshake(
        &mut self,
        stream: TcpStream,
        addr: SocketAddr,
        response: ConnectResponse,
    ) -> Attempt {
        if response.timeout_ms <= 0 {
            return Attempt::Final(SessionState::Expired);
        }
        self.session_id = response.session_id;
        self.password = response.password;
        self.negotiated_timeout =
            Duration::from_millis(u64::from(response.timeout_ms.unsigned_abs()));
        let read_only = response.read_only == Some(true);
        let state = if read_only {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        };
        let timeout_ms = response.timeout_ms.unsigned_abs();
        let session_id = self.session_id;
        self.update_status(|s| {
            s.state = state;
            s.server = Some(addr);
            s.session_id = session_id;
            s.negotiated_timeout_ms = timeout_ms;
        });
        self.deliver_state(if read_only {
            KeeperState::ConnectedReadOnly
        } else {
            KeeperState::SyncConnected
        });
        Attempt::Connected(stream)
    }

    /// Serves one connection until it ends.
    async fn serve(&mut self, stream: TcpStream) -> Ended {
        let (read_half, write_half) = stream.into_split();
        let (frames_tx, mut frames) = mpsc::channel(READER_QUEUE);
        let reader = tokio::spawn(read_frames(read_half, frames_tx, self.config.max_frame_len));
        let mut conn = Connection {
            writer: write_half,
            pending: HashMap::new(),
            auth_waiters: VecDeque::new(),
            write_timeout: self.negotiated_timeout * 2 / 3,
            last_send: Instant::now(),
            closing: false,
        };
        let mut ended = self.serve_connection(&mut conn, &mut frames).await;
        reader.abort();
        // The server drops the connection after a close: that is the end.
        if conn.closing {
            ended = Ended::Final(SessionState::Closed);
        }
        let error = match &ended {
            Ended::Lost(_) => Error::ConnectionLoss,
            Ended::Final(state) => final_error(*state),
        };
        for (_, pending) in conn.pending.drain() {
            match pending.reply {
                PendingReply::Close(reply) => self.close_waiters.push(reply),
                _ => fail_pending(pending, &error),
            }
        }
        for waiter in conn.auth_waiters.drain(..).flatten() {
            let _ = waiter.send(Err(match &ended {
                Ended::Lost(_) => Error::ConnectionLoss,
                Ended::Final(state) => final_error(*state),
            }));
        }
        ended
    }

    async fn serve_connection(
        &mut self,
        conn: &mut Connection,
        frames: &mut mpsc::Receiver<Frame>,
    ) -> Ended {
        // Credentials go first so that re-registered watches pass their
        // READ checks, then the watches, then what waited for a connection.
        for (scheme, auth) in self.auth.clone() {
            if let Err(e) = conn.send_auth(&scheme, &auth, None).await {
                return Ended::Lost(e);
            }
        }
        for request in self.watches.set_watches_requests(self.last_zxid) {
            if let Err(e) = conn.send(xid::SET_WATCHES, &request).await {
                return Ended::Lost(e);
            }
        }
        while let Some(command) = self.queued.pop_front() {
            if let Some(ended) = self.dispatch(conn, command).await {
                return ended;
            }
        }
        let ping_interval = self.negotiated_timeout / 3;
        let read_timeout = self.negotiated_timeout * 2 / 3;
        let mut last_recv = Instant::now();
        let mut close_deadline: Option<Instant> = None;
        // One timer, armed at the earliest deadline and checked when it
        // fires, rather than a timer per deadline re-registered on every
        // request and reply: the deadlines only move later (a send or a
        // receive pushes them back), except the close deadline, which re-arms
        // it when set.
        let timer = sleep_until(earliest_deadline(
            conn.last_send + ping_interval,
            last_recv + read_timeout,
            close_deadline,
        ));
        tokio::pin!(timer);
        loop {
            tokio::select! {
                frame = frames.recv() => {
                    last_recv = Instant::now();
                    let frame = frame.unwrap_or(Frame::Closed("reader stopped".into()));
                    if let Some(ended) = self.on_frame(conn, frame) {
                        return ended;
                    }
                }
                command = self.commands.recv(), if !conn.closing => {
                    let command = match command {
                        Some(command) => command,
                        // Every handle is gone: end the session politely.
                        None => {
                            let (reply, _) = oneshot::channel();
                            Command::Close { reply }
                        }
                    };
                    let is_close = matches!(command, Command::Close { .. });
                    if let Some(ended) = self.dispatch(conn, command).await {
                        return ended;
                    }
                    if is_close {
                        let close_at = Instant::now() + CLOSE_TIMEOUT;
                        close_deadline = Some(close_at);
                        if close_at < timer.deadline() {
                            timer.as_mut().reset(close_at);
                        }
                    }
                }
                _ = &mut timer => {
                    let now = Instant::now();
                    if close_deadline.is_some_and(|close_at| now >= close_at) {
                        return Ended::Final(SessionState::Closed);
                    }
                    if now >= last_recv + read_timeout {
                        return Ended::Lost(format!(
                            "no answer from the server for {} ms",
                            read_timeout.as_millis()
                        ));
                    }
                    if now >= conn.last_send + ping_interval {
                        if let Err(e) = conn.send(xid::PING, &Request::Ping).await {
                            return Ended::Lost(e);
                        }
                    }
                    timer.as_mut().reset(earliest_deadline(
                        conn.last_send + ping_interval,
                        last_recv + read_timeout,
                        close_deadline,
                    ));
                }
            }
        }
    }

    /// Sends a command; `Some` when that ends the connection.
    async fn dispatch(&mut self, conn: &mut Connection, command: Command) -> Option<Ended> {
        match command {
            Command::Call {
                request,
                path,
                watch,
                reply,
            } => {
                let xid = self.take_xid();
                let op = request.op_code();
                if let Err(e) = conn.send(xid, &request).await {
                    let _ = reply.send(Err(Error::ConnectionLoss));
                    return Some(Ended::Lost(e));
                }
                conn.pending.insert(
                    xid,
                    Pending {
                        op,
                        path,
                        watch,
                        reply: PendingReply::Call(reply),
                    },
                );
            }
            Command::RemoveWatches {
                server_path,
                client_path,
                kind,
                local,
                reply,
            } => {
                if !self.watches.contains(&server_path, kind) {
                    let _ = reply.send(Err(Error::keeper(
                        ErrorCode::NoWatcher.code(),
                        &client_path,
                    )));
                    return None;
                }
                let xid = self.take_xid();
                let request = Request::RemoveWatches {
                    path: server_path.clone(),
                    watcher_type: watcher_type_code(kind),
                };
                if let Err(e) = conn.send(xid, &request).await {
                    if local {
                        self.remove_watches_locally(&server_path, &client_path, kind, false);
                        let _ = reply.send(Ok(()));
                    } else {
                        let _ = reply.send(Err(Error::ConnectionLoss));
                    }
                    return Some(Ended::Lost(e));
                }
                conn.pending.insert(
                    xid,
                    Pending {
                        op: OpCode::RemoveWatches as i32,
                        path: Some(client_path.clone()),
                        watch: None,
                        reply: PendingReply::RemoveWatches {
                            server_path,
                            client_path,
                            kind,
                            reply,
                        },
                    },
                );
            }
            Command::AddAuth {
                scheme,
                auth,
                reply,
            } => {
                self.auth.push((scheme.clone(), auth.clone()));
                if let Err(e) = conn.send_auth(&scheme, &auth, Some(reply)).await {
                    return Some(Ended::Lost(e));
                }
            }
            Command::Watches { reply } => {
                let _ = reply.send(self.watches.counts());
            }
            Command::Close { reply } => {
                let xid = self.take_xid();
                conn.closing = true;
                if conn.send(xid, &Request::CloseSession).await.is_err() {
                    self.close_waiters.push(reply);
                    return Some(Ended::Final(SessionState::Closed));
                }
                conn.pending.insert(
                    xid,
                    Pending {
                        op: OpCode::CloseSession as i32,
                        path: None,
                        watch: None,
                        reply: PendingReply::Close(reply),
                    },
                );
            }
        }
        None
    }

    fn take_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        // Negative xids are the protocol's special ones.
        self.next_xid = if self.next_xid == i32::MAX {
            1
        } else {
            self.next_xid + 1
        };
        xid
    }

    /// Handles one frame from the server; `Some` when the connection ends.
    fn on_frame(&mut self, conn: &mut Connection, frame: Frame) -> Option<Ended> {
        let bytes = match frame {
            Frame::Data(bytes) => bytes,
            Frame::Closed(reason) => return Some(Ended::Lost(reason)),
            Frame::TooLarge { header, len } => {
                let error = Error::FrameTooLarge {
                    len,
                    limit: self.config.max_frame_len,
                };
                return match header.and_then(|h| conn.pending.remove(&h.xid)) {
                    Some(pending) => {
                        fail_pending(pending, &error);
                        None
                    }
                    None => Some(Ended::Lost(error.to_string())),
                };
            }
        };
        let header = match decode_reply_header(&bytes) {
            Ok(header) => header,
            Err(e) => return Some(Ended::Lost(format!("undecodable reply: {e}"))),
        };
        match header.xid {
            xid::WATCH_EVENT => {
                match decode_watch_event(&bytes) {
                    Ok((header, event)) => self.on_notification(header.zxid, event),
                    Err(e) => return Some(Ended::Lost(format!("undecodable notification: {e}"))),
                }
                None
            }
            xid::PING => None,
            xid::AUTH => {
                let waiter = conn.auth_waiters.pop_front().flatten();
                if header.err == ErrorCode::AuthFailed.code() {
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(Err(Error::AuthFailed));
                    }
                    return Some(Ended::Final(SessionState::AuthFailed));
                }
                if let Some(waiter) = waiter {
                    let _ = waiter.send(if header.err == 0 {
                        Ok(())
                    } else {
                        Err(Error::Keeper {
                            code: header.err,
                            path: None,
                        })
                    });
                }
                None
            }
            // A refused re-registration leaves the watches in the registry:
            // they fire nowhere, as with Apache's client.
            xid::SET_WATCHES => None,
            xid => {
                let Some(pending) = conn.pending.remove(&xid) else {
                    return Some(Ended::Lost(format!("reply to unknown xid {xid}")));
                };
                if header.zxid > 0 {
                    self.last_zxid = header.zxid;
                }
                match decode_reply(pending.op, &bytes) {
                    Ok((header, response)) => self.on_reply(pending, header, response),
                    Err(e) => {
                        fail_pending(pending, &Error::Protocol(e.clone()));
                        Some(Ended::Lost(format!("undecodable reply: {e}")))
                    }
                }
            }
        }
    }

    fn on_reply(
        &mut self,
        pending: Pending,
        header: ReplyHeader,
        response: Response,
    ) -> Option<Ended> {
        let Pending {
            op,
            path,
            watch,
            reply,
        } = pending;
        if let (Some(watch), Some(client_path)) = (watch, path.as_deref()) {
            let server_path = self.config.chroot.to_server(client_path);
            let kind = match watch {
                WatchOnReply::Data if header.err == 0 => Some(WatchKind::Data),
                WatchOnReply::Data
                    if header.err == ErrorCode::NoNode.code() && op == OpCode::Exists as i32 =>
                {
                    Some(WatchKind::Exist)
                }
                WatchOnReply::Child if header.err == 0 => Some(WatchKind::Child),
                WatchOnReply::Persistent if header.err == 0 => Some(WatchKind::Persistent),
                WatchOnReply::PersistentRecursive if header.err == 0 => {
                    Some(WatchKind::PersistentRecursive)
                }
                _ => None,
            };
            if let Some(kind) = kind {
                self.watches.add(kind, &server_path);
            }
        }
        match reply {
            PendingReply::Call(reply) => {
                let result = if header.err == 0 {
                    Ok((header, response))
                } else {
                    Err(Error::Keeper {
                        code: header.err,
                        path,
                    })
                };
                let _ = reply.send(result);
                None
            }
            PendingReply::RemoveWatches {
                server_path,
                client_path,
                kind,
                reply,
            } => {
                let result = if header.err == 0 {
                    self.remove_watches_locally(&server_path, &client_path, kind, true);
                    Ok(())
                } else {
                    Err(Error::keeper(header.err, &client_path))
                };
                let _ = reply.send(result);
                None
            }
            PendingReply::Close(reply) => {
                self.close_waiters.push(reply);
                Some(Ended::Final(SessionState::Closed))
            }
        }
    }

    fn remove_watches_locally(
        &mut self,
        server_path: &str,
        client_path: &str,
        kind: WatcherType,
        connected: bool,
    ) {
        let state = if connected {
            KeeperState::SyncConnected
        } else {
            KeeperState::Disconnected
        };
        for event_type in self.watches.remove(server_path, kind) {
            let _ = self.events.send(WatchedEvent {
                event_type,
                state,
                path: Some(client_path.to_string()),
                zxid: -1,
            });
        }
    }

    fn on_notification(&mut self, zxid: i64, event: crate::proto::WatcherEvent) {
        let event_type = event_type_from(event.event_type);
        let state = keeper_state_from(event.state);
        self.watches.on_event(event_type, &event.path);
        let path = self.config.chroot.to_client(&event.path);
        let _ = self.events.send(WatchedEvent {
            event_type,
            state,
            path: Some(path),
            zxid,
        });
    }

    /// Delivers a session state change once.
    fn deliver_state(&mut self, state: KeeperState) {
        if self.last_event_state == Some(state) {
            return;
        }
        self.last_event_state = Some(state);
        let _ = self.events.send(WatchedEvent::state(state));
    }

    fn update_status(&self, change: impl FnOnce(&mut Status)) {
        self.status.send_modify(change);
    }

    /// Publishes the final state and answers everything still waiting.
    async fn finish(mut self, state: SessionState) {
        self.update_status(|s| s.state = state);
        self.deliver_state(match state {
            SessionState::Expired => KeeperState::Expired,
            SessionState::AuthFailed => KeeperState::AuthFailed,
            _ => KeeperState::Closed,
        });
        self.fail_queued(|| final_error(state));
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(Ok(()));
        }
        self.commands.close();
        while let Some(command) = self.commands.recv().await {
            fail_command(command, final_error(state));
        }
    }
}

enum Attempt {
    Connected(TcpStream),
    Failed(String),
    Final(SessionState),
}

/// The write side of one connection and what waits for its replies.
struct Connection {
    writer: OwnedWriteHalf,
    pending: HashMap<i32, Pending>,
    /// One entry per auth packet sent, in order: auth replies carry no xid
    /// of their own. `None` for the replays after a reconnect.
    auth_waiters: VecDeque<Option<oneshot::Sender<Result<(), Error>>>>,
    write_timeout: Duration,
    last_send: Instant,
    /// A close was sent: take no more commands.
    closing: bool,
}

impl Connection {
    async fn send(&mut self, xid: i32, request: &Request) -> Result<(), String> {
        let frame = request.encode(xid);
        match timeout(self.write_timeout, self.writer.write_all(&frame)).await {
            Ok(Ok(())) => {
                self.last_send = Instant::now();
                Ok(())
            }
            Ok(Err(e)) => Err(format!("write failed: {e}")),
            Err(_) => Err(format!(
                "the server did not take a request for {} ms",
                self.write_timeout.as_millis()
            )),
        }
    }

    async fn send_auth(
        &mut self,
        scheme: &str,
        auth: &[u8],
        waiter: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<(), String> {
        let request = Request::Auth {
            auth_type: 0,
            scheme: scheme.to_string(),
            auth: auth.to_vec(),
        };
        match self.send(xid::AUTH, &request).await {
            Ok(()) => {
                self.auth_waiters.push_back(waiter);
                Ok(())
            }
            Err(e) => {
                if let Some(waiter) = waiter {
                    let _ = waiter.send(Err(Error::ConnectionLoss));
                }
                Err(e)
            }
        }
    }
}

/// The first of a connection's deadlines: the next ping, the end of the
/// silence it tolerates, and (once closing) the close timeout.
fn earliest_deadline(next_ping: Instant, silence: Instant, close: Option<Instant>) -> Instant {
    let first = next_ping.min(silence);
    close.map_or(first, |close| first.min(close))
}

/// Resolves `host`, connects to its first reachable address and exchanges
/// the handshake, all before `deadline`.
async fn connect_and_handshake(
    host: HostPort,
    request: ConnectRequest,
    max_frame_len: usize,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr, ConnectResponse), String> {
    let work = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.host.as_str(), host.port))
            .await
            .map_err(|e| format!("cannot resolve: {e}"))?
            .collect();
        let mut last_error = String::from("no address");
        for addr in addrs {
            match handshake(addr, &request, max_frame_len).await {
                Ok((stream, response)) => return Ok((stream, addr, response)),
                Err(e) => last_error = format!("{addr}: {e}"),
            }
        }
        Err(last_error)
    };
    match tokio::time::timeout_at(deadline, work).await {
        Ok(result) => result,
        Err(_) => Err("timed out connecting".to_string()),
    }
}

async fn handshake(
    addr: SocketAddr,
    request: &ConnectRequest,
    max_frame_len: usize,
) -> Result<(TcpStream, ConnectResponse), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    // Requests are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    stream
        .write_all(&request.encode())
        .await
        .map_err(|e| format!("sending the handshake: {e}"))?;
    let len = stream
        .read_i32()
        .await
        .map_err(|e| format!("the server closed the connection during the handshake ({e})"))?;
    let len = frame_len(len, max_frame_len).map_err(|e| e.to_string())?;
    let mut body = vec![0; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("reading the handshake: {e}"))?;
    let response = ConnectResponse::decode(&body).map_err(|e| format!("bad handshake: {e}"))?;
    Ok((stream, response))
}

fn frame_len(len: i32, max: usize) -> Result<usize, DecodeError> {
    usize::try_from(len)
        .ok()
        .filter(|&l| l <= max)
        .ok_or(DecodeError::InvalidValue {
            what: "frame length",
            value: i64::from(len),
        })
}

/// Reads frames until the socket ends. A frame over the limit is read
/// through and dropped, keeping its header so the request it answers fails
/// alone instead of the whole connection.
async fn read_frames(reader: OwnedReadHalf, frames: mpsc::Sender<Frame>, max: usize) {
    // Buffered: a length and a body are two reads, which would otherwise be
    // two system calls per reply under load.
    let mut reader = tokio::io::BufReader::with_capacity(64 * 1024, reader);
    let closed = loop {
        let len = match reader.read_i32().await {
            Ok(len) => len,
            Err(e) => break format!("connection closed by the server ({e})"),
        };
        let Ok(len) = usize::try_from(len) else {
            break format!("negative frame length {len}");
        };
        let frame = if len <= max {
            let mut body = vec![0; len];
            if let Err(e) = reader.read_exact(&mut body).await {
                break format!("connection closed mid-frame ({e})");
            }
            Frame::Data(body)
        } else {
            let mut head = [0u8; ReplyHeader::LEN];
            let header_len = head.len().min(len);
            if let Err(e) = reader.read_exact(&mut head[..header_len]).await {
                break format!("connection closed mid-frame ({e})");
            }
            let header = decode_reply_header(&head[..header_len]).ok();
            let rest = (len - header_len) as u64;
            let mut sink = tokio::io::sink();
            match tokio::io::copy(&mut (&mut reader).take(rest), &mut sink).await {
                Ok(n) if n == rest => {}
                _ => break "connection closed mid-frame".to_string(),
            }
            Frame::TooLarge { header, len }
        };
        if frames.send(frame).await.is_err() {
            return;
        }
    };
    let _ = frames.send(Frame::Closed(closed)).await;
}

fn final_error(state: SessionState) -> Error {
    match state {
        SessionState::Expired => Error::SessionExpired,
        SessionState::AuthFailed => Error::AuthFailed,
        _ => Error::Closed,
    }
}

fn clone_error(error: &Error) -> Error {
    match error {
        Error::ConnectionLoss => Error::ConnectionLoss,
        Error::SessionExpired => Error::SessionExpired,
        Error::AuthFailed => Error::AuthFailed,
        Error::FrameTooLarge { len, limit } => Error::FrameTooLarge {
            len: *len,
            limit: *limit,
        },
        Error::Protocol(e) => Error::Protocol(e.clone()),
        _ => Error::Closed,
    }
}

fn fail_pending(pending: Pending, error: &Error) {
    match pending.reply {
        PendingReply::Call(reply) => {
            let _ = reply.send(Err(clone_error(error)));
        }
        PendingReply::RemoveWatches { reply, .. } => {
            let _ = reply.send(Err(clone_error(error)));
        }
        // The session is over either way.
        PendingReply::Close(reply) => {
            let _ = reply.send(Ok(()));
        }
    }
}

fn fail_command(command: Command, error: Error) {
    match command {
        Command::Call { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::RemoveWatches { reply, .. } | Command::AddAuth { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Close { reply } => {
            let _ = reply.send(Ok(()));
        }
        Command::Watches { reply } => {
            let _ = reply.send(WatchCounts::default());
        }
    }
}

fn watcher_type_code(kind: WatcherType) -> i32 {
    match kind {
        WatcherType::Children => 1,
        WatcherType::Data => 2,
        WatcherType::Any => 3,
        WatcherType::Persistent => 4,
        WatcherType::PersistentRecursive => 5,
    }
}

fn event_type_from(value: i32) -> EventType {
    match value {
        1 => EventType::NodeCreated,
        2 => EventType::NodeDeleted,
        3 => EventType::NodeDataChanged,
        4 => EventType::NodeChildrenChanged,
        5 => EventType::DataWatchRemoved,
        6 => EventType::ChildWatchRemoved,
        7 => EventType::PersistentWatchRemoved,
        _ => EventType::None,
    }
}

fn keeper_state_from(value: i32) -> KeeperState {
    match value {
        0 => KeeperState::Disconnected,
        4 => KeeperState::AuthFailed,
        5 => KeeperState::ConnectedReadOnly,
        -112 => KeeperState::Expired,
        7 => KeeperState::Closed,
        _ => KeeperState::SyncConnected,
    }
}
