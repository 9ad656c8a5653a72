//! Start-up recovery and background snapshots.
//!
//! Recovery loads the newest snapshot that verifies and replays the journal
//! after it. A damaged snapshot is skipped only when the journal still holds
//! every transaction between the snapshot used and the end of the log;
//! otherwise the server refuses to start and says which file to restore.
//!
//! Snapshots are taken every `snapCount` transactions (randomised between
//! half and all of it, as Apache does, so the members of an ensemble do not
//! all write one at once) and at a clean shutdown. The tree is frozen under
//! the write lock (copy-on-write: a pause of microseconds) and written out on
//! a blocking thread while writes go on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use crate::storage::snapshot::{self, SnapshotPoint};
use crate::storage::{LogOptions, StorageError, LOG_DIR_NAME};
use crate::tree::{DataTree, TreeOptions};

use super::journal::{self, Journal, JournalError};
use super::ServerOptions;

/// Why the persisted state could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("reading snapshots: {0}")]
    Snapshots(StorageError),
    #[error(
        "the transaction log starts at index {log_first}, but the state before it \
         ({snapshot}) ends at index {snapshot_last}: transactions {from}..={to} are in no file. \
         {skipped}Restore the damaged snapshot from a backup (or from another member of the \
         ensemble) and start again"
    )]
    Gap {
        snapshot: String,
        snapshot_last: u64,
        log_first: u64,
        from: u64,
        to: u64,
        skipped: String,
    },
}

/// Where snapshots live: `<dataDir>/version-rs-1`.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(LOG_DIR_NAME)
}

pub fn tree_options(options: &ServerOptions) -> TreeOptions {
    TreeOptions {
        skip_acl: options.config.skip_acl,
        enforce_quota: options.config.enforce_quota,
    }
}

pub fn log_options(options: &ServerOptions) -> LogOptions {
    LogOptions {
        segment_bytes: (options.config.pre_alloc_size_kb.saturating_mul(1024))
            .clamp(64 << 10, 1 << 30),
        force_sync: options.config.force_sync,
    }
}

/// Loads the newest valid snapshot, opens the journal and replays it.
pub fn recover(options: &ServerOptions) -> Result<(Journal, DataTree), RecoveryError> {
    let started = Instant::now();
    let snap_dir = snapshot_dir(options.data_dir());
    let loaded = snapshot::load_newest_valid(&snap_dir, tree_options(options))
        .map_err(RecoveryError::Snapshots)?;
    for skipped in &loaded.skipped {
        warn!(
            file = %skipped.path.display(),
            error = %skipped.error,
            "skipping a damaged snapshot; an older one and the log will be used if the log covers the gap"
        );
    }
    let (journal, _) = Journal::open(options.data_log_dir(), log_options(options))?;
    let (mut tree, after_index, source) = match loaded.newest {
        Some(valid) => {
            info!(
                file = %valid.path.display(),
                last_index = valid.meta.last_index,
                nodes = valid.meta.node_count,
                sessions = valid.meta.session_count,
                "loaded snapshot"
            );
            (
                valid.tree,
                valid.meta.last_index,
                valid.path.display().to_string(),
            )
        }
        None => (
            DataTree::new(tree_options(options)),
            0,
            "no usable snapshot: starting from an empty tree".to_string(),
        ),
    };
    let log_first = journal.first_available_index();
    if log_first > after_index + 1 {
        let skipped = loaded
            .skipped
            .iter()
            .map(|s| format!("Skipped as damaged: {} ({}). ", s.path.display(), s.error))
            .collect::<String>();
        return Err(RecoveryError::Gap {
            snapshot: source,
            snapshot_last: after_index,
            log_first,
            from: after_index + 1,
            to: log_first - 1,
            skipped,
        });
    }
    let stats = journal.replay(&mut tree, after_index)?;
    journal::log_recovery(
        &stats,
        tree.last_zxid(),
        tree.node_count(),
        tree.sessions().count(),
    );
    info!(
        millis = started.elapsed().as_millis() as u64,
        "recovery finished"
    );
    Ok((journal, tree))
}

/// Decides when to snapshot and runs the writes in the background.
#[derive(Debug)]
pub struct Snapshotter {
    dir: PathBuf,
    snap_count: u64,
    threshold: u64,
    since_last: u64,
    in_flight: Arc<AtomicBool>,
    /// Set when a background snapshot failed: what it was to cover is
    /// then only in the log.
    background_failed: Arc<AtomicBool>,
    rng: u64,
}

impl Snapshotter {
    pub fn new(options: &ServerOptions) -> Snapshotter {
        let snap_count = u64::from(options.config.snap_count).max(2);
        let mut rng =
            options.config.tick_time_ms as u64 ^ 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64;
        let threshold = next_threshold(snap_count, &mut rng);
        Snapshotter {
            dir: snapshot_dir(options.data_dir()),
            snap_count,
            threshold,
            since_last: 0,
            in_flight: Arc::new(AtomicBool::new(false)),
            background_failed: Arc::new(AtomicBool::new(false)),
            rng,
        }
    }

    /// Counts applied transactions; when enough have passed, freezes the
    /// tree (call under its lock) and writes it on a blocking thread.
    pub fn after_apply(&mut self, tree: &DataTree, applied: u64, last_index: u64, now_ms: i64) {
        self.since_last += applied;
        if self.since_last < self.threshold || self.in_flight.load(Ordering::Acquire) {
            return;
        }
        self.since_last = 0;
        self.threshold = next_threshold(self.snap_count, &mut self.rng);
        self.in_flight.store(true, Ordering::Release);
        let image = snapshot::capture(tree);
        let point = SnapshotPoint {
            last_index,
            last_term: 0,
            created_ms: now_ms,
            extra: Vec::new(),
        };
        let dir = self.dir.clone();
        let in_flight = self.in_flight.clone();
        let failed = self.background_failed.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            match snapshot::write_image(&dir, &image, &point) {
                Ok((path, meta)) => info!(
                    file = %path.display(),
                    nodes = meta.node_count,
                    millis = started.elapsed().as_millis() as u64,
                    "snapshot written"
                ),
                // The log still holds everything; a later snapshot retries.
                Err(e) => {
                    warn!(error = %e, "snapshot failed");
                    failed.store(true, Ordering::Release);
                }
            }
            in_flight.store(false, Ordering::Release);
        });
    }

    /// Writes a snapshot now, in the caller's thread (clean shutdown), if
    /// anything was applied since the last one. A background snapshot still
    /// being written covers only what it froze, so it is waited for first;
    /// otherwise the next start would replay everything after it.
    pub fn final_snapshot(&self, tree: &DataTree, last_index: u64, now_ms: i64) {
        while self.in_flight.load(Ordering::Acquire) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let covered = !self.background_failed.load(Ordering::Acquire);
        if self.since_last == 0 && covered {
            return;
        }
        let point = SnapshotPoint {
            last_index,
            last_term: 0,
            created_ms: now_ms,
            extra: Vec::new(),
        };
        match snapshot::write_snapshot(&self.dir, tree, &point) {
            Ok((path, _)) => info!(file = %path.display(), "snapshot written at shutdown"),
            Err(e) => {
                warn!(error = %e, "snapshot at shutdown failed; the log still holds everything")
            }
        }
    }

    /// autopurge: keeps the newest `retain` snapshots and returns the last
    /// index the oldest kept one covers, up to which the log may be purged.
    pub fn purge(&self, retain: usize) -> Option<u64> {
        if self.in_flight.load(Ordering::Acquire) {
            return None;
        }
        match snapshot::purge_snapshots(&self.dir, retain) {
            Ok(removed) => {
                for path in removed {
                    info!(file = %path.display(), "purged old snapshot");
                }
            }
            Err(e) => {
                warn!(error = %e, "purging snapshots failed");
                return None;
            }
        }
        let kept = snapshot::list_snapshots(&self.dir).ok()?;
        // Only purge the log once `retain` snapshots exist: with fewer, the
        // oldest is the only fallback for a damaged newest one.
        if kept.len() < retain {
            return None;
        }
        kept.last().map(|(index, _)| *index)
    }
}

/// Apache's spread: between half of snapCount and all of it.
fn next_threshold(snap_count: u64, rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let half = snap_count / 2;
    half + (*rng % half.max(1))
}

/// Why an Apache dataDir could not be taken over.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "{0} already holds zookeeper-rs data; import only into an empty dataDir and dataLogDir"
    )]
    NotEmpty(PathBuf),
    #[error(transparent)]
    Apache(#[from] crate::storage::apache::ImportError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("writing the imported snapshot: {0}")]
    Snapshot(StorageError),
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What an import took over, for the operator.
#[derive(Debug)]
pub struct ImportReport {
    pub snapshot_written: PathBuf,
    pub apache_snapshot: PathBuf,
    pub log_files: usize,
    pub txns_replayed: u64,
    pub nodes: usize,
    pub sessions: usize,
    pub last_zxid: i64,
    /// Warnings worth showing: skipped Apache snapshots, torn log tails.
    pub notes: Vec<String>,
}

/// Takes over an Apache ZooKeeper dataDir (and dataLogDir): rebuilds its
/// tree, sessions and zxids and writes them as this server's first
/// snapshot, so the next start serves exactly what Apache served and new
/// zxids continue above the imported ones.
pub fn import_apache(
    options: &ServerOptions,
    apache_data_dir: &Path,
    apache_log_dir: Option<&Path>,
) -> Result<ImportReport, ImportError> {
    for dir in [options.data_dir(), options.data_log_dir()] {
        std::fs::create_dir_all(dir).map_err(|source| ImportError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let snap_dir = snapshot_dir(options.data_dir());
    let has_snapshots = snapshot::list_snapshots(&snap_dir)
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    let (journal, _) = Journal::open(options.data_log_dir(), log_options(options))?;
    if has_snapshots || journal.last_index() > 0 {
        return Err(ImportError::NotEmpty(snap_dir));
    }
    drop(journal);
    let state =
        crate::storage::apache::import(apache_data_dir, apache_log_dir, tree_options(options))?;
    let mut notes: Vec<String> = state
        .rejected_snapshots
        .iter()
        .map(|r| format!("skipped damaged Apache snapshot {r}"))
        .collect();
    let apache_logs = apache_log_dir.unwrap_or(apache_data_dir).join("version-2");
    if !holds_apache_logs(&apache_logs) {
        // Apache's snapshots are fuzzy and most transactions live only in
        // its logs: a dataLogDir left out loses them without a trace.
        notes.push(format!(
            "no transaction logs (log.*) in {}: only the snapshot was imported. If the Apache \
             server had a dataLogDir, import again into an empty dataDir with --log-dir <its dataLogDir>",
            apache_logs.display()
        ));
    }
    notes.extend(state.torn_tails.iter().map(|t| {
        format!(
            "ignored a torn record at the end of {} (byte {}): {}",
            t.path.display(),
            t.offset,
            t.detail
        )
    }));
    let point = SnapshotPoint {
        last_index: 0,
        last_term: 0,
        created_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
        extra: Vec::new(),
    };
    let (written, _) =
        snapshot::write_snapshot(&snap_dir, &state.tree, &point).map_err(ImportError::Snapshot)?;
    Ok(ImportReport {
        snapshot_written: written,
        apache_snapshot: state.snapshot.clone(),
        log_files: state.log_files.len(),
        txns_replayed: state.txns_replayed,
        nodes: state.tree.node_count(),
        sessions: state.sessions,
        last_zxid: state.last_zxid,
        notes,
    })
}

/// Whether `dir` holds any file named like an Apache transaction log.
fn holds_apache_logs(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with("log."))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::proto::{Acl, CreateMode};
    use crate::txn::{CreateOp, Txn, TxnOp};

    fn create(path: String) -> Txn {
        Txn {
            session_id: 0,
            cxid: 0,
            time_ms: 1_700_000_000_000,
            auth: Vec::new(),
            op: TxnOp::Create(CreateOp {
                path,
                data: vec![b'x'; 100],
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: 0,
            }),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_during_a_background_snapshot_still_snapshots_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(dir.path().to_path_buf());
        config.snap_count = 2;
        config.client_port = Some(2181);
        let options = ServerOptions::from_config(&config).unwrap();
        std::fs::create_dir_all(snapshot_dir(options.data_dir())).unwrap();
        let mut snapshotter = Snapshotter::new(&options);
        let mut tree = DataTree::new(tree_options(&options));
        // Large enough that writing it takes a while in the background.
        let count = 50_000u64;
        for i in 0..count {
            tree.apply(&create(format!("/n{i}")));
        }
        snapshotter.after_apply(&tree, count, count, 0);
        assert!(snapshotter.in_flight.load(Ordering::Acquire));
        tree.apply(&create("/after".into()));
        snapshotter.after_apply(&tree, 1, count + 1, 0);
        tokio::task::block_in_place(|| snapshotter.final_snapshot(&tree, count + 1, 0));
        let indexes: Vec<u64> = snapshot::list_snapshots(&snapshot_dir(options.data_dir()))
            .unwrap()
            .into_iter()
            .map(|(index, _)| index)
            .collect();
        assert_eq!(indexes, [count + 1, count]);
    }
}
