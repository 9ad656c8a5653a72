//! openraft's RPCs between peers: length-prefixed postcard frames over a
//! [`Transport`].
//!
//! # Wire format
//!
//! Every frame is a 4-byte big-endian length, then that many bytes of a
//! postcard-encoded message. A frame longer than [`MAX_FRAME_BYTES`] is
//! refused before anything is allocated for it. The connecting side speaks
//! first: a `Hello` naming the protocol version, the ensemble (cluster name)
//! and both peers' ids, which the accepting side checks (so a peer configured
//! with the wrong address or from another ensemble is refused, not served).
//! Then requests and replies alternate on the connection, one at a time.
//!
//! A peer that sends anything else (a frame that does not decode, an
//! oversized frame, a request before the handshake) has its connection closed
//! with a warning; nothing else is affected.
//!
//! # Errors, as openraft's examples map them
//!
//! - the connection (or the handshake) cannot be made: `Unreachable`, so
//!   openraft backs off ([`PeerClient::backoff`]) before trying again;
//! - the connection fails mid-call: `NetworkError`, retried at once on a new
//!   connection;
//! - the peer answered with an error: `RemoteError`;
//! - an AppendEntries frame would be too large: `PayloadTooLarge`, and
//!   openraft sends fewer entries.
//!
//! A call that openraft abandons (its timeout) drops the connection with it,
//! so a half-written frame never leaves a connection out of step.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    CheckIsLeaderError, ClientWriteError, InstallSnapshotError, NetworkError, PayloadTooLarge,
    RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::LogId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::activity::Activity;
use super::{NodeId, PeerNode, Raft, Request, Response, TypeConfig};

/// Largest frame either side accepts: [`super::config::MAX_ENTRIES_PER_RPC`]
/// requests of the client protocol's 1 MiB each, or a 3 MiB snapshot chunk,
/// fit well within it.
pub const MAX_FRAME_BYTES: usize = 128 << 20;
/// Version of the peer protocol spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;
/// Inbound peer connections served at once; more are refused.
pub const MAX_PEER_CONNECTIONS: usize = 64;
/// How long an accepted connection may take to introduce itself.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// An inbound connection with no request for this long is closed (a live
/// leader sends heartbeats many times a second).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A client connection idle for longer is replaced rather than reused (well
/// within the accepting side's [`IDLE_TIMEOUT`]).
const REUSE_IDLE_LIMIT: Duration = Duration::from_secs(20);
/// How long the rest of a frame may take once its length has arrived.
const FRAME_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How peers reach each other: TCP in production, replaceable by a
/// simulated network in tests.
pub trait Transport: Clone + Send + Sync + 'static {
    /// A connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static;
    /// A bound listening endpoint.
    type Listener: Listener<Stream = Self::Stream>;

    /// Connects to `addr` (`host:port`).
    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Listens on `addr` (`host:port`; port 0 picks one).
    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>> + Send;
}

/// A listening endpoint of a [`Transport`].
pub trait Listener: Send + Sync + 'static {
    /// A connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static;

    /// Waits for the next connection; returns it and the peer's address.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, String)>> + Send;

    /// The address it listens on.
    fn local_addr(&self) -> io::Result<String>;
}

/// Peers over TCP, with Nagle's algorithm off (RPCs are small and latency
/// bound).
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTransport;

impl Transport for TcpTransport {
    type Stream = TcpStream;
    type Listener = TcpListener;

    async fn connect(&self, addr: &str) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn bind(&self, addr: &str) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, String)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        stream.set_nodelay(true)?;
        Ok((stream, peer.to_string()))
    }

    fn local_addr(&self) -> io::Result<String> {
        TcpListener::local_addr(self).map(|addr| addr.to_string())
    }
}

/// A message from the connecting peer.
#[derive(Debug, Serialize, Deserialize)]
enum PeerRequest {
    Hello {
        version: u32,
        cluster: String,
        from: NodeId,
        to: NodeId,
    },
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A follower asks the leader up to which log id it must have applied to
    /// read linearizably (ZooKeeper's `sync`).
    ReadIndex,
    /// A follower forwards a client's write to the leader.
    Write(Request),
    /// The leader, about to leave, asks this follower (which holds its whole
    /// log) to campaign now (see `leadership`).
    Campaign,
}

/// The accepting peer's answer.
#[derive(Debug, Serialize, Deserialize)]
enum PeerReply {
    Welcome,
    Refused(String),
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    ReadIndex(ReadIndexResult),
    Write(Result<Response, ForwardedWriteError>),
    /// Whether the campaign was started, and if not why.
    Campaign(Result<(), String>),
}

/// Why a forwarded write failed on the peer it was sent to.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardedWriteError {
    /// openraft refused it (that peer is not the leader, or stopped).
    #[error(transparent)]
    Raft(#[from] RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>),
    /// The leader could not commit it in time; it may still be applied.
    #[error("the leader could not commit the write within {0:?}")]
    Timeout(Duration),
    /// The leader is handing its leadership over and takes no new writes;
    /// the write was not applied.
    #[error("the leader is handing over and refused the write")]
    HandingOver,
}

/// The leader's answer to a read-index request.
pub type ReadIndexResult =
    Result<Option<LogId<NodeId>>, RaftError<NodeId, CheckIsLeaderError<NodeId, PeerNode>>>;

/// Who this peer is, for the handshake.
#[derive(Clone, Debug)]
pub struct PeerIdentity {
    /// This peer's id.
    pub id: NodeId,
    /// The ensemble's name; peers of another ensemble are refused.
    pub cluster: Arc<str>,
    /// How long a forwarded write may wait for its commit.
    pub request_timeout: Duration,
}

/// Why a call to a peer failed, before openraft's classification.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection could be made, or the peer refused the handshake.
    #[error("peer unreachable: {0}")]
    Unreachable(io::Error),
    /// The connection failed during the call.
    #[error("network error: {0}")]
    Network(io::Error),
    /// The request does not fit in a frame.
    #[error("request of {0} bytes exceeds the frame limit")]
    TooLarge(usize),
}

/// openraft's network factory: one [`PeerClient`] per target.
pub struct PeerNetwork<T: Transport> {
    transport: T,
    identity: PeerIdentity,
    activity: Arc<Activity>,
}

impl<T: Transport> PeerNetwork<T> {
    /// A factory that connects as `identity` over `transport`, and records
    /// which peers answer in `activity`.
    pub fn new(transport: T, identity: PeerIdentity, activity: Arc<Activity>) -> PeerNetwork<T> {
        PeerNetwork {
            transport,
            identity,
            activity,
        }
    }
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for PeerNetwork<T> {
    type Network = PeerClient<T>;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> PeerClient<T> {
        let mut client = PeerClient::new(
            self.transport.clone(),
            self.identity.clone(),
            target,
            node.quorum_addr.clone(),
        );
        client.activity = Some(Arc::clone(&self.activity));
        client
    }
}

/// One peer's client end: a connection made on first use, reused while it
/// works, and remade after a failure.
pub struct PeerClient<T: Transport> {
    transport: T,
    identity: PeerIdentity,
    target: NodeId,
    addr: String,
    connection: Option<T::Stream>,
    /// When the connection last completed a call.
    last_used: Option<std::time::Instant>,
    /// Where openraft's calls report whether the peer answered.
    activity: Option<Arc<Activity>>,
}

impl<T: Transport> PeerClient<T> {
    /// A client for peer `target` at `addr`; connects lazily.
    pub fn new(
        transport: T,
        identity: PeerIdentity,
        target: NodeId,
        addr: String,
    ) -> PeerClient<T> {
        PeerClient {
            transport,
            identity,
            target,
            addr,
            connection: None,
            last_used: None,
            activity: None,
        }
    }

    /// Records whether openraft's call reached the peer, so that a peer that
    /// is down is reported once rather than once per RPC.
    fn note<R, E: std::error::Error>(&self, result: &Result<R, RPCError<NodeId, PeerNode, E>>) {
        let Some(activity) = &self.activity else {
            return;
        };
        match result {
            Ok(_) | Err(RPCError::RemoteError(_)) | Err(RPCError::PayloadTooLarge(_)) => {
                activity.answered(self.target)
            }
            Err(e) => activity.unreachable(self.target, e),
        }
    }

    /// The peer this client talks to.
    pub fn target(&self) -> NodeId {
        self.target
    }

    async fn call(
        &mut self,
        request: &PeerRequest,
        connect_timeout: Duration,
    ) -> Result<PeerReply, CallError> {
        let frame = encode_frame(request).map_err(|e| match e {
            FrameError::TooLarge(len) => CallError::TooLarge(len),
            other => CallError::Network(other.into_io()),
        })?;
        // Taken out for the duration of the call: if openraft abandons the
        // call half-way, the connection is dropped with the future.
        // A connection idle for long may have been closed by the peer's
        // idle timeout; a fresh one avoids sending a request into it.
        let fresh_enough = self
            .last_used
            .is_some_and(|used| used.elapsed() < REUSE_IDLE_LIMIT);
        let mut stream = match self.connection.take().filter(|_| fresh_enough) {
            Some(stream) => stream,
            None => self.connect(connect_timeout).await?,
        };
        stream.write_all(&frame).await.map_err(CallError::Network)?;
        stream.flush().await.map_err(CallError::Network)?;
        let reply = read_message(&mut stream, None)
            .await
            .map_err(|e| CallError::Network(e.into_io()))?;
        self.connection = Some(stream);
        self.last_used = Some(std::time::Instant::now());
        Ok(reply)
    }

    async fn connect(&self, connect_timeout: Duration) -> Result<T::Stream, CallError> {
        let unreachable = CallError::Unreachable;
        let connecting = self.transport.connect(&self.addr);
        let mut stream = match tokio::time::timeout(connect_timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(unreachable(e)),
            Err(_) => {
                return Err(unreachable(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "connecting to {} took longer than {connect_timeout:?}",
                        self.addr
                    ),
                )))
            }
        };
        let hello = PeerRequest::Hello {
            version: PROTOCOL_VERSION,
            cluster: self.identity.cluster.to_string(),
            from: self.identity.id,
            to: self.target,
        };
        let frame = encode_frame(&hello).map_err(|e| unreachable(e.into_io()))?;
        stream.write_all(&frame).await.map_err(unreachable)?;
        stream.flush().await.map_err(unreachable)?;
        match read_message(&mut stream, Some(connect_timeout)).await {
            Ok(PeerReply::Welcome) => Ok(stream),
            Ok(PeerReply::Refused(reason)) => Err(unreachable(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "peer {} at {} refused the connection: {reason}",
                    self.target, self.addr
                ),
            ))),
            Ok(other) => Err(unreachable(unexpected(&other))),
            Err(e) => Err(unreachable(e.into_io())),
        }
    }

    /// Connects and completes the handshake, then hangs up: is the peer up
    /// and is it who we think it is?
    pub async fn probe(&mut self, timeout: Duration) -> Result<(), CallError> {
        match tokio::time::timeout(timeout, self.connect(timeout)).await {
            Ok(connected) => connected.map(drop),
            Err(_) => Err(CallError::Unreachable(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "peer {} did not complete the handshake within {timeout:?}",
                    self.target
                ),
            ))),
        }
    }

    /// Asks this peer (the leader) for the log id a linearizable read must
    /// wait for.
    pub async fn read_index(&mut self, timeout: Duration) -> Result<ReadIndexResult, CallError> {
        match self.call_within(&PeerRequest::ReadIndex, timeout).await? {
            PeerReply::ReadIndex(result) => Ok(result),
            other => Err(CallError::Network(unexpected(&other))),
        }
    }

    /// Sends a client's write to this peer (the leader) and waits for its
    /// outcome.
    pub async fn forward_write(
        &mut self,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Result<Response, ForwardedWriteError>, CallError> {
        match self
            .call_within(&PeerRequest::Write(Request(payload)), timeout)
            .await?
        {
            PeerReply::Write(result) => Ok(result),
            other => Err(CallError::Network(unexpected(&other))),
        }
    }

    /// Asks this peer (a follower holding the whole log of this leader) to
    /// campaign at once.
    pub async fn campaign(&mut self, timeout: Duration) -> Result<Result<(), String>, CallError> {
        match self.call_within(&PeerRequest::Campaign, timeout).await? {
            PeerReply::Campaign(result) => Ok(result),
            other => Err(CallError::Network(unexpected(&other))),
        }
    }

    async fn call_within(
        &mut self,
        request: &PeerRequest,
        timeout: Duration,
    ) -> Result<PeerReply, CallError> {
        match tokio::time::timeout(timeout, self.call(request, timeout)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Network(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("peer {} did not answer within {timeout:?}", self.target),
            ))),
        }
    }
}

/// openraft's error for a failed call.
fn rpc_error<E: std::error::Error>(error: CallError) -> RPCError<NodeId, PeerNode, E> {
    match error {
        CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
        CallError::Network(e) => RPCError::Network(NetworkError::new(&e)),
        CallError::TooLarge(len) => RPCError::Network(NetworkError::new(&io::Error::other(
            format!("a request of {len} bytes exceeds the peer frame limit of {MAX_FRAME_BYTES}"),
        ))),
    }
}

fn unexpected(reply: &PeerReply) -> io::Error {
    let kind = match reply {
        PeerReply::Welcome => "Welcome",
        PeerReply::Refused(_) => "Refused",
        PeerReply::AppendEntries(_) => "AppendEntries",
        PeerReply::Vote(_) => "Vote",
        PeerReply::InstallSnapshot(_) => "InstallSnapshot",
        PeerReply::ReadIndex(_) => "ReadIndex",
        PeerReply::Write(_) => "Write",
        PeerReply::Campaign(_) => "Campaign",
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected {kind} reply"),
    )
}

impl<T: Transport> RaftNetwork<TypeConfig> for PeerClient<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, PeerNode, RaftError<NodeId>>> {
        let entries = rpc.entries.len() as u64;
        let result = match self
            .call(&PeerRequest::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerReply::AppendEntries(Ok(response))) => Ok(response),
            Ok(PeerReply::AppendEntries(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(RPCError::Network(NetworkError::new(&unexpected(&other)))),
            Err(CallError::TooLarge(_)) if entries > 1 => Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(entries / 2),
            )),
            Err(e) => Err(rpc_error(e)),
        };
        self.note(&result);
        result
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, PeerNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let result = match self
            .call(&PeerRequest::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerReply::InstallSnapshot(Ok(response))) => Ok(response),
            Ok(PeerReply::InstallSnapshot(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(RPCError::Network(NetworkError::new(&unexpected(&other)))),
            Err(e) => Err(rpc_error(e)),
        };
        self.note(&result);
        result
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, PeerNode, RaftError<NodeId>>> {
        let result = match self.call(&PeerRequest::Vote(rpc), option.hard_ttl()).await {
            Ok(PeerReply::Vote(Ok(response))) => Ok(response),
            Ok(PeerReply::Vote(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(RPCError::Network(NetworkError::new(&unexpected(&other)))),
            Err(e) => Err(rpc_error(e)),
        };
        self.note(&result);
        result
    }

    /// After `Unreachable`, openraft waits this long before trying the peer
    /// again: short at first so that a restarted peer is back quickly,
    /// capped so that a dead one costs little.
    fn backoff(&self) -> Backoff {
        let steps = [100u64, 200, 400].into_iter().map(Duration::from_millis);
        Backoff::new(steps.chain(std::iter::repeat(Duration::from_millis(500))))
    }
}

/// Answers peers' RPCs on `listener` until the returned future is dropped
/// (abort its task to stop; every connection task stops with it).
pub async fn serve_peer_rpc<L: Listener>(
    mut listener: L,
    raft: Raft,
    identity: PeerIdentity,
    activity: Arc<Activity>,
) {
    let permits = Arc::new(Semaphore::new(MAX_PEER_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: pause rather than spin.
                warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            warn!(%peer, limit = MAX_PEER_CONNECTIONS, "too many peer connections; closing a new one");
            continue;
        };
        let raft = raft.clone();
        let identity = identity.clone();
        let activity = Arc::clone(&activity);
        connections.spawn(async move {
            let served = serve_connection(stream, &peer, &raft, &identity, &activity);
            if let Err(e) = served.await {
                warn!(%peer, error = %e, "closed a peer connection");
            } else {
                debug!(%peer, "peer connection closed");
            }
            drop(permit);
        });
    }
}

/// Why an inbound connection was closed.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("no request for {0:?}")]
    Idle(Duration),
    #[error("refused: {0}")]
    Refused(String),
    #[error("expected a handshake first")]
    NoHandshake,
}

async fn serve_connection<S>(
    mut stream: S,
    peer: &str,
    raft: &Raft,
    identity: &PeerIdentity,
    activity: &Arc<Activity>,
) -> Result<(), ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hello = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        read_message(&mut stream, Some(FRAME_BODY_TIMEOUT)),
    )
    .await
    {
        Ok(message) => message?,
        Err(_) => return Err(ServeError::Idle(HANDSHAKE_TIMEOUT)),
    };
    let PeerRequest::Hello {
        version,
        cluster,
        from,
        to,
    } = hello
    else {
        return Err(ServeError::NoHandshake);
    };
    let refusal = if version != PROTOCOL_VERSION {
        Some(format!(
            "protocol version {version}, this peer speaks {PROTOCOL_VERSION}"
        ))
    } else if cluster != *identity.cluster {
        Some(format!(
            "ensemble {cluster:?}, this peer is in {:?}",
            identity.cluster
        ))
    } else if to != identity.id {
        Some(format!(
            "addressed to server.{to}, this is server.{}",
            identity.id
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        let _ = write_message(&mut stream, &PeerReply::Refused(reason.clone())).await;
        return Err(ServeError::Refused(reason));
    }
    write_message(&mut stream, &PeerReply::Welcome).await?;
    debug!(%peer, from, "peer connected");

    let mut carried_appends = false;
    let served = serve_requests(
        &mut stream,
        from,
        raft,
        identity,
        activity,
        &mut carried_appends,
    )
    .await;
    if carried_appends {
        // However it ended: a leader that died closes every connection.
        activity.leader_connection_closed(from);
    }
    served
}

async fn serve_requests<S>(
    stream: &mut S,
    from: NodeId,
    raft: &Raft,
    identity: &PeerIdentity,
    activity: &Arc<Activity>,
    carried_appends: &mut bool,
) -> Result<(), ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let request = match tokio::time::timeout(
            IDLE_TIMEOUT,
            read_message(&mut *stream, Some(FRAME_BODY_TIMEOUT)),
        )
        .await
        {
            Ok(Ok(request)) => request,
            Ok(Err(FrameError::Closed)) => return Ok(()),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(ServeError::Idle(IDLE_TIMEOUT)),
        };
        let reply = match request {
            PeerRequest::Hello { .. } => {
                return Err(ServeError::Refused("a second handshake".into()))
            }
            PeerRequest::AppendEntries(rpc) => {
                *carried_appends = true;
                activity.append_arrived(from);
                let answer = raft.append_entries(rpc).await;
                if matches!(&answer, Ok(response) if !matches!(response, AppendEntriesResponse::HigherVote(_)))
                {
                    activity.append_accepted();
                }
                PeerReply::AppendEntries(answer)
            }
            PeerRequest::Vote(rpc) => PeerReply::Vote(raft.vote(rpc).await),
            PeerRequest::InstallSnapshot(rpc) => {
                PeerReply::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
            PeerRequest::ReadIndex => {
                let _serving = activity.enter_read_index();
                PeerReply::ReadIndex(raft.get_read_log_id().await.map(|(read, _)| read))
            }
            PeerRequest::Write(request) => PeerReply::Write(match activity.enter_write() {
                None => Err(ForwardedWriteError::HandingOver),
                Some(_writing) => {
                    let bytes = request.0.len();
                    let written =
                        tokio::time::timeout(identity.request_timeout, raft.client_write(request))
                            .await;
                    match written {
                        Ok(Ok(response)) => {
                            activity.proposed(bytes);
                            Ok(response.data)
                        }
                        Ok(Err(e)) => Err(ForwardedWriteError::Raft(e)),
                        Err(_) => Err(ForwardedWriteError::Timeout(identity.request_timeout)),
                    }
                }
            }),
            PeerRequest::Campaign => {
                PeerReply::Campaign(super::leadership::campaign_on_request(raft, from).await)
            }
        };
        write_message(&mut *stream, &reply).await?;
    }
}

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// A frame longer than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES}")]
    TooLarge(usize),
    /// The frame's bytes are not a message of this protocol.
    #[error("undecodable frame: {0}")]
    Undecodable(postcard::Error),
    /// The rest of a frame did not arrive in time.
    #[error("a frame's body did not arrive within {0:?}")]
    Stalled(Duration),
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl FrameError {
    fn into_io(self) -> io::Error {
        match self {
            FrameError::Io(e) => e,
            FrameError::Closed => io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"),
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// A message in a frame: the length prefix, then postcard.
fn encode_frame<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut frame = postcard::to_extend(message, vec![0u8; 4]).map_err(FrameError::Undecodable)?;
    let len = frame.len() - 4;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    let prefix = u32::try_from(len)
        .map_err(|_| FrameError::TooLarge(len))?
        .to_be_bytes();
    if let Some(head) = frame.first_chunk_mut::<4>() {
        *head = prefix;
    }
    Ok(frame)
}

async fn write_message<S, T>(stream: &mut S, message: &T) -> Result<(), FrameError>
where
    S: AsyncWrite + Unpin,
    T: Serialize,
{
    let frame = encode_frame(message)?;
    stream.write_all(&frame).await?;
    stream.flush().await?;
    Ok(())
}

/// Reads one frame and decodes it. The body must follow its length within
/// `body_timeout` when one is given.
async fn read_message<S, T>(stream: &mut S, body_timeout: Option<Duration>) -> Result<T, FrameError>
where
    S: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut prefix = [0u8; 4];
    match stream.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    // Grows with what arrives rather than trusting the length up front.
    let mut body = Vec::with_capacity(len.min(64 << 10));
    let mut limited = (&mut *stream).take(len as u64);
    let reading = limited.read_to_end(&mut body);
    let read = match body_timeout {
        Some(limit) => tokio::time::timeout(limit, reading)
            .await
            .map_err(|_| FrameError::Stalled(limit))?,
        None => reading.await,
    }?;
    if read < len {
        return Err(FrameError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("connection closed inside a frame ({read} of {len} bytes)"),
        )));
    }
    postcard::from_bytes(&body).map_err(FrameError::Undecodable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips_and_an_oversized_length_is_refused_before_reading() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_message(&mut a, &PeerRequest::ReadIndex)
            .await
            .unwrap();
        let got: PeerRequest = read_message(&mut b, None).await.unwrap();
        assert!(matches!(got, PeerRequest::ReadIndex));

        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let refused = read_message::<_, PeerRequest>(&mut b, None).await;
        assert!(
            matches!(refused, Err(FrameError::TooLarge(_))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn garbage_does_not_decode_and_a_closed_stream_is_reported_as_closed() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
        let garbage = read_message::<_, PeerRequest>(&mut b, None).await;
        assert!(
            matches!(garbage, Err(FrameError::Undecodable(_))),
            "{garbage:?}"
        );
        drop(a);
        let closed = read_message::<_, PeerRequest>(&mut b, None).await;
        assert!(matches!(closed, Err(FrameError::Closed)), "{closed:?}");
    }
}
