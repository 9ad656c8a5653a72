use super::*;
use crate::proto::CreateMode;

const SESSION: i64 = 0x0100_0000_0000_0001;
const OTHER: i64 = 0x0100_0000_0000_0002;

fn tree() -> DataTree {
    DataTree::new(TreeOptions::default())
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

fn acl_entry(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id::new(scheme, id),
    }
}

fn create_op(path: &str, data: &[u8], mode: CreateMode) -> TxnOp {
    TxnOp::Create(CreateOp {
        path: path.to_owned(),
        data: data.to_vec(),
        acl: open(),
        mode,
        ttl_ms: 0,
    })
}

fn create_with_acl(path: &str, acl: Vec<Acl>) -> TxnOp {
    TxnOp::Create(CreateOp {
        path: path.to_owned(),
        data: Vec::new(),
        acl,
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    })
}

fn ttl_op(path: &str, ttl_ms: i64) -> TxnOp {
    TxnOp::Create(CreateOp {
        path: path.to_owned(),
        data: Vec::new(),
        acl: open(),
        mode: CreateMode::PersistentWithTtl,
        ttl_ms,
    })
}

fn delete_op(path: &str, version: i32) -> TxnOp {
    TxnOp::Delete {
        path: path.to_owned(),
        version,
    }
}

fn set_data_op(path: &str, data: &[u8], version: i32) -> TxnOp {
    TxnOp::SetData {
        path: path.to_owned(),
        data: data.to_vec(),
        version,
    }
}

fn check_op(path: &str, version: i32) -> TxnOp {
    TxnOp::Check {
        path: path.to_owned(),
        version,
    }
}

fn txn_as(session_id: i64, time_ms: i64, auth: Vec<Id>, op: TxnOp) -> Txn {
    Txn {
        session_id,
        cxid: 1,
        time_ms,
        auth,
        op,
    }
}

fn run_as(tree: &mut DataTree, session_id: i64, auth: Vec<Id>, op: TxnOp) -> Applied {
    let time_ms = 1_000 + tree.last_zxid();
    tree.apply(&txn_as(session_id, time_ms, auth, op))
}

fn run(tree: &mut DataTree, op: TxnOp) -> Applied {
    run_as(tree, SESSION, vec![Id::new("ip", "127.0.0.1")], op)
}

fn ok(tree: &mut DataTree, op: TxnOp) -> Applied {
    let applied = run(tree, op.clone());
    assert_eq!(applied.result.error_code(), ErrorCode::Ok, "{op:?}");
    if let TxnResult::Multi(results) = &applied.result {
        assert!(
            results.iter().all(|r| r.error_code() == ErrorCode::Ok),
            "{op:?}"
        );
    }
    applied
}

fn err(tree: &mut DataTree, op: TxnOp) -> ErrorCode {
    run(tree, op).result.error_code()
}

fn stat(tree: &DataTree, path: &str) -> Stat {
    tree.node(path)
        .unwrap_or_else(|| panic!("no node {path}"))
        .stat()
}

fn data(tree: &DataTree, path: &str) -> Vec<u8> {
    tree.node(path).unwrap().data().to_vec()
}

fn children(tree: &DataTree, path: &str) -> Vec<String> {
    let mut names: Vec<String> = tree
        .node(path)
        .unwrap()
        .children()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

fn open_session(tree: &mut DataTree, session: i64) {
    let applied = run_as(
        tree,
        session,
        vec![],
        TxnOp::CreateSession { timeout_ms: 30_000 },
    );
    assert_eq!(applied.result, TxnResult::SessionCreated);
}

type Dump = Vec<(String, Vec<u8>, Stat, PersistedStat, Vec<Acl>, Vec<String>)>;

/// Everything observable about the nodes, in visiting order.
fn dump(tree: &DataTree) -> Dump {
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

/// Everything observable about the tree besides the nodes.
fn summary(tree: &DataTree) -> String {
    format!(
        "size={} {}",
        tree.approximate_data_size(),
        summary_without_size(tree)
    )
}

fn summary_without_size(tree: &DataTree) -> String {
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

/// Cross-checks the derived state against the nodes.
fn assert_invariants(tree: &DataTree) {
    let mut nodes = 0usize;
    let mut ephemerals = 0usize;
    let mut size = 0u64;
    tree.for_each_node(|path, node| {
        nodes += 1;
        size += path.len() as u64 + node.data().len() as u64;
        if path == "/" {
            // Apache's map also holds the root under "".
            size += node.data().len() as u64;
        }
        assert_eq!(node.num_children(), node.children().count(), "{path}");
        let stat = node.stat();
        assert_eq!(stat.num_children as usize, node.num_children());
        assert_eq!(stat.data_length as usize, node.data().len());
        assert!(stat.pzxid >= stat.czxid, "{path}");
        if let NodeKind::Ephemeral(session) = node.kind() {
            ephemerals += 1;
            assert_eq!(node.num_children(), 0);
            assert!(tree.ephemerals(session).contains(&path.to_owned()));
        }
        for child in node.children() {
            let child_path = if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            };
            assert!(tree.node(&child_path).is_some(), "{child_path}");
        }
    });
    assert_eq!(tree.node_count(), nodes + 1);
    assert_eq!(tree.ephemeral_count(), ephemerals);
    // Quota usage nodes are rewritten without counting; only compare when
    // no quota exists.
    if tree.node("/zookeeper/quota").unwrap().num_children() == 0
        && tree.node("/zookeeper/config").unwrap().data().is_empty()
    {
        assert_eq!(tree.approximate_data_size(), size, "approximate size");
    }
}

#[test]
fn fresh_tree_matches_apache() {
    let tree = tree();
    assert_eq!(tree.last_zxid(), 0);
    let root = stat(&tree, "/");
    assert_eq!(
        root,
        Stat {
            cversion: -1,
            num_children: 1,
            ..Stat::default()
        }
    );
    assert_eq!(
        stat(&tree, "/zookeeper"),
        Stat {
            cversion: -2,
            num_children: 2,
            ..Stat::default()
        }
    );
    assert_eq!(stat(&tree, "/zookeeper/quota"), Stat::default());
    assert_eq!(
        stat(&tree, "/zookeeper/config"),
        Stat {
            aversion: -1,
            ..Stat::default()
        }
    );
    assert_eq!(
        tree.node("/zookeeper/config").unwrap().acl().as_ref(),
        Acl::read_unsafe().as_slice()
    );
    assert_eq!(tree.node("/").unwrap().acl().as_ref(), open().as_slice());
    assert_eq!(
        tree.node("/zookeeper/quota").unwrap().acl().as_ref(),
        open().as_slice()
    );
    assert_eq!(children(&tree, "/zookeeper"), ["config", "quota"]);
    assert_eq!(tree.node_count(), 5);
    assert_eq!(tree.approximate_data_size(), 44);
    assert_eq!(tree.count_descendants("/"), Some(3));
    assert_eq!(tree.count_descendants("/zookeeper"), Some(2));
    assert_eq!(tree.count_descendants("/missing"), None);
    assert_eq!(tree.acl_cache_size(), 2);
    assert!(tree.node("").is_some(), "the root's alias");
    assert!(tree.node("/zookeeper/").is_none());
    assert_invariants(&tree);
}

#[test]
fn create_sets_stat_and_updates_parent() {
    let mut tree = tree();
    let applied = ok(&mut tree, create_op("/a", b"hello", CreateMode::Persistent));
    assert_eq!(applied.zxid, 1);
    let expected = Stat {
        czxid: 1,
        mzxid: 1,
        ctime: 1_000,
        mtime: 1_000,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 5,
        num_children: 0,
        pzxid: 1,
    };
    assert_eq!(
        applied.result,
        TxnResult::Created {
            path: "/a".into(),
            stat: expected
        }
    );
    assert_eq!(stat(&tree, "/a"), expected);
    assert_eq!(data(&tree, "/a"), b"hello");
    let root = stat(&tree, "/");
    assert_eq!(
        (root.cversion, root.num_children, root.pzxid, root.mzxid),
        (0, 2, 1, 0)
    );
    let open_acl: Arc<[Acl]> = open().into();
    assert_eq!(
        applied.changes,
        vec![
            Change {
                path: "/a".into(),
                kind: ChangeKind::Created,
                acl: open_acl.clone()
            },
            Change {
                path: "/".into(),
                kind: ChangeKind::ChildrenChanged,
                acl: open_acl.clone()
            },
        ]
    );

    let applied = ok(&mut tree, create_op("/a/b", b"", CreateMode::Persistent));
    assert_eq!(applied.zxid, 2);
    let a = stat(&tree, "/a");
    assert_eq!(
        (a.cversion, a.num_children, a.pzxid, a.mzxid, a.version),
        (1, 1, 2, 1, 0)
    );
    assert_eq!(applied.changes[1].path, "/a");
    assert_eq!(tree.approximate_data_size(), 44 + 2 + 5 + 4);
    assert_eq!(tree.node_count(), 7);
    assert_invariants(&tree);
}

#[test]
fn delete_updates_parent_pzxid_and_cversion() {
    let mut tree = tree();
    ok(&mut tree, create_op("/a", b"", CreateMode::Persistent));
    ok(&mut tree, create_op("/a/b", b"xy", CreateMode::Persistent));
    let applied = ok(&mut tree, delete_op("/a/b", 0));
    assert_eq!(applied.result, TxnResult::Deleted);
    assert!(tree.node("/a/b").is_none());
    let a = stat(&tree, "/a");
    // One create and one delete: cversion 2, pzxid of the delete.
    assert_eq!((a.cversion, a.num_children, a.pzxid), (2, 0, 3));
    assert_eq!(
        applied
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.kind))
            .collect::<Vec<_>>(),
        [
            ("/a/b", ChangeKind::Deleted),
            ("/a", ChangeKind::ChildrenChanged)
        ]
    );
    assert_eq!(tree.approximate_data_size(), 44 + 2);
    assert_invariants(&tree);
}

#[test]
fn sequential_suffix_counts_creations_only() {
    let mut tree = tree();
    ok(&mut tree, create_op("/q", b"", CreateMode::Persistent));
    let first = ok(
        &mut tree,
        create_op("/q/n-", b"", CreateMode::PersistentSequential),
    );
    assert!(matches!(&first.result, TxnResult::Created { path, .. } if path == "/q/n-0000000000"));
    ok(&mut tree, delete_op("/q/n-0000000000", -1));
    let second = ok(
        &mut tree,
        create_op("/q/n-", b"", CreateMode::PersistentSequential),
    );
    assert!(matches!(&second.result, TxnResult::Created { path, .. } if path == "/q/n-0000000001"));
    assert_eq!(second.changes[0].path, "/q/n-0000000001");
    ok(
        &mut tree,
        create_op("/q/plain", b"", CreateMode::Persistent),
    );
    let third = ok(
        &mut tree,
        create_op("/q/", b"", CreateMode::PersistentSequential),
    );
    assert!(matches!(&third.result, TxnResult::Created { path, .. } if path == "/q/0000000003"));
    assert_eq!(stat(&tree, "/q").cversion, 2 * 4 - 3);
    // Sequential directly under the root, and a bare "/" create.
    let root_seq = ok(
        &mut tree,
        create_op("/", b"", CreateMode::PersistentSequential),
    );
    assert!(matches!(&root_seq.result, TxnResult::Created { path, .. } if path == "/0000000001"));
    assert_eq!(
        err(&mut tree, create_op("/", b"", CreateMode::Persistent)),
        ErrorCode::NodeExists
    );
    assert_invariants(&tree);
}

#[test]
fn sequential_suffix_is_signed_and_zero_padded() {
    let mut tree = tree();
    ok(&mut tree, create_op("/q", b"", CreateMode::Persistent));
    let mut stat = tree.node("/q").unwrap().persisted_stat();
    stat.cversion = -5;
    tree.restore_node("/q", b"", &open(), stat).unwrap();
    let applied = ok(
        &mut tree,
        create_op("/q/s", b"", CreateMode::PersistentSequential),
    );
    assert!(matches!(&applied.result, TxnResult::Created { path, .. } if path == "/q/s-000000005"));
}

#[test]
fn error_codes_table() {
    let mut tree = tree();
    open_session(&mut tree, SESSION);
    ok(&mut tree, create_op("/a", b"", CreateMode::Persistent));
    ok(
        &mut tree,
        create_op("/a/child", b"", CreateMode::Persistent),
    );
    ok(&mut tree, create_op("/e", b"", CreateMode::Ephemeral));
    ok(&mut tree, create_op("/c", b"", CreateMode::Container));
    let cases: Vec<(TxnOp, ErrorCode)> = vec![
        (
            create_op("/missing/x", b"", CreateMode::Persistent),
            ErrorCode::NoNode,
        ),
        (
            create_op("/a", b"", CreateMode::Persistent),
            ErrorCode::NodeExists,
        ),
        (
            create_op("/e/x", b"", CreateMode::Persistent),
            ErrorCode::NoChildrenForEphemerals,
        ),
        (
            create_op("/e/x", b"", CreateMode::PersistentSequential),
            ErrorCode::NoChildrenForEphemerals,
        ),
        (
            create_op("noslash", b"", CreateMode::Persistent),
            ErrorCode::BadArguments,
        ),
        (
            create_op("/a/\u{0}x", b"", CreateMode::Persistent),
            ErrorCode::BadArguments,
        ),
        (
            create_op("/a/", b"", CreateMode::Persistent),
            ErrorCode::BadArguments,
        ),
        (
            create_op("/a/.", b"", CreateMode::Persistent),
            ErrorCode::BadArguments,
        ),
        (
            create_op("/a/x\u{1}", b"", CreateMode::Persistent),
            ErrorCode::BadArguments,
        ),
        // The parent is looked up before the path is validated, as in Apache.
        (
            create_op("/a//x", b"", CreateMode::Persistent),
            ErrorCode::NoNode,
        ),
        (create_with_acl("/a/x", vec![]), ErrorCode::InvalidAcl),
        (
            create_with_acl("/a/x", vec![acl_entry(31, "auth", "")]),
            ErrorCode::InvalidAcl,
        ),
        (
            create_with_acl("/a/x", vec![acl_entry(31, "digest", "bad")]),
            ErrorCode::InvalidAcl,
        ),
        (ttl_op("/a/t", 0), ErrorCode::BadArguments),
        (ttl_op("/a/t", MAX_TTL_MS + 1), ErrorCode::BadArguments),
        (delete_op("/a", -1), ErrorCode::NotEmpty),
        (delete_op("/a", 5), ErrorCode::BadVersion),
        (delete_op("/nothing", -1), ErrorCode::NoNode),
        (delete_op("/nothing/deeper", -1), ErrorCode::NoNode),
        (delete_op("/a/", -1), ErrorCode::NoNode),
        (delete_op("/", -1), ErrorCode::BadArguments),
        (delete_op("/zookeeper", -1), ErrorCode::BadArguments),
        (delete_op("/zookeeper/quota", -1), ErrorCode::BadArguments),
        (delete_op("/zookeeper/config", -1), ErrorCode::BadArguments),
        (delete_op("relative", -1), ErrorCode::BadArguments),
        (set_data_op("/nothing", b"", -1), ErrorCode::NoNode),
        (set_data_op("/a", b"", 3), ErrorCode::BadVersion),
        (set_data_op("/a/", b"", -1), ErrorCode::BadArguments),
        (set_data_op("", b"", -1), ErrorCode::BadArguments),
        (
            TxnOp::SetAcl {
                path: "/a".into(),
                acl: open(),
                version: 2,
            },
            ErrorCode::BadVersion,
        ),
        (
            TxnOp::SetAcl {
                path: "/nothing".into(),
                acl: open(),
                version: -1,
            },
            ErrorCode::NoNode,
        ),
        (
            TxnOp::SetAcl {
                path: "/a".into(),
                acl: vec![],
                version: -1,
            },
            ErrorCode::InvalidAcl,
        ),
        (
            TxnOp::SetAcl {
                path: "/a//".into(),
                acl: open(),
                version: -1,
            },
            ErrorCode::BadArguments,
        ),
        (check_op("/a", 7), ErrorCode::BadVersion),
        (check_op("/nothing", -1), ErrorCode::NoNode),
        (check_op("bad", -1), ErrorCode::BadArguments),
        (TxnOp::Multi(vec![TxnOp::CloseSession]), ErrorCode::Ok),
    ];
    for (op, expected) in cases {
        let before = dump(&tree);
        let zxid = tree.last_zxid();
        let applied = run(&mut tree, op.clone());
        assert_eq!(applied.zxid, zxid + 1);
        if let TxnOp::Multi(_) = op {
            // A nested op Apache cannot decode fails the multi.
            assert_eq!(
                applied.result,
                TxnResult::Multi(vec![TxnResult::Error(ErrorCode::MarshallingError)])
            );
        } else {
            assert_eq!(applied.result, TxnResult::Error(expected), "{op:?}");
        }
        assert!(applied.changes.is_empty());
        assert_eq!(dump(&tree), before, "{op:?} changed the tree");
    }
    // Version -1 matches anything; a matching version passes and increments.
    ok(&mut tree, set_data_op("/a", b"1", -1));
    let applied = ok(&mut tree, set_data_op("/a", b"2", 1));
    assert!(matches!(applied.result, TxnResult::DataSet { stat } if stat.version == 2));
    ok(&mut tree, check_op("/a", 2));
    ok(&mut tree, check_op("/a", -1));
    // Containers and TTL nodes may have children.
    ok(&mut tree, create_op("/c/x", b"", CreateMode::Persistent));
    assert_invariants(&tree);
}

#[test]
fn ephemeral_requires_a_live_session_and_records_owner() {
    let mut tree = tree();
    assert_eq!(
        err(&mut tree, create_op("/e", b"", CreateMode::Ephemeral)),
        ErrorCode::SessionExpired
    );
    open_session(&mut tree, SESSION);
    let applied = ok(
        &mut tree,
        create_op("/e", b"", CreateMode::EphemeralSequential),
    );
    let TxnResult::Created { path, stat } = applied.result else {
        panic!()
    };
    assert_eq!(path, "/e0000000000");
    assert_eq!(stat.ephemeral_owner, SESSION);
    assert_eq!(tree.ephemerals(SESSION), vec!["/e0000000000".to_owned()]);
    assert_eq!(tree.ephemeral_count(), 1);
    assert_eq!(
        tree.node(&path).unwrap().kind(),
        NodeKind::Ephemeral(SESSION)
    );
}

#[test]
fn acl_checks_at_apply() {
    let mut tree = tree();
    let alice = Id::new("digest", acl::digest("alice:secret"));
    let alice_auth = vec![Id::new("ip", "10.1.2.3"), alice.clone()];
    let anon = vec![Id::new("ip", "10.9.9.9")];
    let superuser = vec![Id::new("super", "")];
    // Only alice may do anything with /locked; everyone may read /readonly.
    let locked = vec![Acl {
        perms: perms::ALL,
        id: alice.clone(),
    }];
    let lock = TxnOp::SetAcl {
        path: "/locked".into(),
        acl: locked.clone(),
        version: -1,
    };
    ok(&mut tree, create_with_acl("/locked", open()));
    ok(&mut tree, create_with_acl("/readonly", Acl::read_unsafe()));
    ok(&mut tree, create_with_acl("/locked/x", open()));
    ok(&mut tree, lock.clone());

    let denied: Vec<TxnOp> = vec![
        create_op("/locked/y", b"", CreateMode::Persistent),
        delete_op("/locked/x", -1),
        // DELETE on the parent is checked before the node is looked up.
        delete_op("/locked/nothing", -1),
        set_data_op("/locked", b"x", -1),
        TxnOp::SetAcl {
            path: "/locked".into(),
            acl: open(),
            version: -1,
        },
        check_op("/locked", -1),
        create_op("/readonly/y", b"", CreateMode::Persistent),
        set_data_op("/readonly", b"x", -1),
        set_data_op("/zookeeper/config", b"x", -1),
    ];
    for op in &denied {
        assert_eq!(
            run_as(&mut tree, OTHER, anon.clone(), op.clone()).result,
            TxnResult::Error(ErrorCode::NoAuth),
            "{op:?}"
        );
    }
    // The same requests pass for super users and with skip_acl.
    let mut skipping = DataTree::new(TreeOptions {
        skip_acl: true,
        enforce_quota: false,
    });
    ok(&mut skipping, create_with_acl("/locked", open()));
    ok(&mut skipping, create_with_acl("/locked/x", open()));
    ok(&mut skipping, lock.clone());
    for (t, auth) in [
        (&mut tree, superuser.clone()),
        (&mut skipping, anon.clone()),
    ] {
        for op in [
            set_data_op("/locked", b"x", -1),
            check_op("/locked", -1),
            create_op("/locked/y", b"", CreateMode::Persistent),
            delete_op("/locked/y", -1),
            set_data_op("/zookeeper/config", b"cfg", -1),
        ] {
            let applied = run_as(t, OTHER, auth.clone(), op.clone());
            assert_eq!(applied.result.error_code(), ErrorCode::Ok, "{op:?}");
        }
    }
    // Alice passes through her digest id.
    for op in [
        create_op("/locked/z", b"", CreateMode::Persistent),
        delete_op("/locked/z", -1),
        set_data_op("/locked", b"y", -1),
        check_op("/locked", -1),
        TxnOp::SetAcl {
            path: "/locked".into(),
            acl: locked.clone(),
            version: -1,
        },
    ] {
        assert_eq!(
            run_as(&mut tree, OTHER, alice_auth.clone(), op.clone())
                .result
                .error_code(),
            ErrorCode::Ok,
            "{op:?}"
        );
    }
    // "auth" expands to the creator's authenticated ids.
    let applied = run_as(
        &mut tree,
        OTHER,
        alice_auth.clone(),
        create_with_acl(
            "/mine",
            vec![acl_entry(perms::READ | perms::WRITE, "auth", "")],
        ),
    );
    assert_eq!(applied.result.error_code(), ErrorCode::Ok);
    assert_eq!(
        tree.node("/mine").unwrap().acl().as_ref(),
        &[Acl {
            perms: perms::READ | perms::WRITE,
            id: alice.clone()
        }]
    );
    assert_eq!(
        applied.changes[0].acl.as_ref(),
        &[Acl {
            perms: perms::READ | perms::WRITE,
            id: alice
        }]
    );
}

#[test]
fn set_acl_bumps_aversion_and_interns_lists() {
    let mut tree = tree();
    ok(&mut tree, create_op("/a", b"", CreateMode::Persistent));
    ok(&mut tree, create_op("/b", b"", CreateMode::Persistent));
    let before = tree.acl_cache_size();
    let custom = vec![acl_entry(perms::ALL, "ip", "127.0.0.0/8")];
    let applied = ok(
        &mut tree,
        TxnOp::SetAcl {
            path: "/a".into(),
            acl: custom.clone(),
            version: 0,
        },
    );
    assert!(applied.changes.is_empty());
    let TxnResult::AclSet { stat } = applied.result else {
        panic!()
    };
    assert_eq!((stat.aversion, stat.version, stat.mzxid), (1, 0, 1));
    ok(
        &mut tree,
        TxnOp::SetAcl {
            path: "/b".into(),
            acl: custom.clone(),
            version: -1,
        },
    );
    assert_eq!(tree.acl_cache_size(), before + 1);
    assert!(Arc::ptr_eq(
        tree.node("/a").unwrap().acl(),
        tree.node("/b").unwrap().acl()
    ));
    // Duplicates are removed as fixupACL does.
    ok(
        &mut tree,
        TxnOp::SetAcl {
            path: "/b".into(),
            acl: vec![custom[0].clone(), custom[0].clone()],
            version: 1,
        },
    );
    assert_eq!(tree.node("/b").unwrap().acl().as_ref(), custom.as_slice());
    ok(&mut tree, delete_op("/a", -1));
    ok(&mut tree, delete_op("/b", -1));
    assert_eq!(tree.acl_cache_size(), before);
}

#[test]
fn set_data_updates_stat_and_reports_change() {
    let mut tree = tree();
    ok(&mut tree, create_op("/a", b"abc", CreateMode::Persistent));
    let applied = ok(&mut tree, set_data_op("/a", b"hello world", 0));
    let TxnResult::DataSet { stat } = applied.result else {
        panic!()
    };
    assert_eq!(
        (
            stat.version,
            stat.mzxid,
            stat.mtime,
            stat.czxid,
            stat.ctime,
            stat.data_length
        ),
        (1, 2, 1_001, 1, 1_000, 11)
    );
    assert_eq!(applied.changes.len(), 1);
    assert_eq!(
        (applied.changes[0].path.as_str(), applied.changes[0].kind),
        ("/a", ChangeKind::DataChanged)
    );
    assert_eq!(tree.approximate_data_size(), 44 + 2 + 11);
    assert_invariants(&tree);
}

#[test]
fn multi_applies_in_order_with_one_zxid() {
    let mut tree = tree();
    let applied = ok(
        &mut tree,
        TxnOp::Multi(vec![
            create_op("/m", b"", CreateMode::Persistent),
            create_op("/m/s-", b"", CreateMode::PersistentSequential),
            create_op("/m/s-", b"", CreateMode::PersistentSequential),
            set_data_op("/m", b"x", 0),
            check_op("/m", 1),
            delete_op("/m/s-0000000000", 0),
        ]),
    );
    let TxnResult::Multi(results) = &applied.result else {
        panic!()
    };
    assert_eq!(results.len(), 6);
    assert!(matches!(&results[1], TxnResult::Created { path, .. } if path == "/m/s-0000000000"));
    assert!(matches!(&results[2], TxnResult::Created { path, .. } if path == "/m/s-0000000001"));
    assert!(
        matches!(&results[3], TxnResult::DataSet { stat } if stat.mzxid == 1 && stat.version == 1)
    );
    assert_eq!(results[4], TxnResult::Checked);
    assert_eq!(results[5], TxnResult::Deleted);
    let m = stat(&tree, "/m");
    assert_eq!(
        (m.czxid, m.mzxid, m.pzxid, m.cversion, m.num_children),
        (1, 1, 1, 3, 1)
    );
    let kinds: Vec<(&str, ChangeKind)> = applied
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("/m", ChangeKind::Created),
            ("/", ChangeKind::ChildrenChanged),
            ("/m/s-0000000000", ChangeKind::Created),
            ("/m", ChangeKind::ChildrenChanged),
            ("/m/s-0000000001", ChangeKind::Created),
            ("/m", ChangeKind::ChildrenChanged),
            ("/m", ChangeKind::DataChanged),
            ("/m/s-0000000000", ChangeKind::Deleted),
            ("/m", ChangeKind::ChildrenChanged),
        ]
    );
    assert_eq!(tree.last_zxid(), 1);
    assert_invariants(&tree);
}

#[test]
fn failed_multi_leaves_everything_as_before() {
    let mut tree = DataTree::new(TreeOptions {
        skip_acl: false,
        enforce_quota: true,
    });
    open_session(&mut tree, SESSION);
    setup_quota(&mut tree, "/app", "count=100,bytes=1000");
    ok(
        &mut tree,
        create_op("/app", b"12345", CreateMode::Persistent),
    );
    ok(&mut tree, create_op("/app/a", b"", CreateMode::Persistent));
    ok(
        &mut tree,
        create_op("/app/b", b"bb", CreateMode::Persistent),
    );
    ok(&mut tree, create_op("/app/c", b"", CreateMode::Persistent));
    ok(&mut tree, create_op("/app/e", b"", CreateMode::Ephemeral));
    ok(&mut tree, create_op("/other", b"", CreateMode::Container));
    let before = dump(&tree);
    let before_summary = summary(&tree);
    let zxid = tree.last_zxid();
    let applied = run(
        &mut tree,
        TxnOp::Multi(vec![
            delete_op("/app/b", -1),
            create_op("/app/b", b"new data", CreateMode::Persistent),
            create_with_acl(
                "/app/new",
                vec![acl_entry(perms::READ, "digest", "u:newacl")],
            ),
            create_op("/app/s-", b"", CreateMode::PersistentSequential),
            delete_op("/app/a", -1),
            delete_op("/app/e", -1),
            set_data_op("/app", b"changed", -1),
            create_op("/other/x", b"", CreateMode::Persistent),
            delete_op("/other/x", -1),
            create_op("/app/z", b"", CreateMode::Ephemeral),
            check_op("/app", 0),
            create_op("/never", b"", CreateMode::Persistent),
        ]),
    );
    assert_eq!(applied.zxid, zxid + 1);
    let mut expected = vec![TxnResult::Error(ErrorCode::Ok); 10];
    expected.push(TxnResult::Error(ErrorCode::BadVersion));
    expected.push(TxnResult::Error(ErrorCode::RuntimeInconsistency));
    assert_eq!(applied.result, TxnResult::Multi(expected));
    assert_eq!(
        applied.result.error_code(),
        ErrorCode::Ok,
        "a multi's own code is per op"
    );
    assert!(applied.changes.is_empty());
    assert_eq!(tree.last_zxid(), zxid + 1);
    assert_eq!(dump(&tree), before);
    assert_eq!(
        summary(&tree).replacen(&format!("zxid={}", zxid + 1), &format!("zxid={zxid}"), 1),
        before_summary
    );
    assert_invariants(&tree);
    // The next sequential number was not consumed.
    let next = ok(
        &mut tree,
        create_op("/app/s-", b"", CreateMode::PersistentSequential),
    );
    assert!(matches!(&next.result, TxnResult::Created { path, .. } if path == "/app/s-0000000004"));
}

#[test]
fn close_session_deletes_its_ephemerals() {
    let mut tree = tree();
    open_session(&mut tree, SESSION);
    open_session(&mut tree, OTHER);
    ok(&mut tree, create_op("/p", b"", CreateMode::Persistent));
    ok(&mut tree, create_op("/p/e1", b"abc", CreateMode::Ephemeral));
    ok(&mut tree, create_op("/e2", b"", CreateMode::Ephemeral));
    run_as(
        &mut tree,
        OTHER,
        vec![],
        create_op("/p/theirs", b"", CreateMode::Ephemeral),
    );
    assert_eq!(
        tree.sessions().collect::<Vec<_>>(),
        [(SESSION, 30_000), (OTHER, 30_000)]
    );
    assert_eq!(tree.session_timeout(SESSION), Some(30_000));
    assert_eq!(tree.ephemeral_count(), 3);
    assert_eq!(
        tree.ephemerals_by_session().collect::<Vec<_>>(),
        [
            (SESSION, vec!["/e2".to_owned(), "/p/e1".to_owned()]),
            (OTHER, vec!["/p/theirs".to_owned()])
        ]
    );
    let size_before = tree.approximate_data_size();
    let applied = run_as(&mut tree, SESSION, vec![], TxnOp::CloseSession);
    assert_eq!(applied.result, TxnResult::SessionClosed);
    let kinds: Vec<(&str, ChangeKind)> = applied
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("/e2", ChangeKind::Deleted),
            ("/", ChangeKind::ChildrenChanged),
            ("/p/e1", ChangeKind::Deleted),
            ("/p", ChangeKind::ChildrenChanged),
        ]
    );
    assert!(tree.node("/p/e1").is_none() && tree.node("/e2").is_none());
    assert_eq!(stat(&tree, "/p").pzxid, applied.zxid);
    assert_eq!(tree.ephemerals(SESSION), Vec::<String>::new());
    assert_eq!(tree.session_timeout(SESSION), None);
    assert_eq!(tree.ephemeral_count(), 1);
    assert_eq!(tree.approximate_data_size(), size_before - (5 + 3) - 3);
    // Ephemerals of a closed session cannot be created any more.
    assert_eq!(
        err(&mut tree, create_op("/late", b"", CreateMode::Ephemeral)),
        ErrorCode::SessionExpired
    );
    assert_invariants(&tree);
}

#[test]
fn containers_become_candidates_once_used_and_empty() {
    let mut tree = tree();
    ok(&mut tree, create_op("/c", b"", CreateMode::Container));
    let c = tree.node("/c").unwrap();
    assert_eq!(c.stat().ephemeral_owner, 0);
    assert_eq!(c.persisted_stat().ephemeral_owner, CONTAINER_OWNER);
    assert_eq!(c.kind(), NodeKind::Container);
    assert!(
        tree.expired_candidates(i64::MAX).is_empty(),
        "never had a child"
    );
    assert_eq!(
        tree.expired_candidates_with(1_000 + 10_000, Some(5_000)),
        vec![TxnOp::DeleteContainer { path: "/c".into() }]
    );
    ok(&mut tree, create_op("/c/x", b"", CreateMode::Persistent));
    assert!(tree.expired_candidates(i64::MAX).is_empty(), "has a child");
    assert_eq!(
        err(&mut tree, TxnOp::DeleteContainer { path: "/c".into() }),
        ErrorCode::NotEmpty
    );
    ok(&mut tree, delete_op("/c/x", -1));
    assert_eq!(
        tree.expired_candidates(0),
        vec![TxnOp::DeleteContainer { path: "/c".into() }]
    );
    ok(&mut tree, create_op("/plain", b"", CreateMode::Persistent));
    assert_eq!(
        err(
            &mut tree,
            TxnOp::DeleteContainer {
                path: "/plain".into()
            }
        ),
        ErrorCode::BadVersion
    );
    assert_eq!(
        err(
            &mut tree,
            TxnOp::DeleteContainer {
                path: "/nothing".into()
            }
        ),
        ErrorCode::NoNode
    );
    assert_eq!(
        err(
            &mut tree,
            TxnOp::DeleteContainer {
                path: "/zookeeper".into()
            }
        ),
        ErrorCode::BadArguments
    );
    let applied = ok(&mut tree, TxnOp::DeleteContainer { path: "/c".into() });
    assert_eq!(applied.result, TxnResult::Deleted);
    assert_eq!(applied.changes[0].kind, ChangeKind::Deleted);
    assert!(tree.node("/c").is_none());
    assert!(tree.expired_candidates(i64::MAX).is_empty());
    assert_invariants(&tree);
}

#[test]
fn ttl_nodes_expire_by_mtime() {
    let mut tree = tree();
    let applied = ok(&mut tree, ttl_op("/t", 5_000));
    let TxnResult::Created {
        stat: created_stat, ..
    } = applied.result
    else {
        panic!()
    };
    assert_eq!(created_stat.ephemeral_owner, 0);
    let t = tree.node("/t").unwrap();
    assert_eq!(
        t.persisted_stat().ephemeral_owner,
        ttl_owner(5_000).unwrap()
    );
    assert_eq!(t.kind(), NodeKind::Ttl(5_000));
    let created = t.stat().mtime;
    assert!(
        tree.expired_candidates(created + 5_000).is_empty(),
        "exactly the TTL is not expired"
    );
    assert_eq!(
        tree.expired_candidates(created + 5_001),
        vec![TxnOp::DeleteExpiredTtl { path: "/t".into() }]
    );
    // A write refreshes the mtime.
    ok(&mut tree, set_data_op("/t", b"x", -1));
    let mtime = stat(&tree, "/t").mtime;
    assert!(tree.expired_candidates(created + 5_001).is_empty());
    // A child keeps it alive.
    ok(&mut tree, create_op("/t/c", b"", CreateMode::Persistent));
    assert!(tree.expired_candidates(mtime + 10_000).is_empty());
    let late = |op| txn_as(0, mtime + 10_000, vec![], op);
    assert_eq!(
        tree.apply(&late(TxnOp::DeleteExpiredTtl { path: "/t".into() }))
            .result,
        TxnResult::Error(ErrorCode::NotEmpty)
    );
    ok(&mut tree, delete_op("/t/c", -1));
    // Judged by the transaction's time, not the candidate scan's.
    let early = txn_as(
        0,
        mtime + 1,
        vec![],
        TxnOp::DeleteExpiredTtl { path: "/t".into() },
    );
    assert_eq!(
        tree.apply(&early).result,
        TxnResult::Error(ErrorCode::BadVersion)
    );
    assert_eq!(
        tree.apply(&late(TxnOp::DeleteContainer { path: "/t".into() }))
            .result,
        TxnResult::Error(ErrorCode::BadVersion)
    );
    let applied = tree.apply(&late(TxnOp::DeleteExpiredTtl { path: "/t".into() }));
    assert_eq!(applied.result, TxnResult::Deleted);
    assert!(tree.node("/t").is_none());
    // Sequential TTL nodes work too.
    let applied = ok(
        &mut tree,
        TxnOp::Create(CreateOp {
            path: "/ts-".into(),
            data: vec![],
            acl: open(),
            mode: CreateMode::PersistentSequentialWithTtl,
            ttl_ms: 1,
        }),
    );
    assert!(
        matches!(&applied.result, TxnResult::Created { path, .. } if path.starts_with("/ts-00000"))
    );
    assert_invariants(&tree);
}

/// Creates the quota nodes the way `setquota` does.
fn setup_quota(tree: &mut DataTree, path: &str, limits: &str) {
    let mut quota_node = String::from("/zookeeper/quota");
    for part in path.split('/').skip(1) {
        quota_node.push('/');
        quota_node.push_str(part);
        if tree.node(&quota_node).is_none() {
            ok(tree, create_op(&quota_node, b"", CreateMode::Persistent));
        }
    }
    ok(
        tree,
        create_op(
            &format!("{quota_node}/zookeeper_limits"),
            limits.as_bytes(),
            CreateMode::Persistent,
        ),
    );
    ok(
        tree,
        create_op(
            &format!("{quota_node}/zookeeper_stats"),
            b"count=0,bytes=0",
            CreateMode::Persistent,
        ),
    );
}

fn usage(tree: &DataTree, path: &str) -> String {
    String::from_utf8(data(
        tree,
        &format!("/zookeeper/quota{path}/zookeeper_stats"),
    ))
    .unwrap()
}

#[test]
fn quota_usage_is_tracked() {
    let mut tree = tree();
    ok(
        &mut tree,
        create_op("/app", b"1234", CreateMode::Persistent),
    );
    ok(
        &mut tree,
        create_op("/app/x", b"12", CreateMode::Persistent),
    );
    ok(
        &mut tree,
        create_op("/apple", b"123456", CreateMode::Persistent),
    );
    setup_quota(&mut tree, "/app", "count=10,bytes=100");
    // Creating the usage node counts the existing subtree.
    assert_eq!(usage(&tree, "/app"), "count=2,bytes=6");
    let stats_stat = stat(&tree, "/zookeeper/quota/app/zookeeper_stats");
    assert_eq!(stats_stat.version, 0);
    ok(
        &mut tree,
        create_op("/app/y", b"abc", CreateMode::Persistent),
    );
    assert_eq!(usage(&tree, "/app"), "count=3,bytes=9");
    ok(&mut tree, set_data_op("/app/y", b"a", -1));
    assert_eq!(usage(&tree, "/app"), "count=3,bytes=7");
    ok(&mut tree, delete_op("/app/x", -1));
    assert_eq!(usage(&tree, "/app"), "count=2,bytes=5");
    // A sibling sharing the prefix is not in the quota.
    ok(&mut tree, set_data_op("/apple", b"", -1));
    assert_eq!(usage(&tree, "/app"), "count=2,bytes=5");
    // The usage node's stat does not move when the tree rewrites it.
    assert_eq!(
        stat(&tree, "/zookeeper/quota/app/zookeeper_stats").mzxid,
        stats_stat.mzxid
    );
    // The deepest quota wins.
    ok(
        &mut tree,
        create_op("/app/deep", b"", CreateMode::Persistent),
    );
    setup_quota(&mut tree, "/app/deep", "count=5");
    ok(
        &mut tree,
        create_op("/app/deep/z", b"zz", CreateMode::Persistent),
    );
    assert_eq!(usage(&tree, "/app/deep"), "count=2,bytes=2");
    assert_eq!(usage(&tree, "/app"), "count=3,bytes=5");
    // Removing the limits node ends tracking.
    ok(
        &mut tree,
        delete_op("/zookeeper/quota/app/deep/zookeeper_limits", -1),
    );
    ok(
        &mut tree,
        create_op("/app/deep/w", b"w", CreateMode::Persistent),
    );
    assert_eq!(usage(&tree, "/app/deep"), "count=2,bytes=2");
    assert_eq!(usage(&tree, "/app"), "count=4,bytes=6");
    let metrics = tree.quota_metrics();
    assert_eq!(metrics.count_limit.get("app"), Some(&10));
    assert_eq!(metrics.bytes_limit.get("app"), Some(&100));
    assert_eq!(metrics.count_usage.get("app"), Some(&(4 + 2)));
    assert_eq!(metrics.bytes_usage.get("app"), Some(&(6 + 2)));
    assert_invariants(&tree);
}

#[test]
fn quota_enforcement_hard_and_soft() {
    let mut tree = DataTree::new(TreeOptions {
        skip_acl: false,
        enforce_quota: true,
    });
    ok(&mut tree, create_op("/hard", b"", CreateMode::Persistent));
    ok(&mut tree, create_op("/soft", b"", CreateMode::Persistent));
    setup_quota(
        &mut tree,
        "/hard",
        "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3",
    );
    setup_quota(&mut tree, "/soft", "count=2,bytes=5");
    ok(
        &mut tree,
        create_op("/hard/a", b"12345", CreateMode::Persistent),
    );
    ok(&mut tree, create_op("/hard/b", b"", CreateMode::Persistent));
    assert_eq!(usage(&tree, "/hard"), "count=3,bytes=5");
    let before = dump(&tree);
    assert_eq!(
        err(&mut tree, create_op("/hard/c", b"", CreateMode::Persistent)),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(
        err(
            &mut tree,
            create_op("/hard/a/s", b"", CreateMode::PersistentSequential)
        ),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(
        err(&mut tree, set_data_op("/hard/a", b"1234567890!", -1)),
        ErrorCode::QuotaExceeded
    );
    // Quota comes before the version check, as in Apache.
    assert_eq!(
        err(&mut tree, set_data_op("/hard/a", b"1234567890!", 99)),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(dump(&tree), before);
    assert_eq!(
        tree.quota_exceeded_by_namespace().collect::<Vec<_>>(),
        [("hard", 4)]
    );
    ok(&mut tree, set_data_op("/hard/a", b"1234567890", -1));
    // A failing create in a multi fails the whole multi.
    let applied = run(
        &mut tree,
        TxnOp::Multi(vec![
            delete_op("/hard/b", -1),
            create_op("/hard/c", b"", CreateMode::Persistent),
            create_op("/hard/d", b"", CreateMode::Persistent),
        ]),
    );
    assert_eq!(
        applied.result,
        TxnResult::Multi(vec![
            TxnResult::Error(ErrorCode::Ok),
            TxnResult::Error(ErrorCode::Ok),
            TxnResult::Error(ErrorCode::QuotaExceeded)
        ])
    );
    // Soft limits are only counted.
    for name in ["a", "b", "c"] {
        ok(
            &mut tree,
            create_op(&format!("/soft/{name}"), b"123", CreateMode::Persistent),
        );
    }
    assert_eq!(usage(&tree, "/soft"), "count=4,bytes=9");
    assert_eq!(tree.soft_quota_exceeded_count(), 2 + 2);
    // Without enforcement nothing is refused.
    let mut lax = DataTree::new(TreeOptions::default());
    ok(&mut lax, create_op("/hard", b"", CreateMode::Persistent));
    setup_quota(&mut lax, "/hard", "count=-1,bytes=-1=;countHardLimit=1");
    ok(&mut lax, create_op("/hard/a", b"", CreateMode::Persistent));
    assert_eq!(usage(&lax, "/hard"), "count=2,bytes=0");
    assert_eq!(lax.soft_quota_exceeded_count(), 0);
    // Malformed limits fail the request, as Apache's parse error does.
    let mut broken = DataTree::new(TreeOptions {
        skip_acl: false,
        enforce_quota: true,
    });
    ok(&mut broken, create_op("/b", b"", CreateMode::Persistent));
    setup_quota(&mut broken, "/b", "garbage");
    assert_eq!(
        err(&mut broken, create_op("/b/x", b"", CreateMode::Persistent)),
        ErrorCode::MarshallingError
    );
}

#[test]
fn count_descendants_and_sizes() {
    let mut tree = tree();
    ok(&mut tree, create_op("/a", b"", CreateMode::Persistent));
    ok(&mut tree, create_op("/a/b", b"", CreateMode::Persistent));
    ok(&mut tree, create_op("/a/b/c", b"", CreateMode::Persistent));
    ok(&mut tree, create_op("/a/d", b"", CreateMode::Persistent));
    assert_eq!(tree.count_descendants("/a"), Some(3));
    assert_eq!(tree.count_descendants("/a/b"), Some(1));
    assert_eq!(tree.count_descendants("/a/d"), Some(0));
    assert_eq!(tree.count_descendants("/"), Some(7));
    assert_eq!(tree.count_descendants(""), Some(8));
    assert_eq!(tree.node_count(), 9);
    // Non-ASCII names count in UTF-16 units, as Java's String.length().
    let before = tree.approximate_data_size();
    ok(
        &mut tree,
        create_op("/\u{e9}t\u{e9}", b"ab", CreateMode::Persistent),
    );
    assert_eq!(tree.approximate_data_size(), before + 4 + 2);
}

#[test]
fn init_config_sets_the_config_node() {
    let mut tree = tree();
    tree.init_config(b"server.1=a:1:2", 0x1_0000_0000, 77);
    let config = stat(&tree, "/zookeeper/config");
    assert_eq!(
        (
            config.version,
            config.mzxid,
            config.mtime,
            config.data_length
        ),
        (-1, 0x1_0000_0000, 77, 14)
    );
    assert_eq!(tree.approximate_data_size(), 44 + 14);
    assert_eq!(tree.last_zxid(), 0);
}

#[test]
fn restore_rebuilds_an_identical_tree() {
    let mut tree = tree();
    open_session(&mut tree, SESSION);
    ok(&mut tree, create_op("/a", b"data", CreateMode::Persistent));
    ok(
        &mut tree,
        create_with_acl("/a/b", vec![acl_entry(perms::READ, "ip", "10.0.0.1")]),
    );
    ok(&mut tree, create_op("/a/e", b"", CreateMode::Ephemeral));
    ok(&mut tree, create_op("/c", b"", CreateMode::Container));
    ok(&mut tree, ttl_op("/t", 100));
    setup_quota(&mut tree, "/a", "count=10");
    ok(&mut tree, set_data_op("/", b"rootdata", -1));

    let mut copy = DataTree::new(TreeOptions::default());
    tree.for_each_node(|path, node| {
        copy.restore_node(path, node.data(), node.acl(), node.persisted_stat())
            .unwrap();
    });
    for (session, timeout) in tree.sessions() {
        copy.restore_session(session, timeout);
    }
    copy.finish_restore();
    copy.set_last_zxid(tree.last_zxid());
    let sorted = |t: &DataTree| {
        let mut d = dump(t);
        d.sort_by(|a, b| a.0.cmp(&b.0));
        for entry in &mut d {
            entry.5.sort();
        }
        d
    };
    assert_eq!(sorted(&copy), sorted(&tree));
    // Apache's cached size drifts with quota usage rewrites; a restore
    // recomputes it from the nodes.
    assert_eq!(summary_without_size(&copy), summary_without_size(&tree));
    let mut size = 0u64;
    copy.for_each_node(|path, node| size += path.len() as u64 + node.data().len() as u64);
    assert_eq!(
        copy.approximate_data_size(),
        size + b"rootdata".len() as u64
    );
    assert_eq!(
        copy.restore_node("/x/y", b"", &open(), PersistedStat::default()),
        Err(RestoreError::MissingParent("/x/y".into()))
    );
    assert_eq!(
        copy.restore_node("x", b"", &open(), PersistedStat::default()),
        Err(RestoreError::InvalidPath("x".into()))
    );
}

/// A small deterministic generator, so that failures replay from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_path(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(3);
    let mut path = String::new();
    for _ in 0..depth {
        path.push('/');
        path.push(['a', 'b', 'c', 's'][rng.below(4)]);
    }
    path
}

fn random_op(rng: &mut Rng, depth: usize) -> TxnOp {
    let path = random_path(rng);
    let version = [-1, 0, 1][rng.below(3)];
    let data = vec![b'x'; rng.below(4)];
    match rng.below(if depth == 0 { 12 } else { 6 }) {
        0 | 1 => {
            let mode = [
                CreateMode::Persistent,
                CreateMode::Ephemeral,
                CreateMode::PersistentSequential,
                CreateMode::EphemeralSequential,
                CreateMode::Container,
                CreateMode::PersistentWithTtl,
            ][rng.below(6)];
            let acl = if rng.below(5) == 0 {
                vec![acl_entry(perms::READ | perms::CREATE, "world", "anyone")]
            } else {
                open()
            };
            TxnOp::Create(CreateOp {
                path,
                data,
                acl,
                mode,
                ttl_ms: if mode.is_ttl() {
                    1 + rng.below(50) as i64
                } else {
                    0
                },
            })
        }
        2 => delete_op(&path, version),
        3 => set_data_op(&path, &data, version),
        4 => check_op(&path, version),
        5 => TxnOp::SetAcl {
            path,
            acl: open(),
            version,
        },
        6 | 7 => TxnOp::Multi(
            (0..rng.below(5))
                .map(|_| random_op(rng, depth + 1))
                .collect(),
        ),
        8 => TxnOp::CreateSession { timeout_ms: 1000 },
        9 => TxnOp::CloseSession,
        10 => TxnOp::DeleteContainer { path },
        _ => TxnOp::DeleteExpiredTtl { path },
    }
}

#[test]
fn same_transactions_give_same_trees() {
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for seed in 1..=8u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let options = TreeOptions {
            skip_acl: false,
            enforce_quota: true,
        };
        let mut first = DataTree::new(options);
        let mut second = DataTree::new(options);
        for tree in [&mut first, &mut second] {
            ok(tree, create_op("/a", b"", CreateMode::Persistent));
            setup_quota(
                tree,
                "/a",
                "count=-1,bytes=-1=;countHardLimit=12;byteHardLimit=20",
            );
        }
        for step in 0..600 {
            let session = 1 + rng.below(3) as i64;
            let op = random_op(&mut rng, 0);
            let txn = txn_as(
                session,
                1_000 + step * 7,
                vec![Id::new("ip", "127.0.0.1")],
                op,
            );
            let before = dump(&first);
            let before_summary = summary(&first);
            let a = first.apply(&txn);
            let b = second.apply(&txn);
            assert_eq!(a, b, "seed {seed} step {step}: {txn:?}");
            let failed = match &a.result {
                TxnResult::Error(_) => true,
                TxnResult::Multi(results) => {
                    results.iter().any(|r| matches!(r, TxnResult::Error(_)))
                }
                _ => false,
            };
            let outcome = match (&txn.op, failed) {
                (TxnOp::Multi(ops), false) if !ops.is_empty() => "multi ok",
                (TxnOp::Multi(ops), true) if ops.len() > 1 => "multi failed",
                (TxnOp::Create(_), false) => "create ok",
                (TxnOp::Delete { .. }, false) => "delete ok",
                (TxnOp::CloseSession, _) if !a.changes.is_empty() => {
                    "session closed with ephemerals"
                }
                (_, true) => "failed",
                _ => "other",
            };
            *outcomes.entry(outcome).or_default() += 1;
            if failed {
                assert_eq!(
                    dump(&first),
                    before,
                    "seed {seed} step {step}: failed {txn:?} changed the tree"
                );
                let zxid_before = format!("zxid={}", first.last_zxid() - 1);
                let zxid_after = format!("zxid={}", first.last_zxid());
                assert_eq!(
                    summary(&first).replacen(&zxid_after, &zxid_before, 1),
                    before_summary
                );
                assert!(a.changes.is_empty());
            }
            if step % 50 == 0 {
                assert_invariants(&first);
            }
            // Expiry candidates applied as the server would.
            if step % 40 == 0 {
                for op in first.expired_candidates(1_000 + step * 7) {
                    let txn = txn_as(0, 1_000 + step * 7, vec![], op);
                    assert_eq!(first.apply(&txn), second.apply(&txn));
                }
            }
        }
        assert_eq!(dump(&first), dump(&second));
        assert_eq!(summary(&first), summary(&second));
        assert_invariants(&first);
    }
    // The generator must reach the interesting cases.
    for outcome in [
        "multi ok",
        "multi failed",
        "create ok",
        "delete ok",
        "session closed with ephemerals",
        "failed",
    ] {
        assert!(
            outcomes.get(outcome).copied().unwrap_or(0) >= 5,
            "{outcome}: {outcomes:?}"
        );
    }
}

/// Replays a zkCli session run against Apache ZooKeeper 3.8.0 and checks the
/// values it printed.
#[test]
fn matches_apache_reference_transcript() {
    let mut tree = DataTree::new(TreeOptions {
        skip_acl: false,
        enforce_quota: true,
    });
    ok(&mut tree, create_op("/q", b"", CreateMode::Persistent));
    ok(
        &mut tree,
        create_op("/q/n-", b"", CreateMode::PersistentSequential),
    );
    ok(&mut tree, delete_op("/q/n-0000000000", -1));
    let second = ok(
        &mut tree,
        create_op("/q/n-", b"", CreateMode::PersistentSequential),
    );
    assert!(matches!(&second.result, TxnResult::Created { path, .. } if path == "/q/n-0000000001"));
    let q = stat(&tree, "/q");
    assert_eq!(
        (q.czxid, q.mzxid, q.pzxid, q.cversion, q.num_children),
        (1, 1, 4, 3, 1)
    );
    ok(&mut tree, create_op("/c", b"", CreateMode::Container));
    assert_eq!(stat(&tree, "/c").ephemeral_owner, 0);
    ok(&mut tree, ttl_op("/t", 5_000));
    assert_eq!(stat(&tree, "/t").ephemeral_owner, 0);
    for path in ["/a", "/a/b", "/a/b/c"] {
        ok(&mut tree, create_op(path, b"", CreateMode::Persistent));
    }
    assert_eq!(tree.count_descendants("/"), Some(10));
    assert_eq!(tree.count_descendants("/a"), Some(2));
    // setquota -n 3 /a
    setup_quota(
        &mut tree,
        "/a",
        "count=3,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
    );
    assert_eq!(usage(&tree, "/a"), "count=3,bytes=0");
    assert_eq!(
        stat(&tree, "/zookeeper/quota/a/zookeeper_stats").data_length,
        15
    );
    let root_seq = ok(
        &mut tree,
        create_op("/", b"", CreateMode::PersistentSequential),
    );
    assert!(matches!(&root_seq.result, TxnResult::Created { path, .. } if path == "/0000000004"));
    // Past the soft limit: allowed.
    ok(
        &mut tree,
        create_op("/a/b/c/d", b"", CreateMode::Persistent),
    );
    let root = stat(&tree, "/");
    assert_eq!((root.cversion, root.num_children, root.mzxid), (4, 6, 0));

    // setquota -N 3 /y: hard count limit.
    ok(&mut tree, create_op("/y", b"", CreateMode::Persistent));
    setup_quota(
        &mut tree,
        "/y",
        "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3",
    );
    assert_eq!(usage(&tree, "/y"), "count=1,bytes=0");
    ok(
        &mut tree,
        create_op("/y/a", b"12345", CreateMode::Persistent),
    );
    ok(&mut tree, create_op("/y/b", b"", CreateMode::Persistent));
    assert_eq!(
        err(&mut tree, create_op("/y/c", b"", CreateMode::Persistent)),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(usage(&tree, "/y"), "count=3,bytes=5");
    // setquota -B 10 /z: hard byte limit.
    ok(&mut tree, create_op("/z", b"", CreateMode::Persistent));
    setup_quota(
        &mut tree,
        "/z",
        "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=-1",
    );
    ok(
        &mut tree,
        create_op("/z/a", b"12345", CreateMode::Persistent),
    );
    ok(&mut tree, set_data_op("/z/a", b"1234567890", -1));
    assert_eq!(
        err(&mut tree, set_data_op("/z/a", b"123456789012", -1)),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(usage(&tree, "/z"), "count=2,bytes=10");
    // Reserved nodes.
    for path in ["/zookeeper/quota", "/zookeeper", "/zookeeper/config"] {
        assert_eq!(err(&mut tree, delete_op(path, -1)), ErrorCode::BadArguments);
    }
    ok(
        &mut tree,
        create_op("/zookeeper/foo", b"", CreateMode::Persistent),
    );
    assert_eq!(
        err(&mut tree, set_data_op("/zookeeper/config", b"abc", -1)),
        ErrorCode::NoAuth
    );
    open_session(&mut tree, SESSION);
    ok(&mut tree, create_op("/eph", b"", CreateMode::Ephemeral));
    assert_eq!(
        err(
            &mut tree,
            create_op("/eph/child", b"", CreateMode::Persistent)
        ),
        ErrorCode::NoChildrenForEphemerals
    );
}
