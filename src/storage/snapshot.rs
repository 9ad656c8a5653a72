//! Durable, checksummed snapshots of the replicated state: every znode (path,
//! data, ACL, persisted stat), the session table and the last zxid.
//!
//! Recovery loads the newest snapshot that verifies
//! ([`load_newest_valid`]) and replays the write-ahead log after its
//! `last_index`. The same bytes travel as a stream ([`write_to`],
//! [`read_from`]) when a replica is sent a snapshot.
//!
//! # Taking a snapshot without stopping writes
//!
//! [`capture`] freezes the tree ([`DataTree::freeze`]): the node storage is
//! shared copy-on-write in chunks of 512 nodes, so under the tree's lock it
//! costs a reference count per chunk plus copies of the session table and of
//! the distinct ACL lists (for a million nodes, well under a millisecond).
//! [`write_image`] then serializes and fsyncs outside the lock; meanwhile the
//! first write to each chunk copies that chunk (about 50 KB).
//!
//! # Files
//!
//! `snapshot.<last_index as 16 lowercase hex digits>` in the directory the
//! caller chooses (the server uses `<dataDir>/version-rs-1`). A snapshot is
//! written as `snapshot.X.tmp`, fsynced, renamed, and the directory fsynced,
//! so a crash leaves either no snapshot X or a complete one. Leftover
//! `.tmp` files are removed by [`load_newest_valid`], which runs at start-up.
//!
//! # Layout
//!
//! All integers are little-endian. The header:
//!
//! ```text
//! 0   8  magic "zkrssnap"
//! 8   4  format version (1)
//! 12  4  e: length of the extra bytes (at most 1 MiB)
//! 16  8  last_index: the log index the snapshot includes
//! 24  8  last_term: the term of that entry
//! 32  8  last_zxid
//! 40  8  created_ms
//! 48  8  node count
//! 56  8  session count
//! 64  e  extra: the caller's bytes (the replication layer's membership)
//! 64+e 4 crc32c of bytes 0..64+e
//! ```
//!
//! Then blocks, each holding up to 64 KiB of the record stream:
//!
//! ```text
//! 0   4  n: payload length, 1..=1 MiB (0 marks the trailer instead)
//! 4   4  crc32c over the block's number (u64, counting from 0), n, payload
//! 8   n  payload
//! ```
//!
//! A damaged byte is thus located to within one block, and a block moved,
//! repeated or dropped does not verify. The trailer follows the last block:
//!
//! ```text
//! 0   4  zero
//! 4   4  crc32c of bytes 8..40
//! 8   8  magic "zkrs-end"
//! 16  8  number of blocks
//! 24  8  number of records
//! 32  4  crc32c over the blocks' checksums, in order
//! 36  4  zero
//! ```
//!
//! and the file ends there. The record stream, cut into blocks at any byte,
//! is a sequence of records, each starting with a type byte:
//!
//! ```text
//! session (2):  8 session id | 4 timeout ms
//! ACL list (1): 4 entry count k | k × (4 perms | 4 len, scheme | 4 len, id)
//! node (3):     4 bytes shared with the previous node's path | 4 suffix
//!               length s | 4 ACL list number | 60 persisted stat: czxid,
//!               mzxid, ctime, mtime (8 each), version, cversion, aversion
//!               (4 each), ephemeral owner, pzxid (8 each) | 4 data length d
//!               | s path suffix (UTF-8) | d data
//! ```
//!
//! Sessions come first, then the nodes in pre-order (the root `/` first, a
//! parent before its children, siblings oldest first), so each node's path is
//! its predecessor's truncated to the shared length plus the suffix. ACL
//! lists are numbered from 0 in order of appearance; each is written once,
//! just before the first node that uses it (Apache's ACL cache does the same
//! with `long` references).

mod format;

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use super::StorageError;
use crate::tree::{DataTree, FrozenTree, TreeOptions};

pub use format::{BLOCK_BYTES, MAX_EXTRA_BYTES};

/// Start of a snapshot's file name; the rest is its `last_index` in hex.
pub const FILE_PREFIX: &str = "snapshot.";
/// [`purge_snapshots`] never keeps fewer than this many (Apache's minimum
/// for `autopurge.snapRetainCount`).
pub const MIN_RETAIN: usize = 3;

/// Where in the log a snapshot is taken, and what the caller stores with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotPoint {
    /// The last log index whose transaction the tree includes.
    pub last_index: u64,
    /// The term of that entry (0 when standalone).
    pub last_term: u64,
    /// Wall-clock time of the snapshot, for operators.
    pub created_ms: i64,
    /// Opaque bytes kept with the snapshot (the replication layer's
    /// membership configuration), at most [`MAX_EXTRA_BYTES`].
    pub extra: Vec<u8>,
}

/// What a snapshot's header records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// The last log index the snapshot includes; replay starts after it.
    pub last_index: u64,
    /// The term of that entry.
    pub last_term: u64,
    /// The tree's last zxid.
    pub last_zxid: i64,
    /// When the snapshot was taken (ms since the epoch).
    pub created_ms: i64,
    /// Nodes in the snapshot, the root counted once.
    pub node_count: u64,
    /// Sessions in the snapshot.
    pub session_count: u64,
    /// The caller's bytes from [`SnapshotPoint::extra`].
    pub extra: Vec<u8>,
}

/// Why a snapshot stream could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The bytes fail verification (bad checksum, truncated, malformed).
    #[error("corrupt snapshot at byte {offset}: {detail}")]
    Corrupt {
        /// Byte offset of the damage (the start of the damaged block, header
        /// or trailer, or of the malformed record).
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// [`SnapshotPoint::extra`] is too large.
    #[error("extra bytes of {len} exceed the limit of {max}")]
    ExtraTooLarge {
        /// Bytes offered.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl SnapshotError {
    /// The error as the storage layer reports it, naming the file.
    fn in_file(self, path: &Path) -> StorageError {
        match self {
            SnapshotError::Io(source) => io_error(path, source),
            SnapshotError::Corrupt { offset, detail } => StorageError::Corrupt {
                path: path.to_path_buf(),
                offset,
                detail,
            },
            SnapshotError::ExtraTooLarge { len, max } => StorageError::TooLarge { len, max },
        }
    }
}

/// The newest snapshot that verified, and those skipped on the way to it.
#[derive(Debug)]
pub struct LoadedSnapshot {
    /// `None` if the directory holds no snapshot that verifies: start from
    /// an empty tree and replay the whole log.
    pub newest: Option<ValidSnapshot>,
    /// Newer snapshots that failed, newest first. Their entries must still be
    /// in the log for the replay to reach the same state.
    pub skipped: Vec<SkippedSnapshot>,
}

/// A snapshot loaded into a tree.
pub struct ValidSnapshot {
    pub path: PathBuf,
    pub meta: SnapshotMeta,
    pub tree: DataTree,
}

impl std::fmt::Debug for ValidSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidSnapshot")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// A snapshot that could not be loaded.
#[derive(Debug)]
pub struct SkippedSnapshot {
    pub path: PathBuf,
    /// From the file name.
    pub last_index: u64,
    /// Why it was skipped.
    pub error: StorageError,
}

/// Freezes the tree for [`write_image`]: call it under the tree's lock, which
/// it holds only briefly (see the module documentation).
pub fn capture(tree: &DataTree) -> FrozenTree {
    tree.freeze()
}

/// Writes a snapshot of `image` to `out` (see the module documentation for
/// the layout) and returns its metadata.
pub fn write_to(
    out: impl Write,
    image: &FrozenTree,
    point: &SnapshotPoint,
) -> Result<SnapshotMeta, SnapshotError> {
    format::write(out, image, point)
}

/// Reads a snapshot from `input` into a new tree judged by `options`. The
/// input must end where the snapshot does.
pub fn read_from(
    input: impl Read,
    options: TreeOptions,
) -> Result<(DataTree, SnapshotMeta), SnapshotError> {
    format::read(input, options)
}

/// Writes `image` durably as `dir/snapshot.<last_index>` (replacing one
/// with the same index) and returns the path and metadata. Call it outside
/// the tree's lock. On an error nothing new is left behind, except when
/// only the final directory fsync failed: the complete snapshot is then in
/// place but perhaps not durable, so the log must not be purged on its
/// account.
pub fn write_image(
    dir: &Path,
    image: &FrozenTree,
    point: &SnapshotPoint,
) -> Result<(PathBuf, SnapshotMeta), StorageError> {
    let target = dir.join(file_name(point.last_index));
    let temp = dir.join(format!("{}.tmp", file_name(point.last_index)));
    let written = write_file(&temp, image, point).and_then(|meta| {
        fs::rename(&temp, &target).map_err(|source| io_error(&target, source))?;
        Ok(meta)
    });
    let meta = match written {
        Ok(meta) => meta,
        Err(error) => {
            // Best effort: start-up removes it otherwise.
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
    };
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| io_error(dir, source))?;
    Ok((target, meta))
}

/// Freezes `tree` and writes it as [`write_image`] does. This holds the
/// borrow of `tree` only for the freeze.
pub fn write_snapshot(
    dir: &Path,
    tree: &DataTree,
    point: &SnapshotPoint,
) -> Result<(PathBuf, SnapshotMeta), StorageError> {
    write_image(dir, &capture(tree), point)
}

fn write_file(
    temp: &Path,
    image: &FrozenTree,
    point: &SnapshotPoint,
) -> Result<SnapshotMeta, StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(|source| io_error(temp, source))?;
    let meta = format::write(&file, image, point).map_err(|error| match error {
        SnapshotError::Io(source) if super::io::is_disk_full(&source) => StorageError::DiskFull {
            path: temp.to_path_buf(),
        },
        other => other.in_file(temp),
    })?;
    file.sync_all().map_err(|source| io_error(temp, source))?;
    Ok(meta)
}

/// Reads and verifies a snapshot file.
pub fn read_snapshot(
    path: &Path,
    options: TreeOptions,
) -> Result<(DataTree, SnapshotMeta), StorageError> {
    let file = File::open(path).map_err(|source| io_error(path, source))?;
    format::read(file, options).map_err(|error| error.in_file(path))
}

/// Reads only a snapshot's header (verified by its own checksum).
pub fn read_meta(path: &Path) -> Result<SnapshotMeta, StorageError> {
    let file = File::open(path).map_err(|source| io_error(path, source))?;
    format::read_header(&mut BufReader::new(file)).map_err(|error| error.in_file(path))
}

/// The snapshots in `dir` by file name, newest (highest `last_index`) first.
/// Files being written (`.tmp`) and other names are ignored.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut snapshots = Vec::new();
    for item in fs::read_dir(dir).map_err(|source| io_error(dir, source))? {
        let item = item.map_err(|source| io_error(dir, source))?;
        let name = item.file_name();
        if let Some(last_index) = name.to_str().and_then(parse_file_name) {
            snapshots.push((last_index, item.path()));
        }
    }
    snapshots.sort_unstable_by_key(|&(last_index, _)| std::cmp::Reverse(last_index));
    Ok(snapshots)
}

/// Loads the newest snapshot in `dir` that verifies, trying older ones when
/// one fails (damaged, unreadable, or not matching its name), and reports
/// each it skipped. Removes leftover `.tmp` files, so call it at start-up,
/// before any snapshot is being written. A missing directory holds no
/// snapshots.
pub fn load_newest_valid(dir: &Path, options: TreeOptions) -> Result<LoadedSnapshot, StorageError> {
    let mut loaded = LoadedSnapshot {
        newest: None,
        skipped: Vec::new(),
    };
    if !dir.exists() {
        return Ok(loaded);
    }
    remove_temp_files(dir)?;
    for (last_index, path) in list_snapshots(dir)? {
        match read_snapshot(&path, options) {
            Ok((_, meta)) if meta.last_index != last_index => {
                // Replay and purge go by the name; a file that disagrees
                // with it was renamed or copied and cannot be trusted.
                let error = StorageError::Corrupt {
                    path: path.clone(),
                    offset: 16,
                    detail: format!(
                        "the snapshot covers the log up to index {}, but its name says {last_index}",
                        meta.last_index
                    ),
                };
                loaded.skipped.push(SkippedSnapshot {
                    path,
                    last_index,
                    error,
                });
            }
            Ok((tree, meta)) => {
                loaded.newest = Some(ValidSnapshot { path, meta, tree });
                break;
            }
            Err(error) => loaded.skipped.push(SkippedSnapshot {
                path,
                last_index,
                error,
            }),
        }
    }
    Ok(loaded)
}

/// Deletes all but the newest `retain` snapshots (at least [`MIN_RETAIN`])
/// and returns the deleted paths, oldest first.
pub fn purge_snapshots(dir: &Path, retain: usize) -> Result<Vec<PathBuf>, StorageError> {
    let snapshots = list_snapshots(dir)?;
    let mut deleted = Vec::new();
    for (_, path) in snapshots.into_iter().skip(retain.max(MIN_RETAIN)).rev() {
        fs::remove_file(&path).map_err(|source| io_error(&path, source))?;
        deleted.push(path);
    }
    if !deleted.is_empty() {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| io_error(dir, source))?;
    }
    Ok(deleted)
}

fn remove_temp_files(dir: &Path) -> Result<(), StorageError> {
    for item in fs::read_dir(dir).map_err(|source| io_error(dir, source))? {
        let item = item.map_err(|source| io_error(dir, source))?;
        let name = item.file_name();
        let is_temp = name.to_str().is_some_and(|name| {
            name.strip_suffix(".tmp")
                .and_then(parse_file_name)
                .is_some()
        });
        if is_temp {
            let path = item.path();
            fs::remove_file(&path).map_err(|source| io_error(&path, source))?;
        }
    }
    Ok(())
}

fn file_name(last_index: u64) -> String {
    format!("{FILE_PREFIX}{last_index:016x}")
}

/// The `last_index` of a snapshot file name: exactly 16 lowercase hex digits.
fn parse_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix(FILE_PREFIX)?;
    let well_formed =
        hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn io_error(path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}
