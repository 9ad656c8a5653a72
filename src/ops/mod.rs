//! Operating a server: what `zkServer` and `zk-pseudo-cluster` do around the
//! server itself.
//!
//! - [`env`]: where things live, following Apache's `zkEnv.sh`/`zkServer.sh`
//!   conventions (`ZOOCFGDIR`, `ZOOCFG`, `ZOO_LOG_DIR`, `ZOOPIDFILE`).
//! - [`probe`]: asking a server a four-letter word and reading `srvr`.
//! - [`status`]: finding a server's client address in zoo.cfg as Apache's
//!   `zkServer.sh status` does, and the ensemble view.
//! - [`pidfile`] and [`daemon`]: the pidfile, starting in the background,
//!   stopping with escalation.
//! - [`notify`]: systemd's readiness protocol (READY, STATUS, WATCHDOG, STOPPING).
//! - [`logging`]: journald, a reopenable log file, or stderr.
//! - [`cluster`]: the layout `zk-pseudo-cluster` writes and finds.
//!
//! Nothing here is on the request path; it all runs at the edges of the
//! binaries, and reports errors as values for them to print.

pub mod cluster;
pub mod daemon;
pub mod env;
pub mod logging;
pub mod notify;
pub mod pidfile;
pub mod probe;
pub mod status;
