//! Apache's transaction log files: `log.<hex zxid of the first entry>` in
//! `dataLogDir/version-2`.
//!
//! Layout: a 16-byte `FileHeader` (i32 magic "ZKLG", i32 version 2, i64
//! dbid), then records back to back:
//!
//! ```text
//! i64  Adler-32 of the entry bytes
//! i32  entry length (never 0 for a real entry)
//! ...  entry: TxnHeader, the transaction record, [TxnDigest]
//! u8   0x42 ('B'), the end-of-record marker
//! ```
//!
//! Apache preallocates log files in 64 MiB steps, so the bytes after the last
//! record are zeros; a zero length ends the file's entries.
//!
//! Only the records and a window after them are read ([`read_records`]), not
//! the whole preallocated file: checking that zeros follow the last record,
//! and looking for valid records after a damaged one, stop at the end of the
//! window, which is larger than any record Apache writes (`jute.maxbuffer`
//! defaults to 1 MiB).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::ops::Range;

/// "ZKLG".
const LOG_MAGIC: i32 = 0x5a4b_4c47;
/// The `FileHeader`.
pub(super) const HEADER_BYTES: usize = 16;
/// Checksum and length before each entry.
const PREFIX_BYTES: usize = 12;
/// Apache's end-of-record marker.
const END_OF_RECORD: u8 = b'B';

/// How far past the apparent end of the records a file is read.
const LOOKAHEAD_BYTES: u64 = 4 << 20;

/// Reads the part of a log file that matters: the header, every record whose
/// length fits in the file, and [`LOOKAHEAD_BYTES`] after them.
pub(super) fn read_records(file: File) -> io::Result<Vec<u8>> {
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut bytes = Vec::new();
    let mut read = |bytes: &mut Vec<u8>, n: u64| -> io::Result<bool> {
        let before = bytes.len();
        (&mut reader).take(n).read_to_end(bytes)?;
        Ok((bytes.len() - before) as u64 == n)
    };
    if read(&mut bytes, HEADER_BYTES as u64)? {
        let mut pos = HEADER_BYTES as u64;
        while pos + PREFIX_BYTES as u64 <= file_len && read(&mut bytes, PREFIX_BYTES as u64)? {
            let len = be_i32(&bytes, pos as usize + 8);
            let end = pos + PREFIX_BYTES as u64 + u64::try_from(len).unwrap_or(0) + 1;
            if len <= 0 || end > file_len || !read(&mut bytes, end - pos - PREFIX_BYTES as u64)? {
                break;
            }
            pos = end;
        }
    }
    read(&mut bytes, LOOKAHEAD_BYTES)?;
    Ok(bytes)
}

/// The verified entries of one log file and how the file ends.
#[derive(Debug)]
pub(super) struct Scan {
    /// Each entry's record offset and the byte range of its entry.
    pub records: Vec<(usize, Range<usize>)>,
    pub end: End,
}

/// How the entries of a file end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    /// After the last record there are only zeros (or nothing).
    Clean,
    /// The file header is missing or wrong.
    BadHeader { detail: String },
    /// A record at `offset` fails verification and nothing after it verifies:
    /// a write cut short by a crash.
    Torn { offset: usize, detail: String },
    /// A record at `offset` fails verification, yet a valid record follows at
    /// `valid_at`: damage, not a torn write.
    Corrupt {
        offset: usize,
        detail: String,
        valid_at: usize,
    },
}

enum Probe {
    Record {
        entry: Range<usize>,
        next: usize,
    },
    /// A zero length: the end of the entries if only zeros follow.
    ZeroLength,
    Invalid(String),
}

/// Verifies every record of a whole log file.
pub(super) fn scan(bytes: &[u8]) -> Scan {
    let mut records = Vec::new();
    if bytes.len() < HEADER_BYTES {
        // A file created an instant before a crash may not have its header.
        let end = if bytes.iter().all(|&b| b == 0) {
            End::Clean
        } else {
            End::BadHeader {
                detail: format!(
                    "only {} bytes long, too short for a log file header",
                    bytes.len()
                ),
            }
        };
        return Scan { records, end };
    }
    let magic = be_i32(bytes, 0);
    if magic != LOG_MAGIC {
        return Scan {
            records,
            end: End::BadHeader {
                detail: format!("magic number {magic:#010x} is not a transaction log's (\"ZKLG\")"),
            },
        };
    }
    let mut pos = HEADER_BYTES;
    loop {
        let detail = match probe(bytes, pos) {
            Probe::Record { entry, next } => {
                records.push((pos, entry));
                pos = next;
                continue;
            }
            Probe::ZeroLength if is_zero(tail(bytes, pos)) => {
                return Scan {
                    records,
                    end: End::Clean,
                }
            }
            Probe::ZeroLength => {
                "a zero length ends the entries here, yet nonzero bytes follow".to_string()
            }
            Probe::Invalid(detail) => detail,
        };
        let garbage_end = pos
            + tail(bytes, pos)
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |last| last + 1);
        let end = match find_valid_record(bytes, pos + 1, garbage_end) {
            Some(valid_at) => End::Corrupt {
                offset: pos,
                detail,
                valid_at,
            },
            None => End::Torn {
                offset: pos,
                detail,
            },
        };
        return Scan { records, end };
    }
}

fn probe(bytes: &[u8], pos: usize) -> Probe {
    let rest = tail(bytes, pos);
    if rest.len() < PREFIX_BYTES {
        if is_zero(rest) {
            return Probe::ZeroLength;
        }
        return Probe::Invalid(format!(
            "record cut short: only {} bytes are left for its 12-byte prefix",
            rest.len()
        ));
    }
    let stored = be_i64(bytes, pos);
    let len = be_i32(bytes, pos + 8);
    if len == 0 {
        return Probe::ZeroLength;
    }
    if len < 0 {
        return Probe::Invalid(format!("record length {len} is negative"));
    }
    let start = pos + PREFIX_BYTES;
    let end = start + len as usize;
    if end >= bytes.len() {
        return Probe::Invalid(format!(
            "record of {len} bytes runs past the end of the file ({} bytes left)",
            bytes.len() - start
        ));
    }
    if bytes[end] != END_OF_RECORD {
        return Probe::Invalid(format!(
            "record is not ended by 0x42 (found {:#04x})",
            bytes[end]
        ));
    }
    let computed = adler2::adler32_slice(&bytes[start..end]);
    if stored != i64::from(computed) {
        return Probe::Invalid(format!(
            "checksum mismatch (stored {stored:#x}, computed {computed:#x})"
        ));
    }
    Probe::Record {
        entry: start..end,
        next: end + 1,
    }
}

/// The first offset in `from..until` where a record verifies: proof that
/// damage before it is not a torn final write.
fn find_valid_record(bytes: &[u8], from: usize, until: usize) -> Option<usize> {
    (from..until).find(|&q| matches!(probe(bytes, q), Probe::Record { .. }))
}

fn tail(bytes: &[u8], from: usize) -> &[u8] {
    bytes.get(from..).unwrap_or_default()
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Callers check the bytes are there; a short slice reads as 0.
fn be_i32(bytes: &[u8], at: usize) -> i32 {
    bytes
        .get(at..at.saturating_add(4))
        .and_then(|b| b.try_into().ok())
        .map_or(0, i32::from_be_bytes)
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    bytes
        .get(at..at.saturating_add(8))
        .and_then(|b| b.try_into().ok())
        .map_or(0, i64::from_be_bytes)
}
