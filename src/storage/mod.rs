//! The durable, segmented write-ahead log.
//!
//! The log stores opaque payloads, each tagged with an `index` (consecutive,
//! gap-free) and a `term` (a Raft term; a standalone server may use 0). It
//! serves two users: a standalone server that appends a batch of transactions
//! and calls [`Log::sync`] once per batch (group commit) before answering the
//! clients, and a Raft log store (vote in [`Log::save_meta`], conflict
//! resolution in [`Log::truncate_after`], compaction in [`Log::purge_through`]).
//!
//! # Directory
//!
//! Everything lives in `<dataLogDir>/version-rs-1/` ([`LOG_DIR_NAME`]), a name
//! Apache ZooKeeper's `version-2` can never collide with:
//!
//! - `log.<first index as 16 lowercase hex digits>`: a segment.
//! - `meta`: the caller's small durable state (the Raft vote).
//! - `purged`: the purge marker, the id of the last entry removed by a purge.
//! - `*.tmp`: a file being prepared; removed at open.
//!
//! # Segment layout
//!
//! All integers are little-endian. A segment starts with a 32-byte header:
//!
//! ```text
//! 0   8  magic "zkrs-wal"
//! 8   4  format version (1)
//! 12  4  zero
//! 16  8  first index (the same as in the file name)
//! 24  4  crc32c of bytes 0..24
//! 28  4  zero
//! ```
//!
//! Records follow back to back from byte 32:
//!
//! ```text
//! 0   4  len: bytes after this 8-byte prefix = 16 + payload length (never 0)
//! 4   4  crc32c, seeded with crc32c(first index of the segment), over
//!        bytes 0..4 (len) and 8..8+len
//! 8   8  index
//! 16  8  term
//! 24  n  payload (at most MAX_PAYLOAD_BYTES)
//! ```
//!
//! Seeding the checksum with the segment's first index means a record copied
//! from (or left over by) another segment never verifies here. A segment is
//! preallocated to [`LogOptions::segment_bytes`] when created, so the bytes
//! after the last record are zero: a zero `len` ends the segment's data. The
//! log keeps that invariant when it truncates (it zeroes what it drops), and
//! writes zeros a stretch ahead of its records so that syncs find the
//! extents already converted (`segment::ZERO_AHEAD`).
//!
//! # Durability rules
//!
//! - A segment is prepared as `log.X.tmp` (allocated, header written and
//!   fsynced), then renamed, then the directory is fsynced; the segment it
//!   replaces as the active one is fsynced first. So every segment but the
//!   last holds complete, durable data, and a torn write can only be at the
//!   tail of the last segment.
//! - At open, a record that fails verification at the tail of the last
//!   segment (nothing after it verifies) is a torn write: it is zeroed, synced
//!   and reported in [`Recovery`]. Anywhere else it is corruption and
//!   [`Log::open`] fails, naming the file and byte offset.
//! - A failed fsync, or a failed write other than a full disk, leaves the
//!   on-disk state unknown: the call returns [`StorageError::StateUnknown`] and
//!   every later write returns [`StorageError::Poisoned`] (fail-stop; restart
//!   and let recovery re-read the disk). A full disk while writing or
//!   preallocating returns [`StorageError::DiskFull`] after undoing the
//!   partial append, and the log stays usable.
//! - Purging writes the `purged` marker durably before deleting segments;
//!   open finishes an interrupted purge. Truncation deletes segments from the
//!   newest, so a crash leaves a prefix of the old log.
//!
//! Memory: the in-memory index holds, per segment, an open file and one `u32`
//! offset per entry; opening reads one segment at a time into memory.

pub mod apache;
mod error;
mod io;
mod log;
mod meta;
mod record;
mod segment;
pub mod snapshot;

#[cfg(test)]
mod tests;

pub use error::{Result, StorageError};
#[cfg(any(test, feature = "failpoints"))]
pub use io::FaultInjector;
pub use log::{Log, LogOptions, Recovery, TornTail};
pub use record::MAX_PAYLOAD_BYTES;

/// Name of the log's directory inside `dataLogDir`.
pub const LOG_DIR_NAME: &str = "version-rs-1";

/// One log entry: an opaque payload at a position (`index`) written in a Raft
/// `term`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log; entries are consecutive.
    pub index: u64,
    /// Raft term of the leader that created the entry (0 when standalone).
    pub term: u64,
    /// The caller's bytes, at most [`MAX_PAYLOAD_BYTES`].
    pub payload: Vec<u8>,
}

/// Identifies an entry by index and term (Raft's log id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryId {
    /// Position in the log.
    pub index: u64,
    /// Term of the entry at that position.
    pub term: u64,
}
