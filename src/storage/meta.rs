//! Small files replaced atomically: the caller's metadata (the Raft vote) and
//! the purge marker.
//!
//! Layout (little-endian): magic (8) | format version u32 | payload length
//! u32 | payload | crc32c u32 of everything before it. Written to
//! `<name>.tmp`, fdatasynced, renamed over `<name>`, then the directory is
//! fsynced, so a reader sees the old contents or the new, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::path::Path;

use super::error::{Result, StorageError};
use super::io::{is_disk_full, Faults};
use super::EntryId;

/// Largest payload [`write`] accepts.
pub(super) const MAX_META_BYTES: usize = 1 << 20;

pub(super) const META_FILE: &str = "meta";
pub(super) const META_MAGIC: [u8; 8] = *b"zkrsmeta";
pub(super) const PURGED_FILE: &str = "purged";
const PURGED_MAGIC: [u8; 8] = *b"zkrspurg";

const FORMAT_VERSION: u32 = 1;
const FIXED_BYTES: usize = 8 + 4 + 4 + 4;

/// Replaces `dir/name` with `payload`. A full disk is reported as
/// [`StorageError::DiskFull`] with the old file intact; a failed fsync or
/// rename as [`StorageError::StateUnknown`].
pub(super) fn write(
    faults: &Faults,
    dir: &Path,
    name: &str,
    magic: [u8; 8],
    payload: &[u8],
) -> Result<()> {
    if payload.len() > MAX_META_BYTES {
        return Err(StorageError::TooLarge {
            len: payload.len(),
            max: MAX_META_BYTES,
        });
    }
    let mut bytes = Vec::with_capacity(FIXED_BYTES + payload.len());
    bytes.extend_from_slice(&magic);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    // Bounded by MAX_META_BYTES above.
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(payload);
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());

    let target = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    let unknown = |operation, path: &Path, source| StorageError::StateUnknown {
        operation,
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(|source| StorageError::Io {
            path: temp.clone(),
            source,
        })?;
    if let Err(source) = faults.write_at(&file, &bytes, 0) {
        drop(file);
        // The old file is untouched; the temp file is removed again at open
        // if this removal fails too.
        let _ = fs::remove_file(&temp);
        return Err(if is_disk_full(&source) {
            StorageError::DiskFull { path: temp }
        } else {
            unknown("write", &temp, source)
        });
    }
    faults
        .sync_data(&file)
        .map_err(|source| unknown("fdatasync", &temp, source))?;
    fs::rename(&temp, &target).map_err(|source| unknown("rename", &target, source))?;
    faults
        .sync_dir(dir)
        .map_err(|source| unknown("fsync", dir, source))
}

/// Reads `dir/name`: `None` if it does not exist, an error if it fails
/// verification.
pub(super) fn read(dir: &Path, name: &str, magic: [u8; 8]) -> Result<Option<Vec<u8>>> {
    let path = dir.join(name);
    let io_error = |source| StorageError::Io {
        path: path.clone(),
        source,
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(error)),
    };
    let mut bytes = Vec::new();
    // One byte past the largest valid file is enough to know it is too long.
    file.take((FIXED_BYTES + MAX_META_BYTES + 1) as u64)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    decode(&bytes, magic)
        .map(Some)
        .map_err(|(offset, what)| StorageError::Corrupt {
            path: path.clone(),
            offset,
            detail: format!(
                "{what}; this file is replaced atomically, so damage means the disk \
                 or another program changed it: restore it from a backup, or from a \
                 healthy replica's state"
            ),
        })
}

fn decode(bytes: &[u8], magic: [u8; 8]) -> std::result::Result<Vec<u8>, (u64, String)> {
    if bytes.len() < FIXED_BYTES {
        return Err((0, format!("file is {} bytes, too short", bytes.len())));
    }
    if bytes[0..8] != magic {
        return Err((0, "bad magic".to_string()));
    }
    let body_len = bytes.len() - 4;
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[body_len..]);
    if crc32c::crc32c(&bytes[..body_len]) != u32::from_le_bytes(word) {
        return Err((body_len as u64, "checksum mismatch".to_string()));
    }
    word.copy_from_slice(&bytes[8..12]);
    let version = u32::from_le_bytes(word);
    if version != FORMAT_VERSION {
        return Err((8, format!("unknown format version {version}")));
    }
    word.copy_from_slice(&bytes[12..16]);
    let payload_len = u32::from_le_bytes(word) as usize;
    if 16 + payload_len != body_len {
        return Err((
            12,
            format!("length field {payload_len} disagrees with the file size"),
        ));
    }
    Ok(bytes[16..body_len].to_vec())
}

pub(super) fn write_purged(faults: &Faults, dir: &Path, purged: EntryId) -> Result<()> {
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(&purged.index.to_le_bytes());
    payload[8..].copy_from_slice(&purged.term.to_le_bytes());
    write(faults, dir, PURGED_FILE, PURGED_MAGIC, &payload)
}

pub(super) fn read_purged(dir: &Path) -> Result<Option<EntryId>> {
    let Some(payload) = read(dir, PURGED_FILE, PURGED_MAGIC)? else {
        return Ok(None);
    };
    let Ok(fields) = <[u8; 16]>::try_from(payload.as_slice()) else {
        return Err(StorageError::Corrupt {
            path: dir.join(PURGED_FILE),
            offset: 16,
            detail: format!("purge marker holds {} bytes, expected 16", payload.len()),
        });
    };
    let (index, term) = fields.split_at(8);
    let mut word = [0u8; 8];
    word.copy_from_slice(index);
    let index = u64::from_le_bytes(word);
    word.copy_from_slice(term);
    Ok(Some(EntryId {
        index,
        term: u64::from_le_bytes(word),
    }))
}
