//! Server semantics that clients rely on, checked with real server processes and real clients:
//! sessions (timeouts, expiry, reconnection, refusals), containers and TTL nodes, watches
//! (one-shot, persistent, recursive, setWatches on reconnect, event-before-reply order), ACLs
//! and quotas.
//!
//! Tests named `on_both::…` run the same checks against our server (`zookeeper_rs`) and against
//! Debian's Apache ZooKeeper 3.8 (`apache_reference`), which proves the expectations are
//! Apache's and not ours. Checks where Apache 3.9 differs from 3.8 (or where 3.8 cannot be
//! configured the same way) run against our server alone, with the 3.9 behaviour named.

mod common;

use std::time::{Duration, Instant};

use zookeeper_client as zk;

use common::raw::{op, watcher_type, Arrival, Body, ConnectParams, RawClient, Reader, WatchSet};
use common::support::{
    assert_still_serves, block_on, digest_id, on_both, raw_client, raw_create, raw_delete,
    raw_exists, raw_set, zkcli_script, IO_TIMEOUT,
};
use common::{connect, zkcli_available, Server, ZkUnderTest};

/// The longest any one test body may run.
const TEST_LIMIT: Duration = Duration::from_secs(90);
/// How long a watch event, an expiry or a reaping may take to show up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

const EPHEMERAL: i32 = 1;

const NODE_CREATED: i32 = 1;
const NODE_DELETED: i32 = 2;
const NODE_DATA_CHANGED: i32 = 3;
const NODE_CHILDREN_CHANGED: i32 = 4;

const OK: i32 = 0;
const NO_NODE: i32 = -101;
const NO_WATCHER: i32 = -121;

fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn mode(m: zk::CreateMode) -> zk::CreateOptions<'static> {
    m.with_acls(zk::Acls::anyone_all())
}

/// Waits (bounded) for a one-shot watch to fire.
async fn fired(watcher: zk::OneshotWatcher, what: &str) -> zk::WatchedEvent {
    tokio::time::timeout(EVENT_TIMEOUT, watcher.changed())
        .await
        .unwrap_or_else(|_| panic!("{what}: no event within {EVENT_TIMEOUT:?}"))
}

/// Waits (bounded) for the next event of a persistent watch.
async fn next(watcher: &mut zk::PersistentWatcher, what: &str) -> zk::WatchedEvent {
    tokio::time::timeout(EVENT_TIMEOUT, watcher.changed())
        .await
        .unwrap_or_else(|_| panic!("{what}: no event within {EVENT_TIMEOUT:?}"))
}

fn event(event_type: zk::EventType, path: &str) -> (zk::EventType, String) {
    (event_type, path.to_string())
}

fn kind(e: &zk::WatchedEvent) -> (zk::EventType, String) {
    (e.event_type, e.path.clone())
}

// --- sessions ----------------------------------------------------------------------------------

const CLAMP_CFG: &str = "tickTime=200\nminSessionTimeout=1000\nmaxSessionTimeout=3000";

fn session_timeout_is_clamped(server: &dyn ZkUnderTest) {
    for (asked, expected) in [(100, 1000), (0, 1000), (2000, 2000), (600_000, 3000)] {
        let (client, answer) = RawClient::connect_with(
            server.addr(),
            IO_TIMEOUT,
            &ConnectParams {
                timeout_ms: asked,
                ..ConnectParams::default()
            },
        )
        .expect("handshake");
        assert_eq!(
            answer.timeout_ms,
            expected,
            "{}: asked for {asked} ms",
            server.name()
        );
        assert_ne!(answer.session_id, 0);
        assert_eq!(answer.password.len(), 16);
        assert_eq!(answer.read_only, Some(false));
        client.close().expect("closing");
    }
}
on_both!(
    session_timeout_clamped_to_configured_bounds,
    CLAMP_CFG,
    session_timeout_is_clamped
);

fn default_bounds_are_two_and_twenty_ticks(server: &dyn ZkUnderTest) {
    for (asked, expected) in [(100, 400), (3000, 3000), (60_000, 4000)] {
        let (client, answer) = RawClient::connect_with(
            server.addr(),
            IO_TIMEOUT,
            &ConnectParams {
                timeout_ms: asked,
                ..ConnectParams::default()
            },
        )
        .expect("handshake");
        assert_eq!(answer.timeout_ms, expected, "asked for {asked} ms");
        client.close().expect("closing");
    }
}
on_both!(
    session_timeout_defaults_to_two_and_twenty_ticks,
    "tickTime=200",
    default_bounds_are_two_and_twenty_ticks
);

fn read_only_flag_is_echoed_only_when_sent(server: &dyn ZkUnderTest) {
    let (client, answer) = RawClient::connect_with(
        server.addr(),
        IO_TIMEOUT,
        &ConnectParams {
            read_only: None,
            ..ConnectParams::default()
        },
    )
    .expect("handshake without the read-only flag");
    assert_eq!(
        answer.read_only, None,
        "an old client's answer carries no flag"
    );
    assert!(answer.timeout_ms > 0);
    client.close().expect("closing");
}
on_both!(
    connect_response_has_read_only_flag_only_when_asked,
    "",
    read_only_flag_is_echoed_only_when_sent
);

const EXPIRY_CFG: &str = "tickTime=200\nminSessionTimeout=1000\nmaxSessionTimeout=1000";

/// A client that stops sending anything (pings included) loses its session after its timeout:
/// its ephemerals go, other sessions' watches on them fire, its connection is closed, and the
/// session cannot be resumed.
fn silent_session_expires(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut silent = raw_client(addr);
    assert_eq!(silent.negotiated_timeout, 1000);
    assert_eq!(raw_create(&mut silent, "/exp", b"", 0), OK);
    assert_eq!(raw_create(&mut silent, "/exp/eph", b"", EPHEMERAL), OK);

    block_on(TEST_LIMIT, async {
        let observer = connect(&server.connect_string()).await;
        let (stat, node_watch) = observer.check_and_watch_stat("/exp/eph").await.unwrap();
        assert_eq!(
            stat.map(|s| s.ephemeral_owner),
            Some(silent.session_id),
            "the ephemeral belongs to the silent session"
        );
        let (_, children_watch) = observer.list_and_watch_children("/exp").await.unwrap();
        // The last request the silent client sent was answered before this point.
        let silent_since = Instant::now();

        let deleted = fired(node_watch, "exists watch on the ephemeral").await;
        let elapsed = silent_since.elapsed();
        assert_eq!(
            kind(&deleted),
            event(zk::EventType::NodeDeleted, "/exp/eph")
        );
        assert!(
            elapsed >= Duration::from_millis(800),
            "expired after {elapsed:?}, before its 1000 ms timeout"
        );
        let changed = fired(children_watch, "child watch on the parent").await;
        assert_eq!(
            kind(&changed),
            event(zk::EventType::NodeChildrenChanged, "/exp")
        );
        assert_eq!(observer.check_stat("/exp/eph").await.unwrap(), None);
    });

    assert!(
        silent.closed_by_server(EVENT_TIMEOUT),
        "the expired session's connection stays open"
    );
    let (mut again, answer) = silent
        .reconnect(addr, IO_TIMEOUT)
        .expect("the server answers a reconnect to an expired session");
    assert_eq!(
        (answer.timeout_ms, answer.session_id),
        (0, 0),
        "an expired session is refused with timeout 0 and session 0"
    );
    assert!(
        again.closed_by_server(EVENT_TIMEOUT),
        "the refused connection stays open"
    );
    assert_still_serves(addr, "an expired session");
}
on_both!(silent_client_expires, EXPIRY_CFG, silent_session_expires);

fn close_session_deletes_ephemerals_at_once(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut owner = raw_client(addr);
    assert_eq!(raw_create(&mut owner, "/closing", b"", 0), OK);
    assert_eq!(raw_create(&mut owner, "/closing/e1", b"", EPHEMERAL), OK);
    assert_eq!(raw_create(&mut owner, "/closing/e2", b"", EPHEMERAL), OK);
    let mut observer = raw_client(addr);
    assert_eq!(raw_exists(&mut observer, "/closing/e1", true).0, OK);
    owner.close().expect("closing the owner's session");
    // The close was answered after it was applied: no waiting.
    assert_eq!(raw_exists(&mut observer, "/closing/e2", false).0, NO_NODE);
    assert_eq!(
        observer.take_events(),
        vec![(NODE_DELETED, "/closing/e1".to_string())]
    );
    observer.close().unwrap();
}
on_both!(
    close_session_deletes_ephemerals,
    "tickTime=2000",
    close_session_deletes_ephemerals_at_once
);

/// A client that loses its connection and comes back within its timeout keeps its session,
/// password and ephemerals, and the resumed session is kept alive by the new connection.
fn reconnect_within_timeout_keeps_session(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut first = raw_client(addr);
    let timeout = first.negotiated_timeout;
    assert_eq!(timeout, 2000);
    assert_eq!(raw_create(&mut first, "/rc", b"", 0), OK);
    assert_eq!(raw_create(&mut first, "/rc/eph", b"", EPHEMERAL), OK);
    first.disconnect();

    let mut peek = raw_client(addr);
    assert_eq!(
        raw_exists(&mut peek, "/rc/eph", false).0,
        OK,
        "a dropped connection does not end the session"
    );
    peek.close().unwrap();
    let (mut second, answer) = first.reconnect(addr, IO_TIMEOUT).expect("reconnecting");
    assert_eq!(answer.session_id, first.session_id, "the same session");
    assert_eq!(answer.timeout_ms, timeout);
    assert_eq!(answer.password, first.password);
    let (err, stat) = raw_exists(&mut second, "/rc/eph", false);
    assert_eq!(err, OK);
    assert_eq!(stat.unwrap().ephemeral_owner, first.session_id);

    // Outlive the timeout twice over on the new connection, pinging as a client does.
    let until = Instant::now() + Duration::from_millis(2 * timeout as u64);
    while Instant::now() < until {
        second.ping().expect("ping on the resumed session");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut observer = raw_client(addr);
    let (err, stat) = raw_exists(&mut observer, "/rc/eph", false);
    assert_eq!(err, OK, "the resumed session lost its ephemeral");
    assert_eq!(stat.unwrap().ephemeral_owner, first.session_id);
    second.close().unwrap();
    assert_eq!(raw_exists(&mut observer, "/rc/eph", false).0, NO_NODE);
    observer.close().unwrap();
}
on_both!(
    reconnect_within_timeout_keeps_session_and_ephemerals,
    "tickTime=200\nminSessionTimeout=2000\nmaxSessionTimeout=2000",
    reconnect_within_timeout_keeps_session
);

fn wrong_password_is_refused(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut owner = raw_client(addr);
    assert_eq!(raw_create(&mut owner, "/owned", b"", EPHEMERAL), OK);
    let mut wrong = owner.password.clone();
    wrong[0] ^= 0xff;
    let (mut intruder, answer) = RawClient::connect_with(
        addr,
        IO_TIMEOUT,
        &ConnectParams {
            session_id: owner.session_id,
            password: wrong,
            ..ConnectParams::default()
        },
    )
    .expect("the server answers a wrong password");
    assert_eq!((answer.timeout_ms, answer.session_id), (0, 0));
    assert_eq!(answer.password, vec![0; 16], "no password is handed out");
    assert!(
        intruder.closed_by_server(EVENT_TIMEOUT),
        "the refused connection stays open"
    );
    // The session survives. (Apache also drops the owner's current connection as soon as any
    // connection names its session, so the owner proves it by resuming with its password.)
    owner.disconnect();
    let (mut resumed, answer) = owner.reconnect(addr, IO_TIMEOUT).expect("resuming");
    assert_eq!(answer.session_id, owner.session_id);
    let (err, stat) = raw_exists(&mut resumed, "/owned", false);
    assert_eq!(err, OK);
    assert_eq!(stat.unwrap().ephemeral_owner, owner.session_id);
    resumed.close().unwrap();
    assert_still_serves(addr, "a wrong session password");
}
on_both!(
    wrong_password_gets_zero_session_and_close,
    "",
    wrong_password_is_refused
);

fn client_ahead_of_server_is_refused(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut writer = raw_client(addr);
    assert_eq!(raw_create(&mut writer, "/ahead", b"", 0), OK);
    let server_zxid = writer.last_zxid;
    writer.close().unwrap();
    let outcome = RawClient::connect_with(
        addr,
        IO_TIMEOUT,
        &ConnectParams {
            last_zxid_seen: server_zxid + 1000,
            ..ConnectParams::default()
        },
    );
    match outcome {
        Err(_) => {}
        Ok((mut client, answer)) => {
            assert!(
                answer.timeout_ms == 0 || client.closed_by_server(EVENT_TIMEOUT),
                "a client that has seen the future got a session: {answer:?}"
            );
        }
    }
    assert_still_serves(addr, "a client ahead of the server");
}
on_both!(
    client_with_newer_zxid_is_refused,
    "",
    client_ahead_of_server_is_refused
);

// --- containers and TTL nodes --------------------------------------------------------------------

// Apache reads the check interval from a JVM system property without the "zookeeper." prefix,
// which zoo.cfg cannot set, so these run against our server alone.
const REAPER_CFG: &str = "znode.container.checkIntervalMs=100\nextendedTypesEnabled=true";

#[test]
fn container_is_deleted_once_emptied_and_kept_if_never_used() {
    let server = Server::start_with(REAPER_CFG);
    block_on(TEST_LIMIT, async {
        let client = connect(&server.connect_string()).await;
        client
            .create("/used", b"", &mode(zk::CreateMode::Container))
            .await
            .unwrap();
        client
            .create("/unused", b"", &mode(zk::CreateMode::Container))
            .await
            .unwrap();
        client.create("/used/child", b"", &open()).await.unwrap();
        let (_, used_watch) = client.check_and_watch_stat("/used").await.unwrap();
        // A container with a child is not reaped.
        let settle = Instant::now() + Duration::from_millis(500);
        while Instant::now() < settle {
            assert!(client.check_stat("/used").await.unwrap().is_some());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client.delete("/used/child", None).await.unwrap();
        let deleted = fired(used_watch, "the emptied container").await;
        assert_eq!(kind(&deleted), event(zk::EventType::NodeDeleted, "/used"));
        // Several check intervals later, the never-used container is still there.
        let settle = Instant::now() + Duration::from_millis(500);
        while Instant::now() < settle {
            assert!(
                client.check_stat("/unused").await.unwrap().is_some(),
                "a container that never had a child was reaped"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn ttl_node_expires_when_unchanged_and_childless() {
    let server = Server::start_with(REAPER_CFG);
    block_on(TEST_LIMIT, async {
        let client = connect(&server.connect_string()).await;
        let ttl = Duration::from_millis(600);
        let created = Instant::now();
        client
            .create("/ttl-lone", b"", &open().with_ttl(ttl))
            .await
            .unwrap();
        client
            .create("/ttl-parent", b"", &open().with_ttl(ttl))
            .await
            .unwrap();
        client
            .create("/ttl-parent/kid", b"", &open())
            .await
            .unwrap();
        let (_, lone_watch) = client.check_and_watch_stat("/ttl-lone").await.unwrap();
        let deleted = fired(lone_watch, "the TTL node").await;
        assert_eq!(
            kind(&deleted),
            event(zk::EventType::NodeDeleted, "/ttl-lone")
        );
        assert!(
            created.elapsed() >= ttl,
            "deleted after {:?}, before its TTL",
            created.elapsed()
        );
        // A TTL node with a child outlives its TTL.
        let settle = Instant::now() + Duration::from_millis(600);
        while Instant::now() < settle {
            assert!(client.check_stat("/ttl-parent").await.unwrap().is_some());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A TTL node that keeps changing outlives its TTL too; left alone, it goes.
        client
            .create("/ttl-busy", b"", &open().with_ttl(ttl))
            .await
            .unwrap();
        let settle = Instant::now() + 2 * ttl;
        while Instant::now() < settle {
            client.set_data("/ttl-busy", b"tick", None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, busy_watch) = client.check_and_watch_stat("/ttl-busy").await.unwrap();
        let left_alone = Instant::now();
        let deleted = fired(busy_watch, "the TTL node left alone").await;
        assert_eq!(
            kind(&deleted),
            event(zk::EventType::NodeDeleted, "/ttl-busy")
        );
        assert!(
            left_alone.elapsed() >= ttl / 2,
            "deleted too soon after its last change"
        );

        let (_, parent_watch) = client.check_and_watch_stat("/ttl-parent").await.unwrap();
        client.delete("/ttl-parent/kid", None).await.unwrap();
        let deleted = fired(parent_watch, "the emptied TTL node").await;
        assert_eq!(
            kind(&deleted),
            event(zk::EventType::NodeDeleted, "/ttl-parent")
        );
    });
}

#[test]
fn ttl_nodes_need_extended_types() {
    let server = Server::start_with("");
    block_on(TEST_LIMIT, async {
        let client = connect(&server.connect_string()).await;
        let outcome = client
            .create("/ttl", b"", &open().with_ttl(Duration::from_secs(5)))
            .await;
        assert_eq!(outcome.unwrap_err(), zk::Error::Unimplemented);
    });
}

// --- watches -------------------------------------------------------------------------------------

fn exists_watch_on_missing_node_fires_created(server: &dyn ZkUnderTest) {
    block_on(TEST_LIMIT, async {
        let watcher = connect(&server.connect_string()).await;
        let writer = connect(&server.connect_string()).await;
        let (stat, watch) = watcher.check_and_watch_stat("/later").await.unwrap();
        assert_eq!(stat, None);
        writer.create("/later", b"x", &open()).await.unwrap();
        let created = fired(watch, "exists watch on a missing node").await;
        assert_eq!(kind(&created), event(zk::EventType::NodeCreated, "/later"));
    });
}
on_both!(
    exists_watch_fires_node_created,
    "",
    exists_watch_on_missing_node_fires_created
);

/// One-shot watches fire once: a second change reaches nobody. The raw client shows every
/// notification; a later reply on the same connection is the barrier after which no event for
/// an earlier change can still arrive.
fn one_shot_watches_fire_once(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut watcher = raw_client(addr);
    let mut writer = raw_client(addr);
    assert_eq!(raw_create(&mut writer, "/once", b"", 0), OK);

    let get = watcher
        .call(op::GET_DATA, &Body::new().string("/once").boolean(true))
        .unwrap();
    assert_eq!(get.err, OK);
    let children = watcher
        .call(op::GET_CHILDREN, &Body::new().string("/once").boolean(true))
        .unwrap();
    assert_eq!(children.err, OK);
    watcher.take_events();

    assert_eq!(raw_set(&mut writer, "/once", b"1"), OK);
    assert_eq!(raw_set(&mut writer, "/once", b"2"), OK);
    assert_eq!(raw_create(&mut writer, "/once/a", b"", 0), OK);
    assert_eq!(raw_create(&mut writer, "/once/b", b"", 0), OK);
    assert_eq!(raw_exists(&mut watcher, "/once", false).0, OK);
    assert_eq!(
        watcher.take_events(),
        vec![
            (NODE_DATA_CHANGED, "/once".to_string()),
            (NODE_CHILDREN_CHANGED, "/once".to_string())
        ]
    );
    watcher.close().unwrap();
    writer.close().unwrap();
}
on_both!(
    one_shot_data_and_child_watches_fire_once,
    "",
    one_shot_watches_fire_once
);

fn persistent_watch_keeps_firing(server: &dyn ZkUnderTest) {
    block_on(TEST_LIMIT, async {
        let client = connect(&server.connect_string()).await;
        let writer = connect(&server.connect_string()).await;
        writer.create("/pers", b"", &open()).await.unwrap();
        let mut watch = client
            .watch("/pers", zk::AddWatchMode::Persistent)
            .await
            .unwrap();
        writer.set_data("/pers", b"1", None).await.unwrap();
        writer.set_data("/pers", b"2", None).await.unwrap();
        writer.create("/pers/kid", b"", &open()).await.unwrap();
        writer.set_data("/pers/kid", b"x", None).await.unwrap();
        writer.delete("/pers/kid", None).await.unwrap();
        writer.delete("/pers", None).await.unwrap();
        writer.create("/pers", b"", &open()).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(kind(&next(&mut watch, "persistent watch").await));
        }
        assert_eq!(
            seen,
            vec![
                event(zk::EventType::NodeDataChanged, "/pers"),
                event(zk::EventType::NodeDataChanged, "/pers"),
                event(zk::EventType::NodeChildrenChanged, "/pers"),
                event(zk::EventType::NodeChildrenChanged, "/pers"),
                event(zk::EventType::NodeDeleted, "/pers"),
                event(zk::EventType::NodeCreated, "/pers"),
            ],
            "a persistent watch sees its own node's events, not its children's data"
        );
    });
}
on_both!(
    persistent_watch_fires_repeatedly,
    "",
    persistent_watch_keeps_firing
);

fn recursive_watch_reports_the_changed_path(server: &dyn ZkUnderTest) {
    block_on(TEST_LIMIT, async {
        let client = connect(&server.connect_string()).await;
        let writer = connect(&server.connect_string()).await;
        writer.create("/rec", b"", &open()).await.unwrap();
        let mut watch = client
            .watch("/rec", zk::AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        writer.create("/rec/a", b"", &open()).await.unwrap();
        writer.set_data("/rec/a", b"1", None).await.unwrap();
        writer.create("/rec/a/b", b"", &open()).await.unwrap();
        writer.set_data("/rec/a/b", b"2", None).await.unwrap();
        writer.delete("/rec/a/b", None).await.unwrap();
        writer.set_data("/rec", b"3", None).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(kind(&next(&mut watch, "recursive watch").await));
        }
        assert_eq!(
            seen,
            vec![
                event(zk::EventType::NodeCreated, "/rec/a"),
                event(zk::EventType::NodeDataChanged, "/rec/a"),
                event(zk::EventType::NodeCreated, "/rec/a/b"),
                event(zk::EventType::NodeDataChanged, "/rec/a/b"),
                event(zk::EventType::NodeDeleted, "/rec/a/b"),
                event(zk::EventType::NodeDataChanged, "/rec"),
            ],
            "recursive watches carry the changed path and never NodeChildrenChanged"
        );
    });
}
on_both!(
    recursive_watch_fires_for_the_subtree,
    "",
    recursive_watch_reports_the_changed_path
);

/// CVE-2024-23944: a recursive watch must not reveal the path of a child the watcher may not
/// read. Debian's 3.8.0 predates the fix, so this runs against our server alone.
#[test]
fn recursive_watch_does_not_reveal_unreadable_children() {
    let server = Server::start();
    let secret_acl = digest_id("owner", "pw");
    block_on(TEST_LIMIT, async {
        let watcher = connect(&server.connect_string()).await;
        let owner = connect(&server.connect_string()).await;
        owner.auth("digest", b"owner:pw").await.unwrap();
        owner.create("/guarded", b"", &open()).await.unwrap();
        let mut watch = watcher
            .watch("/guarded", zk::AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        let private = [zk::Acl::new(
            zk::Permission::ALL,
            zk::AuthId::new("digest", &secret_acl),
        )];
        owner
            .create(
                "/guarded/secret",
                b"",
                &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&private)),
            )
            .await
            .unwrap();
        owner
            .set_data("/guarded/secret", b"changed", None)
            .await
            .unwrap();
        owner.delete("/guarded/secret", None).await.unwrap();
        owner.create("/guarded/public", b"", &open()).await.unwrap();
        let first = next(&mut watch, "recursive watch").await;
        assert_eq!(
            kind(&first),
            event(zk::EventType::NodeCreated, "/guarded/public"),
            "the first event must be the readable child's; the unreadable one leaked"
        );
    });
}

/// checkWatches and removeWatches answer NoWatcher when there is nothing to check or remove.
fn check_and_remove_watches(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut client = raw_client(addr);
    assert_eq!(raw_create(&mut client, "/cw", b"", 0), OK);
    let check = |c: &mut RawClient, path: &str, t: i32| {
        c.call(op::CHECK_WATCHES, &Body::new().string(path).int(t))
            .unwrap()
            .err
    };
    let remove = |c: &mut RawClient, path: &str, t: i32| {
        c.call(op::REMOVE_WATCHES, &Body::new().string(path).int(t))
            .unwrap()
            .err
    };
    assert_eq!(check(&mut client, "/cw", watcher_type::DATA), NO_WATCHER);
    assert_eq!(remove(&mut client, "/cw", watcher_type::ANY), NO_WATCHER);

    assert_eq!(raw_exists(&mut client, "/cw", true).0, OK);
    assert_eq!(check(&mut client, "/cw", watcher_type::DATA), OK);
    assert_eq!(check(&mut client, "/cw", watcher_type::ANY), OK);
    assert_eq!(
        check(&mut client, "/cw", watcher_type::CHILDREN),
        NO_WATCHER
    );
    assert_eq!(
        remove(&mut client, "/cw", watcher_type::CHILDREN),
        NO_WATCHER
    );
    assert_eq!(remove(&mut client, "/cw", watcher_type::DATA), OK);
    assert_eq!(check(&mut client, "/cw", watcher_type::DATA), NO_WATCHER);
    assert_eq!(remove(&mut client, "/cw", watcher_type::DATA), NO_WATCHER);

    // A removed watch does not fire.
    assert_eq!(raw_set(&mut client, "/cw", b"x"), OK);
    assert_eq!(client.take_events(), Vec::<(i32, String)>::new());
    client.close().unwrap();
}
on_both!(
    check_and_remove_watches_report_no_watcher,
    "",
    check_and_remove_watches
);

/// A client that reconnects re-registers its watches with setWatches2 and the last zxid it saw;
/// the server fires, before answering, the watches whose node changed meanwhile, and keeps the
/// others.
fn set_watches_fires_changes_made_while_away(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut writer = raw_client(addr);
    for path in [
        "/sw", "/sw/data", "/sw/same", "/sw/kids", "/sw/gone", "/sw/pers",
    ] {
        assert_eq!(raw_create(&mut writer, path, b"", 0), OK);
    }
    let mut away = raw_client(addr);
    assert_eq!(raw_exists(&mut away, "/sw/data", true).0, OK);
    assert_eq!(raw_exists(&mut away, "/sw/same", true).0, OK);
    assert_eq!(raw_exists(&mut away, "/sw/missing", true).0, NO_NODE);
    assert_eq!(raw_exists(&mut away, "/sw/gone", true).0, OK);
    let kids = away
        .call(
            op::GET_CHILDREN,
            &Body::new().string("/sw/kids").boolean(true),
        )
        .unwrap();
    assert_eq!(kids.err, OK);
    let add_watch = away
        .call(op::ADD_WATCH, &Body::new().string("/sw/pers").int(0))
        .unwrap();
    assert_eq!(add_watch.err, OK);
    away.disconnect();

    assert_eq!(raw_set(&mut writer, "/sw/data", b"new"), OK);
    assert_eq!(raw_create(&mut writer, "/sw/missing", b"", 0), OK);
    assert_eq!(raw_create(&mut writer, "/sw/kids/k", b"", 0), OK);
    assert_eq!(raw_delete(&mut writer, "/sw/gone"), OK);

    let (mut back, answer) = away.reconnect(addr, IO_TIMEOUT).expect("reconnecting");
    assert_eq!(answer.session_id, away.session_id);
    let reply = back
        .set_watches2(
            away.last_zxid,
            &WatchSet {
                data: vec!["/sw/data", "/sw/same", "/sw/gone"],
                exist: vec!["/sw/missing"],
                child: vec!["/sw/kids"],
                persistent: vec!["/sw/pers"],
                persistent_recursive: vec![],
            },
        )
        .expect("setWatches2");
    assert_eq!(reply.err, OK);
    let mut fired = back.take_events();
    fired.sort();
    assert_eq!(
        fired,
        vec![
            (NODE_CREATED, "/sw/missing".to_string()),
            (NODE_DELETED, "/sw/gone".to_string()),
            (NODE_DATA_CHANGED, "/sw/data".to_string()),
            (NODE_CHILDREN_CHANGED, "/sw/kids".to_string()),
        ],
        "events fired by setWatches2, before its reply"
    );

    // The unchanged node's watch and the persistent watch were re-registered.
    assert_eq!(raw_set(&mut writer, "/sw/same", b"later"), OK);
    assert_eq!(raw_set(&mut writer, "/sw/pers", b"later"), OK);
    assert_eq!(raw_set(&mut writer, "/sw/pers", b"again"), OK);
    // The fired one-shot watches are gone.
    assert_eq!(raw_set(&mut writer, "/sw/data", b"newer"), OK);
    assert_eq!(raw_exists(&mut back, "/sw", false).0, OK);
    assert_eq!(
        back.take_events(),
        vec![
            (NODE_DATA_CHANGED, "/sw/same".to_string()),
            (NODE_DATA_CHANGED, "/sw/pers".to_string()),
            (NODE_DATA_CHANGED, "/sw/pers".to_string()),
        ]
    );
    back.close().unwrap();
    writer.close().unwrap();
}
on_both!(
    set_watches_on_reconnect_fires_missed_changes,
    "",
    set_watches_fires_changes_made_while_away
);

/// The order on one connection: a watch event comes before the reply that shows the client the
/// state after the change, whether the client made the change or another did.
fn event_precedes_the_reply_showing_the_change(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut client = raw_client(addr);
    let mut other = raw_client(addr);
    assert_eq!(raw_create(&mut client, "/order", b"", 0), OK);

    // The client's own write.
    assert_eq!(raw_exists(&mut client, "/order", true).0, OK);
    client.arrivals.clear();
    let set_xid = client
        .send(
            op::SET_DATA,
            &Body::new().string("/order").buffer(b"1").int(-1),
        )
        .unwrap();
    client.wait_reply(set_xid).unwrap();
    assert_eq!(
        client.arrivals,
        vec![
            Arrival::Event {
                event_type: NODE_DATA_CHANGED,
                state: 3,
                path: "/order".into()
            },
            Arrival::Reply {
                xid: set_xid,
                err: OK
            },
        ]
    );

    // Another client's write, then this client's read.
    assert_eq!(raw_exists(&mut client, "/order/kid", true).0, NO_NODE);
    client.arrivals.clear();
    assert_eq!(raw_create(&mut other, "/order/kid", b"k", 0), OK);
    let get_xid = client
        .send(
            op::GET_DATA,
            &Body::new().string("/order/kid").boolean(false),
        )
        .unwrap();
    let reply = client.wait_reply(get_xid).unwrap();
    assert_eq!(reply.err, OK);
    assert_eq!(
        client.arrivals,
        vec![
            Arrival::Event {
                event_type: NODE_CREATED,
                state: 3,
                path: "/order/kid".into()
            },
            Arrival::Reply {
                xid: get_xid,
                err: OK
            },
        ]
    );

    // Pipelined: a read that sets a watch, then a write that fires it, sent back to back.
    client.arrivals.clear();
    let get_xid = client
        .send(op::GET_DATA, &Body::new().string("/order").boolean(true))
        .unwrap();
    let set_xid = client
        .send(
            op::SET_DATA,
            &Body::new().string("/order").buffer(b"2").int(-1),
        )
        .unwrap();
    let get = client.wait_reply(get_xid).unwrap();
    assert_eq!(
        Reader::new(&get.body).buffer(),
        Some(b"1".to_vec()),
        "a read must not see the effect of a write sent after it"
    );
    client.wait_reply(set_xid).unwrap();
    assert_eq!(
        client.arrivals,
        vec![
            Arrival::Reply {
                xid: get_xid,
                err: OK
            },
            Arrival::Event {
                event_type: NODE_DATA_CHANGED,
                state: 3,
                path: "/order".into()
            },
            Arrival::Reply {
                xid: set_xid,
                err: OK
            },
        ]
    );
    client.close().unwrap();
    other.close().unwrap();
}
on_both!(
    watch_event_arrives_before_the_reply,
    "",
    event_precedes_the_reply_showing_the_change
);

// --- ACLs ----------------------------------------------------------------------------------------

fn acl(perms: zk::Permission, scheme: &str, id: &str) -> zk::Acl {
    zk::Acl::new(perms, zk::AuthId::new(scheme, id))
}

fn with_acl(acls: &[zk::Acl]) -> zk::CreateOptions<'_> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::new(acls))
}

fn acl_schemes(server: &dyn ZkUnderTest) {
    let alice = digest_id("alice", "pw");
    block_on(TEST_LIMIT, async {
        let anon = connect(&server.connect_string()).await;
        let alice_client = connect(&server.connect_string()).await;
        alice_client.auth("digest", b"alice:pw").await.unwrap();
        let bob = connect(&server.connect_string()).await;
        bob.auth("digest", b"bob:pw").await.unwrap();

        // world: read-only for anyone.
        let read_only = [acl(zk::Permission::READ, "world", "anyone")];
        anon.create("/world-ro", b"w", &with_acl(&read_only))
            .await
            .unwrap();
        assert_eq!(anon.get_data("/world-ro").await.unwrap().0, b"w");
        assert_eq!(
            anon.set_data("/world-ro", b"x", None).await.unwrap_err(),
            zk::Error::NoAuth
        );
        assert_eq!(
            anon.create("/world-ro/kid", b"", &open())
                .await
                .unwrap_err(),
            zk::Error::NoAuth
        );

        // digest: only alice.
        let alice_only = [acl(zk::Permission::ALL, "digest", &alice)];
        alice_client
            .create("/digest", b"d", &with_acl(&alice_only))
            .await
            .unwrap();
        assert_eq!(alice_client.get_data("/digest").await.unwrap().0, b"d");
        assert_eq!(
            anon.get_data("/digest").await.unwrap_err(),
            zk::Error::NoAuth
        );
        assert_eq!(
            bob.get_data("/digest").await.unwrap_err(),
            zk::Error::NoAuth
        );
        assert_eq!(
            bob.set_data("/digest", b"x", None).await.unwrap_err(),
            zk::Error::NoAuth
        );
        alice_client.set_data("/digest", b"d2", None).await.unwrap();

        // ip: this host, and a network we are not in.
        let here = [acl(zk::Permission::ALL, "ip", "127.0.0.0/8")];
        anon.create("/ip-here", b"i", &with_acl(&here))
            .await
            .unwrap();
        assert_eq!(anon.get_data("/ip-here").await.unwrap().0, b"i");
        let elsewhere = [acl(zk::Permission::ALL, "ip", "10.0.0.0/8")];
        anon.create("/ip-elsewhere", b"i", &with_acl(&elsewhere))
            .await
            .unwrap();
        assert_eq!(
            anon.get_data("/ip-elsewhere").await.unwrap_err(),
            zk::Error::NoAuth
        );

        // auth: the creator's authenticated ids, stored as digest ids.
        alice_client
            .create(
                "/auth",
                b"a",
                &zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all()),
            )
            .await
            .unwrap();
        let (acls, _) = alice_client.get_acl("/auth").await.unwrap();
        assert_eq!(acls, vec![acl(zk::Permission::ALL, "digest", &alice)]);
        assert_eq!(anon.get_data("/auth").await.unwrap_err(), zk::Error::NoAuth);
        assert_eq!(alice_client.get_data("/auth").await.unwrap().0, b"a");

        // setACL needs ADMIN; afterwards the new ACL rules.
        assert_eq!(
            bob.set_acl("/digest", &read_only, None).await.unwrap_err(),
            zk::Error::NoAuth
        );
        alice_client
            .set_acl("/digest", &read_only, None)
            .await
            .unwrap();
        assert_eq!(bob.get_data("/digest").await.unwrap().0, b"d2");
    });
}
on_both!(acl_world_digest_ip_auth_schemes, "", acl_schemes);

/// Apache 3.9 checks READ on exists (ZOOKEEPER-2590); 3.8.0 did not, so this runs against our
/// server alone.
#[test]
fn exists_without_read_permission_is_no_auth() {
    let server = Server::start();
    let alice = digest_id("alice", "pw");
    block_on(TEST_LIMIT, async {
        let owner = connect(&server.connect_string()).await;
        owner.auth("digest", b"alice:pw").await.unwrap();
        let anon = connect(&server.connect_string()).await;
        let private = [acl(zk::Permission::ALL, "digest", &alice)];
        owner
            .create("/hidden", b"", &with_acl(&private))
            .await
            .unwrap();
        assert_eq!(
            anon.check_stat("/hidden").await.unwrap_err(),
            zk::Error::NoAuth
        );
        assert!(owner.check_stat("/hidden").await.unwrap().is_some());
        // A missing node is still NoNode for anyone.
        assert_eq!(anon.check_stat("/hidden-not").await.unwrap(), None);
    });
}

fn get_acl_hides_digests_without_admin(server: &dyn ZkUnderTest) {
    let alice = digest_id("alice", "pw");
    block_on(TEST_LIMIT, async {
        let owner = connect(&server.connect_string()).await;
        owner.auth("digest", b"alice:pw").await.unwrap();
        let anon = connect(&server.connect_string()).await;
        let readable = [
            acl(zk::Permission::READ, "world", "anyone"),
            acl(zk::Permission::ALL, "digest", &alice),
        ];
        owner
            .create("/acl-r", b"", &with_acl(&readable))
            .await
            .unwrap();
        assert_eq!(
            anon.get_acl("/acl-r").await.unwrap().0,
            vec![
                acl(zk::Permission::READ, "world", "anyone"),
                acl(zk::Permission::ALL, "digest", "alice:x"),
            ],
            "without ADMIN the hash is masked"
        );
        assert_eq!(owner.get_acl("/acl-r").await.unwrap().0, readable.to_vec());

        let admin = [
            acl(zk::Permission::ADMIN, "world", "anyone"),
            acl(zk::Permission::ALL, "digest", &alice),
        ];
        owner
            .create("/acl-a", b"", &with_acl(&admin))
            .await
            .unwrap();
        assert_eq!(anon.get_acl("/acl-a").await.unwrap().0, admin.to_vec());

        let private = [acl(zk::Permission::ALL, "digest", &alice)];
        owner
            .create("/acl-p", b"", &with_acl(&private))
            .await
            .unwrap();
        assert_eq!(
            anon.get_acl("/acl-p").await.unwrap_err(),
            zk::Error::NoAuth,
            "getACL needs READ or ADMIN"
        );
    });
}
on_both!(
    get_acl_masks_digest_hashes_without_admin,
    "",
    get_acl_hides_digests_without_admin
);

fn super_digest_cfg() -> String {
    format!(
        "DigestAuthenticationProvider.superDigest={}",
        digest_id("super", "secret")
    )
}

fn super_user_bypasses_acls(server: &dyn ZkUnderTest) {
    let alice = digest_id("alice", "pw");
    block_on(TEST_LIMIT, async {
        let owner = connect(&server.connect_string()).await;
        owner.auth("digest", b"alice:pw").await.unwrap();
        let private = [acl(zk::Permission::ALL, "digest", &alice)];
        owner
            .create("/vault", b"v", &with_acl(&private))
            .await
            .unwrap();
        owner
            .create("/vault/kid", b"", &with_acl(&private))
            .await
            .unwrap();
        let nobody = connect(&server.connect_string()).await;
        nobody.auth("digest", b"super:wrong").await.unwrap();
        assert_eq!(
            nobody.get_data("/vault").await.unwrap_err(),
            zk::Error::NoAuth
        );

        let root = connect(&server.connect_string()).await;
        root.auth("digest", b"super:secret").await.unwrap();
        assert_eq!(root.get_data("/vault").await.unwrap().0, b"v");
        root.set_data("/vault", b"root was here", None)
            .await
            .unwrap();
        assert_eq!(
            root.get_acl("/vault").await.unwrap().0,
            private.to_vec(),
            "the super user sees the real ACL"
        );
        root.delete("/vault/kid", None).await.unwrap();
        root.delete("/vault", None).await.unwrap();
    });
}

on_both!(
    super_digest_bypasses_acls,
    super_digest_cfg(),
    super_user_bypasses_acls
);

fn skip_acl_disables_checks(server: &dyn ZkUnderTest) {
    let alice = digest_id("alice", "pw");
    block_on(TEST_LIMIT, async {
        let owner = connect(&server.connect_string()).await;
        owner.auth("digest", b"alice:pw").await.unwrap();
        let private = [acl(zk::Permission::ALL, "digest", &alice)];
        owner
            .create("/open-anyway", b"o", &with_acl(&private))
            .await
            .unwrap();
        let anon = connect(&server.connect_string()).await;
        assert_eq!(anon.get_data("/open-anyway").await.unwrap().0, b"o");
        anon.set_data("/open-anyway", b"x", None).await.unwrap();
        anon.create("/open-anyway/kid", b"", &open()).await.unwrap();
        anon.delete("/open-anyway/kid", None).await.unwrap();
        anon.delete("/open-anyway", None).await.unwrap();
    });
}
on_both!(
    skip_acl_yes_disables_checks,
    "skipACL=yes",
    skip_acl_disables_checks
);

// --- quotas --------------------------------------------------------------------------------------

/// Sets a hard quota on `path` the way `zkCli.sh setquota -N/-B` does: a limits node with the
/// 3.7+ format and a usage node the server fills in.
async fn set_hard_quota(client: &zk::Client, path: &str, count: i64, bytes: i64) {
    let quota_node = format!("/zookeeper/quota{path}");
    client.create(&quota_node, b"", &open()).await.unwrap();
    let limits = format!("count=-1,bytes=-1=;byteHardLimit={bytes};countHardLimit={count}");
    client
        .create(
            &format!("{quota_node}/zookeeper_limits"),
            limits.as_bytes(),
            &open(),
        )
        .await
        .unwrap();
    client
        .create(
            &format!("{quota_node}/zookeeper_stats"),
            b"count=0,bytes=0",
            &open(),
        )
        .await
        .unwrap();
}

fn quotas(server: &dyn ZkUnderTest, enforced: bool) {
    block_on(TEST_LIMIT, async {
        let client = connect(&server.connect_string()).await;
        client.create("/qc", b"", &open()).await.unwrap();
        client.create("/qb", b"", &open()).await.unwrap();
        set_hard_quota(&client, "/qc", 3, -1).await;
        set_hard_quota(&client, "/qb", -1, 10).await;

        // Count: /qc itself and two children fill a quota of three.
        client.create("/qc/a", b"", &open()).await.unwrap();
        client.create("/qc/b", b"", &open()).await.unwrap();
        let third = client.create("/qc/c", b"", &open()).await;
        // Bytes: 6 fit, 6 + 5 do not; growing to exactly 10 fits, 11 does not.
        client.create("/qb/a", b"123456", &open()).await.unwrap();
        let over_bytes = client.create("/qb/b", b"12345", &open()).await;
        client.set_data("/qb/a", b"1234567890", None).await.unwrap();
        let grow = client.set_data("/qb/a", b"12345678901", None).await;
        if enforced {
            assert_eq!(third.unwrap_err(), zk::Error::QuotaExceeded);
            assert_eq!(over_bytes.unwrap_err(), zk::Error::QuotaExceeded);
            assert_eq!(grow.unwrap_err(), zk::Error::QuotaExceeded);
            assert_eq!(client.check_stat("/qc/c").await.unwrap(), None);
            assert_eq!(client.get_data("/qb/a").await.unwrap().0, b"1234567890");
        } else {
            third.unwrap();
            over_bytes.unwrap();
            grow.unwrap();
        }
        // Deleting makes room again.
        client.delete("/qc/b", None).await.unwrap();
        client.create("/qc/d", b"", &open()).await.unwrap();
    });
}

fn quotas_enforced(server: &dyn ZkUnderTest) {
    quotas(server, true)
}

fn quotas_advisory(server: &dyn ZkUnderTest) {
    quotas(server, false)
}
on_both!(hard_quota_enforced, "enforceQuota=true", quotas_enforced);

/// The quota set by Apache's own `setquota` is the one enforced, and `listquota` reads back
/// what the server keeps.
fn zkcli_setquota_is_enforced(server: &dyn ZkUnderTest) {
    if !zkcli_available() {
        return;
    }
    let output = zkcli_script(
        server.addr(),
        "create /zq\nsetquota -N 2 /zq\nlistquota /zq\nquit\n",
    );
    assert!(
        output
            .contains("Output quota for /zq count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2"),
        "{}: listquota shows the hard limit:\n{output}",
        server.name()
    );
    assert!(
        output.contains("Output stat for /zq count=1,bytes=0"),
        "{}: listquota shows the usage:\n{output}",
        server.name()
    );
    block_on(TEST_LIMIT, async {
        let client = connect(&server.connect_string()).await;
        client.create("/zq/a", b"", &open()).await.unwrap();
        assert_eq!(
            client.create("/zq/b", b"", &open()).await.unwrap_err(),
            zk::Error::QuotaExceeded
        );
    });
}
on_both!(
    zkcli_setquota_hard_count_is_enforced,
    "enforceQuota=true",
    zkcli_setquota_is_enforced
);
on_both!(hard_quota_not_enforced_by_default, "", quotas_advisory);
