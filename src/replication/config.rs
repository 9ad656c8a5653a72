//! openraft's timers and limits, derived from ZooKeeper's settings.
//!
//! # Peer timers: fixed, not derived from `tickTime`
//!
//! | openraft setting           | value      | why                                      |
//! |----------------------------|------------|------------------------------------------|
//! | `heartbeat_interval`       | 50 ms      | Raft's usual LAN figure                  |
//! | `election_timeout_min`     | 150 ms     | three heartbeats                         |
//! | `election_timeout_max`     | 300 ms     | six heartbeats; also the leader lease    |
//! | `install_snapshot_timeout` | tickTime, at least 1 s |                              |
//!
//! Why fixed: how often peers tell each other they are alive is a matter of
//! the network between them (a LAN round trip is well under a millisecond),
//! not of `tickTime`, which sizes client sessions. Apache's leader pings
//! followers every half tick and drops them after `syncLimit` ticks, which
//! makes its failover take seconds; Raft wants the election timeout an order
//! of magnitude above a heartbeat round trip, and 150 to 300 ms on 50 ms
//! heartbeats is the figure of Raft's paper (and what this server's test
//! suite always ran on, at tickTime=500). Under load a heartbeat waits behind
//! at most one AppendEntries round (its fsync included), so three missed
//! heartbeats still means a silent leader, not a busy one (checked with
//! zkBench against a 3-member ensemble: no change of leader).
//!
//! # How long a failover takes
//!
//! A follower in openraft 0.9 refuses to vote while its leader lease
//! (`election_timeout_max` since the last heartbeat) runs, then waits its own
//! randomised election timeout, checked on a timer of 1.5 heartbeats: a silent
//! leader (a crashed machine, a cut cable) is replaced roughly
//! `election_timeout_max + [min, max)` = 450 to 600 ms after its last
//! heartbeat.
//!
//! A leader *process* that dies while its machine stays up closes its
//! connections: the kernel answers for it. A follower that sees the leader's
//! connection close, and then finds its quorum port refusing connections,
//! campaigns as soon as the other voters' leases can have run out (its own
//! last heartbeat + `election_timeout_max` + a margin), with a random
//! stagger of up to two heartbeats so that followers do not split the vote
//! (see `leadership`). It cannot campaign sooner: the other voters would
//! refuse while their lease runs.
//!
//! Measured (release build, tickTime=2000, 3 voters on 127.0.0.1 under
//! write load; ARCHITECTURE.md, "Leadership", has the commands): after
//! kill -9 of the leader the next write is accepted after 325 / 355 / 846 ms
//! (min / median / max of 20 runs, 19 under 400 ms); with the timers derived
//! from tickTime (heartbeat 200 ms, election timeout 600 to 1200 ms) it was
//! about 2 s. After SIGTERM (a handover) it is 9 / 11 / 14 ms.
//!
//! A leader that is stopped (SIGTERM) hands over instead: see `leadership`.
//!
//! A fresh ensemble elects at once: the bootstrapping peer campaigns as soon
//! as it initialises the membership.
//!
//! # Snapshots and purging
//!
//! `snapCount` (Apache's name) entries after the last snapshot, a new one is
//! built; the log then keeps [`ReplicationConfig::logs_kept_after_snapshot`]
//! entries before the snapshot so that a briefly lagging follower catches up
//! from the log rather than by a full snapshot transfer. zoo.cfg's
//! `commitLogCount` (Apache's name for the proposals its leader keeps for
//! the same purpose) sets that count.

use std::time::Duration;

use crate::storage::LogOptions;

/// Apache's default `snapCount`.
pub const DEFAULT_SNAP_COUNT: u64 = 100_000;
/// Entries kept before the snapshot point when the log is purged
/// (zoo.cfg's `commitLogCount` sets it).
pub const DEFAULT_LOGS_KEPT_AFTER_SNAPSHOT: u64 = crate::config::DEFAULT_COMMIT_LOG_COUNT as u64;
/// Entries per AppendEntries RPC: with the client protocol's 1 MiB bound on
/// a request this keeps a frame under [`crate::replication::network::MAX_FRAME_BYTES`].
pub const MAX_ENTRIES_PER_RPC: u64 = 64;

/// How often a leader tells its followers it is alive.
pub const HEARTBEAT: Duration = Duration::from_millis(50);
/// The shortest election timeout, in heartbeats.
pub const ELECTION_TIMEOUT_MIN_HEARTBEATS: u32 = 3;
/// The longest election timeout (and the leader lease), in heartbeats.
pub const ELECTION_TIMEOUT_MAX_HEARTBEATS: u32 = 6;

/// How the replication layer runs.
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// ZooKeeper's tickTime: the request timeout and the snapshot transfer
    /// timeout derive from it (the peer timers do not).
    pub tick_time: Duration,
    /// Entries between snapshots (Apache's `snapCount`).
    pub snap_count: u64,
    /// Entries kept in the log before the latest snapshot when purging.
    pub logs_kept_after_snapshot: u64,
    /// How long [`crate::replication::Replicator::write`] and `sync` wait for
    /// a quorum before giving up (the outcome of a write is then unknown).
    pub request_timeout: Duration,
    /// The write-ahead log's options (segment size, forceSync).
    pub log_options: LogOptions,
    /// Names the ensemble; a peer from another ensemble is refused at connect.
    pub cluster_name: String,
}

impl ReplicationConfig {
    /// Defaults for `tick_time`: Apache's snapCount, and requests that give up
    /// after Apache's default `syncLimit` (5 ticks).
    pub fn from_tick_time(tick_time: Duration) -> ReplicationConfig {
        ReplicationConfig {
            tick_time,
            snap_count: DEFAULT_SNAP_COUNT,
            logs_kept_after_snapshot: DEFAULT_LOGS_KEPT_AFTER_SNAPSHOT,
            request_timeout: tick_time.saturating_mul(5),
            log_options: LogOptions::default(),
            cluster_name: "zookeeper-rs".to_string(),
        }
    }

    /// Leader heartbeat period.
    pub fn heartbeat(&self) -> Duration {
        HEARTBEAT
    }

    /// The longest election timeout, which is also how long a follower keeps
    /// refusing other candidates after a heartbeat (openraft's leader lease).
    pub fn leader_lease(&self) -> Duration {
        HEARTBEAT.saturating_mul(ELECTION_TIMEOUT_MAX_HEARTBEATS)
    }

    /// openraft's configuration, validated.
    pub fn openraft_config(&self) -> Result<openraft::Config, openraft::ConfigError> {
        let heartbeat = duration_millis(self.heartbeat());
        let config = openraft::Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: heartbeat,
            election_timeout_min: heartbeat * u64::from(ELECTION_TIMEOUT_MIN_HEARTBEATS),
            election_timeout_max: heartbeat * u64::from(ELECTION_TIMEOUT_MAX_HEARTBEATS),
            install_snapshot_timeout: duration_millis(self.tick_time).max(1000),
            max_payload_entries: MAX_ENTRIES_PER_RPC,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snap_count.max(1)),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            // A follower further behind than this gets a snapshot; keep it
            // above snapCount as openraft asks.
            replication_lag_threshold: self.snap_count.max(1).saturating_mul(2),
            ..openraft::Config::default()
        };
        config.validate()
    }
}

fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_timers_are_the_same_at_every_tick_time() {
        for tick in [100, 500, 2000, 10_000] {
            let config = ReplicationConfig::from_tick_time(Duration::from_millis(tick))
                .openraft_config()
                .unwrap();
            assert_eq!(config.heartbeat_interval, 50, "tickTime={tick}");
            assert_eq!(config.election_timeout_min, 150, "tickTime={tick}");
            assert_eq!(config.election_timeout_max, 300, "tickTime={tick}");
        }
    }

    #[test]
    fn the_snapshot_timeout_follows_the_tick_with_a_floor() {
        let at = |tick| {
            ReplicationConfig::from_tick_time(Duration::from_millis(tick))
                .openraft_config()
                .unwrap()
                .install_snapshot_timeout
        };
        assert_eq!(at(2000), 2000);
        assert_eq!(at(100), 1000);
    }

    #[test]
    fn the_lease_is_the_longest_election_timeout() {
        let config = ReplicationConfig::from_tick_time(Duration::from_millis(2000));
        let raft = config.openraft_config().unwrap();
        assert_eq!(
            config.leader_lease(),
            Duration::from_millis(raft.election_timeout_max)
        );
    }
}
