//! The client module (`zookeeper_rs::client`) against our server: calls,
//! watches, chroot, credentials, and reconnection across the server list.

mod common;

use std::time::Duration;

use common::{Server, ZkUnderTest};
use zookeeper_rs::client::{Client, ClientOptions, Error, Events, SessionState, WatchedEvent};
use zookeeper_rs::proto::{
    Acl, AddWatchMode, CreateMode, ErrorCode, EventType, Id, KeeperState, MultiOp, MultiResult,
    WatcherType,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn options() -> ClientOptions {
    ClientOptions {
        session_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

/// The next event that is not a session state change.
async fn next_node_event(events: &mut Events) -> WatchedEvent {
    loop {
        let event = tokio::time::timeout(EVENT_TIMEOUT, events.recv())
            .await
            .expect("an event in time")
            .expect("the event stream is open");
        if event.event_type != EventType::None {
            return event;
        }
    }
}

/// Waits for a session state event.
async fn wait_state(events: &mut Events, state: KeeperState) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {state:?} event in time"))
            .expect("the event stream is open");
        if event.event_type == EventType::None && event.state == state {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_watches_and_errors() {
    let server = Server::start();
    let (client, mut events) = Client::connect(&server.connect_string(), options())
        .await
        .unwrap();
    let first = events.recv().await.unwrap();
    assert_eq!(first, WatchedEvent::state(KeeperState::SyncConnected));
    assert_eq!(
        first.to_string(),
        "WatchedEvent state:SyncConnected type:None path:null zxid: -1"
    );
    let acl = Acl::open_unsafe();
    assert_eq!(
        client
            .create("/a", b"one", &acl, CreateMode::Persistent)
            .await
            .unwrap(),
        "/a"
    );
    let seq = client
        .create("/a/s-", b"", &acl, CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(seq, "/a/s-0000000000");
    let err = client
        .create("/a", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::NodeExists), "{err:?}");
    assert_eq!(err.to_string(), "KeeperErrorCode = NodeExists for /a");
    assert!(matches!(
        client.get_data("a", false).await,
        Err(Error::InvalidPath(_))
    ));

    let (data, stat) = client.get_data("/a", true).await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"one"[..], 0));
    assert_eq!(client.exists("/missing", true).await.unwrap(), None);
    client.get_children("/a", true).await.unwrap();
    let counts = client.watch_counts().await;
    assert_eq!((counts.data, counts.exist, counts.child), (1, 1, 1));

    let stat = client.set_data("/a", b"two", Some(0)).await.unwrap();
    assert_eq!(stat.version, 1);
    let event = next_node_event(&mut events).await;
    assert_eq!(
        (event.event_type, event.path.as_deref()),
        (EventType::NodeDataChanged, Some("/a"))
    );
    assert_eq!(event.zxid, stat.mzxid);

    client
        .create("/missing", b"", &acl, CreateMode::Ephemeral)
        .await
        .unwrap();
    let event = next_node_event(&mut events).await;
    assert_eq!(
        (event.event_type, event.path.as_deref()),
        (EventType::NodeCreated, Some("/missing"))
    );
    assert_eq!(
        client.get_ephemerals("/").await.unwrap(),
        vec!["/missing".to_string()]
    );

    let (children, stat) = client.get_children2("/a", false).await.unwrap();
    assert_eq!((children.len(), stat.num_children), (1, 1));
    assert_eq!(client.get_all_children_number("/a").await.unwrap(), 1);

    // The child watch on /a is still set: removing it reports the removal.
    client
        .remove_watches("/a", WatcherType::Children, false)
        .await
        .unwrap();
    let event = next_node_event(&mut events).await;
    assert_eq!(event.event_type, EventType::ChildWatchRemoved);
    let err = client
        .remove_watches("/a", WatcherType::Children, false)
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::NoWatcher), "{err:?}");

    // A failing multi names its failing operation and applies nothing.
    let err = client
        .multi(vec![
            MultiOp::Delete {
                path: seq.clone(),
                version: -1,
            },
            MultiOp::Check {
                path: "/a".into(),
                version: 99,
            },
        ])
        .await
        .unwrap_err();
    match err {
        Error::Multi { index, code, .. } => {
            assert_eq!((index, code), (1, ErrorCode::BadVersion.code()))
        }
        other => panic!("expected a multi error, got {other:?}"),
    }
    assert!(client.exists(&seq, false).await.unwrap().is_some());
    let results = client
        .multi(vec![MultiOp::Delete {
            path: seq.clone(),
            version: -1,
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![MultiResult::Delete]);

    client
        .add_watch("/a", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    client
        .create("/a/deep", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    let event = next_node_event(&mut events).await;
    assert_eq!(
        (event.event_type, event.path.as_deref()),
        (EventType::NodeCreated, Some("/a/deep"))
    );

    assert_eq!(client.sync("/a").await.unwrap(), "/a");
    let who = client.who_am_i().await.unwrap();
    assert_eq!(who.len(), 1);
    assert_eq!(who[0].auth_scheme, "ip");

    client.close().await.unwrap();
    assert_eq!(client.state(), SessionState::Closed);
    wait_state(&mut events, KeeperState::Closed).await;
    assert!(matches!(
        client.get_data("/a", false).await,
        Err(Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chroot_and_credentials() {
    let server = Server::start();
    let (root, _) = Client::connect(&server.connect_string(), options())
        .await
        .unwrap();
    let acl = Acl::open_unsafe();
    root.create("/app", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();

    let (client, mut events) =
        Client::connect(&format!("{}/app", server.connect_string()), options())
            .await
            .unwrap();
    assert_eq!(
        client
            .create("/x", b"1", &acl, CreateMode::Persistent)
            .await
            .unwrap(),
        "/x"
    );
    assert_eq!(root.get_data("/app/x", false).await.unwrap().0, b"1");
    assert_eq!(
        client.get_children("/", true).await.unwrap(),
        vec!["x".to_string()]
    );
    root.create("/app/y", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    let event = next_node_event(&mut events).await;
    assert_eq!(
        (event.event_type, event.path.as_deref()),
        (EventType::NodeChildrenChanged, Some("/"))
    );

    client.add_auth("digest", b"carol:pw").await.unwrap();
    let digest = zookeeper_rs::acl::digest("carol:pw");
    let secret = vec![Acl {
        perms: zookeeper_rs::proto::perms::ALL,
        id: Id::new("digest", digest),
    }];
    client
        .create("/secret", b"s", &secret, CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(client.get_data("/secret", false).await.unwrap().0, b"s");
    let err = root.get_data("/app/secret", false).await.unwrap_err();
    assert!(err.is(ErrorCode::NoAuth), "{err:?}");
    assert_eq!(err.to_string(), "KeeperErrorCode = NoAuth for /app/secret");
}

/// A TCP relay to a server whose connections can all be cut at once, to
/// make a client lose its connection without stopping the server.
struct Relay {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                links.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { addr, task }
    }

    /// Closes the listener and every relayed connection.
    fn cut(self) {
        // Aborting the task drops the listener and the JoinSet, which
        // aborts every link.
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_across_the_list_and_resumes_the_session() {
    let server = Server::start();
    let relay = Relay::start(server.addr()).await;
    let connect_string = format!("{},{}", relay.addr, server.connect_string());
    let (client, mut events) = Client::connect(&connect_string, options()).await.unwrap();
    wait_state(&mut events, KeeperState::SyncConnected).await;
    let session = client.session_id();
    assert_eq!(client.status().server, Some(relay.addr));

    let acl = Acl::open_unsafe();
    client
        .create("/w", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    client
        .create("/eph", b"", &acl, CreateMode::Ephemeral)
        .await
        .unwrap();
    client.get_data("/w", true).await.unwrap();
    client
        .add_watch("/w", AddWatchMode::Persistent)
        .await
        .unwrap();
    client.add_auth("digest", b"dave:pw").await.unwrap();

    relay.cut();
    wait_state(&mut events, KeeperState::Disconnected).await;
    wait_state(&mut events, KeeperState::SyncConnected).await;
    assert_eq!(client.session_id(), session, "the session was resumed");
    assert_eq!(client.state(), SessionState::Connected);
    assert_eq!(client.status().server, Some(server.addr()));
    assert!(client.exists("/eph", false).await.unwrap().is_some());
    let who = client.who_am_i().await.unwrap();
    assert!(
        who.iter()
            .any(|c| c.auth_scheme == "digest" && c.user == "dave"),
        "credentials were sent again: {who:?}"
    );

    // Both watches were re-registered: one change fires the data watch and
    // the persistent one, and only the persistent one stays.
    let (other, _) = Client::connect(&server.connect_string(), options())
        .await
        .unwrap();
    other.set_data("/w", b"x", None).await.unwrap();
    let event = next_node_event(&mut events).await;
    assert_eq!(
        (event.event_type, event.path.as_deref()),
        (EventType::NodeDataChanged, Some("/w"))
    );
    let counts = client.watch_counts().await;
    assert_eq!((counts.data, counts.persistent), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_servers_fail_in_bounded_time() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let started = std::time::Instant::now();
    let opts = ClientOptions {
        session_timeout: Duration::from_secs(2),
        ..options()
    };
    let err = Client::connect(&addr.to_string(), opts).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words() {
    let server = Server::start();
    let answer =
        zookeeper_rs::client::four_letter(&server.connect_string(), "ruok", Duration::from_secs(5))
            .await
            .unwrap();
    assert_eq!(answer, "imok");
}
