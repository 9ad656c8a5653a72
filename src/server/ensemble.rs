//! The server as a member of an ensemble: its writes go through the
//! replication layer (openraft) and come back, on every member, as entries
//! applied to the tree in the same order.
//!
//! What crosses the replicated log is an [`Envelope`]:
//! - `Writes`: a batch of prepared transactions, each tagged with an origin
//!   tag that only the proposing server knows. Every member applies them to
//!   its tree (so zxids, Stats and sessions agree everywhere); the member
//!   that proposed a transaction also answers the client that sent it.
//! - `Touches`: the sessions a member's clients kept alive lately. The
//!   leader alone expires sessions; members report the liveness they see
//!   through the log, so every member's expiry clock agrees with the
//!   leader's and a new leader starts from the same picture (and still gives
//!   every session a fresh timeout when it takes over).
//!
//! A member applies entries only once they are committed, so a reply means
//! a quorum holds the write durably.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::replication::{
    HandoverError, Machine, MachineError, Peer, ReplicationConfig, Replicator, Role, StartError,
};
use crate::storage::snapshot::{self, SnapshotPoint};
use crate::txn::{Txn, TxnResult};

use super::pipeline::{self, Outcome, Proposal, Refused};
use super::recovery::tree_options;
use super::Shared;

/// How long a stopping leader tries to hand over before it exits anyway.
pub const HANDOVER_LIMIT: Duration = Duration::from_secs(5);

/// One replicated entry's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Envelope {
    Writes(Vec<(u64, Txn)>),
    Touches(Vec<i64>),
}

fn encode(envelope: &Envelope) -> Vec<u8> {
    super::journal::encode_versioned(envelope)
}

fn decode(payload: &[u8]) -> Option<Envelope> {
    super::journal::decode_versioned(payload).ok()
}

/// The tree as openraft's state machine.
pub struct ServerMachine {
    shared: Arc<Shared>,
    /// Index of the last entry reflected in the tree; written under the
    /// tree's write lock so a snapshot taken under its read lock agrees.
    last_applied: AtomicU64,
    /// Writers on this member waiting for their transaction to be applied.
    waiters: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
}

impl ServerMachine {
    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Outcome>>> {
        match self.waiters.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Machine for ServerMachine {
    fn apply(&self, index: u64, payload: &[u8]) -> Vec<u8> {
        let Some(envelope) = decode(payload) else {
            // Every member fails the same way on the same entry, so skipping
            // it keeps them in agreement; it can only come from a newer
            // version of the server.
            warn!(
                index,
                "skipping a replicated entry this version cannot read"
            );
            self.last_applied.store(index, Ordering::Release);
            return Vec::new();
        };
        match envelope {
            Envelope::Writes(writes) => {
                let mut answers = Vec::new();
                {
                    let mut tree = self.shared.tree_mut();
                    let mut hub = self.shared.hub();
                    for (origin, txn) in writes {
                        let applied = tree.apply(&txn);
                        pipeline::dispatch_events(&self.shared, &mut hub, &applied);
                        match applied.result {
                            TxnResult::SessionClosed => {
                                pipeline::end_session(&self.shared, &mut hub, txn.session_id, None)
                            }
                            TxnResult::SessionCreated => {
                                if let crate::txn::TxnOp::CreateSession { timeout_ms } = txn.op {
                                    let now = self.shared.elapsed_ms();
                                    let mut sessions = self.shared.sessions();
                                    if !sessions.tracker.contains(txn.session_id) {
                                        sessions.tracker.add(txn.session_id, timeout_ms, now);
                                    }
                                }
                            }
                            _ => {}
                        }
                        answers.push((origin, applied));
                    }
                    self.last_applied.store(index, Ordering::Release);
                }
                let mut waiters = self.waiters();
                for (origin, applied) in answers {
                    if let Some(done) = waiters.remove(&origin) {
                        let _ = done.send(Ok(applied));
                    }
                }
            }
            Envelope::Touches(sessions) => {
                let now = self.shared.elapsed_ms();
                let mut tracker = self.shared.sessions();
                for session in sessions {
                    let known = tracker.tracker.touch(session, now);
                    tracing::debug!(session, known, now, "liveness report applied");
                }
                self.last_applied.store(index, Ordering::Release);
            }
        }
        Vec::new()
    }

    fn advance(&self, index: u64) {
        // The entry changes nothing in the tree, so a snapshot that sees the
        // new index with the current tree is still consistent: no lock.
        self.last_applied.store(index, Ordering::Release);
    }

    fn snapshot(&self) -> Result<crate::replication::state_machine::MachineSnapshot, MachineError> {
        let (image, last_index) = {
            let tree = self.shared.tree();
            (
                snapshot::capture(&tree),
                self.last_applied.load(Ordering::Acquire),
            )
        };
        let mut bytes = Vec::new();
        let point = SnapshotPoint {
            last_index,
            last_term: 0,
            created_ms: self.shared.clock.wall_ms(),
            extra: Vec::new(),
        };
        snapshot::write_to(&mut bytes, &image, &point).map_err(|e| MachineError(e.to_string()))?;
        Ok(crate::replication::state_machine::MachineSnapshot { last_index, bytes })
    }

    fn install(&self, last_index: u64, bytes: &[u8]) -> Result<(), MachineError> {
        let (tree, _) = snapshot::read_from(bytes, tree_options(&self.shared.options))
            .map_err(|e| MachineError(e.to_string()))?;
        let now = self.shared.elapsed_ms();
        let mut current = self.shared.tree_mut();
        *current = tree;
        self.last_applied.store(last_index, Ordering::Release);
        let mut sessions = self.shared.sessions();
        for (id, timeout) in current.sessions() {
            if !sessions.tracker.contains(id) {
                sessions.tracker.add(id, timeout, now);
            }
        }
        Ok(())
    }
}

/// The first tag a member hands out to its proposals.
///
/// Every member applies every write and answers the waiter its tag names, so
/// tags must be unique across the ensemble, not just within one process: the
/// proposing member's id fills the top byte (members started in the same
/// millisecond would otherwise hand out the same tags and answer each other's
/// clients). The rest comes from the start time, so that a replayed entry of
/// an earlier run of this member never matches a waiter of this one.
fn first_tag(server_id: u8, wall_ms: i64) -> u64 {
    const LOW_BITS: u64 = (1 << 56) - 1;
    (u64::from(server_id) << 56) | (((wall_ms as u64) << 20) & LOW_BITS)
}

/// This member's replication.
pub struct Ensemble {
    pub replicator: Replicator,
    machine: Arc<ServerMachine>,
    next_tag: AtomicU64,
    /// How long a member may go without hearing from its quorum (a leader:
    /// acknowledgements; others: the leader) before it stops serving.
    contact_limit: Duration,
    /// [`Ensemble::in_contact`] as last seen by [`Ensemble::watch_quorum`]:
    /// roles, sessions and connections all follow this one verdict.
    serving: AtomicBool,
}

impl Ensemble {
    pub async fn start(shared: Arc<Shared>) -> Result<Arc<Ensemble>, StartError> {
        let options = &shared.options;
        let peers: Vec<Peer> = options
            .config
            .servers
            .iter()
            .filter_map(Peer::from_spec)
            .collect();
        let mut config = ReplicationConfig::from_tick_time(Duration::from_millis(
            options.tick_time_ms().max(1) as u64,
        ));
        config.snap_count = u64::from(options.config.snap_count).max(2);
        config.logs_kept_after_snapshot = u64::from(options.config.commit_log_count);
        config.log_options = super::recovery::log_options(options);
        let machine = Arc::new(ServerMachine {
            shared: shared.clone(),
            last_applied: AtomicU64::new(0),
            waiters: Mutex::new(HashMap::new()),
        });
        let replicator = Replicator::start(
            u64::from(options.server_id),
            peers,
            options.data_log_dir(),
            machine.clone(),
            crate::replication::TcpTransport,
            config,
        )
        .await?;
        // Apache's bound: a follower that has not heard from its leader for
        // syncLimit ticks is dropped, and one that has not heard the leader
        // gives up on it.
        let contact_limit = Duration::from_millis(
            (options.tick_time_ms().max(1) as u64)
                .saturating_mul(u64::from(options.config.sync_limit.unwrap_or(5).max(1))),
        );
        Ok(Arc::new(Ensemble {
            replicator,
            machine,
            next_tag: AtomicU64::new(first_tag(options.server_id, shared.clock.wall_ms())),
            contact_limit,
            serving: AtomicBool::new(false),
        }))
    }

    pub fn role(&self) -> Role {
        self.replicator.role()
    }

    /// Whether this member serves clients (see [`Ensemble::in_contact`]).
    pub fn serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// Whether this member may serve clients: it has a role in a working
    /// ensemble and has heard from its quorum lately. One cut off from the
    /// quorum would otherwise go on answering reads from a state that may
    /// already be superseded, and keep sessions its leader cannot see.
    fn in_contact(&self) -> bool {
        matches!(self.role(), Role::Leader | Role::Follower | Role::Observer)
            && self
                .replicator
                .quorum_contact_age()
                .is_some_and(|age| age <= self.contact_limit)
    }

    /// What `srvr` and `mntr` call this member.
    pub fn mode(&self) -> &'static str {
        if !self.serving() {
            return "looking";
        }
        match self.role() {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Observer => "observer",
            Role::Candidate | Role::Joining | Role::Stopped => "looking",
        }
    }

    /// Closes every client connection when this member loses its quorum, as
    /// an Apache server does when it goes back to looking: the clients move
    /// to a member that still serves, and keep their sessions.
    pub async fn watch_quorum(self: Arc<Self>, shared: Arc<Shared>) {
        let period =
            (self.contact_limit / 10).clamp(Duration::from_millis(20), Duration::from_millis(500));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut metrics = self.replicator.subscribe();
        let mut was_serving = false;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                changed = metrics.changed() => if changed.is_err() { return },
            }
            let serving = self.in_contact();
            self.serving.store(serving, Ordering::Release);
            if was_serving && !serving {
                warn!(
                    limit_ms = self.contact_limit.as_millis() as u64,
                    "lost contact with the quorum; closing client connections until the ensemble has a leader again"
                );
                shared.close_all_connections();
            } else if serving && !was_serving {
                info!(
                    mode = self.mode(),
                    "serving clients as a member of the ensemble"
                );
                // Read-only sessions end with the partition: their clients
                // reconnect and get sessions the ensemble knows.
                let read_only: Vec<i64> = shared.sessions().read_only.iter().copied().collect();
                if !read_only.is_empty() {
                    info!(sessions = read_only.len(), "closing the read-only sessions");
                    shared.close_connections_of(&read_only);
                    shared.sessions().drop_read_only();
                }
            }
            was_serving = serving;
        }
    }

    /// Replicates batches of proposals in order, one batch in flight at a
    /// time: while a batch commits, the next one gathers (group commit
    /// across the ensemble).
    pub async fn run_pipeline(
        self: Arc<Self>,
        shared: Arc<Shared>,
        mut rx: mpsc::Receiver<Proposal>,
    ) {
        let mut batch = Vec::with_capacity(512);
        loop {
            let received = tokio::select! {
                received = rx.recv_many(&mut batch, 512) => received,
                _ = shared.stop_pipeline.notified() => {
                    rx.close();
                    continue;
                }
            };
            if received == 0 {
                break;
            }
            let mut writes = Vec::with_capacity(batch.len());
            let mut tags = Vec::with_capacity(batch.len());
            {
                let mut waiters = self.machine.waiters();
                for proposal in batch.drain(..) {
                    let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
                    waiters.insert(tag, proposal.done);
                    tags.push(tag);
                    writes.push((tag, proposal.txn));
                }
            }
            let payload = encode(&Envelope::Writes(writes));
            if let Err(e) = self.replicator.write_via_leader(payload).await {
                // Not committed (no leader, no quorum, or the outcome is
                // unknown): the clients hear ConnectionLoss and retry.
                warn!(error = %e, "replicating writes failed");
                let mut waiters = self.machine.waiters();
                for tag in tags {
                    if let Some(done) = waiters.remove(&tag) {
                        let _ = done.send(Err(Refused::NotReplicated));
                    }
                }
            }
        }
    }

    /// Reports the sessions this member's clients kept alive, every half
    /// tick, so the leader's expiry clock sees them.
    pub async fn report_liveness(self: Arc<Self>, shared: Arc<Shared>) {
        let period = Duration::from_millis((shared.options.tick_time_ms() / 2).max(50) as u64);
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let touched: Vec<i64> = {
                let mut sessions = shared.sessions();
                sessions.touched.drain().collect()
            };
            if touched.is_empty() || self.role() == Role::Leader {
                continue;
            }
            if let Err(e) = self
                .replicator
                .write_via_leader(encode(&Envelope::Touches(touched)))
                .await
            {
                tracing::debug!(error = %e, "reporting session liveness failed");
            }
        }
    }

    /// On a leader that is stopping: hands leadership to the follower that
    /// holds the whole log (see `replication::leadership`), within
    /// [`HANDOVER_LIMIT`]; the outcome is logged, and the member exits
    /// either way. Elsewhere it does nothing.
    pub async fn hand_over(&self) {
        if self.role() != Role::Leader {
            return;
        }
        info!("handing leadership over before stopping");
        match self.replicator.hand_over(HANDOVER_LIMIT).await {
            Ok(handover) => info!(
                new_leader = handover.new_leader,
                elapsed_ms = handover.elapsed.as_millis() as u64,
                "leadership handed over"
            ),
            Err(HandoverError::NotLeader) => {}
            Err(e) => warn!(error = %e, "leadership was not handed over; the ensemble will elect"),
        }
    }

    /// Waits until this member has applied every write committed before the
    /// call (ZooKeeper's `sync`).
    ///
    /// Apache's follower holds a sync until its leader answers; here a
    /// failed attempt (no leader known yet, a leader briefly unreachable) is
    /// retried for up to syncLimit ticks, after which a member that still has
    /// no leader stops serving anyway. Returns false when it never succeeded.
    pub async fn sync(&self) -> bool {
        let deadline = tokio::time::Instant::now() + self.contact_limit;
        let pause =
            (self.contact_limit / 20).clamp(Duration::from_millis(10), Duration::from_millis(200));
        loop {
            match self.replicator.sync().await {
                Ok(()) => return true,
                Err(e) if tokio::time::Instant::now() + pause >= deadline => {
                    warn!(error = %e, "sync could not reach the leader");
                    return false;
                }
                Err(_) => tokio::time::sleep(pause).await,
            }
        }
    }

    pub fn log_started(&self) {
        info!(
            id = self.replicator.id(),
            peers = self.replicator.listen_addr(),
            "member of an ensemble"
        );
    }
}

#[cfg(test)]
mod tag_tests {
    use super::first_tag;

    #[test]
    fn members_started_in_the_same_millisecond_hand_out_different_tags() {
        let now = 1_795_334_189_842;
        let (one, two) = (first_tag(1, now), first_tag(2, now));
        assert_ne!(one, two);
        // A million proposals later the ranges still do not meet.
        assert!(one + (1 << 20) < two);
    }

    #[test]
    fn a_restarted_member_starts_after_its_earlier_tags() {
        let before = first_tag(3, 1_795_334_189_842);
        let after = first_tag(3, 1_795_334_189_843);
        assert!(before + (1 << 20) <= after);
        assert_eq!(before >> 56, after >> 56);
    }
}
