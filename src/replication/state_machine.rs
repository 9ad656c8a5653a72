//! openraft's state machine (`RaftStateMachine` + `RaftSnapshotBuilder`) on
//! an application [`Machine`], and the durable snapshot file.
//!
//! The contract between openraft, this adapter and the machine is in the
//! [module docs of `replication`](super).
//!
//! # Snapshot file
//!
//! `<dir>/snapshot-rs-1/current`, replaced atomically (written to
//! `current.tmp`, fsynced, renamed, directory fsynced). All integers are
//! little-endian:
//!
//! ```text
//! 0   8  magic "zkrs-snp"
//! 8   4  format version (1)
//! 12  4  crc32c of every byte from 16 to the end
//! 16  8  m: length of the metadata
//! 24  m  openraft's snapshot metadata (last log id, membership, id) in postcard
//! ..     the machine's bytes
//! ```

use std::fs::{self, File};
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use thiserror::Error;
use tracing::info;

use super::log_store::{log_id, RaftStorageResult};
use super::{NodeId, PeerNode, Response, TypeConfig};

/// Name of the snapshot directory inside the replication directory.
pub const SNAPSHOT_DIR_NAME: &str = "snapshot-rs-1";
const SNAPSHOT_FILE: &str = "current";
const SNAPSHOT_TMP: &str = "current.tmp";
const SNAPSHOT_MAGIC: &[u8; 8] = b"zkrs-snp";
const SNAPSHOT_VERSION: u32 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 24;

/// The application's replicated state (for the server: the data tree and
/// its sessions). See the contract in the [module docs](super).
pub trait Machine: Send + Sync + 'static {
    /// Applies the committed entry at `index`, whose payload the application
    /// wrote; returns what the writer is told. Must be deterministic: every
    /// replica applies the same entries in the same order to the same state.
    fn apply(&self, index: u64, payload: &[u8]) -> Vec<u8>;

    /// The committed entry at `index` carries nothing for the machine (a new
    /// leader's blank entry or a membership change); the machine's position
    /// moves to `index`.
    fn advance(&self, index: u64);

    /// The whole state and the index of the last entry it includes. May run
    /// concurrently with `apply`; the bytes must be a consistent state as of
    /// that index.
    fn snapshot(&self) -> Result<MachineSnapshot, MachineError>;

    /// Replaces the whole state with a snapshot's bytes, which include every
    /// entry up to `last_index`.
    fn install(&self, last_index: u64, bytes: &[u8]) -> Result<(), MachineError>;
}

/// A machine's state as of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineSnapshot {
    /// The last entry the bytes include.
    pub last_index: u64,
    /// The machine's encoding of its state.
    pub bytes: Vec<u8>,
}

/// A machine could not produce or take a snapshot.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct MachineError(pub String);

/// The snapshot file could not be read or written.
#[derive(Debug, Error)]
pub enum SnapshotFileError {
    /// An I/O error.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file fails verification.
    #[error("snapshot file {path} is damaged or of an unknown format: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The machine refused the snapshot.
    #[error("the state machine refused snapshot {path}: {source}")]
    Refused {
        /// The file.
        path: PathBuf,
        /// The machine's error.
        source: MachineError,
    },
}

/// openraft's state machine over a [`Machine`]. Cheap to clone: clones
/// share everything (one is openraft's snapshot builder).
pub struct MachineStore<M: Machine> {
    inner: Arc<Inner<M>>,
}

impl<M: Machine> Clone for MachineStore<M> {
    fn clone(&self) -> Self {
        MachineStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<M> {
    machine: Arc<M>,
    history: Mutex<History>,
    file: SnapshotFile,
    builds: AtomicU64,
}

/// What the adapter remembers of applied entries since the current snapshot,
/// to turn an index the machine reports into a log id and the membership in
/// force there.
#[derive(Debug, Default)]
struct History {
    applied: Option<LogId<NodeId>>,
    /// `(first index, term)` of each run of entries of one term, from the
    /// snapshot point on.
    term_runs: Vec<(u64, u64)>,
    /// The membership in force at the snapshot point, then each later one.
    memberships: Vec<StoredMembership<NodeId, PeerNode>>,
}

impl History {
    fn from_snapshot(meta: &SnapshotMeta<NodeId, PeerNode>) -> History {
        History {
            applied: meta.last_log_id,
            term_runs: meta
                .last_log_id
                .map(|id| vec![(id.index, id.leader_id.term)])
                .unwrap_or_default(),
            memberships: vec![meta.last_membership.clone()],
        }
    }

    fn record(&mut self, entry: &Entry<TypeConfig>) {
        let term = entry.log_id.leader_id.term;
        if self.term_runs.last().map(|&(_, t)| t) != Some(term) {
            self.term_runs.push((entry.log_id.index, term));
        }
        if let EntryPayload::Membership(membership) = &entry.payload {
            self.memberships.push(StoredMembership::new(
                Some(entry.log_id),
                membership.clone(),
            ));
        }
        self.applied = Some(entry.log_id);
    }

    fn last_membership(&self) -> StoredMembership<NodeId, PeerNode> {
        self.memberships.last().cloned().unwrap_or_default()
    }

    /// The log id at `index` and the membership in force there.
    fn resolve(&self, index: u64) -> Option<(LogId<NodeId>, StoredMembership<NodeId, PeerNode>)> {
        if self.applied.map_or(true, |applied| index > applied.index) {
            return None;
        }
        let &(_, term) = self
            .term_runs
            .iter()
            .rev()
            .find(|&&(first, _)| first <= index)?;
        let membership = self
            .memberships
            .iter()
            .rev()
            .find(|m| m.log_id().map_or(true, |id| id.index <= index))
            .cloned()
            .unwrap_or_default();
        Some((log_id(term, index), membership))
    }

    /// Forgets what precedes a snapshot at `index`, keeping what `resolve`
    /// needs for later indexes.
    fn trim(&mut self, index: u64) {
        if let Some(keep) = self
            .term_runs
            .iter()
            .rposition(|&(first, _)| first <= index)
        {
            self.term_runs.drain(..keep);
        }
        let in_force = self
            .memberships
            .iter()
            .rposition(|m| m.log_id().map_or(true, |id| id.index <= index));
        if let Some(keep) = in_force {
            self.memberships.drain(..keep);
        }
    }
}

impl<M: Machine> MachineStore<M> {
    /// Opens the snapshot directory under `dir` and, if a snapshot is there,
    /// installs it into `machine`, which must be empty.
    pub fn open(dir: &Path, machine: Arc<M>) -> Result<MachineStore<M>, SnapshotFileError> {
        let file = SnapshotFile::open(dir)?;
        let history = match file.load()? {
            Some((meta, bytes)) => {
                if let Some(last) = meta.last_log_id {
                    machine.install(last.index, &bytes).map_err(|source| {
                        SnapshotFileError::Refused {
                            path: file.path(),
                            source,
                        }
                    })?;
                    info!(last_log_id = %last, bytes = bytes.len(), "state restored from snapshot");
                }
                History::from_snapshot(&meta)
            }
            None => History::default(),
        };
        Ok(MachineStore {
            inner: Arc::new(Inner {
                machine,
                history: Mutex::new(history),
                file,
                builds: AtomicU64::new(0),
            }),
        })
    }

    fn history(&self) -> RaftStorageResult<std::sync::MutexGuard<'_, History>> {
        self.inner.history.lock().map_err(|_| {
            sm_error(
                ErrorVerb::Read,
                &std::io::Error::other("the state machine's history lock is poisoned"),
            )
        })
    }
}

impl<M: Machine> RaftSnapshotBuilder<TypeConfig> for MachineStore<M> {
    async fn build_snapshot(&mut self) -> RaftStorageResult<Snapshot<TypeConfig>> {
        let machine = Arc::clone(&self.inner.machine);
        let taken = tokio::task::spawn_blocking(move || machine.snapshot())
            .await
            .map_err(|e| snapshot_error(None, &e))?
            .map_err(|e| snapshot_error(None, &e))?;
        let resolved = {
            let history = self.history()?;
            match history.applied {
                None => None,
                Some(_) => Some(history.resolve(taken.last_index).ok_or_else(|| {
                    snapshot_error(
                        None,
                        &MachineError(format!(
                            "the machine's snapshot claims index {}, which was not applied \
                             since the last snapshot",
                            taken.last_index
                        )),
                    )
                })?),
            }
        };
        let (last_log_id, last_membership) = match resolved {
            Some((id, membership)) => (Some(id), membership),
            None => (None, StoredMembership::default()),
        };
        let build = self.inner.builds.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{build}", id.leader_id.term, id.index),
            None => format!("none-{build}"),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let inner = Arc::clone(&self.inner);
        let (meta, bytes) = tokio::task::spawn_blocking(move || {
            inner
                .file
                .save(&meta, &taken.bytes)
                .map(|()| (meta, taken.bytes))
        })
        .await
        .map_err(|e| snapshot_error(None, &e))?
        .map_err(|e| snapshot_error(None, &e))?;
        if let Some(id) = meta.last_log_id {
            self.history()?.trim(id.index);
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl<M: Machine> RaftStateMachine<TypeConfig> for MachineStore<M> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> RaftStorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, PeerNode>)> {
        let history = self.history()?;
        Ok((history.applied, history.last_membership()))
    }

    async fn apply<I>(&mut self, entries: I) -> RaftStorageResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries = entries.into_iter();
        let mut responses = Vec::with_capacity(entries.size_hint().0);
        for entry in entries {
            // Recorded before the machine sees the entry, so that a snapshot
            // the machine takes at this index can always be resolved.
            self.history()?.record(&entry);
            let index = entry.log_id.index;
            match &entry.payload {
                EntryPayload::Normal(request) => {
                    responses.push(Response(self.inner.machine.apply(index, &request.0)));
                }
                EntryPayload::Blank | EntryPayload::Membership(_) => {
                    self.inner.machine.advance(index);
                    responses.push(Response::default());
                }
            }
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> RaftStorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, PeerNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> RaftStorageResult<()> {
        let bytes = snapshot.into_inner();
        let signature = Some(meta.signature());
        let inner = Arc::clone(&self.inner);
        let owned_meta = meta.clone();
        tokio::task::spawn_blocking(move || -> Result<(), SnapshotFileError> {
            // Durable first: a crash after this restarts from the new
            // snapshot; a crash before it, from the old one.
            inner.file.save(&owned_meta, &bytes)?;
            if let Some(last) = owned_meta.last_log_id {
                inner
                    .machine
                    .install(last.index, &bytes)
                    .map_err(|source| SnapshotFileError::Refused {
                        path: inner.file.path(),
                        source,
                    })?;
            }
            Ok(())
        })
        .await
        .map_err(|e| snapshot_error(signature.clone(), &e))?
        .map_err(|e| snapshot_error(signature, &e))?;
        *self.history()? = History::from_snapshot(meta);
        info!(snapshot = %meta, "installed a snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> RaftStorageResult<Option<Snapshot<TypeConfig>>> {
        let inner = Arc::clone(&self.inner);
        let loaded = tokio::task::spawn_blocking(move || inner.file.load())
            .await
            .map_err(|e| snapshot_error(None, &e))?
            .map_err(|e| snapshot_error(None, &e))?;
        Ok(loaded.map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

/// A snapshot as the file holds it: openraft's metadata and the machine's
/// bytes.
type StoredSnapshot = (SnapshotMeta<NodeId, PeerNode>, Vec<u8>);

/// The durable snapshot file.
struct SnapshotFile {
    dir: PathBuf,
    /// Serialises writers and remembers what is on disk, so that a build
    /// finishing late never replaces a newer snapshot received meanwhile.
    current: Mutex<Option<LogId<NodeId>>>,
}

impl SnapshotFile {
    fn open(parent: &Path) -> Result<SnapshotFile, SnapshotFileError> {
        let dir = parent.join(SNAPSHOT_DIR_NAME);
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|source| SnapshotFileError::Io {
                path: dir.clone(),
                source,
            })?;
            sync_dir(parent)?;
        }
        let file = SnapshotFile {
            dir,
            current: Mutex::new(None),
        };
        let tmp = file.dir.join(SNAPSHOT_TMP);
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(|source| SnapshotFileError::Io { path: tmp, source })?;
        }
        let on_disk = file.load()?.and_then(|(meta, _)| meta.last_log_id);
        if let Ok(mut current) = file.current.lock() {
            *current = on_disk;
        }
        Ok(file)
    }

    fn path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_FILE)
    }

    fn load(&self) -> Result<Option<StoredSnapshot>, SnapshotFileError> {
        let path = self.path();
        let mut data = Vec::new();
        match File::open(&path) {
            Ok(mut file) => {
                file.read_to_end(&mut data)
                    .map_err(|source| SnapshotFileError::Io {
                        path: path.clone(),
                        source,
                    })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SnapshotFileError::Io { path, source }),
        };
        let corrupt = |detail: &str| SnapshotFileError::Corrupt {
            path: path.clone(),
            detail: detail.to_string(),
        };
        let (magic, rest) = data
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("shorter than its header"))?;
        let (version, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("shorter than its header"))?;
        let (crc, checked) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("shorter than its header"))?;
        let (meta_len, rest) = checked
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("shorter than its header"))?;
        if magic != SNAPSHOT_MAGIC {
            return Err(corrupt("bad magic"));
        }
        if u32::from_le_bytes(*version) != SNAPSHOT_VERSION {
            return Err(corrupt("unknown format version"));
        }
        if u32::from_le_bytes(*crc) != crc32c::crc32c(checked) {
            return Err(corrupt("checksum mismatch"));
        }
        let meta_len = usize::try_from(u64::from_le_bytes(*meta_len))
            .map_err(|_| corrupt("metadata length out of range"))?;
        let (meta, _) = rest
            .split_at_checked(meta_len)
            .ok_or_else(|| corrupt("metadata length beyond the end of the file"))?;
        let meta = postcard::from_bytes(meta)
            .map_err(|e| corrupt(&format!("metadata does not decode: {e}")))?;
        // Within the file: the metadata's bounds were just checked.
        let meta_end = SNAPSHOT_HEADER_BYTES + meta_len;
        let bytes = data.split_off(meta_end);
        Ok(Some((meta, bytes)))
    }

    /// Replaces the file durably, unless it already holds a newer snapshot.
    fn save(
        &self,
        meta: &SnapshotMeta<NodeId, PeerNode>,
        bytes: &[u8],
    ) -> Result<(), SnapshotFileError> {
        let mut current = self.current.lock().map_err(|_| SnapshotFileError::Io {
            path: self.path(),
            source: std::io::Error::other("the snapshot file's lock is poisoned"),
        })?;
        if current.is_some() && *current > meta.last_log_id {
            return Ok(());
        }
        let tmp = self.dir.join(SNAPSHOT_TMP);
        let io = |source| SnapshotFileError::Io {
            path: tmp.clone(),
            source,
        };
        let encoded_meta = postcard::to_allocvec(meta).map_err(|e| io(std::io::Error::other(e)))?;
        let meta_len = (encoded_meta.len() as u64).to_le_bytes();
        let crc = [&meta_len[..], &encoded_meta, bytes]
            .iter()
            .fold(0, |crc, part| crc32c::crc32c_append(crc, part));
        let mut header = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + encoded_meta.len());
        header.extend_from_slice(SNAPSHOT_MAGIC);
        header.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&meta_len);
        header.extend_from_slice(&encoded_meta);
        let mut file = File::create(&tmp).map_err(io)?;
        file.write_all(&header).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        let path = self.path();
        fs::rename(&tmp, &path).map_err(|source| SnapshotFileError::Io { path, source })?;
        sync_dir(&self.dir)?;
        *current = meta.last_log_id;
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotFileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| SnapshotFileError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

fn sm_error(verb: ErrorVerb, error: &(dyn std::error::Error + 'static)) -> StorageError<NodeId> {
    StorageError::from(StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        AnyError::from_dyn(error, None),
    ))
}

fn snapshot_error(
    signature: Option<openraft::storage::SnapshotSignature<NodeId>>,
    error: &(dyn std::error::Error + 'static),
) -> StorageError<NodeId> {
    StorageError::from(StorageIOError::new(
        ErrorSubject::Snapshot(signature),
        ErrorVerb::Write,
        AnyError::from_dyn(error, None),
    ))
}
