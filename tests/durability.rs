//! Durability, end to end: acknowledged writes survive SIGKILL, a torn log
//! tail is repaired, damage in the middle of the log stops the server with a
//! message naming the file, a full disk refuses writes without losing
//! anything and writes resume once space is back, and sessions outlive a
//! restart.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use zookeeper_client as zk;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// A small deterministic generator, so a failing round can be replayed from
/// the seed the test prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("ZKRS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(88172645463325252)
        })
}

/// One writer's acknowledged state: the highest step whose multi was
/// acknowledged.
type Acked = Arc<Mutex<BTreeMap<usize, u32>>>;

const WRITERS: usize = 6;

/// Each step of a writer is one multi: two creates and a versioned setData of
/// the writer's counter. Acknowledged steps must all survive; an
/// unacknowledged one may survive or vanish, but never in part.
async fn writer(addr: String, round: u32, id: usize, acked: Acked, deadline: Instant) {
    let Ok(client) = try_connect(&addr).await else {
        return;
    };
    let counter = format!("/r{round}/w{id}");
    for step in 1u32.. {
        if Instant::now() > deadline {
            return;
        }
        let mut multi = client.new_multi_writer();
        let data = format!("{round}-{id}-{step}");
        let ops = [
            multi.add_create(&format!("{counter}-{step}-a"), data.as_bytes(), &open()),
            multi.add_create(&format!("{counter}-{step}-b"), data.as_bytes(), &open()),
            multi.add_set_data(&counter, data.as_bytes(), Some((step - 1) as i32)),
        ];
        if ops.iter().any(|r| r.is_err()) {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(3), multi.commit()).await {
            Ok(Ok(_)) => {
                acked.lock().unwrap().insert(id, step);
            }
            // Connection lost (the server was killed) or timed out: this
            // step's outcome is unknown, and the writer stops.
            _ => return,
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_at_random_moments() {
    let rounds: u32 = std::env::var("ZKRS_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let seed = seed();
    println!("crash test: {rounds} rounds, seed {seed} (ZKRS_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let mut server = Server::start_with("maxClientCnxns=0");
    let rt = runtime();
    let test_deadline = Instant::now() + Duration::from_secs(240);
    let mut total_acked = 0u64;
    for round in 0..rounds {
        assert!(
            Instant::now() < test_deadline,
            "crash test ran out of time at round {round}"
        );
        let addr = server.connect_string();
        rt.block_on(async {
            let c = connect(&addr).await;
            c.create(&format!("/r{round}"), b"", &open()).await.unwrap();
            for id in 0..WRITERS {
                c.create(&format!("/r{round}/w{id}"), b"", &open())
                    .await
                    .unwrap();
            }
            drop(c);
        });
        let acked: Acked = Arc::default();
        let kill_after = Duration::from_millis(20 + rng.below(250));
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                rt.spawn(writer(
                    addr.clone(),
                    round,
                    id,
                    acked.clone(),
                    Instant::now() + Duration::from_secs(5),
                ))
            })
            .collect();
        std::thread::sleep(kill_after);
        server.kill();
        for w in writers {
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
            });
        }
        server.restart();
        let acked = acked.lock().unwrap().clone();
        total_acked += acked.values().map(|v| u64::from(*v)).sum::<u64>();
        rt.block_on(verify_round(&server.connect_string(), round, &acked));
    }
    println!("crash test: {total_acked} acknowledged multis checked over {rounds} rounds");
}

async fn verify_round(addr: &str, round: u32, acked: &BTreeMap<usize, u32>) {
    let c = connect(addr).await;
    let children: Vec<String> = c.list_children(&format!("/r{round}")).await.unwrap();
    for id in 0..WRITERS {
        let counter = format!("/r{round}/w{id}");
        let (data, stat) = c.get_data(&counter).await.unwrap();
        let durable_step = stat.version as u32;
        let acked_step = acked.get(&id).copied().unwrap_or(0);
        assert!(
            durable_step >= acked_step,
            "round {round} writer {id}: step {acked_step} was acknowledged but the counter is at version {durable_step}"
        );
        // At most one unacknowledged step can have become durable.
        assert!(
            durable_step <= acked_step + 1,
            "round {round} writer {id}: counter at {durable_step}, only {acked_step} acknowledged"
        );
        if durable_step > 0 {
            assert_eq!(data, format!("{round}-{id}-{durable_step}").into_bytes());
        }
        for step in 1..=durable_step + 1 {
            let a = children.contains(&format!("w{id}-{step}-a"));
            let b = children.contains(&format!("w{id}-{step}-b"));
            let expected = step <= durable_step;
            assert_eq!(
                (a, b),
                (expected, expected),
                "round {round} writer {id} step {step}: multi half-applied or lost (counter at {durable_step})"
            );
        }
    }
    drop(c);
}

/// The segments of the transaction log, oldest first.
fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("version-rs-1"))
        .expect("the log directory exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("log.") && !n.ends_with(".tmp"))
        })
        .collect();
    files.sort();
    files
}

/// Offset one past the last non-zero byte: the end of the written records.
fn end_of_records(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1)
}

fn fill(server: &Server, count: usize) {
    runtime().block_on(async {
        let c = connect(&server.connect_string()).await;
        c.create("/fill", b"", &open()).await.unwrap();
        for i in 0..count {
            c.create(
                &format!("/fill/n{i:04}"),
                format!("value {i}").as_bytes(),
                &open(),
            )
            .await
            .unwrap();
        }
        drop(c);
    });
}

fn children_of(server: &Server, path: &str) -> Vec<String> {
    runtime().block_on(async {
        let c = connect(&server.connect_string()).await;
        let mut children = c.list_children(path).await.unwrap();
        children.sort();
        drop(c);
        children
    })
}

#[test]
fn a_torn_tail_is_cut_off_and_the_server_starts() {
    let mut server = Server::start();
    fill(&server, 50);
    server.kill();
    let segment = segments(&server.data_dir()).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let end = end_of_records(&bytes);
    // A crash mid-write: the last record's final bytes never reached the
    // disk, and a few bytes of the next write did.
    bytes[end - 6..end].fill(0);
    bytes[end + 10..end + 30].fill(0xab);
    std::fs::write(&segment, &bytes).unwrap();

    server.restart();
    let children = children_of(&server, "/fill");
    // The last record was cut: it is gone (the last create, or the client's
    // closeSession if that reached the log first), and everything before it
    // is intact.
    let expected: Vec<String> = (0..49).map(|i| format!("n{i:04}")).collect();
    assert_eq!(children[..49], expected[..], "{children:?}");
    assert!(children.len() <= 50, "{children:?}");
    assert!(
        server.log().contains("torn"),
        "the repair is reported in the log:\n{}",
        server.log()
    );
    // And the repaired log takes new writes that survive another crash.
    fill_more(&server);
    server.kill();
    server.restart();
    assert!(children_of(&server, "/").contains(&"after-repair".to_string()));
}

fn fill_more(server: &Server) {
    runtime().block_on(async {
        let c = connect(&server.connect_string()).await;
        c.create("/after-repair", b"x", &open()).await.unwrap();
        drop(c);
    });
}

/// Runs the server binary on `cfg` and expects it to refuse to start.
fn expect_refusal(cfg: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkServer"))
        .arg("start-foreground")
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning zkServer");
    let mut status = None;
    let exited = wait_until(
        || {
            status = child.try_wait().expect("waiting for zkServer");
            status.is_some()
        },
        Duration::from_secs(20),
    );
    if !exited {
        let _ = child.kill();
        panic!("the server started on a damaged log instead of refusing");
    }
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.unwrap().success(), "exit status must say it failed");
    stderr
}

#[test]
fn damage_in_the_middle_of_the_log_stops_the_server_with_the_file_and_offset() {
    let mut server = Server::start();
    fill(&server, 50);
    server.kill();
    let segment = segments(&server.data_dir()).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = end_of_records(&bytes) / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&segment, &bytes).unwrap();

    let stderr = expect_refusal(server.cfg_path());
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(name), "names the file:\n{stderr}");
    assert!(stderr.contains("byte"), "names the offset:\n{stderr}");
}

#[test]
fn sessions_and_their_ephemerals_survive_a_restart() {
    let mut server = Server::start();
    let rt = runtime();
    let client = rt.block_on(connect(&server.connect_string()));
    let session_id = client.session_id();
    rt.block_on(async {
        client
            .create(
                "/eph",
                b"mine",
                &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()),
            )
            .await
            .unwrap();
    });
    server.kill();
    server.restart();
    // The same client reconnects with its session and finds its ephemeral.
    let ok = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Ok(Some(stat))) =
                tokio::time::timeout(Duration::from_secs(2), client.check_stat("/eph")).await
            {
                return stat.ephemeral_owner == session_id.0;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(
        ok,
        "the session and its ephemeral came back after the restart"
    );
    drop(client);
    // Dropping the client closes its session, and the ephemeral goes with it.
    let gone = rt.block_on(async {
        let other = connect(&server.connect_string()).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if other.check_stat("/eph").await.unwrap().is_none() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(gone, "closing the session deletes its ephemeral");
}

/// A tmpfs of `size` at a fresh directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_refuses_writes_keeps_serving_and_recovers() {
    let Some(disk) = SmallDisk::mount("4m") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "mounting a tmpfs needs root, which CI has"
        );
        println!("SKIP: cannot mount a tmpfs here (not root?)");
        return;
    };
    let log_dir = disk.path().join("log");
    // Small segments: a new one is needed every few hundred writes.
    let server = Server::start_with(&format!(
        "dataLogDir={}\npreAllocSize=64",
        log_dir.display()
    ));
    // Take most of the disk so the log runs out of room soon.
    let filler = disk.path().join("filler");
    let status = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k", "count=56"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let rt = runtime();
    rt.block_on(async {
        let c = connect(&server.connect_string()).await;
        c.create("/full", b"", &open()).await.unwrap();
        let mut written = 0;
        let mut refusal = None;
        for i in 0..20_000 {
            match c
                .create(&format!("/full/n{i:05}"), &[7u8; 200], &open())
                .await
            {
                Ok(_) => written += 1,
                Err(e) => {
                    refusal = Some(e);
                    break;
                }
            }
        }
        let refusal = refusal.expect("the disk filled up within 20,000 writes");
        println!("refused after {written} writes: {refusal}");
        // The refusal shows in mntr; reads, the session and four-letter
        // words keep working.
        let mntr = server.four_letter("mntr");
        assert!(mntr.contains("zk_disk_full\t1"), "{mntr}");
        assert!(mntr.contains("zk_writes_refused\t1"), "{mntr}");
        assert_eq!(
            c.list_children("/full").await.unwrap().len(),
            written,
            "every acknowledged write is readable"
        );
        assert!(server.log().contains("disk full"), "{}", server.log());

        // Free the space: writes resume by themselves.
        std::fs::remove_file(&filler).unwrap();
        c.create("/full/after", b"ok", &open()).await.unwrap();
        let mntr = server.four_letter("mntr");
        assert!(mntr.contains("zk_disk_full\t0"), "{mntr}");
        assert_eq!(c.list_children("/full").await.unwrap().len(), written + 1);
    });
}

/// Frequent snapshots: between 10 and 20 transactions apart.
const SNAP_EVERY_20: &str = "snapCount=20";

/// The snapshot files under `<dataDir>/version-rs-1`, oldest first (their
/// names end in the fixed-width hex log index they cover).
fn snapshot_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("version-rs-1"))
        .expect("the data directory exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot.") && !n.ends_with(".tmp"))
        })
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap()
}

/// The log index a snapshot or segment file name carries.
fn index_in_name(path: &Path) -> u64 {
    let name = file_name(path);
    let hex = name.rsplit('.').next().unwrap();
    u64::from_str_radix(hex, 16).unwrap()
}

/// The value of `key=` on the first line of `log` that contains `message`.
fn logged_field(log: &str, message: &str, key: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains(message))?;
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let value = line[start..].split(' ').next()?;
    Some(value.trim_matches('"').to_string())
}

/// The snapshot the last start loaded, by file name.
fn loaded_snapshot(log: &str) -> Option<String> {
    logged_field(log, "loaded snapshot", "file").map(|path| file_name(Path::new(&path)).to_string())
}

/// How many logged transactions the last start replayed after its snapshot.
fn replayed(log: &str) -> u64 {
    logged_field(log, "recovered the data tree", "transactions")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!("the start-up log says how many transactions it replayed:\n{log}")
        })
}

/// Node data that tells the nodes apart and fills the log: `len` bytes.
fn payload(i: usize, len: usize) -> Vec<u8> {
    let mut data = format!("node {i} ").into_bytes();
    data.resize(len, b'a' + (i % 26) as u8);
    data
}

/// Creates `/snap/n0000`.. one at a time, each acknowledged before the next.
fn write_nodes(server: &Server, count: usize, len: usize) {
    runtime().block_on(async {
        let c = connect(&server.connect_string()).await;
        c.create("/snap", b"", &open()).await.unwrap();
        for i in 0..count {
            c.create(&format!("/snap/n{i:04}"), &payload(i, len), &open())
                .await
                .unwrap();
        }
        drop(c);
    });
}

/// Every node [`write_nodes`] acknowledged is there with its data, and no other.
fn assert_nodes(server: &Server, count: usize, len: usize) {
    runtime().block_on(async {
        let c = connect(&server.connect_string()).await;
        let mut children = c.list_children("/snap").await.unwrap();
        children.sort();
        let expected: Vec<String> = (0..count).map(|i| format!("n{i:04}")).collect();
        assert_eq!(children, expected);
        let reads: Vec<_> = (0..count)
            .map(|i| c.get_data(&format!("/snap/n{i:04}")))
            .collect();
        for (i, read) in reads.into_iter().enumerate() {
            let (data, stat) = read.await.unwrap();
            assert_eq!(data, payload(i, len), "data of /snap/n{i:04}");
            assert_eq!(stat.version, 0);
        }
        drop(c);
    });
}

/// Flips one byte in the middle of a file: a damaged block, not a cut.
fn flip_middle_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn snapshots_every_snap_count_and_a_restart_after_sigkill_loads_the_newest() {
    let mut server = Server::start_with(SNAP_EVERY_20);
    write_nodes(&server, 300, 100);
    // Over 300 transactions with a snapshot every 10 to 20: a dozen at the
    // very least, whatever the spread drew.
    assert!(
        wait_until(
            || snapshot_files(&server.data_dir()).len() >= 12,
            Duration::from_secs(10)
        ),
        "snapshots: {:?}",
        snapshot_files(&server.data_dir())
    );
    server.kill();
    let snapshots = snapshot_files(&server.data_dir());
    let newest = snapshots.last().unwrap();

    server.restart();
    assert_nodes(&server, 300, 100);
    let log = server.log();
    assert_eq!(
        loaded_snapshot(&log).as_deref(),
        Some(file_name(newest)),
        "the newest snapshot is loaded:\n{log}"
    );
    // Only the tail after the newest snapshot is replayed: at most one
    // spread's worth, and one batch that arrived while it was written.
    let tail = replayed(&log);
    assert!(tail < 40, "replayed {tail} transactions:\n{log}");
    assert!(log.contains("recovery finished"), "{log}");
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one_the_log_still_covers() {
    let mut server = Server::start_with(SNAP_EVERY_20);
    write_nodes(&server, 200, 100);
    server.kill();
    let snapshots = snapshot_files(&server.data_dir());
    assert!(snapshots.len() >= 3, "{snapshots:?}");
    let newest = snapshots[snapshots.len() - 1].clone();
    let older = &snapshots[snapshots.len() - 2];
    flip_middle_byte(&newest);

    server.restart();
    assert_nodes(&server, 200, 100);
    let log = server.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("skipping a damaged snapshot"))
        .unwrap_or_else(|| panic!("a warning for the damaged snapshot:\n{log}"));
    assert!(
        warning.contains(&newest.display().to_string()),
        "the warning names the file: {warning}"
    );
    assert_eq!(
        loaded_snapshot(&log).as_deref(),
        Some(file_name(older)),
        "{log}"
    );
    // The log carried the state from the older snapshot past the damaged one.
    assert!(
        replayed(&log) >= index_in_name(&newest) - index_in_name(older),
        "{log}"
    );
    // The damaged file stays for the operator to look at; the server goes on.
    assert!(newest.exists());
    support::assert_still_serves(server.addr(), "falling back to an older snapshot");
}

#[test]
fn a_damaged_snapshot_the_log_no_longer_covers_stops_the_server_naming_it() {
    // 64 KiB segments: 400 nodes of 300 bytes fill several.
    let mut server = Server::start_with(&format!("{SNAP_EVERY_20}\npreAllocSize=64"));
    write_nodes(&server, 400, 300);
    server.kill();
    let snapshots = snapshot_files(&server.data_dir());
    let newest = snapshots.last().unwrap().clone();
    let covered = index_in_name(&newest);
    // What a purge leaves: one snapshot and the log after it.
    for older in &snapshots[..snapshots.len() - 1] {
        std::fs::remove_file(older).unwrap();
    }
    let log_segments = segments(&server.data_dir());
    assert!(log_segments.len() >= 3, "{log_segments:?}");
    let mut purged = 0;
    for pair in log_segments.windows(2) {
        // A segment is entirely covered when its successor starts within
        // the snapshot.
        if index_in_name(&pair[1]) <= covered + 1 {
            std::fs::remove_file(&pair[0]).unwrap();
            purged += 1;
        }
    }
    assert!(
        purged >= 1,
        "the snapshot at {covered} covers a segment of {log_segments:?}"
    );
    flip_middle_byte(&newest);

    let stderr = expect_refusal(server.cfg_path());
    assert!(
        stderr.contains(&newest.display().to_string()),
        "the message names the damaged snapshot:\n{stderr}"
    );
    assert!(
        stderr.contains("Restore") && stderr.contains("backup"),
        "the message says what to do:\n{stderr}"
    );
    // Nothing was changed on the way: the files are as the test left them.
    assert!(newest.exists());
    assert_eq!(
        segments(&server.data_dir()).len(),
        log_segments.len() - purged
    );
}

#[test]
fn a_clean_stop_writes_a_snapshot_the_next_start_loads_without_replay() {
    // A snapCount no test reaches: only the stop writes a snapshot.
    let mut server = Server::start_with("snapCount=100000");
    write_nodes(&server, 50, 100);
    assert!(snapshot_files(&server.data_dir()).is_empty());
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    let stop_log = server.log();
    let snapshots = snapshot_files(&server.data_dir());
    assert_eq!(snapshots.len(), 1, "{snapshots:?}\n{stop_log}");
    assert!(
        stop_log.contains("snapshot written at shutdown"),
        "{stop_log}"
    );

    server.restart();
    let log = server.log();
    assert_eq!(
        loaded_snapshot(&log).as_deref(),
        Some(file_name(&snapshots[0])),
        "{log}"
    );
    assert_eq!(replayed(&log), 0, "{log}");
    assert_nodes(&server, 50, 100);
}
