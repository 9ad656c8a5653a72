//! The replication layer in isolation: several peers in one process, real
//! TCP on 127.0.0.1, a recording state machine. Every wait is bounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zookeeper_rs::replication::state_machine::MachineSnapshot;
use zookeeper_rs::replication::{
    Machine, MachineError, Peer, PeerNode, ReplicationConfig, Replicator, Role, TcpTransport,
    Transport, WriteError,
};

/// A machine that records every applied payload, in order.
#[derive(Default)]
struct Recorder {
    state: Mutex<Recorded>,
    installs: AtomicU64,
}

#[derive(Default, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Recorded {
    last_index: u64,
    payloads: Vec<Vec<u8>>,
}

impl Recorder {
    fn payloads(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().payloads.clone()
    }
}

impl Machine for Recorder {
    fn apply(&self, index: u64, payload: &[u8]) -> Vec<u8> {
        let mut state = self.state.lock().unwrap();
        assert!(
            index > state.last_index || state.payloads.is_empty(),
            "index {index} applied twice"
        );
        state.last_index = index;
        state.payloads.push(payload.to_vec());
        format!("ok {index}").into_bytes()
    }

    fn advance(&self, index: u64) {
        self.state.lock().unwrap().last_index = index;
    }

    fn snapshot(&self) -> Result<MachineSnapshot, MachineError> {
        let state = self.state.lock().unwrap();
        let bytes = postcard::to_allocvec(&*state).map_err(|e| MachineError(e.to_string()))?;
        Ok(MachineSnapshot {
            last_index: state.last_index,
            bytes,
        })
    }

    fn install(&self, last_index: u64, bytes: &[u8]) -> Result<(), MachineError> {
        let state: Recorded =
            postcard::from_bytes(bytes).map_err(|e| MachineError(e.to_string()))?;
        if state.last_index != last_index {
            return Err(MachineError(format!(
                "snapshot at {} offered as {last_index}",
                state.last_index
            )));
        }
        *self.state.lock().unwrap() = state;
        self.installs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Node {
    replicator: Replicator,
    machine: Arc<Recorder>,
}

struct Cluster {
    peers: Vec<Peer>,
    dirs: BTreeMap<u64, TempDir>,
    nodes: BTreeMap<u64, Node>,
    config: ReplicationConfig,
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn config() -> ReplicationConfig {
    let mut config = ReplicationConfig::from_tick_time(Duration::from_millis(2000));
    config.request_timeout = Duration::from_secs(3);
    config
}

impl Cluster {
    /// Binds every peer's quorum port first (port 0), so that each knows the
    /// others' addresses, then starts them all.
    async fn start(voters: &[u64], observers: &[u64], config: ReplicationConfig) -> Cluster {
        let everyone: Vec<u64> = voters.iter().chain(observers).copied().collect();
        Cluster::start_only(voters, observers, &everyone, config).await
    }

    /// Like [`Cluster::start`], but starts only the peers in `running`; the
    /// others are configured but never come up.
    async fn start_only(
        voters: &[u64],
        observers: &[u64],
        running: &[u64],
        config: ReplicationConfig,
    ) -> Cluster {
        init_logging();
        let mut listeners = BTreeMap::new();
        let mut peers = Vec::new();
        for (&id, voter) in voters
            .iter()
            .map(|id| (id, true))
            .chain(observers.iter().map(|id| (id, false)))
        {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let quorum_addr = listener.local_addr().unwrap().to_string();
            peers.push(Peer {
                id,
                node: PeerNode {
                    quorum_addr,
                    client_addr: format!("127.0.0.1:{}", 21810 + id),
                },
                voter,
            });
            listeners.insert(id, listener);
        }
        let mut cluster = Cluster {
            peers,
            dirs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            config,
        };
        for (id, listener) in listeners {
            cluster.dirs.insert(id, tempfile::tempdir().unwrap());
            if running.contains(&id) {
                cluster.launch(id, listener).await;
            }
        }
        cluster
    }

    async fn launch(&mut self, id: u64, listener: TcpListener) {
        let machine = Arc::new(Recorder::default());
        let replicator = Replicator::start_with_listener(
            id,
            self.peers.clone(),
            self.dirs[&id].path(),
            Arc::clone(&machine),
            TcpTransport,
            self.config.clone(),
            listener,
        )
        .await
        .unwrap();
        self.nodes.insert(
            id,
            Node {
                replicator,
                machine,
            },
        );
    }

    /// Starts a stopped peer again from its directory, on its old address.
    async fn restart(&mut self, id: u64) {
        let addr = self
            .peers
            .iter()
            .find(|p| p.id == id)
            .unwrap()
            .node
            .quorum_addr
            .clone();
        let listener = TcpTransport.bind(&addr).await.unwrap();
        self.launch(id, listener).await;
    }

    async fn stop(&mut self, id: u64) {
        let node = self.nodes.remove(&id).unwrap();
        node.replicator.shutdown().await;
    }

    fn node(&self, id: u64) -> &Node {
        &self.nodes[&id]
    }

    /// The running peer that leads, if the running peers agree on one.
    fn agreed_leader(&self) -> Option<u64> {
        let leaders: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.replicator.role() == Role::Leader)
            .map(|(&id, _)| id)
            .collect();
        let [leader] = leaders[..] else { return None };
        let voters_agree = self
            .nodes
            .values()
            .filter(|n| matches!(n.replicator.role(), Role::Follower | Role::Leader))
            .all(|n| n.replicator.leader().map(|l| l.id) == Some(leader));
        voters_agree.then_some(leader)
    }

    async fn wait_for_leader(&self, limit: Duration) -> Option<u64> {
        wait_until(limit, || self.agreed_leader()).await
    }

    /// Writes through the leader, following redirections.
    async fn write(&self, payload: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let Some(leader) = self.agreed_leader() else {
                assert!(Instant::now() < deadline, "no leader to write to");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            match self.node(leader).replicator.write(payload.to_vec()).await {
                Ok(response) => return response,
                Err(e) => {
                    assert!(Instant::now() < deadline, "write kept failing: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    async fn wait_all_applied(&self, expected: &[Vec<u8>], limit: Duration) {
        let done = wait_until(limit, || {
            self.nodes
                .values()
                .all(|n| n.machine.payloads() == expected)
                .then_some(())
        })
        .await;
        if done.is_none() {
            for (id, node) in &self.nodes {
                eprintln!(
                    "server.{id}: {} applied, {:?}",
                    node.machine.payloads().len(),
                    node.replicator.metrics()
                );
            }
            panic!(
                "not every peer applied the {} writes in order within {limit:?}",
                expected.len()
            );
        }
    }

    async fn shutdown(mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

/// Polls `condition` until it yields a value or `limit` passes.
async fn wait_until<T>(limit: Duration, mut condition: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = condition() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn payloads(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range.map(|i| format!("write {i}").into_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_peers_elect_a_leader_and_apply_writes_in_one_order() {
    let started = Instant::now();
    let cluster = Cluster::start(&[1, 2, 3], &[], config()).await;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .expect("no leader within 10 s");
    let elected_after = started.elapsed();
    eprintln!("leader server.{leader} elected {elected_after:?} after start");
    // How fast is a benchmark figure, not a test verdict: the bound above
    // (a leader at all within 10 s) is what must hold on a loaded machine.

    let writes = payloads(0..50);
    for (i, payload) in writes.iter().enumerate() {
        let response = cluster.write(payload).await;
        assert!(
            String::from_utf8(response).unwrap().starts_with("ok "),
            "write {i}"
        );
    }
    cluster
        .wait_all_applied(&writes, Duration::from_secs(10))
        .await;
    // Leadership is stable on an idle ensemble, but ask again rather than assume.
    let leader = cluster.agreed_leader().expect("no agreed leader");

    // A follower refuses a write and names the leader; forwarding works.
    let follower = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    let refused = cluster
        .node(follower)
        .replicator
        .write(b"direct".to_vec())
        .await;
    match refused {
        Err(WriteError::ForwardToLeader {
            leader_id: Some(id),
            leader: Some(node),
        }) => {
            assert_eq!(id, leader);
            assert_eq!(node.client_addr, format!("127.0.0.1:{}", 21810 + leader));
        }
        other => panic!("expected a redirection to server.{leader}, got {other:?}"),
    }
    cluster
        .node(follower)
        .replicator
        .write_via_leader(b"forwarded".to_vec())
        .await
        .unwrap();
    // sync on the follower makes the forwarded write visible there at once.
    cluster.node(follower).replicator.sync().await.unwrap();
    assert_eq!(
        cluster.node(follower).machine.payloads().last().unwrap(),
        b"forwarded"
    );
    cluster
        .node(leader)
        .replicator
        .ensure_linearizable()
        .await
        .unwrap();

    let metrics = cluster.node(leader).replicator.metrics();
    assert_eq!(metrics.role, Role::Leader);
    assert_eq!(metrics.voters, vec![1, 2, 3]);
    assert_eq!(metrics.followers.len(), 2, "{metrics:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_takes_over_and_the_old_one_rejoins_from_its_directory() {
    let mut cluster = Cluster::start(&[1, 2, 3], &[], config()).await;
    let old_leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let mut writes = payloads(0..20);
    for payload in &writes {
        cluster.write(payload).await;
    }
    cluster
        .wait_all_applied(&writes, Duration::from_secs(10))
        .await;

    cluster.stop(old_leader).await;
    let stopped = Instant::now();
    let new_leader = cluster
        .wait_for_leader(Duration::from_secs(15))
        .await
        .expect("no new leader within 15 s");
    let failover = stopped.elapsed();
    eprintln!("server.{new_leader} took over {failover:?} after server.{old_leader} stopped");
    assert_ne!(new_leader, old_leader);

    let more = payloads(20..40);
    for payload in &more {
        cluster.write(payload).await;
    }
    writes.extend(more);
    cluster
        .wait_all_applied(&writes, Duration::from_secs(10))
        .await;

    cluster.restart(old_leader).await;
    cluster
        .wait_all_applied(&writes, Duration::from_secs(15))
        .await;
    let role = wait_until(Duration::from_secs(10), || {
        (cluster.node(old_leader).replicator.role() == Role::Follower).then_some(())
    })
    .await;
    assert!(
        role.is_some(),
        "the restarted peer did not rejoin as a follower"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_peer_catches_up_by_snapshot_after_the_leader_purged_its_log() {
    let mut config = config();
    config.snap_count = 10;
    config.logs_kept_after_snapshot = 0;
    let mut cluster = Cluster::start(&[1, 2, 3], &[], config).await;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let lagging = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    cluster.stop(lagging).await;

    let writes = payloads(0..60);
    for payload in &writes {
        cluster.write(payload).await;
    }
    cluster
        .wait_all_applied(&writes, Duration::from_secs(10))
        .await;
    let purged = wait_until(Duration::from_secs(10), || {
        cluster
            .node(leader)
            .replicator
            .metrics()
            .purged_index
            .filter(|&p| p > 20)
    })
    .await;
    assert!(
        purged.is_some(),
        "the leader never purged: {:?}",
        cluster.node(leader).replicator.metrics()
    );

    cluster.restart(lagging).await;
    cluster
        .wait_all_applied(&writes, Duration::from_secs(15))
        .await;
    assert!(
        cluster
            .node(lagging)
            .machine
            .installs
            .load(Ordering::SeqCst)
            >= 1,
        "the lagging peer caught up without a snapshot"
    );

    // Restarted again, it restores its own snapshot and catches up on the rest.
    cluster.stop(lagging).await;
    cluster.write(b"after").await;
    cluster.restart(lagging).await;
    let mut all = writes.clone();
    all.push(b"after".to_vec());
    cluster
        .wait_all_applied(&all, Duration::from_secs(15))
        .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_observer_replicates_but_never_counts_toward_the_quorum() {
    let mut cluster = Cluster::start(&[1, 2, 3], &[4], config()).await;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let observed = wait_until(Duration::from_secs(10), || {
        (cluster.node(4).replicator.role() == Role::Observer).then_some(())
    })
    .await;
    assert!(
        observed.is_some(),
        "server.4 never became an observer: {:?}",
        cluster.node(4).replicator.metrics()
    );
    let writes = payloads(0..10);
    for payload in &writes {
        cluster.write(payload).await;
    }
    cluster
        .wait_all_applied(&writes, Duration::from_secs(10))
        .await;
    let metrics = cluster.node(leader).replicator.metrics();
    assert_eq!(metrics.voters, vec![1, 2, 3]);
    assert_eq!(metrics.learners, vec![4]);
    assert_eq!(
        cluster.node(4).replicator.write(b"x".to_vec()).await,
        Err(WriteError::ForwardToLeader {
            leader_id: Some(leader),
            leader: Some(cluster.peers[leader as usize - 1].node.clone()),
        })
    );

    // Two of three voters down: the observer is up, yet nothing commits.
    let survivor = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    for id in [1, 2, 3] {
        if id != survivor {
            cluster.stop(id).await;
        }
    }
    let started = Instant::now();
    let mut failures = 0;
    while started.elapsed() < Duration::from_secs(8) {
        match cluster
            .node(survivor)
            .replicator
            .write(b"must not commit".to_vec())
            .await
        {
            Ok(_) => panic!("a write committed with one voter of three"),
            Err(_) => failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(failures > 0);
    assert!(!cluster
        .node(4)
        .machine
        .payloads()
        .contains(&b"must not commit".to_vec()));
    assert!(!cluster
        .node(survivor)
        .machine
        .payloads()
        .contains(&b"must not commit".to_vec()));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_speaking_garbage_is_disconnected_and_nothing_else_breaks() {
    let cluster = Cluster::start(&[1, 2, 3], &[], config()).await;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let addr = cluster.node(leader).replicator.listen_addr().to_string();

    let attacks: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        &[0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef],
        // A well-formed frame that is not a handshake: ReadIndex first.
        &[0, 0, 0, 1, 4],
    ];
    for attack in attacks {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(attack).await.unwrap();
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the connection sending {attack:?} was not closed"
        );
    }

    let writes = payloads(0..10);
    for payload in &writes {
        cluster.write(payload).await;
    }
    cluster
        .wait_all_applied(&writes, Duration::from_secs(10))
        .await;
    assert_eq!(cluster.agreed_leader(), Some(leader));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_ensemble_restarted_from_its_directories_recovers_every_write_once() {
    let mut cluster = Cluster::start(&[1, 2, 3], &[], config()).await;
    cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let mut writes = payloads(0..30);
    for payload in &writes {
        cluster.write(payload).await;
    }
    cluster
        .wait_all_applied(&writes, Duration::from_secs(10))
        .await;
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
    for id in [3, 2, 1] {
        cluster.restart(id).await;
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(15)).await;
    assert!(leader.is_some(), "the restarted ensemble elected no leader");
    // The machines start empty and are rebuilt from the logs, each entry
    // applied once (the recorder panics on a repeated index).
    cluster
        .wait_all_applied(&writes, Duration::from_secs(15))
        .await;
    cluster.write(b"after restart").await;
    writes.push(b"after restart".to_vec());
    cluster
        .wait_all_applied(&writes, Duration::from_secs(10))
        .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ensemble_forms_without_its_lowest_participant() {
    let started = Instant::now();
    let cluster = Cluster::start_only(&[1, 2, 3], &[], &[2, 3], config()).await;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("servers 2 and 3 formed no ensemble without server.1");
    eprintln!(
        "server.{leader} elected {:?} after start without server.1",
        started.elapsed()
    );
    let writes = payloads(0..5);
    for payload in &writes {
        cluster.write(payload).await;
    }
    cluster
        .wait_all_applied(&writes, Duration::from_secs(10))
        .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_campaigns_still_elect_a_leader() {
    let mut cluster = Cluster::start(&[1, 2, 3], &[], config()).await;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    cluster.stop(leader).await;
    let [a, b] = [1, 2, 3]
        .into_iter()
        .filter(|&id| id != leader)
        .collect::<Vec<_>>()[..]
    else {
        unreachable!()
    };
    // Both campaign at the same instant and vote for themselves: a split vote.
    let (trigger_a, trigger_b) = (
        cluster.node(a).replicator.raft().trigger(),
        cluster.node(b).replicator.raft().trigger(),
    );
    let (first, second) = tokio::join!(trigger_a.elect(), trigger_b.elect());
    first.unwrap();
    second.unwrap();
    let started = Instant::now();
    let elected = cluster.wait_for_leader(Duration::from_secs(15)).await;
    eprintln!(
        "{elected:?} elected {:?} after simultaneous campaigns",
        started.elapsed()
    );
    assert!(elected.is_some(), "the split vote never resolved");
    cluster.write(b"after the split").await;
    cluster.shutdown().await;
}

/// A network inside the test process: the [`Transport`] seam with links
/// that can be cut (a partition), for what TCP on one host cannot show: a
/// leader that keeps running while it cannot reach anyone.
mod sim {
    use std::collections::{HashMap, HashSet};
    use std::io;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
    use tokio::sync::mpsc;
    use zookeeper_rs::replication::{Listener, Transport};

    #[derive(Clone, Default)]
    pub struct Net {
        state: Arc<Mutex<State>>,
    }

    #[derive(Default)]
    struct State {
        listeners: HashMap<String, mpsc::UnboundedSender<(Stream, String)>>,
        /// Cut links, each as an ordered pair of addresses (both orders).
        cut: HashSet<(String, String)>,
    }

    impl Net {
        /// The transport of the peer at `addr`.
        pub fn transport(&self, addr: &str) -> SimTransport {
            SimTransport {
                net: self.clone(),
                me: addr.to_owned(),
            }
        }

        /// Cuts every link between `addr` and the others, both ways.
        pub fn isolate(&self, addr: &str, others: &[&str]) {
            let mut state = self.state.lock().unwrap();
            for other in others {
                state.cut.insert((addr.to_owned(), other.to_string()));
                state.cut.insert((other.to_string(), addr.to_owned()));
            }
        }

        pub fn heal(&self) {
            self.state.lock().unwrap().cut.clear();
        }

        fn is_cut(&self, from: &str, to: &str) -> bool {
            let state = self.state.lock().unwrap();
            state.cut.contains(&(from.to_owned(), to.to_owned()))
        }
    }

    #[derive(Clone)]
    pub struct SimTransport {
        net: Net,
        me: String,
    }

    /// One end of a connection; fails once its link is cut.
    pub struct Stream {
        inner: DuplexStream,
        net: Net,
        local: String,
        remote: String,
    }

    impl Stream {
        fn check(&self) -> io::Result<()> {
            if self.net.is_cut(&self.local, &self.remote) {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "link cut"))
            } else {
                Ok(())
            }
        }
    }

    impl AsyncRead for Stream {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.check()?;
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Stream {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.check()?;
            Pin::new(&mut self.inner).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.check()?;
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    pub struct SimListener {
        addr: String,
        incoming: mpsc::UnboundedReceiver<(Stream, String)>,
    }

    impl Listener for SimListener {
        type Stream = Stream;

        async fn accept(&mut self) -> io::Result<(Stream, String)> {
            self.incoming
                .recv()
                .await
                .ok_or_else(|| io::Error::other("network gone"))
        }

        fn local_addr(&self) -> io::Result<String> {
            Ok(self.addr.clone())
        }
    }

    impl Transport for SimTransport {
        type Stream = Stream;
        type Listener = SimListener;

        async fn connect(&self, addr: &str) -> io::Result<Stream> {
            let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
            if self.net.is_cut(&self.me, addr) {
                return Err(refused());
            }
            let listener = self
                .net
                .state
                .lock()
                .unwrap()
                .listeners
                .get(addr)
                .cloned()
                .ok_or_else(refused)?;
            let (near, far) = tokio::io::duplex(1 << 20);
            let accepted = Stream {
                inner: far,
                net: self.net.clone(),
                local: addr.to_owned(),
                remote: self.me.clone(),
            };
            listener
                .send((accepted, self.me.clone()))
                .map_err(|_| refused())?;
            Ok(Stream {
                inner: near,
                net: self.net.clone(),
                local: self.me.clone(),
                remote: addr.to_owned(),
            })
        }

        async fn bind(&self, addr: &str) -> io::Result<SimListener> {
            let (tx, incoming) = mpsc::unbounded_channel();
            self.net
                .state
                .lock()
                .unwrap()
                .listeners
                .insert(addr.to_owned(), tx);
            Ok(SimListener {
                addr: addr.to_owned(),
                incoming,
            })
        }
    }
}

/// A leader cut off from both followers keeps running, but nothing it takes
/// while cut off is acknowledged or applied anywhere; the followers elect a
/// leader of their own and go on; once the links are back the old leader
/// follows, and every peer holds the same writes in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_leader_acknowledges_nothing_and_rejoins_as_a_follower() {
    init_logging();
    let net = sim::Net::default();
    let addrs: Vec<String> = (1..=3).map(|id| format!("peer-{id}:2888")).collect();
    let peers: Vec<Peer> = (1..=3u64)
        .map(|id| Peer {
            id,
            node: PeerNode {
                quorum_addr: addrs[id as usize - 1].clone(),
                client_addr: String::new(),
            },
            voter: true,
        })
        .collect();
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (position, peer) in peers.iter().enumerate() {
        let transport = net.transport(&peer.node.quorum_addr);
        let listener = transport.bind(&peer.node.quorum_addr).await.unwrap();
        let machine = Arc::new(Recorder::default());
        let replicator = Replicator::start_with_listener(
            peer.id,
            peers.clone(),
            dirs[position].path(),
            Arc::clone(&machine),
            transport,
            config(),
            listener,
        )
        .await
        .unwrap();
        nodes.push((replicator, machine));
    }
    let leader_among = |members: &[usize]| {
        let leaders: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&m| nodes[m].0.role() == Role::Leader)
            .collect();
        let [leader] = leaders[..] else { return None };
        let agreed = members
            .iter()
            .all(|&m| nodes[m].0.leader().map(|l| l.id) == Some(nodes[leader].0.id()));
        agreed.then_some(leader)
    };
    let old = wait_until(Duration::from_secs(10), || leader_among(&[0, 1, 2]))
        .await
        .expect("no leader");
    let before = payloads(0..10);
    for payload in &before {
        nodes[old].0.write(payload.clone()).await.unwrap();
    }

    let others: Vec<usize> = (0..3).filter(|&m| m != old).collect();
    let other_addrs: Vec<&str> = others.iter().map(|&m| addrs[m].as_str()).collect();
    net.isolate(&addrs[old], &other_addrs);
    let lost = nodes[old].0.write(b"while cut off".to_vec()).await;
    assert!(
        lost.is_err(),
        "a leader without a quorum acknowledged a write: {lost:?}"
    );
    let new = wait_until(Duration::from_secs(10), || leader_among(&others))
        .await
        .expect("the two connected peers elected no leader");
    let after = payloads(10..20);
    for payload in &after {
        nodes[new].0.write(payload.clone()).await.unwrap();
    }

    net.heal();
    let expected: Vec<Vec<u8>> = before.iter().chain(&after).cloned().collect();
    let converged = wait_until(Duration::from_secs(15), || {
        nodes
            .iter()
            .all(|(_, machine)| machine.payloads() == expected)
            .then_some(())
    })
    .await;
    for (position, (_, machine)) in nodes.iter().enumerate() {
        assert_eq!(
            machine.payloads(),
            expected,
            "peer {} after the partition healed (converged: {converged:?})",
            position + 1
        );
    }
    let follower_again = wait_until(Duration::from_secs(10), || {
        leader_among(&[0, 1, 2]).filter(|&leader| leader != old)
    })
    .await;
    assert!(
        follower_again.is_some(),
        "the old leader did not follow the new one"
    );
    for (replicator, _) in nodes {
        replicator.shutdown().await;
    }
}
