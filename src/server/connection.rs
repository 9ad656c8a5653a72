//! One client connection: the handshake, then three tasks.
//!
//! - The reader decodes requests in order, prepares writes and hands them to
//!   the pipeline at once (so one client's writes can share a log sync), and
//!   queues every request's place in line. A write waits only for the
//!   connection's earlier reads to run, so no read sees a later write.
//! - The responder walks that line in order: it waits for a write's outcome,
//!   or runs a read once everything before it has completed. Replies therefore
//!   leave in request order, and a read sees the client's own earlier writes.
//! - The writer drains the outbound queue (replies and watch events) to the
//!   socket, flushing when the queue runs dry.
//!
//! Malformed or oversized frames close this connection and no other.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit};
use tracing::{debug, info, warn};

use crate::acl;
use crate::jute::Record;
use crate::proto::codes::MAX_FRAME_LEN;
use crate::proto::records::{
    decode_request, encode_reply, ConnectRequest, ConnectResponse, MultiOp, MultiResult,
    ReplyHeader, Request, Response,
};
use crate::proto::{ErrorCode, Id, OpCode};
use crate::txn::{Applied, Txn, TxnOp, TxnResult};

use super::prep::{self, PrepContext, Rejected};
use super::read::{self, ReadContext};
use super::session::session_password;
use super::stats::ConnStats;
use super::{fourlw, pipeline, ConnEntry, ConnId, Outbound, Shared};

/// Frames queued for the socket. A client that stops reading while its
/// queue fills is disconnected rather than buffered without bound.
const OUTBOUND_CAPACITY: usize = 8192;
/// How long a new connection may take to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the last replies (an error before a close, the closeSession
/// answer) may take to reach a client before the socket is dropped anyway.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the reader stopped.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame length {0} is outside 0..={MAX_FRAME_LEN}")]
    BadLength(i64),
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Reads of one connection that are in line but not yet executed.
///
/// Writes go to the pipeline as soon as they are read, but reads run later, in
/// the responder. A write must therefore wait until every read sent before it
/// has run, or the read would see (and set its watch after) the effect of a
/// request the client sent after it.
#[derive(Debug, Default)]
struct ReadsInLine {
    waiting: AtomicUsize,
    /// Set when the responder stops: nothing will drain the line any more.
    closed: AtomicBool,
    drained: Notify,
}

impl ReadsInLine {
    fn queued(&self) {
        self.waiting.fetch_add(1, SeqCst);
    }

    fn executed(&self) {
        if self.waiting.fetch_sub(1, SeqCst) == 1 {
            self.drained.notify_waiters();
        }
    }

    fn close(&self) {
        self.closed.store(true, SeqCst);
        self.drained.notify_waiters();
    }

    /// Waits until every read queued so far has run (or the responder stopped).
    async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            // Registered before the check, so a wake-up between the check and
            // the await is not lost.
            notified.as_mut().enable();
            if self.waiting.load(SeqCst) == 0 || self.closed.load(SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// Marks the line closed however the responder ends.
struct CloseOnDrop(Arc<ReadsInLine>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A request's place in the reply line.
enum Pending {
    /// A reply already decided (errors found while preparing, auth).
    Ready {
        frame: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    },
    Write {
        xid: i32,
        op: i32,
        multi_ops: Vec<i32>,
        outcome: oneshot::Receiver<pipeline::Outcome>,
        started: tokio::time::Instant,
        permit: OwnedSemaphorePermit,
    },
    Read {
        xid: i32,
        request: Request,
        /// The connection's identities when the request was read: a later
        /// addauth does not change what an earlier read may see.
        auth: Arc<Vec<Id>>,
        started: tokio::time::Instant,
        permit: OwnedSemaphorePermit,
    },
    /// Flush what came before, then close.
    Close,
}

pub async fn serve(shared: Arc<Shared>, stream: TcpStream, remote: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut write_half = write_half;

    let first = match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.read_i32()).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            debug!(%remote, error = %e, "connection closed before its handshake");
            return;
        }
        Err(_) => {
            debug!(%remote, "no handshake within {HANDSHAKE_TIMEOUT:?}; closing");
            return;
        }
    };
    // Before a session exists, the first four bytes may be a four-letter word
    // rather than a length.
    if let Some(word) = fourlw::word_from_prefix(first) {
        if word == "stmk" && shared.options.config.is_four_letter_word_enabled(word) {
            // The new mask follows the word as a big-endian long.
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.read_i64()).await {
                Ok(Ok(mask)) => shared.trace_mask.store(mask, Relaxed),
                _ => {
                    debug!(%remote, "stmk without a mask; closing");
                    return;
                }
            }
        }
        let answer = fourlw::answer(&shared, word);
        let _ = write_half.write_all(answer.as_bytes()).await;
        let _ = write_half.shutdown().await;
        return;
    }
    let handshake = match read_body(&mut reader, first).await {
        Ok(body) => body,
        Err(e) => {
            warn!(%remote, error = %e, "bad handshake; closing");
            return;
        }
    };
    let request = match ConnectRequest::from_bytes(&handshake) {
        Ok(r) => r,
        Err(e) => {
            warn!(%remote, error = %e, "malformed connect request; closing");
            return;
        }
    };

    let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let conn_id = shared.next_conn_id();
    let kill = Arc::new(Notify::new());
    let mut writer = tokio::spawn(write_loop(write_half, outbound_rx));

    let Some((session_id, timeout_ms)) =
        establish_session(&shared, &request, remote, conn_id, &outbound_tx).await
    else {
        let _ = outbound_tx.send(Outbound::Close).await;
        drop(outbound_tx);
        let _ = writer.await;
        return;
    };

    let stats = Arc::new(ConnStats::default());
    if request.session_id == 0 {
        // `cons` shows the session's creation as the connection's first
        // operation, as Apache does.
        note_answered(&stats, 0, OpCode::CreateSession as i32);
    }
    let auth = vec![Id::new("ip", remote.ip().to_string())];
    shared.hub().conns.insert(
        conn_id,
        ConnEntry {
            session_id,
            remote,
            auth: auth.clone(),
            outbound: outbound_tx.clone(),
            kill: kill.clone(),
            stats: stats.clone(),
            session_timeout_ms: timeout_ms,
            established_ms: shared.clock.wall_ms(),
        },
    );
    // A session lives on one connection at a time: a client that reconnects
    // before its old connection was noticed dead takes the session over.
    let previous = shared.sessions().owner.insert(session_id, conn_id);
    if let Some(previous) = previous.filter(|p| *p != conn_id) {
        if let Some(old) = shared.hub().conns.get(&previous) {
            info!(
                session = format_args!("0x{session_id:x}"),
                "session moved to a new connection; closing the old one"
            );
            let _ = old.outbound.try_send(Outbound::Close);
            old.kill.notify_one();
        }
    }
    info!(
        session = format_args!("0x{session_id:x}"),
        %remote,
        timeout_ms,
        "session established"
    );

    let (line_tx, line_rx) = mpsc::unbounded_channel();
    let reads_in_line = Arc::new(ReadsInLine::default());
    let read_only = shared.sessions().read_only.contains(&session_id);
    let ctx = ConnCtx {
        shared: shared.clone(),
        conn_id,
        session_id,
        read_only,
        remote,
        auth: Arc::new(auth),
        stats: stats.clone(),
        reads_in_line: reads_in_line.clone(),
    };
    let responder = tokio::spawn(respond_loop(
        shared.clone(),
        conn_id,
        session_id,
        line_rx,
        outbound_tx.clone(),
        stats,
        reads_in_line,
    ));

    let outcome = tokio::select! {
        r = read_loop(ctx, &mut reader, &line_tx) => r,
        _ = kill.notified() => Ok(()),
    };
    if let Err(e) = outcome {
        match e {
            ConnError::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                debug!(session = format_args!("0x{session_id:x}"), %remote, "client closed the connection")
            }
            e => {
                warn!(session = format_args!("0x{session_id:x}"), %remote, error = %e, "closing connection")
            }
        }
    }
    // Let the replies already in line go out, then close.
    let _ = line_tx.send(Pending::Close);
    drop(line_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), responder).await;
    drop(outbound_tx);
    {
        let mut hub = shared.hub();
        hub.conns.remove(&conn_id);
        hub.watches.remove_watcher(conn_id);
    }
    {
        let mut sessions = shared.sessions();
        if sessions.owner.get(&session_id) == Some(&conn_id) {
            sessions.owner.remove(&session_id);
        }
    }
    // The responder's last frames may still be queued: let the writer send
    // them, but not wait on a client that does not read.
    if tokio::time::timeout(FINAL_FLUSH_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    debug!(session = format_args!("0x{session_id:x}"), %remote, "connection closed");
}

/// Validates the connect request and creates or resumes the session.
/// Returns the session and its timeout, or `None` after telling the client
/// why not (or closing on it).
async fn establish_session(
    shared: &Shared,
    req: &ConnectRequest,
    remote: SocketAddr,
    conn_id: ConnId,
    outbound: &mpsc::Sender<Outbound>,
) -> Option<(i64, i32)> {
    if shared.ensemble().is_some_and(|e| !e.serving()) {
        if shared.read_only() {
            return establish_read_only_session(shared, req, remote, outbound).await;
        }
        // As Apache's server while it looks for a leader: no session, the
        // client tries the next server of its list.
        info!(%remote, "refusing a session: this member is not in contact with a quorum");
        return None;
    }
    let last_zxid = shared.tree().last_zxid();
    if req.last_zxid_seen > last_zxid {
        // The client has seen a newer state than this server holds; serving it
        // would take it back in time.
        warn!(
            %remote,
            "refusing session request: client has seen zxid 0x{:x}, our last zxid is 0x{:x}; client must try another server",
            req.last_zxid_seen, last_zxid
        );
        return None;
    }
    let opts = &shared.options;
    let timeout_ms = req
        .timeout_ms
        .clamp(opts.min_session_timeout_ms(), opts.max_session_timeout_ms());
    let refuse = |why: &str| {
        info!(%remote, session = format_args!("0x{:x}", req.session_id), "{why}");
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            password: vec![0; 16],
            read_only: req.read_only.map(|_| false),
        }
    };
    let (session_id, timeout_ms) = if req.session_id != 0 {
        let known = shared.tree().session_timeout(req.session_id);
        let alive = shared.sessions().touch(req.session_id, shared.elapsed_ms());
        match known {
            Some(timeout) if alive => {
                if req.password != session_password(req.session_id) {
                    let frame = connect_frame(&refuse("wrong password for session; refusing"));
                    let _ = outbound.send(Outbound::Frame(frame)).await;
                    return None;
                }
                (req.session_id, timeout)
            }
            _ => {
                let frame = connect_frame(&refuse("session expired or unknown; refusing"));
                let _ = outbound.send(Outbound::Frame(frame)).await;
                return None;
            }
        }
    } else {
        let session_id = shared.sessions().ids.next_id();
        let txn = Txn {
            session_id,
            cxid: 0,
            time_ms: shared.clock.wall_ms(),
            auth: Vec::new(),
            op: TxnOp::CreateSession { timeout_ms },
        };
        let Ok(applied) = pipeline::submit(shared, txn, Some(conn_id)).await? else {
            warn!(%remote, "cannot create a session while the transaction log refuses writes");
            return None;
        };
        if applied.result != TxnResult::SessionCreated {
            warn!(%remote, result = ?applied.result, "could not create a session");
            return None;
        }
        shared
            .sessions()
            .tracker
            .add(session_id, timeout_ms, shared.elapsed_ms());
        (session_id, timeout_ms)
    };
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms,
        session_id,
        password: session_password(session_id),
        read_only: req.read_only.map(|_| false),
    };
    outbound
        .send(Outbound::Frame(connect_frame(&response)))
        .await
        .ok()?;
    Some((session_id, timeout_ms))
}

/// A session on a member cut off from its quorum with `readonlymode.enabled`:
/// only for clients that asked for read-only, and only new ones or this
/// member's own read-only sessions (a global session could not be kept
/// alive, nor its writes served, from here).
async fn establish_read_only_session(
    shared: &Shared,
    req: &ConnectRequest,
    remote: SocketAddr,
    outbound: &mpsc::Sender<Outbound>,
) -> Option<(i64, i32)> {
    if req.read_only != Some(true) {
        info!(%remote, "refusing a session request from a client that is not read-only: this member serves read-only");
        return None;
    }
    let opts = &shared.options;
    let now = shared.elapsed_ms();
    let timeout_ms = req
        .timeout_ms
        .clamp(opts.min_session_timeout_ms(), opts.max_session_timeout_ms());
    let session_id = {
        let mut sessions = shared.sessions();
        if req.session_id != 0 {
            let ours = sessions.read_only.contains(&req.session_id)
                && req.password == session_password(req.session_id);
            if !ours || !sessions.touch(req.session_id, now) {
                info!(%remote, session = format_args!("0x{:x}", req.session_id),
                    "refusing to resume a global session in read-only mode");
                return None;
            }
            req.session_id
        } else {
            let id = sessions.ids.next_id();
            sessions.tracker.add(id, timeout_ms, now);
            sessions.read_only.insert(id);
            id
        }
    };
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms,
        session_id,
        password: session_password(session_id),
        read_only: Some(true),
    };
    outbound
        .send(Outbound::Frame(connect_frame(&response)))
        .await
        .ok()?;
    Some((session_id, timeout_ms))
}

fn connect_frame(response: &ConnectResponse) -> Vec<u8> {
    let body = response.to_bytes();
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

async fn read_body(reader: &mut BufReader<OwnedReadHalf>, len: i32) -> Result<Vec<u8>, ConnError> {
    if len < 0 || len as usize > MAX_FRAME_LEN {
        return Err(ConnError::BadLength(i64::from(len)));
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

/// The reader's view of its connection.
struct ConnCtx {
    shared: Arc<Shared>,
    conn_id: ConnId,
    session_id: i64,
    /// A read-only session: writes and sync are answered NotReadOnly.
    read_only: bool,
    remote: SocketAddr,
    /// Shared with the reads in line, so queueing one copies no identities.
    auth: Arc<Vec<Id>>,
    stats: Arc<ConnStats>,
    reads_in_line: Arc<ReadsInLine>,
}

async fn read_loop(
    mut ctx: ConnCtx,
    reader: &mut BufReader<OwnedReadHalf>,
    line: &mpsc::UnboundedSender<Pending>,
) -> Result<(), ConnError> {
    loop {
        let len = reader.read_i32().await?;
        let frame = read_body(reader, len).await?;
        let (header, request) =
            decode_request(&frame).map_err(|e| ConnError::Malformed(e.to_string()))?;
        ctx.stats.packets_received.fetch_add(1, Relaxed);
        ctx.shared.stats.packets_received.fetch_add(1, Relaxed);
        let alive = ctx
            .shared
            .sessions()
            .touch(ctx.session_id, ctx.shared.elapsed_ms());
        if !alive {
            info!(
                session = format_args!("0x{:x}", ctx.session_id),
                "request on an expired session; closing"
            );
            return Ok(());
        }
        // Waiting here, before reading on, is the backpressure that keeps the
        // number of requests in flight within globalOutstandingLimit.
        let permit = ctx
            .shared
            .outstanding
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ConnError::Io(std::io::ErrorKind::BrokenPipe.into()))?;
        let keep_going = handle_request(&mut ctx, header.xid, request, permit, line).await;
        if !keep_going {
            return Ok(());
        }
    }
}

/// Routes one request into the reply line. Returns false when the connection
/// must close after what is queued.
async fn handle_request(
    ctx: &mut ConnCtx,
    xid: i32,
    request: Request,
    permit: OwnedSemaphorePermit,
    line: &mpsc::UnboundedSender<Pending>,
) -> bool {
    let started = tokio::time::Instant::now();
    let shared = ctx.shared.clone();
    let last_zxid = || shared.tree().last_zxid();
    let ready = |xid: i32, zxid: i64, err: ErrorCode, body: Response, permit| Pending::Ready {
        frame: encode_reply(
            &ReplyHeader {
                xid,
                zxid,
                err: err.code(),
            },
            &body,
        ),
        permit,
    };
    match request {
        Request::Auth { scheme, auth, .. } => {
            let ok = add_auth(ctx, &scheme, &auth);
            if ok {
                let _ = line.send(ready(xid, 0, ErrorCode::Ok, Response::Empty, Some(permit)));
                true
            } else {
                warn!(session = format_args!("0x{:x}", ctx.session_id), %scheme, "authentication failed; closing");
                let _ = line.send(ready(
                    xid,
                    0,
                    ErrorCode::AuthFailed,
                    Response::Empty,
                    Some(permit),
                ));
                let _ = line.send(Pending::Close);
                false
            }
        }
        Request::Sasl { .. } => {
            // No SASL mechanism is configured. Apache, lacking a login,
            // answers Ok with an empty token and carries on with the client
            // unauthenticated; Java clients with a JAAS Client section rely on
            // that to connect at all, so do the same.
            let _ = line.send(ready(
                xid,
                0,
                ErrorCode::Ok,
                Response::Sasl { token: Vec::new() },
                Some(permit),
            ));
            true
        }
        Request::Reconfig { .. } => {
            let _ = line.send(ready(
                xid,
                last_zxid(),
                ErrorCode::ReconfigDisabled,
                Response::Empty,
                Some(permit),
            ));
            true
        }
        Request::Unknown { op } => {
            // Apache also closes the connection here; answering and carrying
            // on costs nothing and keeps a confused client's session alive.
            warn!(
                session = format_args!("0x{:x}", ctx.session_id),
                op, "unknown opcode"
            );
            let _ = line.send(ready(
                xid,
                last_zxid(),
                ErrorCode::Unimplemented,
                Response::Empty,
                Some(permit),
            ));
            true
        }
        Request::CloseSession if ctx.read_only => {
            // The session lives on this member alone: nothing to replicate.
            {
                let mut sessions = shared.sessions();
                sessions.tracker.remove(ctx.session_id);
                sessions.read_only.remove(&ctx.session_id);
            }
            let _ = line.send(ready(
                xid,
                last_zxid(),
                ErrorCode::Ok,
                Response::Empty,
                Some(permit),
            ));
            let _ = line.send(Pending::Close);
            false
        }
        request if ctx.read_only && changes_state(&request) => {
            let _ = line.send(ready(
                xid,
                last_zxid(),
                ErrorCode::NotReadOnly,
                Response::Empty,
                Some(permit),
            ));
            true
        }
        request => {
            let prep_ctx = PrepContext {
                session_id: ctx.session_id,
                cxid: xid,
                time_ms: shared.clock.wall_ms(),
                auth: &ctx.auth,
                extended_types_enabled: shared.options.config.extended_types_enabled,
            };
            let closing = matches!(request, Request::CloseSession);
            match prep::prepare(&request, &prep_ctx) {
                None => {
                    ctx.reads_in_line.queued();
                    let _ = line.send(Pending::Read {
                        xid,
                        request,
                        auth: ctx.auth.clone(),
                        started,
                        permit,
                    });
                    true
                }
                Some(Err(Rejected::Error(code))) => {
                    let _ = line.send(ready(xid, last_zxid(), code, Response::Empty, Some(permit)));
                    true
                }
                Some(Err(Rejected::Multi(results))) => {
                    let _ = line.send(ready(
                        xid,
                        last_zxid(),
                        ErrorCode::Ok,
                        Response::Multi(results),
                        Some(permit),
                    ));
                    true
                }
                Some(Ok(txn)) => {
                    let multi_ops = match &request {
                        Request::Multi(ops) => ops.iter().map(multi_op_code).collect(),
                        _ => Vec::new(),
                    };
                    ctx.reads_in_line.drained().await;
                    let Some(outcome) = pipeline::propose(&shared, txn, Some(ctx.conn_id)).await
                    else {
                        return false;
                    };
                    let _ = line.send(Pending::Write {
                        xid,
                        op: request.op_code(),
                        multi_ops,
                        outcome,
                        started,
                        permit,
                    });
                    if closing {
                        let _ = line.send(Pending::Close);
                    }
                    !closing
                }
            }
        }
    }
}

/// What a read-only member refuses, as Apache's read-only server does:
/// every write, and `sync` (there is no leader to sync with).
fn changes_state(request: &Request) -> bool {
    matches!(
        request,
        Request::Create(_)
            | Request::Create2(_)
            | Request::CreateContainer(_)
            | Request::CreateTtl(_)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Check { .. }
            | Request::Multi(_)
            | Request::Sync { .. }
    )
}

fn multi_op_code(op: &MultiOp) -> i32 {
    match op {
        MultiOp::Create { op, .. } => *op,
        MultiOp::Delete { .. } => OpCode::Delete as i32,
        MultiOp::SetData { .. } => OpCode::SetData as i32,
        MultiOp::Check { .. } => OpCode::Check as i32,
    }
}

/// addauth: returns false when the scheme is unknown or the credentials bad.
fn add_auth(ctx: &mut ConnCtx, scheme: &str, auth: &[u8]) -> bool {
    let mut new_ids = Vec::new();
    match scheme {
        "digest" => {
            let Ok(user_password) = std::str::from_utf8(auth) else {
                return false;
            };
            if !user_password.contains(':') {
                return false;
            }
            new_ids.push(Id::new("digest", acl::digest(user_password)));
            if let Some(super_digest) = &ctx.shared.options.config.super_digest {
                if acl::super_digest_matches(super_digest, user_password) {
                    info!(
                        session = format_args!("0x{:x}", ctx.session_id),
                        "authenticated as super user"
                    );
                    new_ids.push(Id::new("super", ""));
                }
            }
        }
        "ip" => new_ids.push(Id::new("ip", ctx.remote.ip().to_string())),
        _ => return false,
    }
    let auth = Arc::make_mut(&mut ctx.auth);
    for id in new_ids {
        if !auth.contains(&id) {
            // The connection's own ip id stays last, where Apache lists it.
            let at = auth.len().saturating_sub(1);
            auth.insert(at, id);
        }
    }
    if let Some(entry) = ctx.shared.hub().conns.get_mut(&ctx.conn_id) {
        entry.auth = auth.clone();
    }
    true
}

async fn respond_loop(
    shared: Arc<Shared>,
    conn_id: ConnId,
    session_id: i64,
    mut line: mpsc::UnboundedReceiver<Pending>,
    outbound: mpsc::Sender<Outbound>,
    stats: Arc<ConnStats>,
    reads_in_line: Arc<ReadsInLine>,
) {
    let _close_line = CloseOnDrop(reads_in_line.clone());
    while let Some(pending) = line.recv().await {
        let (frames, latency) = match pending {
            Pending::Close => {
                let _ = outbound.send(Outbound::Close).await;
                return;
            }
            Pending::Ready { frame, permit } => {
                drop(permit);
                (vec![frame], None)
            }
            Pending::Write {
                xid,
                op,
                multi_ops,
                outcome,
                started,
                permit,
            } => {
                let reply = match outcome.await {
                    Ok(Ok(applied)) => write_reply(xid, op, &multi_ops, applied),
                    Ok(Err(pipeline::Refused::DiskFull)) => {
                        // Not applied: the client may retry.
                        let zxid = shared.tree().last_zxid();
                        let header = ReplyHeader {
                            xid,
                            zxid,
                            err: ErrorCode::SystemError.code(),
                        };
                        (encode_reply(&header, &Response::Empty), zxid)
                    }
                    // The ensemble did not commit it and its fate is
                    // unknown. Apache's server drops the connection then;
                    // clients know that as ConnectionLoss, reconnect with
                    // the same session and decide whether to retry. (An
                    // error code -4 in a reply is something no Apache server
                    // sends, and not every client library maps it.)
                    Ok(Err(pipeline::Refused::NotReplicated)) => {
                        let _ = outbound.send(Outbound::Close).await;
                        return;
                    }
                    // The pipeline stopped (shutdown): the client will retry
                    // elsewhere or after reconnecting.
                    Err(_) => {
                        let _ = outbound.send(Outbound::Close).await;
                        return;
                    }
                };
                stats.last_zxid.store(reply.1, Relaxed);
                note_answered(&stats, xid, op);
                drop(permit);
                (vec![reply.0], Some(started.elapsed()))
            }
            Pending::Read {
                xid,
                request,
                auth,
                started,
                permit,
            } => {
                let ctx = ReadContext {
                    conn: conn_id,
                    session_id,
                    auth: &auth,
                };
                if let (Request::Sync { .. }, Some(ensemble)) = (&request, shared.ensemble()) {
                    // A sync answered OK promises that the reads after it
                    // see every write committed before it; a client resolving
                    // a write whose answer it lost relies on that. Without
                    // the leader that promise cannot be kept: close, as for a
                    // write that could not be replicated, and the client
                    // retries elsewhere or after reconnecting.
                    if !ensemble.sync().await {
                        reads_in_line.executed();
                        let _ = outbound.send(Outbound::Close).await;
                        return;
                    }
                }
                let outcome = read::execute(&shared, &ctx, &request);
                reads_in_line.executed();
                let Some(outcome) = outcome else {
                    continue;
                };
                stats.last_zxid.store(outcome.zxid, Relaxed);
                note_answered(&stats, xid, request.op_code());
                let mut frames = outcome.events_before;
                frames.push(encode_reply(
                    &ReplyHeader {
                        xid,
                        zxid: outcome.zxid,
                        err: outcome.err.code(),
                    },
                    &outcome.body,
                ));
                drop(permit);
                (frames, Some(started.elapsed()))
            }
        };
        if let Some(latency) = latency {
            let ms = latency.as_millis() as i64;
            shared.stats.latency.record(ms);
            stats.latency.record(ms);
            stats.last_latency_ms.store(ms, Relaxed);
        }
        stats
            .last_response_ms
            .store(shared.clock.wall_ms(), Relaxed);
        for frame in frames {
            stats.packets_sent.fetch_add(1, Relaxed);
            shared.stats.packets_sent.fetch_add(1, Relaxed);
            if outbound.send(Outbound::Frame(frame)).await.is_err() {
                return;
            }
        }
    }
}

/// Records the last request answered, for `cons`. Special xids (pings,
/// setWatches) are not a client's own request numbers and leave `lcxid` alone.
fn note_answered(stats: &ConnStats, xid: i32, op: i32) {
    if xid >= 0 {
        stats.last_cxid.store(i64::from(xid), Relaxed);
    }
    stats.last_op.store(i64::from(op), Relaxed);
}

/// The reply to a write, and the zxid it carries.
fn write_reply(xid: i32, op: i32, multi_ops: &[i32], applied: Applied) -> (Vec<u8>, i64) {
    let zxid = applied.zxid;
    let (err, body) = match applied.result {
        TxnResult::Error(code) => (code, Response::Empty),
        TxnResult::Created { path, stat } => {
            if op == OpCode::Create as i32 {
                (ErrorCode::Ok, Response::Create { path })
            } else {
                (ErrorCode::Ok, Response::Create2 { path, stat })
            }
        }
        TxnResult::DataSet { stat } | TxnResult::AclSet { stat } => {
            (ErrorCode::Ok, Response::Stat { stat })
        }
        TxnResult::Checked => (
            ErrorCode::Ok,
            Response::Stat {
                stat: Default::default(),
            },
        ),
        TxnResult::Multi(results) => {
            let results = results
                .into_iter()
                .zip(multi_ops.iter().copied().chain(std::iter::repeat(0)))
                .map(|(r, op)| multi_result(r, op))
                .collect();
            (ErrorCode::Ok, Response::Multi(results))
        }
        TxnResult::Deleted | TxnResult::SessionClosed | TxnResult::SessionCreated => {
            (ErrorCode::Ok, Response::Empty)
        }
    };
    let frame = encode_reply(
        &ReplyHeader {
            xid,
            zxid,
            err: err.code(),
        },
        &body,
    );
    (frame, zxid)
}

fn multi_result(result: TxnResult, op: i32) -> MultiResult {
    match result {
        TxnResult::Created { path, stat } => {
            if op == OpCode::Create as i32 {
                MultiResult::Create { path }
            } else {
                MultiResult::Create2 { path, stat }
            }
        }
        TxnResult::Deleted => MultiResult::Delete,
        TxnResult::DataSet { stat } => MultiResult::SetData { stat },
        TxnResult::Checked => MultiResult::Check,
        TxnResult::Error(code) => MultiResult::Error { err: code.code() },
        other => {
            warn!(result = ?other, "unexpected result inside a multi");
            MultiResult::Error {
                err: ErrorCode::SystemError.code(),
            }
        }
    }
}

/// Writes frames to the socket, batching them until the queue runs dry.
async fn write_loop(write_half: OwnedWriteHalf, mut rx: mpsc::Receiver<Outbound>) {
    let mut out = BufWriter::with_capacity(64 * 1024, write_half);
    while let Some(item) = rx.recv().await {
        let mut item = Some(item);
        while let Some(current) = item.take() {
            match current {
                Outbound::Frame(frame) => {
                    if out.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                Outbound::Close => {
                    let _ = out.flush().await;
                    let _ = out.shutdown().await;
                    return;
                }
            }
            item = rx.try_recv().ok();
        }
        if out.flush().await.is_err() {
            return;
        }
    }
}
