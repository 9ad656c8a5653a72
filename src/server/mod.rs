//! The client-facing server: accepting connections, sessions, request
//! preparation, the write pipeline and reads.
//!
//! Shared state and its locks, always taken in this order:
//! 1. `tree` (RwLock): the data tree. Reads hold it shared; the write pipeline
//!    holds it exclusively while applying a batch.
//! 2. `hub` (Mutex): the watch manager and the registry of live connections
//!    (their outbound queues and identities). Taken under the tree lock so that
//!    a watch is registered atomically with the read that sets it, and events
//!    are queued atomically with the apply that caused them.
//! 3. `sessions` (Mutex): the expiry tracker and which connection owns which
//!    session. Never held while taking the other two.

pub mod connection;
pub mod ensemble;
pub mod fourlw;
pub mod journal;
pub mod pipeline;
pub mod prep;
pub mod read;
pub mod recovery;
pub mod session;
pub mod stats;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify, Semaphore};
use tracing::{info, warn};

use crate::clock::{Clock, SystemClock};
use crate::config::ServerConfig;
use crate::proto::Id;
use crate::tree::DataTree;
use crate::watch::WatchManager;

use self::ensemble::Ensemble;
use self::journal::Journal;
use self::pipeline::Proposal;
use self::recovery::{RecoveryError, Snapshotter};
use self::session::{SessionIdGenerator, SessionTracker};
use self::stats::{ConnStats, ServerStats};

/// What the server needs to know: the configuration it was started with and
/// what was resolved from it.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub config: ServerConfig,
    /// This server's id (myid), 0 for a standalone server without one.
    pub server_id: u8,
    pub client_addr: SocketAddr,
    /// How often empty containers and expired TTL nodes are looked for
    /// (`znode.container.checkIntervalMs`, Apache's default one minute).
    pub container_check_interval_ms: u64,
}

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("no clientPort is configured (set clientPort, or a client port on this server's server.N line)")]
    NoClientPort,
    #[error("server id {0} is too large: ids up to 255 fit in a session id")]
    ServerIdTooLarge(u64),
    #[error("{key}: expected a positive integer (milliseconds), found {value:?}")]
    BadValue { key: &'static str, value: String },
}

impl ServerOptions {
    pub fn from_config(config: &ServerConfig) -> Result<ServerOptions, OptionsError> {
        let client_addr = config.client_address().ok_or(OptionsError::NoClientPort)?;
        let server_id = match config.my_id {
            None => 0,
            Some(id) => u8::try_from(id).map_err(|_| OptionsError::ServerIdTooLarge(id))?,
        };
        const CHECK_INTERVAL_KEY: &str = "znode.container.checkIntervalMs";
        let container_check_interval_ms = match config.other.get(CHECK_INTERVAL_KEY) {
            None => 60_000,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| OptionsError::BadValue {
                    key: CHECK_INTERVAL_KEY,
                    value: v.clone(),
                })?,
        };
        Ok(ServerOptions {
            config: config.clone(),
            server_id,
            client_addr,
            container_check_interval_ms,
        })
    }

    /// Options for a server on `client_addr` with Apache's defaults, for tests
    /// and embedding.
    pub fn with_defaults(client_addr: SocketAddr, data_dir: PathBuf) -> ServerOptions {
        let mut config = ServerConfig::new(data_dir);
        config.client_port = Some(client_addr.port());
        config.client_port_address = Some(client_addr.ip());
        ServerOptions {
            config,
            server_id: 0,
            client_addr,
            container_check_interval_ms: 60_000,
        }
    }

    pub fn tick_time_ms(&self) -> i64 {
        i64::from(self.config.tick_time_ms)
    }

    pub fn min_session_timeout_ms(&self) -> i32 {
        clamp_i32(self.config.min_session_timeout_ms)
    }

    pub fn max_session_timeout_ms(&self) -> i32 {
        clamp_i32(self.config.max_session_timeout_ms)
    }

    pub fn skip_acl(&self) -> bool {
        self.config.skip_acl
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    pub fn data_log_dir(&self) -> &Path {
        self.config.transaction_log_dir()
    }
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Identifies a connection for its lifetime (and names it as a watcher).
pub type ConnId = u64;

/// What a connection's writer sends: a frame, or the order to flush and close.
#[derive(Debug)]
pub enum Outbound {
    Frame(Vec<u8>),
    Close,
}

/// A live connection, as the rest of the server sees it.
#[derive(Debug, Clone)]
pub struct ConnEntry {
    pub session_id: i64,
    pub remote: SocketAddr,
    pub auth: Vec<Id>,
    pub outbound: mpsc::Sender<Outbound>,
    /// Asks the connection's tasks to stop (slow consumer, evicted session).
    pub kill: Arc<Notify>,
    pub stats: Arc<ConnStats>,
    pub session_timeout_ms: i32,
    pub established_ms: i64,
}

/// The watch manager and the connections it delivers to.
#[derive(Debug, Default)]
pub struct Hub {
    pub watches: WatchManager,
    pub conns: HashMap<ConnId, ConnEntry>,
}

/// Session bookkeeping local to this server.
#[derive(Debug)]
pub struct Sessions {
    pub tracker: SessionTracker,
    pub ids: SessionIdGenerator,
    /// Which connection currently carries each session.
    pub owner: HashMap<i64, ConnId>,
    /// Sessions this server's clients kept alive since the last liveness
    /// report to the ensemble's leader.
    pub touched: HashSet<i64>,
    /// Sessions granted while this member served read-only
    /// (`readonlymode.enabled`): known to this member alone, never in the
    /// tree, gone when the member rejoins its quorum.
    pub read_only: HashSet<i64>,
}

impl Sessions {
    /// Records a session's activity; false when it is no longer tracked
    /// (expired or closed).
    pub fn touch(&mut self, session_id: i64, now_ms: i64) -> bool {
        let alive = self.tracker.touch(session_id, now_ms);
        if alive && !self.read_only.contains(&session_id) {
            self.touched.insert(session_id);
        }
        alive
    }

    /// Forgets every read-only session.
    pub fn drop_read_only(&mut self) {
        for id in std::mem::take(&mut self.read_only) {
            self.tracker.remove(id);
            self.owner.remove(&id);
        }
    }
}

/// Apache's default trace mask: client requests, server packets, sessions
/// and warnings.
pub const DEFAULT_TRACE_MASK: i64 = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 8);

/// Everything the server's tasks share.
pub struct Shared {
    pub options: ServerOptions,
    pub clock: Arc<dyn Clock>,
    tree: RwLock<DataTree>,
    hub: Mutex<Hub>,
    sessions: Mutex<Sessions>,
    pub proposals: mpsc::Sender<Proposal>,
    pub stats: ServerStats,
    /// Bounds requests in flight across all connections
    /// (globalOutstandingLimit): a connection waits for a permit before it
    /// reads its next request.
    pub outstanding: Arc<Semaphore>,
    pub started: tokio::time::Instant,
    next_conn_id: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    pub shutting_down: AtomicBool,
    /// Apache's text trace mask (`gtmk`/`stmk`): kept and reported for
    /// tools that set it; our logging is governed by the log level.
    pub trace_mask: std::sync::atomic::AtomicI64,
    /// Tells the write pipeline to drain and stop.
    pub stop_pipeline: Notify,
    /// Asks the write pipeline to purge old snapshots and the log they cover.
    pub purge_requested: Notify,
    /// Set once when this server is a member of an ensemble.
    ensemble: std::sync::OnceLock<Arc<Ensemble>>,
}

impl Shared {
    pub fn tree(&self) -> RwLockReadGuard<'_, DataTree> {
        // A poisoned lock means a panic while applying; the tree may be half
        // changed, and serving from it would be worse than stopping.
        match self.tree.read() {
            Ok(guard) => guard,
            Err(_) => poisoned("data tree"),
        }
    }

    pub fn tree_mut(&self) -> RwLockWriteGuard<'_, DataTree> {
        match self.tree.write() {
            Ok(guard) => guard,
            Err(_) => poisoned("data tree"),
        }
    }

    pub fn hub(&self) -> MutexGuard<'_, Hub> {
        match self.hub.lock() {
            Ok(guard) => guard,
            Err(_) => poisoned("watch hub"),
        }
    }

    pub fn sessions(&self) -> MutexGuard<'_, Sessions> {
        match self.sessions.lock() {
            Ok(guard) => guard,
            Err(_) => poisoned("session table"),
        }
    }

    /// The ensemble this server is a member of, if any.
    pub fn ensemble(&self) -> Option<&Arc<Ensemble>> {
        self.ensemble.get()
    }

    /// Asks every client connection to close (its queued replies go first).
    pub fn close_all_connections(&self) {
        self.close_connections_where(|_| true);
    }

    /// Asks the connections carrying `sessions` to close.
    pub fn close_connections_of(&self, sessions: &[i64]) {
        self.close_connections_where(|conn| sessions.contains(&conn.session_id));
    }

    fn close_connections_where(&self, which: impl Fn(&ConnEntry) -> bool) {
        let conns: Vec<ConnEntry> = self
            .hub()
            .conns
            .values()
            .filter(|conn| which(conn))
            .cloned()
            .collect();
        for conn in conns {
            let _ = conn.outbound.try_send(Outbound::Close);
            conn.kill.notify_one();
        }
    }

    /// `standalone`, or this member's role: what `srvr` prints after `Mode:`.
    pub fn mode(&self) -> &'static str {
        match self.ensemble() {
            None => "standalone",
            Some(_) if self.read_only() => "read-only",
            Some(ensemble) => ensemble.mode(),
        }
    }

    /// Whether this member serves read-only clients now: it is cut off
    /// from its quorum and `readonlymode.enabled` asks for it.
    pub fn read_only(&self) -> bool {
        self.options.config.readonly_mode_enabled
            && self.ensemble().is_some_and(|ensemble| !ensemble.serving())
    }

    /// Milliseconds on the monotonic clock since the server started.
    pub fn elapsed_ms(&self) -> i64 {
        crate::clock::elapsed_ms(self.started)
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a new connection from `ip`; false when it would exceed
    /// maxClientCnxns.
    fn admit_ip(&self, ip: IpAddr) -> bool {
        let mut per_ip = match self.per_ip.lock() {
            Ok(g) => g,
            Err(_) => poisoned("connection counts"),
        };
        let count = per_ip.entry(ip).or_insert(0);
        let limit = self.options.config.max_client_cnxns as usize;
        if limit != 0 && *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    fn release_ip(&self, ip: IpAddr) {
        let mut per_ip = match self.per_ip.lock() {
            Ok(g) => g,
            Err(_) => poisoned("connection counts"),
        };
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("client_addr", &self.options.client_addr)
            .finish_non_exhaustive()
    }
}

fn poisoned(what: &str) -> ! {
    // Reached only after another thread panicked mid-update; continuing would
    // serve state that no transaction sequence produced.
    tracing::error!("{what} lock poisoned by an earlier panic; exiting");
    std::process::exit(70)
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    proposals_rx: mpsc::Receiver<Proposal>,
    /// The standalone server's journal; an ensemble member's log belongs to
    /// the replication layer instead.
    journal: Option<Journal>,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    // The source is printed by whoever reports the chain (`{:#}`).
    #[error("cannot recover the data")]
    Recovery(#[from] RecoveryError),
    #[error("cannot join the ensemble")]
    Ensemble(#[from] crate::replication::StartError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl Server {
    /// Recovers the data tree from the transaction log, binds the client
    /// port, and builds the server's state; nothing is served until
    /// [`Server::run`].
    pub async fn open(options: ServerOptions) -> Result<Server, OpenError> {
        for dir in [options.data_dir(), options.data_log_dir()] {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        if !options.config.force_sync {
            warn!("forceSync=no: acknowledged writes can be lost if the machine crashes");
        }
        let distributed = options.config.is_distributed();
        let (journal, tree) = if distributed {
            // A member's state comes from the replicated log and its
            // snapshot, which the replication layer hands to the tree.
            (None, DataTree::new(recovery::tree_options(&options)))
        } else {
            let (journal, tree) = tokio::task::block_in_place(|| recovery::recover(&options))?;
            (Some(journal), tree)
        };
        let listener = TcpListener::bind(options.client_addr)
            .await
            .map_err(|source| OpenError::Bind {
                addr: options.client_addr,
                source,
            })?;
        let server = Server::with_tree(options, listener, tree, journal, Arc::new(SystemClock));
        if distributed {
            let ensemble = Ensemble::start(server.shared.clone()).await?;
            ensemble.log_started();
            let _ = server.shared.ensemble.set(ensemble);
        }
        Ok(server)
    }

    /// Builds a server around an already-loaded tree and a bound listener.
    pub fn with_tree(
        options: ServerOptions,
        listener: TcpListener,
        tree: DataTree,
        journal: Option<Journal>,
        clock: Arc<dyn Clock>,
    ) -> Server {
        let (proposals, proposals_rx) = mpsc::channel(pipeline::QUEUE_CAPACITY);
        let started = tokio::time::Instant::now();
        let mut tracker = SessionTracker::new(options.tick_time_ms());
        // Sessions that survive in the tree get a fresh timeout, never an
        // immediate expiry.
        for (id, timeout) in tree.sessions() {
            tracker.add(id, timeout, 0);
        }
        let sessions = Sessions {
            tracker,
            ids: SessionIdGenerator::new(options.server_id, clock.wall_ms()),
            owner: HashMap::new(),
            touched: HashSet::new(),
            read_only: HashSet::new(),
        };
        let outstanding = Arc::new(Semaphore::new(
            (options.config.global_outstanding_limit as usize).max(1),
        ));
        let shared = Arc::new(Shared {
            options,
            clock,
            tree: RwLock::new(tree),
            hub: Mutex::new(Hub::default()),
            sessions: Mutex::new(sessions),
            proposals,
            stats: ServerStats::default(),
            outstanding,
            started,
            next_conn_id: AtomicU64::new(1),
            per_ip: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            trace_mask: std::sync::atomic::AtomicI64::new(DEFAULT_TRACE_MASK),
            stop_pipeline: Notify::new(),
            purge_requested: Notify::new(),
            ensemble: std::sync::OnceLock::new(),
        });
        Server {
            shared,
            listener,
            proposals_rx,
            journal,
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, closes every
    /// connection and lets the write pipeline drain.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let Server {
            shared,
            listener,
            proposals_rx,
            journal,
        } = self;
        let mut liveness = None;
        let mut quorum_watch = None;
        let pipeline = match (journal, shared.ensemble().cloned()) {
            (Some(journal), _) => tokio::spawn(pipeline::run(
                shared.clone(),
                proposals_rx,
                journal,
                Snapshotter::new(&shared.options),
            )),
            (None, Some(ensemble)) => {
                liveness = Some(tokio::spawn(
                    ensemble.clone().report_liveness(shared.clone()),
                ));
                quorum_watch = Some(tokio::spawn(ensemble.clone().watch_quorum(shared.clone())));
                tokio::spawn(ensemble.run_pipeline(shared.clone(), proposals_rx))
            }
            (None, None) => {
                warn!("no journal and no ensemble: writes cannot be served");
                return;
            }
        };
        let purger = tokio::spawn(request_purges(shared.clone()));
        let expiry = tokio::spawn(expire_sessions(shared.clone()));
        let reaper = tokio::spawn(reap_containers_and_ttls(shared.clone()));
        info!(
            addr = %shared.options.client_addr,
            "serving clients"
        );
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        if !shared.admit_ip(remote.ip()) {
                            shared.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
                            warn!(%remote, max = shared.options.config.max_client_cnxns,
                                "too many connections from this address; closing the new one");
                            drop(stream);
                            continue;
                        }
                        let shared = shared.clone();
                        tokio::spawn(async move {
                            connection::serve(shared.clone(), stream, remote).await;
                            shared.release_ip(remote.ip());
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off rather
                        // than spin, and keep serving existing connections.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        info!("shutting down: closing client connections");
        shared.shutting_down.store(true, Ordering::SeqCst);
        drop(listener);
        shared.close_all_connections();
        expiry.abort();
        reaper.abort();
        purger.abort();
        for task in [liveness, quorum_watch].into_iter().flatten() {
            task.abort();
        }
        // Writes already queued are journaled and answered before the
        // pipeline stops; the bound only matters if the disk hangs.
        shared.stop_pipeline.notify_one();
        if tokio::time::timeout(Duration::from_secs(10), pipeline)
            .await
            .is_err()
        {
            warn!("the write pipeline did not finish within 10 s; stopping anyway");
        }
        // Last: a leader's own writes are answered by now, and it still
        // answers its peers (their votes included) until it has handed over.
        if let Some(ensemble) = shared.ensemble() {
            ensemble.hand_over().await;
        }
    }
}

/// Expires sessions whose deadline passed, once a tick.
async fn expire_sessions(shared: Arc<Shared>) {
    let tick = Duration::from_millis(shared.options.tick_time_ms().max(1) as u64);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_leader = false;
    loop {
        interval.tick().await;
        let now = shared.elapsed_ms();
        if let Some(ensemble) = shared.ensemble() {
            // Only the leader decides expiry. One that has just taken over
            // gives every session a fresh timeout rather than expiring those
            // whose liveness reports it missed during the election.
            let leader = ensemble.role() == crate::replication::Role::Leader;
            if leader && !was_leader {
                let sessions: Vec<(i64, i32)> = shared.tree().sessions().collect();
                let mut tracked = shared.sessions();
                for (id, timeout) in sessions {
                    tracked.tracker.add(id, timeout, now);
                }
            }
            was_leader = leader;
            if !leader {
                continue;
            }
        }
        let expired = shared.sessions().tracker.take_expired(now);
        for session_id in expired {
            info!(
                session = format_args!("0x{session_id:x}"),
                "session expired"
            );
            shared
                .stats
                .sessions_expired
                .fetch_add(1, Ordering::Relaxed);
            let txn = crate::txn::Txn {
                session_id,
                cxid: 0,
                time_ms: shared.clock.wall_ms(),
                auth: Vec::new(),
                op: crate::txn::TxnOp::CloseSession,
            };
            match pipeline::submit(&shared, txn, None).await {
                None => return,
                Some(Ok(_)) => {}
                // Not closed: try again on the next tick.
                Some(Err(_)) => shared.sessions().tracker.add(session_id, 0, now),
            }
        }
    }
}

/// autopurge: every `autopurge.purgeInterval` hours (never when 0, Apache's
/// default), old snapshots and the log they cover are deleted, keeping
/// `autopurge.snapRetainCount`.
async fn request_purges(shared: Arc<Shared>) {
    let hours = u64::from(shared.options.config.autopurge_purge_interval_hours);
    if hours == 0 {
        return;
    }
    let mut interval = tokio::time::interval(Duration::from_secs(hours * 3600));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        shared.purge_requested.notify_one();
    }
}

/// Deletes empty containers and expired TTL nodes, as Apache's
/// ContainerManager does, every `znode.container.checkIntervalMs`.
async fn reap_containers_and_ttls(shared: Arc<Shared>) {
    let period = Duration::from_millis(shared.options.container_check_interval_ms.max(10));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = shared.clock.wall_ms();
        let candidates = shared.tree().expired_candidates(now);
        for op in candidates {
            let txn = crate::txn::Txn {
                session_id: 0,
                cxid: 0,
                time_ms: shared.clock.wall_ms(),
                auth: Vec::new(),
                op,
            };
            if pipeline::submit(&shared, txn, None).await.is_none() {
                return;
            }
        }
    }
}
