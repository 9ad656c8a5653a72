//! The byte layout of a snapshot (documented in the parent module): the
//! header, the checksummed blocks carrying the record stream, the trailer.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use super::{SnapshotError, SnapshotMeta, SnapshotPoint};
use crate::proto::{Acl, Id};
use crate::tree::{DataTree, FrozenTree, PersistedStat, TreeOptions};

pub(super) const MAGIC: [u8; 8] = *b"zkrssnap";
const TRAILER_MAGIC: [u8; 8] = *b"zkrs-end";
pub(super) const FORMAT_VERSION: u32 = 1;
/// Bytes of the header before the caller's extra bytes.
const HEADER_FIXED: usize = 64;
/// Largest `extra` a snapshot carries.
pub const MAX_EXTRA_BYTES: usize = 1 << 20;
/// Payload bytes per block as written: a damaged byte is located to within
/// this many bytes.
pub const BLOCK_BYTES: usize = 64 << 10;
/// Largest block payload a reader accepts, bounding its buffer.
const MAX_BLOCK_BYTES: usize = 1 << 20;
const BLOCK_HEADER: usize = 8;
const TRAILER_BYTES: usize = 40;

const TAG_ACL_LIST: u8 = 1;
const TAG_SESSION: u8 = 2;
const TAG_NODE: u8 = 3;
/// A node record's bytes before its path suffix and data.
const NODE_FIXED: usize = 77;
const SESSION_BYTES: usize = 13;
/// Room made up front for at most this many nodes when reading.
const MAX_RESERVED_NODES: usize = 1 << 24;

/// Writes the snapshot of `image` to `out`, which sees the header, then whole
/// blocks, then the trailer: one `write_all` per block, so no buffering is
/// needed in front of a file.
pub(super) fn write<W: Write>(
    out: W,
    image: &FrozenTree,
    point: &SnapshotPoint,
) -> Result<SnapshotMeta, SnapshotError> {
    if point.extra.len() > MAX_EXTRA_BYTES {
        return Err(SnapshotError::ExtraTooLarge {
            len: point.extra.len(),
            max: MAX_EXTRA_BYTES,
        });
    }
    let meta = SnapshotMeta {
        last_index: point.last_index,
        last_term: point.last_term,
        last_zxid: image.last_zxid(),
        created_ms: point.created_ms,
        node_count: image.node_count() as u64,
        session_count: image.sessions().len() as u64,
        extra: point.extra.clone(),
    };
    let mut blocks = BlockWriter::new(out);
    blocks.out.write_all(&encode_header(&meta))?;

    for &(session_id, timeout_ms) in image.sessions() {
        let mut record = [0u8; SESSION_BYTES];
        let mut fields = FieldWriter(&mut record);
        fields.u8(TAG_SESSION);
        fields.i64(session_id);
        fields.i32(timeout_ms);
        blocks.put(&record)?;
        blocks.records += 1;
    }

    let mut acl_numbers: HashMap<usize, u32> = HashMap::new();
    let mut previous_path = String::new();
    let mut failure: Option<io::Error> = None;
    image.for_each_node(|path, node| {
        if failure.is_some() {
            return;
        }
        let acl = node.acl();
        let result = list_number(&mut blocks, &mut acl_numbers, acl).and_then(|acl_number| {
            let shared = shared_prefix(&previous_path, path);
            let suffix = path.get(shared..).unwrap_or_default();
            let data = node.data();
            let mut fixed = [0u8; NODE_FIXED];
            let mut fields = FieldWriter(&mut fixed);
            fields.u8(TAG_NODE);
            fields.len(shared)?;
            fields.len(suffix.len())?;
            fields.u32(acl_number);
            fields.stat(&node.persisted_stat());
            fields.len(data.len())?;
            blocks.put(&fixed)?;
            blocks.put(suffix.as_bytes())?;
            blocks.put(data)?;
            blocks.records += 1;
            Ok(())
        });
        match result {
            Ok(()) => {
                previous_path.clear();
                previous_path.push_str(path);
            }
            Err(error) => failure = Some(error),
        }
    });
    if let Some(error) = failure {
        return Err(error.into());
    }
    blocks.finish()?;
    Ok(meta)
}

/// The number of `acl`'s list in this snapshot, writing the list the first
/// time it is used. Lists are told apart by allocation: the tree shares one
/// per distinct list.
fn list_number<W: Write>(
    blocks: &mut BlockWriter<W>,
    numbers: &mut HashMap<usize, u32>,
    acl: &Arc<[Acl]>,
) -> io::Result<u32> {
    let key = Arc::as_ptr(acl).cast::<Acl>() as usize;
    if let Some(&number) = numbers.get(&key) {
        return Ok(number);
    }
    let number = u32::try_from(numbers.len()).map_err(|_| too_long("ACL lists"))?;
    let mut record = Vec::with_capacity(5 + acl.len() * 24);
    record.push(TAG_ACL_LIST);
    push_len(&mut record, acl.len())?;
    for entry in acl.iter() {
        record.extend_from_slice(&entry.perms.to_le_bytes());
        push_len(&mut record, entry.id.scheme.len())?;
        record.extend_from_slice(entry.id.scheme.as_bytes());
        push_len(&mut record, entry.id.id.len())?;
        record.extend_from_slice(entry.id.id.as_bytes());
    }
    blocks.put(&record)?;
    blocks.records += 1;
    numbers.insert(key, number);
    Ok(number)
}

fn push_len(out: &mut Vec<u8>, len: usize) -> io::Result<()> {
    let len = u32::try_from(len).map_err(|_| too_long("a field"))?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn too_long(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} too long for the snapshot format"),
    )
}

/// Bytes two paths share at the start, ending on a character boundary.
fn shared_prefix(a: &str, b: &str) -> usize {
    let mut shared = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !b.is_char_boundary(shared) {
        shared -= 1;
    }
    shared
}

fn encode_header(meta: &SnapshotMeta) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_FIXED + meta.extra.len() + 4);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    // Checked against MAX_EXTRA_BYTES by the caller.
    bytes.extend_from_slice(&(meta.extra.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&meta.last_index.to_le_bytes());
    bytes.extend_from_slice(&meta.last_term.to_le_bytes());
    bytes.extend_from_slice(&meta.last_zxid.to_le_bytes());
    bytes.extend_from_slice(&meta.created_ms.to_le_bytes());
    bytes.extend_from_slice(&meta.node_count.to_le_bytes());
    bytes.extend_from_slice(&meta.session_count.to_le_bytes());
    bytes.extend_from_slice(&meta.extra);
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// Fills a fixed-size record. Callers size the buffer for what they write;
/// a field that does not fit is dropped rather than panicking.
struct FieldWriter<'a>(&'a mut [u8]);

impl FieldWriter<'_> {
    fn bytes<const N: usize>(&mut self, value: [u8; N]) {
        let buffer = std::mem::take(&mut self.0);
        if let Some((head, rest)) = buffer.split_first_chunk_mut::<N>() {
            *head = value;
            self.0 = rest;
        }
    }

    fn u8(&mut self, value: u8) {
        self.bytes([value]);
    }

    fn u32(&mut self, value: u32) {
        self.bytes(value.to_le_bytes());
    }

    fn i32(&mut self, value: i32) {
        self.bytes(value.to_le_bytes());
    }

    fn i64(&mut self, value: i64) {
        self.bytes(value.to_le_bytes());
    }

    fn len(&mut self, len: usize) -> io::Result<()> {
        self.u32(u32::try_from(len).map_err(|_| too_long("a node's path or data"))?);
        Ok(())
    }

    fn stat(&mut self, stat: &PersistedStat) {
        self.i64(stat.czxid);
        self.i64(stat.mzxid);
        self.i64(stat.ctime);
        self.i64(stat.mtime);
        self.i32(stat.version);
        self.i32(stat.cversion);
        self.i32(stat.aversion);
        self.i64(stat.ephemeral_owner);
        self.i64(stat.pzxid);
    }
}

/// Cuts the record stream into checksummed blocks.
struct BlockWriter<W> {
    out: W,
    /// The block being filled: its 8-byte header, then the payload.
    block: Vec<u8>,
    blocks: u64,
    records: u64,
    /// crc32c over the checksums of the blocks written so far.
    chain: u32,
}

impl<W: Write> BlockWriter<W> {
    fn new(out: W) -> BlockWriter<W> {
        let mut block = Vec::with_capacity(BLOCK_HEADER + BLOCK_BYTES);
        block.resize(BLOCK_HEADER, 0);
        BlockWriter {
            out,
            block,
            blocks: 0,
            records: 0,
            chain: 0,
        }
    }

    fn put(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let room = BLOCK_HEADER + BLOCK_BYTES - self.block.len();
            let (now, later) = bytes.split_at(bytes.len().min(room));
            self.block.extend_from_slice(now);
            bytes = later;
            if self.block.len() == BLOCK_HEADER + BLOCK_BYTES {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    fn flush_block(&mut self) -> io::Result<()> {
        let (header, payload) = self.block.split_at_mut(BLOCK_HEADER);
        if payload.is_empty() {
            return Ok(());
        }
        // At most BLOCK_BYTES.
        let len = (payload.len() as u32).to_le_bytes();
        let crc = block_crc(self.blocks, len, payload);
        header[..4].copy_from_slice(&len);
        header[4..].copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(&self.block)?;
        self.chain = crc32c::crc32c_append(self.chain, &crc.to_le_bytes());
        self.blocks += 1;
        self.block.truncate(BLOCK_HEADER);
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.flush_block()?;
        let mut trailer = [0u8; TRAILER_BYTES];
        let mut fields = FieldWriter(&mut trailer[8..]);
        fields.bytes(TRAILER_MAGIC);
        fields.bytes(self.blocks.to_le_bytes());
        fields.bytes(self.records.to_le_bytes());
        fields.u32(self.chain);
        let crc = crc32c::crc32c(&trailer[8..]);
        trailer[4..8].copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(&trailer)?;
        self.out.flush()
    }
}

/// A block's checksum covers its number, so a block moved, repeated or
/// dropped does not verify.
fn block_crc(number: u64, len: [u8; 4], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&number.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &len);
    crc32c::crc32c_append(crc, payload)
}

// ----- reading -----

/// Reads the header: the snapshot's metadata.
pub(super) fn read_header<R: Read>(input: &mut R) -> Result<SnapshotMeta, SnapshotError> {
    let mut fixed = [0u8; HEADER_FIXED];
    read_or_truncated(input, &mut fixed, 0, "the header")?;
    let mut fields = Fields::new(&fixed);
    let magic: [u8; 8] = fields.array().unwrap_or_default();
    if magic != MAGIC {
        return Err(corrupt(
            0,
            "not a zookeeper-rs snapshot (wrong magic number)".to_owned(),
        ));
    }
    let version = fields.u32().unwrap_or_default();
    let extra_len = fields.u32().unwrap_or_default() as usize;
    if extra_len > MAX_EXTRA_BYTES {
        return Err(corrupt(
            12,
            format!("the header claims {extra_len} extra bytes, more than the {MAX_EXTRA_BYTES} allowed"),
        ));
    }
    let mut rest = vec![0u8; extra_len + 4];
    read_or_truncated(input, &mut rest, HEADER_FIXED as u64, "the header")?;
    let (extra, stored_crc) = rest.split_at(extra_len);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&fixed), extra);
    if Fields::new(stored_crc).u32() != Some(crc) {
        return Err(corrupt(0, "the header fails its checksum".to_owned()));
    }
    // Checked after the checksum, so that damage is not reported as a newer
    // format.
    if version != FORMAT_VERSION {
        return Err(corrupt(
            8,
            format!("format version {version}; this build reads version {FORMAT_VERSION}"),
        ));
    }
    Ok(SnapshotMeta {
        last_index: fields.u64().unwrap_or_default(),
        last_term: fields.u64().unwrap_or_default(),
        last_zxid: fields.i64().unwrap_or_default(),
        created_ms: fields.i64().unwrap_or_default(),
        node_count: fields.u64().unwrap_or_default(),
        session_count: fields.u64().unwrap_or_default(),
        extra: extra.to_vec(),
    })
}

/// Reads a whole snapshot into a new tree.
pub(super) fn read<R: Read>(
    mut input: R,
    options: TreeOptions,
) -> Result<(DataTree, SnapshotMeta), SnapshotError> {
    let meta = read_header(&mut input)?;
    let header_len = (HEADER_FIXED + meta.extra.len() + 4) as u64;
    let mut stream = BlockReader::new(input, header_len);
    let mut tree = DataTree::new(options);
    // The count is only a hint for reserving memory; a damaged header must
    // not reserve without bound.
    let expected_nodes = usize::try_from(meta.node_count).map_or(0, |n| n.min(MAX_RESERVED_NODES));
    let mut restorer = tree.restorer(expected_nodes);
    let mut acl_lists: Vec<Vec<Acl>> = Vec::new();
    let mut path = String::new();
    let mut nodes = 0u64;
    let mut sessions = 0u64;
    let mut records = 0u64;
    while let Some(tag) = stream.next_tag()? {
        let at = stream.record_offset;
        records += 1;
        match tag {
            TAG_NODE => {
                let fixed = stream.take(NODE_FIXED - 1)?;
                let mut fields = Fields::new(fixed);
                let (Some(shared), Some(suffix_len), Some(acl_number), Some(stat), Some(data_len)) = (
                    fields.len(),
                    fields.len(),
                    fields.u32(),
                    fields.stat(),
                    fields.len(),
                ) else {
                    return Err(corrupt(at, "short node record".to_owned()));
                };
                if shared > path.len() || !path.is_char_boundary(shared) {
                    return Err(corrupt(
                        at,
                        format!("a node shares {shared} bytes with the previous path {path:?}"),
                    ));
                }
                path.truncate(shared);
                let suffix = std::str::from_utf8(stream.take(suffix_len)?)
                    .map_err(|_| corrupt(at, "a node's path is not UTF-8".to_owned()))?;
                path.push_str(suffix);
                let acl = acl_lists.get(acl_number as usize).ok_or_else(|| {
                    corrupt(
                        at,
                        format!("node {path:?} uses ACL list {acl_number}, which precedes no node"),
                    )
                })?;
                let data = stream.take(data_len)?;
                restorer
                    .restore_node(&path, data, acl, stat)
                    .map_err(|error| corrupt(at, format!("cannot restore a node: {error}")))?;
                nodes += 1;
            }
            TAG_ACL_LIST => acl_lists.push(read_acl_list(&mut stream, at)?),
            TAG_SESSION => {
                let mut fields = Fields::new(stream.take(SESSION_BYTES - 1)?);
                let (Some(session_id), Some(timeout_ms)) = (fields.i64(), fields.i32()) else {
                    return Err(corrupt(at, "short session record".to_owned()));
                };
                restorer.restore_session(session_id, timeout_ms);
                sessions += 1;
            }
            other => return Err(corrupt(at, format!("unknown record type {other}"))),
        }
    }
    let end = stream.record_offset;
    restorer
        .finish()
        .map_err(|error| corrupt(end, format!("cannot restore a node: {error}")))?;
    if records != stream.trailer_records {
        return Err(corrupt(
            end,
            format!(
                "the trailer counts {} records, the blocks hold {records}",
                stream.trailer_records
            ),
        ));
    }
    if nodes != meta.node_count || sessions != meta.session_count {
        return Err(corrupt(
            end,
            format!(
                "the header promises {} nodes and {} sessions, the blocks hold {nodes} and {sessions}",
                meta.node_count, meta.session_count
            ),
        ));
    }
    tree.set_last_zxid(meta.last_zxid);
    tree.finish_restore();
    Ok((tree, meta))
}

fn read_acl_list<R: Read>(stream: &mut BlockReader<R>, at: u64) -> Result<Vec<Acl>, SnapshotError> {
    let count = Fields::new(stream.take(4)?).len().unwrap_or_default();
    // Bounded by what is present, not by what the count claims.
    let mut list = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let mut fields = Fields::new(stream.take(8)?);
        let (Some(perms), Some(scheme_len)) = (fields.i32(), fields.len()) else {
            return Err(corrupt(at, "short ACL record".to_owned()));
        };
        let scheme = utf8(stream.take(scheme_len)?, at)?;
        let id_len = Fields::new(stream.take(4)?).len().unwrap_or_default();
        let id = utf8(stream.take(id_len)?, at)?;
        list.push(Acl {
            perms,
            id: Id { scheme, id },
        });
    }
    Ok(list)
}

fn utf8(bytes: &[u8], at: u64) -> Result<String, SnapshotError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| corrupt(at, "an ACL id is not UTF-8".to_owned()))
}

fn corrupt(offset: u64, detail: String) -> SnapshotError {
    SnapshotError::Corrupt { offset, detail }
}

fn read_or_truncated<R: Read>(
    input: &mut R,
    buffer: &mut [u8],
    offset: u64,
    what: &str,
) -> Result<(), SnapshotError> {
    input.read_exact(buffer).map_err(|error| {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            corrupt(
                offset,
                format!("the snapshot ends inside {what}: it is truncated"),
            )
        } else {
            SnapshotError::Io(error)
        }
    })
}

/// Reads little-endian fields from a slice; `None` once it runs out.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Fields<'a> {
        Fields(bytes)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn len(&mut self) -> Option<usize> {
        self.u32().map(|len| len as usize)
    }

    fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }

    fn stat(&mut self) -> Option<PersistedStat> {
        Some(PersistedStat {
            czxid: self.i64()?,
            mzxid: self.i64()?,
            ctime: self.i64()?,
            mtime: self.i64()?,
            version: self.i32()?,
            cversion: self.i32()?,
            aversion: self.i32()?,
            ephemeral_owner: self.i64()?,
            pzxid: self.i64()?,
        })
    }
}

/// Reads the blocks back into the record stream, verifying each block before
/// any of its bytes is used.
struct BlockReader<R> {
    input: R,
    /// File offset of the next byte of `input`.
    offset: u64,
    block: Vec<u8>,
    pos: usize,
    /// File offset of `block[0]`.
    block_start: u64,
    blocks: u64,
    chain: u32,
    /// Set once the trailer has been read and verified.
    ended: bool,
    trailer_records: u64,
    /// File offset where the record being read started.
    record_offset: u64,
    /// A record's field that spans blocks, put together.
    scratch: Vec<u8>,
}

impl<R: Read> BlockReader<R> {
    fn new(input: R, offset: u64) -> BlockReader<R> {
        BlockReader {
            input,
            offset,
            block: Vec::new(),
            pos: 0,
            block_start: offset,
            blocks: 0,
            chain: 0,
            ended: false,
            trailer_records: 0,
            record_offset: offset,
            scratch: Vec::new(),
        }
    }

    /// The next record's type, or `None` after the last record.
    fn next_tag(&mut self) -> Result<Option<u8>, SnapshotError> {
        if self.pos == self.block.len() && !self.next_block()? {
            self.record_offset = self.offset;
            return Ok(None);
        }
        self.record_offset = self.block_start + self.pos as u64;
        let tag = self.block.get(self.pos).copied();
        self.pos += 1;
        Ok(tag)
    }

    /// The next `n` bytes of the record stream.
    fn take(&mut self, n: usize) -> Result<&[u8], SnapshotError> {
        let end = self.pos.saturating_add(n);
        if end <= self.block.len() {
            let start = self.pos;
            self.pos = end;
            return Ok(self.block.get(start..end).unwrap_or_default());
        }
        self.scratch.clear();
        while self.scratch.len() < n {
            if self.pos == self.block.len() && !self.next_block()? {
                return Err(corrupt(
                    self.record_offset,
                    "the last record runs past the end of the data".to_owned(),
                ));
            }
            let want = (n - self.scratch.len()).min(self.block.len() - self.pos);
            let piece = self
                .block
                .get(self.pos..self.pos + want)
                .unwrap_or_default();
            self.scratch.extend_from_slice(piece);
            self.pos += want;
        }
        Ok(&self.scratch)
    }

    /// Loads and verifies the next block; `false` once the trailer has been
    /// read instead.
    fn next_block(&mut self) -> Result<bool, SnapshotError> {
        if self.ended {
            return Ok(false);
        }
        let at = self.offset;
        let mut header = [0u8; BLOCK_HEADER];
        self.read(&mut header, at, "a block header")?;
        let mut fields = Fields::new(&header);
        let len_bytes: [u8; 4] = fields.array().unwrap_or_default();
        let stored_crc = fields.u32().unwrap_or_default();
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len == 0 {
            self.read_trailer(at, stored_crc)?;
            return Ok(false);
        }
        if len > MAX_BLOCK_BYTES {
            return Err(corrupt(
                at,
                format!(
                    "block {} claims {len} bytes, more than the {MAX_BLOCK_BYTES} allowed",
                    self.blocks
                ),
            ));
        }
        let mut block = std::mem::take(&mut self.block);
        block.resize(len, 0);
        let read = self.read(&mut block, at, "a block");
        self.block = block;
        read?;
        let crc = block_crc(self.blocks, len_bytes, &self.block);
        if crc != stored_crc {
            return Err(corrupt(
                at,
                format!(
                    "block {} (bytes {at}..{}) fails its checksum",
                    self.blocks,
                    at + (BLOCK_HEADER + len) as u64
                ),
            ));
        }
        self.chain = crc32c::crc32c_append(self.chain, &crc.to_le_bytes());
        self.blocks += 1;
        self.block_start = at + BLOCK_HEADER as u64;
        self.pos = 0;
        Ok(true)
    }

    fn read_trailer(&mut self, at: u64, stored_crc: u32) -> Result<(), SnapshotError> {
        let mut rest = [0u8; TRAILER_BYTES - BLOCK_HEADER];
        self.read(&mut rest, at, "the trailer")?;
        if crc32c::crc32c(&rest) != stored_crc {
            return Err(corrupt(at, "the trailer fails its checksum".to_owned()));
        }
        let mut fields = Fields::new(&rest);
        let magic: [u8; 8] = fields.array().unwrap_or_default();
        let blocks = fields.u64().unwrap_or_default();
        let records = fields.u64().unwrap_or_default();
        let chain = fields.u32().unwrap_or_default();
        if magic != TRAILER_MAGIC || blocks != self.blocks || chain != self.chain {
            return Err(corrupt(
                at,
                format!(
                    "the trailer describes {blocks} blocks, but {} blocks precede it \
                     (or their checksums differ): blocks are missing",
                    self.blocks
                ),
            ));
        }
        let mut probe = [0u8; 1];
        loop {
            match self.input.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => return Err(corrupt(self.offset, "bytes follow the trailer".to_owned())),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(SnapshotError::Io(error)),
            }
        }
        self.trailer_records = records;
        self.ended = true;
        self.block.clear();
        self.pos = 0;
        Ok(())
    }

    fn read(&mut self, buffer: &mut [u8], at: u64, what: &str) -> Result<(), SnapshotError> {
        read_or_truncated(&mut self.input, buffer, at, what)?;
        self.offset += buffer.len() as u64;
        Ok(())
    }
}
