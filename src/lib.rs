//! zookeeper-rs: a ZooKeeper-compatible coordination server.
//!
//! A request travels: [`jute`]/[`proto`] (wire codec) → [`server`] (connection,
//! session, request preparation) → replication (a pass-through for a standalone
//! server) → [`tree`] (apply to the data tree) → watches → reply. See
//! ARCHITECTURE.md for the code map and the invariants.

pub mod acl;
pub mod bench;
pub mod client;
pub mod clock;
pub mod config;
pub mod jute;
pub mod ops;
pub mod proto;
pub mod replication;
pub mod server;
pub mod storage;
pub mod tree;
pub mod txn;
pub mod watch;

/// The version clients parse: a 3.9-compatible Apache version followed by ours,
/// so that kazoo's `server_version()` and Curator keep working.
pub const ZOOKEEPER_VERSION: &str = concat!("3.9.3-zookeeper-rs-", env!("CARGO_PKG_VERSION"));
