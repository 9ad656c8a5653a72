//! Snapshots against real trees and files: round trips of every kind of node,
//! frozen images, damage anywhere, truncation, fallback and purge.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::proto::{perms, Acl, CreateMode, ErrorCode, Id, Stat};
use crate::tree::{PersistedStat, TreeOptions};
use crate::txn::{CreateOp, Txn, TxnOp};

const ALICE: i64 = 0x0100_0000_0000_0001;
const BOB: i64 = 0x0100_0000_0000_0002;

fn apply(tree: &mut DataTree, session_id: i64, op: TxnOp) {
    let txn = Txn {
        session_id,
        cxid: 1,
        time_ms: 1_000 + tree.last_zxid(),
        auth: vec![Id::new("digest", "alice:secret")],
        op,
    };
    let applied = tree.apply(&txn);
    assert_eq!(applied.result.error_code(), ErrorCode::Ok, "{txn:?}");
}

fn create(tree: &mut DataTree, session_id: i64, path: &str, data: &[u8], mode: CreateMode) {
    create_full(tree, session_id, path, data, mode, Acl::open_unsafe(), 0);
}

fn create_full(
    tree: &mut DataTree,
    session_id: i64,
    path: &str,
    data: &[u8],
    mode: CreateMode,
    acl: Vec<Acl>,
    ttl_ms: i64,
) {
    let op = TxnOp::Create(CreateOp {
        path: path.to_owned(),
        data: data.to_vec(),
        acl,
        mode,
        ttl_ms,
    });
    apply(tree, session_id, op);
}

/// A tree with every kind of node, two sessions, distinct ACLs, a quota,
/// sequential children with deletions between them, non-ASCII names, and
/// enough data to fill several blocks.
fn rich_tree() -> DataTree {
    let mut tree = DataTree::new(TreeOptions::default());
    for session in [ALICE, BOB] {
        apply(
            &mut tree,
            session,
            TxnOp::CreateSession { timeout_ms: 30_000 },
        );
    }
    apply(
        &mut tree,
        ALICE,
        TxnOp::SetData {
            path: "/".to_owned(),
            data: b"root data".to_vec(),
            version: -1,
        },
    );
    create(&mut tree, ALICE, "/app", b"app", CreateMode::Persistent);
    for i in 0..6 {
        create(
            &mut tree,
            ALICE,
            "/app/job-",
            format!("job {i}").as_bytes(),
            CreateMode::PersistentSequential,
        );
    }
    apply(
        &mut tree,
        ALICE,
        TxnOp::Delete {
            path: "/app/job-0000000002".to_owned(),
            version: -1,
        },
    );
    create(
        &mut tree,
        ALICE,
        "/app/lock-",
        b"",
        CreateMode::EphemeralSequential,
    );
    create(
        &mut tree,
        BOB,
        "/app/bob",
        b"ephemeral",
        CreateMode::Ephemeral,
    );
    create(&mut tree, ALICE, "/app/box", b"", CreateMode::Container);
    create(
        &mut tree,
        ALICE,
        "/app/box/item",
        b"x",
        CreateMode::Persistent,
    );
    create(&mut tree, ALICE, "/emptybox", b"", CreateMode::Container);
    create_full(
        &mut tree,
        ALICE,
        "/ttl",
        b"t",
        CreateMode::PersistentWithTtl,
        Acl::open_unsafe(),
        5_000,
    );
    let secret = vec![
        Acl {
            perms: perms::ALL,
            id: Id::new("auth", ""),
        },
        Acl {
            perms: perms::READ,
            id: Id::new("ip", "10.0.0.0/8"),
        },
    ];
    create_full(
        &mut tree,
        ALICE,
        "/secret",
        b"s",
        CreateMode::Persistent,
        secret,
        0,
    );
    apply(
        &mut tree,
        ALICE,
        TxnOp::SetAcl {
            path: "/app/box/item".to_owned(),
            acl: Acl::read_unsafe(),
            version: -1,
        },
    );
    create(
        &mut tree,
        ALICE,
        "/ünï",
        "çødé".as_bytes(),
        CreateMode::Persistent,
    );
    create(&mut tree, ALICE, "/ünï/çø", b"", CreateMode::Persistent);
    create(&mut tree, ALICE, "/ünï/çø/dé", b"", CreateMode::Persistent);
    create(&mut tree, ALICE, "/ünï/çü", b"", CreateMode::Persistent);
    create(
        &mut tree,
        ALICE,
        "/zookeeper/quota/app",
        b"",
        CreateMode::Persistent,
    );
    create(
        &mut tree,
        ALICE,
        "/zookeeper/quota/app/zookeeper_limits",
        b"count=100,bytes=-1",
        CreateMode::Persistent,
    );
    create(
        &mut tree,
        ALICE,
        "/zookeeper/quota/app/zookeeper_stats",
        b"count=0,bytes=0",
        CreateMode::Persistent,
    );
    create(&mut tree, ALICE, "/bulk", b"", CreateMode::Persistent);
    for i in 0..3_000 {
        let data: Vec<u8> = (0..100).map(|b| (i * 7 + b) as u8).collect();
        create(
            &mut tree,
            ALICE,
            &format!("/bulk/n{i:05}"),
            &data,
            CreateMode::Persistent,
        );
    }
    apply(
        &mut tree,
        ALICE,
        TxnOp::SetData {
            path: "/app/job-0000000001".to_owned(),
            data: b"changed".to_vec(),
            version: 0,
        },
    );
    tree
}

type NodeDump = (String, Vec<u8>, Stat, PersistedStat, Vec<Acl>, Vec<String>);

fn dump(tree: &DataTree) -> Vec<NodeDump> {
    let mut out = Vec::new();
    tree.for_each_node(|path, node| {
        out.push((
            path.to_owned(),
            node.data().to_vec(),
            node.stat(),
            node.persisted_stat(),
            node.acl().to_vec(),
            node.children().map(str::to_owned).collect(),
        ));
    });
    out
}

fn summary(tree: &DataTree) -> String {
    format!(
        "zxid={} nodes={} eph={} acls={} sessions={:?} by_session={:?} expired={:?} quota={:?}",
        tree.last_zxid(),
        tree.node_count(),
        tree.ephemeral_count(),
        tree.acl_cache_size(),
        tree.sessions().collect::<Vec<_>>(),
        tree.ephemerals_by_session().collect::<Vec<_>>(),
        tree.expired_candidates_with(i64::MAX / 2, Some(1)),
        tree.quota_metrics(),
    )
}

/// Node by node and stat by stat, then everything derived from the nodes.
fn assert_same_tree(restored: &DataTree, original: &DataTree) {
    let (restored_nodes, original_nodes) = (dump(restored), dump(original));
    assert_eq!(restored_nodes.len(), original_nodes.len());
    for (restored, original) in restored_nodes.iter().zip(&original_nodes) {
        assert_eq!(restored, original);
    }
    assert_eq!(summary(restored), summary(original));
}

fn point(last_index: u64) -> SnapshotPoint {
    SnapshotPoint {
        last_index,
        last_term: 3,
        created_ms: 1_700_000_000_000,
        extra: b"membership".to_vec(),
    }
}

fn snapshot_bytes(tree: &DataTree) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_to(&mut bytes, &capture(tree), &point(42)).unwrap();
    bytes
}

fn corrupt_offset(result: Result<(DataTree, SnapshotMeta), SnapshotError>) -> (u64, String) {
    match result {
        Err(SnapshotError::Corrupt { offset, detail }) => (offset, detail),
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("damaged snapshot was accepted"),
    }
}

#[test]
fn round_trip_keeps_every_node_stat_acl_and_session() {
    let tree = rich_tree();
    assert!(tree.ephemeral_count() == 2 && tree.acl_cache_size() >= 3);
    let mut bytes = Vec::new();
    let meta = write_to(&mut bytes, &capture(&tree), &point(42)).unwrap();
    assert!(bytes.len() > 4 * BLOCK_BYTES, "spans several blocks");
    let (restored, read_meta) = read_from(&bytes[..], TreeOptions::default()).unwrap();
    assert_eq!(read_meta, meta);
    assert_eq!(
        meta,
        SnapshotMeta {
            last_index: 42,
            last_term: 3,
            last_zxid: tree.last_zxid(),
            created_ms: 1_700_000_000_000,
            node_count: tree.node_count() as u64 - 1,
            session_count: 2,
            extra: b"membership".to_vec(),
        }
    );
    assert_same_tree(&restored, &tree);
    // Spot checks of what the comparison covers.
    let parent = restored.node("/app").unwrap().stat();
    assert_eq!((parent.cversion, parent.num_children), (2 * 9 - 8, 8));
    let usage = restored
        .node("/zookeeper/quota/app/zookeeper_stats")
        .unwrap();
    assert!(usage.data().starts_with(b"count="));
    assert_eq!(restored.node("/ünï").unwrap().data(), "çødé".as_bytes());
}

#[test]
fn each_distinct_acl_list_is_written_once() {
    let mut tree = DataTree::new(TreeOptions::default());
    for i in 0..200 {
        create(
            &mut tree,
            ALICE,
            &format!("/n{i}"),
            b"",
            CreateMode::Persistent,
        );
    }
    let per_node = snapshot_bytes(&tree).len() / 200;
    // Header 77 bytes + a short suffix; a repeated ACL would add 30 more.
    assert!(per_node < 90, "{per_node} bytes per node");
}

#[test]
fn a_frozen_image_is_unaffected_by_later_writes() {
    let mut tree = rich_tree();
    let before = dump(&tree);
    let before_summary = summary(&tree);
    let image = capture(&tree);
    apply(&mut tree, BOB, TxnOp::CloseSession);
    for i in 0..1_000 {
        apply(
            &mut tree,
            ALICE,
            TxnOp::SetData {
                path: format!("/bulk/n{:05}", i * 3),
                data: b"new".to_vec(),
                version: -1,
            },
        );
        apply(
            &mut tree,
            ALICE,
            TxnOp::Delete {
                path: format!("/bulk/n{:05}", i * 3 + 1),
                version: -1,
            },
        );
    }
    create(&mut tree, ALICE, "/later", b"", CreateMode::Persistent);
    let mut bytes = Vec::new();
    write_to(&mut bytes, &image, &point(1)).unwrap();
    let (restored, meta) = read_from(&bytes[..], TreeOptions::default()).unwrap();
    assert_eq!(dump(&restored), before);
    assert_eq!(summary(&restored), before_summary);
    assert_eq!(meta.session_count, 2);
    assert_ne!(dump(&tree), before);
}

#[test]
fn an_image_can_be_written_on_another_thread() {
    fn assert_send_sync<T: Send + Sync + 'static>(_: &T) {}
    let tree = rich_tree();
    let image = capture(&tree);
    assert_send_sync(&image);
    let writer = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        write_to(&mut bytes, &image, &point(9)).map(|_| bytes)
    });
    let bytes = writer.join().unwrap().unwrap();
    let (restored, _) = read_from(&bytes[..], TreeOptions::default()).unwrap();
    assert_same_tree(&restored, &tree);
}

#[test]
fn a_flipped_byte_anywhere_is_detected_and_located() {
    let tree = rich_tree();
    let bytes = snapshot_bytes(&tree);
    let len = bytes.len();
    let header_len = 64 + b"membership".len() + 4;
    // The header, every block's header, a sample of payload bytes, the last
    // block's end and the trailer.
    let mut positions: Vec<usize> = (0..header_len).collect();
    for block_start in (header_len..len).step_by(8 + BLOCK_BYTES) {
        positions.extend(block_start..block_start + 9);
    }
    positions.extend((header_len..len).step_by(2_003));
    positions.extend(len - 48..len);
    for position in positions {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x10;
        let (offset, detail) = corrupt_offset(read_from(&damaged[..], TreeOptions::default()));
        let offset = offset as usize;
        assert!(
            offset <= position && position - offset < 8 + BLOCK_BYTES.max(header_len),
            "byte {position} flipped, reported at {offset}: {detail}"
        );
    }
}

#[test]
fn truncation_is_detected() {
    let tree = rich_tree();
    let bytes = snapshot_bytes(&tree);
    let len = bytes.len();
    let mut lengths: Vec<usize> = vec![0, 1, 63, 64, 77, 78, 90];
    lengths.extend((100..len).step_by(7_919));
    lengths.extend(len - 41..len);
    for cut in lengths {
        let (offset, detail) = corrupt_offset(read_from(&bytes[..cut], TreeOptions::default()));
        assert!(offset as usize <= cut, "cut at {cut}, reported at {offset}");
        assert!(detail.contains("truncated"), "cut at {cut}: {detail}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let (offset, detail) = corrupt_offset(read_from(&longer[..], TreeOptions::default()));
    assert_eq!(
        (offset as usize, detail.as_str()),
        (len, "bytes follow the trailer")
    );
}

#[test]
fn a_dropped_or_repeated_block_is_detected() {
    let tree = rich_tree();
    let bytes = snapshot_bytes(&tree);
    let first_block = 64 + b"membership".len() + 4;
    let block = 8 + BLOCK_BYTES;
    let mut dropped = bytes[..first_block].to_vec();
    dropped.extend_from_slice(&bytes[first_block + block..]);
    let (offset, _) = corrupt_offset(read_from(&dropped[..], TreeOptions::default()));
    assert_eq!(offset as usize, first_block);
    let mut repeated = bytes[..first_block + block].to_vec();
    repeated.extend_from_slice(&bytes[first_block..]);
    let (offset, _) = corrupt_offset(read_from(&repeated[..], TreeOptions::default()));
    assert_eq!(offset as usize, first_block + block);
}

#[test]
fn files_round_trip_and_report_damage_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let tree = rich_tree();
    let (path, meta) = write_snapshot(dir.path(), &tree, &point(0x1234)).unwrap();
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        "snapshot.0000000000001234"
    );
    assert_eq!(read_meta(&path).unwrap(), meta);
    let (restored, read_back) = read_snapshot(&path, TreeOptions::default()).unwrap();
    assert_eq!(read_back, meta);
    assert_same_tree(&restored, &tree);

    let mut bytes = fs::read(&path).unwrap();
    let position = bytes.len() / 2;
    bytes[position] ^= 1;
    fs::write(&path, &bytes).unwrap();
    match read_snapshot(&path, TreeOptions::default()) {
        Err(StorageError::Corrupt {
            path: reported,
            offset,
            detail,
        }) => {
            assert_eq!(reported, path);
            let offset = offset as usize;
            assert!(offset <= position && position - offset < 8 + BLOCK_BYTES);
            assert!(detail.contains("checksum"), "{detail}");
        }
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("damaged snapshot was accepted"),
    }
}

fn small_tree(marker: &[u8]) -> DataTree {
    let mut tree = DataTree::new(TreeOptions::default());
    create(&mut tree, ALICE, "/marker", marker, CreateMode::Persistent);
    tree
}

fn marker(tree: &DataTree) -> Vec<u8> {
    tree.node("/marker").unwrap().data().to_vec()
}

#[test]
fn load_falls_back_past_damaged_snapshots_and_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for index in [10u64, 20, 30] {
        let tree = small_tree(format!("at {index}").as_bytes());
        paths.push(write_snapshot(dir.path(), &tree, &point(index)).unwrap().0);
    }
    // The newest is truncated, the one before it damaged in its header.
    let newest = fs::read(&paths[2]).unwrap();
    fs::write(&paths[2], &newest[..newest.len() - 5]).unwrap();
    let mut middle = fs::read(&paths[1]).unwrap();
    middle[20] ^= 0xff;
    fs::write(&paths[1], &middle).unwrap();
    // Leftovers of an interrupted write and unrelated files.
    fs::write(dir.path().join("snapshot.0000000000000040.tmp"), b"partial").unwrap();
    fs::write(dir.path().join("snapshot.00000000000000FF"), b"not ours").unwrap();
    fs::write(dir.path().join("log.0000000000000001"), b"").unwrap();

    // A valid snapshot under another snapshot's name.
    let renamed = dir.path().join("snapshot.0000000000000032");
    fs::copy(&paths[0], &renamed).unwrap();

    let loaded = load_newest_valid(dir.path(), TreeOptions::default()).unwrap();
    let newest = loaded.newest.expect("the oldest snapshot verifies");
    assert_eq!(newest.path, paths[0]);
    assert_eq!(newest.meta.last_index, 10);
    assert_eq!(marker(&newest.tree), b"at 10");
    let skipped: Vec<(u64, &Path, u64)> = loaded
        .skipped
        .iter()
        .map(|s| match &s.error {
            StorageError::Corrupt { offset, .. } => (s.last_index, s.path.as_path(), *offset),
            other => panic!("unexpected error {other}"),
        })
        .collect();
    let newest_len = fs::metadata(&paths[2]).unwrap().len();
    assert_eq!(skipped.len(), 3);
    assert_eq!(skipped[0], (0x32, renamed.as_path(), 16));
    assert_eq!((skipped[1].0, skipped[1].1), (30, paths[2].as_path()));
    assert!(skipped[1].2 < newest_len);
    assert_eq!(skipped[2], (20, paths[1].as_path(), 0));
    assert!(!dir.path().join("snapshot.0000000000000040.tmp").exists());
    assert!(dir.path().join("snapshot.00000000000000FF").exists());
}

#[test]
fn load_from_an_empty_or_missing_directory_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_newest_valid(dir.path(), TreeOptions::default()).unwrap();
    assert!(loaded.newest.is_none() && loaded.skipped.is_empty());
    let missing = dir.path().join("missing");
    let loaded = load_newest_valid(&missing, TreeOptions::default()).unwrap();
    assert!(loaded.newest.is_none() && loaded.skipped.is_empty());
}

#[test]
fn purge_keeps_the_newest_and_never_fewer_than_three() {
    let dir = tempfile::tempdir().unwrap();
    let tree = small_tree(b"");
    let indexes = [5u64, 0x10, 7, 300, 0x2a, 1];
    for index in indexes {
        write_snapshot(dir.path(), &tree, &point(index)).unwrap();
    }
    let listed: Vec<u64> = list_snapshots(dir.path())
        .unwrap()
        .into_iter()
        .map(|(index, _)| index)
        .collect();
    assert_eq!(listed, [300, 0x2a, 0x10, 7, 5, 1]);

    let deleted = purge_snapshots(dir.path(), 4).unwrap();
    let names: Vec<String> = deleted
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["snapshot.0000000000000001", "snapshot.0000000000000005"]
    );
    let remaining = |dir: &Path| -> Vec<u64> {
        list_snapshots(dir)
            .unwrap()
            .into_iter()
            .map(|(index, _)| index)
            .collect()
    };
    assert_eq!(remaining(dir.path()), [300, 0x2a, 0x10, 7]);
    assert_eq!(purge_snapshots(dir.path(), 1).unwrap().len(), 1);
    assert_eq!(remaining(dir.path()), [300, 0x2a, 0x10]);
    assert!(purge_snapshots(dir.path(), 0).unwrap().is_empty());
}

#[test]
fn extra_bytes_are_bounded() {
    let tree = small_tree(b"");
    let too_big = SnapshotPoint {
        extra: vec![0; MAX_EXTRA_BYTES + 1],
        ..point(1)
    };
    let result = write_to(Vec::new(), &capture(&tree), &too_big);
    assert!(matches!(result, Err(SnapshotError::ExtraTooLarge { .. })));
    let dir = tempfile::tempdir().unwrap();
    let result = write_snapshot(dir.path(), &tree, &too_big);
    assert!(matches!(result, Err(StorageError::TooLarge { .. })));
    assert!(list_snapshots(dir.path()).unwrap().is_empty());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temp file removed"
    );
}

fn node_path(i: usize) -> String {
    format!("/p{:04}/node{:07}", i % 1_000, i)
}

/// Restores `count` nodes of `data_len` bytes under 1,000 parents with
/// restore_node, which is how a snapshot is loaded anyway.
fn big_tree(count: usize, data_len: usize) -> DataTree {
    let mut tree = DataTree::new(TreeOptions::default());
    let stat = PersistedStat {
        czxid: 5,
        mzxid: 6,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        pzxid: 7,
        ..PersistedStat::default()
    };
    let acl = Acl::open_unsafe();
    let data = vec![b'x'; data_len];
    for p in 0..1_000 {
        tree.restore_node(&format!("/p{p:04}"), b"", &acl, stat)
            .unwrap();
    }
    let mut path = String::new();
    for i in 0..count {
        path.clear();
        use std::fmt::Write as _;
        let _ = write!(path, "/p{:04}/node{:07}", i % 1_000, i);
        tree.restore_node(&path, &data, &acl, stat).unwrap();
    }
    for s in 0..1_000 {
        tree.restore_session(0x0100_0000_0000_0000 + s, 30_000);
    }
    tree.finish_restore();
    tree.set_last_zxid(count as i64);
    tree
}

/// Wall-clock and this thread's CPU time since `start`: the machine running
/// the measurement may be busy with other work.
struct Timer {
    wall: Instant,
    cpu: Duration,
}

impl Timer {
    fn start() -> Timer {
        Timer {
            wall: Instant::now(),
            cpu: thread_cpu_time(),
        }
    }

    fn show(&self) -> String {
        format!(
            "{:.3} ms ({:.3} ms CPU)",
            self.wall.elapsed().as_secs_f64() * 1e3,
            (thread_cpu_time() - self.cpu).as_secs_f64() * 1e3
        )
    }
}

fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only to `now`, which outlives the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Figures for a million 100-byte nodes:
/// `cargo test --release --lib storage::snapshot::tests::measure -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn measure_a_million_nodes() {
    let count: usize = std::env::var("SNAPSHOT_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let timer = Timer::start();
    let mut tree = big_tree(count, 100);
    println!("build with DataTree::restore_node: {}", timer.show());

    let timer = Timer::start();
    let image = capture(&tree);
    println!("capture (the writer pause): {}", timer.show());

    let timer = Timer::start();
    let copied_chunks = tree.copy_nodes_deeply();
    println!(
        "deep copy of the node storage ({copied_chunks} chunks), as a plain clone would: {}",
        timer.show()
    );

    let timer = Timer::start();
    let mut buffer = Vec::new();
    write_to(&mut buffer, &image, &point(1)).unwrap();
    println!(
        "serialize to memory: {} ({} bytes, {:.1} per node)",
        timer.show(),
        buffer.len(),
        buffer.len() as f64 / count as f64
    );

    // Writes while the image is alive copy each chunk they touch once.
    let touch = |tree: &mut DataTree, round: usize| {
        let txns: Vec<Txn> = (0..10_000)
            .map(|i| Txn {
                session_id: ALICE,
                cxid: 1,
                time_ms: 0,
                auth: vec![],
                op: TxnOp::SetData {
                    path: node_path((i * 7919 + round) % count),
                    data: b"new".to_vec(),
                    version: -1,
                },
            })
            .collect();
        let timer = Timer::start();
        for txn in &txns {
            let applied = tree.apply(txn);
            assert_eq!(applied.result.error_code(), ErrorCode::Ok);
        }
        timer.show()
    };
    let shared = touch(&mut tree, 0);
    let unshared = touch(&mut tree, 1);
    println!(
        "10,000 setData on random nodes: {shared} while an image shares the chunks, {unshared} after"
    );

    let dir = tempfile::tempdir().unwrap();
    let timer = Timer::start();
    let (path, _) = write_image(dir.path(), &image, &point(1)).unwrap();
    println!(
        "write_image (file, fsync): {}, {} bytes",
        timer.show(),
        fs::metadata(&path).unwrap().len()
    );
    drop(image);
    drop(tree);

    let timer = Timer::start();
    let (restored, meta) = read_snapshot(&path, TreeOptions::default()).unwrap();
    println!("read_snapshot: {}", timer.show());
    assert_eq!(meta.node_count as usize, count + 1_000 + 4);
    assert_eq!(restored.node_count(), count + 1_000 + 5);
    drop(restored);

    let timer = Timer::start();
    let (_, _) = read_from(&buffer[..], TreeOptions::default()).unwrap();
    println!("read_from memory: {}", timer.show());
}
