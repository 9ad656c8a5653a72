//! Apache's snapshot files: `snapshot.<hex zxid>` in `dataDir/version-2`.
//!
//! Layout (all big-endian jute):
//!
//! ```text
//! FileHeader   i32 magic "ZKSN", i32 version, i64 dbid
//! sessions     i32 count, then count × (i64 id, i32 timeout)
//! ACL cache    i32 count, then count × (i64 ref, vector<ACL>)
//! nodes        pre-order: (string path, buffer data, i64 ACL ref,
//!              StatPersisted), the root's path being ""; ended by path "/"
//! seal         i64 Adler-32 of every byte before it, string "/"
//! [digest      i64 zxid, i32 digest version, i64 digest (a string before
//!              version 2), then another seal]            since 3.6
//! [i64 last processed zxid, then another seal]          since 3.9
//! ```
//!
//! Each seal's checksum covers the whole file up to it, earlier seals
//! included. Apache picks snapshots by their name, and first screens them by
//! their last five bytes, which a complete snapshot always ends with: the
//! seal's `"/"` (length 1, then `/`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use adler2::Adler32;

use crate::proto::{Acl, Id};
use crate::tree::{DataTree, PersistedStat, TreeOptions};

/// "ZKSN".
const SNAP_MAGIC: i32 = 0x5a4b_534e;

/// The ACL reference Apache reserves for `world:anyone` with every permission.
const OPEN_ACL_REF: i64 = -1;

/// The trailer every complete snapshot ends with: a one-byte string "/".
const TRAILER: [u8; 5] = [0, 0, 0, 1, b'/'];

/// The extra sealed sections after the first seal are a few dozen bytes.
const MAX_EXTRA_BYTES: u64 = 4096;

/// Smallest encodings, to bound counts by the bytes left before allocating.
const SESSION_BYTES: u64 = 12;
const ACL_BYTES: u64 = 12;

/// How a snapshot file is stored, by its name's last extension (Apache's
/// `SnapStream.getStreamMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    Gzip,
    Snappy,
}

/// A `snapshot.*` file found in the snapshot directory.
#[derive(Debug, Clone)]
pub(super) struct SnapshotFile {
    pub path: PathBuf,
    pub zxid: i64,
    pub compression: Compression,
}

/// Where and why a snapshot could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Damage {
    pub offset: u64,
    pub detail: String,
}

/// A failure to load a snapshot: damage is a reason to try an older one, an
/// I/O error is not.
#[derive(Debug)]
pub(super) enum LoadError {
    Damaged(Damage),
    Io(io::Error),
}

impl From<Damage> for LoadError {
    fn from(damage: Damage) -> Self {
        LoadError::Damaged(damage)
    }
}

/// The zxid Apache reads from a file name `<prefix>.<hex>[.anything]`
/// (`Util.getZxidFromName`), or `None` if it is not such a name.
pub(super) fn zxid_from_name(name: &str, prefix: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next() != Some(prefix) {
        return None;
    }
    let hex = parts.next()?;
    // Java's Long.parseLong(s, 16) takes an optional sign; a zxid never has one.
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(hex, 16).ok()
}

/// Apache's stream mode for a snapshot file name: the last extension, if it
/// names a compression, else an uncompressed (checked) stream.
pub(super) fn compression_of(name: &str) -> Compression {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some(ext) if ext.eq_ignore_ascii_case("gz") => Compression::Gzip,
        Some(ext) if ext.eq_ignore_ascii_case("snappy") => Compression::Snappy,
        _ => Compression::None,
    }
}

/// Apache's quick screen (`isValidCheckedStream`): at least 10 bytes, ending
/// with the trailer. A snapshot cut short while being written fails it.
pub(super) fn has_trailer(path: &Path) -> io::Result<Option<Damage>> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len < 10 {
        return Ok(Some(Damage {
            offset: 0,
            detail: format!("only {len} bytes long, too short for a snapshot"),
        }));
    }
    file.seek(SeekFrom::Start(len - 5))?;
    let mut tail = [0u8; 5];
    file.read_exact(&mut tail)?;
    if tail != TRAILER {
        return Ok(Some(Damage {
            offset: len - 5,
            detail: "does not end with a snapshot's final seal; it was probably cut short \
                     while being written"
                .to_string(),
        }));
    }
    Ok(None)
}

/// Reads a whole uncompressed snapshot into a new tree, verifying every seal.
/// The tree's last zxid is not set: the caller takes it from the file name,
/// as Apache does.
pub(super) fn load(path: &Path, options: TreeOptions) -> Result<DataTree, LoadError> {
    let file = File::open(path).map_err(LoadError::Io)?;
    let len = file.metadata().map_err(LoadError::Io)?.len();
    let mut r = SealedReader::new(BufReader::with_capacity(1 << 16, file), len);

    let magic = r.i32("file header")?;
    if magic != SNAP_MAGIC {
        return Err(Damage {
            offset: 0,
            detail: format!("magic number {magic:#010x} is not a snapshot's (\"ZKSN\")"),
        }
        .into());
    }
    let _version = r.i32("file header")?;
    let _dbid = r.i64("file header")?;

    let mut tree = DataTree::new(options);
    let sessions = r.count(SESSION_BYTES, "session count")?;
    for _ in 0..sessions {
        let id = r.i64("session id")?;
        let timeout = r.i32("session timeout")?;
        tree.restore_session(id, timeout);
    }

    let acl_lists = r.count(8 + 4, "ACL cache size")?;
    let mut acls: HashMap<i64, Vec<Acl>> = HashMap::with_capacity(acl_lists);
    for _ in 0..acl_lists {
        let reference = r.i64("ACL reference")?;
        let at = r.offset;
        let entries = r.i32("ACL list length")?;
        if entries < 0 {
            return Err(r.damage_at(at, "ACL list in the ACL cache is null").into());
        }
        r.check_count(at, entries, ACL_BYTES, "ACL list length")?;
        let mut list = Vec::with_capacity(entries as usize);
        for _ in 0..entries {
            list.push(r.acl()?);
        }
        acls.insert(reference, list);
    }

    let open = Acl::open_unsafe();
    loop {
        let at = r.offset;
        let path = r.string("node path")?;
        if path == "/" {
            break;
        }
        let data = r.buffer("node data")?.unwrap_or_default();
        let acl_at = r.offset;
        let acl_ref = r.i64("node ACL reference")?;
        let stat = PersistedStat {
            czxid: r.i64("node stat")?,
            mzxid: r.i64("node stat")?,
            ctime: r.i64("node stat")?,
            mtime: r.i64("node stat")?,
            version: r.i32("node stat")?,
            cversion: r.i32("node stat")?,
            aversion: r.i32("node stat")?,
            ephemeral_owner: r.i64("node stat")?,
            pzxid: r.i64("node stat")?,
        };
        let acl = if acl_ref == OPEN_ACL_REF {
            &open
        } else {
            acls.get(&acl_ref).ok_or_else(|| {
                r.damage_at(
                    acl_at,
                    &format!("node {path:?} refers to ACL {acl_ref}, which the ACL cache lacks"),
                )
            })?
        };
        // The root is stored as "".
        let tree_path = if path.is_empty() { "/" } else { path.as_str() };
        tree.restore_node(tree_path, &data, acl, stat)
            .map_err(|e| r.damage_at(at, &format!("node {path:?}: {e}")))?;
    }
    r.seal()?;

    // The sections after the first seal carry nothing the tree needs, but
    // they are sealed too, and a damaged one means a damaged file.
    let extra = r.len.saturating_sub(r.offset);
    if extra > 0 {
        if extra > MAX_EXTRA_BYTES {
            return Err(r
                .damage_at(
                    r.offset,
                    &format!("{extra} unexpected bytes follow the snapshot's seal"),
                )
                .into());
        }
        let start = r.offset;
        let checksum = r.checksum;
        let rest = r.bytes(extra as usize, "sealed sections")?;
        verify_extra_sections(&rest, checksum, start)?;
    }
    Ok(tree)
}

/// Verifies the optional sections after the first seal: a zxid digest
/// (3.6+), the last processed zxid (3.9+), or both, each with its own seal.
fn verify_extra_sections(bytes: &[u8], checksum: Adler32, start: u64) -> Result<(), Damage> {
    let layouts: [&[Section]; 3] = [
        &[Section::Digest],
        &[Section::Digest, Section::LastZxid],
        &[Section::LastZxid],
    ];
    let mut furthest: Option<Damage> = None;
    for layout in layouts {
        match parse_sections(bytes, checksum, start, layout) {
            Ok(()) => return Ok(()),
            Err(damage) => {
                if !matches!(&furthest, Some(f) if f.offset >= damage.offset) {
                    furthest = Some(damage);
                }
            }
        }
    }
    Err(furthest.unwrap_or(Damage {
        offset: start,
        detail: "unreadable sections after the seal".to_string(),
    }))
}

#[derive(Clone, Copy)]
enum Section {
    Digest,
    LastZxid,
}

/// Parses exactly `sections` from `bytes`, each followed by a seal.
fn parse_sections(
    bytes: &[u8],
    mut checksum: Adler32,
    start: u64,
    sections: &[Section],
) -> Result<(), Damage> {
    let mut pos = 0usize;
    let damage = |pos: usize, detail: String| Damage {
        offset: start + pos as u64,
        detail,
    };
    let take = |pos: &mut usize, n: usize, checksum: &mut Adler32| -> Result<&[u8], Damage> {
        let end = pos.checked_add(n).filter(|&end| end <= bytes.len());
        let Some(end) = end else {
            return Err(damage(*pos, "sealed section ends early".to_string()));
        };
        let slice = &bytes[*pos..end];
        checksum.write_slice(slice);
        *pos = end;
        Ok(slice)
    };
    for section in sections {
        match section {
            Section::Digest => {
                take(&mut pos, 8, &mut checksum)?;
                let version = be_i32(take(&mut pos, 4, &mut checksum)?);
                if version < 2 {
                    let len = be_i32(take(&mut pos, 4, &mut checksum)?);
                    if len > 0 {
                        take(&mut pos, len as usize, &mut checksum)?;
                    }
                } else {
                    take(&mut pos, 8, &mut checksum)?;
                }
            }
            Section::LastZxid => {
                take(&mut pos, 8, &mut checksum)?;
            }
        }
        let seal_at = pos;
        let computed = checksum.checksum();
        let stored = be_i64(take(&mut pos, 8, &mut checksum)?);
        let trailer = take(&mut pos, 5, &mut checksum)?;
        if *trailer != TRAILER[..] {
            return Err(damage(
                seal_at + 8,
                "seal is not followed by \"/\"".to_string(),
            ));
        }
        if stored != i64::from(computed) {
            return Err(damage(
                seal_at,
                format!("checksum mismatch (stored {stored:#x}, computed {computed:#x})"),
            ));
        }
    }
    if pos != bytes.len() {
        return Err(damage(
            pos,
            "unexpected bytes after the last seal".to_string(),
        ));
    }
    Ok(())
}

/// Callers take exactly the bytes needed; a short slice reads as 0.
fn be_i32(bytes: &[u8]) -> i32 {
    bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i32::from_be_bytes)
}

fn be_i64(bytes: &[u8]) -> i64 {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i64::from_be_bytes)
}

/// Reads jute primitives from a file, keeping the running Adler-32 of every
/// byte consumed and the offset, and refusing any length that would run past
/// the end of the file before allocating for it.
struct SealedReader<R> {
    inner: R,
    checksum: Adler32,
    offset: u64,
    len: u64,
}

impl<R: Read> SealedReader<R> {
    fn new(inner: R, len: u64) -> Self {
        SealedReader {
            inner,
            checksum: Adler32::new(),
            offset: 0,
            len,
        }
    }

    fn damage_at(&self, offset: u64, detail: &str) -> Damage {
        Damage {
            offset,
            detail: detail.to_string(),
        }
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<Vec<u8>, LoadError> {
        let left = self.len.saturating_sub(self.offset);
        if n as u64 > left {
            return Err(self
                .damage_at(
                    self.offset,
                    &format!("file ends in the middle of the {what}"),
                )
                .into());
        }
        let mut buf = vec![0u8; n];
        self.inner.read_exact(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                // The file shrank while being read.
                LoadError::Damaged(Damage {
                    offset: self.offset,
                    detail: format!("file ends in the middle of the {what}"),
                })
            } else {
                LoadError::Io(e)
            }
        })?;
        self.checksum.write_slice(&buf);
        self.offset += n as u64;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], LoadError> {
        let bytes = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&bytes);
        Ok(a)
    }

    fn i32(&mut self, what: &str) -> Result<i32, LoadError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &str) -> Result<i64, LoadError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    fn check_count(&self, at: u64, count: i32, min_bytes: u64, what: &str) -> Result<(), Damage> {
        let left = self.len.saturating_sub(self.offset);
        if count < 0 || (count as u64).saturating_mul(min_bytes) > left {
            return Err(self.damage_at(at, &format!("{what} {count} is impossible here")));
        }
        Ok(())
    }

    /// A count of items of at least `min_bytes` each.
    fn count(&mut self, min_bytes: u64, what: &str) -> Result<usize, LoadError> {
        let at = self.offset;
        let count = self.i32(what)?;
        self.check_count(at, count, min_bytes, what)?;
        Ok(count as usize)
    }

    /// A buffer; `None` for jute's null (length -1).
    fn buffer(&mut self, what: &str) -> Result<Option<Vec<u8>>, LoadError> {
        let at = self.offset;
        let len = self.i32(what)?;
        if len == -1 {
            return Ok(None);
        }
        self.check_count(at, len, 1, &format!("length of the {what}"))?;
        self.bytes(len as usize, what).map(Some)
    }

    fn string(&mut self, what: &str) -> Result<String, LoadError> {
        let at = self.offset;
        let bytes = self
            .buffer(what)?
            .ok_or_else(|| self.damage_at(at, &format!("{what} is null")))?;
        String::from_utf8(bytes)
            .map_err(|_| self.damage_at(at, &format!("{what} is not UTF-8")).into())
    }

    fn opt_string(&mut self, what: &str) -> Result<String, LoadError> {
        Ok(self
            .buffer(what)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    }

    fn acl(&mut self) -> Result<Acl, LoadError> {
        let perms = self.i32("ACL entry")?;
        let scheme = self.opt_string("ACL scheme")?;
        let id = self.opt_string("ACL id")?;
        Ok(Acl {
            perms,
            id: Id::new(scheme, id),
        })
    }

    /// The seal after the node section: the checksum of everything so far,
    /// then "/".
    fn seal(&mut self) -> Result<(), LoadError> {
        let at = self.offset;
        let computed = self.checksum.checksum();
        let stored = self.i64("seal")?;
        let trailer = self.string("seal")?;
        if trailer != "/" {
            return Err(self
                .damage_at(at + 8, "seal is not followed by \"/\"")
                .into());
        }
        if stored != i64::from(computed) {
            return Err(self
                .damage_at(
                    at,
                    &format!(
                        "checksum mismatch (stored {stored:#x}, computed {computed:#x}): \
                         the snapshot is damaged somewhere before this seal"
                    ),
                )
                .into());
        }
        Ok(())
    }
}
