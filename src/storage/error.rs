//! Errors of the log.

use std::path::PathBuf;

/// Result of a log operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What went wrong in the log, classified by what the caller can do next.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O error that changed nothing durable (opening, reading, listing).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The disk (or quota) is full. The failed operation was undone and the
    /// log is consistent: stop accepting writes, keep serving reads, and retry
    /// once space is freed.
    #[error("disk full writing {path}: the write was undone; retry when space is freed")]
    DiskFull {
        /// File being written or preallocated.
        path: PathBuf,
    },

    /// A write or fsync failed: what reached the disk is unknown. The log
    /// refuses all further writes; restart and let recovery re-read the disk.
    #[error(
        "{operation} of {path} failed, so the log's on-disk state is unknown \
         and it accepts no more writes; restart to recover from disk: {source}"
    )]
    StateUnknown {
        /// What was being done ("fdatasync", "write", ...).
        operation: &'static str,
        /// File or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// An earlier [`StorageError::StateUnknown`] stopped this log.
    #[error("the log accepts no more writes after an earlier failure ({reason}); restart to recover from disk")]
    Poisoned {
        /// The earlier failure.
        reason: String,
    },

    /// Data on disk fails verification where a torn write cannot explain it.
    #[error("corrupt data in {path} at byte {offset}: {detail}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage within the file.
        offset: u64,
        /// What is wrong and what the operator can do.
        detail: String,
    },

    /// Appended entries must carry consecutive indexes following the log's last.
    #[error("entry index {got} does not follow the log: expected {expected}")]
    NonConsecutive {
        /// The index the next entry must carry.
        expected: u64,
        /// The index it carried.
        got: u64,
    },

    /// An index outside the entries the log holds.
    #[error("index {index} is outside the log (first {first:?}, last {last:?})")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// First readable index, if any.
        first: Option<u64>,
        /// Last index, if any.
        last: Option<u64>,
    },

    /// A payload larger than [`super::MAX_PAYLOAD_BYTES`] (or a metadata blob
    /// larger than its limit).
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// Options that cannot work.
    #[error("invalid log options: {0}")]
    InvalidOptions(String),
}
