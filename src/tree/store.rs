//! Node storage: a slab of fixed-size nodes addressed by `u32` ids, children
//! kept as an intrusive doubly linked list, and one open-addressing hash index
//! from `(parent id, child name)` to the child's id.
//!
//! The layout is chosen for memory: a node is 64 bytes; its name, data and
//! the stat fields that differ from their usual values (a node written once
//! and childless keeps none of them) form one record in its chunk's byte
//! arena, so a node costs no heap allocation of its own (no allocator
//! header, no rounding to a size class, no holes left between long-lived
//! nodes by short-lived buffers). A record that changes size is written anew
//! at the arena's end; the chunk compacts its arena when the garbage exceeds
//! the live records. Nothing stores a full path, and the lookup index costs
//! about eight bytes per node (a 4-byte slot at no more than 3/4 load). A
//! slot holds the node id in its low [`ID_BITS`] bits and a few more bits of
//! its key's hash above them, so that probing past other keys rarely touches
//! the nodes themselves: a lookup costs about one cache miss per path
//! component that misses, two that hit. Growing the index and removing from it rehash
//! keys from the nodes. Paths are resolved component by component; full paths
//! are rebuilt from parent links only where one is needed.
//!
//! The slab is a list of reference-counted chunks of [`CHUNK_NODES`] nodes
//! and their arena, copied on write: [`NodeStore::freeze`] shares every
//! chunk with a read-only [`Slab`] in time proportional to the number of
//! chunks, and the first change to a shared chunk afterwards copies that
//! chunk alone. A
//! snapshot can thus be serialized from a consistent view while writers go on.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use super::acl_cache::AclRef;
use super::PersistedStat;

/// A node's slot in the slab.
pub(crate) type NodeId = u32;

/// "No node": the end of a sibling list, the root's parent, an empty slot.
pub(crate) const NIL: NodeId = u32::MAX;

/// The root always lives in slot 0.
pub(crate) const ROOT: NodeId = 0;

/// Bits of an index slot that hold the node id; the store holds fewer than
/// `2^ID_BITS` (67 million) nodes, far more than fit in memory at once.
const ID_BITS: u32 = 26;
const ID_MASK: u32 = (1 << ID_BITS) - 1;

/// `name_len` of a slot on the free list.
const FREE_SLOT: u32 = u32::MAX;

/// Nodes per copy-on-write chunk. Small enough that the first write to a
/// chunk shared with a frozen view copies only a few tens of kilobytes, large
/// enough that freezing a million nodes shares only a few thousand chunks.
pub(crate) const CHUNK_NODES: usize = 512;
const CHUNK_SHIFT: u32 = CHUNK_NODES.trailing_zeros();
const CHUNK_MASK: NodeId = (CHUNK_NODES - 1) as NodeId;

/// One znode: 64 bytes plus its record in the chunk's arena (see [`Rare`]). The stat fields
/// are stored flat (not as a nested struct) so that the compiler can pack
/// the `u32` fields without padding.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) czxid: i64,
    pub(crate) ctime: i64,
    pub(crate) version: i32,
    /// Apache's persisted cversion: the number of child creations. Clients
    /// see `2 * cversion - num_children` (creations plus deletions).
    pub(crate) cversion: i32,
    pub(crate) aversion: i32,
    pub(crate) acl: AclRef,
    parent: NodeId,
    first_child: NodeId,
    /// The next sibling, or `NIL` after the last one.
    next_sibling: NodeId,
    /// The previous sibling; the first child's points at the last child, so
    /// appending needs no tail pointer.
    prev_sibling: NodeId,
    num_children: u32,
    name_len: u32,
    /// Where the node's record is in its chunk's arena, and its length (0
    /// for a free slot). The record: a flags byte, the [`Rare`] fields that
    /// differ from their usual values (8 bytes each, in flag order), the
    /// name's UTF-8 bytes, then the data.
    at: u32,
    len: u32,
}

/// Stat fields that usually equal another: `mzxid` and `pzxid` equal
/// `czxid`, and `mtime` equals `ctime`, until the node or its children
/// change, and `ephemeral_owner` is 0 but for ephemerals, containers and
/// TTL nodes. Most nodes of a large tree are written once and have no
/// children, so each of these is kept in the node's record only when it
/// differs, which saves 32 bytes a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rare {
    mzxid: i64,
    pzxid: i64,
    mtime: i64,
    /// Raw owner: a session id, [`super::ephemeral::CONTAINER_OWNER`], an
    /// encoded TTL, or 0.
    owner: i64,
}

/// Flags of the record's first byte, in the order the fields follow it.
const HAS_MZXID: u8 = 1;
const HAS_PZXID: u8 = 2;
const HAS_MTIME: u8 = 4;
const HAS_OWNER: u8 = 8;

impl Rare {
    /// The values a node created at `czxid` and `ctime` starts with.
    fn default_for(czxid: i64, ctime: i64) -> Rare {
        Rare {
            mzxid: czxid,
            pzxid: czxid,
            mtime: ctime,
            owner: 0,
        }
    }

    /// The flags saying which fields must be kept, for a node created at
    /// `czxid` and `ctime`.
    fn flags(&self, czxid: i64, ctime: i64) -> u8 {
        let mut flags = 0;
        if self.mzxid != czxid {
            flags |= HAS_MZXID;
        }
        if self.pzxid != czxid {
            flags |= HAS_PZXID;
        }
        if self.mtime != ctime {
            flags |= HAS_MTIME;
        }
        if self.owner != 0 {
            flags |= HAS_OWNER;
        }
        flags
    }

    fn kept(&self, flags: u8) -> impl Iterator<Item = i64> + '_ {
        [
            (HAS_MZXID, self.mzxid),
            (HAS_PZXID, self.pzxid),
            (HAS_MTIME, self.mtime),
            (HAS_OWNER, self.owner),
        ]
        .into_iter()
        .filter(move |(flag, _)| flags & flag != 0)
        .map(|(_, value)| value)
    }
}

/// A node's record (see [`Node::bytes`]).
fn record(flags: u8, rare: &Rare, name: &[u8], data: &[u8]) -> Box<[u8]> {
    let kept = flags.count_ones() as usize;
    let mut bytes = Vec::with_capacity(1 + 8 * kept + name.len() + data.len());
    bytes.push(flags);
    for value in rare.kept(flags) {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(data);
    bytes.into_boxed_slice()
}

impl Node {
    pub(crate) fn parent(&self) -> NodeId {
        self.parent
    }

    pub(crate) fn num_children(&self) -> u32 {
        self.num_children
    }
}

/// A node with its record, as read from the slab. Dereferences to the
/// node's fixed fields.
#[derive(Clone, Copy)]
pub(crate) struct NodeRef<'a> {
    node: &'a Node,
    record: &'a [u8],
}

impl std::ops::Deref for NodeRef<'_> {
    type Target = Node;

    fn deref(&self) -> &Node {
        self.node
    }
}

impl<'a> NodeRef<'a> {
    fn flags(&self) -> u8 {
        self.record.first().copied().unwrap_or(0)
    }

    /// Where the name starts: after the flags byte and the kept fields.
    fn name_start(&self) -> usize {
        1 + 8 * self.flags().count_ones() as usize
    }

    /// A kept field's value, or `None` when the record does not hold it.
    fn kept(&self, flag: u8) -> Option<i64> {
        let flags = self.flags();
        if flags & flag == 0 {
            return None;
        }
        let at = 1 + 8 * (flags & (flag - 1)).count_ones() as usize;
        let raw: [u8; 8] = self.record.get(at..at + 8)?.try_into().ok()?;
        Some(i64::from_le_bytes(raw))
    }

    pub(crate) fn mzxid(&self) -> i64 {
        self.kept(HAS_MZXID).unwrap_or(self.node.czxid)
    }

    pub(crate) fn pzxid(&self) -> i64 {
        self.kept(HAS_PZXID).unwrap_or(self.node.czxid)
    }

    pub(crate) fn mtime(&self) -> i64 {
        self.kept(HAS_MTIME).unwrap_or(self.node.ctime)
    }

    /// Raw owner: a session id, [`super::ephemeral::CONTAINER_OWNER`], an
    /// encoded TTL, or 0.
    pub(crate) fn ephemeral_owner(&self) -> i64 {
        self.kept(HAS_OWNER).unwrap_or(0)
    }

    fn rare(&self) -> Rare {
        Rare {
            mzxid: self.mzxid(),
            pzxid: self.pzxid(),
            mtime: self.mtime(),
            owner: self.ephemeral_owner(),
        }
    }

    fn name_bytes(&self) -> &'a [u8] {
        let start = self.name_start();
        self.record
            .get(start..start + self.node.name_len as usize)
            .unwrap_or_default()
    }

    pub(crate) fn name(&self) -> &'a str {
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    pub(crate) fn data(&self) -> &'a [u8] {
        self.record
            .get(self.name_start() + self.node.name_len as usize..)
            .unwrap_or_default()
    }

    pub(crate) fn persisted(&self) -> PersistedStat {
        let rare = self.rare();
        PersistedStat {
            czxid: self.node.czxid,
            mzxid: rare.mzxid,
            ctime: self.node.ctime,
            mtime: rare.mtime,
            version: self.node.version,
            cversion: self.node.cversion,
            aversion: self.node.aversion,
            ephemeral_owner: rare.owner,
            pzxid: rare.pzxid,
        }
    }
}

/// A node of a chunk the caller may change. Dereferences to the node's
/// fixed fields; changes to its record go through its methods.
pub(crate) struct NodeMut<'a> {
    chunk: &'a mut Chunk,
    slot: usize,
}

impl std::ops::Deref for NodeMut<'_> {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.chunk.nodes[self.slot]
    }
}

impl std::ops::DerefMut for NodeMut<'_> {
    fn deref_mut(&mut self) -> &mut Node {
        &mut self.chunk.nodes[self.slot]
    }
}

impl NodeMut<'_> {
    fn as_ref(&self) -> NodeRef<'_> {
        self.chunk.node(self.slot)
    }

    /// Changes the rare fields: in place when the record already keeps the
    /// same ones, else by writing a new record.
    fn set_rare(&mut self, rare: Rare) {
        let (czxid, ctime) = (self.czxid, self.ctime);
        let flags = rare.flags(czxid, ctime);
        let current = self.as_ref();
        if flags == current.flags() && !current.record.is_empty() {
            let at = self.at as usize;
            for (i, value) in rare.kept(flags).enumerate() {
                let start = at + 1 + 8 * i;
                if let Some(field) = self.chunk.arena.get_mut(start..start + 8) {
                    field.copy_from_slice(&value.to_le_bytes());
                }
            }
        } else {
            let record = record(flags, &rare, current.name_bytes(), current.data());
            self.chunk.write_record(self.slot, &record);
        }
    }

    /// Records a change of the node's data (setData, reconfig).
    pub(crate) fn set_modified(&mut self, mzxid: i64, mtime: i64) {
        let rare = Rare {
            mzxid,
            mtime,
            ..self.as_ref().rare()
        };
        self.set_rare(rare);
    }

    /// Records a change of the node's children.
    pub(crate) fn set_pzxid(&mut self, pzxid: i64) {
        let rare = Rare {
            pzxid,
            ..self.as_ref().rare()
        };
        self.set_rare(rare);
    }

    pub(crate) fn pzxid(&self) -> i64 {
        self.as_ref().pzxid()
    }

    pub(crate) fn set_persisted(&mut self, stat: &PersistedStat) {
        let rare = Rare {
            mzxid: stat.mzxid,
            pzxid: stat.pzxid,
            mtime: stat.mtime,
            owner: stat.ephemeral_owner,
        };
        // The record's kept fields are relative to czxid and ctime: write
        // it against the new ones.
        let flags = rare.flags(stat.czxid, stat.ctime);
        let current = self.as_ref();
        let record = record(flags, &rare, current.name_bytes(), current.data());
        self.chunk.write_record(self.slot, &record);
        let node = &mut **self;
        node.czxid = stat.czxid;
        node.ctime = stat.ctime;
        node.version = stat.version;
        node.cversion = stat.cversion;
        node.aversion = stat.aversion;
    }
}

/// Nodes per copy-on-write chunk and the arena holding their records.
#[derive(Clone, Default)]
pub(crate) struct Chunk {
    nodes: Vec<Node>,
    /// The nodes' records, back to back. A record that changes size is
    /// written anew at the end and its old bytes become garbage, which
    /// compaction reclaims.
    arena: Vec<u8>,
    garbage: usize,
}

/// A chunk's arena is compacted once its garbage exceeds this much and half
/// its length, so the garbage costs at most as much as the live records.
const COMPACT_AT_GARBAGE: usize = 4096;

impl Chunk {
    fn node(&self, slot: usize) -> NodeRef<'_> {
        let node = &self.nodes[slot];
        let at = node.at as usize;
        NodeRef {
            node,
            record: self
                .arena
                .get(at..at + node.len as usize)
                .unwrap_or_default(),
        }
    }

    /// Replaces a node's record: in place when the length is the same,
    /// else at the arena's end.
    fn write_record(&mut self, slot: usize, record: &[u8]) {
        let (at, len) = {
            let node = &self.nodes[slot];
            (node.at as usize, node.len as usize)
        };
        if len == record.len() {
            if let Some(old) = self.arena.get_mut(at..at + len) {
                old.copy_from_slice(record);
                return;
            }
        }
        self.garbage += len;
        let at = self.append(record);
        let node = &mut self.nodes[slot];
        node.at = at;
        node.len = record.len() as u32;
        self.compact_if_wasteful();
    }

    /// Appends a record and returns its offset. The arena grows by an
    /// eighth at a time rather than doubling, so that its spare capacity
    /// stays small.
    fn append(&mut self, record: &[u8]) -> u32 {
        let needed = self.arena.len() + record.len();
        if needed > self.arena.capacity() {
            let step = record.len().max(self.arena.len() / 8);
            self.arena.reserve_exact(step);
        }
        // Records are at most a frame (1 MiB) each and the arena at most
        // twice its live records, far below 4 GiB per chunk.
        let at = u32::try_from(self.arena.len()).unwrap_or(u32::MAX);
        self.arena.extend_from_slice(record);
        at
    }

    /// Frees a node's record (its slot joins the free list).
    fn drop_record(&mut self, slot: usize) {
        let node = &mut self.nodes[slot];
        self.garbage += node.len as usize;
        node.at = 0;
        node.len = 0;
        self.compact_if_wasteful();
    }

    fn compact_if_wasteful(&mut self) {
        if self.garbage < COMPACT_AT_GARBAGE || self.garbage * 2 < self.arena.len() {
            return;
        }
        let live = self.arena.len() - self.garbage;
        let mut arena = Vec::with_capacity(live);
        for node in &mut self.nodes {
            let at = node.at as usize;
            let record = self
                .arena
                .get(at..at + node.len as usize)
                .unwrap_or_default();
            node.at = u32::try_from(arena.len()).unwrap_or(u32::MAX);
            arena.extend_from_slice(record);
        }
        self.arena = arena;
        self.garbage = 0;
    }

    /// Gives back the arena's spare capacity, once the chunk is full and
    /// new nodes go elsewhere.
    fn settle(&mut self) {
        self.arena.shrink_to_fit();
    }
}

/// An index entry: the node id in the low [`ID_BITS`] bits, the top bits of
/// the hash of its `(parent, name)` key above them. The root is never
/// indexed, so id 0 (and the all-zero slot) marks an empty slot. The hash's
/// low bits choose the home slot.
type Slot = u32;

const EMPTY: Slot = 0;

fn slot_id(slot: Slot) -> NodeId {
    slot & ID_MASK
}

/// The hash bits a slot keeps: the top ones, independent of the low bits
/// that choose the home slot.
fn tag_of(hash: u64) -> u32 {
    ((hash >> (64 - (32 - ID_BITS))) as u32) << ID_BITS
}

/// A node attached but not yet indexed, with its key's hash; see
/// [`NodeStore::attach_unindexed`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingIndex {
    hash: u64,
    id: NodeId,
}

/// [`NodeStore::index_pending`] sorts entries into `2^PENDING_BUCKET_BITS`
/// runs of the table.
const PENDING_BUCKET_BITS: u32 = 12;

/// The slab is full: more than `u32::MAX - 1` nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreFull;

/// The nodes, addressed by id, in copy-on-write chunks. Cloning shares every
/// chunk.
#[derive(Clone, Default)]
pub(crate) struct Slab {
    chunks: Vec<Arc<Chunk>>,
    len: usize,
}

impl Slab {
    pub(crate) fn get(&self, id: NodeId) -> NodeRef<'_> {
        self.chunks[(id >> CHUNK_SHIFT) as usize].node((id & CHUNK_MASK) as usize)
    }

    /// The node, copying its chunk first if a frozen view shares it.
    fn get_mut(&mut self, id: NodeId) -> NodeMut<'_> {
        let chunk = &mut self.chunks[(id >> CHUNK_SHIFT) as usize];
        NodeMut {
            chunk: Arc::make_mut(chunk),
            slot: (id & CHUNK_MASK) as usize,
        }
    }

    /// Slots allocated, free or not.
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, mut node: Node, record: &[u8]) {
        if self.len % CHUNK_NODES == 0 {
            self.chunks.push(Arc::new(Chunk {
                nodes: Vec::with_capacity(CHUNK_NODES),
                ..Chunk::default()
            }));
        }
        if let Some(last) = self.chunks.last_mut() {
            let chunk = Arc::make_mut(last);
            node.at = chunk.append(record);
            node.len = record.len() as u32;
            chunk.nodes.push(node);
            if chunk.nodes.len() == CHUNK_NODES {
                chunk.settle();
            }
            self.len += 1;
        }
    }

    /// The ids of a node's children, oldest first.
    pub(crate) fn children(&self, id: NodeId) -> ChildIds<'_> {
        ChildIds {
            slab: self,
            next: self.get(id).first_child,
        }
    }

    /// A copy sharing nothing with `self`, as a plain clone of the tree would
    /// be; for measuring what copy-on-write saves.
    #[cfg(test)]
    pub(crate) fn deep_clone(&self) -> Slab {
        Slab {
            chunks: self
                .chunks
                .iter()
                .map(|chunk| Arc::new(Chunk::clone(chunk)))
                .collect(),
            len: self.len,
        }
    }

    #[cfg(test)]
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

pub(crate) struct NodeStore {
    nodes: Slab,
    free_head: NodeId,
    live: usize,
    /// Open-addressing table (linear probing) of attached non-root nodes,
    /// keyed by `(parent, name)` hashed through `hasher`. [`EMPTY`] marks an
    /// empty slot. Length is zero or a power of two.
    slots: Vec<Slot>,
    indexed: usize,
    hasher: RandomState,
}

impl NodeStore {
    /// A store holding only a root with the given stat and ACL.
    pub(crate) fn new(root_stat: &PersistedStat, root_acl: AclRef) -> NodeStore {
        let root = Node {
            czxid: 0,
            ctime: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            acl: root_acl,
            parent: NIL,
            first_child: NIL,
            next_sibling: NIL,
            prev_sibling: NIL,
            num_children: 0,
            name_len: 0,
            at: 0,
            len: 0,
        };
        let mut nodes = Slab::default();
        nodes.push(root, &record(0, &Rare::default_for(0, 0), b"", b""));
        nodes.get_mut(ROOT).set_persisted(root_stat);
        NodeStore {
            nodes,
            free_head: NIL,
            live: 1,
            slots: Vec::new(),
            indexed: 0,
            hasher: RandomState::new(),
        }
    }

    /// Nodes allocated and not freed (attached or awaiting commit).
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    pub(crate) fn get(&self, id: NodeId) -> NodeRef<'_> {
        self.nodes.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: NodeId) -> NodeMut<'_> {
        self.nodes.get_mut(id)
    }

    /// The nodes, for traversals shared with frozen views.
    pub(crate) fn nodes(&self) -> &Slab {
        &self.nodes
    }

    /// A read-only view of every node as it is now, sharing the chunks (see
    /// the module documentation). Costs one reference count per chunk.
    pub(crate) fn freeze(&self) -> Slab {
        self.nodes.clone()
    }

    /// Resolves an absolute path. `""` is the root, as in Apache's node map.
    pub(crate) fn lookup(&self, path: &str) -> Option<NodeId> {
        if path.is_empty() || path == "/" {
            return Some(ROOT);
        }
        let rest = path.strip_prefix('/')?;
        rest.split('/')
            .try_fold(ROOT, |parent, name| self.child(parent, name))
    }

    /// The attached child of `parent` called `name`.
    pub(crate) fn child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let hash = self.hash(parent, name.as_bytes());
        let tag = tag_of(hash);
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY {
                return None;
            }
            if slot & !ID_MASK == tag {
                let id = slot_id(slot);
                let node = self.get(id);
                if node.parent == parent && node.name_bytes() == name.as_bytes() {
                    return Some(id);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Allocates an unattached node; [`NodeStore::attach`] makes it visible.
    pub(crate) fn alloc(
        &mut self,
        parent: NodeId,
        name: &str,
        data: &[u8],
        acl: AclRef,
        stat: &PersistedStat,
    ) -> Result<NodeId, StoreFull> {
        let rare = Rare {
            mzxid: stat.mzxid,
            pzxid: stat.pzxid,
            mtime: stat.mtime,
            owner: stat.ephemeral_owner,
        };
        let flags = rare.flags(stat.czxid, stat.ctime);
        let node = Node {
            czxid: stat.czxid,
            ctime: stat.ctime,
            version: stat.version,
            cversion: stat.cversion,
            aversion: stat.aversion,
            acl,
            parent,
            first_child: NIL,
            next_sibling: NIL,
            prev_sibling: NIL,
            num_children: 0,
            name_len: u32::try_from(name.len()).map_err(|_| StoreFull)?,
            at: 0,
            len: 0,
        };
        let record = record(flags, &rare, name.as_bytes(), data);
        let id = if self.free_head != NIL {
            let id = self.free_head;
            self.free_head = self.get(id).next_sibling;
            let mut slot = self.get_mut(id);
            *slot = node;
            slot.chunk.write_record(slot.slot, &record);
            id
        } else {
            let id = NodeId::try_from(self.nodes.len())
                .ok()
                .filter(|&id| id <= ID_MASK)
                .ok_or(StoreFull)?;
            self.nodes.push(node, &record);
            id
        };
        self.live += 1;
        Ok(id)
    }

    /// Returns a detached node's slot to the free list.
    pub(crate) fn free(&mut self, id: NodeId) {
        let next_free = self.free_head;
        let mut node = self.get_mut(id);
        node.chunk.drop_record(node.slot);
        node.name_len = FREE_SLOT;
        node.first_child = NIL;
        node.num_children = 0;
        node.next_sibling = next_free;
        self.free_head = id;
        self.live -= 1;
    }

    /// Appends a node to its parent's children and indexes it.
    pub(crate) fn attach(&mut self, id: NodeId) {
        self.attach_before(id, NIL);
    }

    /// Appends a node to its parent's children, leaving it out of the index
    /// until [`NodeStore::index_pending`] is given the returned entry.
    /// [`NodeStore::child`] and [`NodeStore::lookup`] do not see it until
    /// then. For restoring many nodes: indexing them one by one writes the
    /// table at random, a cache and TLB miss per node.
    pub(crate) fn attach_unindexed(&mut self, id: NodeId) -> PendingIndex {
        self.link_before(id, NIL);
        let hash = self.hash_of(id);
        PendingIndex { hash, id }
    }

    /// Indexes nodes attached with [`NodeStore::attach_unindexed`], writing
    /// the table in home-slot order. Every entry is indexed; the result is
    /// the first one whose key was already in the index (the same name
    /// twice under one parent), if any.
    pub(crate) fn index_pending(&mut self, pending: &mut Vec<PendingIndex>) -> Result<(), NodeId> {
        if pending.is_empty() {
            return Ok(());
        }
        let wanted = self.indexed + pending.len();
        let mut len = self.slots.len().max(16);
        while wanted * 4 > len * 3 {
            len *= 2;
        }
        if len > self.slots.len() {
            self.rehash(len);
        }
        // A counting sort on the home slot's top bits: each bucket's
        // inserts then stay within a window of the table small enough to
        // stay in cache.
        let shift = self
            .slots
            .len()
            .trailing_zeros()
            .saturating_sub(PENDING_BUCKET_BITS);
        let mask = self.slots.len() - 1;
        let bucket_of = |entry: &PendingIndex| (entry.hash as usize & mask) >> shift;
        let mut starts = vec![0usize; (mask >> shift) + 2];
        for entry in pending.iter() {
            starts[bucket_of(entry) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut ordered = vec![PendingIndex { hash: 0, id: NIL }; pending.len()];
        for entry in pending.iter() {
            let at = &mut starts[bucket_of(entry)];
            ordered[*at] = *entry;
            *at += 1;
        }
        pending.clear();
        let mut duplicate = None;
        for entry in ordered {
            if duplicate.is_none() && self.indexed_key_exists(entry) {
                duplicate = Some(entry.id);
            }
            let mut i = entry.hash as usize & mask;
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = tag_of(entry.hash) | entry.id;
            self.indexed += 1;
        }
        duplicate.map_or(Ok(()), Err)
    }

    /// Whether another node with `entry`'s key is indexed.
    fn indexed_key_exists(&self, entry: PendingIndex) -> bool {
        let node = self.get(entry.id);
        let mask = self.slots.len() - 1;
        let tag = tag_of(entry.hash);
        let mut i = entry.hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY {
                return false;
            }
            if slot & !ID_MASK == tag {
                let other = self.get(slot_id(slot));
                if other.parent == node.parent && other.name_bytes() == node.name_bytes() {
                    return true;
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Inserts a node into its parent's children just before `before` (at the
    /// end for `NIL`) and indexes it. Undoing a [`NodeStore::detach`] with the
    /// successor it returned restores the list exactly.
    pub(crate) fn attach_before(&mut self, id: NodeId, before: NodeId) {
        self.link_before(id, before);
        self.index_insert(id);
    }

    /// The sibling-list half of [`NodeStore::attach_before`].
    fn link_before(&mut self, id: NodeId, before: NodeId) {
        let parent = self.get(id).parent;
        let first = self.get(parent).first_child;
        if first == NIL {
            self.get_mut(parent).first_child = id;
            let mut node = self.get_mut(id);
            node.prev_sibling = id;
            node.next_sibling = NIL;
        } else if before == NIL {
            let last = self.get(first).prev_sibling;
            self.get_mut(last).next_sibling = id;
            self.get_mut(first).prev_sibling = id;
            let mut node = self.get_mut(id);
            node.prev_sibling = last;
            node.next_sibling = NIL;
        } else if before == first {
            let last = self.get(first).prev_sibling;
            self.get_mut(first).prev_sibling = id;
            self.get_mut(parent).first_child = id;
            let mut node = self.get_mut(id);
            node.prev_sibling = last;
            node.next_sibling = first;
        } else {
            let prev = self.get(before).prev_sibling;
            self.get_mut(prev).next_sibling = id;
            self.get_mut(before).prev_sibling = id;
            let mut node = self.get_mut(id);
            node.prev_sibling = prev;
            node.next_sibling = before;
        }
        self.get_mut(parent).num_children += 1;
    }

    /// Removes a node from its parent's children and from the index, keeping
    /// its slot (and its parent link). Returns its successor among the
    /// siblings, for [`NodeStore::attach_before`].
    pub(crate) fn detach(&mut self, id: NodeId) -> NodeId {
        self.index_remove(id);
        let (parent, prev, next) = {
            let node = self.get(id);
            (node.parent, node.prev_sibling, node.next_sibling)
        };
        let first = self.get(parent).first_child;
        if first == id {
            self.get_mut(parent).first_child = next;
            if next != NIL {
                // `prev` is the last child; the new first child points at it.
                self.get_mut(next).prev_sibling = prev;
            }
        } else {
            self.get_mut(prev).next_sibling = next;
            if next == NIL {
                self.get_mut(first).prev_sibling = prev;
            } else {
                self.get_mut(next).prev_sibling = prev;
            }
        }
        self.get_mut(parent).num_children -= 1;
        next
    }

    /// Replaces a node's data, returning the old record (for
    /// undo through [`NodeStore::restore_bytes`]).
    pub(crate) fn set_data(&mut self, id: NodeId, data: &[u8]) -> Box<[u8]> {
        let node = self.get_mut(id);
        let (old, new) = {
            let current = node.as_ref();
            let new = record(current.flags(), &current.rare(), current.name_bytes(), data);
            (Box::<[u8]>::from(current.record), new)
        };
        node.chunk.write_record(node.slot, &new);
        old
    }

    pub(crate) fn restore_bytes(&mut self, id: NodeId, bytes: Box<[u8]>) {
        let node = self.get_mut(id);
        node.chunk.write_record(node.slot, &bytes);
    }

    pub(crate) fn children(&self, id: NodeId) -> ChildIds<'_> {
        self.nodes.children(id)
    }

    /// The node's absolute path, rebuilt from parent links.
    pub(crate) fn path_of(&self, id: NodeId) -> String {
        if id == ROOT {
            return "/".to_owned();
        }
        let mut names = Vec::new();
        let mut cur = id;
        while cur != ROOT && cur != NIL {
            let node = self.get(cur);
            names.push(node.name());
            cur = node.parent;
        }
        let mut path = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        path
    }

    fn hash(&self, parent: NodeId, name: &[u8]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write_u32(parent);
        hasher.write(name);
        hasher.finish()
    }

    fn hash_of(&self, id: NodeId) -> u64 {
        let node = self.get(id);
        self.hash(node.parent, node.name_bytes())
    }

    /// Where the probe for `id`'s key starts.
    fn home_of(&self, id: NodeId) -> usize {
        self.hash_of(id) as usize & (self.slots.len() - 1)
    }

    /// Makes room for `additional` more nodes, so that adding them neither
    /// moves the chunk list nor rehashes the index.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.nodes.chunks.reserve(additional.div_ceil(CHUNK_NODES));
        let wanted = self.indexed.saturating_add(additional);
        let mut len = self.slots.len().max(16);
        while wanted.saturating_mul(4) > len.saturating_mul(3) && len < usize::MAX / 2 {
            len *= 2;
        }
        if len > self.slots.len() {
            self.rehash(len);
        }
    }

    fn index_insert(&mut self, id: NodeId) {
        if (self.indexed + 1) * 4 > self.slots.len() * 3 {
            self.grow_index();
        }
        self.place(id);
        self.indexed += 1;
    }

    fn place(&mut self, id: NodeId) {
        let hash = self.hash_of(id);
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = tag_of(hash) | id;
    }

    fn grow_index(&mut self) {
        self.rehash((self.slots.len() * 2).max(16));
    }

    fn rehash(&mut self, len: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; len]);
        for slot in old.into_iter().filter(|&slot| slot != EMPTY) {
            self.place(slot_id(slot));
        }
    }

    /// Removes `id` with backward-shift deletion, so lookups never need
    /// tombstones.
    fn index_remove(&mut self, id: NodeId) {
        if self.slots.is_empty() {
            return;
        }
        let mask = self.slots.len() - 1;
        let mut hole = self.home_of(id);
        loop {
            match self.slots[hole] {
                EMPTY => return,
                found if slot_id(found) == id => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        let mut probe = hole;
        loop {
            probe = (probe + 1) & mask;
            let candidate = self.slots[probe];
            if candidate == EMPTY {
                break;
            }
            let home = self.home_of(slot_id(candidate));
            // The candidate may fill the hole if the hole lies on its probe
            // path, i.e. no farther from its home than its current slot.
            if probe.wrapping_sub(home) & mask >= probe.wrapping_sub(hole) & mask {
                self.slots[hole] = candidate;
                hole = probe;
            }
        }
        self.slots[hole] = EMPTY;
        self.indexed -= 1;
    }
}

/// The ids of a node's children, oldest first.
pub(crate) struct ChildIds<'a> {
    slab: &'a Slab,
    next: NodeId,
}

impl Iterator for ChildIds<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        if self.next == NIL {
            return None;
        }
        let id = self.next;
        self.next = self.slab.get(id).next_sibling;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> NodeStore {
        NodeStore::new(&PersistedStat::default(), AclRef::default())
    }

    fn add(store: &mut NodeStore, parent: NodeId, name: &str) -> NodeId {
        let id = store
            .alloc(
                parent,
                name,
                b"",
                AclRef::default(),
                &PersistedStat::default(),
            )
            .unwrap();
        store.attach(id);
        id
    }

    fn names(store: &NodeStore, id: NodeId) -> Vec<String> {
        store
            .children(id)
            .map(|c| store.get(c).name().to_owned())
            .collect()
    }

    fn stat(czxid: i64, ctime: i64) -> PersistedStat {
        PersistedStat {
            czxid,
            mzxid: czxid,
            ctime,
            mtime: ctime,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            pzxid: czxid,
        }
    }

    #[test]
    fn a_node_written_once_keeps_no_rare_field() {
        let mut s = store();
        let id = s
            .alloc(ROOT, "leaf", b"0123456789", AclRef::default(), &stat(7, 70))
            .unwrap();
        let node = s.get(id);
        assert_eq!(node.record.len(), 1 + "leaf".len() + 10);
        assert_eq!((node.mzxid(), node.pzxid(), node.mtime()), (7, 7, 70));
        assert_eq!(node.ephemeral_owner(), 0);
        assert_eq!((node.name(), node.data()), ("leaf", &b"0123456789"[..]));
    }

    #[test]
    fn rare_fields_round_trip_through_every_change() {
        let mut s = store();
        let owned = PersistedStat {
            ephemeral_owner: 0x55,
            ..stat(7, 70)
        };
        let id = s
            .alloc(ROOT, "eph", b"data", AclRef::default(), &owned)
            .unwrap();
        assert_eq!(s.get(id).persisted(), owned);
        assert_eq!(s.get(id).record.len(), 1 + 8 + 3 + 4);

        // A child: pzxid moves away from czxid, the record grows once.
        s.get_mut(id).set_pzxid(9);
        assert_eq!((s.get(id).pzxid(), s.get(id).mzxid()), (9, 7));
        // Later changes to a kept field are written in place.
        s.get_mut(id).set_pzxid(11);
        assert_eq!(s.get(id).record.len(), 1 + 16 + 3 + 4);
        assert_eq!(s.get(id).pzxid(), 11);

        s.get_mut(id).set_modified(12, 120);
        let old = s.set_data(id, b"longer data");
        let after = s.get(id).persisted();
        assert_eq!(
            (after.mzxid, after.mtime, after.pzxid, after.ephemeral_owner),
            (12, 120, 11, 0x55)
        );
        assert_eq!(
            (s.get(id).name(), s.get(id).data()),
            ("eph", &b"longer data"[..])
        );

        // Undo as a failed multi does: the old record, then the old stat.
        s.restore_bytes(id, old);
        s.get_mut(id).set_persisted(&owned);
        assert_eq!(s.get(id).persisted(), owned);
        assert_eq!((s.get(id).name(), s.get(id).data()), ("eph", &b"data"[..]));
        assert_eq!(s.get(id).record.len(), 1 + 8 + 3 + 4);
    }

    #[test]
    fn a_new_czxid_rebases_the_kept_fields() {
        let mut s = store();
        let id = s
            .alloc(ROOT, "n", b"", AclRef::default(), &stat(5, 50))
            .unwrap();
        // mzxid 5 equalled the old czxid; against czxid 3 it must be kept.
        let rebased = PersistedStat {
            czxid: 3,
            ctime: 30,
            ..s.get(id).persisted()
        };
        s.get_mut(id).set_persisted(&rebased);
        assert_eq!(s.get(id).persisted(), rebased);
        assert_eq!(s.get(id).name(), "n");
    }

    #[test]
    fn rewritten_records_do_not_grow_the_arena_without_bound() {
        let mut s = store();
        let ids: Vec<NodeId> = (0..100)
            .map(|i| add(&mut s, ROOT, &format!("n{i}")))
            .collect();
        let frozen = s.freeze();
        for round in 0..50usize {
            for (i, &id) in ids.iter().enumerate() {
                s.set_data(id, &vec![round as u8; 10 + (round + i) % 200]);
            }
        }
        let chunk = &s.nodes.chunks[0];
        let live: usize = chunk.nodes.iter().map(|n| n.len as usize).sum();
        assert_eq!(chunk.arena.len() - chunk.garbage, live);
        assert!(
            chunk.arena.len() <= 2 * live + COMPACT_AT_GARBAGE,
            "arena {} for {live} live bytes",
            chunk.arena.len()
        );
        for (i, &id) in ids.iter().enumerate() {
            let node = s.get(id);
            assert_eq!(node.name(), format!("n{i}"));
            assert_eq!(node.data(), &vec![49u8; 10 + (49 + i) % 200][..]);
            // The frozen view still reads the records of its time.
            assert_eq!(frozen.get(id).name(), format!("n{i}"));
            assert_eq!(frozen.get(id).data(), b"");
        }
    }

    #[test]
    fn a_freed_slot_is_reused_with_a_fresh_record() {
        let mut s = store();
        let a = add(&mut s, ROOT, "a");
        s.set_data(a, b"old data");
        s.detach(a);
        s.free(a);
        let b = s
            .alloc(ROOT, "b", b"new", AclRef::default(), &stat(3, 30))
            .unwrap();
        assert_eq!(a, b);
        s.attach(b);
        assert_eq!((s.get(b).name(), s.get(b).data()), ("b", &b"new"[..]));
        assert_eq!(s.lookup("/b"), Some(b));
        assert_eq!(s.lookup("/a"), None);
    }

    #[test]
    fn node_is_compact() {
        assert_eq!(std::mem::size_of::<Node>(), 64);
    }

    #[test]
    fn lookup_attach_detach_and_reattach_in_place() {
        let mut s = store();
        let a = add(&mut s, ROOT, "a");
        let ids: Vec<NodeId> = ["x", "y", "z", "w"]
            .iter()
            .map(|n| add(&mut s, a, n))
            .collect();
        assert_eq!(names(&s, a), ["x", "y", "z", "w"]);
        assert_eq!(s.lookup("/a/z"), Some(ids[2]));
        assert_eq!(s.lookup("/a/q"), None);
        assert_eq!(s.lookup("/a/"), None);
        assert_eq!(s.lookup("a"), None);
        assert_eq!(s.lookup(""), Some(ROOT));
        assert_eq!(s.path_of(ids[3]), "/a/w");
        // Remove from each position and put back: order must be restored.
        for &victim in &ids {
            let next = s.detach(victim);
            assert_eq!(s.get(a).num_children(), 3);
            assert!(!names(&s, a).contains(&s.get(victim).name().to_owned()));
            assert_eq!(s.lookup(&s.path_of(victim)), None);
            s.attach_before(victim, next);
            assert_eq!(names(&s, a), ["x", "y", "z", "w"]);
            assert_eq!(s.lookup(&s.path_of(victim)), Some(victim));
        }
        // Nested undo: remove two, restore in reverse order.
        let n1 = s.detach(ids[1]);
        let n2 = s.detach(ids[2]);
        assert_eq!(names(&s, a), ["x", "w"]);
        s.attach_before(ids[2], n2);
        s.attach_before(ids[1], n1);
        assert_eq!(names(&s, a), ["x", "y", "z", "w"]);
        // Remove all, then append again.
        for &id in &ids {
            s.detach(id);
        }
        assert_eq!(names(&s, a), Vec::<String>::new());
        s.attach(ids[0]);
        assert_eq!(names(&s, a), ["x"]);
    }

    #[test]
    fn frozen_view_is_unchanged_by_later_writes() {
        let mut s = store();
        let ids: Vec<NodeId> = (0..CHUNK_NODES * 2 + 3)
            .map(|i| add(&mut s, ROOT, &format!("n{i}")))
            .collect();
        let frozen = s.freeze();
        s.set_data(ids[5], b"new");
        s.get_mut(ids[6]).version = 9;
        s.detach(ids[7]);
        s.free(ids[7]);
        assert_eq!(add(&mut s, ROOT, "reused"), ids[7]);
        let appended = add(&mut s, ROOT, "appended");

        let frozen_names: Vec<&str> = frozen
            .children(ROOT)
            .map(|id| frozen.get(id).name())
            .collect();
        let expected: Vec<String> = (0..ids.len()).map(|i| format!("n{i}")).collect();
        assert_eq!(frozen_names, expected);
        assert_eq!(frozen.get(ids[5]).data(), b"");
        assert_eq!(frozen.get(ids[6]).version, 0);
        assert_eq!(s.get(ids[5]).data(), b"new");
        assert_eq!(s.get(ids[6]).version, 9);
        assert_eq!(s.get(appended).name(), "appended");
        assert_eq!(s.lookup("/n7"), None);
        assert_eq!(s.lookup("/reused"), Some(ids[7]));
    }

    #[test]
    fn index_survives_growth_and_many_removals() {
        let mut s = store();
        let parents: Vec<NodeId> = (0..4)
            .map(|i| add(&mut s, ROOT, &format!("p{i}")))
            .collect();
        let mut ids = Vec::new();
        for i in 0..5000 {
            let parent = parents[i % 4];
            ids.push((
                parent,
                format!("n{i}"),
                add(&mut s, parent, &format!("n{i}")),
            ));
        }
        for (k, (parent, name, id)) in ids.iter().enumerate() {
            if k % 3 == 0 {
                s.detach(*id);
                s.free(*id);
            } else {
                assert_eq!(s.child(*parent, name), Some(*id));
            }
        }
        for (k, (parent, name, id)) in ids.iter().enumerate() {
            let expected = (k % 3 != 0).then_some(*id);
            assert_eq!(s.child(*parent, name), expected, "{name}");
        }
        assert_eq!(s.live(), 1 + 4 + 5000 - 1667);
        // Freed slots are reused.
        let before = s.nodes.len();
        add(&mut s, ROOT, "again");
        assert_eq!(s.nodes.len(), before);
    }
}
