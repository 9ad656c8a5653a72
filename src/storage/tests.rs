//! Behaviour of the log against real files: round trips, crash repair,
//! corruption detection, truncation, purge, metadata and injected faults.
//! Every test ends by reopening the directory and checking what survived.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::*;

const SMALL_SEGMENT: u64 = 4096;

fn options(segment_bytes: u64) -> LogOptions {
    LogOptions {
        segment_bytes,
        force_sync: true,
    }
}

/// About 150 bytes; the length depends on the index only, so an entry
/// rewritten with another term has the same size as the one it replaces.
fn payload(index: u64) -> Vec<u8> {
    let len = 120 + (index % 61) as usize;
    (0..len).map(|i| (index as usize * 31 + i) as u8).collect()
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        payload: payload(index),
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|index| entry(index, term)).collect()
}

fn open(dir: &Path, segment_bytes: u64) -> (Log, Recovery) {
    Log::open(dir, options(segment_bytes)).unwrap()
}

fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(LOG_DIR_NAME))
        .unwrap()
        .map(|item| item.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("log."))
        .collect();
    names.sort();
    names
}

fn write_bytes(path: &Path, offset: u64, bytes: &[u8]) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
    file.sync_all().unwrap();
}

fn flip_byte(path: &Path, offset: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= 0x20;
    file.write_all_at(&byte, offset).unwrap();
}

/// A log holding `1..=count` (term 1), synced in batches of 7, then closed.
fn filled(dir: &Path, segment_bytes: u64, count: u64) -> Vec<(PathBuf, Vec<u32>, u64)> {
    let (mut log, _) = open(dir, segment_bytes);
    let all = entries(1..=count, 1);
    for batch in all.chunks(7) {
        log.append(batch).unwrap();
        log.sync().unwrap();
    }
    log.layout()
}

fn assert_holds(log: &Log, range: std::ops::RangeInclusive<u64>, term: u64) {
    let read = log.entries(range.clone()).unwrap();
    assert_eq!(read, entries(range, term));
}

#[test]
fn round_trip_across_segment_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, recovery) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!((recovery.segments, recovery.last_index), (0, None));
    assert_eq!(log.next_index(), None);
    let all = entries(1..=300, 4);
    for batch in [&all[..1], &all[1..17], &all[17..81], &all[81..]] {
        log.append(batch).unwrap();
        log.sync().unwrap();
    }
    assert_holds(&log, 1..=300, 4);
    let segment_count = log_files(dir.path()).len();
    assert!(segment_count >= 10, "only {segment_count} segments");
    drop(log);

    let (mut log, recovery) = open(dir.path(), SMALL_SEGMENT);
    assert!(recovery.torn_tail.is_none());
    assert_eq!(recovery.segments, segment_count);
    assert_eq!((log.first_index(), log.last_index()), (Some(1), Some(300)));
    assert_eq!(log.last_entry_term(), Some(4));
    assert_holds(&log, 1..=300, 4);
    assert_holds(&log, 120..=131, 4);
    assert_eq!(log.term(77).unwrap(), 4);

    log.append(&entries(301..=320, 5)).unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_holds(&log, 301..=320, 5);
    assert_eq!(log.last_entry_term(), Some(5));
    let first_names = log_files(dir.path());
    assert_eq!(first_names[0], "log.0000000000000001");
}

#[test]
fn only_lowercase_segment_names_count() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), SMALL_SEGMENT, 5);
    let log_dir = dir.path().join(LOG_DIR_NAME);
    fs::write(log_dir.join("log.000000000000000A"), b"not ours").unwrap();
    fs::write(log_dir.join("log.1"), b"not ours").unwrap();
    let (log, recovery) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!(recovery.segments, 1);
    assert_holds(&log, 1..=5, 1);
}

#[test]
fn appends_must_be_consecutive() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    // A new log starts wherever its first entry says.
    log.append(&entries(1000..=1002, 1)).unwrap();
    let error = log.append(&[entry(1004, 1)]).unwrap_err();
    assert!(matches!(
        error,
        StorageError::NonConsecutive {
            expected: 1003,
            got: 1004
        }
    ));
    let gap_inside = [entry(1003, 1), entry(1005, 1)];
    assert!(matches!(
        log.append(&gap_inside),
        Err(StorageError::NonConsecutive { expected: 1004, .. })
    ));
    assert_eq!(log.last_index(), Some(1002));
    assert!(matches!(
        log.entries(999..=1000),
        Err(StorageError::OutOfRange { index: 999, .. })
    ));
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!(log.next_index(), Some(1003));
}

#[test]
fn torn_last_record_is_repaired_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), SMALL_SEGMENT, 60);
    let (path, offsets, _) = layout.last().unwrap().clone();
    let last_offset = u64::from(*offsets.last().unwrap());
    // The crash cut the file in the middle of the last record.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(last_offset + 10)
        .unwrap();

    let (mut log, recovery) = open(dir.path(), SMALL_SEGMENT);
    let torn = recovery.torn_tail.expect("the torn record is reported");
    assert_eq!((&torn.path, torn.offset), (&path, last_offset));
    // Zeroing stops at the last nonzero byte of the 10 left.
    assert!((1..=10).contains(&torn.bytes_dropped), "{torn:?}");
    assert_eq!(log.last_index(), Some(59));
    assert_holds(&log, 1..=59, 1);
    // The repaired segment is preallocated again and takes the entry anew.
    assert!(fs::metadata(&path).unwrap().len() >= SMALL_SEGMENT);
    log.append(&[entry(60, 2)]).unwrap();
    log.sync().unwrap();
    drop(log);

    let (log, recovery) = open(dir.path(), SMALL_SEGMENT);
    assert!(recovery.torn_tail.is_none());
    assert_eq!(log.entries(60..=60).unwrap(), vec![entry(60, 2)]);
}

#[test]
fn partly_written_record_in_preallocated_space_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), 1 << 20, 30);
    let (path, offsets, end) = layout.last().unwrap().clone();
    let last_offset = u64::from(*offsets.last().unwrap());
    // Only the record's first sector made it: its tail reads as zeros.
    write_bytes(&path, end - 20, &[0u8; 20]);

    let (log, recovery) = open(dir.path(), 1 << 20);
    let torn = recovery.torn_tail.unwrap();
    assert_eq!(torn.offset, last_offset);
    assert_eq!(torn.bytes_dropped, end - 20 - last_offset);
    assert_holds(&log, 1..=29, 1);
}

#[test]
fn garbage_after_the_last_record_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), 1 << 20, 40);
    let (path, _, end) = layout.last().unwrap().clone();
    let garbage: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    write_bytes(&path, end + 100, &garbage);

    let (log, recovery) = open(dir.path(), 1 << 20);
    let torn = recovery.torn_tail.unwrap();
    assert_eq!((torn.offset, torn.bytes_dropped), (end, 400));
    assert_holds(&log, 1..=40, 1);
    drop(log);
    // The repair was written: the next open finds a clean tail.
    let (_, recovery) = open(dir.path(), 1 << 20);
    assert!(recovery.torn_tail.is_none());
    let mut after = vec![0xFFu8; 500];
    fs::File::open(&path)
        .unwrap()
        .read_exact_at(&mut after, end)
        .unwrap();
    assert!(after.iter().all(|b| *b == 0));
}

#[test]
fn garbage_beyond_unwritten_preallocated_space_is_found() {
    // Open reads only what the filesystem reports as data; bytes written
    // far past the records, with never-written space between, must still be
    // seen.
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), 1 << 20, 20);
    let (path, _, end) = layout.last().unwrap().clone();
    let far = (768 << 10) + 5;
    assert!(far > end + (64 << 10));
    write_bytes(&path, far, &[0xAB; 7]);

    let (log, recovery) = open(dir.path(), 1 << 20);
    let torn = recovery.torn_tail.unwrap();
    assert_eq!((torn.offset, torn.bytes_dropped), (end, far + 7 - end));
    assert_holds(&log, 1..=20, 1);
}

#[test]
fn flipped_byte_before_valid_records_fails_open_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), 1 << 20, 50);
    let (path, offsets, _) = layout.last().unwrap().clone();
    let damaged = u64::from(offsets[9]);
    flip_byte(&path, damaged + 40);

    let error = Log::open(dir.path(), options(1 << 20)).unwrap_err();
    let message = error.to_string();
    let StorageError::Corrupt {
        path: reported,
        offset,
        detail,
    } = error
    else {
        panic!("expected corruption, got {error}")
    };
    assert_eq!((reported, offset), (path.clone(), damaged));
    assert!(detail.contains(&format!("valid record follows at byte {}", offsets[10])));
    assert!(detail.contains("index 10 on"), "{detail}");
    assert!(message.contains(&path.display().to_string()));
    // Nothing was repaired behind the operator's back.
    let error_again = Log::open(dir.path(), options(1 << 20)).unwrap_err();
    assert!(matches!(error_again, StorageError::Corrupt { .. }));
}

#[test]
fn zeroed_record_before_valid_records_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), 1 << 20, 20);
    let (path, offsets, _) = layout.last().unwrap().clone();
    let zeroed_from = u64::from(offsets[4]);
    let zeroed_to = u64::from(offsets[5]);
    write_bytes(
        &path,
        zeroed_from,
        &vec![0u8; (zeroed_to - zeroed_from) as usize],
    );

    let error = Log::open(dir.path(), options(1 << 20)).unwrap_err();
    assert!(
        matches!(error, StorageError::Corrupt { offset, .. } if offset == zeroed_from),
        "{error}"
    );
}

#[test]
fn damage_in_an_earlier_segment_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), SMALL_SEGMENT, 120);
    assert!(layout.len() >= 3);
    // Even the very last record of a sealed segment is no torn tail.
    let (path, offsets, _) = layout[1].clone();
    let damaged = u64::from(*offsets.last().unwrap());
    flip_byte(&path, damaged + 30);

    let error = Log::open(dir.path(), options(SMALL_SEGMENT)).unwrap_err();
    let StorageError::Corrupt {
        path: reported,
        offset,
        detail,
    } = error
    else {
        panic!("expected corruption")
    };
    assert_eq!((reported, offset), (path, damaged));
    assert!(detail.contains("later segments follow"), "{detail}");
}

#[test]
fn missing_segment_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), SMALL_SEGMENT, 120);
    fs::remove_file(&layout[1].0).unwrap();
    let error = Log::open(dir.path(), options(SMALL_SEGMENT)).unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { path, .. } if *path == layout[0].0),
        "{error}"
    );
}

#[test]
fn new_empty_segment_and_leftover_temp_files_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), SMALL_SEGMENT, 50);
    let log_dir = dir.path().join(LOG_DIR_NAME);
    // A crash while preparing the next segment leaves its temp file.
    fs::write(log_dir.join("log.0000000000000033.tmp"), b"half").unwrap();
    fs::write(log_dir.join("meta.tmp"), b"half").unwrap();
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    assert!(!log_dir.join("log.0000000000000033.tmp").exists());
    assert!(!log_dir.join("meta.tmp").exists());
    assert_eq!(log_files(dir.path()).len(), layout.len());

    // Fill the active segment exactly up to a rotation, then crash before
    // writing into the new one: the empty segment is a valid tail.
    let mut index = 51;
    while log_files(dir.path()).len() == layout.len() {
        log.append(&[entry(index, 1)]).unwrap();
        index += 1;
    }
    log.truncate_after(index - 2).unwrap();
    drop(log);
    let (log, recovery) = open(dir.path(), SMALL_SEGMENT);
    assert!(recovery.torn_tail.is_none());
    assert_eq!(log.last_index(), Some(index - 2));
    assert_eq!(log.next_index(), Some(index - 1));
}

#[test]
fn truncate_after_drops_the_suffix_durably() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), SMALL_SEGMENT, 100);
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    log.truncate_after(37).unwrap();
    assert_eq!(
        (log.last_index(), log.last_entry_term()),
        (Some(37), Some(1))
    );
    assert!(matches!(
        log.entries(37..=38),
        Err(StorageError::OutOfRange { index: 38, .. })
    ));
    assert!(matches!(
        log.append(&[entry(39, 2)]),
        Err(StorageError::NonConsecutive { expected: 38, .. })
    ));
    // Same sizes as the dropped entries: a stale record left in place would
    // line up exactly and verify.
    log.append(&[entry(38, 2)]).unwrap();
    log.sync().unwrap();
    drop(log);

    let (mut log, recovery) = open(dir.path(), SMALL_SEGMENT);
    assert!(recovery.torn_tail.is_none());
    assert_eq!(
        (log.last_index(), log.last_entry_term()),
        (Some(38), Some(2))
    );
    assert_holds(&log, 1..=37, 1);
    assert_holds(&log, 38..=38, 2);

    // Truncating everything keeps the place where the log starts.
    log.truncate_from(1).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (None, None));
    assert_eq!(log.next_index(), Some(1));
    assert_eq!(log.last_entry_term(), None);
    drop(log);
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!((log.last_index(), log.next_index()), (None, Some(1)));
    assert_eq!(log_files(dir.path()), vec!["log.0000000000000001"]);
    log.append(&entries(1..=3, 3)).unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_holds(&log, 1..=3, 3);
}

#[test]
fn truncate_at_a_segment_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), SMALL_SEGMENT, 100);
    let second_first = 1 + layout[0].1.len() as u64;
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    log.truncate_after(second_first - 1).unwrap();
    assert_eq!(log.last_index(), Some(second_first - 1));
    assert_eq!(log_files(dir.path()).len(), 2);
    drop(log);
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!(log.last_index(), Some(second_first - 1));
    log.append(&entries(second_first..=second_first + 40, 2))
        .unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_holds(&log, 1..=second_first - 1, 1);
    assert_holds(&log, second_first..=second_first + 40, 2);
}

#[test]
fn purge_before_deletes_whole_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), SMALL_SEGMENT, 100);
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    log.purge_before(50).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (Some(50), Some(100)));
    assert_eq!(log.last_purged(), Some(EntryId { index: 49, term: 1 }));
    assert_eq!(log.term(49).unwrap(), 1);
    assert!(matches!(
        log.entries(49..=50),
        Err(StorageError::OutOfRange { index: 49, .. })
    ));
    let kept = log_files(dir.path());
    assert!(kept.len() < layout.len());
    // The segment holding index 50 stays whole.
    let holding_50 = layout
        .iter()
        .rposition(|(path, _, _)| {
            let name = path.file_name().unwrap().to_str().unwrap();
            u64::from_str_radix(&name[4..], 16).unwrap() <= 50
        })
        .unwrap();
    assert_eq!(kept.len(), layout.len() - holding_50);
    drop(log);

    let (log, recovery) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!(recovery.first_index, Some(50));
    assert_eq!(log.last_purged(), Some(EntryId { index: 49, term: 1 }));
    assert_holds(&log, 50..=100, 1);
}

#[test]
fn purge_interrupted_after_the_marker_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let layout = filled(dir.path(), SMALL_SEGMENT, 100);
    let saved: Vec<(PathBuf, Vec<u8>)> = layout
        .iter()
        .map(|(path, _, _)| (path.clone(), fs::read(path).unwrap()))
        .collect();
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    log.purge_before(60).unwrap();
    drop(log);
    // The crash came after the marker, before the deletions.
    for (path, bytes) in &saved {
        fs::write(path, bytes).unwrap();
    }
    let (log, recovery) = open(dir.path(), SMALL_SEGMENT);
    assert!(recovery.purged_segments_removed > 0);
    assert_eq!(log.first_index(), Some(60));
    assert_holds(&log, 60..=100, 1);
    assert_eq!(
        log_files(dir.path()).len(),
        layout.len() - recovery.purged_segments_removed
    );
}

#[test]
fn purge_past_the_end_restarts_the_log() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), SMALL_SEGMENT, 30);
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    log.append(&[entry(31, 1)]).unwrap();
    let snapshot = EntryId {
        index: 500,
        term: 9,
    };
    log.purge_through(snapshot).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (None, None));
    assert_eq!(log.next_index(), Some(501));
    assert!(log_files(dir.path()).is_empty());
    drop(log);

    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!(log.last_purged(), Some(snapshot));
    assert_eq!(log.next_index(), Some(501));
    assert!(matches!(
        log.append(&[entry(500, 9)]),
        Err(StorageError::NonConsecutive { expected: 501, .. })
    ));
    log.append(&entries(501..=510, 9)).unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_holds(&log, 501..=510, 9);
    assert_eq!(log.term(500).unwrap(), 9);
}

#[test]
fn meta_round_trip_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!(log.load_meta().unwrap(), None);
    log.save_meta(b"vote: term 3 for node 2").unwrap();
    log.save_meta(b"vote: term 4 for node 1").unwrap();
    assert_eq!(
        log.load_meta().unwrap().as_deref(),
        Some(&b"vote: term 4 for node 1"[..])
    );
    assert!(matches!(
        log.save_meta(&vec![0u8; (1 << 20) + 1]),
        Err(StorageError::TooLarge { .. })
    ));
    drop(log);

    let (log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!(
        log.load_meta().unwrap().as_deref(),
        Some(&b"vote: term 4 for node 1"[..])
    );
    let meta_path = log.dir().join("meta");
    flip_byte(&meta_path, 20);
    let error = log.load_meta().unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { path, .. } if *path == meta_path),
        "{error}"
    );
    fs::write(&meta_path, b"zkrs").unwrap();
    assert!(matches!(log.load_meta(), Err(StorageError::Corrupt { .. })));
}

#[test]
fn disk_full_leaves_a_consistent_log_that_accepts_appends_later() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), SMALL_SEGMENT, 10);
    let files_before = log_files(dir.path());
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    let faults = log.fault_injector();
    faults.set_disk_full(true);

    // A small batch that fits: the write stores half, then fails.
    let error = log.append(&entries(11..=12, 1)).unwrap_err();
    assert!(matches!(error, StorageError::DiskFull { .. }), "{error}");
    // A batch that needs new segments: it fills the active one, then
    // preallocation fails.
    let error = log.append(&entries(11..=80, 1)).unwrap_err();
    assert!(matches!(error, StorageError::DiskFull { .. }), "{error}");
    assert_eq!(log.last_index(), Some(10));
    assert_eq!(log.next_index(), Some(11));
    assert_eq!(log_files(dir.path()), files_before);
    assert_holds(&log, 1..=10, 1);
    log.sync().unwrap();

    faults.set_disk_full(false);
    log.append(&entries(11..=80, 2)).unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, recovery) = open(dir.path(), SMALL_SEGMENT);
    assert!(recovery.torn_tail.is_none());
    assert_holds(&log, 1..=10, 1);
    assert_holds(&log, 11..=80, 2);
}

#[test]
fn disk_full_on_the_first_segment_and_on_meta() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    log.fault_injector().set_disk_full(true);
    assert!(matches!(
        log.append(&entries(1..=3, 1)),
        Err(StorageError::DiskFull { .. })
    ));
    assert_eq!(log.next_index(), None);
    assert!(log_files(dir.path()).is_empty());
    assert!(matches!(
        log.save_meta(b"vote"),
        Err(StorageError::DiskFull { .. })
    ));
    log.fault_injector().set_disk_full(false);
    log.append(&entries(1..=3, 1)).unwrap();
    log.save_meta(b"vote").unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_holds(&log, 1..=3, 1);
    assert_eq!(log.load_meta().unwrap().as_deref(), Some(&b"vote"[..]));
}

#[test]
fn failed_fsync_stops_all_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    log.append(&entries(1..=5, 1)).unwrap();
    log.sync().unwrap();
    log.append(&entries(6..=8, 1)).unwrap();
    let faults = log.fault_injector();
    faults.set_fail_sync(true);
    let error = log.sync().unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::StateUnknown {
                operation: "fdatasync",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("accepts no more writes"));
    // Even once the device "recovers", the log does not pretend.
    faults.set_fail_sync(false);
    assert!(matches!(
        log.append(&[entry(9, 1)]),
        Err(StorageError::Poisoned { .. })
    ));
    assert!(matches!(log.sync(), Err(StorageError::Poisoned { .. })));
    assert!(matches!(
        log.truncate_after(3),
        Err(StorageError::Poisoned { .. })
    ));
    assert!(matches!(
        log.purge_before(3),
        Err(StorageError::Poisoned { .. })
    ));
    assert!(matches!(
        log.save_meta(b"v"),
        Err(StorageError::Poisoned { .. })
    ));
    // Reads still answer from what was written.
    assert_holds(&log, 1..=5, 1);
    drop(log);
    // A restart recovers from what the disk holds.
    let (log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_holds(&log, 1..=5, 1);
}

#[test]
fn failed_fsync_at_rotation_stops_all_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    log.append(&entries(1..=5, 1)).unwrap();
    log.fault_injector().set_fail_sync(true);
    assert!(matches!(
        log.append(&entries(6..=60, 1)),
        Err(StorageError::StateUnknown { .. })
    ));
    log.fault_injector().set_fail_sync(false);
    assert!(matches!(
        log.append(&[entry(6, 1)]),
        Err(StorageError::Poisoned { .. })
    ));
}

#[test]
fn without_force_sync_sync_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let no_sync = LogOptions {
        segment_bytes: SMALL_SEGMENT,
        force_sync: false,
    };
    let (mut log, _) = Log::open(dir.path(), no_sync.clone()).unwrap();
    log.append(&entries(1..=5, 1)).unwrap();
    log.fault_injector().set_fail_sync(true);
    log.sync().unwrap();
    log.fault_injector().set_fail_sync(false);
    drop(log);
    let (log, _) = Log::open(dir.path(), no_sync).unwrap();
    assert_holds(&log, 1..=5, 1);
}

#[test]
fn invalid_options_and_oversized_payloads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Log::open(dir.path(), options(10)),
        Err(StorageError::InvalidOptions(_))
    ));
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT);
    let huge = Entry {
        index: 1,
        term: 1,
        payload: vec![0; MAX_PAYLOAD_BYTES + 1],
    };
    assert!(matches!(
        log.append(&[huge]),
        Err(StorageError::TooLarge { .. })
    ));
    // A record bigger than a segment gets a segment of its own.
    let big = Entry {
        index: 1,
        term: 1,
        payload: vec![7; 3 * SMALL_SEGMENT as usize],
    };
    log.append(&[big.clone(), entry(2, 1)]).unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), SMALL_SEGMENT);
    assert_eq!(log.entries(1..=2).unwrap(), vec![big, entry(2, 1)]);
}

/// Prints appends + fdatasync per second on this disk for batches of 1, 16
/// and 64 entries of about 150 bytes. Run with
/// `cargo test --lib storage::tests::measure -- --ignored --nocapture`
/// (`WAL_BENCH_DIR` picks the disk).
///
/// On the 2-core development VM (ext4 on virtio, debug build, 64 MiB
/// fallocated segments), quiet: batch 1 ≈ 7,300-8,400 syncs/s (0.12-0.14 ms
/// each); batch 16 ≈ 4,000-6,300 syncs/s (63-100k entries/s); batch 64 ≈
/// 3,600-4,700 syncs/s (230-300k entries/s). Under load from concurrent
/// builds the same disk dropped to ≈ 330 syncs/s (3 ms) for batch 1, which is
/// what group commit is for: a sync costs about the same for 1 or 64 entries.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_group_commit_throughput() {
    let dir =
        tempfile::tempdir_in(std::env::var_os("WAL_BENCH_DIR").unwrap_or(".".into())).unwrap();
    for batch_len in [1u64, 16, 64] {
        let path = dir.path().join(format!("batch-{batch_len}"));
        let (mut log, _) = Log::open(&path, LogOptions::default()).unwrap();
        let mut next = 1u64;
        let started = Instant::now();
        let mut syncs = 0u64;
        while started.elapsed().as_secs_f64() < 3.0 {
            let batch: Vec<Entry> = (next..next + batch_len)
                .map(|index| Entry {
                    index,
                    term: 1,
                    payload: vec![0x5A; 150],
                })
                .collect();
            log.append(&batch).unwrap();
            log.sync().unwrap();
            next += batch_len;
            syncs += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "batch {batch_len:>2}: {:>8.0} syncs/s, {:>9.0} entries/s, {:.3} ms per sync",
            syncs as f64 / seconds,
            (syncs * batch_len) as f64 / seconds,
            seconds * 1000.0 / syncs as f64
        );
    }
}

#[test]
fn zeros_written_ahead_of_the_records_stay_inside_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let segment_bytes = 4 * segment::ZERO_AHEAD;
    {
        let (mut log, _) = open(dir.path(), segment_bytes);
        for batch in 0..40u64 {
            log.append(&entries(batch * 10 + 1..=batch * 10 + 10, 1))
                .unwrap();
            log.sync().unwrap();
        }
    }
    let names = log_files(dir.path());
    assert_eq!(names.len(), 1, "{names:?}");
    let path = dir.path().join(LOG_DIR_NAME).join(&names[0]);
    assert_eq!(fs::metadata(&path).unwrap().len(), segment_bytes);
    let (log, recovery) = open(dir.path(), segment_bytes);
    assert!(recovery.torn_tail.is_none());
    assert_eq!(log.last_index(), Some(400));
    assert_eq!(log.entries(1..=400).unwrap(), entries(1..=400, 1));
}
