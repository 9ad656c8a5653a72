//! Import from a real Apache ZooKeeper 3.8 data directory: build a data set through a client,
//! record everything Apache serves, kill Apache, import its files and compare node by node.
//! Then damage the files and check that the import falls back, refuses, or stops at the last
//! whole transaction, as each kind of damage calls for.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zookeeper_client as zk;

use common::{apache_available, connect, ApacheServer, ZkUnderTest};
use zookeeper_rs::proto::{Acl, Id, Stat};
use zookeeper_rs::storage::apache::{import, ImportError, ImportedState};
use zookeeper_rs::tree::TreeOptions;

/// Low enough that the first phase writes several snapshots while writes are in flight.
const LOW_SNAP_COUNT: &str = "snapCount=40";
/// High enough that the second phase writes none.
const HIGH_SNAP_COUNT: &str = "snapCount=1000000";
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(120);
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// The ephemeral of phase one's main session.
const PHASE_ONE_MARKER: &str = "/app/phase-one";

/// One znode as Apache served it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    data: Vec<u8>,
    acl: Vec<Acl>,
    stat: Stat,
}

/// Everything recorded from Apache at one moment.
#[derive(Debug, Clone)]
struct Snapshot {
    nodes: BTreeMap<String, Served>,
    /// The zxid of the last write before the walk.
    last_zxid: i64,
}

/// What a run of Apache left behind.
struct ApacheRun {
    _apache: ApacheServer,
    _log_dir: tempfile::TempDir,
    data_dir: PathBuf,
    log_dir: PathBuf,
    /// The state before the final write.
    before_last_write: Snapshot,
    /// The state at the kill.
    at_kill: Snapshot,
    /// The session still open at the kill, its timeout, and its ephemerals.
    owner: (i64, i32, Vec<String>),
    /// Sessions open at the kill.
    open_sessions: Vec<i64>,
    /// A session closed before the kill.
    closed_session: i64,
}

fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn alice_id() -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let hash = sha1::Sha1::digest(b"alice:secret");
    format!(
        "alice:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Runs a workload on `runtime`, whose worker threads keep the clients' connections going
/// (and their session closes flowing) between workloads.
fn block_on<F: std::future::Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    runtime.block_on(async {
        tokio::time::timeout(WORKLOAD_TIMEOUT, future)
            .await
            .expect("the workload did not finish in time")
    })
}

/// Phase one, with frequent snapshots: every kind of node, sequential names, ACLs, a quota,
/// versioned updates, deletes, multis, failed requests, and a session that closes. Writes are
/// pipelined so that snapshots are taken while transactions are being applied.
async fn first_phase(addr: &str, bulk: bool) -> (i64, i64) {
    let a = connect(addr).await;
    a.auth("digest", b"alice:secret").await.unwrap();
    a.create("/app", b"application root", &open())
        .await
        .unwrap();
    a.create("/app/last", b"", &open()).await.unwrap();
    a.create("/app/counter", b"0", &open()).await.unwrap();

    // A quota on /app, set up the way zkCli's setquota does it.
    a.create("/zookeeper/quota/app", b"", &open())
        .await
        .unwrap();
    a.create(
        "/zookeeper/quota/app/zookeeper_limits",
        b"count=1000,bytes=100000",
        &open(),
    )
    .await
    .unwrap();
    a.create(
        "/zookeeper/quota/app/zookeeper_stats",
        b"count=0,bytes=0",
        &open(),
    )
    .await
    .unwrap();

    if bulk {
        bulk_writes(&a).await;
    }
    let sequential = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let creates: Vec<_> = (0..30)
        .map(|i| a.create("/app/seq-", format!("item {i}").as_bytes(), &sequential))
        .collect();
    let mut seq_paths = Vec::new();
    for create in creates {
        let (_, sequence) = create.await.unwrap();
        seq_paths.push(format!("/app/seq-{sequence}"));
    }
    let updates: Vec<_> = seq_paths
        .iter()
        .map(|path| a.set_data(path, b"updated", Some(0)))
        .collect();
    for update in updates {
        update.await.unwrap();
    }
    let deletes: Vec<_> = seq_paths
        .iter()
        .step_by(3)
        .map(|path| a.delete(path, Some(1)))
        .collect();
    for delete in deletes {
        delete.await.unwrap();
    }

    a.create(
        "/app/box",
        b"",
        &zk::CreateMode::Container.with_acls(zk::Acls::anyone_all()),
    )
    .await
    .unwrap();
    a.create("/app/box/item", b"in the box", &open())
        .await
        .unwrap();
    a.create(
        "/app/ttl",
        b"lives an hour",
        &open().with_ttl(Duration::from_secs(3600)),
    )
    .await
    .unwrap();

    let alice = alice_id();
    let secure_acl = [
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &alice)),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
    ];
    let private_acl = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", &alice),
    )];
    a.create(
        "/secure",
        b"visible",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&secure_acl)),
    )
    .await
    .unwrap();
    a.create(
        "/secure/private",
        b"hidden",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&private_acl)),
    )
    .await
    .unwrap();
    let read_write = [zk::Acl::new(
        zk::Permission::READ | zk::Permission::WRITE,
        zk::AuthId::anyone(),
    )];
    a.set_acl("/app/box/item", &read_write, Some(0))
        .await
        .unwrap();

    // A session whose ephemerals go with it.
    let temp = connect(addr).await;
    let closed_session = temp.session_id().0;
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let ephemeral_sequential =
        zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    temp.create("/app/tmp", b"", &ephemeral).await.unwrap();
    for _ in 0..3 {
        temp.create("/app/tmp-", b"", &ephemeral_sequential)
            .await
            .unwrap();
    }
    let (_, gone) = a.check_and_watch_stat("/app/tmp").await.unwrap();
    drop(temp);
    tokio::time::timeout(EVENT_TIMEOUT, gone.changed())
        .await
        .expect("the closed session's ephemerals were not deleted");

    let mut multi = a.new_multi_writer();
    multi
        .add_create("/app/m", b"from a multi", &open())
        .unwrap();
    multi
        .add_set_data("/app/m", b"changed in the multi", Some(0))
        .unwrap();
    multi.add_check_version("/app/m", 1).unwrap();
    multi.add_create("/app/m-", b"", &sequential).unwrap();
    multi.commit().await.unwrap();
    let mut failing = a.new_multi_writer();
    failing.add_create("/app/never", b"", &open()).unwrap();
    failing.add_check_version("/app/m", 0).unwrap();
    assert!(failing.commit().await.is_err());

    // Failed requests take zxids too.
    assert!(a.create("/app", b"", &open()).await.is_err());
    assert!(a.set_data("/app", b"", Some(7)).await.is_err());

    let counters: Vec<_> = (0..60)
        .map(|i| a.set_data("/app/counter", format!("{}", i + 1).as_bytes(), Some(i)))
        .collect();
    let mut last = 0;
    for counter in counters {
        last = counter.await.unwrap().mzxid;
    }
    let end = a.set_data("/app", b"end of phase one", None).await.unwrap();
    // An ephemeral that shows when this session has closed.
    a.create(PHASE_ONE_MARKER, b"", &ephemeral).await.unwrap();
    (last.max(end.mzxid), closed_session)
}

/// Enough pipelined writes on nodes with some data that Apache's snapshots, taken in the
/// background, catch transactions after their zxid: the fuzzy snapshots whose replay needs
/// Apache's replay rules.
async fn bulk_writes(a: &zk::Client) {
    a.create("/bulk", b"", &open()).await.unwrap();
    let payload = vec![b'x'; 2048];
    let paths: Vec<String> = (0..1000).map(|i| format!("/bulk/n{i}")).collect();
    let options = open();
    let creates: Vec<_> = paths
        .iter()
        .map(|path| a.create(path, &payload, &options))
        .collect();
    for create in creates {
        create.await.unwrap();
    }
    let updates: Vec<_> = paths
        .iter()
        .map(|path| a.set_data(path, b"short", Some(0)))
        .collect();
    for update in updates {
        update.await.unwrap();
    }
    let deletes: Vec<_> = paths
        .iter()
        .step_by(2)
        .map(|path| a.delete(path, Some(1)))
        .collect();
    for delete in deletes {
        delete.await.unwrap();
    }
}

/// Reads every node Apache serves, as a client authenticated as alice.
async fn walk(client: &zk::Client, last_zxid: i64) -> Snapshot {
    let mut nodes = BTreeMap::new();
    let mut pending = vec!["/".to_string()];
    while let Some(path) = pending.pop() {
        let (data, stat) = client.get_data(&path).await.unwrap();
        let (acl, acl_stat) = client.get_acl(&path).await.unwrap();
        assert_eq!(stat, acl_stat, "{path} changed during the walk");
        for child in client.list_children(&path).await.unwrap() {
            pending.push(if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            });
        }
        nodes.insert(
            path,
            Served {
                data,
                acl: acl.iter().map(our_acl).collect(),
                stat: our_stat(&stat),
            },
        );
    }
    Snapshot { nodes, last_zxid }
}

fn our_acl(acl: &zk::Acl) -> Acl {
    let bits = [
        (zk::Permission::READ, 1),
        (zk::Permission::WRITE, 2),
        (zk::Permission::CREATE, 4),
        (zk::Permission::DELETE, 8),
        (zk::Permission::ADMIN, 16),
    ];
    let perms = bits
        .iter()
        .filter(|(perm, _)| acl.permission().has(*perm))
        .map(|(_, bit)| bit)
        .sum();
    Acl {
        perms,
        id: Id::new(acl.scheme(), acl.id()),
    }
}

fn our_stat(stat: &zk::Stat) -> Stat {
    Stat {
        czxid: stat.czxid,
        mzxid: stat.mzxid,
        ctime: stat.ctime,
        mtime: stat.mtime,
        version: stat.version,
        cversion: stat.cversion,
        aversion: stat.aversion,
        ephemeral_owner: stat.ephemeral_owner,
        data_length: stat.data_length,
        num_children: stat.num_children,
        pzxid: stat.pzxid,
    }
}

/// Runs both phases against Apache, with a separate dataLogDir, and kills it with SIGKILL while
/// sessions (and their ephemerals) are alive.
fn run_apache(bulk: bool) -> ApacheRun {
    let log_dir = tempfile::Builder::new()
        .prefix("zkrs-apache-logs-")
        .tempdir()
        .unwrap();
    let cfg = format!(
        "{LOW_SNAP_COUNT}\nextendedTypesEnabled=true\ndataLogDir={}\n",
        log_dir.path().display()
    );
    let mut apache = ApacheServer::start_with(&cfg);
    let addr = apache.connect_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    let (first_phase_zxid, closed_session) = block_on(&runtime, first_phase(&addr, bulk));
    // Dropping the client closed its session in the background; an open session would expire
    // at some moment during phase two and delete nodes there.
    assert!(
        common::wait_until(
            || !apache.four_letter("dump").contains(PHASE_ONE_MARKER),
            EVENT_TIMEOUT
        ),
        "phase one's session did not close:\n{}",
        apache.four_letter("dump")
    );

    // Phase two starts from the snapshot Apache writes as it starts, and takes no other.
    apache.stop();
    let cfg_text = fs::read_to_string(apache.cfg_path()).unwrap();
    fs::write(
        apache.cfg_path(),
        cfg_text.replace(LOW_SNAP_COUNT, HIGH_SNAP_COUNT),
    )
    .unwrap();
    apache.restart();

    let (before_last_write, at_kill, owner, open_sessions, clients) = block_on(&runtime, async {
        let a = connect(&addr).await;
        a.auth("digest", b"alice:secret").await.unwrap();
        let owner = connect(&addr).await;
        owner.auth("digest", b"alice:secret").await.unwrap();
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        let ephemeral_sequential =
            zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        owner
            .create("/app/owned", b"mine", &ephemeral)
            .await
            .unwrap();
        for _ in 0..2 {
            owner
                .create("/app/owned-", b"", &ephemeral_sequential)
                .await
                .unwrap();
        }
        owner.create("/secure/eph", b"", &ephemeral).await.unwrap();

        let version = a.check_stat("/app/counter").await.unwrap().unwrap().version;
        let counters: Vec<_> = (0..40)
            .map(|i| {
                a.set_data(
                    "/app/counter",
                    format!("two {i}").as_bytes(),
                    Some(version + i),
                )
            })
            .collect();
        for counter in counters {
            counter.await.unwrap();
        }
        let children = a.list_children("/app").await.unwrap();
        for child in children.iter().filter(|c| c.starts_with("seq-")).take(4) {
            a.delete(&format!("/app/{child}"), None).await.unwrap();
        }
        let sequential = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
        for _ in 0..3 {
            a.create("/app/seq-", b"phase two", &sequential)
                .await
                .unwrap();
        }
        let aversion = a.get_acl("/secure").await.unwrap().1.aversion;
        let widened = [
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &alice_id())),
            zk::Acl::new(
                zk::Permission::READ | zk::Permission::CREATE,
                zk::AuthId::anyone(),
            ),
        ];
        a.set_acl("/secure", &widened, Some(aversion))
            .await
            .unwrap();
        let mut multi = a.new_multi_writer();
        multi.add_delete("/app/m", None).unwrap();
        multi.add_create("/app/m2", b"", &open()).unwrap();
        multi.commit().await.unwrap();

        let walker = connect(&addr).await;
        walker.auth("digest", b"alice:secret").await.unwrap();
        let (final_stat, _) = a
            .create("/app/final", b"before the kill", &open())
            .await
            .unwrap();
        let before = walk(&walker, final_stat.czxid).await;
        let last = a
            .set_data("/app/last", b"the last write", Some(0))
            .await
            .unwrap();
        let at_kill = walk(&walker, last.mzxid).await;

        let owner_id = owner.session_id().0;
        let timeout = i32::try_from(owner.session_timeout().as_millis()).unwrap();
        let mut owned: Vec<String> = at_kill
            .nodes
            .iter()
            .filter(|(_, node)| node.stat.ephemeral_owner == owner_id)
            .map(|(path, _)| path.clone())
            .collect();
        owned.sort();
        let open_sessions = vec![a.session_id().0, owner_id, walker.session_id().0];
        (
            before,
            at_kill,
            (owner_id, timeout, owned),
            open_sessions,
            (a, owner, walker),
        )
    });
    assert!(
        before_last_write.last_zxid > first_phase_zxid,
        "phase two wrote after phase one"
    );
    // Killed with every session open: nothing more reaches the log.
    apache.kill();
    drop(clients);
    drop(runtime);

    let data_dir = apache.data_dir();
    let log_path = log_dir.path().to_path_buf();
    ApacheRun {
        _apache: apache,
        _log_dir: log_dir,
        data_dir,
        log_dir: log_path,
        before_last_write,
        at_kill,
        owner,
        open_sessions,
        closed_session,
    }
}

/// Asserts that the imported tree holds exactly the nodes Apache served, with the same data,
/// ACLs and stats.
fn assert_same_as_served(state: &ImportedState, served: &Snapshot) {
    let mut imported = Vec::new();
    state
        .tree
        .for_each_node(|path, _| imported.push(path.to_string()));
    let served_paths: Vec<&String> = served.nodes.keys().collect();
    imported.sort();
    assert_eq!(
        imported.iter().collect::<Vec<_>>(),
        served_paths,
        "the imported tree has other nodes than Apache served"
    );
    for (path, node) in &served.nodes {
        let ours = state.tree.node(path).unwrap();
        assert_eq!(ours.stat(), node.stat, "stat of {path}");
        assert_eq!(ours.data(), &node.data[..], "data of {path}");
        assert_eq!(&ours.acl()[..], &node.acl[..], "ACL of {path}");
    }
    assert_eq!(state.last_zxid, served.last_zxid);
    assert_eq!(state.tree.last_zxid(), served.last_zxid);
}

fn version2(dir: &Path) -> PathBuf {
    dir.join("version-2")
}

/// `(zxid, path)` of each file named `<prefix>.<hex>` in `dir`, oldest first.
fn files(dir: &Path, prefix: &str) -> Vec<(i64, PathBuf)> {
    let mut found: Vec<(i64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_string();
            let hex = name.strip_prefix(&format!("{prefix}."))?;
            Some((i64::from_str_radix(hex, 16).ok()?, path))
        })
        .collect();
    found.sort();
    found
}

/// `(offset, entry length)` of each record of an Apache log file.
fn log_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut records = Vec::new();
    let mut pos = 16;
    while pos + 12 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
        if len <= 0 {
            break;
        }
        records.push((pos, len as usize));
        pos += 12 + len as usize + 1;
    }
    records
}

/// The zxid in the TxnHeader of the record at `offset`.
fn record_zxid(bytes: &[u8], offset: usize) -> i64 {
    let at = offset + 12 + 12;
    i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// A copy of the run's dataDir and dataLogDir to damage.
struct Copy {
    dir: tempfile::TempDir,
}

impl Copy {
    fn of(run: &ApacheRun) -> Copy {
        let dir = tempfile::tempdir().unwrap();
        for (from, to) in [(&run.data_dir, "data"), (&run.log_dir, "logs")] {
            let target = version2(&dir.path().join(to));
            fs::create_dir_all(&target).unwrap();
            for entry in fs::read_dir(version2(from)).unwrap() {
                let entry = entry.unwrap();
                fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
            }
        }
        Copy { dir }
    }

    /// The run's files with one snapshot: links, not copies, as there are many snapshots.
    fn with_only_snapshot(run: &ApacheRun, snapshot: &Path) -> Copy {
        let dir = tempfile::tempdir().unwrap();
        let data = version2(&dir.path().join("data"));
        let logs = version2(&dir.path().join("logs"));
        fs::create_dir_all(&data).unwrap();
        fs::create_dir_all(&logs).unwrap();
        std::os::unix::fs::symlink(snapshot, data.join(snapshot.file_name().unwrap())).unwrap();
        for entry in fs::read_dir(version2(&run.log_dir)).unwrap() {
            let entry = entry.unwrap();
            std::os::unix::fs::symlink(entry.path(), logs.join(entry.file_name())).unwrap();
        }
        Copy { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    fn import(&self) -> Result<ImportedState, ImportError> {
        import(&self.data(), Some(&self.logs()), TreeOptions::default())
    }
}

#[test]
fn import_rebuilds_what_apache_served() {
    if !apache_available() {
        return;
    }
    let run = run_apache(true);
    let state = import(&run.data_dir, Some(&run.log_dir), TreeOptions::default())
        .unwrap_or_else(|e| panic!("import failed: {e}"));

    let snapshots = files(&version2(&run.data_dir), "snapshot");
    assert!(
        snapshots.len() >= 3,
        "phase one wrote snapshots: {snapshots:?}"
    );
    let newest = &snapshots.last().unwrap().1;
    assert_eq!(
        &state.snapshot, newest,
        "the snapshot Apache wrote at its restart"
    );
    assert!(
        state.txns_replayed >= 50,
        "phase two replays from the log: {}",
        state.txns_replayed
    );
    assert!(state.rejected_snapshots.is_empty());
    assert!(state.torn_tails.is_empty());
    assert_same_as_served(&state, &run.at_kill);

    let (owner, timeout, owned) = &run.owner;
    assert_eq!(owned.len(), 4, "{owned:?}");
    assert_eq!(&state.tree.ephemerals(*owner), owned);
    assert_eq!(state.tree.session_timeout(*owner), Some(*timeout));
    for session in &run.open_sessions {
        assert!(
            state.tree.session_timeout(*session).is_some(),
            "session {session:#x} was open at the kill"
        );
    }
    assert_eq!(state.sessions, run.open_sessions.len());
    assert_eq!(state.tree.session_timeout(run.closed_session), None);

    // Every snapshot, the fuzzy ones taken while phase one was writing included, replays to
    // the same state.
    for (_, path) in &snapshots {
        let view = Copy::with_only_snapshot(&run, path);
        let state = view
            .import()
            .unwrap_or_else(|e| panic!("import from {}: {e}", path.display()));
        assert_eq!(state.snapshot.file_name(), path.file_name());
        assert_same_as_served(&state, &run.at_kill);
    }
}

#[test]
fn import_handles_damaged_apache_files() {
    if !apache_available() {
        return;
    }
    let run = run_apache(false);
    let snapshots = files(&version2(&run.data_dir), "snapshot");
    let (newest_zxid, newest) = snapshots.last().unwrap().clone();
    let newest_name = newest.file_name().unwrap().to_owned();
    let logs = files(&version2(&run.log_dir), "log");

    // A flipped byte in the newest snapshot: fall back to the one before, a fuzzy one taken
    // while phase one was writing, and replay everything after it.
    let fallback_zxid;
    {
        let copy = Copy::of(&run);
        let damaged = version2(&copy.data()).join(&newest_name);
        let mut bytes = fs::read(&damaged).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        fs::write(&damaged, &bytes).unwrap();
        let state = copy
            .import()
            .unwrap_or_else(|e| panic!("fallback failed: {e}"));
        assert_eq!(state.rejected_snapshots.len(), 1);
        assert_eq!(state.rejected_snapshots[0].path, damaged);
        assert_ne!(state.snapshot, damaged);
        fallback_zxid = snapshots
            .iter()
            .find(|(_, path)| path.file_name() == state.snapshot.file_name())
            .map(|(zxid, _)| *zxid)
            .unwrap();
        assert!(fallback_zxid < newest_zxid);
        assert_same_as_served(&state, &run.at_kill);

        // Without the log holding the transaction right after the older snapshot, refuse.
        let (_, covering) = logs
            .iter()
            .rfind(|(start, _)| *start <= fallback_zxid + 1)
            .unwrap();
        fs::remove_file(version2(&copy.logs()).join(covering.file_name().unwrap())).unwrap();
        let err = copy
            .import()
            .err()
            .expect("an uncovered fallback must be refused");
        let message = err.to_string();
        assert!(
            matches!(
                err,
                ImportError::Gap { .. } | ImportError::NotCovered { .. }
            ),
            "{message}"
        );
        assert!(
            message.contains(&damaged.display().to_string()) && message.contains("at byte"),
            "{message}"
        );
    }

    let (_, newest_log) = logs.last().unwrap();
    let log_name = newest_log.file_name().unwrap().to_owned();
    let log_bytes = fs::read(newest_log).unwrap();
    let records = log_records(&log_bytes);
    assert!(
        records.len() >= 50,
        "phase two's log: {} records",
        records.len()
    );

    // A flipped byte in the middle of a log: refused, naming the file and the record.
    {
        let copy = Copy::of(&run);
        let damaged = version2(&copy.logs()).join(&log_name);
        let (offset, _) = records[records.len() / 2];
        let (previous, _) = records[records.len() / 2 - 1];
        let mut bytes = log_bytes.clone();
        bytes[offset + 12 + 20] ^= 0x01;
        fs::write(&damaged, &bytes).unwrap();
        let err = copy.import().err().expect("a damaged log must be refused");
        let message = err.to_string();
        match &err {
            ImportError::DamagedLog {
                path,
                offset: at,
                last_good_zxid,
                ..
            } => {
                assert_eq!(path, &damaged);
                assert_eq!(*at, offset as u64);
                assert_eq!(*last_good_zxid, record_zxid(&log_bytes, previous));
            }
            other => panic!("expected DamagedLog, got {other:?}"),
        }
        assert!(
            message.contains(&format!(
                "{} at byte {offset}: checksum mismatch",
                damaged.display()
            )),
            "{message}"
        );
    }

    // The last write cut short: imported up to the transaction before it.
    {
        let copy = Copy::of(&run);
        let damaged = version2(&copy.logs()).join(&log_name);
        let (offset, len) = *records.last().unwrap();
        assert_eq!(record_zxid(&log_bytes, offset), run.at_kill.last_zxid);
        let mut bytes = log_bytes.clone();
        bytes.truncate(offset + 12 + len / 2);
        fs::write(&damaged, &bytes).unwrap();
        let state = copy
            .import()
            .unwrap_or_else(|e| panic!("torn tail refused: {e}"));
        assert_eq!(state.torn_tails.len(), 1);
        assert_eq!(state.torn_tails[0].offset, offset as u64);
        assert_same_as_served(&state, &run.before_last_write);
    }
}
