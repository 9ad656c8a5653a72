//! Changes of leader that openraft 0.9 does not make by itself: a leader that
//! is stopped hands over, and followers that see their leader's process die
//! campaign as soon as the other voters will listen. Both only choose *when*
//! a peer campaigns; openraft decides every vote, so Raft's safety is
//! untouched: these are early elections, nothing more.
//!
//! # Handover (a leader stopped by SIGTERM)
//!
//! openraft 0.9 has no leadership transfer, but its vote rules allow one. A
//! leader's own vote is stamped when it is elected and never refreshed
//! afterwards (`Engine::handle_vote_req` compares the request against the
//! vote's `utime` plus the leader lease, `election_timeout_max`; only
//! `VoteHandler::update_vote` moves the stamp, and a leader calls it only for
//! its own election). So a leader that has led for longer than the lease
//! grants its vote to a candidate with a higher term and a log at least as
//! long as its own, and steps down. Followers, whose lease is renewed by
//! every heartbeat, refuse that candidate. [`hand_over`] therefore:
//!
//! 1. refuses new writes (local and forwarded) and waits for those in flight
//!    to be answered, so the log stops growing;
//! 2. waits, if it was elected less than a lease ago, for its own lease to
//!    run out;
//! 3. waits (bounded) until a voter holds the leader's whole log, and asks
//!    it over the peer connection to campaign now (`PeerRequest::Campaign`);
//!    that follower calls `Raft::trigger().elect()`;
//! 4. grants the vote: with three voters the candidate and the old leader
//!    are a majority, and the candidate wins at once;
//! 5. waits until its metrics show the new leader (at most four leases:
//!    its vote is all the election needed from it), then returns whatever
//!    happened, and the server exits.
//!
//! When no other voter has answered within the lease (the whole ensemble is
//! stopping) it gives up at once rather than wait for peers that are gone.
//!
//! With five voters the other three followers' leases still run when the
//! candidate asks, so they refuse: the candidate holds two votes of five.
//! The handover then ends as an ordinary election once the leases lapse
//! (the old leader no longer sends heartbeats, and its connections close when
//! it exits, which lets the followers campaign early as below). Nothing is
//! lost either way: the leader's whole log is on the candidate, and every
//! acknowledged write was on a quorum already.
//!
//! # A leader process that dies
//!
//! When a leader process dies and its machine does not, the kernel closes
//! its connections. A follower that sees the connection that carried its
//! leader's AppendEntries close probes the leader's quorum port; if that
//! refuses too, it campaigns at `last heartbeat + lease + margin + stagger`:
//! the earliest moment the other voters, whose leases started with the same
//! heartbeat, grant votes. The stagger (random, up to two heartbeats) keeps
//! followers from splitting the vote. A follower that hears from any leader
//! in the meantime, or finds the leader's port answering (a connection
//! dropped for another reason), does nothing, and openraft's own election
//! timers stay in charge.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use thiserror::Error;
use tracing::{debug, info, warn};

use super::activity::Activity;
use super::network::{PeerClient, PeerIdentity, Transport};
use super::{NodeId, Raft};

/// Margin past the lease before an early campaign, for the other voters'
/// heartbeat having been processed slightly later than this one's.
const LEASE_MARGIN: Duration = Duration::from_millis(15);
/// How many times a follower campaigns again, a term higher, when its early
/// election stays undecided.
const EARLY_CAMPAIGN_RETRIES: u32 = 2;
/// How long asking a follower to campaign may take.
const CAMPAIGN_CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a handover did not happen.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum HandoverError {
    /// This peer does not lead; there is nothing to hand over.
    #[error("this peer does not lead")]
    NotLeader,
    /// This peer is the only voter.
    #[error("there is no other voter to hand over to")]
    NoOtherVoter,
    /// Writes in flight were not answered within the limit.
    #[error("writes in flight were not answered within {0:?}")]
    WritesInFlight(Duration),
    /// No other voter answered this leader lately: they are down or
    /// stopping too, and there is no one to hand over to.
    #[error("no other voter answered within the leader lease")]
    NoVoterReachable,
    /// No voter held the whole log within the limit.
    #[error("no voter caught up with the log within {0:?}")]
    NoneCaughtUp(Duration),
    /// The voters that held the whole log did not campaign.
    #[error("no voter would campaign: {0}")]
    CampaignRefused(String),
    /// A voter campaigned but no new leader was seen within the limit.
    #[error("server.{candidate} campaigned but no new leader was seen within {limit:?}")]
    NoNewLeader {
        /// The voter that campaigned.
        candidate: NodeId,
        /// The limit.
        limit: Duration,
    },
    /// The consensus engine stopped.
    #[error("the consensus engine stopped")]
    Stopped,
}

/// A completed handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The voter asked to campaign.
    pub candidate: NodeId,
    /// The leader this peer saw afterwards (the candidate, or with more than
    /// three voters possibly another).
    pub new_leader: NodeId,
    /// From the call to the new leader seen.
    pub elapsed: Duration,
}

/// A follower's answer to its leader's request to campaign.
pub(super) async fn campaign_on_request(raft: &Raft, from: NodeId) -> Result<(), String> {
    let (state, leader, voter) = {
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let voter = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == metrics.id);
        (metrics.state, metrics.current_leader, voter)
    };
    // Only the leader itself may ask: anyone else could only disrupt it.
    if leader != Some(from) {
        return Err(format!(
            "server.{from} is not this peer's leader ({leader:?})"
        ));
    }
    if state != ServerState::Follower || !voter {
        return Err(format!("this peer is {state:?}, not a voting follower"));
    }
    info!(leader = from, "the leader hands over; campaigning");
    raft.trigger().elect().await.map_err(|e| e.to_string())
}

/// Keeps [`Activity::leading_since`] current.
pub(super) async fn track_leadership(raft: Raft, activity: Arc<Activity>) {
    let mut metrics = raft.metrics();
    loop {
        let term = {
            let current = metrics.borrow_and_update();
            (current.state == ServerState::Leader).then_some(current.current_term)
        };
        activity.leading(term);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Campaigns early when the leader's process is gone (see the module docs).
pub(super) async fn campaign_when_leader_dies<T: Transport>(
    raft: Raft,
    my_id: NodeId,
    activity: Arc<Activity>,
    transport: T,
    identity: PeerIdentity,
    lease: Duration,
    stagger: Duration,
) {
    let seed = std::collections::hash_map::RandomState::new();
    loop {
        let (leader, last_heard) = activity.leader_connection_lost().await;
        let (is_follower_of_it, addr) = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            let addr = metrics
                .membership_config
                .membership()
                .get_node(&leader)
                .map(|node| node.quorum_addr.clone());
            (
                metrics.state == ServerState::Follower && metrics.current_leader == Some(leader),
                addr,
            )
        };
        let Some(addr) = addr.filter(|_| is_follower_of_it && leader != my_id) else {
            continue;
        };
        // A port that still accepts connections belongs to a live leader: the
        // connection closed for another reason, and openraft's timers judge.
        let mut client = PeerClient::new(transport.clone(), identity.clone(), leader, addr);
        if client.probe(lease / 4).await.is_ok() {
            debug!(
                leader,
                "the leader's connection closed but its port answers; not campaigning early"
            );
            continue;
        }
        let draw = std::hash::BuildHasher::hash_one(&seed, (my_id, Instant::now()));
        let stagger_ms = u64::try_from(stagger.as_millis()).unwrap_or(1).max(1);
        let at = last_heard + lease + LEASE_MARGIN + Duration::from_millis(draw % stagger_ms);
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        let heard_since = activity
            .last_append()
            .is_some_and(|(_, when)| when > last_heard);
        let still_following = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            metrics.state == ServerState::Follower && metrics.current_leader == Some(leader)
        };
        if heard_since || !still_following {
            continue;
        }
        info!(
            leader,
            silent_ms = last_heard.elapsed().as_millis() as u64,
            "the leader's process is gone; campaigning"
        );
        if raft.trigger().elect().await.is_err() {
            return;
        }
        // The election may stay undecided: another follower campaigned in
        // the same term (both refuse each other), or a voter's lease had not
        // quite run out. A term higher, after half a stagger plus a random
        // part, settles it (the longer log wins); after a few tries
        // openraft's own timers take over.
        for attempt in 1..=EARLY_CAMPAIGN_RETRIES {
            let draw = std::hash::BuildHasher::hash_one(&seed, (my_id, attempt, Instant::now()));
            let half = stagger_ms / 2;
            let retry_after = Duration::from_millis(half + draw % half.max(1));
            let decided = raft
                .wait(Some(retry_after))
                .metrics(
                    |metrics| {
                        metrics.current_leader.is_some() || metrics.state != ServerState::Candidate
                    },
                    "an early election decided",
                )
                .await;
            let undecided = matches!(decided, Err(openraft::metrics::WaitError::Timeout(..)));
            if !undecided || raft.metrics().borrow().state != ServerState::Candidate {
                break;
            }
            info!(
                attempt,
                "the early election was not decided; campaigning a term higher"
            );
            if raft.trigger().elect().await.is_err() {
                return;
            }
        }
    }
}

/// What a handing-over leader works with.
pub(super) struct Outgoing<'a, T: Transport> {
    pub raft: &'a Raft,
    pub my_id: NodeId,
    pub activity: &'a Arc<Activity>,
    pub transport: &'a T,
    pub identity: &'a PeerIdentity,
    pub lease: Duration,
}

impl<T: Transport> Outgoing<'_, T> {
    /// Hands leadership to the voter that holds the whole log, within
    /// `limit` (see the module docs). New writes are refused from the call
    /// on, and accepted again if the handover fails while this peer still
    /// leads.
    pub(super) async fn hand_over(&self, limit: Duration) -> Result<Handover, HandoverError> {
        let started = Instant::now();
        let deadline = started + limit;
        if self.raft.metrics().borrow().state != ServerState::Leader {
            return Err(HandoverError::NotLeader);
        }
        self.activity.refuse_writes();
        // A peer on its way out must not win the election it starts: it
        // would only have to hand over again.
        self.raft.runtime_config().elect(false);
        let result = self.with_writes_refused(started, deadline).await;
        if result.is_err() {
            self.raft.runtime_config().elect(true);
            if self.raft.metrics().borrow().state == ServerState::Leader {
                self.activity.accept_writes();
            }
        }
        result
    }

    async fn with_writes_refused(
        &self,
        started: Instant,
        deadline: Instant,
    ) -> Result<Handover, HandoverError> {
        let Outgoing {
            raft,
            my_id,
            activity,
            transport,
            identity,
            lease,
        } = *self;
        let limit = deadline - started;
        let remaining = || deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(remaining(), activity.writes_drained())
            .await
            .is_err()
        {
            return Err(HandoverError::WritesInFlight(limit));
        }
        // The old leader grants the vote only once its own lease has run out.
        let since = activity.leading_since().unwrap_or(started);
        let lease_over = since + lease + LEASE_MARGIN;
        if lease_over > Instant::now() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(lease_over.min(deadline)))
                .await;
        }

        let mut metrics = raft.metrics();
        let mut refusals = Vec::new();
        let mut asked = Vec::new();
        loop {
            let (caught_up, others) = {
                let current = metrics.borrow_and_update();
                if current.state != ServerState::Leader {
                    return Err(HandoverError::NotLeader);
                }
                let voters: Vec<NodeId> = current
                    .membership_config
                    .membership()
                    .voter_ids()
                    .filter(|id| *id != my_id)
                    .collect();
                let last = current.last_log_index;
                let matched = |id: &NodeId| {
                    current
                        .replication
                        .as_ref()
                        .and_then(|replication| replication.get(id).copied().flatten())
                        .map(|log_id| log_id.index)
                };
                let caught_up: Vec<(NodeId, String)> = voters
                    .iter()
                    .filter(|id| !asked.contains(*id) && matched(id) == last)
                    .filter_map(|id| {
                        let node = current.membership_config.membership().get_node(id)?;
                        Some((*id, node.quorum_addr.clone()))
                    })
                    .collect();
                (caught_up, voters.len())
            };
            if others == 0 {
                return Err(HandoverError::NoOtherVoter);
            }
            if !self.reachable_voter() {
                return Err(HandoverError::NoVoterReachable);
            }
            for (candidate, addr) in caught_up {
                asked.push(candidate);
                let mut client =
                    PeerClient::new(transport.clone(), identity.clone(), candidate, addr);
                match client
                    .campaign(CAMPAIGN_CALL_TIMEOUT.min(remaining()))
                    .await
                {
                    Ok(Ok(())) => {
                        // The old leader's part ends with its vote; waiting
                        // longer than a few leases would only delay its exit.
                        let until = deadline.min(Instant::now() + lease.saturating_mul(4));
                        return wait_for_new_leader(raft, my_id, candidate, started, until).await;
                    }
                    Ok(Err(reason)) => refusals.push(format!("server.{candidate}: {reason}")),
                    Err(e) => refusals.push(format!("server.{candidate}: {e}")),
                }
            }
            if asked.len() >= others && !refusals.is_empty() {
                return Err(HandoverError::CampaignRefused(refusals.join("; ")));
            }
            match tokio::time::timeout(remaining(), metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(HandoverError::Stopped),
                Err(_) if refusals.is_empty() => return Err(HandoverError::NoneCaughtUp(limit)),
                Err(_) => return Err(HandoverError::CampaignRefused(refusals.join("; "))),
            }
        }
    }

    /// Whether another voter answered this peer within the lease.
    fn reachable_voter(&self) -> bool {
        let voters: Vec<NodeId> = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| *id != self.my_id)
            .collect();
        voters.into_iter().any(|id| {
            self.activity
                .last_answer(id)
                .is_some_and(|answered| answered.elapsed() <= self.lease)
        })
    }
}

async fn wait_for_new_leader(
    raft: &Raft,
    my_id: NodeId,
    candidate: NodeId,
    started: Instant,
    deadline: Instant,
) -> Result<Handover, HandoverError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let waited = raft
        .wait(Some(remaining))
        .metrics(
            |metrics| metrics.current_leader.is_some_and(|leader| leader != my_id),
            "a new leader",
        )
        .await;
    match waited {
        Ok(metrics) => {
            let new_leader = metrics.current_leader.unwrap_or(candidate);
            Ok(Handover {
                candidate,
                new_leader,
                elapsed: started.elapsed(),
            })
        }
        Err(openraft::metrics::WaitError::ShuttingDown) => Err(HandoverError::Stopped),
        Err(openraft::metrics::WaitError::Timeout(..)) => {
            warn!(candidate, "no new leader seen after the handover");
            Err(HandoverError::NoNewLeader {
                candidate,
                limit: deadline - started,
            })
        }
    }
}
