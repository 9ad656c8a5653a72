//! What a node's raw `ephemeralOwner` encodes (Apache's `EphemeralType`).
//!
//! - 0: a persistent node.
//! - `i64::MIN`: a container.
//! - top byte `0xff` with the 16 reserved bits below it clear: a TTL node, the
//!   low 40 bits holding the TTL in milliseconds.
//! - anything else: the id of the session owning an ephemeral node.
//!
//! Apache recognises TTL owners only when `zookeeper.extendedTypesEnabled` is
//! set, and refuses server ids above 254 in that mode so that session ids never
//! look like TTLs. We always decode TTLs; the server refuses to create TTL
//! nodes when extended types are off.

/// The raw owner of every container node.
pub const CONTAINER_OWNER: i64 = i64::MIN;

/// The largest TTL a node may have, in milliseconds (about 34 years).
pub const MAX_TTL_MS: i64 = 0x0000_00ff_ffff_ffff;

const EXTENDED_MASK: u64 = 0xff00_0000_0000_0000;
const RESERVED_BITS_MASK: u64 = 0x00ff_ff00_0000_0000;

/// The decoded kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    /// Owned by this session.
    Ephemeral(i64),
    Container,
    /// Deleted once unchanged and childless for this many milliseconds.
    Ttl(i64),
}

impl NodeKind {
    pub fn of_owner(owner: i64) -> NodeKind {
        let bits = owner as u64;
        if bits & EXTENDED_MASK == EXTENDED_MASK && bits & RESERVED_BITS_MASK == 0 {
            return NodeKind::Ttl((bits & MAX_TTL_MS as u64) as i64);
        }
        match owner {
            0 => NodeKind::Persistent,
            CONTAINER_OWNER => NodeKind::Container,
            session => NodeKind::Ephemeral(session),
        }
    }
}

/// The raw owner of a TTL node, or `None` if the TTL is out of range
/// (it must be positive and at most [`MAX_TTL_MS`]).
pub fn ttl_owner(ttl_ms: i64) -> Option<i64> {
    (ttl_ms > 0 && ttl_ms <= MAX_TTL_MS).then_some((EXTENDED_MASK as i64) | ttl_ms)
}

/// The owner clients see in a `Stat`: containers and TTL nodes show 0.
pub(crate) fn visible_owner(owner: i64) -> i64 {
    match NodeKind::of_owner(owner) {
        NodeKind::Ephemeral(session) => session,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_decode_like_apache() {
        assert_eq!(NodeKind::of_owner(0), NodeKind::Persistent);
        assert_eq!(NodeKind::of_owner(i64::MIN), NodeKind::Container);
        assert_eq!(
            NodeKind::of_owner(0x0100_0000_0000_0001),
            NodeKind::Ephemeral(0x0100_0000_0000_0001)
        );
        assert_eq!(NodeKind::of_owner(-1), NodeKind::Ephemeral(-1));
        let owner = ttl_owner(5000).unwrap();
        assert_eq!(owner as u64, 0xff00_0000_0000_1388);
        assert_eq!(NodeKind::of_owner(owner), NodeKind::Ttl(5000));
        assert_eq!(
            NodeKind::of_owner(ttl_owner(MAX_TTL_MS).unwrap()),
            NodeKind::Ttl(MAX_TTL_MS)
        );
        assert_eq!(ttl_owner(0), None);
        assert_eq!(ttl_owner(-5), None);
        assert_eq!(ttl_owner(MAX_TTL_MS + 1), None);
        assert_eq!(visible_owner(owner), 0);
        assert_eq!(visible_owner(i64::MIN), 0);
        assert_eq!(visible_owner(42), 42);
    }
}
