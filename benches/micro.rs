//! Micro-benchmarks of the hot paths, so that a regression shows before an
//! end-to-end run: `cargo bench --bench micro` (add a name to filter, e.g.
//! `cargo bench --bench micro -- tree`).
//!
//! - codec: decode a create request frame, encode a getData reply frame;
//! - tree: create, setData and getData on a tree of 100,000 nodes;
//! - watch fan-out: one change reaching 1,000 watchers;
//! - log: append a batch of 64 transactions, with and without its fsync.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use zookeeper_rs::proto::{
    decode_request, encode_reply, Acl, CreateMode, CreateRequest, ReplyHeader, Request, Response,
    Stat,
};
use zookeeper_rs::server::journal::encode_txn;
use zookeeper_rs::storage::{Entry, Log, LogOptions};
use zookeeper_rs::tree::{DataTree, TreeOptions};
use zookeeper_rs::txn::{Change, ChangeKind, CreateOp, Txn, TxnOp};
use zookeeper_rs::watch::{WatchKind, WatchManager};

const VALUE: [u8; 100] = [b'v'; 100];
const TREE_NODES: u64 = 100_000;
const WATCHERS: u64 = 1_000;
const LOG_BATCH: u64 = 64;

fn txn(op: TxnOp) -> Txn {
    Txn {
        session_id: 0x1234,
        cxid: 1,
        time_ms: 1_700_000_000_000,
        auth: Vec::new(),
        op,
    }
}

fn create_txn(path: String) -> Txn {
    txn(TxnOp::Create(CreateOp {
        path,
        data: VALUE.to_vec(),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    }))
}

/// Keys under 1,000 directories of 100, as zkBench lays them out.
fn key(i: u64) -> String {
    format!("/bench/d{}/k{i}", i / 100)
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let create = Request::Create(CreateRequest {
        path: "/zkbench/d12/k1234".into(),
        data: VALUE.to_vec(),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent.flag(),
        ttl: None,
    })
    .encode(7);
    // The server decodes the frame after its 4-byte length prefix.
    let frame = create.get(4..).unwrap_or_default().to_vec();
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode create request", |b| {
        b.iter(|| decode_request(black_box(&frame)))
    });
    let header = ReplyHeader {
        xid: 7,
        zxid: 0x1_0000_0042,
        err: 0,
    };
    let reply = Response::GetData {
        data: VALUE.to_vec(),
        stat: Stat {
            czxid: 5,
            mzxid: 9,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_001,
            version: 3,
            data_length: VALUE.len() as i32,
            pzxid: 5,
            ..Stat::default()
        },
    };
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode getData reply", |b| {
        b.iter(|| encode_reply(black_box(&header), black_box(&reply)))
    });
    group.finish();
}

fn loaded_tree() -> DataTree {
    let mut tree = DataTree::new(TreeOptions::default());
    tree.apply(&create_txn("/bench".into()));
    for dir in 0..TREE_NODES / 100 {
        tree.apply(&create_txn(format!("/bench/d{dir}")));
    }
    for i in 0..TREE_NODES {
        tree.apply(&create_txn(key(i)));
    }
    tree
}

fn tree(c: &mut Criterion) {
    let mut group = c.benchmark_group("tree 100k");
    group.throughput(Throughput::Elements(1));
    let mut tree = loaded_tree();
    // Creates grow the tree: each sample creates its nodes, then deletes
    // them outside the timed part, so the tree stays at 100k.
    let mut round = 0u64;
    group.bench_function("create", |b| {
        b.iter_custom(|iters| {
            round += 1;
            let paths: Vec<String> = (0..iters)
                .map(|i| format!("/bench/d{}/new{round}-{i}", i % (TREE_NODES / 100)))
                .collect();
            let txns: Vec<Txn> = paths.iter().cloned().map(create_txn).collect();
            let start = Instant::now();
            for txn in &txns {
                black_box(tree.apply(txn));
            }
            let took = start.elapsed();
            for path in paths {
                tree.apply(&txn(TxnOp::Delete { path, version: -1 }));
            }
            took
        })
    });
    let mut next = 0u64;
    group.bench_function("setData", |b| {
        b.iter_batched(
            || {
                next = (next + 7919) % TREE_NODES;
                txn(TxnOp::SetData {
                    path: key(next),
                    data: VALUE.to_vec(),
                    version: -1,
                })
            },
            |txn| black_box(tree.apply(&txn)),
            BatchSize::SmallInput,
        )
    });
    let paths: Vec<String> = (0..1024).map(|i| key((i * 7919) % TREE_NODES)).collect();
    let mut at = 0usize;
    group.bench_function("getData", |b| {
        b.iter(|| {
            at = (at + 1) % paths.len();
            let node = paths.get(at).and_then(|path| tree.node(path));
            black_box(node.map(|n| (n.data().len(), n.stat())))
        })
    });
    group.finish();
}

fn watch_fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch fan-out 1k");
    group.throughput(Throughput::Elements(WATCHERS));
    let change = Change {
        path: "/bench/d1/k100".into(),
        kind: ChangeKind::DataChanged,
        acl: Arc::from(Acl::open_unsafe()),
    };
    let mut persistent = WatchManager::new();
    for watcher in 0..WATCHERS {
        persistent.add(&change.path, WatchKind::Persistent, watcher);
    }
    group.bench_function("persistent", |b| {
        b.iter(|| black_box(persistent.trigger(&change, |_, _| true)))
    });
    // One-shot watches are consumed by the trigger: set them again
    // outside the timed part.
    let mut one_shot = WatchManager::new();
    group.bench_function("one-shot", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                for watcher in 0..WATCHERS {
                    one_shot.add(&change.path, WatchKind::Data, watcher);
                }
                let start = Instant::now();
                black_box(one_shot.trigger(&change, |_, _| true));
                took += start.elapsed();
            }
            took
        })
    });
    group.finish();
}

fn log_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("log batch of 64");
    group.throughput(Throughput::Elements(LOG_BATCH));
    let payloads: Vec<Vec<u8>> = (0..LOG_BATCH)
        .map(|i| {
            encode_txn(&txn(TxnOp::SetData {
                path: key(i * 31),
                data: VALUE.to_vec(),
                version: -1,
            }))
        })
        .collect();
    for (name, sync) in [("append + fsync", true), ("append only", false)] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (mut log, _) = Log::open(dir.path(), LogOptions::default()).expect("opening the log");
        let mut index = log.next_index().unwrap_or(1);
        // Each sample times its batches, then purges them untimed, so the
        // benchmark's disk use stays at a few segments.
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let batches: Vec<Vec<Entry>> = (0..iters)
                    .map(|n| {
                        let first = index + n * LOG_BATCH;
                        payloads
                            .iter()
                            .enumerate()
                            .map(|(i, payload)| Entry {
                                index: first + i as u64,
                                term: 0,
                                payload: payload.clone(),
                            })
                            .collect()
                    })
                    .collect();
                index += iters * LOG_BATCH;
                let start = Instant::now();
                for batch in &batches {
                    log.append(batch).expect("append");
                    if sync {
                        log.sync().expect("sync");
                    }
                }
                let took = start.elapsed();
                log.sync().expect("sync");
                log.purge_before(index).expect("purge");
                took
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = codec, tree, watch_fan_out, log_append
}
criterion_main!(micro);
