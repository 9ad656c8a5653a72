//! The records shared by requests, replies, the data tree and the transaction
//! log: `Stat`, `Id` and `ACL` (`zookeeper.jute`, module `org.apache.zookeeper.data`).

use serde::{Deserialize, Serialize};

use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};

/// A znode's metadata, in Apache's field order on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Record for Stat {
    fn write(&self, w: &mut JuteWriter) {
        w.write_i64(self.czxid);
        w.write_i64(self.mzxid);
        w.write_i64(self.ctime);
        w.write_i64(self.mtime);
        w.write_i32(self.version);
        w.write_i32(self.cversion);
        w.write_i32(self.aversion);
        w.write_i64(self.ephemeral_owner);
        w.write_i32(self.data_length);
        w.write_i32(self.num_children);
        w.write_i64(self.pzxid);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(Stat {
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            data_length: r.read_i32()?,
            num_children: r.read_i32()?,
            pzxid: r.read_i64()?,
        })
    }
}

/// An identity: a scheme (`world`, `auth`, `digest`, `ip`, `super`, …) and an id
/// within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }
}

impl Record for Id {
    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.scheme);
        w.write_string(&self.id);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(Id {
            scheme: r.read_opt_string()?.unwrap_or_default(),
            id: r.read_opt_string()?.unwrap_or_default(),
        })
    }
}

/// One ACL entry: the permission bits granted to an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    /// `world:anyone` with every permission (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: crate::proto::perms::ALL,
            id: Id::anyone(),
        }]
    }

    /// `world:anyone` read-only (`ZooDefs.Ids.READ_ACL_UNSAFE`), used for
    /// `/zookeeper/config`.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: crate::proto::perms::READ,
            id: Id::anyone(),
        }]
    }
}

impl Record for Acl {
    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.perms);
        self.id.write(w);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(Acl {
            perms: r.read_i32()?,
            id: Id::read(r)?,
        })
    }
}

/// Smallest encoded ACL: perms plus two empty strings.
pub const MIN_ACL_LEN: usize = 12;

pub fn write_acl_list(w: &mut JuteWriter, acl: &[Acl]) {
    w.write_vec_len(acl.len());
    for a in acl {
        a.write(w);
    }
}

pub fn read_acl_list(r: &mut JuteReader<'_>) -> Result<Vec<Acl>, DecodeError> {
    let n = r.read_vec_len(MIN_ACL_LEN)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(Acl::read(r)?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_68_bytes_in_apache_order() {
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let bytes = stat.to_bytes();
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[..8], &1i64.to_be_bytes());
        assert_eq!(&bytes[60..], &11i64.to_be_bytes());
        assert_eq!(Stat::from_bytes(&bytes).unwrap(), stat);
    }

    #[test]
    fn acl_round_trips() {
        let acl = vec![
            Acl {
                perms: 31,
                id: Id::anyone(),
            },
            Acl {
                perms: 1,
                id: Id::new("digest", "u:abc="),
            },
        ];
        let mut w = JuteWriter::new();
        write_acl_list(&mut w, &acl);
        let bytes = w.into_inner();
        let mut r = JuteReader::new(&bytes);
        assert_eq!(read_acl_list(&mut r).unwrap(), acl);
        r.finish().unwrap();
    }
}
