//! zkBench: load any ZooKeeper ensemble (ours or Apache's) with one workload
//! from many sessions, and report throughput, latency percentiles from an
//! HDR histogram, and every error by kind.
//!
//! A run connects `sessions` clients, spread over the servers of the
//! connect string round-robin (session i starts at server i mod n, and
//! fails over along the list from there), runs `in_flight` workers per
//! session (each with one request outstanding, so a session pipelines up to
//! `in_flight` requests), and goes through these steps:
//!
//! 1. setup: the root, and for every workload but create the key space
//!    (`keys` nodes of `value_size` bytes; existing nodes are reused), then
//!    a `sync` from every session so that no server answers a read from
//!    before the setup;
//! 2. warm-up, for `warmup` (not measured; its errors are still counted);
//! 3. the measured phase, for a duration or a number of operations: it is
//!    always bounded, and also ends when no operation has succeeded for
//!    `stall_timeout` (a dead server), or when delete runs out of keys;
//! 4. cleanup of every node the run created, unless `keep`;
//! 5. closing the sessions.
//!
//! With `rate`, workers start their operations on a shared schedule
//! (`Pace`) instead of as soon as their last reply came, and latency
//! counts from the scheduled start: latency at a given load, with a stall
//! charged to every operation it delayed.
//!
//! The tool's own CPU time over the measured phase (getrusage) is in the
//! report, per operation; given the servers' pids (same host), so is
//! theirs, which is how a run shows that the load generator was not the
//! bottleneck.

pub mod cpu;
pub mod report;
pub mod stats;
pub mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::{Client, ClientOptions, ConnectString, Error};
use crate::proto::{Acl, CreateMode, ErrorCode, MAX_FRAME_LEN};

pub use report::{Housekeeping, PhaseReport, Report, Requested, TOOL};
pub use stats::{error_kind, Latency, OpSummary};
pub use workload::{parse_duration, Layout, Workload, WORKLOAD_NAMES};

use cpu::{CpuTime, CpuUse};
use stats::{is_connection_error, Recorder};
use workload::{execute, OpContext, WorkerState};

/// The longest phase accepted: long soaks are fine, a typo of a year is not.
const LONGEST_PHASE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The highest `--rate`: far above what any ensemble serves, low enough that
/// a worker's interval stays a sensible duration.
const MAX_RATE: f64 = 100_000_000.0;

/// A paced worker waits in steps no longer than this, so that the end of a
/// phase is never a whole interval away.
const PACING_STEP: Duration = Duration::from_millis(100);

/// How long a measured phase runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Duration(Duration),
    /// Exactly this many operations complete (each successfully or not).
    Ops(u64),
}

/// A run's settings; see the module documentation.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub connect_string: String,
    pub workload: Workload,
    pub value_size: usize,
    pub sessions: usize,
    pub in_flight: usize,
    pub limit: Limit,
    pub warmup: Duration,
    /// Size of the key space the non-create workloads use.
    pub keys: u64,
    /// setData operations per multi.
    pub multi_size: usize,
    /// Where the benchmark's nodes go; must not be `/`.
    pub root: String,
    /// Leave the nodes in place after the run.
    pub keep: bool,
    /// How long one request may wait for its reply.
    pub request_timeout: Duration,
    pub session_timeout: Duration,
    /// A phase in which nothing succeeds for this long is ended.
    pub stall_timeout: Duration,
    /// Local server processes whose CPU time is reported.
    pub server_pids: Vec<u32>,
    /// Seeds the key choice; the same seed picks the same keys.
    pub seed: u64,
    /// Operations per second across all workers, paced on a schedule
    /// (None: each worker sends as soon as its last reply came).
    pub rate: Option<f64>,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            connect_string: "127.0.0.1:2181".into(),
            workload: Workload::Get,
            value_size: 100,
            sessions: 16,
            in_flight: 1,
            limit: Limit::Duration(Duration::from_secs(10)),
            warmup: Duration::from_secs(2),
            keys: 10_000,
            multi_size: 4,
            root: "/zkbench".into(),
            keep: false,
            request_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(10),
            server_pids: Vec::new(),
            seed: 1,
            rate: None,
        }
    }
}

/// Why a run could not be made or could not go on.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid setting: {0}")]
    Invalid(String),
    #[error("session {session} could not connect: {source}")]
    Connect {
        session: usize,
        #[source]
        source: Error,
    },
    #[error("setup failed ({what}): {reason}")]
    Setup { what: String, reason: String },
    #[error("cannot make a latency histogram: {0}")]
    Histogram(String),
}

impl BenchConfig {
    /// Refuses settings that cannot make a bounded, meaningful run.
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid = |what: &str| Err(BenchError::Invalid(what.to_string()));
        ConnectString::parse(&self.connect_string)
            .map_err(|e| BenchError::Invalid(e.to_string()))?;
        if self.sessions == 0 || self.in_flight == 0 {
            return invalid("--sessions and --in-flight must be at least 1");
        }
        match self.limit {
            Limit::Ops(0) => return invalid("--ops must be at least 1"),
            Limit::Duration(d) if d.is_zero() => return invalid("--duration must be above 0"),
            Limit::Duration(d) if d > LONGEST_PHASE => {
                return invalid("--duration must be at most 30 days")
            }
            _ => {}
        }
        if self.warmup > LONGEST_PHASE {
            return invalid("--warmup must be at most 30 days");
        }
        // Room for the path, the ACL and the request header in one frame.
        let frame_room = MAX_FRAME_LEN.saturating_sub(4096);
        if self.value_size > frame_room {
            return invalid(&format!("--value-size must be at most {frame_room} bytes"));
        }
        if self.workload == Workload::Multi
            && (self.multi_size == 0
                || self.multi_size.saturating_mul(self.value_size + 256) > frame_room)
        {
            return invalid("--multi-size must be at least 1 and its setData must fit one frame");
        }
        if self.workload.needs_keys() && self.keys == 0 {
            return invalid("--keys must be at least 1 for this workload");
        }
        if let Workload::Mixed { read_ratio } = self.workload {
            if !(0.0..=1.0).contains(&read_ratio) {
                return invalid("--read-ratio must be between 0 and 1");
            }
        }
        if self.root.trim_end_matches('/').is_empty() {
            return invalid("--root must not be /");
        }
        crate::client::validate_path(&self.root).map_err(|e| BenchError::Invalid(e.to_string()))?;
        if self.stall_timeout.is_zero() || self.request_timeout.is_zero() {
            return invalid("timeouts must be above 0");
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
                return invalid(&format!(
                    "--rate must be above 0 and at most {MAX_RATE} operations per second"
                ));
            }
        }
        Ok(())
    }

    /// Keys to populate: for delete, enough for the warm-up (`keys`) and
    /// every measured operation.
    fn keys_to_populate(&self) -> u64 {
        match (self.workload, self.limit) {
            (Workload::Create, _) => 0,
            (Workload::Delete, Limit::Ops(ops)) => self.keys.saturating_add(ops),
            _ => self.keys,
        }
    }
}

/// A progress line's figures, given to the caller once a second.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// "setup", "warmup", "run" or "cleanup".
    pub phase: &'static str,
    pub elapsed: Duration,
    /// Operations completed in this phase so far.
    pub done: u64,
    /// How many the phase will do, when known.
    pub total: Option<u64>,
    /// Operations per second over the last interval.
    pub rate: f64,
    /// Of the successful operations of this phase so far.
    pub p99: Option<Duration>,
    pub errors: u64,
}

impl Progress {
    /// The line zkBench prints.
    pub fn line(&self) -> String {
        let done = match self.total {
            Some(total) => format!("{}/{total}", self.done),
            None => self.done.to_string(),
        };
        let p99 = self
            .p99
            .map(|p| format!("{:.3} ms", p.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "-".into());
        format!(
            "[{:>5.1}s {:<7}] {:>9.0} ops/s  done {done}  p99 {p99}  errors {}",
            self.elapsed.as_secs_f64(),
            self.phase,
            self.rate,
            self.errors
        )
    }
}

/// Runs the benchmark; `on_progress` is called about once a second.
pub async fn run(
    config: &BenchConfig,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Report, BenchError> {
    config.validate()?;
    let (clients, sessions_per_server) = connect_all(config).await?;
    let layout = Layout::new(&config.root);
    let populate = config.keys_to_populate();
    let ctx = Arc::new(OpContext {
        workload: config.workload,
        layout: layout.clone(),
        keys: populate.max(config.keys),
        value: value_bytes(config.value_size),
        multi_size: config.multi_size,
    });

    let setup = set_up(config, &clients, &ctx, populate, &mut on_progress).await?;

    let workers: Vec<WorkerState> = (0..(config.sessions * config.in_flight) as u64)
        .map(|id| WorkerState::new(id, config.seed))
        .collect();
    let delete_cursor = Arc::new(AtomicU64::new(0));
    let mut runner = PhaseRunner {
        config,
        clients: &clients,
        ctx: &ctx,
        delete_cursor,
        workers,
    };

    let warmup = if config.warmup.is_zero() {
        None
    } else {
        Some(
            runner
                .run("warmup", Limit::Duration(config.warmup), &mut on_progress)
                .await?,
        )
    };

    let host_before = cpu::host();
    let cpu_before = cpu::own().ok();
    let servers_before: Vec<Option<CpuTime>> = config
        .server_pids
        .iter()
        .map(|&pid| cpu::of_process(pid).ok())
        .collect();
    let measured = runner.run("run", config.limit, &mut on_progress).await?;
    let wall = Duration::from_secs_f64(measured.elapsed_s);
    let client_cpu = match (cpu_before, cpu::own().ok()) {
        (Some(before), Some(after)) => CpuUse::of(after.since(&before), measured.ops, wall),
        _ => CpuUse::default(),
    };
    let server_cpu = server_cpu_use(&config.server_pids, &servers_before, measured.ops, wall);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let host_cpu = match (host_before, cpu::host()) {
        (Some(before), Some(after)) => cpu::HostUse::between(before, after, cores),
        _ => None,
    };

    let cleanup = if config.keep {
        None
    } else {
        Some(
            clean_up(
                config,
                &clients,
                &ctx,
                populate,
                &runner.workers,
                &mut on_progress,
            )
            .await,
        )
    };
    close_all(&clients).await;

    Ok(Report {
        tool: TOOL.into(),
        version: crate::ZOOKEEPER_VERSION.into(),
        connect_string: config.connect_string.clone(),
        workload: config.workload.name().into(),
        read_ratio: match config.workload {
            Workload::Mixed { read_ratio } => Some(read_ratio),
            _ => None,
        },
        multi_size: (config.workload == Workload::Multi).then_some(config.multi_size),
        value_size: config.value_size,
        sessions: config.sessions,
        in_flight: config.in_flight,
        keys: ctx.keys * u64::from(config.workload.needs_keys()),
        root: layout.root.clone(),
        seed: config.seed,
        requested: Requested {
            duration_s: match config.limit {
                Limit::Duration(d) => Some(d.as_secs_f64()),
                Limit::Ops(_) => None,
            },
            ops: match config.limit {
                Limit::Ops(n) => Some(n),
                Limit::Duration(_) => None,
            },
            warmup_s: config.warmup.as_secs_f64(),
            rate_ops_s: config.rate,
        },
        sessions_per_server,
        setup,
        warmup,
        measured,
        client_cpu,
        server_cpu,
        host_cpu,
        cleanup,
    })
}

fn value_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

fn server_cpu_use(
    pids: &[u32],
    before: &[Option<CpuTime>],
    ops: u64,
    wall: Duration,
) -> Option<CpuUse> {
    if pids.is_empty() {
        return None;
    }
    let mut used = CpuTime::default();
    for (&pid, before) in pids.iter().zip(before) {
        let after = cpu::of_process(pid).ok()?;
        let delta = after.since(&(*before)?);
        used.user += delta.user;
        used.system += delta.system;
    }
    Some(CpuUse::of(used, ops, wall))
}

/// The connect string with its servers rotated to start at `first`.
fn rotated(parsed: &ConnectString, first: usize) -> String {
    let n = parsed.hosts.len().max(1);
    let hosts: Vec<String> = (0..n)
        .filter_map(|i| parsed.hosts.get((first + i) % n))
        .map(ToString::to_string)
        .collect();
    format!(
        "{}{}",
        hosts.join(","),
        parsed.chroot.as_deref().unwrap_or("")
    )
}

async fn connect_all(
    config: &BenchConfig,
) -> Result<(Vec<Client>, BTreeMap<String, usize>), BenchError> {
    let parsed = ConnectString::parse(&config.connect_string)
        .map_err(|e| BenchError::Invalid(e.to_string()))?;
    let mut pending = JoinSet::new();
    for session in 0..config.sessions {
        let connect_string = rotated(&parsed, session);
        let options = ClientOptions {
            session_timeout: config.session_timeout,
            request_timeout: config.request_timeout,
            ..ClientOptions::default()
        };
        pending.spawn(async move {
            let outcome = Client::connect(&connect_string, options).await;
            (session, outcome.map(|(client, _events)| client))
        });
    }
    let mut clients: Vec<Option<Client>> = vec![None; config.sessions];
    let mut failure = None;
    while let Some(joined) = pending.join_next().await {
        match joined {
            Ok((session, Ok(client))) => {
                if let Some(slot) = clients.get_mut(session) {
                    *slot = Some(client);
                }
            }
            Ok((session, Err(source))) => {
                failure.get_or_insert(BenchError::Connect { session, source });
            }
            Err(e) => {
                failure.get_or_insert(BenchError::Setup {
                    what: "connecting".into(),
                    reason: e.to_string(),
                });
            }
        }
    }
    let clients: Vec<Client> = clients.into_iter().flatten().collect();
    if let Some(failure) = failure {
        close_all(&clients).await;
        return Err(failure);
    }
    let mut per_server = BTreeMap::new();
    for client in &clients {
        let server = client
            .status()
            .server
            .map(|addr| addr.to_string())
            .unwrap_or_else(|| "unknown".into());
        *per_server.entry(server).or_insert(0) += 1;
    }
    Ok((clients, per_server))
}

async fn close_all(clients: &[Client]) {
    let mut closing = JoinSet::new();
    for client in clients {
        let client = client.clone();
        closing.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        });
    }
    while closing.join_next().await.is_some() {}
}

fn create_node_error(outcome: Result<String, Error>) -> Result<bool, Error> {
    match outcome {
        Ok(_) => Ok(true),
        Err(e) if e.is(ErrorCode::NodeExists) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn set_up(
    config: &BenchConfig,
    clients: &[Client],
    ctx: &Arc<OpContext>,
    populate: u64,
    on_progress: &mut impl FnMut(&Progress),
) -> Result<Housekeeping, BenchError> {
    let started = Instant::now();
    let layout = &ctx.layout;
    let first = clients
        .first()
        .ok_or_else(|| BenchError::Invalid("no session".into()))?;
    let open = Acl::open_unsafe();
    let mut parents = vec![layout.root.clone()];
    if config.workload == Workload::Create {
        parents.push(layout.created_parent());
    }
    let mut made = 0;
    for parent in &parents {
        let created = create_node_error(
            first
                .create(parent, b"", &open, CreateMode::Persistent)
                .await,
        )
        .map_err(|e| BenchError::Setup {
            what: format!("creating {parent}"),
            reason: e.to_string(),
        })?;
        made += u64::from(created);
    }
    let mut total = Housekeeping {
        done: made,
        already: parents.len() as u64 - made,
        ..Housekeeping::default()
    };
    if populate > 0 {
        let dirs_layout = layout.clone();
        let dirs = fan_out(
            config,
            clients,
            "setup",
            Layout::dir_count(populate),
            Arc::new(move |i| dirs_layout.dir(i)),
            Action::Create(Vec::new()),
            on_progress,
        )
        .await;
        merge(&mut total, &dirs);
        if dirs.abandoned.is_none() {
            let keys_layout = layout.clone();
            let keys = fan_out(
                config,
                clients,
                "setup",
                populate,
                Arc::new(move |i| keys_layout.key(i)),
                Action::Create(ctx.value.clone()),
                on_progress,
            )
            .await;
            merge(&mut total, &keys);
        }
    }
    if total.abandoned.is_none() {
        let synced = sync_all(clients, &layout.root).await;
        merge(&mut total, &synced);
    }
    total.elapsed_s = started.elapsed().as_secs_f64();
    if let Some(why) = &total.abandoned {
        return Err(BenchError::Setup {
            what: "populating the key space".into(),
            reason: why.clone(),
        });
    }
    Ok(total)
}

/// A `sync` from every session, so that each session's server has applied
/// everything setup wrote before anyone reads it. ZooKeeper orders a read
/// after the writes of its own session only: a follower may answer another
/// session's read before it has applied a create the leader acknowledged,
/// and the warm-up's first gets would then find no node.
async fn sync_all(clients: &[Client], path: &str) -> Housekeeping {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for client in clients {
        let (client, path) = (client.clone(), path.to_owned());
        tasks.spawn(async move { client.sync(&path).await.map(drop) });
    }
    let mut synced = Housekeeping::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                synced.errors += 1;
                *synced.errors_by_kind.entry(error_kind(&e)).or_default() += 1;
                if is_connection_error(&e) && synced.abandoned.is_none() {
                    synced.abandoned = Some(format!("sync {path}: {e}"));
                }
            }
            Err(e) => {
                synced.errors += 1;
                *synced.errors_by_kind.entry("Panic".into()).or_default() += 1;
                synced
                    .abandoned
                    .get_or_insert_with(|| format!("sync {path}: {e}"));
            }
        }
    }
    synced.elapsed_s = started.elapsed().as_secs_f64();
    synced
}

async fn clean_up(
    config: &BenchConfig,
    clients: &[Client],
    ctx: &Arc<OpContext>,
    populated: u64,
    workers: &[WorkerState],
    on_progress: &mut impl FnMut(&Progress),
) -> Housekeeping {
    let started = Instant::now();
    let layout = ctx.layout.clone();
    let mut total = Housekeeping::default();
    let mut steps: Vec<(u64, PathOf)> = Vec::new();
    if populated > 0 {
        let keys = layout.clone();
        steps.push((populated, Arc::new(move |i| keys.key(i))));
        let dirs = layout.clone();
        steps.push((Layout::dir_count(populated), Arc::new(move |i| dirs.dir(i))));
    }
    // Created nodes: worker w made names 0..created[w]; index i maps to
    // the worker whose range holds it.
    let mut ends = Vec::with_capacity(workers.len());
    let mut running = 0u64;
    for worker in workers {
        running += worker.created;
        ends.push((running, worker.id, worker.created));
    }
    if running > 0 {
        let created = layout.clone();
        steps.push((
            running,
            Arc::new(move |i| {
                let at = ends.partition_point(|&(end, _, _)| end <= i);
                let (end, id, count) = ends.get(at).copied().unwrap_or((0, 0, 0));
                created.created(id, i + count - end)
            }),
        ));
    }
    if config.workload == Workload::Create {
        let parent = layout.created_parent();
        steps.push((1, Arc::new(move |_| parent.clone())));
    }
    let root = layout.root.clone();
    steps.push((1, Arc::new(move |_| root.clone())));
    for (count, path_of) in steps {
        let step = fan_out(
            config,
            clients,
            "cleanup",
            count,
            path_of,
            Action::Delete,
            on_progress,
        )
        .await;
        merge(&mut total, &step);
        if total.abandoned.is_some() {
            break;
        }
    }
    total.elapsed_s = started.elapsed().as_secs_f64();
    total
}

fn merge(total: &mut Housekeeping, step: &Housekeeping) {
    total.done += step.done;
    total.already += step.already;
    total.errors += step.errors;
    for (kind, n) in &step.errors_by_kind {
        *total.errors_by_kind.entry(kind.clone()).or_default() += n;
    }
    if total.abandoned.is_none() {
        total.abandoned.clone_from(&step.abandoned);
    }
}

type PathOf = Arc<dyn Fn(u64) -> String + Send + Sync>;

#[derive(Debug, Clone)]
enum Action {
    /// Create with this value; an existing node counts as already there.
    Create(Vec<u8>),
    /// Delete; a missing node counts as already gone.
    Delete,
}

/// Shared state of one fan-out.
struct FanOut {
    next: AtomicU64,
    count: u64,
    done: AtomicU64,
    already: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    abandoned: Mutex<Option<String>>,
    give_up: AtomicBool,
}

/// Applies `action` to `count` paths using every session and its in-flight
/// slots. Gives up at the first sign that the servers are gone: a
/// housekeeping step must not take minutes against a dead ensemble.
async fn fan_out(
    config: &BenchConfig,
    clients: &[Client],
    phase: &'static str,
    count: u64,
    path_of: PathOf,
    action: Action,
    on_progress: &mut impl FnMut(&Progress),
) -> Housekeeping {
    let started = Instant::now();
    let shared = Arc::new(FanOut {
        next: AtomicU64::new(0),
        count,
        done: AtomicU64::new(0),
        already: AtomicU64::new(0),
        errors: Mutex::new(BTreeMap::new()),
        abandoned: Mutex::new(None),
        give_up: AtomicBool::new(false),
    });
    let action = Arc::new(action);
    let mut tasks = JoinSet::new();
    let slots = (config.in_flight as u64).min(count.max(1));
    for client in clients {
        for _ in 0..slots {
            let (client, shared, path_of, action) = (
                client.clone(),
                shared.clone(),
                path_of.clone(),
                action.clone(),
            );
            tasks.spawn(async move {
                while !shared.give_up.load(Ordering::Relaxed) {
                    let index = shared.next.fetch_add(1, Ordering::Relaxed);
                    if index >= shared.count {
                        break;
                    }
                    let path = path_of(index);
                    let outcome = match action.as_ref() {
                        Action::Create(value) => client
                            .create(&path, value, &Acl::open_unsafe(), CreateMode::Persistent)
                            .await
                            .map(drop),
                        Action::Delete => client.delete(&path, None).await,
                    };
                    let already = match action.as_ref() {
                        Action::Create(_) => ErrorCode::NodeExists,
                        Action::Delete => ErrorCode::NoNode,
                    };
                    match outcome {
                        Ok(()) => {
                            shared.done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.is(already) => {
                            shared.already.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            *shared
                                .errors
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .entry(error_kind(&e))
                                .or_default() += 1;
                            if is_connection_error(&e) {
                                shared.give_up.store(true, Ordering::Relaxed);
                                shared
                                    .abandoned
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .get_or_insert_with(|| format!("{path}: {e}"));
                            }
                        }
                    }
                }
            });
        }
    }
    let finished = |shared: &FanOut| {
        shared.done.load(Ordering::Relaxed)
            + shared.already.load(Ordering::Relaxed)
            + shared
                .errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .sum::<u64>()
    };
    let mut ticker = Ticker::new(phase, started);
    loop {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() { break },
            _ = ticker.tick() => {
                let errors = shared.errors.lock().unwrap_or_else(PoisonError::into_inner).values().sum();
                on_progress(&ticker.progress(finished(&shared), Some(count), None, errors));
            }
        }
    }
    let errors_by_kind = shared
        .errors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let abandoned = shared
        .abandoned
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Housekeeping {
        done: shared.done.load(Ordering::Relaxed),
        already: shared.already.load(Ordering::Relaxed),
        errors: errors_by_kind.values().sum(),
        errors_by_kind,
        elapsed_s: started.elapsed().as_secs_f64(),
        abandoned,
    }
}

/// Once-a-second progress, with the rate over the last interval.
struct Ticker {
    phase: &'static str,
    started: Instant,
    interval: tokio::time::Interval,
    last: (Instant, u64),
}

impl Ticker {
    fn new(phase: &'static str, started: Instant) -> Ticker {
        let period = Duration::from_secs(1);
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticker {
            phase,
            started,
            interval,
            last: (started, 0),
        }
    }

    async fn tick(&mut self) {
        self.interval.tick().await;
    }

    fn progress(
        &mut self,
        done: u64,
        total: Option<u64>,
        p99: Option<Duration>,
        errors: u64,
    ) -> Progress {
        let now = Instant::now();
        let (then, before) = self.last;
        let seconds = now.duration_since(then).as_secs_f64();
        self.last = (now, done);
        Progress {
            phase: self.phase,
            elapsed: now.duration_since(self.started),
            done,
            total,
            rate: if seconds > 0.0 {
                done.saturating_sub(before) as f64 / seconds
            } else {
                0.0
            },
            p99,
            errors,
        }
    }
}

/// One worker's share of a `--rate` schedule. The workers' schedules
/// interleave evenly: worker `i` of `n` starts its operations at
/// `phase start + (i / n + k) * interval`, `interval` being `n / rate`.
///
/// An operation's latency counts from its scheduled start when the worker is
/// late for it (the server held the previous reply past it: the time waited
/// is the server's), and from the moment the worker woke when it had to wait
/// for it (a timer firing late is the generator's, not the server's). This
/// is what keeps a stalled server from hiding its stall behind the few
/// requests that were outstanding ("coordinated omission").
struct Pace {
    next: Instant,
    interval: Duration,
}

impl Pace {
    fn new(phase_start: Instant, rate: f64, index: usize, workers: usize) -> Pace {
        let workers = workers.max(1) as f64;
        let interval = Duration::from_secs_f64(workers / rate);
        let offset = interval.mul_f64(index as f64 / workers);
        Pace {
            next: phase_start + offset,
            interval,
        }
    }

    /// Waits for the next scheduled start; returns when the operation's
    /// latency starts, or None when the phase ended while waiting.
    async fn wait(&mut self, phase: &Phase) -> Option<Instant> {
        let scheduled = self.next;
        self.next += self.interval;
        let mut waited = false;
        loop {
            let now = Instant::now();
            if phase.stop.load(Ordering::Relaxed) || phase.deadline.is_some_and(|end| now >= end) {
                return None;
            }
            if now >= scheduled {
                return Some(if waited { now } else { scheduled });
            }
            waited = true;
            let step = scheduled.min(now + PACING_STEP);
            tokio::time::sleep_until(step.into()).await;
        }
    }
}

/// Runs timed phases with the same workers, so that names and key choices
/// carry on from warm-up to the measured phase.
struct PhaseRunner<'a> {
    config: &'a BenchConfig,
    clients: &'a [Client],
    ctx: &'a Arc<OpContext>,
    delete_cursor: Arc<AtomicU64>,
    workers: Vec<WorkerState>,
}

/// Shared state of one timed phase.
struct Phase {
    recorder: Recorder,
    limit: Limit,
    /// The end of a duration-limited phase.
    deadline: Option<Instant>,
    /// Tickets handed out, for an operation-count limit.
    issued: AtomicU64,
    stop: AtomicBool,
    stopped_early: Mutex<Option<String>>,
    /// The next key the delete workload takes, across phases.
    delete_cursor: Arc<AtomicU64>,
    /// The keys this phase may delete end here.
    delete_end: u64,
}

impl Phase {
    fn stop_early(&self, why: String) {
        self.stop.store(true, Ordering::Relaxed);
        self.stopped_early
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(why);
    }

    /// Whether a worker may start one more operation.
    fn admit(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.limit {
            Limit::Ops(n) => self.issued.fetch_add(1, Ordering::Relaxed) < n,
            Limit::Duration(_) => self.deadline.is_some_and(|end| Instant::now() < end),
        }
    }

    fn next_delete(&self) -> Option<u64> {
        let key = self.delete_cursor.fetch_add(1, Ordering::Relaxed);
        if key < self.delete_end {
            Some(key)
        } else {
            self.stop_early(format!(
                "no key left to delete (keys up to {} are gone); raise --keys",
                self.delete_end
            ));
            None
        }
    }
}

impl PhaseRunner<'_> {
    /// With an operation count, warm-up deletes come out of the first
    /// `keys` keys and the measured phase has its own `ops` keys after them;
    /// with a duration, both phases share the whole key space.
    fn delete_end(&self, limit: Limit) -> u64 {
        match (self.config.limit, limit) {
            (Limit::Ops(_), Limit::Duration(_)) => self.config.keys.min(self.ctx.keys),
            (Limit::Ops(_), Limit::Ops(_)) => {
                // Workers that found the warm-up's keys used up moved the
                // cursor past them: the measured keys start exactly here.
                let start = self.config.keys.min(self.ctx.keys);
                self.delete_cursor.store(start, Ordering::Relaxed);
                self.ctx.keys
            }
            (Limit::Duration(_), _) => self.ctx.keys,
        }
    }

    async fn run(
        &mut self,
        name: &'static str,
        limit: Limit,
        on_progress: &mut impl FnMut(&Progress),
    ) -> Result<PhaseReport, BenchError> {
        let recorder = Recorder::new(self.config.workload.reports_per_op())
            .map_err(|e| BenchError::Histogram(e.to_string()))?;
        let started = Instant::now();
        let phase = Arc::new(Phase {
            recorder,
            limit,
            deadline: match limit {
                Limit::Duration(d) => started.checked_add(d),
                Limit::Ops(_) => None,
            },
            issued: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stopped_early: Mutex::new(None),
            delete_cursor: self.delete_cursor.clone(),
            delete_end: self.delete_end(limit),
        });
        let mut tasks = JoinSet::new();
        let in_flight = self.config.in_flight;
        let worker_count = self.workers.len();
        for (index, mut worker) in std::mem::take(&mut self.workers).into_iter().enumerate() {
            let client = self.clients.get(index / in_flight).cloned();
            let (phase, ctx) = (phase.clone(), self.ctx.clone());
            let mut pace = self
                .config
                .rate
                .map(|rate| Pace::new(started, rate, index, worker_count));
            tasks.spawn(async move {
                let Some(client) = client else {
                    return worker;
                };
                loop {
                    let start = match pace.as_mut() {
                        Some(pace) => match pace.wait(&phase).await {
                            Some(start) => start,
                            None => break,
                        },
                        None => Instant::now(),
                    };
                    if !phase.admit() {
                        break;
                    }
                    let Some(op) = worker.plan(&ctx, || phase.next_delete()) else {
                        break;
                    };
                    let kind = op.name();
                    let outcome = execute(&client, &ctx, op).await;
                    let latency = start.elapsed();
                    phase
                        .recorder
                        .record(kind, outcome.as_ref().map(|()| latency));
                }
                worker
            });
        }
        let total = match limit {
            Limit::Ops(n) => Some(n),
            Limit::Duration(_) => None,
        };
        let mut ticker = Ticker::new(name, started);
        let mut last_ok = (Instant::now(), 0u64);
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    Some(Ok(worker)) => self.workers.push(worker),
                    // A worker that panicked loses only its own counters.
                    Some(Err(_)) => {}
                    None => break,
                },
                _ = ticker.tick() => {
                    let snapshot = phase.recorder.snapshot();
                    on_progress(&ticker.progress(snapshot.ops, total, snapshot.p99, snapshot.errors));
                    let now = Instant::now();
                    if snapshot.ok > last_ok.1 {
                        last_ok = (now, snapshot.ok);
                    } else if now.duration_since(last_ok.0) >= self.config.stall_timeout {
                        phase.stop_early(format!(
                            "no operation succeeded for {:.1} s",
                            now.duration_since(last_ok.0).as_secs_f64()
                        ));
                    }
                }
            }
        }
        self.workers.sort_by_key(|w| w.id);
        let elapsed = started.elapsed();
        let (all, by_op) = phase.recorder.summaries();
        let stopped_early = phase
            .stopped_early
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Ok(PhaseReport {
            ops: all.ops,
            ok: all.ok,
            errors: all.errors,
            errors_by_kind: all.errors_by_kind,
            elapsed_s: elapsed.as_secs_f64(),
            throughput_ops_s: if elapsed.is_zero() {
                0.0
            } else {
                all.ok as f64 / elapsed.as_secs_f64()
            },
            latency_ms: all.latency_ms,
            by_op,
            stopped_early,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_at_successive_servers() {
        let parsed = ConnectString::parse("a:1,b:2,c:3/app").unwrap();
        assert_eq!(rotated(&parsed, 0), "a:1,b:2,c:3/app");
        assert_eq!(rotated(&parsed, 1), "b:2,c:3,a:1/app");
        assert_eq!(rotated(&parsed, 5), "c:3,a:1,b:2/app");
    }

    #[test]
    fn unbounded_or_empty_runs_are_refused() {
        let ok = BenchConfig::default();
        ok.validate().unwrap();
        for bad in [
            BenchConfig {
                limit: Limit::Ops(0),
                ..ok.clone()
            },
            BenchConfig {
                limit: Limit::Duration(Duration::ZERO),
                ..ok.clone()
            },
            BenchConfig {
                sessions: 0,
                ..ok.clone()
            },
            BenchConfig {
                root: "/".into(),
                ..ok.clone()
            },
            BenchConfig {
                value_size: 2 << 20,
                ..ok.clone()
            },
            BenchConfig {
                workload: Workload::Mixed { read_ratio: 1.5 },
                ..ok.clone()
            },
            BenchConfig {
                connect_string: "".into(),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn delete_populates_enough_for_every_counted_operation() {
        let config = BenchConfig {
            workload: Workload::Delete,
            keys: 100,
            limit: Limit::Ops(1000),
            ..BenchConfig::default()
        };
        assert_eq!(config.keys_to_populate(), 1100);
        let create = BenchConfig {
            workload: Workload::Create,
            ..config
        };
        assert_eq!(create.keys_to_populate(), 0);
    }
}
