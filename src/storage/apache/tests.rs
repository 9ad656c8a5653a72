//! Import from hand-built Apache files: every layout detail, Apache's replay
//! rules for fuzzy snapshots, and each kind of damage.

use std::fs;
use std::path::{Path, PathBuf};

use adler2::Adler32;

use super::*;
use crate::jute::JuteWriter;
use crate::proto::data::write_acl_list;
use crate::proto::{perms, Acl, Id, Stat};
use crate::tree::{PersistedStat, CONTAINER_OWNER};

const CREATE: i32 = 1;
const DELETE: i32 = 2;
const SET_DATA: i32 = 5;
const SET_ACL: i32 = 7;
const CHECK: i32 = 13;
const MULTI: i32 = 14;
const CREATE2: i32 = 15;
const CREATE_CONTAINER: i32 = 19;
const CREATE_SESSION: i32 = -10;
const CLOSE_SESSION: i32 = -11;
const ERROR: i32 = -1;

const SESSION: i64 = 0x1000_0000_0000_0001;
const TIME: i64 = 1_700_000_000_000;

fn digest_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id::new("digest", "alice:k3Y2JbdJ1x4wB6fbBEbNBgT0MXs="),
    }]
}

fn stat(zxid: i64) -> PersistedStat {
    PersistedStat {
        czxid: zxid,
        mzxid: zxid,
        ctime: TIME + zxid,
        mtime: TIME + zxid,
        pzxid: zxid,
        ..PersistedStat::default()
    }
}

/// Builds snapshot files the way Apache's `FileSnap.serialize` lays them out.
struct SnapshotBuilder {
    sessions: Vec<(i64, i32)>,
    acls: Vec<(i64, Vec<Acl>)>,
    nodes: Vec<(String, Vec<u8>, i64, PersistedStat)>,
    digest: bool,
}

impl SnapshotBuilder {
    /// The tree Apache starts with: "", /zookeeper, /zookeeper/quota,
    /// /zookeeper/config.
    fn new() -> Self {
        let config = PersistedStat {
            aversion: -1,
            ..PersistedStat::default()
        };
        SnapshotBuilder {
            sessions: Vec::new(),
            acls: vec![(1, Acl::read_unsafe())],
            nodes: vec![
                (String::new(), Vec::new(), -1, PersistedStat::default()),
                (
                    "/zookeeper".into(),
                    Vec::new(),
                    -1,
                    PersistedStat::default(),
                ),
                (
                    "/zookeeper/quota".into(),
                    Vec::new(),
                    -1,
                    PersistedStat::default(),
                ),
                ("/zookeeper/config".into(), Vec::new(), 1, config),
            ],
            digest: true,
        }
    }

    fn node(mut self, path: &str, data: &[u8], acl: i64, stat: PersistedStat) -> Self {
        self.nodes.push((path.into(), data.to_vec(), acl, stat));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        w.write_i32(0x5a4b_534e);
        w.write_i32(2);
        w.write_i64(-1);
        w.write_i32(self.sessions.len() as i32);
        for (id, timeout) in &self.sessions {
            w.write_i64(*id);
            w.write_i32(*timeout);
        }
        w.write_i32(self.acls.len() as i32);
        for (reference, list) in &self.acls {
            w.write_i64(*reference);
            write_acl_list(&mut w, list);
        }
        for (path, data, acl, stat) in &self.nodes {
            w.write_string(path);
            w.write_buffer(data);
            w.write_i64(*acl);
            write_persisted(&mut w, stat);
        }
        w.write_string("/");
        let mut bytes = w.into_inner();
        seal(&mut bytes);
        if self.digest {
            let mut w = JuteWriter::new();
            w.write_i64(0);
            w.write_i32(2);
            w.write_i64(0);
            bytes.extend_from_slice(w.as_slice());
            seal(&mut bytes);
        }
        bytes
    }
}

fn write_persisted(w: &mut JuteWriter, stat: &PersistedStat) {
    w.write_i64(stat.czxid);
    w.write_i64(stat.mzxid);
    w.write_i64(stat.ctime);
    w.write_i64(stat.mtime);
    w.write_i32(stat.version);
    w.write_i32(stat.cversion);
    w.write_i32(stat.aversion);
    w.write_i64(stat.ephemeral_owner);
    w.write_i64(stat.pzxid);
}

/// Appends a seal: the Adler-32 of everything so far, then "/".
fn seal(bytes: &mut Vec<u8>) {
    let mut checksum = Adler32::new();
    checksum.write_slice(bytes);
    bytes.extend_from_slice(&i64::from(checksum.checksum()).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 1, b'/']);
}

/// One logged transaction: header fields and the encoded record.
struct Entry {
    client: i64,
    zxid: i64,
    kind: i32,
    body: Vec<u8>,
}

fn entry(zxid: i64, kind: i32, body: impl FnOnce(&mut JuteWriter)) -> Entry {
    let mut w = JuteWriter::new();
    body(&mut w);
    Entry {
        client: SESSION,
        zxid,
        kind,
        body: w.into_inner(),
    }
}

fn create(zxid: i64, path: &str, data: &[u8], ephemeral: bool, parent_cversion: i32) -> Entry {
    entry(zxid, CREATE2, |w| {
        w.write_string(path);
        w.write_buffer(data);
        write_acl_list(w, &Acl::open_unsafe());
        w.write_bool(ephemeral);
        w.write_i32(parent_cversion);
    })
}

fn set_data(zxid: i64, path: &str, data: &[u8], version: i32) -> Entry {
    entry(zxid, SET_DATA, |w| {
        w.write_string(path);
        w.write_buffer(data);
        w.write_i32(version);
    })
}

fn delete(zxid: i64, path: &str) -> Entry {
    entry(zxid, DELETE, |w| w.write_string(path))
}

fn create_session(zxid: i64, timeout: i32) -> Entry {
    entry(zxid, CREATE_SESSION, |w| w.write_i32(timeout))
}

fn entry_bytes(e: &Entry) -> Vec<u8> {
    let mut w = JuteWriter::new();
    w.write_i64(e.client);
    w.write_i32(7);
    w.write_i64(e.zxid);
    w.write_i64(TIME + e.zxid);
    w.write_i32(e.kind);
    let mut bytes = w.into_inner();
    bytes.extend_from_slice(&e.body);
    // The digest Apache 3.6+ appends.
    bytes.extend_from_slice(&2i32.to_be_bytes());
    bytes.extend_from_slice(&0x1234i64.to_be_bytes());
    bytes
}

/// A log file as Apache writes it, with `padding` zero bytes preallocated
/// after the records. Returns the bytes and each record's offset.
fn log_bytes(entries: &[Entry], padding: usize) -> (Vec<u8>, Vec<usize>) {
    let mut w = JuteWriter::new();
    w.write_i32(0x5a4b_4c47);
    w.write_i32(2);
    w.write_i64(0);
    let mut bytes = w.into_inner();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(bytes.len());
        let txn = entry_bytes(e);
        bytes.extend_from_slice(&i64::from(adler2::adler32_slice(&txn)).to_be_bytes());
        bytes.extend_from_slice(&(txn.len() as i32).to_be_bytes());
        bytes.extend_from_slice(&txn);
        bytes.push(b'B');
    }
    bytes.resize(bytes.len() + padding, 0);
    (bytes, offsets)
}

/// A dataDir in a temporary directory.
struct DataDir {
    dir: tempfile::TempDir,
}

impl DataDir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("version-2")).unwrap();
        DataDir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("version-2").join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.file(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn snapshot(&self, zxid: i64, builder: &SnapshotBuilder) -> PathBuf {
        self.write(&format!("snapshot.{zxid:x}"), &builder.bytes())
    }

    fn log(&self, first_zxid: i64, entries: &[Entry]) -> (PathBuf, Vec<usize>) {
        let (bytes, offsets) = log_bytes(entries, 4096);
        (self.write(&format!("log.{first_zxid:x}"), &bytes), offsets)
    }

    fn import(&self) -> Result<ImportedState, ImportError> {
        import(self.path(), None, TreeOptions::default())
    }
}

fn stat_of(state: &ImportedState, path: &str) -> Stat {
    state
        .tree
        .node(path)
        .unwrap_or_else(|| panic!("{path} is missing"))
        .stat()
}

fn persisted(state: &ImportedState, path: &str) -> PersistedStat {
    state.tree.node(path).unwrap().persisted_stat()
}

#[test]
fn snapshot_nodes_sessions_and_acls_come_back_exactly() {
    let dir = DataDir::new();
    let mut snap = SnapshotBuilder::new()
        .node(
            "/app",
            b"v",
            2,
            PersistedStat {
                version: 3,
                cversion: 2,
                aversion: 1,
                pzxid: 0x105,
                ..stat(0x101)
            },
        )
        .node(
            "/app/e",
            b"",
            -1,
            PersistedStat {
                ephemeral_owner: SESSION,
                ..stat(0x103)
            },
        )
        .node(
            "/c",
            b"",
            -1,
            PersistedStat {
                ephemeral_owner: CONTAINER_OWNER,
                ..stat(0x104)
            },
        );
    snap.acls.push((2, digest_acl()));
    snap.sessions.push((SESSION, 30_000));
    dir.snapshot(0x105, &snap);

    let state = dir.import().unwrap();
    assert_eq!(state.last_zxid, 0x105);
    assert_eq!(state.tree.last_zxid(), 0x105);
    assert_eq!(state.txns_replayed, 0);
    assert_eq!(state.sessions, 1);
    assert_eq!(state.tree.session_timeout(SESSION), Some(30_000));
    assert_eq!(state.tree.ephemerals(SESSION), vec!["/app/e".to_string()]);
    let app = state.tree.node("/app").unwrap();
    assert_eq!(app.data(), b"v");
    assert_eq!(app.acl()[..], digest_acl()[..]);
    assert_eq!(
        app.stat(),
        Stat {
            czxid: 0x101,
            mzxid: 0x101,
            ctime: TIME + 0x101,
            mtime: TIME + 0x101,
            version: 3,
            cversion: 3, // 2 creations, 1 child left
            aversion: 1,
            ephemeral_owner: 0,
            data_length: 1,
            num_children: 1,
            pzxid: 0x105,
        }
    );
    assert_eq!(stat_of(&state, "/app/e").ephemeral_owner, SESSION);
    assert_eq!(
        state.tree.node("/zookeeper/config").unwrap().acl()[..],
        Acl::read_unsafe()[..]
    );
}

#[test]
fn replay_applies_logged_results_with_apache_zxids_and_times() {
    let dir = DataDir::new();
    dir.snapshot(0, &SnapshotBuilder::new());
    let acl = digest_acl();
    let multi = entry(9, MULTI, |w| {
        w.write_i32(3);
        let mut sub = JuteWriter::new();
        sub.write_string("/m");
        sub.write_buffer(b"");
        write_acl_list(&mut sub, &Acl::open_unsafe());
        sub.write_bool(false);
        sub.write_i32(4);
        w.write_i32(CREATE);
        w.write_buffer(sub.as_slice());
        let mut sub = JuteWriter::new();
        sub.write_string("/a");
        sub.write_i32(1);
        w.write_i32(CHECK);
        w.write_buffer(sub.as_slice());
        let mut sub = JuteWriter::new();
        sub.write_string("/a");
        sub.write_buffer(b"from multi");
        sub.write_i32(2);
        w.write_i32(SET_DATA);
        w.write_buffer(sub.as_slice());
    });
    let failed_multi = entry(10, MULTI, |w| {
        w.write_i32(2);
        let mut sub = JuteWriter::new();
        sub.write_i32(0);
        w.write_i32(ERROR);
        w.write_buffer(sub.as_slice());
        let mut sub = JuteWriter::new();
        sub.write_i32(-101);
        w.write_i32(ERROR);
        w.write_buffer(sub.as_slice());
    });
    dir.log(
        1,
        &[
            create_session(1, 4000),
            create(2, "/a", b"1", false, 1),
            // A sequential child: the log carries the final name.
            create(3, "/a/s0000000000", b"", false, 1),
            create(4, "/a/e", b"", true, 2),
            set_data(5, "/a", b"22", 1),
            entry(6, SET_ACL, |w| {
                w.write_string("/a");
                write_acl_list(w, &acl);
                w.write_i32(1);
            }),
            delete(7, "/a/s0000000000"),
            entry(8, ERROR, |w| w.write_i32(-110)),
            multi,
            failed_multi,
            entry(11, CREATE_CONTAINER, |w| {
                w.write_string("/c");
                w.write_buffer(b"");
                write_acl_list(w, &Acl::open_unsafe());
                w.write_i32(6);
            }),
        ],
    );

    let state = dir.import().unwrap();
    assert_eq!(state.last_zxid, 11);
    assert_eq!(state.tree.last_zxid(), 11);
    assert_eq!(state.txns_replayed, 11);
    assert_eq!(state.tree.session_timeout(SESSION), Some(4000));
    let a = state.tree.node("/a").unwrap();
    assert_eq!(a.data(), b"from multi");
    assert_eq!(a.acl()[..], acl[..]);
    assert_eq!(
        a.stat(),
        Stat {
            czxid: 2,
            mzxid: 9,
            ctime: TIME + 2,
            mtime: TIME + 9,
            version: 2,
            cversion: 3,
            aversion: 1,
            ephemeral_owner: 0,
            data_length: 10,
            num_children: 1,
            pzxid: 7,
        }
    );
    assert_eq!(stat_of(&state, "/a/e").ephemeral_owner, SESSION);
    assert_eq!(stat_of(&state, "/m").czxid, 9);
    assert_eq!(persisted(&state, "/c").ephemeral_owner, CONTAINER_OWNER);
    let root = persisted(&state, "/");
    assert_eq!((root.cversion, root.pzxid), (6, 11));
}

#[test]
fn fuzzy_snapshot_replays_as_apache_does() {
    let dir = DataDir::new();
    // The snapshot is named 0x10 but already reflects transactions 0x11..0x14:
    // /p/x created at 0x11 (cversion 1), /p/y created at 0x12 and deleted at
    // 0x13 (cversion 2), /p/x's data set to version 1 at 0x14.
    let snap = SnapshotBuilder::new()
        .node(
            "/p",
            b"",
            -1,
            PersistedStat {
                cversion: 2,
                pzxid: 0x13,
                ..stat(0x5)
            },
        )
        .node(
            "/p/x",
            b"new",
            -1,
            PersistedStat {
                version: 1,
                mzxid: 0x14,
                ..stat(0x11)
            },
        )
        .node("/q", b"", -1, stat(0x6));
    dir.snapshot(0x10, &snap);
    dir.log(
        0x10,
        &[
            create(0x11, "/p/x", b"old", false, 1),
            create(0x12, "/p/y", b"", false, 2),
            delete(0x13, "/p/y"),
            set_data(0x14, "/p/x", b"new", 1),
            // After the fuzzy range: a plain create of an existing node (the
            // case Apache repairs) and a delete of a missing one.
            entry(0x15, CREATE, |w| {
                w.write_string("/p/x");
                w.write_buffer(b"");
                write_acl_list(w, &digest_acl());
                w.write_bool(false);
                w.write_i32(3);
            }),
            delete(0x16, "/q/gone"),
        ],
    );

    let state = dir.import().unwrap();
    let p = persisted(&state, "/p");
    assert_eq!(p.cversion, 3, "raised by the create that found its node");
    assert_eq!(p.pzxid, 0x15);
    assert!(state.tree.node("/p/y").is_none());
    let x = state.tree.node("/p/x").unwrap();
    assert_eq!(x.data(), b"new");
    assert_eq!(
        x.acl()[..],
        digest_acl()[..],
        "the failed create set the ACL"
    );
    assert_eq!(
        x.persisted_stat(),
        PersistedStat {
            version: 1,
            mzxid: 0x14,
            mtime: TIME + 0x14,
            ..stat(0x11)
        }
    );
    assert_eq!(persisted(&state, "/q").pzxid, 0x16);
    assert_eq!(state.txns_replayed, 6);
}

#[test]
fn orphaned_ephemerals_are_deleted_and_live_sessions_kept() {
    let dir = DataDir::new();
    let mut snap = SnapshotBuilder::new().node("/e", b"", -1, stat(0x2));
    snap.sessions.push((SESSION, 10_000));
    dir.snapshot(0x2, &snap);
    let other = SESSION + 1;
    let mut orphan = create(0x3, "/e/orphan", b"", true, 1);
    orphan.client = other;
    let mut closing = create_session(0x4, 5000);
    closing.client = other + 1;
    let mut closing_eph = create(0x5, "/e/closing", b"", true, 2);
    closing_eph.client = other + 1;
    let mut close = entry(0x6, CLOSE_SESSION, |w| {
        w.write_i32(1);
        w.write_string("/e/closing");
    });
    close.client = other + 1;
    dir.log(
        0x1,
        &[
            orphan,
            closing,
            closing_eph,
            close,
            create(0x7, "/e/live", b"", true, 3),
        ],
    );

    let state = dir.import().unwrap();
    assert!(state.tree.node("/e/orphan").is_none());
    assert!(state.tree.node("/e/closing").is_none());
    assert_eq!(state.tree.ephemerals(SESSION), vec!["/e/live".to_string()]);
    assert_eq!(
        state.tree.sessions().collect::<Vec<_>>(),
        [(SESSION, 10_000)]
    );
    let e = persisted(&state, "/e");
    assert_eq!((e.cversion, e.pzxid), (3, 0x7));
    assert_eq!(state.last_zxid, 0x7);
}

#[test]
fn padding_ends_every_log_and_later_files_continue() {
    let dir = DataDir::new();
    dir.snapshot(0, &SnapshotBuilder::new());
    dir.log(
        1,
        &[create(1, "/a", b"", false, 1), set_data(2, "/a", b"x", 1)],
    );
    dir.log(3, &[set_data(3, "/a", b"y", 2)]);
    let state = dir.import().unwrap();
    assert_eq!(state.last_zxid, 3);
    assert_eq!(state.log_files.len(), 2);
    assert!(state.torn_tails.is_empty());
    assert_eq!(state.tree.node("/a").unwrap().data(), b"y");

    // Only a window after the records is read, not all of a preallocated file: Apache pads
    // by writing one byte at the new end.
    let (mut bytes, _) = log_bytes(&[set_data(3, "/a", b"y", 2)], 6 << 20);
    if let Some(last) = bytes.last_mut() {
        *last = 0xff;
    }
    dir.write("log.3", &bytes);
    assert_eq!(dir.import().unwrap().last_zxid, 3);
}

#[test]
fn only_logs_from_the_snapshot_on_are_read() {
    let dir = DataDir::new();
    dir.snapshot(0, &SnapshotBuilder::new());
    dir.log(1, &[create(1, "/a", b"", false, 1)]);
    let snap = SnapshotBuilder::new().node("/a", b"", -1, stat(1));
    dir.snapshot(2, &snap.node("/b", b"", -1, stat(2)));
    dir.log(
        2,
        &[
            create(2, "/b", b"", false, 2),
            create(3, "/c", b"", false, 3),
        ],
    );
    let state = dir.import().unwrap();
    assert_eq!(state.snapshot, dir.file("snapshot.2"));
    assert_eq!(state.log_files, vec![dir.file("log.2")]);
    assert_eq!(state.txns_replayed, 1);
    assert!(state.tree.node("/c").is_some());
}

#[test]
fn torn_tail_ends_the_log_at_the_last_whole_record() {
    let dir = DataDir::new();
    dir.snapshot(0, &SnapshotBuilder::new());
    let entries = [
        create(1, "/a", b"", false, 1),
        set_data(2, "/a", b"kept", 1),
        set_data(3, "/a", b"torn", 2),
    ];
    let (mut bytes, offsets) = log_bytes(&entries, 0);
    bytes.truncate(offsets[2] + 20);
    dir.write("log.1", &bytes);
    let state = dir.import().unwrap();
    assert_eq!(state.last_zxid, 2);
    assert_eq!(state.tree.node("/a").unwrap().data(), b"kept");
    assert_eq!(state.torn_tails.len(), 1);
    assert_eq!(state.torn_tails[0].offset, offsets[2] as u64);

    // A checksum failure with only zeros after it is a torn write too.
    let (mut bytes, offsets) = log_bytes(&entries, 100);
    let end_marker = bytes.len() - 101;
    bytes[offsets[2] + 30..end_marker].fill(0);
    dir.write("log.1", &bytes);
    let state = dir.import().unwrap();
    assert_eq!(state.last_zxid, 2);
    assert_eq!(state.torn_tails.len(), 1);
}

#[test]
fn damage_followed_by_valid_records_is_refused_with_file_and_offset() {
    let dir = DataDir::new();
    dir.snapshot(0, &SnapshotBuilder::new());
    let entries = [
        create(1, "/a", b"", false, 1),
        set_data(2, "/a", b"damaged", 1),
        set_data(3, "/a", b"after", 2),
    ];
    let (mut bytes, offsets) = log_bytes(&entries, 64);
    bytes[offsets[1] + 40] ^= 0x01;
    let path = dir.write("log.1", &bytes);
    let err = dir.import().err().expect("damage must be refused");
    let message = err.to_string();
    assert!(
        matches!(&err, ImportError::DamagedLog { offset, last_good_zxid: 1, .. } if *offset == offsets[1] as u64),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("at byte {}: checksum mismatch", offsets[1])),
        "{message}"
    );
    assert!(message.contains("zxid 0x1"), "{message}");

    // A zero length in the middle, with records after it, is damage as well.
    let (mut bytes, offsets) = log_bytes(&entries, 64);
    bytes[offsets[1]..offsets[1] + 12].fill(0);
    dir.write("log.1", &bytes);
    let err = dir.import().err().expect("a hole must be refused");
    assert!(
        matches!(err, ImportError::DamagedLog { offset, .. } if offset == offsets[1] as u64),
        "{err}"
    );
}

#[test]
fn missing_transactions_are_refused() {
    let dir = DataDir::new();
    dir.snapshot(0, &SnapshotBuilder::new());
    dir.log(1, &[create(1, "/a", b"", false, 1)]);
    let (path, offsets) = dir.log(3, &[create(3, "/b", b"", false, 2)]);
    let err = dir.import().err().expect("a gap must be refused");
    assert!(
        matches!(&err, ImportError::Gap { previous: 1, found: 3, offset, .. } if *offset == offsets[0] as u64),
        "{err}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));

    // A new epoch may start anywhere.
    fs::remove_file(path).unwrap();
    let next_epoch = 2i64 << 32 | 1;
    dir.log(next_epoch, &[create(next_epoch, "/b", b"", false, 2)]);
    assert_eq!(dir.import().unwrap().last_zxid, next_epoch);
}

#[test]
fn damaged_newest_snapshot_falls_back_only_when_the_logs_cover_it() {
    let dir = DataDir::new();
    dir.snapshot(0, &SnapshotBuilder::new());
    dir.log(
        1,
        &[
            create(1, "/a", b"", false, 1),
            create(2, "/b", b"", false, 2),
        ],
    );
    let newest = SnapshotBuilder::new()
        .node("/a", b"", -1, stat(1))
        .node("/b", b"", -1, stat(2));
    let mut bytes = newest.bytes();
    let flip = bytes.len() / 2;
    bytes[flip] ^= 0x20;
    let newest_path = dir.write("snapshot.2", &bytes);

    let state = dir.import().unwrap();
    assert_eq!(state.snapshot, dir.file("snapshot.0"));
    assert_eq!(state.rejected_snapshots.len(), 1);
    assert_eq!(state.rejected_snapshots[0].path, newest_path);
    assert!(state.tree.node("/b").is_some());

    // Without the transactions up to the damaged snapshot's zxid, refuse.
    dir.log(1, &[create(1, "/a", b"", false, 1)]);
    let err = dir
        .import()
        .err()
        .expect("an uncovered fallback must be refused");
    let message = err.to_string();
    assert!(
        matches!(err, ImportError::NotCovered { logs_end: 1, .. }),
        "{message}"
    );
    assert!(
        message.contains(&newest_path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("at byte"), "{message}");
}

#[test]
fn snapshots_cut_short_or_unreadable_are_reported() {
    let dir = DataDir::new();
    let bytes = SnapshotBuilder::new().bytes();
    dir.write("snapshot.0", &bytes[..bytes.len() - 3]);
    let err = dir.import().err().unwrap();
    assert!(
        matches!(&err, ImportError::NoUsableSnapshot { rejected, .. } if rejected.len() == 1),
        "{err}"
    );

    let mut snap = SnapshotBuilder::new().node("/a", b"", 7, stat(1));
    snap.digest = false;
    dir.write("snapshot.0", &snap.bytes());
    let err = dir.import().err().unwrap();
    assert!(err.to_string().contains("ACL 7"), "{err}");

    dir.write("snapshot.5.gz", b"\x1f\x8b");
    let err = dir.import().err().unwrap();
    assert!(
        matches!(err, ImportError::CompressedSnapshot { format: "gzip", .. }),
        "{err}"
    );
}

#[test]
fn directories_are_checked_like_apache_does() {
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        import(empty.path(), None, TreeOptions::default()),
        Err(ImportError::NoVersionDir { .. })
    ));

    let data = DataDir::new();
    data.snapshot(0, &SnapshotBuilder::new());
    let logs = DataDir::new();
    logs.log(1, &[create(1, "/a", b"", false, 1)]);
    let state = import(data.path(), Some(logs.path()), TreeOptions::default()).unwrap();
    assert_eq!(state.last_zxid, 1);

    data.log(1, &[create(1, "/a", b"", false, 1)]);
    assert!(matches!(
        import(data.path(), Some(logs.path()), TreeOptions::default()),
        Err(ImportError::MisplacedFiles { .. })
    ));
}

#[test]
fn imported_tree_serves_with_the_given_options() {
    let dir = DataDir::new();
    dir.snapshot(0, &SnapshotBuilder::new());
    let options = TreeOptions {
        skip_acl: false,
        enforce_quota: true,
    };
    let state = import(dir.path(), None, options).unwrap();
    assert_eq!(state.tree.options(), options);
}
