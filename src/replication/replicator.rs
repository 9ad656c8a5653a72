//! [`Replicator`]: the handle the server holds, and the cluster bootstrap.
//!
//! # Bootstrap from the `server.N` list
//!
//! Participants are openraft voters; observers are learners. A peer whose
//! log and vote are empty has never been part of the ensemble:
//!
//! - the participant with the lowest id initialises the membership (all
//!   participants as voters) as soon as a quorum of participants answers the
//!   handshake, and campaigns at once, so a fresh ensemble has a leader as
//!   soon as a quorum is up;
//! - any other participant does the same if it is still uninitialised after
//!   a grace period (the lowest one may be down for good): five election
//!   timeouts times its rank among the participants, so that they take turns;
//!   openraft allows several peers to initialise with the same membership;
//! - observers never initialise; whichever peer leads adds every configured
//!   observer that the membership lacks as a learner.
//!
//! A restarted peer finds its vote and log on disk and rejoins by itself.
//! Changing the `server.N` list of a running ensemble (reconfiguration) is not
//! handled here: the list only seeds a new ensemble and its observers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{RaftMetrics, ServerState};
use thiserror::Error;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::activity::Activity;
use super::leadership::{self, Handover, HandoverError};
use super::log_store::{LogClosed, LogStore};
use super::network::{
    serve_peer_rpc, CallError, ForwardedWriteError, Listener, PeerClient, PeerIdentity,
    PeerNetwork, Transport,
};
use super::state_machine::{Machine, MachineStore, SnapshotFileError};
use super::{NodeId, Peer, PeerNode, Raft, ReplicationConfig, Request, TcpTransport};

/// How long shutdown waits for the log's last write to finish.
const LOG_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between attempts to reach a quorum before bootstrapping.
const BOOTSTRAP_PROBE_PAUSE: Duration = Duration::from_millis(50);
/// Extra time a forwarding peer waits beyond the leader's own timeout.
const FORWARD_MARGIN: Duration = Duration::from_secs(1);
/// How long a bootstrap probe of one peer may take.
const BOOTSTRAP_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// This peer's part in the ensemble, as `srvr` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Leads: accepts writes.
    Leader,
    /// A voter following the leader.
    Follower,
    /// A learner: replicates, does not vote (Apache's observer).
    Observer,
    /// Campaigning for leadership; no leader is known.
    Candidate,
    /// Not yet part of the ensemble's membership (never initialised, or an
    /// observer the leader has not added yet).
    Joining,
    /// Shut down, or stopped by a storage failure.
    Stopped,
}

/// Who leads, and where to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Its server id.
    pub id: NodeId,
    /// Its addresses, when the membership knows them.
    pub node: Option<PeerNode>,
}

/// A snapshot of the replication state, for `srvr`, `stat` and `mntr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationMetrics {
    /// This peer's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// The current term (Apache's epoch).
    pub term: u64,
    /// The leader this peer knows of.
    pub leader: Option<NodeId>,
    /// Index of the last entry in the log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to the machine.
    pub last_applied_index: Option<u64>,
    /// Index of the last entry in the latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Index of the last entry purged from the log.
    pub purged_index: Option<u64>,
    /// Voters of the membership in force.
    pub voters: Vec<NodeId>,
    /// Learners (observers) of the membership in force.
    pub learners: Vec<NodeId>,
    /// On a leader: each other member and the last index it is known to hold
    /// (`None` when nothing is known yet). Empty elsewhere.
    pub followers: Vec<(NodeId, Option<u64>)>,
    /// On a leader: milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
}

/// Why the replication layer could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The peer list cannot form an ensemble with this peer in it.
    #[error("invalid ensemble: {0}")]
    InvalidEnsemble(String),
    /// openraft refused the derived configuration.
    #[error("invalid replication configuration: {0}")]
    Config(#[from] openraft::ConfigError),
    /// The log could not be opened.
    #[error(transparent)]
    Log(#[from] crate::storage::StorageError),
    /// The snapshot could not be loaded.
    #[error(transparent)]
    Snapshot(#[from] SnapshotFileError),
    /// The quorum port could not be bound.
    #[error("cannot listen for peers on {addr}: {source}")]
    Listen {
        /// The quorum address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// openraft failed to start.
    #[error("the consensus engine failed to start: {0}")]
    Raft(String),
}

/// Why a write was not applied (or may not have been).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum WriteError {
    /// This peer does not lead; send the write to the leader.
    #[error("not the leader; the leader is {leader_id:?}")]
    ForwardToLeader {
        /// The leader, when known.
        leader_id: Option<NodeId>,
        /// Its addresses, when known.
        leader: Option<PeerNode>,
    },
    /// No quorum committed the write in time. It may still be applied later.
    #[error("the write was not committed within {0:?}; its outcome is unknown")]
    Timeout(Duration),
    /// Forwarding to the leader failed; the write may or may not be applied.
    #[error("forwarding to the leader failed: {0}")]
    Forwarding(String),
    /// The replication layer has stopped (shutdown or a storage failure).
    #[error("replication has stopped: {0}")]
    Stopped(String),
    /// openraft rejected the request for another reason.
    #[error("the write was rejected: {0}")]
    Rejected(String),
    /// The leader is handing its leadership over and took no new writes;
    /// the write was not applied.
    #[error("the leader is handing over; the write was not applied")]
    HandingOver,
    /// No connection to the leader could be made; the write was not sent.
    #[error("the leader is unreachable; the write was not sent: {0}")]
    LeaderUnreachable(String),
}

impl WriteError {
    /// True when the write was certainly not applied, so trying it again
    /// cannot apply it twice.
    pub fn certainly_not_applied(&self) -> bool {
        matches!(
            self,
            WriteError::ForwardToLeader { .. }
                | WriteError::HandingOver
                | WriteError::LeaderUnreachable(_)
        )
    }
}

/// Why a linearizable read point could not be established.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ReadError {
    /// This peer does not lead (for [`Replicator::ensure_linearizable`]).
    #[error("not the leader; the leader is {leader_id:?}")]
    ForwardToLeader {
        /// The leader, when known.
        leader_id: Option<NodeId>,
        /// Its addresses, when known.
        leader: Option<PeerNode>,
    },
    /// No leader is known.
    #[error("no leader is known")]
    NoLeader,
    /// The leader could not hear from a quorum.
    #[error("the leader could not confirm its leadership with a quorum: {0}")]
    QuorumNotEnough(String),
    /// It took longer than the request timeout.
    #[error("no linearizable read point within {0:?}")]
    Timeout(Duration),
    /// Asking the leader failed.
    #[error("asking the leader failed: {0}")]
    Network(String),
    /// The replication layer has stopped.
    #[error("replication has stopped: {0}")]
    Stopped(String),
}

/// What a leader reports about its followers, as Apache's `mntr` prints it
/// on a leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderFigures {
    /// Other members that answered within the leader lease (Apache's
    /// `learners`: every connected follower and observer).
    pub learners: usize,
    /// Voters among them that hold the log up to the last AppendEntries'
    /// worth of entries (`synced_followers`).
    pub synced_followers: usize,
    /// Non-voting followers that are synced: always 0, a member here either
    /// votes or observes (`synced_non_voting_followers`).
    pub synced_non_voting_followers: usize,
    /// Observers that are synced (`synced_observers`).
    pub synced_observers: usize,
    /// Followers' `sync`s (read-index requests) being served
    /// (`pending_syncs`).
    pub pending_syncs: usize,
    /// Milliseconds since this peer became leader (`leader_uptime`).
    pub leader_uptime_ms: u64,
    /// Sizes of the entries proposed while leading, -1 before the first
    /// (`last_proposal_size`, `min_proposal_size`, `max_proposal_size`).
    pub proposal_sizes: super::activity::ProposalSizes,
}

/// The running replication layer of one peer.
pub struct Replicator<T: Transport = TcpTransport> {
    id: NodeId,
    raft: Raft,
    transport: T,
    identity: PeerIdentity,
    request_timeout: Duration,
    listen_addr: String,
    /// One connection to the leader for forwarded writes and read indexes.
    to_leader: Mutex<Option<PeerClient<T>>>,
    /// What the transport observed (leaders heard, peers answering, writes
    /// in flight).
    activity: Arc<Activity>,
    /// openraft's leader lease (`election_timeout_max`).
    lease: Duration,
    tasks: Vec<JoinHandle<()>>,
    log_closed: Option<LogClosed>,
    #[cfg(any(test, feature = "failpoints"))]
    fault_injector: Option<Arc<crate::storage::FaultInjector>>,
}

impl<T: Transport> Replicator<T> {
    /// Starts peer `my_id` of the ensemble `peers`, keeping its log and
    /// snapshot under `dir`, applying committed entries to `machine` (which
    /// must be empty: see the contract in the [module docs](super)), and
    /// listening for peers on its quorum address.
    pub async fn start<M: Machine>(
        my_id: NodeId,
        peers: Vec<Peer>,
        dir: &Path,
        machine: Arc<M>,
        transport: T,
        config: ReplicationConfig,
    ) -> Result<Replicator<T>, StartError> {
        let me = find_me(my_id, &peers)?;
        let listener = transport
            .bind(&me.node.quorum_addr)
            .await
            .map_err(|source| StartError::Listen {
                addr: me.node.quorum_addr.clone(),
                source,
            })?;
        Self::start_with_listener(my_id, peers, dir, machine, transport, config, listener).await
    }

    /// [`Replicator::start`] with a listener bound by the caller (tests bind
    /// port 0 first to learn every peer's address).
    pub async fn start_with_listener<M: Machine>(
        my_id: NodeId,
        peers: Vec<Peer>,
        dir: &Path,
        machine: Arc<M>,
        transport: T,
        config: ReplicationConfig,
        listener: T::Listener,
    ) -> Result<Replicator<T>, StartError> {
        find_me(my_id, &peers)?;
        check_ensemble(&peers)?;
        let raft_config = Arc::new(config.openraft_config()?);
        let (log_store, recovery, log_closed) = LogStore::open(dir, config.log_options.clone())?;
        if let Some(torn) = &recovery.torn_tail {
            warn!(
                file = %torn.path.display(),
                offset = torn.offset,
                bytes_dropped = torn.bytes_dropped,
                "dropped a torn write at the end of the raft log (never acknowledged)"
            );
        }
        #[cfg(any(test, feature = "failpoints"))]
        let fault_injector = log_store.fault_injector();
        let machine_store = MachineStore::open(dir, machine)?;
        let identity = PeerIdentity {
            id: my_id,
            cluster: Arc::from(config.cluster_name.as_str()),
            request_timeout: config.request_timeout,
        };
        let activity = Arc::new(Activity::default());
        let network = PeerNetwork::new(transport.clone(), identity.clone(), Arc::clone(&activity));
        let raft = Raft::new(
            my_id,
            raft_config.clone(),
            network,
            log_store,
            machine_store,
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let listen_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: String::new(),
            source,
        })?;
        info!(id = my_id, %listen_addr, "replication started");

        let mut tasks = vec![tokio::spawn(serve_peer_rpc(
            listener,
            raft.clone(),
            identity.clone(),
            Arc::clone(&activity),
        ))];
        let election_timeout_max = Duration::from_millis(raft_config.election_timeout_max);
        let heartbeat = Duration::from_millis(raft_config.heartbeat_interval);
        tasks.push(tokio::spawn(leadership::track_leadership(
            raft.clone(),
            Arc::clone(&activity),
        )));
        tasks.push(tokio::spawn(leadership::campaign_when_leader_dies(
            raft.clone(),
            my_id,
            Arc::clone(&activity),
            transport.clone(),
            identity.clone(),
            election_timeout_max,
            heartbeat.saturating_mul(2),
        )));
        let grace = election_timeout_max.saturating_mul(5);
        tasks.push(tokio::spawn(break_split_votes(
            raft.clone(),
            my_id,
            election_timeout_max.saturating_mul(2),
        )));
        tasks.push(tokio::spawn(bootstrap(
            raft.clone(),
            my_id,
            peers.clone(),
            transport.clone(),
            identity.clone(),
            grace,
        )));
        tasks.push(tokio::spawn(add_observers(raft.clone(), my_id, peers)));

        Ok(Replicator {
            id: my_id,
            raft,
            transport,
            identity,
            request_timeout: config.request_timeout,
            listen_addr,
            to_leader: Mutex::new(None),
            activity,
            lease: election_timeout_max,
            tasks,
            log_closed: Some(log_closed),
            #[cfg(any(test, feature = "failpoints"))]
            fault_injector,
        })
    }

    /// This peer's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The fault injector of this peer's log, to make its fsyncs fail.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn log_fault_injector(&self) -> Option<Arc<crate::storage::FaultInjector>> {
        self.fault_injector.clone()
    }

    /// The address this peer listens on for peers.
    pub fn listen_addr(&self) -> &str {
        &self.listen_addr
    }

    /// openraft's handle, for what this API does not cover (metrics waits,
    /// triggering a snapshot).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Replicates `payload` and returns what the machine answered when it
    /// applied it here. Only the leader accepts writes: elsewhere this
    /// returns [`WriteError::ForwardToLeader`] (see
    /// [`Replicator::write_via_leader`]).
    pub async fn write(&self, payload: Vec<u8>) -> Result<Vec<u8>, WriteError> {
        let Some(_writing) = self.activity.enter_write() else {
            return Err(WriteError::HandingOver);
        };
        let bytes = payload.len();
        let written = tokio::time::timeout(
            self.request_timeout,
            self.raft.client_write(Request(payload)),
        )
        .await;
        match written {
            Err(_) => Err(WriteError::Timeout(self.request_timeout)),
            Ok(Ok(response)) => {
                self.activity.proposed(bytes);
                Ok(response.data.0)
            }
            Ok(Err(e)) => Err(write_error(e)),
        }
    }

    /// [`Replicator::write`], forwarding to the leader over the peer
    /// connection when this peer does not lead. Forwarded writes from one
    /// peer go one at a time, in call order.
    ///
    /// A write that certainly was not applied (no leader known, the leader
    /// unreachable before the write was sent, a peer that no longer leads or
    /// is handing over) is tried again when a leader is known, until the
    /// request timeout: a change of leader delays writes rather than failing
    /// them. A write whose outcome is unknown is never retried.
    pub async fn write_via_leader(&self, payload: Vec<u8>) -> Result<Vec<u8>, WriteError> {
        let deadline = Instant::now() + self.request_timeout;
        let mut metrics = self.raft.metrics();
        loop {
            let tried_with = metrics.borrow_and_update().current_leader;
            let error = match self.write_via_leader_once(payload.clone()).await {
                Ok(response) => return Ok(response),
                Err(error) if !error.certainly_not_applied() => return Err(error),
                Err(error) => error,
            };
            // Wait for news of a leader: another one, or the same one again
            // after a pause (it may have been refusing while it stepped down).
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(error);
            }
            let pause = tokio::time::sleep(remaining.min(self.lease / 6));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    changed = metrics.changed() => {
                        if changed.is_err() {
                            return Err(error);
                        }
                        let leader = metrics.borrow_and_update().current_leader;
                        if leader.is_some() && leader != tried_with {
                            break;
                        }
                    }
                    () = &mut pause => break,
                }
            }
            if Instant::now() >= deadline {
                return Err(error);
            }
        }
    }

    async fn write_via_leader_once(&self, payload: Vec<u8>) -> Result<Vec<u8>, WriteError> {
        let leader = match self.leader() {
            Some(LeaderInfo { id, .. }) if id == self.id => return self.write(payload).await,
            Some(LeaderInfo {
                id,
                node: Some(node),
            }) => (id, node),
            Some(LeaderInfo { id, node: None }) => {
                return Err(WriteError::ForwardToLeader {
                    leader_id: Some(id),
                    leader: None,
                })
            }
            None => {
                return Err(WriteError::ForwardToLeader {
                    leader_id: None,
                    leader: None,
                })
            }
        };
        let mut to_leader = self.to_leader.lock().await;
        let client = self.client_for(&mut to_leader, leader.0, &leader.1);
        // The leader gives up after its own request timeout and says so; the
        // margin lets that answer arrive before this side gives up too.
        let limit = self.request_timeout + FORWARD_MARGIN;
        match client.forward_write(payload, limit).await {
            Ok(Ok(response)) => Ok(response.0),
            Ok(Err(ForwardedWriteError::Raft(e))) => Err(write_error(e)),
            Ok(Err(ForwardedWriteError::Timeout(limit))) => Err(WriteError::Timeout(limit)),
            Ok(Err(ForwardedWriteError::HandingOver)) => Err(WriteError::HandingOver),
            Err(CallError::Unreachable(e)) => Err(WriteError::LeaderUnreachable(e.to_string())),
            Err(e) => Err(WriteError::Forwarding(e.to_string())),
        }
    }

    /// On the leader: returns once this peer's machine has applied everything
    /// committed before the call (leadership confirmed by a quorum), so a
    /// read that follows is linearizable.
    pub async fn ensure_linearizable(&self) -> Result<(), ReadError> {
        match tokio::time::timeout(self.request_timeout, self.raft.ensure_linearizable()).await {
            Err(_) => Err(ReadError::Timeout(self.request_timeout)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(read_error(e)),
        }
    }

    /// ZooKeeper's `sync` on any peer: returns once this peer's machine has
    /// applied everything the leader had committed when it was asked.
    pub async fn sync(&self) -> Result<(), ReadError> {
        let started = Instant::now();
        let leader = match self.ensure_linearizable().await {
            Err(ReadError::ForwardToLeader {
                leader_id: Some(id),
                leader: Some(node),
            }) if id != self.id => (id, node),
            Err(ReadError::ForwardToLeader { .. }) => return Err(ReadError::NoLeader),
            other => return other,
        };
        let read_index = {
            let mut to_leader = self.to_leader.lock().await;
            let client = self.client_for(&mut to_leader, leader.0, &leader.1);
            match client
                .read_index(self.request_timeout + FORWARD_MARGIN)
                .await
            {
                Ok(Ok(read_index)) => read_index,
                Ok(Err(e)) => return Err(read_error(e)),
                Err(e) => return Err(ReadError::Network(e.to_string())),
            }
        };
        let remaining = self.request_timeout.saturating_sub(started.elapsed());
        self.raft
            .wait(Some(remaining))
            .applied_index_at_least(read_index.map(|id| id.index), "sync")
            .await
            .map(|_| ())
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(..) => {
                    ReadError::Timeout(self.request_timeout)
                }
                openraft::metrics::WaitError::ShuttingDown => {
                    ReadError::Stopped("shutting down".into())
                }
            })
    }

    fn client_for<'a>(
        &self,
        slot: &'a mut Option<PeerClient<T>>,
        leader_id: NodeId,
        leader: &PeerNode,
    ) -> &'a mut PeerClient<T> {
        if slot.as_ref().map(PeerClient::target) != Some(leader_id) {
            *slot = None;
        }
        slot.get_or_insert_with(|| {
            PeerClient::new(
                self.transport.clone(),
                self.identity.clone(),
                leader_id,
                leader.quorum_addr.clone(),
            )
        })
    }

    /// The leader this peer knows of.
    pub fn leader(&self) -> Option<LeaderInfo> {
        let metrics = self.raft.metrics().borrow().clone();
        let id = metrics.current_leader?;
        let node = metrics
            .membership_config
            .membership()
            .get_node(&id)
            .cloned();
        Some(LeaderInfo { id, node })
    }

    /// How long ago this peer last knew itself part of a working ensemble:
    /// as leader, since a quorum last acknowledged it; otherwise since its
    /// leader last reached it. `None` when it never was.
    pub fn quorum_contact_age(&self) -> Option<Duration> {
        let leader_ack = {
            let metrics = self.raft.metrics();
            let current = metrics.borrow();
            (current.state == ServerState::Leader).then_some(current.millis_since_quorum_ack)
        };
        match leader_ack {
            Some(ack) => ack.map(Duration::from_millis),
            None => self.activity.leader_contact_age(),
        }
    }

    /// This peer's role.
    pub fn role(&self) -> Role {
        role_of(&self.raft.metrics().borrow())
    }

    /// The replication state now.
    pub fn metrics(&self) -> ReplicationMetrics {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let followers = metrics
            .replication
            .as_ref()
            .map(|replication| {
                replication
                    .iter()
                    .filter(|(id, _)| **id != self.id)
                    .map(|(id, matched)| (*id, matched.map(|m| m.index)))
                    .collect()
            })
            .unwrap_or_default();
        ReplicationMetrics {
            id: self.id,
            role: role_of(&metrics),
            term: metrics.current_term,
            leader: metrics.current_leader,
            last_log_index: metrics.last_log_index,
            last_applied_index: metrics.last_applied.map(|id| id.index),
            snapshot_index: metrics.snapshot.map(|id| id.index),
            purged_index: metrics.purged.map(|id| id.index),
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            followers,
            millis_since_quorum_ack: metrics.millis_since_quorum_ack,
        }
    }

    /// openraft's metrics channel, to wait for a change without polling.
    pub fn subscribe(&self) -> watch::Receiver<RaftMetrics<NodeId, PeerNode>> {
        self.raft.metrics()
    }

    /// Hands leadership to the voter that holds this leader's whole log,
    /// before this peer leaves, within `limit`: new writes are refused from
    /// the call on (those in flight are answered first), the voter is asked
    /// to campaign, and this peer grants it its vote (see
    /// [`super::leadership`]). With three voters the candidate wins at once;
    /// with more, the others' leader lease makes it an ordinary election.
    /// Returns [`HandoverError::NotLeader`] on a peer that does not lead.
    pub async fn hand_over(&self, limit: Duration) -> Result<Handover, HandoverError> {
        leadership::Outgoing {
            raft: &self.raft,
            my_id: self.id,
            activity: &self.activity,
            transport: &self.transport,
            identity: &self.identity,
            lease: self.lease,
        }
        .hand_over(limit)
        .await
    }

    /// On the leader: its followers as Apache's `mntr` counts them; `None`
    /// elsewhere.
    pub fn leader_figures(&self) -> Option<LeaderFigures> {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader {
            return None;
        }
        let membership = metrics.membership_config.membership();
        let last = metrics.last_log_index.unwrap_or(0);
        let replication = metrics.replication.as_ref();
        let mut figures = LeaderFigures {
            learners: 0,
            synced_followers: 0,
            synced_non_voting_followers: 0,
            synced_observers: 0,
            pending_syncs: self.activity.read_indexes_in_flight(),
            leader_uptime_ms: self
                .activity
                .leading_since()
                .map(|since| u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            proposal_sizes: self.activity.proposal_sizes(),
        };
        let members = membership
            .voter_ids()
            .map(|id| (id, true))
            .chain(membership.learner_ids().map(|id| (id, false)));
        for (id, voter) in members.filter(|(id, _)| *id != self.id) {
            let live = self
                .activity
                .last_answer(id)
                .is_some_and(|answered| answered.elapsed() <= self.lease);
            if !live {
                continue;
            }
            figures.learners += 1;
            let matched = replication
                .and_then(|replication| replication.get(&id).copied().flatten())
                .map(|log_id| log_id.index);
            // Synced: one AppendEntries away from the leader's log at most.
            let synced = matched.is_some_and(|matched| {
                matched.saturating_add(super::config::MAX_ENTRIES_PER_RPC) >= last
            });
            match (synced, voter) {
                (true, true) => figures.synced_followers += 1,
                (true, false) => figures.synced_observers += 1,
                (false, _) => {}
            }
        }
        Some(figures)
    }

    /// Stops answering peers, stops openraft, and waits for the log's last
    /// write to finish, so the directory can be reopened.
    pub async fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Err(e) = self.raft.shutdown().await {
            warn!(error = %e, "the consensus engine did not stop cleanly");
        }
        if let Some(closed) = self.log_closed.take() {
            if tokio::time::timeout(LOG_CLOSE_TIMEOUT, closed.wait())
                .await
                .is_err()
            {
                warn!("the raft log's writer thread did not stop in time");
            }
        }
        info!(id = self.id, "replication stopped");
    }
}

impl<T: Transport> Drop for Replicator<T> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn find_me(my_id: NodeId, peers: &[Peer]) -> Result<&Peer, StartError> {
    peers.iter().find(|peer| peer.id == my_id).ok_or_else(|| {
        StartError::InvalidEnsemble(format!(
            "server.{my_id} is not among the configured servers"
        ))
    })
}

fn check_ensemble(peers: &[Peer]) -> Result<(), StartError> {
    let mut seen = BTreeMap::new();
    for peer in peers {
        if seen.insert(peer.id, ()).is_some() {
            return Err(StartError::InvalidEnsemble(format!(
                "server.{} appears twice",
                peer.id
            )));
        }
    }
    if !peers.iter().any(|peer| peer.voter) {
        return Err(StartError::InvalidEnsemble(
            "no participant among the servers".into(),
        ));
    }
    Ok(())
}

fn role_of(metrics: &RaftMetrics<NodeId, PeerNode>) -> Role {
    match metrics.state {
        ServerState::Leader => Role::Leader,
        ServerState::Follower => Role::Follower,
        ServerState::Candidate => Role::Candidate,
        ServerState::Shutdown => Role::Stopped,
        ServerState::Learner => {
            let membership = metrics.membership_config.membership();
            if membership.learner_ids().any(|id| id == metrics.id) {
                Role::Observer
            } else {
                Role::Joining
            }
        }
    }
}

fn write_error(error: RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>) -> WriteError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            WriteError::ForwardToLeader {
                leader_id: forward.leader_id,
                leader: forward.leader_node,
            }
        }
        RaftError::APIError(other) => WriteError::Rejected(other.to_string()),
        RaftError::Fatal(fatal) => WriteError::Stopped(fatal.to_string()),
    }
}

fn read_error(error: RaftError<NodeId, CheckIsLeaderError<NodeId, PeerNode>>) -> ReadError {
    match error {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward)) => {
            ReadError::ForwardToLeader {
                leader_id: forward.leader_id,
                leader: forward.leader_node,
            }
        }
        RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)) => {
            ReadError::QuorumNotEnough(e.to_string())
        }
        RaftError::Fatal(fatal) => ReadError::Stopped(fatal.to_string()),
    }
}

/// Initialises the membership of a fresh ensemble (see the module docs).
async fn bootstrap<T: Transport>(
    raft: Raft,
    my_id: NodeId,
    peers: Vec<Peer>,
    transport: T,
    identity: PeerIdentity,
    grace: Duration,
) {
    let voters: BTreeMap<NodeId, PeerNode> = peers
        .iter()
        .filter(|peer| peer.voter)
        .map(|peer| (peer.id, peer.node.clone()))
        .collect();
    if !voters.contains_key(&my_id) {
        return;
    }
    // The lowest id goes at once; the others one after another, each a grace
    // period later, so that they do not all campaign at the same instant.
    let rank = voters.keys().position(|&id| id == my_id).unwrap_or(0);
    let lowest = rank == 0;
    let grace = grace.saturating_mul(u32::try_from(rank).unwrap_or(u32::MAX));
    let wait_from = Instant::now();
    let quorum = voters.len() / 2 + 1;
    loop {
        match raft.is_initialized().await {
            Ok(false) => {}
            Ok(true) | Err(_) => return,
        }
        if lowest || wait_from.elapsed() >= grace {
            let reachable = count_reachable(my_id, &voters, &transport, &identity).await;
            if reachable >= quorum {
                match raft.initialize(voters.clone()).await {
                    Ok(()) => {
                        info!(id = my_id, voters = ?voters.keys().collect::<Vec<_>>(), "initialised the ensemble")
                    }
                    Err(e) => {
                        info!(id = my_id, reason = %e, "the ensemble was already initialised")
                    }
                }
                return;
            }
        }
        tokio::time::sleep(BOOTSTRAP_PROBE_PAUSE).await;
    }
}

/// Desynchronises peers whose campaigns keep colliding.
///
/// openraft 0.9 draws a node's election timeout once per process and checks
/// it on a timer tick of 1.5 heartbeats, so two candidates whose timeouts
/// round to the same number of ticks, and who once campaigned at the same
/// moment, campaign together again every round and split the vote forever.
/// Each time this peer starts a campaign, it holds back its next one by a
/// random pause (openraft's runtime switch for elections). Only the timing
/// of elections changes; openraft still decides every vote.
async fn break_split_votes(raft: Raft, my_id: NodeId, max_pause: Duration) {
    let seed = std::collections::hash_map::RandomState::new();
    let mut metrics = raft.metrics();
    let mut last_campaign = 0;
    let mut resume_at: Option<tokio::time::Instant> = None;
    loop {
        let (state, term) = {
            let current = metrics.borrow_and_update();
            (current.state, current.current_term)
        };
        if state == ServerState::Candidate && term > last_campaign {
            last_campaign = term;
            let draw = std::hash::BuildHasher::hash_one(&seed, (my_id, term));
            let pause_ms = draw % u64::try_from(max_pause.as_millis()).unwrap_or(1).max(1);
            raft.runtime_config().elect(false);
            resume_at = Some(tokio::time::Instant::now() + Duration::from_millis(pause_ms));
        }
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = sleep_until(resume_at), if resume_at.is_some() => {
                raft.runtime_config().elect(true);
                resume_at = None;
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

/// How many voters (this one included) complete a handshake.
async fn count_reachable<T: Transport>(
    my_id: NodeId,
    voters: &BTreeMap<NodeId, PeerNode>,
    transport: &T,
    identity: &PeerIdentity,
) -> usize {
    let mut probes = tokio::task::JoinSet::new();
    for (id, node) in voters.iter().filter(|(id, _)| **id != my_id) {
        let mut client = PeerClient::new(
            transport.clone(),
            identity.clone(),
            *id,
            node.quorum_addr.clone(),
        );
        probes.spawn(async move { client.probe(BOOTSTRAP_PROBE_TIMEOUT).await.is_ok() });
    }
    let mut reachable = 1;
    while let Some(answered) = probes.join_next().await {
        if matches!(answered, Ok(true)) {
            reachable += 1;
        }
    }
    reachable
}

/// While this peer leads, makes every configured observer a learner.
async fn add_observers(raft: Raft, my_id: NodeId, peers: Vec<Peer>) {
    let observers: Vec<Peer> = peers.into_iter().filter(|peer| !peer.voter).collect();
    if observers.is_empty() {
        return;
    }
    let mut metrics = raft.metrics();
    loop {
        let missing: Vec<Peer> = {
            let current = metrics.borrow_and_update();
            let membership_log = current.membership_config.log_id().map(|id| id.index);
            let committed = membership_log <= current.last_applied.map(|id| id.index);
            // openraft refuses a membership change while another is in flight
            // (a new leader's, or the bootstrap's): wait for it to commit.
            if current.state != ServerState::Leader
                || current.current_leader != Some(my_id)
                || !committed
            {
                Vec::new()
            } else {
                let membership = current.membership_config.membership();
                observers
                    .iter()
                    .filter(|peer| membership.get_node(&peer.id).is_none())
                    .cloned()
                    .collect()
            }
        };
        for observer in missing {
            match raft
                .add_learner(observer.id, observer.node.clone(), false)
                .await
            {
                Ok(_) => info!(id = observer.id, "added an observer to the ensemble"),
                Err(e) => {
                    warn!(id = observer.id, error = %e, "could not add an observer; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
