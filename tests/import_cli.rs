//! `zkServer import`, end to end: Debian's Apache ZooKeeper builds a data set and is stopped
//! with a session still open; the command takes its dataDir over, and our server then serves
//! every znode exactly as Apache did (data, ACL, the whole Stat, zxids included), keeps the
//! open session until it expires, and continues the zxids above Apache's. A second import
//! into the now non-empty dataDir is refused.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

use common::{apache_available, connect, wait_until, ApacheServer, Server, ZkUnderTest};

/// A few snapshots during the workload, and transactions in the log after the last one.
const APACHE_CFG: &str = "snapCount=100\nextendedTypesEnabled=true";
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// The session left open at the stop asks for this; Apache grants it (tickTime 2 s allows
/// 4 s to 40 s).
const OWNER_TIMEOUT: Duration = Duration::from_secs(8);

/// One znode as a server served it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    data: Vec<u8>,
    acl: Vec<zk::Acl>,
    stat: zk::Stat,
}

fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn alice_id() -> String {
    common::support::digest_id("alice", "secret")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

fn block_on<F: std::future::Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    runtime.block_on(async {
        tokio::time::timeout(WORKLOAD_TIMEOUT, future)
            .await
            .expect("the workload did not finish in time")
    })
}

/// A client authenticated as alice, who may read every node of the data set.
async fn alice(addr: &str) -> zk::Client {
    let client = connect(addr).await;
    client.auth("digest", b"alice:secret").await.unwrap();
    client
}

/// Sequential, ACL'd, quota'd, container and TTL nodes, a multi, deletes and many setData.
async fn workload(a: &zk::Client) {
    a.create("/app", b"application root", &open())
        .await
        .unwrap();
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

    let sequential = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let mut seq_paths = Vec::new();
    for i in 0..25 {
        let (_, sequence) = a
            .create("/app/seq-", format!("item {i}").as_bytes(), &sequential)
            .await
            .unwrap();
        seq_paths.push(format!("/app/seq-{sequence}"));
    }
    for path in seq_paths.iter().step_by(4) {
        a.delete(path, Some(0)).await.unwrap();
    }

    a.create("/app/counter", b"0", &open()).await.unwrap();
    let counters: Vec<_> = (0..250)
        .map(|i| a.set_data("/app/counter", format!("{}", i + 1).as_bytes(), Some(i)))
        .collect();
    for counter in counters {
        counter.await.unwrap();
    }

    let secure_acl = [
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &alice_id())),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
    ];
    let private_acl = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", &alice_id()),
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
    a.set_acl("/secure", &private_acl, Some(0)).await.unwrap();

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

    let mut multi = a.new_multi_writer();
    multi
        .add_create("/app/m", b"from a multi", &open())
        .unwrap();
    multi.add_set_data("/app/m", b"changed", Some(0)).unwrap();
    multi.add_create("/app/m-", b"", &sequential).unwrap();
    multi.commit().await.unwrap();
    // A failed write takes a zxid too.
    assert!(a.set_data("/app", b"", Some(9)).await.is_err());
}

/// Reads every node the server serves.
async fn walk(client: &zk::Client) -> BTreeMap<String, Served> {
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
        nodes.insert(path, Served { data, acl, stat });
    }
    nodes
}

/// The session ids a `cons` answer lists.
fn sessions_in_cons(cons: &str) -> Vec<i64> {
    cons.split("sid=0x")
        .skip(1)
        .filter_map(|rest| {
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            i64::from_str_radix(&hex, 16).ok()
        })
        .collect()
}

/// The `Zxid: 0x…` line of `srvr`.
fn srvr_zxid(srvr: &str) -> i64 {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Zxid: 0x"))
        .and_then(|hex| i64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no zxid in srvr:\n{srvr}"))
}

/// The `zk_znode_count` of `mntr`.
fn znode_count(mntr: &str) -> usize {
    mntr.lines()
        .find_map(|l| l.strip_prefix("zk_znode_count\t"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no zk_znode_count in mntr:\n{mntr}"))
}

fn zk_server_import(from: &Path, cfg: &Path) -> Output {
    zk_server_import_with(from, None, cfg)
}

fn zk_server_import_with(from: &Path, log_dir: Option<&Path>, cfg: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zkServer"));
    command.arg("import").arg("--from").arg(from);
    if let Some(log_dir) = log_dir {
        command.arg("--log-dir").arg(log_dir);
    }
    command.arg(cfg).output().expect("running zkServer import")
}

/// What Apache left behind when it was stopped.
struct ApacheState {
    apache: ApacheServer,
    nodes: BTreeMap<String, Served>,
    last_zxid: i64,
    znode_count: usize,
    owner: i64,
    owner_timeout: Duration,
}

/// Runs the workload on Apache, leaves one session open with its ephemerals, and stops
/// Apache with SIGTERM.
fn build_on_apache() -> ApacheState {
    let mut apache = ApacheServer::start_with(APACHE_CFG);
    let addr = apache.connect_string();
    let rt = runtime();
    let (nodes, owner, owner_timeout, closed, owner_client) = block_on(&rt, async {
        let a = alice(&addr).await;
        workload(&a).await;
        let owner = zk::Client::connector()
            .with_session_timeout(OWNER_TIMEOUT)
            .with_connection_timeout(Duration::from_secs(5))
            .with_fail_eagerly()
            .connect(&addr)
            .await
            .unwrap();
        owner.auth("digest", b"alice:secret").await.unwrap();
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        owner
            .create("/app/owned", b"mine", &ephemeral)
            .await
            .unwrap();
        owner
            .create(
                "/app/owned-",
                b"",
                &zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all()),
            )
            .await
            .unwrap();
        owner
            .create(
                "/secure/eph",
                b"",
                &zk::CreateMode::Ephemeral.with_acls(zk::Acls::creator_all()),
            )
            .await
            .unwrap();
        let nodes = walk(&a).await;
        let closed = a.session_id().0;
        drop(a);
        (
            nodes,
            owner.session_id().0,
            owner.session_timeout(),
            closed,
            owner,
        )
    });
    // Only the owner's session is open at the stop: the other one's close is logged.
    assert!(
        wait_until(
            || {
                let sessions = sessions_in_cons(&apache.four_letter("cons"));
                sessions.contains(&owner) && !sessions.contains(&closed)
            },
            Duration::from_secs(20)
        ),
        "the walking session did not close:\n{}",
        apache.four_letter("cons")
    );
    let last_zxid = srvr_zxid(&apache.four_letter("srvr"));
    let znode_count = znode_count(&apache.four_letter("mntr"));
    // Java exits with 143 on SIGTERM; what matters is what it left on disk.
    apache.stop();
    // The client would otherwise go on trying to reach the stopped server.
    drop(owner_client);
    drop(rt);
    ApacheState {
        apache,
        nodes,
        last_zxid,
        znode_count,
        owner,
        owner_timeout,
    }
}

#[test]
fn zk_server_import_serves_what_apache_served() {
    if !apache_available() {
        return;
    }
    let before = build_on_apache();
    let owned: Vec<&String> = before
        .nodes
        .iter()
        .filter(|(_, n)| n.stat.ephemeral_owner == before.owner)
        .map(|(path, _)| path)
        .collect();
    assert_eq!(owned.len(), 3, "{owned:?}");

    let mut ours = Server::configure("");
    let import = zk_server_import(&before.apache.data_dir(), ours.cfg_path());
    let stdout = String::from_utf8_lossy(&import.stdout);
    let stderr = String::from_utf8_lossy(&import.stderr);
    println!("zkServer import:\n{stdout}{stderr}");
    assert_eq!(import.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "Imported {} znodes and 1 sessions up to zxid 0x{:x} from ",
            before.znode_count, before.last_zxid
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{}",
            before.apache.data_dir().join("version-2").display()
        )),
        "names the Apache snapshot it started from: {stdout}"
    );
    assert!(
        stdout.contains("Wrote ") && stdout.contains("Start the server to serve it."),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");

    let launched = Instant::now();
    ours.launch();
    let rt = runtime();
    block_on(&rt, async {
        let client = alice(&ours.connect_string()).await;
        let served = walk(&client).await;
        let apache_paths: Vec<&String> = before.nodes.keys().collect();
        let our_paths: Vec<&String> = served.keys().collect();
        assert_eq!(our_paths, apache_paths);
        println!("comparing {} znodes", served.len());
        for (path, node) in &before.nodes {
            assert_eq!(&served[path], node, "{path}");
        }

        // The imported session holds its ephemerals until it expires, its clock started
        // again by the restart; then they go.
        for path in &owned {
            let stat = client.check_stat(path).await.unwrap().unwrap();
            assert_eq!(stat.ephemeral_owner, before.owner, "{path}");
        }
        let expiry_limit = before.owner_timeout + Duration::from_secs(15);
        let gone_at = loop {
            if client.check_stat("/app/owned").await.unwrap().is_none() {
                break launched.elapsed();
            }
            assert!(
                launched.elapsed() < expiry_limit,
                "the imported session did not expire within {expiry_limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!("the imported session expired {gone_at:?} after the start");
        assert!(
            gone_at >= before.owner_timeout,
            "expired after {gone_at:?}, before its timeout of {:?}",
            before.owner_timeout
        );
        for path in &owned {
            assert_eq!(client.check_stat(path).await.unwrap(), None, "{path}");
        }

        // New writes continue above Apache's zxids.
        let (stat, _) = client
            .create("/after-import", b"new", &open())
            .await
            .unwrap();
        assert!(
            stat.czxid > before.last_zxid,
            "czxid 0x{:x} is not above the imported 0x{:x}",
            stat.czxid,
            before.last_zxid
        );
        let (_, counter) = client.get_data("/app/counter").await.unwrap();
        let updated = client
            .set_data("/app/counter", b"after", Some(counter.version))
            .await
            .unwrap();
        assert_eq!(updated.version, 251);
        assert!(updated.mzxid > stat.czxid);
    });

    apache_logs_in_their_own_directory(&before);

    // The dataDir now holds our data: a second import is refused and changes nothing.
    let status = ours.stop();
    assert!(status.success(), "{status:?}");
    let files_before = data_files(&ours.data_dir());
    let again = zk_server_import(&before.apache.data_dir(), ours.cfg_path());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("already holds zookeeper-rs data")
            && stderr.contains("import only into an empty dataDir"),
        "{stderr}"
    );
    assert!(again.stdout.is_empty(), "{:?}", again.stdout);
    assert_eq!(data_files(&ours.data_dir()), files_before);
    ours.restart();
    block_on(&rt, async {
        let client = connect(&ours.connect_string()).await;
        let (data, _) = client.get_data("/app/counter").await.unwrap();
        assert_eq!(data, b"after");
    });
}

/// Every file under `dir` with its length, to show that a refused import wrote nothing.
fn data_files(dir: &Path) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                files.push((entry.path().display().to_string(), meta.len()));
            }
        }
    }
    files.sort();
    files
}

/// Apache run with a separate dataLogDir: without `--log-dir` only the snapshot can be
/// imported, which is said; with it, everything is.
fn apache_logs_in_their_own_directory(before: &ApacheState) {
    let split = tempfile::tempdir().unwrap();
    let data = split.path().join("data");
    let logs = split.path().join("logs");
    std::fs::create_dir_all(data.join("version-2")).unwrap();
    std::fs::create_dir_all(logs.join("version-2")).unwrap();
    for entry in std::fs::read_dir(before.apache.data_dir().join("version-2")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let into = if name.starts_with("log.") {
            &logs
        } else {
            &data
        };
        std::fs::copy(entry.path(), into.join("version-2").join(&name)).unwrap();
    }

    let snapshot_only = Server::configure("");
    let run = zk_server_import(&data, snapshot_only.cfg_path());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: no transaction logs")
            && stderr.contains(&data.join("version-2").display().to_string())
            && stderr.contains("--log-dir"),
        "{stderr}"
    );

    let mut complete = Server::configure("");
    let run = zk_server_import_with(&data, Some(&logs), complete.cfg_path());
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(
        stdout.contains(&format!("up to zxid 0x{:x} ", before.last_zxid)),
        "{stdout}"
    );
    complete.launch();
    let rt = runtime();
    block_on(&rt, async {
        let client = alice(&complete.connect_string()).await;
        assert_eq!(walk(&client).await, before.nodes);
    });
}
