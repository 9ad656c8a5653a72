//! Session liveness: which sessions are due to expire, tracked in expiry buckets
//! rounded up to the tick, as Apache's `ExpiryQueue` does, so that expiring
//! sessions costs one map operation per tick rather than one timer per session.
//!
//! The tracker is local bookkeeping, not replicated state: the replicated
//! session table lives in the data tree (CreateSession/CloseSession
//! transactions). Only the server that decides expiry (standalone, or the
//! leader of an ensemble) runs a tracker; when one starts it gives every known
//! session a fresh timeout rather than expiring them all at once.

use std::collections::{BTreeMap, HashMap, HashSet};

use sha1::{Digest, Sha1};

/// Tracks the deadline of every live session in buckets of `tick_ms`.
#[derive(Debug)]
pub struct SessionTracker {
    tick_ms: i64,
    /// session id → (timeout, the bucket it is in)
    sessions: HashMap<i64, (i32, i64)>,
    /// bucket deadline → sessions expiring then
    buckets: BTreeMap<i64, HashSet<i64>>,
}

impl SessionTracker {
    pub fn new(tick_ms: i64) -> SessionTracker {
        SessionTracker {
            tick_ms: tick_ms.max(1),
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    /// The bucket a deadline falls in: the next multiple of the tick, so a
    /// session never expires early.
    fn bucket_for(&self, deadline_ms: i64) -> i64 {
        (deadline_ms / self.tick_ms + 1) * self.tick_ms
    }

    /// Starts tracking a session (or restarts its clock) as of `now_ms`.
    pub fn add(&mut self, session_id: i64, timeout_ms: i32, now_ms: i64) {
        // Adding a tracked session again must not leave it in its old
        // bucket, where it would expire at the old deadline.
        self.remove(session_id);
        self.sessions.insert(session_id, (timeout_ms, i64::MIN));
        self.touch(session_id, now_ms);
    }

    /// Records activity: the session's deadline moves to now + its timeout.
    /// Returns false for a session that is not tracked (already expired or
    /// closed), which the caller must treat as expired.
    pub fn touch(&mut self, session_id: i64, now_ms: i64) -> bool {
        let Some(&(timeout_ms, old_bucket)) = self.sessions.get(&session_id) else {
            return false;
        };
        let new_bucket = self.bucket_for(now_ms + i64::from(timeout_ms));
        if new_bucket == old_bucket {
            return true;
        }
        if let Some(set) = self.buckets.get_mut(&old_bucket) {
            set.remove(&session_id);
            if set.is_empty() {
                self.buckets.remove(&old_bucket);
            }
        }
        self.buckets
            .entry(new_bucket)
            .or_default()
            .insert(session_id);
        self.sessions.insert(session_id, (timeout_ms, new_bucket));
        true
    }

    /// Stops tracking a session (closed or expired).
    pub fn remove(&mut self, session_id: i64) {
        if let Some((_, bucket)) = self.sessions.remove(&session_id) {
            if let Some(set) = self.buckets.get_mut(&bucket) {
                set.remove(&session_id);
                if set.is_empty() {
                    self.buckets.remove(&bucket);
                }
            }
        }
    }

    /// Removes and returns every session whose deadline is at or before
    /// `now_ms`, oldest bucket first.
    pub fn take_expired(&mut self, now_ms: i64) -> Vec<i64> {
        let mut expired = Vec::new();
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() > now_ms {
                break;
            }
            let mut ids: Vec<i64> = entry.remove().into_iter().collect();
            ids.sort_unstable();
            for id in &ids {
                self.sessions.remove(id);
            }
            expired.extend(ids);
        }
        expired
    }

    /// Buckets in deadline order with their sessions, for the `dump` word.
    pub fn buckets(&self) -> Vec<(i64, Vec<i64>)> {
        self.buckets
            .iter()
            .map(|(deadline, ids)| {
                let mut ids: Vec<i64> = ids.iter().copied().collect();
                ids.sort_unstable();
                (*deadline, ids)
            })
            .collect()
    }

    pub fn contains(&self, session_id: i64) -> bool {
        self.sessions.contains_key(&session_id)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// Hands out session ids: the server id in the top byte and a time-seeded
/// counter below it (Apache's layout), so ids from different servers and from
/// successive runs of one server do not collide.
#[derive(Debug)]
pub struct SessionIdGenerator {
    next: i64,
}

impl SessionIdGenerator {
    pub fn new(server_id: u8, now_ms: i64) -> SessionIdGenerator {
        // Keep 40 bits of milliseconds shifted up by 16, and leave the top byte
        // for the server id; the low 16 bits count sessions within a millisecond.
        let time_part = ((now_ms as u64) << 24 >> 8) as i64;
        SessionIdGenerator {
            next: time_part | (i64::from(server_id) << 56),
        }
    }

    pub fn next_id(&mut self) -> i64 {
        self.next = self.next.wrapping_add(1);
        self.next
    }
}

/// The password a client must present to resume a session. Derived, not
/// stored: every server of an ensemble, and the same server after a restart,
/// computes the same value from the session id.
pub fn session_password(session_id: i64) -> Vec<u8> {
    // A fixed seed, as Apache's is; the password guards against a client
    // resuming another's session by mistake, not against an attacker who can
    // read the server's source.
    const SEED: &[u8] = b"zookeeper-rs session password v1";
    let mut hasher = Sha1::new();
    hasher.update(SEED);
    hasher.update(session_id.to_be_bytes());
    hasher.finalize()[..16].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_only_after_their_timeout_rounded_up_to_the_tick() {
        let mut t = SessionTracker::new(2000);
        t.add(1, 4000, 0);
        t.add(2, 10_000, 0);
        assert!(t.take_expired(3999).is_empty());
        // Deadline 4000 rounds up to the 6000 bucket.
        assert!(t.take_expired(5999).is_empty());
        assert_eq!(t.take_expired(6000), vec![1]);
        assert!(!t.contains(1));
        assert!(t.contains(2));
        assert_eq!(t.take_expired(12_000), vec![2]);
        assert!(t.is_empty());
    }

    #[test]
    fn touching_moves_the_deadline() {
        let mut t = SessionTracker::new(1000);
        t.add(7, 3000, 0);
        assert!(t.touch(7, 2500));
        assert!(t.take_expired(4000).is_empty());
        assert_eq!(t.take_expired(6000), vec![7]);
        assert!(!t.touch(7, 6000), "an expired session cannot be revived");
    }

    #[test]
    fn adding_a_tracked_session_again_replaces_its_deadline() {
        let mut t = SessionTracker::new(500);
        t.add(1, 2000, 0);
        t.add(1, 2000, 1000);
        assert!(
            t.take_expired(2600).is_empty(),
            "expired at the first deadline"
        );
        assert_eq!(t.take_expired(3500), vec![1]);
    }

    #[test]
    fn removed_sessions_never_expire() {
        let mut t = SessionTracker::new(1000);
        t.add(1, 2000, 0);
        t.remove(1);
        assert!(t.take_expired(1_000_000).is_empty());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn ids_carry_the_server_id_and_do_not_repeat() {
        let mut g = SessionIdGenerator::new(3, 1_700_000_000_000);
        let a = g.next_id();
        let b = g.next_id();
        assert_ne!(a, b);
        assert_eq!((a >> 56) & 0xff, 3);
    }

    #[test]
    fn passwords_are_stable_and_distinct() {
        assert_eq!(session_password(5), session_password(5));
        assert_ne!(session_password(5), session_password(6));
        assert_eq!(session_password(5).len(), 16);
    }
}
