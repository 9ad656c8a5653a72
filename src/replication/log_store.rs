//! openraft's log storage (`RaftLogStorage` + `RaftLogReader`) on our
//! write-ahead log.
//!
//! Each openraft entry becomes one [`crate::storage::Entry`]: the log's
//! `index` and `term` are the entry's log id (openraft runs with
//! `single-term-leader`, so a log id is exactly a term and an index, as in the
//! Raft paper), and the payload is a format byte followed by the whole
//! openraft entry in postcard. The vote lives in the log's meta file.
//!
//! # Durability and ordering
//!
//! One writer thread owns every write, so writes happen in the order openraft
//! issued them. `append` returns once the entries are written (readable);
//! the thread then fdatasyncs and only after that signals openraft's
//! `LogFlushed` callback, which is what lets openraft count this peer's copy
//! toward a quorum. Appends that queue up while a sync runs share the next
//! sync (group commit). A vote, a truncation or a purge first flushes pending
//! appends, then is itself durable before it is acknowledged.
//!
//! Readers (openraft's replication tasks) share the log behind a mutex and
//! read on the blocking pool, so a long read or a sync in progress never
//! stalls the async runtime.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, CommittedLeaderId, Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftLogReader, StorageError, StorageIOError, Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{error, warn};

use super::{NodeId, TypeConfig};
use crate::storage::{self, EntryId, Log, LogOptions, Recovery};

/// Result of a storage call as openraft sees it.
pub type RaftStorageResult<T> = Result<T, StorageError<NodeId>>;

/// Payload format of an entry written by this version.
const ENTRY_FORMAT_V1: u8 = 1;
/// Format of the meta blob written by this version.
const META_FORMAT_V1: u8 = 1;

/// The small durable state kept next to the log.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Meta {
    vote: Option<Vote<NodeId>>,
}

/// openraft's log store. Owned by openraft's core; see the module docs.
pub struct LogStore {
    log: Arc<Mutex<Log>>,
    writer: mpsc::Sender<WriteCommand>,
    vote: Option<Vote<NodeId>>,
}

/// A read handle on the log, for openraft's replication tasks.
#[derive(Clone)]
pub struct LogReader {
    log: Arc<Mutex<Log>>,
}

/// Resolves when the log's writer thread has finished its last write and
/// exited (after openraft dropped the [`LogStore`]).
pub struct LogClosed(oneshot::Receiver<()>);

impl LogClosed {
    /// Waits for the writer thread to exit.
    pub async fn wait(self) {
        // An error means the thread is gone without signalling: also closed.
        let _ = self.0.await;
    }
}

type Reply = oneshot::Sender<Result<(), storage::StorageError>>;

enum WriteCommand {
    Append {
        entries: Vec<storage::Entry>,
        written: Reply,
        flushed: LogFlushed<TypeConfig>,
    },
    Truncate {
        since: u64,
        done: Reply,
    },
    Purge {
        through: EntryId,
        done: Reply,
    },
    SaveMeta {
        bytes: Vec<u8>,
        done: Reply,
    },
}

impl LogStore {
    /// Opens (or creates) the log in `<dir>/version-rs-1` and starts its
    /// writer thread.
    pub fn open(
        dir: &Path,
        options: LogOptions,
    ) -> Result<(LogStore, Recovery, LogClosed), storage::StorageError> {
        let (log, recovery) = Log::open(dir, options)?;
        let vote = decode_meta(log.load_meta()?.as_deref())
            .map_err(|detail| storage::StorageError::Corrupt {
                path: log.dir().join("meta"),
                offset: 0,
                detail,
            })?
            .vote;
        let log = Arc::new(Mutex::new(log));
        let (writer, commands) = mpsc::channel();
        let (closed_tx, closed_rx) = oneshot::channel();
        let thread_log = Arc::clone(&log);
        std::thread::Builder::new()
            .name("raft-log-writer".to_string())
            .spawn(move || {
                write_loop(&thread_log, &commands);
                let _ = closed_tx.send(());
            })
            .map_err(|source| storage::StorageError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok((
            LogStore { log, writer, vote },
            recovery,
            LogClosed(closed_rx),
        ))
    }

    /// The fault injector of the underlying log, for tests that make its
    /// fsyncs fail.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn fault_injector(&self) -> Option<Arc<crate::storage::FaultInjector>> {
        self.log.lock().ok().map(|log| log.fault_injector())
    }

    async fn submit(
        &self,
        command: WriteCommand,
        done: oneshot::Receiver<Result<(), storage::StorageError>>,
        subject: ErrorSubject<NodeId>,
    ) -> RaftStorageResult<()> {
        let verb = ErrorVerb::Write;
        if self.writer.send(command).is_err() {
            return Err(io_error(subject, verb, &writer_gone()));
        }
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_error(subject, verb, &e)),
            Err(_) => Err(io_error(subject, verb, &writer_gone())),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> RaftStorageResult<Vec<Entry<TypeConfig>>> {
        read_entries(&self.log, range).await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> RaftStorageResult<Vec<Entry<TypeConfig>>> {
        read_entries(&self.log, range).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> RaftStorageResult<LogState<TypeConfig>> {
        let log = lock(&self.log, ErrorSubject::Logs)?;
        let last_purged_log_id = log.last_purged().map(log_id_of);
        let last_log_id = match (log.last_index(), log.last_entry_term()) {
            (Some(index), Some(term)) => Some(log_id(term, index)),
            _ => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader {
            log: Arc::clone(&self.log),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> RaftStorageResult<()> {
        let meta = Meta { vote: Some(*vote) };
        let bytes = encode(META_FORMAT_V1, &meta)
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, &e))?;
        let (done, reply) = oneshot::channel();
        self.submit(
            WriteCommand::SaveMeta { bytes, done },
            reply,
            ErrorSubject::Vote,
        )
        .await?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> RaftStorageResult<Option<Vote<NodeId>>> {
        Ok(self.vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> RaftStorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries = entries
            .into_iter()
            .map(|entry| encode_entry(&entry))
            .collect::<Result<Vec<_>, _>>()?;
        let (written, reply) = oneshot::channel();
        let command = WriteCommand::Append {
            entries,
            written,
            flushed: callback,
        };
        self.submit(command, reply, ErrorSubject::Logs).await
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> RaftStorageResult<()> {
        let (done, reply) = oneshot::channel();
        let command = WriteCommand::Truncate {
            since: log_id.index,
            done,
        };
        self.submit(command, reply, ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> RaftStorageResult<()> {
        let (done, reply) = oneshot::channel();
        let through = EntryId {
            index: log_id.index,
            term: log_id.leader_id.term,
        };
        self.submit(
            WriteCommand::Purge { through, done },
            reply,
            ErrorSubject::Logs,
        )
        .await
    }
}

/// The writer thread: executes commands in order, syncing once for every run
/// of appends that arrived together.
fn write_loop(log: &Mutex<Log>, commands: &mpsc::Receiver<WriteCommand>) {
    let mut unsynced: Vec<LogFlushed<TypeConfig>> = Vec::new();
    while let Ok(first) = commands.recv() {
        let mut next = Some(first);
        while let Some(command) = next {
            if !matches!(command, WriteCommand::Append { .. }) {
                sync_and_signal(log, &mut unsynced);
            }
            execute(log, command, &mut unsynced);
            next = commands.try_recv().ok();
        }
        sync_and_signal(log, &mut unsynced);
    }
}

fn execute(log: &Mutex<Log>, command: WriteCommand, unsynced: &mut Vec<LogFlushed<TypeConfig>>) {
    let Ok(mut log) = log.lock() else {
        error!("the raft log's lock is poisoned; refusing writes");
        return;
    };
    match command {
        WriteCommand::Append {
            mut entries,
            written,
            flushed,
        } => {
            // Entries at or below the purge point are already covered by a
            // snapshot; openraft does not send them, but they must not break
            // the log's continuity if it does.
            if let Some(purged) = log.last_purged() {
                entries.retain(|entry| entry.index > purged.index);
            }
            match log.append(&entries) {
                Ok(()) => {
                    unsynced.push(flushed);
                    let _ = written.send(Ok(()));
                }
                Err(e) => {
                    flushed.log_io_completed(Err(std::io::Error::other(e.to_string())));
                    let _ = written.send(Err(e));
                }
            }
        }
        WriteCommand::Truncate { since, done } => {
            let _ = done.send(log.truncate_from(since));
        }
        WriteCommand::Purge { through, done } => {
            let _ = done.send(log.purge_through(through));
        }
        WriteCommand::SaveMeta { bytes, done } => {
            let _ = done.send(log.save_meta(&bytes));
        }
    }
}

/// Makes every written append durable, then tells openraft.
fn sync_and_signal(log: &Mutex<Log>, unsynced: &mut Vec<LogFlushed<TypeConfig>>) {
    if unsynced.is_empty() {
        return;
    }
    let synced = match log.lock() {
        Ok(mut log) => log.sync().map_err(|e| std::io::Error::other(e.to_string())),
        Err(_) => Err(std::io::Error::other("the raft log's lock is poisoned")),
    };
    if let Err(e) = &synced {
        // openraft stops this peer on a failed flush (fail-stop, like the
        // standalone server); a restart re-reads what the disk holds.
        error!(error = %e, "syncing the raft log failed");
    }
    for callback in unsynced.drain(..) {
        let result = match &synced {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        callback.log_io_completed(result);
    }
}

async fn read_entries<RB: RangeBounds<u64>>(
    log: &Arc<Mutex<Log>>,
    range: RB,
) -> RaftStorageResult<Vec<Entry<TypeConfig>>> {
    let start = match range.start_bound() {
        Bound::Included(&start) => start,
        Bound::Excluded(&start) => start.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end_inclusive = match range.end_bound() {
        Bound::Included(&end) => Some(end),
        Bound::Excluded(&end) => end.checked_sub(1),
        Bound::Unbounded => Some(u64::MAX),
    };
    let Some(end_inclusive) = end_inclusive else {
        return Ok(Vec::new());
    };
    let log = Arc::clone(log);
    let read = tokio::task::spawn_blocking(move || {
        let log = lock(&log, ErrorSubject::Logs)?;
        let (Some(first), Some(last)) = (log.first_index(), log.last_index()) else {
            return Ok(Vec::new());
        };
        let (from, to) = (start.max(first), end_inclusive.min(last));
        if from > to {
            return Ok(Vec::new());
        }
        log.entries(from..=to)
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    })
    .await
    .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, &e))??;
    read.iter().map(decode_entry).collect()
}

fn lock(log: &Mutex<Log>, subject: ErrorSubject<NodeId>) -> RaftStorageResult<MutexGuard<'_, Log>> {
    log.lock().map_err(|_| {
        io_error(
            subject,
            ErrorVerb::Read,
            &std::io::Error::other("the raft log's lock is poisoned"),
        )
    })
}

fn encode_entry(entry: &Entry<TypeConfig>) -> RaftStorageResult<storage::Entry> {
    let payload = encode(ENTRY_FORMAT_V1, entry).map_err(|e| {
        StorageError::from(StorageIOError::write_log_entry(
            entry.log_id,
            AnyError::new(&e),
        ))
    })?;
    Ok(storage::Entry {
        index: entry.log_id.index,
        term: entry.log_id.leader_id.term,
        payload,
    })
}

fn decode_entry(record: &storage::Entry) -> RaftStorageResult<Entry<TypeConfig>> {
    let corrupt = |detail: String| {
        StorageError::from(StorageIOError::read_log_at_index(
            record.index,
            AnyError::error(format!(
                "log entry {} cannot be decoded: {detail}; the log was written by an \
                 incompatible version or is damaged",
                record.index
            )),
        ))
    };
    let entry: Entry<TypeConfig> = match record.payload.split_first() {
        Some((&ENTRY_FORMAT_V1, body)) => {
            postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))?
        }
        Some((format, _)) => return Err(corrupt(format!("unknown format byte {format}"))),
        None => return Err(corrupt("empty payload".to_string())),
    };
    if entry.log_id.index != record.index || entry.log_id.leader_id.term != record.term {
        return Err(corrupt(format!(
            "the record is at index {} term {} but holds entry {}",
            record.index, record.term, entry.log_id
        )));
    }
    Ok(entry)
}

fn decode_meta(bytes: Option<&[u8]>) -> Result<Meta, String> {
    match bytes.map(|bytes| bytes.split_first()) {
        None => Ok(Meta::default()),
        Some(Some((&META_FORMAT_V1, body))) => {
            postcard::from_bytes(body).map_err(|e| format!("the raft vote cannot be decoded: {e}"))
        }
        Some(Some((format, _))) => Err(format!("the raft vote has unknown format byte {format}")),
        Some(None) => Err("the raft vote is empty".to_string()),
    }
}

/// A format byte, then `value` in postcard.
fn encode<T: Serialize>(format: u8, value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_extend(value, vec![format])
}

/// The log id of an entry at `index` written in `term`.
pub fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

fn log_id_of(id: EntryId) -> LogId<NodeId> {
    log_id(id.term, id.index)
}

fn io_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    error: &(dyn std::error::Error + 'static),
) -> StorageError<NodeId> {
    StorageError::from(StorageIOError::new(
        subject,
        verb,
        AnyError::from_dyn(error, None),
    ))
}

fn writer_gone() -> std::io::Error {
    warn!("the raft log's writer thread has stopped");
    std::io::Error::other("the raft log's writer thread has stopped")
}
