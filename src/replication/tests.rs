//! openraft's storage test suite against our log store and machine adapter,
//! and restart behaviour of both.

use std::sync::{Arc, Mutex};

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    Entry, EntryPayload, Membership, RaftLogReader, RaftSnapshotBuilder, StorageError, Vote,
};
use tempfile::TempDir;

use super::log_store::{log_id, LogClosed, LogStore};
use super::state_machine::{Machine, MachineError, MachineSnapshot, MachineStore};
use super::{NodeId, PeerNode, Request, TypeConfig};
use crate::storage::LogOptions;

/// A machine that records what it applied, in order.
#[derive(Default)]
struct Recorder {
    state: Mutex<RecorderState>,
}

#[derive(Default, Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
struct RecorderState {
    last_index: u64,
    applied: Vec<(u64, Vec<u8>)>,
}

impl Machine for Recorder {
    fn apply(&self, index: u64, payload: &[u8]) -> Vec<u8> {
        let mut state = self.state.lock().unwrap();
        state.last_index = index;
        state.applied.push((index, payload.to_vec()));
        format!("applied {index}").into_bytes()
    }

    fn advance(&self, index: u64) {
        self.state.lock().unwrap().last_index = index;
    }

    fn snapshot(&self) -> Result<MachineSnapshot, MachineError> {
        let state = self.state.lock().unwrap();
        Ok(MachineSnapshot {
            last_index: state.last_index,
            bytes: postcard::to_allocvec(&*state).map_err(|e| MachineError(e.to_string()))?,
        })
    }

    fn install(&self, last_index: u64, bytes: &[u8]) -> Result<(), MachineError> {
        let decoded: RecorderState =
            postcard::from_bytes(bytes).map_err(|e| MachineError(e.to_string()))?;
        assert_eq!(decoded.last_index, last_index);
        *self.state.lock().unwrap() = decoded;
        Ok(())
    }
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, MachineStore<Recorder>, (TempDir, LogClosed)> for Builder {
    async fn build(
        &self,
    ) -> Result<((TempDir, LogClosed), LogStore, MachineStore<Recorder>), StorageError<NodeId>>
    {
        let dir = tempfile::tempdir().unwrap();
        let options = LogOptions {
            segment_bytes: 4096,
            force_sync: true,
        };
        let (log, _, closed) = LogStore::open(dir.path(), options).unwrap();
        let machine = MachineStore::open(dir.path(), Arc::new(Recorder::default())).unwrap();
        Ok(((dir, closed), log, machine))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).unwrap();
}

fn normal(term: u64, index: u64, payload: &[u8]) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request(payload.to_vec())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vote_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let vote = Vote::new_committed(7, 2);
    {
        let (mut store, _, closed) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
        store.save_vote(&vote).await.unwrap();
        drop(store);
        closed.wait().await;
    }
    let (mut store, _, _closed) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    assert!(store.try_get_log_entries(0..10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_restored_into_an_empty_machine_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let membership = Membership::new(vec![[1u64, 2, 3].into_iter().collect()], ());
    {
        let machine = Arc::new(Recorder::default());
        let mut store = MachineStore::open(dir.path(), Arc::clone(&machine)).unwrap();
        let entries = vec![
            Entry {
                log_id: log_id(1, 0),
                payload: EntryPayload::Membership(membership.clone()),
            },
            normal(1, 1, b"one"),
            Entry {
                log_id: log_id(2, 2),
                payload: EntryPayload::Blank,
            },
            normal(2, 3, b"three"),
        ];
        let responses = store.apply(entries).await.unwrap();
        assert_eq!(responses[1].0, b"applied 1");
        assert!(responses[2].0.is_empty());
        let snapshot = store
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(2, 3)));
        assert_eq!(snapshot.meta.last_membership.log_id(), &Some(log_id(1, 0)));
    }
    let machine = Arc::new(Recorder::default());
    let mut store = MachineStore::open(dir.path(), Arc::clone(&machine)).unwrap();
    let (applied, membership_now) = store.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(2, 3)));
    assert_eq!(
        membership_now.membership(),
        &Membership::<NodeId, PeerNode>::new(vec![[1u64, 2, 3].into_iter().collect()], ())
    );
    let restored = machine.state.lock().unwrap().clone();
    assert_eq!(
        restored.applied,
        vec![(1, b"one".to_vec()), (3, b"three".to_vec())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_file_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = MachineStore::open(dir.path(), Arc::new(Recorder::default())).unwrap();
        store.apply(vec![normal(1, 1, b"one")]).await.unwrap();
        store
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    let path = dir
        .path()
        .join(super::state_machine::SNAPSHOT_DIR_NAME)
        .join("current");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let opened = MachineStore::open(dir.path(), Arc::new(Recorder::default()));
    let error = opened
        .err()
        .expect("a damaged snapshot must not load")
        .to_string();
    assert!(error.contains("checksum"), "{error}");
}

#[test]
fn peers_come_from_server_lines() {
    let text = "dataDir=/tmp/zk\n\
                server.1=zk1.example:2888:3888;2181\n\
                server.2=zk2.example:2888:3888:participant;0.0.0.0:2182\n\
                server.3=[2001:db8::3]:2888:3888:observer\n";
    let loaded = crate::config::ServerConfig::from_str(text, "zoo.cfg").unwrap();
    let peers: Vec<super::Peer> = loaded
        .config
        .servers
        .iter()
        .map(|spec| super::Peer::from_spec(spec).unwrap())
        .collect();
    assert_eq!(peers[0].node.quorum_addr, "zk1.example:2888");
    assert_eq!(peers[0].node.client_addr, "zk1.example:2181");
    assert!(peers[0].voter);
    assert_eq!(peers[1].node.client_addr, "zk2.example:2182");
    assert_eq!(peers[2].node.quorum_addr, "[2001:db8::3]:2888");
    assert_eq!(peers[2].node.client_addr, "");
    assert!(!peers[2].voter);
}

/// Three peers in this process, for tests that reach into their logs.
async fn start_three(dirs: &[TempDir; 3], machines: &[Arc<Recorder>; 3]) -> Vec<super::Replicator> {
    use super::network::Transport;
    let mut listeners = Vec::new();
    let mut peers = Vec::new();
    for id in 1..=3u64 {
        let listener = super::TcpTransport.bind("127.0.0.1:0").await.unwrap();
        let quorum_addr = listener.local_addr().unwrap().to_string();
        peers.push(super::Peer {
            id,
            node: PeerNode {
                quorum_addr,
                client_addr: String::new(),
            },
            voter: true,
        });
        listeners.push(listener);
    }
    let mut config =
        super::ReplicationConfig::from_tick_time(std::time::Duration::from_millis(2000));
    config.request_timeout = std::time::Duration::from_secs(2);
    let mut replicators = Vec::new();
    for (position, listener) in listeners.into_iter().enumerate() {
        let replicator = super::Replicator::start_with_listener(
            position as u64 + 1,
            peers.clone(),
            dirs[position].path(),
            Arc::clone(&machines[position]),
            super::TcpTransport,
            config.clone(),
            listener,
        )
        .await
        .unwrap();
        replicators.push(replicator);
    }
    replicators
}

async fn wait_for<T>(
    limit: std::time::Duration,
    mut condition: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = condition() {
            return Some(value);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A write is acknowledged only once a quorum has fsynced it: with one
/// follower's fsync failing the other follower still makes a quorum; with
/// both failing, nothing is acknowledged or applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_is_acknowledged_only_when_a_quorum_synced_it() {
    let dirs = [
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    ];
    let machines: [Arc<Recorder>; 3] = Default::default();
    let peers = start_three(&dirs, &machines).await;
    let leader = wait_for(std::time::Duration::from_secs(10), || {
        peers.iter().position(|p| p.role() == super::Role::Leader)
    })
    .await
    .expect("no leader");
    let followers: Vec<usize> = (0..3).filter(|&p| p != leader).collect();
    peers[leader].write(b"before".to_vec()).await.unwrap();

    peers[followers[0]]
        .log_fault_injector()
        .unwrap()
        .set_fail_sync(true);
    peers[leader]
        .write(b"one follower failing".to_vec())
        .await
        .unwrap();
    let on_other = wait_for(std::time::Duration::from_secs(10), || {
        let state = machines[followers[1]].state.lock().unwrap();
        (state.applied.len() == 2).then_some(())
    })
    .await;
    assert!(
        on_other.is_some(),
        "the healthy follower did not apply the write"
    );

    peers[followers[1]]
        .log_fault_injector()
        .unwrap()
        .set_fail_sync(true);
    let refused = peers[leader].write(b"no quorum".to_vec()).await;
    assert!(
        refused.is_err(),
        "a write was acknowledged without a quorum: {refused:?}"
    );
    let applied = machines[leader].state.lock().unwrap().applied.clone();
    assert!(
        applied.iter().all(|(_, payload)| payload != b"no quorum"),
        "the leader applied an entry no quorum holds"
    );
    for peer in peers {
        peer.shutdown().await;
    }
}

/// A leader that hands over: a follower holding its whole log leads, the old
/// leader refuses writes meanwhile, and every write acknowledged before is
/// on the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_hands_over_to_a_follower_with_its_whole_log() {
    let dirs = [
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    ];
    let machines: [Arc<Recorder>; 3] = Default::default();
    let peers = start_three(&dirs, &machines).await;
    let leader = wait_for(std::time::Duration::from_secs(10), || {
        peers.iter().position(|p| p.role() == super::Role::Leader)
    })
    .await
    .expect("no leader");
    for i in 0..20 {
        peers[leader]
            .write(format!("write {i}").into_bytes())
            .await
            .unwrap();
    }
    let handover = peers[leader]
        .hand_over(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(handover.new_leader, peers[leader].id());
    assert_eq!(handover.new_leader, handover.candidate);
    assert_eq!(
        peers[leader].write(b"late".to_vec()).await,
        Err(super::WriteError::HandingOver)
    );
    let successor = peers
        .iter()
        .position(|p| p.id() == handover.new_leader)
        .unwrap();
    peers[successor].write(b"after".to_vec()).await.unwrap();
    let applied: Vec<Vec<u8>> = machines[successor]
        .state
        .lock()
        .unwrap()
        .applied
        .iter()
        .map(|(_, payload)| payload.clone())
        .collect();
    let mut expected: Vec<Vec<u8>> = (0..20).map(|i| format!("write {i}").into_bytes()).collect();
    expected.push(b"after".to_vec());
    assert_eq!(applied, expected);
    for peer in peers {
        peer.shutdown().await;
    }
}
