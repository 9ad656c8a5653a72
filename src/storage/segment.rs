//! One segment file: creating it, verifying it at open (and telling a torn
//! tail from corruption), reading entries back, dropping a suffix.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::io::{is_disk_full, read_data_ranges, zero_range, Faults};
use super::log::TornTail;
use super::record::{
    decode_header, encode_header, find_valid_record, probe, salt, Probe, HEADER_BYTES,
    MIN_RECORD_BYTES,
};
use super::Entry;

const NAME_PREFIX: &str = "log.";
const NAME_HEX_DIGITS: usize = 16;

/// A failed write-path operation, before the log decides whether it can be
/// undone (a full disk) or leaves the disk in an unknown state.
#[derive(Debug)]
pub(super) struct Failure {
    pub operation: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
    /// Nothing durable changed, or what did can be undone.
    pub undoable: bool,
}

impl Failure {
    /// A failure that a full disk explains and that changed nothing durable
    /// the caller cannot undo.
    pub(super) fn of_write(operation: &'static str, path: &Path, source: io::Error) -> Self {
        Failure {
            operation,
            undoable: is_disk_full(&source),
            path: path.to_path_buf(),
            source,
        }
    }

    /// A failure after which the state of the disk is unknown.
    pub(super) fn of_sync(operation: &'static str, path: &Path, source: io::Error) -> Self {
        Failure {
            operation,
            undoable: false,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How far past the records a write of records also writes zeros.
///
/// Preallocation reserves a segment's blocks as unwritten extents (cheap to
/// create, and read back as holes so that opening a segment skips them).
/// The first write into an unwritten block converts its extent, and the
/// fdatasync that follows must then also write the file's extent metadata:
/// on ext4 about 170 us an append+fdatasync instead of 100 (11.5 KB
/// appends, this development VM). Writing zeros ahead of the records
/// converts the extents a stretch at a time, so most syncs write data only.
pub(super) const ZERO_AHEAD: u64 = 128 << 10;

/// A segment and its in-memory index.
#[derive(Debug)]
pub(super) struct Segment {
    pub first_index: u64,
    pub path: PathBuf,
    pub file: File,
    /// Byte offset of each record, in index order.
    pub offsets: Vec<u32>,
    /// End of the last record: where the next one goes.
    pub end: u64,
    /// After a failed write, the end of what may have reached the file
    /// (bytes past `end` that are no longer known to be zero); else `end`.
    pub dirty_end: u64,
    /// Bytes from the start that have been written, with records or with
    /// zeros (see [`ZERO_AHEAD`]); never less than `end`.
    pub written: u64,
    /// Allocated length: the segment is full when a record would pass it.
    pub capacity: u64,
    pub salt: u32,
}

/// A segment as found at open.
pub(super) struct Opened {
    pub segment: Segment,
    pub last_term: Option<u64>,
    pub torn_tail: Option<TornTail>,
}

pub(super) fn segment_path(dir: &Path, first_index: u64) -> PathBuf {
    dir.join(format!("{NAME_PREFIX}{first_index:016x}"))
}

/// The first index a segment file name encodes, if `name` is one.
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix(NAME_PREFIX)?;
    // Lowercase only, so that two names can never denote the same index.
    let lowercase_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hex.len() != NAME_HEX_DIGITS || !hex.bytes().all(lowercase_hex) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

impl Segment {
    pub(super) fn entry_count(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// The index the next record of this segment carries.
    pub(super) fn next_index(&self) -> u64 {
        self.first_index.saturating_add(self.entry_count())
    }

    /// Creates a segment for entries from `first_index` on: prepared under a
    /// temporary name (allocated, header written and synced), renamed, and the
    /// directory synced, so a segment's name always comes with a valid header.
    pub(super) fn create(
        faults: &Faults,
        dir: &Path,
        first_index: u64,
        capacity: u64,
    ) -> Result<Segment, Failure> {
        let path = segment_path(dir, first_index);
        let temp = dir.join(format!("{NAME_PREFIX}{first_index:016x}.tmp"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|source| Failure::of_write("create", &temp, source))?;
        let prepared = faults
            .allocate(&file, capacity)
            .map_err(|source| Failure::of_write("preallocation", &temp, source))
            .and_then(|()| {
                faults
                    .write_at(&file, &encode_header(first_index), 0)
                    .map_err(|source| Failure::of_write("write", &temp, source))
            })
            .and_then(|()| {
                faults
                    .sync_data(&file)
                    .map_err(|source| Failure::of_sync("fdatasync", &temp, source))
            })
            .and_then(|()| {
                fs::rename(&temp, &path)
                    .map_err(|source| Failure::of_write("rename", &path, source))
            });
        if let Err(failure) = prepared {
            if failure.undoable {
                // Never named as a segment; open also removes leftover temps.
                let _ = fs::remove_file(&temp);
            }
            return Err(failure);
        }
        faults
            .sync_dir(dir)
            .map_err(|source| Failure::of_sync("fsync", dir, source))?;
        Ok(Segment {
            first_index,
            path,
            file,
            offsets: Vec::new(),
            end: HEADER_BYTES as u64,
            dirty_end: HEADER_BYTES as u64,
            written: HEADER_BYTES as u64,
            capacity,
            salt: salt(first_index),
        })
    }

    /// Opens and verifies an existing segment. The last segment's torn tail is
    /// repaired (zeroed and synced) and reported; any other damage fails.
    pub(super) fn open(
        faults: &Faults,
        path: &Path,
        first_index: u64,
        is_last: bool,
        segment_bytes: u64,
    ) -> Result<Opened> {
        let io_error = |source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_error)?;
        let file_len = file.metadata().map_err(io_error)?.len();
        let corrupt = |offset: u64, detail: String| StorageError::Corrupt {
            path: path.to_path_buf(),
            offset,
            detail,
        };
        let Ok(file_len_usize) = u32::try_from(file_len).map(|len| len as usize) else {
            return Err(corrupt(
                0,
                format!("segment is {file_len} bytes, larger than any this log writes"),
            ));
        };
        let (bytes, zero_from) = read_data_ranges(&file, file_len_usize).map_err(io_error)?;

        let header_first = decode_header(&bytes).map_err(|what| {
            corrupt(
                0,
                format!(
                    "{what}; a segment is named only after its header is synced, so \
                     this is damage, not a torn write. {}",
                    remedy(path, 0, first_index, is_last)
                ),
            )
        })?;
        if header_first != first_index {
            return Err(corrupt(
                16,
                format!(
                    "header names first index {header_first} but the file name says \
                     {first_index}; rename or remove the file"
                ),
            ));
        }

        let scan = scan(&bytes, zero_from, first_index);
        let mut torn_tail = None;
        if let Some(damage) = scan.damage {
            let next_index = first_index.saturating_add(scan.offsets.len() as u64);
            let why = match damage.valid_after {
                _ if !is_last => " in a segment that later segments follow, so it cannot \
                                  be a torn final write"
                    .to_string(),
                Some(valid) if valid == damage.offset => {
                    ", yet the record verifies, so it is not a torn write".to_string()
                }
                Some(valid) => format!(
                    ", and a valid record follows at byte {valid}, so it is not a torn \
                     final write"
                ),
                None => String::new(),
            };
            if !why.is_empty() {
                return Err(corrupt(
                    damage.offset as u64,
                    format!(
                        "{}{why}. {}",
                        damage.detail,
                        remedy(path, damage.offset as u64, next_index, is_last)
                    ),
                ));
            }
            // A torn final write: nothing after it verifies, so nothing after
            // it was ever acknowledged.
            let from = damage.offset as u64;
            let to = damage.garbage_end as u64;
            zero_range(&file, from, to)
                .and_then(|()| faults.sync_data(&file))
                .map_err(io_error)?;
            torn_tail = Some(TornTail {
                path: path.to_path_buf(),
                offset: from,
                bytes_dropped: to - from,
                detail: damage.detail,
            });
        }

        let mut capacity = file_len;
        if is_last && capacity < segment_bytes {
            // A full disk here is not fatal: reads work, and appends will
            // report it when they run out of room.
            match faults.allocate(&file, segment_bytes) {
                Ok(()) => capacity = segment_bytes,
                Err(error) if is_disk_full(&error) => {}
                Err(error) => return Err(io_error(error)),
            }
        }
        let end = scan.end as u64;
        Ok(Opened {
            segment: Segment {
                first_index,
                path: path.to_path_buf(),
                file,
                offsets: scan.offsets,
                end,
                dirty_end: end,
                written: end,
                capacity,
                salt: salt(first_index),
            },
            last_term: scan.last_term,
            torn_tail,
        })
    }

    /// Appends entries `from..=to` (all in this segment) to `out`, verifying
    /// each record again.
    pub(super) fn read(&self, from: u64, to: u64, out: &mut Vec<Entry>) -> Result<()> {
        let out_of_range = |index| StorageError::OutOfRange {
            index,
            first: Some(self.first_index),
            last: self.next_index().checked_sub(1),
        };
        let position = |index: u64| {
            index
                .checked_sub(self.first_index)
                .and_then(|n| usize::try_from(n).ok())
        };
        let start = position(from)
            .and_then(|n| self.offsets.get(n))
            .ok_or_else(|| out_of_range(from))?;
        let last = position(to).ok_or_else(|| out_of_range(to))?;
        let stop = match self.offsets.get(last.saturating_add(1)) {
            Some(offset) => u64::from(*offset),
            None if last < self.offsets.len() => self.end,
            None => return Err(out_of_range(to)),
        };
        let start = u64::from(*start);
        let mut bytes = vec![0u8; stop.saturating_sub(start) as usize];
        self.file
            .read_exact_at(&mut bytes, start)
            .map_err(|source| StorageError::Io {
                path: self.path.clone(),
                source,
            })?;
        let mut pos = 0usize;
        for index in from..=to {
            let record = match probe(bytes.get(pos..).unwrap_or_default(), self.salt) {
                Probe::Record(record) if record.index == index => record,
                Probe::Record(record) => {
                    return Err(self.damaged_on_read(
                        start + pos as u64,
                        format!(
                            "record carries index {} where {index} belongs",
                            record.index
                        ),
                    ))
                }
                Probe::End => {
                    return Err(self.damaged_on_read(start + pos as u64, "zeros".to_string()))
                }
                Probe::Invalid(what) => return Err(self.damaged_on_read(start + pos as u64, what)),
            };
            out.push(Entry {
                index,
                term: record.term,
                payload: record.payload.to_vec(),
            });
            pos += record.size;
        }
        Ok(())
    }

    fn damaged_on_read(&self, offset: u64, what: String) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            offset,
            detail: format!(
                "{what} where a record verified when it was written or opened: the \
                 disk changed it since. Restore the data from a backup or a healthy replica"
            ),
        }
    }

    /// The term of the entry at `index`.
    pub(super) fn term_at(&self, index: u64) -> Result<u64> {
        let mut one = Vec::with_capacity(1);
        self.read(index, index, &mut one)?;
        Ok(one.first().map_or(0, |entry| entry.term))
    }

    /// Keeps the first `keep` entries and zeroes the bytes after them, so no
    /// dropped record can verify again. Not synced.
    pub(super) fn drop_entries_from(&mut self, keep: usize) -> io::Result<()> {
        let new_end = self
            .offsets
            .get(keep)
            .map_or(self.end, |offset| u64::from(*offset));
        zero_range(&self.file, new_end, self.dirty_end.max(self.end))?;
        self.offsets.truncate(keep);
        self.end = new_end;
        self.dirty_end = new_end;
        Ok(())
    }
}

/// What the operator can do about damage at `offset` of `path`.
fn remedy(path: &Path, offset: u64, first_lost: u64, is_last: bool) -> String {
    let later = if is_last {
        ""
    } else {
        " and move every later log.* file out of the directory"
    };
    let cut = if offset <= HEADER_BYTES as u64 {
        "move this file out of the directory".to_string()
    } else {
        format!(
            "cut this file to {offset} bytes (truncate -s {offset} {})",
            path.display()
        )
    };
    format!(
        "Restore this server's data from a backup or a healthy replica; or, \
         accepting the loss of every entry from index {first_lost} on, {cut}{later} \
         and restart"
    )
}

/// The outcome of reading a segment's records.
struct Scan {
    offsets: Vec<u32>,
    /// End of the last valid record.
    end: usize,
    last_term: Option<u64>,
    damage: Option<Damage>,
}

/// The first place where the data stops being valid records followed by zeros.
struct Damage {
    offset: usize,
    detail: String,
    /// One past the last nonzero byte from `offset` on.
    garbage_end: usize,
    /// A later record that verifies (the damaged one itself if it verifies
    /// but is out of place): proof that this is not a torn tail.
    valid_after: Option<usize>,
}

/// One past the last nonzero byte of `bytes[from..zero_from]`, or `from`.
/// Bytes from `zero_from` on are known to be zero and are not looked at.
fn nonzero_end(bytes: &[u8], from: usize, zero_from: usize) -> usize {
    bytes
        .get(from..zero_from.max(from))
        .and_then(|written| written.iter().rposition(|b| *b != 0))
        .map_or(from, |last| from + last + 1)
}

/// Reads records from just after the header of `bytes` (a whole segment whose
/// header verified and whose length fits in a `u32`, zero from `zero_from`
/// on).
fn scan(bytes: &[u8], zero_from: usize, first_index: u64) -> Scan {
    let salt = salt(first_index);
    let mut offsets = Vec::new();
    let mut last_term = None;
    let mut pos = HEADER_BYTES;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let expected = first_index.saturating_add(offsets.len() as u64);
        let (detail, valid_after) = match probe(rest, salt) {
            Probe::Record(record) if record.index == expected => {
                // Fits: the whole segment is at most u32::MAX bytes.
                offsets.push(pos as u32);
                last_term = Some(record.term);
                pos += record.size;
                continue;
            }
            Probe::Record(record) => (
                format!(
                    "record carries index {} where {expected} belongs",
                    record.index
                ),
                Some(pos),
            ),
            Probe::End if nonzero_end(bytes, pos, zero_from) == pos => {
                return Scan {
                    offsets,
                    end: pos,
                    last_term,
                    damage: None,
                }
            }
            Probe::End => (
                "nonzero bytes follow the end of the records, where the segment \
                 should hold zeros"
                    .to_string(),
                None,
            ),
            Probe::Invalid(what) => (what, None),
        };
        let garbage_end = nonzero_end(bytes, pos, zero_from);
        let valid_after = valid_after.or_else(|| {
            let max_index = expected.saturating_add((rest.len() / MIN_RECORD_BYTES) as u64);
            // A record starts with a nonzero length, so none starts in the
            // zeros past the last nonzero byte.
            let candidates = rest.get(1..).unwrap_or_default();
            let starts_before = (garbage_end - pos).saturating_sub(1);
            find_valid_record(candidates, salt, expected..=max_index, starts_before)
                .map(|found| pos + 1 + found)
        });
        return Scan {
            offsets,
            end: pos,
            last_term,
            damage: Some(Damage {
                offset: pos,
                detail,
                garbage_end,
                valid_after,
            }),
        };
    }
}
