//! Import from Apache ZooKeeper: rebuilds, from an Apache `dataDir` (and
//! `dataLogDir`), the tree and session table Apache would serve after a
//! restart, so that an operator can migrate a server without its clients
//! noticing: every znode keeps its data, ACL and stat (zxids, times,
//! versions, ephemeral owner), and the zxids continue where Apache's ended.
//!
//! What Apache does on startup, and this module does too:
//!
//! 1. Take the newest `version-2/snapshot.<zxid>` whose seals verify, falling
//!    back to older ones when the newest is damaged (a crash while writing
//!    one leaves it cut short). Unlike Apache, falling back is accepted only
//!    if the logs then reach at least the zxid of every snapshot skipped:
//!    otherwise the import is refused rather than silently older.
//! 2. Replay every logged transaction after the snapshot's zxid, in order,
//!    with Apache's replay rules (see [`replay`]).
//! 3. Delete the ephemerals of sessions that are not in the session table.
//!
//! The logs must hold every transaction after the snapshot: a zxid that does
//! not follow the previous one within an epoch refuses the import. A record
//! that fails verification ends its file's entries if nothing valid follows
//! it (a torn final write; Apache's own behaviour differs here, see
//! [`ImportedState::torn_tails`]); if a valid record follows, the file is
//! damaged and the import is refused, naming the file and byte offset.
//!
//! Compressed snapshots (`.gz`, `.snappy`) are refused with instructions.

mod records;
mod replay;
mod snapshot;
mod txnlog;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::tree::{DataTree, TreeOptions};

use records::decode_entry;
use replay::Replayer;
use snapshot::{Compression, LoadError, SnapshotFile};
use txnlog::End;

/// The directory Apache keeps its files in, inside `dataDir` and `dataLogDir`.
pub const APACHE_VERSION_DIR: &str = "version-2";

const SNAPSHOT_PREFIX: &str = "snapshot";
const LOG_PREFIX: &str = "log";

/// What [`import`] rebuilt.
pub struct ImportedState {
    /// Apache's tree and session table. Its last zxid is Apache's; new
    /// transactions continue above it.
    pub tree: DataTree,
    /// The zxid of the last transaction Apache had logged (or the snapshot's,
    /// if none followed it).
    pub last_zxid: i64,
    /// The snapshot the tree was loaded from.
    pub snapshot: PathBuf,
    /// The log files read, in order.
    pub log_files: Vec<PathBuf>,
    /// Transactions replayed on top of the snapshot.
    pub txns_replayed: u64,
    /// Sessions in the session table.
    pub sessions: usize,
    /// Newer snapshots that could not be used, newest first. Their zxids are
    /// covered by the replayed logs.
    pub rejected_snapshots: Vec<RejectedSnapshot>,
    /// Records that ended a log file's entries because they failed
    /// verification with nothing valid after them: writes cut short by a
    /// crash, never acknowledged. Apache itself stops reading a file at a
    /// cut-short record, but refuses to start if that record's checksum is
    /// wrong; here both end the file's entries.
    pub torn_tails: Vec<TornRecord>,
}

/// A snapshot that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSnapshot {
    /// The snapshot file.
    pub path: PathBuf,
    /// The zxid in its name.
    pub zxid: i64,
    /// Byte offset of the problem.
    pub offset: u64,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for RejectedSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.path.display(),
            self.offset,
            self.reason
        )
    }
}

/// A record at the end of a log file's entries that failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornRecord {
    /// The log file.
    pub path: PathBuf,
    /// Byte offset of the record; the file's entries end there.
    pub offset: u64,
    /// What failed verification.
    pub detail: String,
}

/// Why an import was refused. Every variant about file contents names the
/// file and, where there is one, the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },

    /// A directory given is not an Apache data directory.
    #[error(
        "{dir} has no {APACHE_VERSION_DIR} directory: give the dataDir (and dataLogDir) \
         from Apache ZooKeeper's zoo.cfg"
    )]
    NoVersionDir { dir: PathBuf },

    /// dataDir and dataLogDir differ, yet one holds the other's files.
    #[error(
        "dataDir and dataLogDir are different directories but {dir} holds {what}; Apache \
         ZooKeeper refuses to start from such directories too: check both settings"
    )]
    MisplacedFiles { dir: PathBuf, what: String },

    /// There is nothing to import from.
    #[error("{dir} holds no snapshot.<zxid> file{}", no_snapshot_hint(*.log_files))]
    NoSnapshot { dir: PathBuf, log_files: usize },

    /// Every snapshot is damaged.
    #[error("no snapshot in {dir} is usable: {}", join(rejected))]
    NoUsableSnapshot {
        dir: PathBuf,
        rejected: Vec<RejectedSnapshot>,
    },

    /// The snapshot to load is compressed.
    #[error(
        "{path} is {format}-compressed and import reads only uncompressed snapshots: \
         restart Apache ZooKeeper once without zookeeper.snapshot.compression.method so \
         that it writes an uncompressed snapshot as it starts, stop it, and import again"
    )]
    CompressedSnapshot { path: PathBuf, format: &'static str },

    /// A log record fails verification and a valid one follows it, or a log
    /// file's header is wrong.
    #[error(
        "{path} at byte {offset}: {detail}: the log is damaged; restore it from a backup, \
         or accept losing every transaction after zxid {last_good_zxid:#x}: {remedy}, and \
         import again"
    )]
    DamagedLog {
        path: PathBuf,
        offset: u64,
        detail: String,
        /// The last transaction verified before the damage.
        last_good_zxid: i64,
        /// How to cut the log at the damage.
        remedy: String,
    },

    /// A verified log record holds a transaction that cannot be replayed.
    #[error(
        "{path} at byte {offset}: transaction {} cannot be imported: {detail}",
        zxid_or_unknown(*.zxid)
    )]
    BadTransaction {
        path: PathBuf,
        offset: u64,
        /// `None` if the transaction's header is unreadable.
        zxid: Option<i64>,
        detail: String,
    },

    /// A zxid does not follow the one before it.
    #[error(
        "{path} at byte {offset}: {}{context}",
        gap_detail(*.previous, *.found, .log_dir)
    )]
    Gap {
        path: PathBuf,
        offset: u64,
        previous: i64,
        found: i64,
        log_dir: PathBuf,
        /// Which snapshot the replay started from, and why.
        context: String,
    },

    /// The newest snapshot is damaged and the logs do not reach its zxid.
    #[error(
        "{} is damaged and the transaction logs in {log_dir} end at zxid {logs_end:#x}, \
         before its zxid {:#x}, so importing from the older {fallback} would lose \
         transactions: restore the snapshot or the logs from a backup",
        .newest, .newest.zxid
    )]
    NotCovered {
        newest: RejectedSnapshot,
        fallback: PathBuf,
        log_dir: PathBuf,
        logs_end: i64,
    },
}

fn gap_detail(previous: i64, found: i64, log_dir: &Path) -> String {
    if found > previous {
        format!(
            "transaction {found:#x} follows {previous:#x}, so the transactions in between \
             are missing from {}",
            log_dir.display()
        )
    } else {
        format!(
            "transaction {found:#x} comes after {previous:#x}: the logs in {} are out of \
             order or hold transactions twice",
            log_dir.display()
        )
    }
}

fn zxid_or_unknown(zxid: Option<i64>) -> String {
    zxid.map_or_else(|| "?".to_string(), |z| format!("{z:#x}"))
}

fn no_snapshot_hint(log_files: usize) -> &'static str {
    if log_files > 0 {
        "; it has transaction logs, and Apache ZooKeeper refuses to start from logs \
         without a snapshot too"
    } else {
        ": is this Apache ZooKeeper's dataDir?"
    }
}

fn join(rejected: &[RejectedSnapshot]) -> String {
    rejected
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Rebuilds the state Apache ZooKeeper would serve from its `dataDir` and,
/// if it has a separate one, `dataLogDir` (both as in zoo.cfg, each holding
/// a `version-2` directory). `options` are the tree's settings afterwards;
/// they do not change how Apache's transactions replay.
pub fn import(
    data_dir: &Path,
    data_log_dir: Option<&Path>,
    options: TreeOptions,
) -> Result<ImportedState, ImportError> {
    let snap_dir = version_dir(data_dir)?;
    let log_dir = match data_log_dir {
        Some(dir) => version_dir(dir)?,
        None => snap_dir.clone(),
    };
    let mut snapshots = list_files(&snap_dir, SNAPSHOT_PREFIX)?;
    let mut logs = list_files(&log_dir, LOG_PREFIX)?;
    if !same_dir(&snap_dir, &log_dir) {
        check_not_mixed(&snap_dir, &log_dir)?;
    }
    if snapshots.is_empty() {
        return Err(ImportError::NoSnapshot {
            dir: snap_dir,
            log_files: logs.len(),
        });
    }
    snapshots.sort_by_key(|s| std::cmp::Reverse(s.1));
    logs.sort_by_key(|l| l.1);

    // Transactions replay with Apache's judgement, not ours: quotas Apache did
    // not enforce must not refuse them.
    let replay_options = TreeOptions {
        enforce_quota: false,
        ..options
    };
    let (chosen, mut tree, rejected) = choose_snapshot(&snap_dir, &snapshots, replay_options)?;
    let snap_zxid = chosen.zxid;
    tree.set_last_zxid(snap_zxid);

    // Apache reads from the newest log starting at or before the snapshot.
    let first_log = logs
        .iter()
        .rposition(|(_, zxid)| *zxid <= snap_zxid)
        .unwrap_or(0);
    let context = match rejected.first() {
        None => format!(" (replaying from snapshot {})", chosen.path.display()),
        Some(newest) => format!(
            " (replaying from snapshot {}, because {newest})",
            chosen.path.display()
        ),
    };

    let mut replay = Replay {
        replayer: Replayer::new(&mut tree),
        snap_zxid,
        last_zxid: snap_zxid,
        last_verified: snap_zxid,
        replayed: 0,
        log_dir: &log_dir,
        context,
    };
    let mut log_files = Vec::new();
    let mut torn_tails = Vec::new();
    for (path, _) in logs.get(first_log..).unwrap_or_default() {
        log_files.push(path.clone());
        if let Some(torn) = replay.file(path)? {
            torn_tails.push(torn);
        }
    }
    let last_zxid = replay.last_zxid;
    let txns_replayed = replay.replayed;
    if let Some(newest) = rejected.first() {
        if last_zxid < newest.zxid {
            return Err(ImportError::NotCovered {
                newest: newest.clone(),
                fallback: chosen.path.clone(),
                log_dir,
                logs_end: last_zxid,
            });
        }
    }
    replay.replayer.finish();
    drop(replay);

    tree.finish_restore();
    tree.set_options(options);
    let sessions = tree.sessions().count();
    Ok(ImportedState {
        tree,
        last_zxid,
        snapshot: chosen.path.clone(),
        log_files,
        txns_replayed,
        sessions,
        rejected_snapshots: rejected,
        torn_tails,
    })
}

/// The newest snapshot that loads, the tree loaded from it, and the newer
/// ones rejected (newest first).
fn choose_snapshot(
    snap_dir: &Path,
    snapshots: &[(PathBuf, i64)],
    options: TreeOptions,
) -> Result<(SnapshotFile, DataTree, Vec<RejectedSnapshot>), ImportError> {
    let mut rejected = Vec::new();
    for (path, zxid) in snapshots {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = SnapshotFile {
            path: path.clone(),
            zxid: *zxid,
            compression: snapshot::compression_of(&name),
        };
        let format = match file.compression {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Snappy => Some("snappy"),
        };
        if let Some(format) = format {
            return Err(ImportError::CompressedSnapshot {
                path: path.clone(),
                format,
            });
        }
        let io_error = |source| ImportError::Io {
            path: path.clone(),
            source,
        };
        let damage = match snapshot::has_trailer(path).map_err(io_error)? {
            Some(damage) => damage,
            None => match snapshot::load(path, options) {
                Ok(tree) => return Ok((file, tree, rejected)),
                Err(LoadError::Io(source)) => return Err(io_error(source)),
                Err(LoadError::Damaged(damage)) => damage,
            },
        };
        rejected.push(RejectedSnapshot {
            path: path.clone(),
            zxid: *zxid,
            offset: damage.offset,
            reason: damage.detail,
        });
    }
    Err(ImportError::NoUsableSnapshot {
        dir: snap_dir.to_path_buf(),
        rejected,
    })
}

/// The replay through the log files.
struct Replay<'t, 'd> {
    replayer: Replayer<'t>,
    snap_zxid: i64,
    /// The last transaction applied (the snapshot's zxid before any).
    last_zxid: i64,
    /// The highest zxid of any verified record read so far.
    last_verified: i64,
    replayed: u64,
    log_dir: &'d Path,
    context: String,
}

impl Replay<'_, '_> {
    /// Replays one log file; returns the record that ended it if that record
    /// was torn.
    fn file(&mut self, path: &Path) -> Result<Option<TornRecord>, ImportError> {
        let bytes = fs::File::open(path)
            .and_then(txnlog::read_records)
            .map_err(|source| ImportError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let scan = txnlog::scan(&bytes);
        for (offset, entry) in scan.records {
            let offset = offset as u64;
            let bad = |zxid: Option<i64>, detail: String| ImportError::BadTransaction {
                path: path.to_path_buf(),
                offset,
                zxid,
                detail,
            };
            let (header, txn) = decode_entry(bytes.get(entry).unwrap_or_default())
                .map_err(|e| bad(None, e.to_string()))?;
            self.last_verified = self.last_verified.max(header.zxid);
            if header.zxid <= self.snap_zxid && self.replayed == 0 {
                continue;
            }
            let follows = header.zxid == self.last_zxid.wrapping_add(1)
                || epoch(header.zxid) > epoch(self.last_zxid);
            if !follows {
                return Err(ImportError::Gap {
                    path: path.to_path_buf(),
                    offset,
                    previous: self.last_zxid,
                    found: header.zxid,
                    log_dir: self.log_dir.to_path_buf(),
                    context: self.context.clone(),
                });
            }
            self.replayer
                .replay(&header, &txn)
                .map_err(|e| bad(Some(header.zxid), e.to_string()))?;
            self.last_zxid = header.zxid;
            self.replayed += 1;
        }
        match scan.end {
            End::Clean => Ok(None),
            End::Torn { offset, detail } => Ok(Some(TornRecord {
                path: path.to_path_buf(),
                offset: offset as u64,
                detail,
            })),
            End::BadHeader { detail } => Err(self.damaged(path, 0, detail)),
            End::Corrupt {
                offset,
                detail,
                valid_at,
            } => Err(self.damaged(
                path,
                offset as u64,
                format!("{detail}, and a valid record follows at byte {valid_at}"),
            )),
        }
    }

    fn damaged(&self, path: &Path, offset: u64, detail: String) -> ImportError {
        let cut = if offset <= txnlog::HEADER_BYTES as u64 {
            format!("move {} out of the directory", path.display())
        } else {
            format!(
                "cut the file to {offset} bytes (truncate -s {offset} {})",
                path.display()
            )
        };
        ImportError::DamagedLog {
            path: path.to_path_buf(),
            offset,
            detail,
            last_good_zxid: self.last_verified,
            remedy: format!("{cut} and move every later log.* file out of the directory"),
        }
    }
}

/// The epoch of a zxid: its high 32 bits, which a new leader increments.
fn epoch(zxid: i64) -> i64 {
    zxid >> 32
}

fn version_dir(dir: &Path) -> Result<PathBuf, ImportError> {
    let version_dir = dir.join(APACHE_VERSION_DIR);
    match fs::metadata(&version_dir) {
        Ok(meta) if meta.is_dir() => Ok(version_dir),
        Ok(_) => Err(ImportError::NoVersionDir {
            dir: dir.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ImportError::NoVersionDir {
            dir: dir.to_path_buf(),
        }),
        Err(source) => Err(ImportError::Io {
            path: version_dir,
            source,
        }),
    }
}

/// The files of `dir` Apache takes for `<prefix>.<hex zxid>[...]`, with
/// their zxids.
fn list_files(dir: &Path, prefix: &str) -> Result<Vec<(PathBuf, i64)>, ImportError> {
    let io_error = |source| ImportError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(zxid) = snapshot::zxid_from_name(&name, prefix) else {
            continue;
        };
        if entry.file_type().map_err(io_error)?.is_dir() {
            continue;
        }
        found.push((entry.path(), zxid));
    }
    Ok(found)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Apache's check when dataDir and dataLogDir differ: no logs among the
/// snapshots, no snapshots among the logs.
fn check_not_mixed(snap_dir: &Path, log_dir: &Path) -> Result<(), ImportError> {
    if !list_files(snap_dir, LOG_PREFIX)?.is_empty() {
        return Err(ImportError::MisplacedFiles {
            dir: snap_dir.to_path_buf(),
            what: "transaction logs (log.*)".to_string(),
        });
    }
    if !list_files(log_dir, SNAPSHOT_PREFIX)?.is_empty() {
        return Err(ImportError::MisplacedFiles {
            dir: log_dir.to_path_buf(),
            what: "snapshots (snapshot.*)".to_string(),
        });
    }
    Ok(())
}
