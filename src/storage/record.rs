//! Encoding and verification of segment headers and records (layout in the
//! module documentation of `storage`). Pure functions over byte slices.

use super::Entry;

/// Largest payload one entry may carry. Bounds what open allocates for a
/// length field it has not verified yet.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 20;

pub(super) const HEADER_BYTES: usize = 32;
/// `len` + `crc`: the part of a record its `len` field does not count.
const PREFIX_BYTES: usize = 8;
/// `index` + `term`.
const IDS_BYTES: usize = 16;
/// Smallest record on disk: an entry with an empty payload.
pub(super) const MIN_RECORD_BYTES: usize = PREFIX_BYTES + IDS_BYTES;

const MAGIC: [u8; 8] = *b"zkrs-wal";
const FORMAT_VERSION: u32 = 1;

// The length field is a u32; the largest record must fit in it.
const _: () = assert!(MAX_PAYLOAD_BYTES + IDS_BYTES <= u32::MAX as usize);

/// Checksum seed for a segment's records.
pub(super) fn salt(first_index: u64) -> u32 {
    crc32c::crc32c(&first_index.to_le_bytes())
}

pub(super) fn encode_header(first_index: u64) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&first_index.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The first index a header names, or why the header is unusable.
pub(super) fn decode_header(bytes: &[u8]) -> Result<u64, String> {
    let Some(header) = bytes.get(..HEADER_BYTES) else {
        return Err(format!(
            "the file has {} bytes, fewer than a {HEADER_BYTES}-byte segment header",
            bytes.len()
        ));
    };
    if header[0..8] != MAGIC {
        return Err("not a zookeeper-rs log segment (bad magic)".to_string());
    }
    let stored_crc = read_u32(header, 24);
    if crc32c::crc32c(&header[0..24]) != stored_crc {
        return Err("segment header checksum mismatch".to_string());
    }
    let version = read_u32(header, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "segment format version {version}; this build reads version {FORMAT_VERSION}"
        ));
    }
    Ok(read_u64(header, 16))
}

/// Bytes `entry` takes on disk.
pub(super) fn encoded_len(payload_len: usize) -> usize {
    MIN_RECORD_BYTES + payload_len
}

/// Appends `entry`'s record to `buf`. The caller has checked the payload
/// against [`MAX_PAYLOAD_BYTES`].
pub(super) fn encode_record(buf: &mut Vec<u8>, salt: u32, entry: &Entry) {
    debug_assert!(entry.payload.len() <= MAX_PAYLOAD_BYTES);
    let start = buf.len();
    // Cannot truncate: the payload limit keeps the length below u32::MAX.
    let len = (IDS_BYTES + entry.payload.len()) as u32;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0u8; 4]);
    buf.extend_from_slice(&entry.index.to_le_bytes());
    buf.extend_from_slice(&entry.term.to_le_bytes());
    buf.extend_from_slice(&entry.payload);
    let crc = record_crc(salt, &buf[start..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn record_crc(salt: u32, record: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(salt, &record[0..4]);
    crc32c::crc32c_append(crc, &record[PREFIX_BYTES..])
}

/// A record that verified.
pub(super) struct RecordView<'a> {
    pub index: u64,
    pub term: u64,
    pub payload: &'a [u8],
    /// Bytes the whole record takes.
    pub size: usize,
}

/// What starts at some position of a segment.
pub(super) enum Probe<'a> {
    /// A zero length (or only zero bytes left): no more records.
    End,
    Record(RecordView<'a>),
    /// Bytes that are not a valid record, and why.
    Invalid(String),
}

/// Decodes and verifies the record at the start of `bytes`.
pub(super) fn probe(bytes: &[u8], salt: u32) -> Probe<'_> {
    if bytes.len() < PREFIX_BYTES {
        return if bytes.iter().all(|b| *b == 0) {
            Probe::End
        } else {
            Probe::Invalid(format!(
                "{} stray bytes where a record or the end of the file belongs",
                bytes.len()
            ))
        };
    }
    let len = read_u32(bytes, 0) as usize;
    if len == 0 {
        return Probe::End;
    }
    if !(IDS_BYTES..=IDS_BYTES + MAX_PAYLOAD_BYTES).contains(&len) {
        return Probe::Invalid(format!("record length field {len} is out of range"));
    }
    let size = PREFIX_BYTES + len;
    let Some(record) = bytes.get(..size) else {
        return Probe::Invalid(format!(
            "record of {size} bytes runs past the end of the file"
        ));
    };
    if record_crc(salt, record) != read_u32(record, 4) {
        return Probe::Invalid("record checksum mismatch".to_string());
    }
    Probe::Record(RecordView {
        index: read_u64(record, 8),
        term: read_u64(record, 16),
        payload: &record[MIN_RECORD_BYTES..],
        size,
    })
}

/// Looks for a record that verifies, starts before `starts_before` and whose
/// index lies in `indexes`, at any byte position of `bytes`; returns its
/// position. The index check comes before the checksum so that scanning
/// garbage stays linear in practice.
pub(super) fn find_valid_record(
    bytes: &[u8],
    salt: u32,
    indexes: std::ops::RangeInclusive<u64>,
    starts_before: usize,
) -> Option<usize> {
    let last_start = bytes.len().checked_sub(MIN_RECORD_BYTES)?;
    (0..=last_start.min(starts_before.checked_sub(1)?)).find(|&pos| {
        let candidate = &bytes[pos..];
        let len = read_u32(candidate, 0) as usize;
        if !(IDS_BYTES..=IDS_BYTES + MAX_PAYLOAD_BYTES).contains(&len)
            || !indexes.contains(&read_u64(candidate, 8))
        {
            return false;
        }
        matches!(probe(candidate, salt), Probe::Record(_))
    })
}

/// Callers guarantee `bytes` holds `at + 4` bytes.
fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Callers guarantee `bytes` holds `at + 8` bytes.
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, payload: &[u8]) -> Entry {
        Entry {
            index,
            term: 7,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn header_round_trip_and_damage() {
        let header = encode_header(0x1234);
        assert_eq!(decode_header(&header), Ok(0x1234));
        let mut flipped = header;
        flipped[17] ^= 1;
        assert!(decode_header(&flipped).unwrap_err().contains("checksum"));
        assert!(decode_header(&header[..10]).unwrap_err().contains("fewer"));
    }

    #[test]
    fn record_round_trip_including_empty_payload() {
        let mut buf = Vec::new();
        encode_record(&mut buf, salt(5), &entry(5, b"hello"));
        encode_record(&mut buf, salt(5), &entry(6, b""));
        let Probe::Record(first) = probe(&buf, salt(5)) else {
            panic!("first record must verify")
        };
        assert_eq!(
            (first.index, first.term, first.payload),
            (5, 7, &b"hello"[..])
        );
        assert_eq!(first.size, encoded_len(5));
        let Probe::Record(second) = probe(&buf[first.size..], salt(5)) else {
            panic!("empty payload must verify")
        };
        assert_eq!((second.index, second.payload.len()), (6, 0));
        assert!(matches!(probe(&[0u8; 40], salt(5)), Probe::End));
        assert!(matches!(probe(&[], salt(5)), Probe::End));
    }

    #[test]
    fn salt_rejects_records_of_another_segment() {
        let mut buf = Vec::new();
        encode_record(&mut buf, salt(1), &entry(5, b"x"));
        assert!(matches!(probe(&buf, salt(2)), Probe::Invalid(_)));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let mut buf = Vec::new();
        encode_record(&mut buf, salt(9), &entry(9, b"payload"));
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[byte] ^= 1 << bit;
                assert!(
                    !matches!(probe(&damaged, salt(9)), Probe::Record(_)),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn search_finds_a_record_at_an_odd_offset() {
        let mut buf = vec![0xAB; 13];
        encode_record(&mut buf, salt(3), &entry(40, b"abc"));
        assert_eq!(find_valid_record(&buf, salt(3), 40..=41, 14), Some(13));
        assert_eq!(find_valid_record(&buf, salt(3), 40..=41, 13), None);
        assert_eq!(find_valid_record(&buf, salt(3), 41..=50, 14), None);
        assert_eq!(find_valid_record(&buf[..20], salt(3), 40..=41, 14), None);
    }
}
