//! Replication: the ensemble's consensus, run by openraft (pinned at 0.9.25)
//! behind a thin adapter.
//!
//! openraft decides everything about consensus (elections, log matching,
//! commitment, snapshot transfer, membership). This module only connects it to
//! the rest of the server:
//!
//! - [`log_store`]: openraft's log and vote on our write-ahead log
//!   ([`crate::storage::Log`]). An entry is acknowledged to openraft as flushed
//!   only after fdatasync, so a write is acknowledged to a client only once a
//!   quorum holds it durably.
//! - [`state_machine`]: openraft's state machine on an application
//!   [`Machine`] (the data tree), plus the durable snapshot file.
//! - [`network`]: openraft's RPCs between peers as length-prefixed postcard
//!   frames over a [`Transport`] (TCP in production; the seam lets a
//!   deterministic simulation replace it).
//! - [`config`]: openraft's timers (fixed peer timers; the request timeout
//!   from `tickTime`).
//! - [`leadership`]: the handover of a leader that is stopped, and early
//!   campaigns when a leader's process dies.
//! - [`activity`]: what the transport observes for those and for `mntr`
//!   (leaders heard, peers answering, writes in flight).
//! - [`replicator`]: [`Replicator`], the handle the server uses (start,
//!   write, sync, role, leader, metrics, shutdown) and the cluster bootstrap
//!   from the `server.N` list.
//!
//! # The state machine contract
//!
//! Who replays what, so that nothing is applied twice or skipped:
//!
//! - The log holds every entry after the last purge; the snapshot file holds
//!   the machine's state up to some index, with that entry's log id and the
//!   membership in force there.
//! - At start the machine must be **empty**. If a snapshot file exists, the
//!   adapter hands it to [`Machine::install`] before openraft starts, and
//!   reports the snapshot's log id to openraft as the last applied one.
//! - openraft then hands the machine every committed entry after that, in
//!   index order, exactly once per process lifetime: [`Machine::apply`] for
//!   the application's entries, [`Machine::advance`] for entries that carry
//!   nothing for it (a new leader's blank entry, a membership change). The
//!   machine must never read the log itself.
//! - The commit index is not persisted (openraft's `save_committed` is left
//!   out: it would cost a durable write per commit). After a restart the
//!   machine therefore stands at the snapshot until a leader announces the
//!   commit index, and then catches up; like an Apache follower, a restarted
//!   server has the state to serve only after it has synced with a leader.
//! - [`Machine::snapshot`] may run concurrently with `apply`; it returns the
//!   bytes and the index of the last entry they include. The adapter finds
//!   that entry's log id and membership itself.
//! - [`Machine::install`] replaces the whole state (a leader sent a snapshot
//!   because this peer lagged behind its purged log).
//!
//! - `apply` and `advance` run on openraft's state machine task, one entry
//!   at a time: keep them short and free of blocking I/O. `snapshot` and
//!   `install` run on the blocking pool.
//!
//! Entries whose application fails are still entries: apply is deterministic
//! and reports failures in its response bytes, so every replica reaches the
//! same state.
//!
//! # What openraft 0.9 cannot do, and what this layer does instead
//!
//! - No leadership transfer: [`Replicator::hand_over`] gets the same effect
//!   from openraft's vote rules and `trigger().elect()` (see [`leadership`]).
//! - A storage error stops the peer's consensus engine (fail-stop), including
//!   a full disk; the standalone server instead keeps serving reads then.
//! - Election timeouts are drawn once per process and checked on a coarse
//!   tick, so colliding campaigns can repeat forever; the replicator adds a
//!   random pause after each campaign (see `replicator`).
//!
//! # Ports
//!
//! Every peer-to-peer message (votes included) goes to the peer's quorum
//! port (`server.N=host:quorumPort:electionPort`). openraft has no separate
//! election channel, so the election port is not used by this layer.

// openraft's trait signatures fix its error types, which are large; boxing
// them at our edge would only move the copy.
#![allow(clippy::result_large_err)]

pub mod activity;
pub mod config;
pub mod leadership;
pub mod log_store;
pub mod network;
pub mod replicator;
pub mod state_machine;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use config::ReplicationConfig;
pub use leadership::{Handover, HandoverError};
pub use log_store::LogStore;
pub use network::{serve_peer_rpc, Listener, PeerNetwork, TcpTransport, Transport};
pub use replicator::{
    LeaderFigures, LeaderInfo, ReadError, ReplicationMetrics, Replicator, Role, StartError,
    WriteError,
};
pub use state_machine::{Machine, MachineError, MachineStore};

/// A peer's id: `N` of Apache's `server.N`.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The types openraft runs with: u64 ids, peers known by address,
    /// opaque application requests and responses.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = PeerNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// The openraft handle with our types.
pub type Raft = openraft::Raft<TypeConfig>;

/// What openraft keeps about a peer in the membership: where to reach it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    /// `host:port` of the peer's quorum port, where it answers RPCs.
    pub quorum_addr: String,
    /// `host:port` where the peer serves clients (empty when unknown), so a
    /// follower can tell a client or another server where the leader is.
    pub client_addr: String,
}

impl fmt::Display for PeerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.quorum_addr)?;
        if !self.client_addr.is_empty() {
            write!(f, " (clients {})", self.client_addr)?;
        }
        Ok(())
    }
}

/// One entry's application payload (for the server: an encoded `Txn`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request(pub Vec<u8>);

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request({} bytes)", self.0.len())
    }
}

/// What applying an entry produced, as the machine encoded it. Empty for
/// entries that carry nothing for the machine.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response(pub Vec<u8>);

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Response({} bytes)", self.0.len())
    }
}

/// One member of the ensemble, from a `server.N` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// N.
    pub id: NodeId,
    /// Where it answers RPCs.
    pub node: PeerNode,
    /// A participant votes; an observer (a learner) only replicates.
    pub voter: bool,
}

impl Peer {
    /// The peer a `server.N` line describes: RPCs go to its first quorum
    /// address's quorum port.
    pub fn from_spec(spec: &crate::config::ServerSpec) -> Option<Peer> {
        let quorum = spec.addresses.first()?;
        let client_addr = spec
            .client
            .as_ref()
            .map(|client| {
                // A wildcard bind address tells other servers nothing about
                // where to reach this one; its quorum host does.
                let host = match client.host.as_deref() {
                    Some(host) if !matches!(host, "0.0.0.0" | "::") => host,
                    _ => &quorum.host,
                };
                join_host_port(host, client.port)
            })
            .unwrap_or_default();
        Some(Peer {
            id: spec.id,
            node: PeerNode {
                quorum_addr: join_host_port(&quorum.host, quorum.quorum_port),
                client_addr,
            },
            voter: spec.peer_type == crate::config::PeerType::Participant,
        })
    }
}

/// `host:port`, bracketing an IPv6 literal.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
