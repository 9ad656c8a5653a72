//! The log: segments in index order, appends with group commit, reads,
//! suffix truncation, prefix purge and the metadata file.

use std::collections::VecDeque;
use std::fs;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::io::Faults;
use super::meta::{self, META_FILE, META_MAGIC};
use super::record::{encode_record, encoded_len, HEADER_BYTES, MAX_PAYLOAD_BYTES};
use super::segment::{parse_segment_name, Failure, Segment, ZERO_AHEAD};
use super::{Entry, EntryId, LOG_DIR_NAME};

/// Default segment size, Apache ZooKeeper's default `preAllocSize`.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
const MIN_SEGMENT_BYTES: u64 = 1 << 10;
const MAX_SEGMENT_BYTES: u64 = 1 << 30;

// Record offsets are kept as u32: the largest segment, holding one maximal
// record past its preallocated size, must fit.
const _: () = assert!(
    MAX_SEGMENT_BYTES + HEADER_BYTES as u64 + MAX_PAYLOAD_BYTES as u64 + 64 <= u32::MAX as u64
);

/// How the log writes.
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Bytes preallocated per segment (Apache's `preAllocSize`); a segment is
    /// sealed and a new one started when the next record would not fit.
    pub segment_bytes: u64,
    /// When false, [`Log::sync`] does nothing (Apache's `forceSync=no`):
    /// acknowledged writes can be lost if the machine (not just the process)
    /// crashes. Segment rotation, truncation, purge and metadata still sync.
    pub force_sync: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            force_sync: true,
        }
    }
}

impl LogOptions {
    fn validate(&self) -> Result<()> {
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return Err(StorageError::InvalidOptions(format!(
                "segment size {} bytes is outside {MIN_SEGMENT_BYTES}..={MAX_SEGMENT_BYTES}",
                self.segment_bytes
            )));
        }
        Ok(())
    }
}

/// What [`Log::open`] found and repaired.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// The log's directory (`<dataLogDir>/version-rs-1`).
    pub dir: PathBuf,
    /// Segments in use after recovery.
    pub segments: usize,
    /// First readable index, if any.
    pub first_index: Option<u64>,
    /// Last index, if any.
    pub last_index: Option<u64>,
    /// A torn final write that was dropped; worth a warning in the server log.
    pub torn_tail: Option<TornTail>,
    /// Segments deleted to finish a purge that a crash interrupted.
    pub purged_segments_removed: usize,
}

/// A torn write dropped from the end of the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Where the valid records ended.
    pub offset: u64,
    /// Bytes zeroed from `offset` on.
    pub bytes_dropped: u64,
    /// What the first invalid bytes looked like.
    pub detail: String,
}

/// The write-ahead log. Not internally synchronised: one owner appends and
/// syncs (the group-commit loop); readers go through that owner.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    options: LogOptions,
    /// Oldest first; only the last one (the active segment) is written.
    segments: VecDeque<Segment>,
    /// Entries up to and including this one are gone (see `purge_through`).
    purged: Option<EntryId>,
    /// Term of the last entry, when there is one.
    last_term: Option<u64>,
    /// Whether the active segment has writes not yet fdatasynced.
    unsynced: bool,
    /// Set by a failure that leaves the disk in an unknown state.
    poisoned: Option<String>,
    faults: Faults,
}

/// Where an append started, to undo it after a full disk.
struct AppendStart {
    segments: usize,
    entries_in_active: usize,
}

impl Log {
    /// Opens (creating if needed) the log in `<data_log_dir>/version-rs-1`,
    /// verifies every record, repairs a torn tail of the last segment and
    /// finishes an interrupted purge. Fails on any other damage, naming the
    /// file and byte offset.
    pub fn open(data_log_dir: &Path, options: LogOptions) -> Result<(Log, Recovery)> {
        options.validate()?;
        let faults = Faults::default();
        let dir = data_log_dir.join(LOG_DIR_NAME);
        ensure_dir(&faults, data_log_dir, &dir)?;
        let mut names = list_segments(&dir)?;
        let purged = meta::read_purged(&dir)?;
        let mut recovery = Recovery {
            dir: dir.clone(),
            ..Recovery::default()
        };

        // Finish a purge: a segment whose successor starts at or before the
        // first kept index holds only purged entries.
        let first_kept = purged.map(|p| p.index.saturating_add(1));
        while let (Some(bound), Some(next)) = (first_kept, names.get(1)) {
            if next.0 > bound {
                break;
            }
            let (_, path) = names.remove(0);
            fs::remove_file(&path).map_err(|source| StorageError::Io { path, source })?;
            recovery.purged_segments_removed += 1;
        }

        let mut segments: VecDeque<Segment> = VecDeque::with_capacity(names.len());
        let mut last_term = None;
        let count = names.len();
        for (position, (first_index, path)) in names.into_iter().enumerate() {
            if let Some(previous) = segments.back() {
                check_continuity(previous, first_index, &path)?;
            }
            let is_last = position + 1 == count;
            let opened =
                Segment::open(&faults, &path, first_index, is_last, options.segment_bytes)?;
            if opened.last_term.is_some() {
                last_term = opened.last_term;
            }
            if opened.torn_tail.is_some() {
                recovery.torn_tail = opened.torn_tail;
            }
            segments.push_back(opened.segment);
        }
        if let (Some(bound), Some(last)) = (first_kept, segments.back()) {
            if last.next_index() <= bound {
                for segment in segments.drain(..) {
                    fs::remove_file(&segment.path).map_err(|source| StorageError::Io {
                        path: segment.path.clone(),
                        source,
                    })?;
                    recovery.purged_segments_removed += 1;
                }
                last_term = None;
            }
        }
        if recovery.purged_segments_removed > 0 {
            faults.sync_dir(&dir).map_err(|source| StorageError::Io {
                path: dir.clone(),
                source,
            })?;
        }

        let log = Log {
            dir,
            options,
            segments,
            purged,
            last_term,
            unsynced: false,
            poisoned: None,
            faults,
        };
        recovery.segments = log.segments.len();
        recovery.first_index = log.first_index();
        recovery.last_index = log.last_index();
        Ok((log, recovery))
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The fault injector this log's file operations consult.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn fault_injector(&self) -> std::sync::Arc<super::FaultInjector> {
        std::sync::Arc::clone(&self.faults.injector)
    }

    /// First readable index, if the log holds entries.
    pub fn first_index(&self) -> Option<u64> {
        let last = self.last_index()?;
        let stored = self.segments.front()?.first_index;
        let first = match self.purged {
            Some(purged) => stored.max(purged.index.saturating_add(1)),
            None => stored,
        };
        (first <= last).then_some(first)
    }

    /// Last index, if the log holds entries.
    pub fn last_index(&self) -> Option<u64> {
        let last = self.segments.back()?.next_index().checked_sub(1)?;
        let stored = self.segments.front()?.first_index;
        let visible = self.purged.map_or(true, |purged| last > purged.index);
        (last >= stored && visible).then_some(last)
    }

    /// Term of the last entry, if the log holds entries.
    pub fn last_entry_term(&self) -> Option<u64> {
        self.last_index().and(self.last_term)
    }

    /// The last entry removed by a purge (Raft's `last_purged_log_id`).
    pub fn last_purged(&self) -> Option<EntryId> {
        self.purged
    }

    /// The index the next appended entry must carry; `None` for a new log,
    /// which accepts any first index.
    pub fn next_index(&self) -> Option<u64> {
        match self.segments.back() {
            Some(active) => Some(active.next_index()),
            None => self.purged.map(|purged| purged.index.saturating_add(1)),
        }
    }

    /// Appends `entries` (consecutive indexes, the first one equal to
    /// [`Log::next_index`]) without syncing: they are readable at once and
    /// durable after the next [`Log::sync`]. On [`StorageError::DiskFull`]
    /// none of them is in the log. Memory: the batch is encoded into one
    /// buffer per segment it touches.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.check_writable()?;
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut expected = self.next_index().unwrap_or(first.index);
        for entry in entries {
            if entry.index != expected {
                return Err(StorageError::NonConsecutive {
                    expected,
                    got: entry.index,
                });
            }
            if entry.payload.len() > MAX_PAYLOAD_BYTES {
                return Err(StorageError::TooLarge {
                    len: entry.payload.len(),
                    max: MAX_PAYLOAD_BYTES,
                });
            }
            // u64::MAX stays unused so that `next_index` always exists.
            expected = entry.index.checked_add(1).ok_or(StorageError::OutOfRange {
                index: entry.index,
                first: self.first_index(),
                last: self.last_index(),
            })?;
        }
        let start = AppendStart {
            segments: self.segments.len(),
            entries_in_active: self.segments.back().map_or(0, |s| s.offsets.len()),
        };
        match self.write_entries(entries) {
            Ok(()) => {
                self.last_term = entries.last().map(|entry| entry.term);
                self.unsynced = true;
                Ok(())
            }
            Err(failure) if failure.undoable => self.undo_append(start, failure),
            Err(failure) => Err(self.poison(failure)),
        }
    }

    /// Makes every appended entry durable: one fdatasync of the active
    /// segment (sealed segments were synced when sealed). A no-op when
    /// `force_sync` is off or nothing was appended since the last sync.
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        if !self.options.force_sync || !self.unsynced {
            return Ok(());
        }
        if let Some(active) = self.segments.back() {
            if let Err(source) = self.faults.sync_data(&active.file) {
                let failure = Failure::of_sync("fdatasync", &active.path.clone(), source);
                return Err(self.poison(failure));
            }
        }
        self.unsynced = false;
        Ok(())
    }

    /// Entries `range` (inclusive), which must lie within
    /// [`Log::first_index`]..=[`Log::last_index`]. Every record is verified
    /// again as it is read. The caller bounds the range to bound memory.
    pub fn entries(&self, range: RangeInclusive<u64>) -> Result<Vec<Entry>> {
        let (from, to) = range.into_inner();
        if from > to {
            return Ok(Vec::new());
        }
        self.check_readable(from)?;
        self.check_readable(to)?;
        let mut out = Vec::new();
        let mut position = self
            .segment_holding(from)
            .ok_or_else(|| self.out_of_range(from))?;
        let mut index = from;
        loop {
            let segment = self
                .segments
                .get(position)
                .ok_or_else(|| self.out_of_range(index))?;
            let upto = to.min(segment.next_index().saturating_sub(1));
            if upto < index {
                return Err(self.out_of_range(index));
            }
            segment.read(index, upto, &mut out)?;
            if upto == to {
                return Ok(out);
            }
            index = upto + 1;
            position += 1;
        }
    }

    /// The term of the entry at `index` (also answers for the last purged
    /// entry, whose term the purge marker keeps).
    pub fn term(&self, index: u64) -> Result<u64> {
        if let Some(purged) = self.purged.filter(|purged| purged.index == index) {
            return Ok(purged.term);
        }
        self.check_readable(index)?;
        let position = self
            .segment_holding(index)
            .ok_or_else(|| self.out_of_range(index))?;
        match self.segments.get(position) {
            Some(segment) => segment.term_at(index),
            None => Err(self.out_of_range(index)),
        }
    }

    /// Removes every entry after `index` (Raft conflict resolution), durably:
    /// synced before it returns.
    pub fn truncate_after(&mut self, index: u64) -> Result<()> {
        match index.checked_add(1) {
            Some(since) => self.truncate_from(since),
            None => Ok(()),
        }
    }

    /// Removes every entry from `since` on (openraft's `truncate(since)`),
    /// durably. `since` may not reach below [`Log::first_index`].
    pub fn truncate_from(&mut self, since: u64) -> Result<()> {
        self.check_writable()?;
        let (Some(first), Some(last)) = (self.first_index(), self.last_index()) else {
            return Ok(());
        };
        if since > last {
            return Ok(());
        }
        if since < first {
            return Err(self.out_of_range(since));
        }
        // Newest first, so that a crash leaves a prefix of the old log.
        let mut removed_any = false;
        while let Some(newest) = self.segments.back() {
            if newest.first_index <= since {
                break;
            }
            let path = newest.path.clone();
            self.segments.pop_back();
            if let Err(source) = fs::remove_file(&path) {
                return Err(self.poison(Failure::of_sync("remove", &path, source)));
            }
            removed_any = true;
        }
        if removed_any {
            if let Err(source) = self.faults.sync_dir(&self.dir) {
                let dir = self.dir.clone();
                return Err(self.poison(Failure::of_sync("fsync", &dir, source)));
            }
        }
        if let Some(active) = self.segments.back_mut() {
            // Within the segment, since `first_index <= since <= last`.
            let keep = (since - active.first_index) as usize;
            let path = active.path.clone();
            let dropped = active.drop_entries_from(keep);
            let synced = dropped.and_then(|()| self.faults.sync_data(&active.file));
            if let Err(source) = synced {
                return Err(self.poison(Failure::of_sync("truncate", &path, source)));
            }
        }
        self.unsynced = false;
        self.last_term = match since.checked_sub(1) {
            Some(previous) if since > first => Some(self.term(previous)?),
            _ => None,
        };
        Ok(())
    }

    /// Purges every entry before `index` (after a snapshot that covers them):
    /// they stop being readable, and segments holding only such entries are
    /// deleted. `index - 1` must be in the log; to purge past the end (a
    /// snapshot installed from a leader) use [`Log::purge_through`].
    pub fn purge_before(&mut self, index: u64) -> Result<()> {
        let Some(last_purged) = index.checked_sub(1) else {
            return Ok(());
        };
        if self.first_index().map_or(true, |first| index <= first) {
            return Ok(());
        }
        let term = self.term(last_purged)?;
        self.purge_through(EntryId {
            index: last_purged,
            term,
        })
    }

    /// Purges every entry up to and including `last_purged`, which may lie
    /// past the end of the log (the log then restarts at the next index).
    /// The purge marker is written durably before any segment is deleted, so
    /// a crash can neither resurrect purged entries nor lose kept ones.
    pub fn purge_through(&mut self, last_purged: EntryId) -> Result<()> {
        self.check_writable()?;
        if self
            .purged
            .is_some_and(|purged| purged.index >= last_purged.index)
        {
            return Ok(());
        }
        if let Err(error) = meta::write_purged(&self.faults, &self.dir, last_purged) {
            return Err(self.note(error));
        }
        self.purged = Some(last_purged);
        let first_kept = last_purged.index.saturating_add(1);
        let mut removed_any = false;
        loop {
            let fully_purged = match (self.segments.front(), self.segments.get(1)) {
                (Some(_), Some(next)) => next.first_index <= first_kept,
                (Some(only), None) => only.next_index() <= first_kept,
                _ => false,
            };
            if !fully_purged {
                break;
            }
            let Some(oldest) = self.segments.pop_front() else {
                break;
            };
            if let Err(source) = fs::remove_file(&oldest.path) {
                return Err(self.poison(Failure::of_sync("remove", &oldest.path, source)));
            }
            removed_any = true;
        }
        if removed_any {
            if let Err(source) = self.faults.sync_dir(&self.dir) {
                let dir = self.dir.clone();
                return Err(self.poison(Failure::of_sync("fsync", &dir, source)));
            }
        }
        if self.segments.is_empty() {
            self.unsynced = false;
        }
        Ok(())
    }

    /// Replaces the metadata blob (at most 1 MiB; e.g. the Raft vote)
    /// atomically and durably.
    pub fn save_meta(&mut self, bytes: &[u8]) -> Result<()> {
        self.check_writable()?;
        meta::write(&self.faults, &self.dir, META_FILE, META_MAGIC, bytes)
            .map_err(|error| self.note(error))
    }

    /// The metadata blob last saved, if any; an error if it fails verification.
    pub fn load_meta(&self) -> Result<Option<Vec<u8>>> {
        meta::read(&self.dir, META_FILE, META_MAGIC)
    }

    fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(StorageError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_readable(&self, index: u64) -> Result<()> {
        match (self.first_index(), self.last_index()) {
            (Some(first), Some(last)) if (first..=last).contains(&index) => Ok(()),
            _ => Err(self.out_of_range(index)),
        }
    }

    fn out_of_range(&self, index: u64) -> StorageError {
        StorageError::OutOfRange {
            index,
            first: self.first_index(),
            last: self.last_index(),
        }
    }

    /// Position in `segments` of the segment whose range covers `index`.
    fn segment_holding(&self, index: u64) -> Option<usize> {
        self.segments
            .partition_point(|segment| segment.first_index <= index)
            .checked_sub(1)
    }

    /// Encodes and writes `entries`, sealing full segments and starting new
    /// ones as needed. Validation already passed.
    fn write_entries(&mut self, entries: &[Entry]) -> Result<(), Failure> {
        let mut buf = Vec::new();
        let mut offsets = Vec::new();
        for entry in entries {
            let size = encoded_len(entry.payload.len()) as u64;
            let full = self.segments.back().map_or(true, |active| {
                let has_records = !active.offsets.is_empty() || !offsets.is_empty();
                has_records && active.end + buf.len() as u64 + size > active.capacity
            });
            if full {
                self.flush(&mut buf, &mut offsets)?;
                self.start_segment(entry.index, size)?;
            }
            let Some(active) = self.segments.back() else {
                return Err(internal("no active segment after starting one"));
            };
            let offset = u32::try_from(active.end + buf.len() as u64)
                .map_err(|_| internal("record offset beyond 4 GiB"))?;
            offsets.push(offset);
            encode_record(&mut buf, active.salt, entry);
        }
        self.flush(&mut buf, &mut offsets)
    }

    /// Writes `buf` (records starting at `offsets`) at the end of the active
    /// segment.
    fn flush(&mut self, buf: &mut Vec<u8>, offsets: &mut Vec<u32>) -> Result<(), Failure> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some(active) = self.segments.back_mut() else {
            return Err(internal("records encoded without an active segment"));
        };
        let end = active.end + buf.len() as u64;
        active.dirty_end = active.dirty_end.max(end);
        // Zeros change nothing a reader sees: the bytes past the records
        // read as zeros either way (see `ZERO_AHEAD`).
        let written = if end > active.written && end < active.capacity {
            let through = (end + ZERO_AHEAD).min(active.capacity);
            buf.resize(buf.len() + (through - end) as usize, 0);
            through
        } else {
            active.written.max(end)
        };
        self.faults
            .write_at(&active.file, buf, active.end)
            .map_err(|source| Failure::of_write("write", &active.path, source))?;
        active.offsets.append(offsets);
        active.end = end;
        active.written = written;
        buf.clear();
        Ok(())
    }

    /// Seals the active segment and starts one at `first_index`, big enough
    /// for a first record of `first_record` bytes.
    fn start_segment(&mut self, first_index: u64, first_record: u64) -> Result<(), Failure> {
        if let Some(active) = self.segments.back() {
            // Only the last segment may end in a torn write, so a segment is
            // complete on disk before a later one exists.
            self.faults
                .sync_data(&active.file)
                .map_err(|source| Failure::of_sync("fdatasync", &active.path, source))?;
        }
        let capacity = self
            .options
            .segment_bytes
            .max(HEADER_BYTES as u64 + first_record);
        let segment = Segment::create(&self.faults, &self.dir, first_index, capacity)?;
        self.segments.push_back(segment);
        Ok(())
    }

    /// Undoes a partial append after a full disk: deletes the segments it
    /// started (newest first) and zeroes what it wrote into the segment that
    /// was active, so the log is exactly as before.
    fn undo_append(&mut self, start: AppendStart, failure: Failure) -> Result<()> {
        let mut removed_any = false;
        while self.segments.len() > start.segments {
            let Some(started) = self.segments.pop_back() else {
                break;
            };
            if let Err(source) = fs::remove_file(&started.path) {
                return Err(self.poison(Failure::of_sync("remove", &started.path, source)));
            }
            removed_any = true;
        }
        if removed_any {
            if let Err(source) = self.faults.sync_dir(&self.dir) {
                let dir = self.dir.clone();
                return Err(self.poison(Failure::of_sync("fsync", &dir, source)));
            }
        }
        if let Some(active) = self.segments.back_mut() {
            let path = active.path.clone();
            let restored = active
                .drop_entries_from(start.entries_in_active)
                .and_then(|()| self.faults.sync_data(&active.file));
            if let Err(source) = restored {
                return Err(self.poison(Failure::of_sync(
                    "undo of a partial append",
                    &path,
                    source,
                )));
            }
        }
        Err(StorageError::DiskFull { path: failure.path })
    }

    /// Records a failure after which the disk's state is unknown and stops
    /// all further writes.
    fn poison(&mut self, failure: Failure) -> StorageError {
        self.poisoned.get_or_insert_with(|| {
            format!(
                "{} of {} failed: {}",
                failure.operation,
                failure.path.display(),
                failure.source
            )
        });
        StorageError::StateUnknown {
            operation: failure.operation,
            path: failure.path,
            source: failure.source,
        }
    }

    /// Stops further writes if `error` left the disk in an unknown state.
    fn note(&mut self, error: StorageError) -> StorageError {
        if let StorageError::StateUnknown {
            operation,
            path,
            source,
        } = &error
        {
            self.poisoned.get_or_insert_with(|| {
                format!("{operation} of {} failed: {source}", path.display())
            });
        }
        error
    }
}

fn internal(what: &str) -> Failure {
    Failure {
        operation: "append",
        path: PathBuf::new(),
        source: std::io::Error::other(what.to_string()),
        undoable: false,
    }
}

/// Creates the log directory if needed, durably (the parent is fsynced so the
/// new directory entry survives a crash).
fn ensure_dir(faults: &Faults, parent: &Path, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|source| StorageError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    faults.sync_dir(parent).map_err(|source| StorageError::Io {
        path: parent.to_path_buf(),
        source,
    })
}

/// Segment files sorted by first index; removes leftover `*.tmp` files of
/// interrupted segment creations and metadata writes.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let io_error = |source| StorageError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut segments = Vec::new();
    for item in fs::read_dir(dir).map_err(io_error)? {
        let item = item.map_err(io_error)?;
        let name = item.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let path = item.path();
        if name.ends_with(".tmp") {
            fs::remove_file(&path).map_err(|source| StorageError::Io { path, source })?;
        } else if let Some(first_index) = parse_segment_name(name) {
            segments.push((first_index, path));
        }
    }
    segments.sort_unstable_by_key(|(first_index, _)| *first_index);
    Ok(segments)
}

fn check_continuity(previous: &Segment, first_index: u64, path: &Path) -> Result<()> {
    if previous.next_index() == first_index {
        return Ok(());
    }
    Err(StorageError::Corrupt {
        path: previous.path.clone(),
        offset: previous.end,
        detail: format!(
            "the segment's records end before index {}, but the next segment {} starts \
             at index {first_index}: entries are missing or duplicated. Restore this \
             server's data from a backup or a healthy replica",
            previous.next_index(),
            path.display()
        ),
    })
}

#[cfg(test)]
impl Log {
    /// Each segment's path, record offsets and end of data, for tests that
    /// damage files at precise places.
    pub(super) fn layout(&self) -> Vec<(PathBuf, Vec<u32>, u64)> {
        self.segments
            .iter()
            .map(|s| (s.path.clone(), s.offsets.clone(), s.end))
            .collect()
    }
}
