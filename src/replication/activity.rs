//! What the peer transport sees that openraft 0.9 does not report: when a
//! leader was last heard from and when its connection closed, which peers
//! answer this peer's RPCs, the writes and read-index requests in flight, and
//! the sizes of the entries this peer proposed.
//!
//! One [`Activity`] per peer, shared by the RPC server, openraft's network
//! clients and the leadership tasks (see [`super::leadership`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{info, warn};

use super::NodeId;

/// Shared observations of one peer's transport.
#[derive(Debug, Default)]
pub struct Activity {
    state: Mutex<State>,
    /// Woken when a connection that carried a leader's AppendEntries closes.
    leader_connection_closed: Notify,
    /// Woken when the last write in flight finishes.
    writes_drained: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The last AppendEntries that arrived, from whom and when.
    last_append: Option<(NodeId, Instant)>,
    /// When an AppendEntries was last accepted (not refused for a higher
    /// vote): this peer's last contact with a leader it follows.
    last_accepted_append: Option<Instant>,
    /// The last connection that carried AppendEntries and closed: from whom,
    /// and when the last AppendEntries had arrived then.
    closed: Option<(NodeId, Instant)>,
    /// Per peer this one sends RPCs to: when it last answered, and whether it
    /// is reported down.
    outbound: BTreeMap<NodeId, Outbound>,
    writes_refused: bool,
    writes_in_flight: usize,
    read_indexes_in_flight: usize,
    proposals: ProposalSizes,
    /// The term this peer leads in and since when, as first seen.
    leading: Option<(u64, Instant)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Outbound {
    last_answer: Option<Instant>,
    down: bool,
}

/// Sizes in bytes of the entries this peer proposed as leader, as Apache's
/// `mntr` reports its proposals: -1 until there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposalSizes {
    /// The latest.
    pub last: i64,
    /// The smallest.
    pub min: i64,
    /// The largest.
    pub max: i64,
}

impl Default for ProposalSizes {
    fn default() -> ProposalSizes {
        ProposalSizes {
            last: -1,
            min: -1,
            max: -1,
        }
    }
}

/// Holds a place among the writes in flight; dropping it leaves.
#[derive(Debug)]
pub struct WriteTicket {
    activity: Arc<Activity>,
}

impl Drop for WriteTicket {
    fn drop(&mut self) {
        let mut state = self.activity.state();
        state.writes_in_flight = state.writes_in_flight.saturating_sub(1);
        if state.writes_in_flight == 0 {
            self.activity.writes_drained.notify_waiters();
        }
    }
}

/// Holds a place among the read-index requests in flight.
#[derive(Debug)]
pub struct ReadIndexTicket {
    activity: Arc<Activity>,
}

impl Drop for ReadIndexTicket {
    fn drop(&mut self) {
        let mut state = self.activity.state();
        state.read_indexes_in_flight = state.read_indexes_in_flight.saturating_sub(1);
    }
}

impl Activity {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent, so a panic elsewhere
        // while the lock was held does not make it unusable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An AppendEntries from `from` arrived.
    pub fn append_arrived(&self, from: NodeId) {
        self.state().last_append = Some((from, Instant::now()));
    }

    /// A connection from `from` that carried AppendEntries closed.
    pub fn leader_connection_closed(&self, from: NodeId) {
        {
            let mut state = self.state();
            let heard = match state.last_append {
                Some((sender, at)) if sender == from => at,
                _ => return,
            };
            state.closed = Some((from, heard));
        }
        self.leader_connection_closed.notify_one();
    }

    /// Waits until a leader's connection closes; returns who it was and when
    /// it was last heard from.
    pub async fn leader_connection_lost(&self) -> (NodeId, Instant) {
        loop {
            let notified = self.leader_connection_closed.notified();
            if let Some(closed) = self.state().closed.take() {
                return closed;
            }
            notified.await;
        }
    }

    /// An AppendEntries was accepted: a leader this peer follows reached it.
    pub fn append_accepted(&self) {
        self.state().last_accepted_append = Some(Instant::now());
    }

    /// How long ago a leader this peer follows last reached it; `None` if
    /// never.
    pub fn leader_contact_age(&self) -> Option<Duration> {
        self.state().last_accepted_append.map(|at| at.elapsed())
    }

    /// When the last AppendEntries arrived, from anyone.
    pub fn last_append(&self) -> Option<(NodeId, Instant)> {
        self.state().last_append
    }

    /// `target` answered an RPC. Logs once when a peer reported down comes
    /// back.
    pub fn answered(&self, target: NodeId) {
        let was_down = {
            let mut state = self.state();
            let outbound = state.outbound.entry(target).or_default();
            outbound.last_answer = Some(Instant::now());
            std::mem::replace(&mut outbound.down, false)
        };
        if was_down {
            info!(peer = target, "peer reachable again");
        }
    }

    /// An RPC to `target` failed on the network. Logs once when the peer
    /// goes down, not once per RPC.
    pub fn unreachable(&self, target: NodeId, error: &dyn std::fmt::Display) {
        let went_down = {
            let mut state = self.state();
            let outbound = state.outbound.entry(target).or_default();
            !std::mem::replace(&mut outbound.down, true)
        };
        if went_down {
            warn!(peer = target, %error, "peer unreachable; retrying quietly until it answers");
        }
    }

    /// When `target` last answered one of this peer's RPCs.
    pub fn last_answer(&self, target: NodeId) -> Option<Instant> {
        self.state()
            .outbound
            .get(&target)
            .and_then(|outbound| outbound.last_answer)
    }

    /// Enters a write, unless writes are refused (a leader handing over).
    pub fn enter_write(self: &Arc<Self>) -> Option<WriteTicket> {
        let mut state = self.state();
        if state.writes_refused {
            return None;
        }
        state.writes_in_flight += 1;
        Some(WriteTicket {
            activity: Arc::clone(self),
        })
    }

    /// Refuses writes from now on (until [`Activity::accept_writes`]).
    pub fn refuse_writes(&self) {
        self.state().writes_refused = true;
    }

    /// Accepts writes again (a handover that did not happen).
    pub fn accept_writes(&self) {
        self.state().writes_refused = false;
    }

    /// Waits until no write is in flight.
    pub async fn writes_drained(&self) {
        loop {
            let notified = self.writes_drained.notified();
            if self.state().writes_in_flight == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Enters a read-index request served for a follower.
    pub fn enter_read_index(self: &Arc<Self>) -> ReadIndexTicket {
        self.state().read_indexes_in_flight += 1;
        ReadIndexTicket {
            activity: Arc::clone(self),
        }
    }

    /// Followers' read-index requests (their `sync`s) being served now.
    pub fn read_indexes_in_flight(&self) -> usize {
        self.state().read_indexes_in_flight
    }

    /// Records an entry of `bytes` proposed by this peer as leader.
    pub fn proposed(&self, bytes: usize) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let mut state = self.state();
        let sizes = &mut state.proposals;
        sizes.last = bytes;
        sizes.min = if sizes.min < 0 {
            bytes
        } else {
            sizes.min.min(bytes)
        };
        sizes.max = sizes.max.max(bytes);
    }

    /// The sizes of the entries this peer proposed.
    pub fn proposal_sizes(&self) -> ProposalSizes {
        self.state().proposals
    }

    /// This peer leads in `term` (called on every metrics change; the first
    /// call for a term fixes the start).
    pub fn leading(&self, term: Option<u64>) {
        let mut state = self.state();
        match term {
            None => state.leading = None,
            Some(term) => {
                if state.leading.map(|(t, _)| t) != Some(term) {
                    state.leading = Some((term, Instant::now()));
                }
            }
        }
    }

    /// Since when this peer leads, if it does.
    pub fn leading_since(&self) -> Option<Instant> {
        self.state().leading.map(|(_, since)| since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn refused_writes_wait_for_those_in_flight() {
        let activity = Arc::new(Activity::default());
        let ticket = activity.enter_write().unwrap();
        activity.refuse_writes();
        assert!(activity.enter_write().is_none());
        let drained = tokio::time::timeout(Duration::from_millis(50), activity.writes_drained());
        assert!(drained.await.is_err(), "drained with a write in flight");
        drop(ticket);
        tokio::time::timeout(Duration::from_secs(5), activity.writes_drained())
            .await
            .unwrap();
        activity.accept_writes();
        assert!(activity.enter_write().is_some());
    }

    #[tokio::test]
    async fn only_a_closed_connection_of_the_last_sender_counts_as_a_lost_leader() {
        let activity = Activity::default();
        activity.append_arrived(1);
        activity.leader_connection_closed(2);
        activity.leader_connection_closed(1);
        let (from, _) =
            tokio::time::timeout(Duration::from_secs(5), activity.leader_connection_lost())
                .await
                .unwrap();
        assert_eq!(from, 1);
    }

    #[test]
    fn proposal_sizes_start_at_minus_one_and_track_extremes() {
        let activity = Activity::default();
        assert_eq!(activity.proposal_sizes(), ProposalSizes::default());
        for bytes in [40, 10, 25] {
            activity.proposed(bytes);
        }
        assert_eq!(
            activity.proposal_sizes(),
            ProposalSizes {
                last: 25,
                min: 10,
                max: 40
            }
        );
    }
}
