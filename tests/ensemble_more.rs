//! More ensembles of real zookeeper-rs processes on 127.0.0.1: quorum
//! arithmetic with five voters, catching up by snapshot transfer, sessions
//! moving between members, the lastZxidSeen check, and sessions and
//! ephemerals across the leader's death.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::ensemble::{client, open, runtime, Ensemble};
use common::raw::{self, Body, ConnectParams, RawClient};
use common::{four_letter_at, wait_until};
use zookeeper_client as zk;

/// Bound on elections, catch-up and every other wait.
const PHASE: Duration = Duration::from_secs(60);

fn transient(e: &zk::Error) -> bool {
    // A connection reset while a request is in flight comes as an I/O error.
    matches!(
        e,
        zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::NoHosts | zk::Error::Custom(_)
    )
}

/// Creates `path` (persistent), retrying connection loss; a create that
/// finds the node created by its own lost attempt counts as done.
async fn create_retrying(c: &zk::Client, path: &str, data: &[u8]) {
    let deadline = Instant::now() + PHASE;
    loop {
        match c.create(path, data, &open()).await {
            Ok(_) => return,
            Err(zk::Error::NodeExists) => return,
            Err(e) if transient(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("creating {path}: {e}"),
        }
    }
}

fn zxid_of(ensemble: &Ensemble, index: usize) -> Option<i64> {
    let text = ensemble.zxid(index)?;
    i64::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

/// Every znode under `/` with its data and Stat, read after a sync.
async fn dump(c: &zk::Client) -> BTreeMap<String, (Vec<u8>, zk::Stat)> {
    c.sync("/").await.unwrap();
    let mut tree = BTreeMap::new();
    let mut pending = vec!["/".to_owned()];
    while let Some(path) = pending.pop() {
        let (data, stat) = c.get_data(&path).await.unwrap();
        for child in c.list_children(&path).await.unwrap() {
            pending.push(if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            });
        }
        tree.insert(path, (data, stat));
    }
    tree
}

/// The member a session is connected to, from `cons`.
fn member_holding(ensemble: &Ensemble, session: i64) -> Option<usize> {
    let needle = format!("sid=0x{session:x}");
    ensemble.running().into_iter().find(|i| {
        four_letter_at(ensemble.members[*i].client, "cons")
            .map(|c| c.contains(&needle))
            .unwrap_or(false)
    })
}

#[test]
fn five_voters_write_with_two_down_refuse_with_three_down_and_the_lost_catch_up() {
    let mut ensemble = Ensemble::start(5, 0);
    let leader = ensemble.wait_for_roles(PHASE);
    let cs = ensemble.connect_string_all();
    let rt = runtime();
    rt.block_on(async {
        let c = client(&cs).await;
        create_retrying(&c, "/five", b"").await;
    });
    // The leader and one follower go: three of five are a quorum.
    let first_down = [leader, (leader + 1) % 5];
    for i in first_down {
        ensemble.kill(i);
    }
    let survivors: Vec<usize> = ensemble.running();
    ensemble.wait_for_roles(PHASE);
    let survivors_cs = survivors
        .iter()
        .map(|i| ensemble.connect_string(*i))
        .collect::<Vec<_>>()
        .join(",");
    let c = rt.block_on(async {
        let c = client(&survivors_cs).await;
        for n in 0..20 {
            create_retrying(&c, &format!("/five/n{n:02}"), b"with two down").await;
        }
        c
    });
    // A third member goes: two of five are not a quorum. The session was
    // made before, since without a quorum none can be created.
    ensemble.kill(survivors[0]);
    let refused = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(20),
            c.create("/five/no-quorum", b"", &open()),
        )
        .await
        .map(|r| r.is_err())
        .unwrap_or(true)
    });
    assert!(refused, "a write was accepted by two voters of five");
    drop(c);
    // Everyone comes back; the three that were down catch up.
    for i in [first_down[0], first_down[1], survivors[0]] {
        ensemble.launch(i);
    }
    ensemble.wait_for_roles(PHASE);
    rt.block_on(async {
        for i in 0..5 {
            let c = client(&ensemble.connect_string(i)).await;
            c.sync("/").await.unwrap();
            let children = c.list_children("/five").await.unwrap();
            for n in 0..20 {
                assert!(
                    children.contains(&format!("n{n:02}")),
                    "member {i} lacks n{n:02}: {children:?}"
                );
            }
        }
    });
    assert!(
        ensemble.wait_for_same_zxid(PHASE),
        "the members did not converge:\n{}",
        ensemble.logs()
    );
}

#[test]
fn a_follower_that_missed_more_than_the_log_keeps_is_sent_a_snapshot() {
    // Snapshots every 50 entries keeping 10 before them: a member that
    // misses a few hundred writes cannot catch up from the log alone.
    let mut ensemble = Ensemble::start_with(3, 0, "snapCount=50\ncommitLogCount=10\n");
    let leader = ensemble.wait_for_roles(PHASE);
    let behind = (leader + 1) % 3;
    ensemble.kill(behind);
    let rt = runtime();
    rt.block_on(async {
        let c = client(&ensemble.connect_string(leader)).await;
        c.create("/bulk", b"", &open()).await.unwrap();
        for n in 0..300 {
            let path = format!("/bulk/n{n:03}");
            c.create(&path, format!("v{n}").as_bytes(), &open())
                .await
                .unwrap();
            if n % 3 == 0 {
                c.set_data(&path, b"changed", None).await.unwrap();
            }
            if n % 5 == 0 {
                c.delete(&path, None).await.unwrap();
            }
        }
    });
    ensemble.launch(behind);
    ensemble.wait_for_roles(PHASE);
    let installed = wait_until(
        || {
            ensemble
                .log_of(behind)
                .contains("installed a snapshot from the leader")
        },
        PHASE,
    );
    assert!(
        installed,
        "member {behind} caught up without a snapshot transfer:\n{}",
        ensemble.logs()
    );
    assert!(ensemble.wait_for_same_zxid(PHASE), "{}", ensemble.logs());
    rt.block_on(async {
        let on_leader = dump(&client(&ensemble.connect_string(leader)).await).await;
        let on_behind = dump(&client(&ensemble.connect_string(behind)).await).await;
        assert_eq!(on_leader.len(), on_behind.len());
        for (path, (data, stat)) in &on_leader {
            let theirs = on_behind
                .get(path)
                .unwrap_or_else(|| panic!("{path} missing on member {behind}"));
            assert_eq!(&theirs.0, data, "data of {path}");
            assert_eq!(&theirs.1, stat, "Stat of {path}");
        }
        assert!(on_leader.contains_key("/bulk/n299"));
        assert!(!on_leader.contains_key("/bulk/n295"));
    });
}

#[test]
fn a_session_moves_to_another_member_with_its_ephemeral_and_watches() {
    let mut ensemble = Ensemble::start(3, 0);
    ensemble.wait_for_roles(PHASE);
    let cs = ensemble.connect_string_all();
    let rt = runtime();
    let (c, session) = rt.block_on(async {
        let c = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&cs)
            .await
            .unwrap();
        let session = c.session_id().0;
        (c, session)
    });
    let mut on = None;
    assert!(
        wait_until(
            || {
                on = member_holding(&ensemble, session);
                on.is_some()
            },
            PHASE
        ),
        "no member lists session 0x{session:x}"
    );
    let first = on.unwrap();
    let (data_watch, child_watch) = rt.block_on(async {
        create_retrying(&c, "/watched", b"before").await;
        c.create(
            "/moving",
            b"",
            &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
        let (_, _, data_watch) = c.get_and_watch_data("/watched").await.unwrap();
        let (_, child_watch) = c.list_and_watch_children("/watched").await.unwrap();
        (data_watch, child_watch)
    });
    ensemble.kill(first);
    ensemble.wait_for_roles(PHASE);
    rt.block_on(async {
        let other = client(&ensemble.connect_string((first + 1) % 3)).await;
        // The session must be resumed elsewhere before its timeout.
        let resumed = tokio::time::timeout(PHASE, async {
            loop {
                if c.check_stat("/watched").await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(resumed.is_ok(), "the client never resumed its session");
        assert_eq!(c.session_id().0, session, "the client got a new session");
        let stat = other.check_stat("/moving").await.unwrap();
        assert_eq!(
            stat.map(|s| s.ephemeral_owner),
            Some(session),
            "the ephemeral did not survive the move"
        );
        create_retrying(&other, "/watched/child", b"").await;
        other.set_data("/watched", b"after", None).await.unwrap();
        let data_event = tokio::time::timeout(PHASE, data_watch.changed())
            .await
            .expect("the data watch did not fire after the move");
        assert_eq!(data_event.event_type, zk::EventType::NodeDataChanged);
        assert_eq!(data_event.path, "/watched");
        let child_event = tokio::time::timeout(PHASE, child_watch.changed())
            .await
            .expect("the child watch did not fire after the move");
        assert_eq!(child_event.event_type, zk::EventType::NodeChildrenChanged);
    });
    let now_on = member_holding(&ensemble, session);
    assert!(
        now_on.is_some() && now_on != Some(first),
        "session 0x{session:x} is on {now_on:?}"
    );
}

#[test]
fn a_member_refuses_a_client_that_has_seen_a_later_zxid() {
    let ensemble = Ensemble::start(3, 0);
    ensemble.wait_for_roles(PHASE);
    let member = 0;
    let ours = zxid_of(&ensemble, member).expect("a zxid from srvr");
    let params = ConnectParams {
        last_zxid_seen: ours + (1 << 40),
        ..ConnectParams::default()
    };
    // Apache closes the connection without a session (processConnectRequest
    // throws CloseRequestException).
    match RawClient::connect_with(ensemble.members[member].client, PHASE, &params) {
        Err(_) => {}
        Ok((_, answer)) => panic!("a session from the future was answered: {answer:?}"),
    }
    // The member still serves an honest client.
    let honest = ConnectParams {
        last_zxid_seen: ours,
        ..ConnectParams::default()
    };
    let (session, answer) =
        RawClient::connect_with(ensemble.members[member].client, PHASE, &honest).unwrap();
    assert!(
        answer.timeout_ms > 0 && answer.session_id != 0,
        "{answer:?}"
    );
    // Resuming a session is checked the same way, and the refusal leaves the
    // session itself alone.
    let resume = |last_zxid_seen| ConnectParams {
        last_zxid_seen,
        timeout_ms: session.negotiated_timeout,
        session_id: session.session_id,
        password: session.password.clone(),
        ..ConnectParams::default()
    };
    let addr = ensemble.members[member].client;
    if let Ok((_, answer)) = RawClient::connect_with(addr, PHASE, &resume(ours + (1 << 40))) {
        panic!("a resumed session from the future was answered: {answer:?}");
    }
    let (_, answer) = RawClient::connect_with(addr, PHASE, &resume(ours)).unwrap();
    assert_eq!(answer.session_id, session.session_id, "{answer:?}");
    assert!(answer.timeout_ms > 0, "{answer:?}");
}

#[test]
fn a_client_never_goes_back_in_time_on_a_member_that_was_frozen() {
    let ensemble = Ensemble::start(3, 0);
    let leader = ensemble.wait_for_roles(PHASE);
    let frozen = (leader + 1) % 3;
    let rt = runtime();
    rt.block_on(async {
        let c = client(&ensemble.connect_string(leader)).await;
        c.create("/time", b"", &open()).await.unwrap();
    });
    ensemble.pause(frozen);
    let seen = rt.block_on(async {
        let c = client(&ensemble.connect_string(leader)).await;
        let mut last = 0;
        for n in 0..200 {
            let (stat, _) = c
                .create(&format!("/time/n{n:03}"), b"", &open())
                .await
                .unwrap();
            last = stat.czxid;
        }
        last
    });
    ensemble.resume(frozen);
    let addr = ensemble.members[frozen].client;
    let params = ConnectParams {
        last_zxid_seen: seen,
        ..ConnectParams::default()
    };
    // At once, while it may still be catching up, and then until it serves.
    let mut refusals = 0;
    let deadline = Instant::now() + PHASE;
    loop {
        match RawClient::connect_with(addr, Duration::from_secs(10), &params) {
            Ok((mut session, answer)) if answer.timeout_ms > 0 => {
                // Served: it must hold everything the client saw.
                let reply = session
                    .call(
                        raw::op::EXISTS,
                        &Body::new().string("/time/n199").boolean(false),
                    )
                    .unwrap();
                assert_eq!(
                    reply.err, 0,
                    "a member that accepted zxid 0x{seen:x} lacks /time/n199"
                );
                assert!(
                    reply.zxid >= seen,
                    "answered at zxid 0x{:x}, behind 0x{seen:x}",
                    reply.zxid
                );
                break;
            }
            Ok((_, answer)) => panic!("an unexpected refusal: {answer:?}"),
            Err(_) => {
                refusals += 1;
                assert!(
                    Instant::now() < deadline,
                    "member {frozen} never caught up to 0x{seen:x}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    println!("{refusals} refusal(s) before the thawed member had caught up");
}

#[test]
fn an_ephemeral_made_through_a_follower_outlives_the_leader_and_not_its_session() {
    let mut ensemble = Ensemble::start(3, 0);
    let leader = ensemble.wait_for_roles(PHASE);
    let follower = (leader + 1) % 3;
    let rt = runtime();
    let (c, session) = rt.block_on(async {
        let c = client(&ensemble.connect_string(follower)).await;
        c.create(
            "/eph",
            b"",
            &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
        let session = c.session_id().0;
        (c, session)
    });
    ensemble.kill(leader);
    let new_leader = ensemble.wait_for_roles(PHASE);
    assert_ne!(new_leader, leader);
    // Past a session timeout under the new leader, the session lives on.
    std::thread::sleep(c.session_timeout() + Duration::from_secs(1));
    ensemble.launch(leader);
    ensemble.wait_for_roles(PHASE);
    rt.block_on(async {
        assert!(c.check_stat("/").await.is_ok(), "the session died");
        for i in 0..3 {
            let other = client(&ensemble.connect_string(i)).await;
            other.sync("/").await.unwrap();
            let stat = other.check_stat("/eph").await.unwrap();
            assert_eq!(
                stat.map(|s| s.ephemeral_owner),
                Some(session),
                "member {i} lost the ephemeral"
            );
        }
    });
    drop(c);
    rt.block_on(async {
        for i in 0..3 {
            let other = client(&ensemble.connect_string(i)).await;
            let gone = tokio::time::timeout(PHASE, async {
                loop {
                    other.sync("/").await.unwrap();
                    if other.check_stat("/eph").await.unwrap().is_none() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await;
            assert!(
                gone.is_ok(),
                "member {i} kept the ephemeral of a closed session"
            );
        }
    });
}

#[test]
fn a_sync_that_cannot_reach_the_leader_is_not_answered_ok() {
    let mut ensemble = Ensemble::start(3, 0);
    let leader = ensemble.wait_for_roles(PHASE);
    let follower = (leader + 1) % 3;
    let rt = runtime();
    let c = rt.block_on(client(&ensemble.connect_string(follower)));
    rt.block_on(async { c.sync("/").await.unwrap() });
    // Alone, the follower cannot learn what the ensemble committed: a sync
    // answered OK would promise reads it cannot give.
    ensemble.kill(leader);
    ensemble.kill((leader + 2) % 3);
    let answer = rt.block_on(async { tokio::time::timeout(PHASE, c.sync("/")).await });
    assert!(
        !matches!(answer, Ok(Ok(()))),
        "a member cut off from its leader answered a sync OK"
    );
}
