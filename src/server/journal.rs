//! The transaction journal: prepared [`Txn`]s written to the write-ahead log
//! before they are applied, and replayed into the tree at start-up.
//!
//! A journal entry's payload is one format byte followed by the `Txn` in
//! postcard's compact serde encoding. Replaying the entries in index order
//! through [`DataTree::apply`] rebuilds the exact tree, zxids included,
//! because apply is deterministic.

use std::path::Path;
use std::time::Instant;

use thiserror::Error;
use tracing::{info, warn};

use crate::storage::{Entry, Log, LogOptions, Recovery, StorageError};
use crate::tree::DataTree;
use crate::txn::Txn;

/// The payload format written by this version.
const FORMAT_V1: u8 = 1;
/// Entries read per step while replaying, to bound memory on a long log.
const REPLAY_CHUNK: u64 = 4096;

#[derive(Debug, Error)]
pub enum JournalError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("journal entry {index} cannot be decoded ({detail}); the log was written by an incompatible version or is damaged")]
    Undecodable { index: u64, detail: String },
}

/// What replay did, for the start-up log line.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayStats {
    pub entries: u64,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub millis: u128,
}

/// The write-ahead log of transactions.
#[derive(Debug)]
pub struct Journal {
    log: Log,
    /// Index the next appended entry gets.
    next_index: u64,
}

/// A value as one format byte followed by its postcard encoding: the form of
/// every payload this server puts in a log (journal entries here, replicated
/// envelopes in `ensemble`). The byte leaves room for a later format.
pub(crate) fn encode_versioned<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising an in-memory value into a Vec cannot fail for these types
    // (no maps with non-string keys, no lengths beyond u32); an error here
    // is a programming error, caught by the round-trip tests.
    match postcard::to_extend(value, vec![FORMAT_V1]) {
        Ok(p) => p,
        Err(e) => unreachable_encoding(e),
    }
}

#[cold]
fn unreachable_encoding(e: postcard::Error) -> Vec<u8> {
    tracing::error!(error = %e, "a log payload could not be encoded");
    std::process::exit(70)
}

/// The inverse of [`encode_versioned`]; the error says what is wrong.
pub(crate) fn decode_versioned<T: serde::de::DeserializeOwned>(
    payload: &[u8],
) -> Result<T, String> {
    match payload.split_first() {
        Some((&FORMAT_V1, body)) => postcard::from_bytes(body).map_err(|e| e.to_string()),
        Some((format, _)) => Err(format!("unknown format byte {format}")),
        None => Err("empty payload".into()),
    }
}

pub fn encode_txn(txn: &Txn) -> Vec<u8> {
    encode_versioned(txn)
}

pub fn decode_txn(index: u64, payload: &[u8]) -> Result<Txn, JournalError> {
    decode_versioned(payload).map_err(|detail| JournalError::Undecodable { index, detail })
}

impl Journal {
    /// Opens the log under `data_log_dir`, repairing a torn tail.
    pub fn open(
        data_log_dir: &Path,
        options: LogOptions,
    ) -> Result<(Journal, Recovery), JournalError> {
        let (log, recovery) = Log::open(data_log_dir, options)?;
        if let Some(torn) = &recovery.torn_tail {
            warn!(
                file = %torn.path.display(),
                offset = torn.offset,
                bytes_dropped = torn.bytes_dropped,
                detail = %torn.detail,
                "dropped a torn write at the end of the transaction log (a crash cut the last write short; nothing acknowledged is lost)"
            );
        }
        let next_index = log
            .next_index()
            .or_else(|| log.last_purged().map(|p| p.index + 1))
            .unwrap_or(1);
        Ok((Journal { log, next_index }, recovery))
    }

    /// Applies every entry after `after_index` to `tree`, in order.
    pub fn replay(
        &self,
        tree: &mut DataTree,
        after_index: u64,
    ) -> Result<ReplayStats, JournalError> {
        let started = Instant::now();
        let mut stats = ReplayStats::default();
        let (Some(first), Some(last)) = (self.log.first_index(), self.log.last_index()) else {
            return Ok(stats);
        };
        let mut from = first.max(after_index + 1);
        while from <= last {
            let to = (from + REPLAY_CHUNK - 1).min(last);
            for entry in self.log.entries(from..=to)? {
                let txn = decode_txn(entry.index, &entry.payload)?;
                tree.apply(&txn);
                stats.first_index.get_or_insert(entry.index);
                stats.last_index = Some(entry.index);
                stats.entries += 1;
            }
            from = to + 1;
        }
        stats.millis = started.elapsed().as_millis();
        Ok(stats)
    }

    /// Appends the transactions and makes them durable with one sync: the
    /// group commit. On `DiskFull` nothing was appended and a later call may
    /// succeed; any other error leaves the log refusing writes.
    pub fn append_durably(&mut self, txns: &[&Txn]) -> Result<(), StorageError> {
        if txns.is_empty() {
            return Ok(());
        }
        let entries: Vec<Entry> = txns
            .iter()
            .enumerate()
            .map(|(i, txn)| Entry {
                index: self.next_index + i as u64,
                term: 0,
                payload: encode_txn(txn),
            })
            .collect();
        self.log.append(&entries)?;
        self.log.sync()?;
        self.next_index += entries.len() as u64;
        Ok(())
    }

    /// Index of the last entry written, 0 when none.
    pub fn last_index(&self) -> u64 {
        self.next_index - 1
    }

    /// The first index still in the log: 1 for a log never purged, the
    /// index after the purge point otherwise.
    pub fn first_available_index(&self) -> u64 {
        self.log
            .first_index()
            .or_else(|| self.log.last_purged().map(|p| p.index + 1))
            .unwrap_or(1)
    }

    /// Drops entries up to and including `index`, which a durable snapshot
    /// covers. Never drops the last entry (the log keeps its position).
    pub fn purge_through(&mut self, index: u64) -> Result<(), StorageError> {
        let last = self.last_index();
        let bound = index.min(last.saturating_sub(1));
        if bound == 0 || bound < self.first_available_index() {
            return Ok(());
        }
        self.log.purge_before(bound + 1)
    }
}

/// Logs what recovery loaded.
pub fn log_recovery(stats: &ReplayStats, last_zxid: i64, nodes: usize, sessions: usize) {
    info!(
        transactions = stats.entries,
        first_index = stats.first_index.unwrap_or(0),
        last_index = stats.last_index.unwrap_or(0),
        last_zxid = format_args!("0x{last_zxid:x}"),
        nodes,
        sessions,
        millis = stats.millis as u64,
        "recovered the data tree from the transaction log"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Acl, CreateMode, Id};
    use crate::tree::TreeOptions;
    use crate::txn::{CreateOp, TxnOp};

    fn create(path: &str) -> Txn {
        Txn {
            session_id: 7,
            cxid: 1,
            time_ms: 1_700_000_000_000,
            auth: vec![Id::new("digest", "u:x")],
            op: TxnOp::Create(CreateOp {
                path: path.into(),
                data: b"data".to_vec(),
                acl: Acl::open_unsafe(),
                mode: CreateMode::PersistentSequential,
                ttl_ms: 0,
            }),
        }
    }

    #[test]
    fn transactions_round_trip() {
        let txn = create("/a");
        assert_eq!(decode_txn(1, &encode_txn(&txn)).unwrap(), txn);
        assert!(decode_txn(1, &[]).is_err());
        assert!(decode_txn(1, &[9, 1, 2]).is_err());
        let mut bytes = encode_txn(&txn);
        bytes.truncate(bytes.len() - 3);
        assert!(decode_txn(1, &bytes).is_err());
    }

    #[test]
    fn replay_rebuilds_the_same_tree() {
        let dir = tempfile::tempdir().unwrap();
        let options = TreeOptions {
            skip_acl: false,
            enforce_quota: false,
        };
        let txns = vec![
            Txn {
                session_id: 7,
                cxid: 0,
                time_ms: 1,
                auth: vec![],
                op: TxnOp::CreateSession { timeout_ms: 4000 },
            },
            create("/a"),
            create("/a"),
        ];
        let mut live = DataTree::new(options);
        {
            let (mut journal, _) = Journal::open(dir.path(), LogOptions::default()).unwrap();
            for txn in &txns {
                live.apply(txn);
            }
            let refs: Vec<&Txn> = txns.iter().collect();
            journal.append_durably(&refs).unwrap();
            assert_eq!(journal.last_index(), 3);
        }
        let (journal, _) = Journal::open(dir.path(), LogOptions::default()).unwrap();
        let mut replayed = DataTree::new(options);
        let stats = journal.replay(&mut replayed, 0).unwrap();
        assert_eq!(stats.entries, 3);
        assert_eq!(replayed.last_zxid(), live.last_zxid());
        assert_eq!(replayed.node_count(), live.node_count());
        let stat = replayed.node("/a0000000001").unwrap().stat();
        assert_eq!(stat, live.node("/a0000000001").unwrap().stat());
        assert_eq!(replayed.session_timeout(7), Some(4000));
        // Replaying from a later index applies only what follows it.
        let mut partial = DataTree::new(options);
        assert_eq!(journal.replay(&mut partial, 2).unwrap().entries, 1);
    }
}
