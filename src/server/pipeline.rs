//! The write pipeline: prepared transactions are sequenced, applied to the data
//! tree in batches, and their watch events queued to the connections that
//! asked for them, before each writer is told its result.
//!
//! A batch is the unit of durability: every transaction in it is appended to
//! the journal and made durable with one fsync (group commit) before any of
//! them is applied or answered. Proposals that arrive during the fsync form
//! the next batch, so throughput grows with the number of concurrent writers.
//! Nothing here knows about sockets.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::acl;
use crate::proto::codes::perms;
use crate::proto::records::{encode_watch_event, WatcherEvent};
use crate::proto::KeeperState;
use crate::storage::StorageError;
use crate::txn::{Applied, Txn, TxnResult};

use super::journal::Journal;
use super::recovery::Snapshotter;
use super::{ConnId, Hub, Outbound, Shared};

/// Proposals waiting to be sequenced; senders wait when it is full.
pub const QUEUE_CAPACITY: usize = 4096;
/// The most transactions applied under one hold of the tree lock, so readers
/// are never locked out for long.
const MAX_BATCH: usize = 512;

/// Why a write was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The journal could not be written for lack of space; nothing was
    /// applied, and writes resume by themselves once space is freed.
    DiskFull,
    /// The ensemble did not commit it (no leader, no quorum, or the outcome
    /// is unknown): the connection is closed, which clients know as
    /// ConnectionLoss.
    NotReplicated,
}

/// What became of a proposal.
pub type Outcome = Result<Applied, Refused>;

/// A write on its way through the pipeline.
#[derive(Debug)]
pub struct Proposal {
    pub txn: Txn,
    /// The connection that sent it, if any (none for expiry and cleanup).
    pub origin: Option<ConnId>,
    pub done: oneshot::Sender<Outcome>,
}

/// Sends a transaction into the pipeline and returns the receiver of its
/// outcome; `None` once the pipeline has stopped.
pub async fn propose(
    shared: &Shared,
    txn: Txn,
    origin: Option<ConnId>,
) -> Option<oneshot::Receiver<Outcome>> {
    let (done, rx) = oneshot::channel();
    shared
        .proposals
        .send(Proposal { txn, origin, done })
        .await
        .ok()?;
    Some(rx)
}

/// Proposes and waits for the outcome; `None` once the pipeline stopped.
pub async fn submit(shared: &Shared, txn: Txn, origin: Option<ConnId>) -> Option<Outcome> {
    propose(shared, txn, origin).await?.await.ok()
}

pub async fn run(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Proposal>,
    mut journal: Journal,
    mut snapshotter: Snapshotter,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            received = rx.recv_many(&mut batch, MAX_BATCH) => received,
            _ = shared.stop_pipeline.notified() => {
                // Refuse new proposals, finish the ones already queued.
                rx.close();
                continue;
            }
            _ = shared.purge_requested.notified() => {
                let retain = shared.options.config.autopurge_snap_retain_count as usize;
                if let Some(covered) = snapshotter.purge(retain) {
                    if let Err(e) = tokio::task::block_in_place(|| journal.purge_through(covered)) {
                        warn!(error = %e, "purging the transaction log failed");
                    }
                }
                continue;
            }
        };
        if received == 0 {
            break;
        }
        let txns: Vec<&Txn> = batch.iter().map(|p| &p.txn).collect();
        // The fsync blocks this thread, not the runtime's other tasks.
        let written = tokio::task::block_in_place(|| journal.append_durably(&txns));
        drop(txns);
        match written {
            Ok(()) => {
                if shared
                    .stats
                    .disk_full
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::info!("the transaction log accepts writes again");
                }
            }
            Err(StorageError::DiskFull { path }) => {
                if !shared
                    .stats
                    .disk_full
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    warn!(
                        file = %path.display(),
                        "disk full: refusing writes until space is freed; reads and sessions are still served"
                    );
                }
                shared
                    .stats
                    .writes_refused
                    .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                for proposal in batch.drain(..) {
                    let _ = proposal.done.send(Err(Refused::DiskFull));
                }
                continue;
            }
            Err(e) => {
                // What reached the disk is unknown: stop, and let a restart
                // recover from what the disk really holds. Writes in this
                // batch were never acknowledged.
                tracing::error!(error = %e, "the transaction log failed; exiting");
                std::process::exit(74);
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        {
            let mut tree = shared.tree_mut();
            let mut hub = shared.hub();
            for proposal in batch.drain(..) {
                let applied = tree.apply(&proposal.txn);
                dispatch_events(&shared, &mut hub, &applied);
                if applied.result == TxnResult::SessionClosed {
                    end_session(&shared, &mut hub, proposal.txn.session_id, proposal.origin);
                }
                outcomes.push((proposal.done, applied));
            }
            snapshotter.after_apply(
                &tree,
                outcomes.len() as u64,
                journal.last_index(),
                shared.clock.wall_ms(),
            );
        }
        // Writers hear back only after the batch's events are queued, so a
        // client always sees a watch event before the reply that shows it the
        // new state.
        for (done, applied) in outcomes {
            let _ = done.send(Ok(applied));
        }
    }
    // A snapshot at a clean stop makes the next start a snapshot load
    // rather than a long replay.
    let last_index = journal.last_index();
    let now = shared.clock.wall_ms();
    tokio::task::block_in_place(|| snapshotter.final_snapshot(&shared.tree(), last_index, now));
    debug!("write pipeline stopped");
}

/// Queues the watch events an applied transaction triggers.
pub(crate) fn dispatch_events(shared: &Shared, hub: &mut Hub, applied: &Applied) {
    if applied.changes.is_empty() {
        return;
    }
    let Hub { watches, conns } = hub;
    let skip_acl = shared.options.skip_acl();
    for change in &applied.changes {
        let events = watches.trigger(change, |watcher, node_acl| {
            conns
                .get(&watcher)
                .is_some_and(|c| acl::check(node_acl, perms::READ, &c.auth, skip_acl))
        });
        for (watcher, event) in events {
            let Some(conn) = conns.get(&watcher) else {
                continue;
            };
            let frame = encode_watch_event(
                applied.zxid,
                &WatcherEvent {
                    event_type: event.event_type as i32,
                    state: KeeperState::SyncConnected as i32,
                    path: event.path,
                },
            );
            if conn.outbound.try_send(Outbound::Frame(frame)).is_err() {
                // The client is not reading its events. Dropping one would
                // break the watch contract silently; closing the connection
                // makes the client reconnect and re-register its watches.
                warn!(
                    session = format_args!("0x{:x}", conn.session_id),
                    remote = %conn.remote,
                    "closing a connection whose outbound queue is full"
                );
                shared
                    .stats
                    .slow_consumers_closed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                conn.kill.notify_one();
            }
        }
    }
}

/// After a session is closed or expired: forget it and close any connection
/// still carrying it, other than the one that asked for the close (which
/// closes itself after sending its reply).
pub(crate) fn end_session(shared: &Shared, hub: &mut Hub, session_id: i64, origin: Option<ConnId>) {
    for (id, conn) in hub.conns.iter() {
        if conn.session_id == session_id && Some(*id) != origin {
            let _ = conn.outbound.try_send(Outbound::Close);
            conn.kill.notify_one();
        }
    }
    let mut sessions = shared.sessions();
    sessions.tracker.remove(session_id);
    sessions.owner.remove(&session_id);
}
