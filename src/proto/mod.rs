//! The ZooKeeper client wire protocol: constants, shared data records, and the
//! request and reply records. Pure encoding and decoding; no I/O.

pub mod codes;
pub mod data;
pub mod records;

pub use codes::*;
pub use data::{Acl, Id, Stat};
