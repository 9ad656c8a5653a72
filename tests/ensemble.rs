//! Ensembles of real zookeeper-rs processes on 127.0.0.1, configured with
//! Apache's `server.N` lines and `myid` files: replication, roles, failover,
//! rejoining, sessions on followers and observers.

mod common;

use std::time::{Duration, Instant};

use common::ensemble::{client, open, runtime, Ensemble, TICK_MS};
use common::{four_letter_at, wait_until};
use zookeeper_client as zk;

#[test]
fn writes_through_any_member_are_read_from_all_after_sync() {
    let ensemble = Ensemble::start(3, 0);
    let leader = ensemble.wait_for_roles(Duration::from_secs(30));
    let rt = runtime();
    rt.block_on(async {
        for i in 0..3 {
            let c = client(&ensemble.connect_string(i)).await;
            c.create(&format!("/from-{i}"), format!("{i}").as_bytes(), &open())
                .await
                .unwrap();
        }
        for i in 0..3 {
            let c = client(&ensemble.connect_string(i)).await;
            c.sync("/").await.unwrap();
            let mut children = c.list_children("/").await.unwrap();
            children.sort();
            assert_eq!(
                children,
                ["from-0", "from-1", "from-2", "zookeeper"],
                "member {i}"
            );
            let (data, _) = c.get_data("/from-2").await.unwrap();
            assert_eq!(data, b"2");
        }
    });
    // Every member applies the same transactions: the same last zxid once
    // the last of them (the clients' closeSessions) has reached everyone.
    let mut zxids = Vec::new();
    let same = wait_until(
        || {
            zxids = (0..3).map(|i| ensemble.zxid(i)).collect::<Vec<_>>();
            zxids.iter().all(|z| z.is_some() && z == &zxids[0])
        },
        Duration::from_secs(15),
    );
    assert!(same, "{zxids:?}");
    let modes: Vec<Option<String>> = (0..3).map(|i| ensemble.mode(i)).collect();
    assert_eq!(modes[leader].as_deref(), Some("leader"));
    let mntr = four_letter_at(ensemble.members[leader].client, "mntr").unwrap();
    assert!(mntr.contains("zk_server_state\tleader"), "{mntr}");
}

#[test]
fn the_leaders_death_loses_no_acknowledged_write_and_a_new_leader_serves() {
    let mut ensemble = Ensemble::start(3, 0);
    let leader = ensemble.wait_for_roles(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let rt = runtime();
    let acked = rt.block_on(async {
        let c = client(&ensemble.connect_string(follower)).await;
        c.create("/acked", b"", &open()).await.unwrap();
        let mut acked = Vec::new();
        for i in 0..30 {
            c.create(&format!("/acked/n{i:03}"), b"v", &open())
                .await
                .unwrap();
            acked.push(format!("n{i:03}"));
        }
        acked
    });
    ensemble.kill(leader);
    let killed_at = Instant::now();
    let new_leader = ensemble.wait_for_roles(Duration::from_secs(30));
    assert_ne!(new_leader, leader);
    let serving = rt.block_on(async {
        let c = client(&ensemble.connect_string(follower)).await;
        loop {
            match c.create("/after", b"x", &open()).await {
                Ok(_) => break killed_at.elapsed(),
                Err(_) if killed_at.elapsed() < Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("no write accepted within 30 s of the leader's death: {e}"),
            }
        }
    });
    println!(
        "a write was accepted {serving:?} after kill -9 of the leader (tickTime={TICK_MS} ms)"
    );
    rt.block_on(async {
        for i in ensemble.running() {
            let c = client(&ensemble.connect_string(i)).await;
            c.sync("/").await.unwrap();
            let mut children = c.list_children("/acked").await.unwrap();
            children.sort();
            assert_eq!(children, acked, "member {i} lost an acknowledged write");
        }
    });
    // The old leader comes back as a follower and catches up.
    ensemble.launch(leader);
    ensemble.wait_for_roles(Duration::from_secs(30));
    rt.block_on(async {
        let c = client(&ensemble.connect_string(leader)).await;
        c.sync("/").await.unwrap();
        assert!(c.check_stat("/after").await.unwrap().is_some());
    });
    assert_eq!(ensemble.mode(leader).as_deref(), Some("follower"));
}

#[test]
fn a_session_on_a_follower_stays_alive_and_its_ephemerals_vanish_everywhere_on_close() {
    let ensemble = Ensemble::start(3, 0);
    let leader = ensemble.wait_for_roles(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let rt = runtime();
    rt.block_on(async {
        // Four ticks: without liveness reports from the follower, the
        // leader would expire it within about two seconds.
        let c = zk::Client::connector()
            .with_session_timeout(Duration::from_millis(4 * TICK_MS))
            .connect(&ensemble.connect_string(follower))
            .await
            .unwrap();
        c.create(
            "/eph",
            b"",
            &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
        // Several session timeouts later it is still there.
        tokio::time::sleep(Duration::from_millis(12 * TICK_MS)).await;
        let other = client(&ensemble.connect_string(leader)).await;
        other.sync("/").await.unwrap();
        assert!(
            other.check_stat("/eph").await.unwrap().is_some(),
            "the leader expired a session whose client kept pinging a follower"
        );
        drop(c);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            other.sync("/").await.unwrap();
            if other.check_stat("/eph").await.unwrap().is_none() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the ephemeral outlived its session"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn an_observer_serves_reads_and_does_not_vote() {
    let mut ensemble = Ensemble::start(3, 1);
    ensemble.wait_for_roles(Duration::from_secs(30));
    let observer = 3;
    let rt = runtime();
    rt.block_on(async {
        let c = client(&ensemble.connect_string(0)).await;
        c.create("/seen", b"by all", &open()).await.unwrap();
        let o = client(&ensemble.connect_string(observer)).await;
        o.sync("/").await.unwrap();
        assert_eq!(o.get_data("/seen").await.unwrap().0, b"by all");
    });
    assert_eq!(ensemble.mode(observer).as_deref(), Some("observer"));
    // With two of the three voters gone, the observer and one voter are not
    // a quorum: writes are refused.
    let leader = ensemble.wait_for_roles(Duration::from_secs(30));
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    // The session exists before the voters go: without a quorum not even a
    // new session could be created.
    let c = rt.block_on(client(&ensemble.connect_string(observer)));
    ensemble.kill(leader);
    ensemble.kill(others[0]);
    let refused = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(20),
            c.create("/no-quorum", b"", &open()),
        )
        .await
        .map(|r| r.is_err())
        .unwrap_or(true)
    });
    assert!(refused, "a write was accepted without a quorum of voters");
}

#[test]
fn a_member_cut_off_from_the_quorum_stops_serving_until_it_rejoins() {
    let ensemble = Ensemble::start(3, 0);
    let leader = ensemble.wait_for_roles(Duration::from_secs(30));
    let cut_off = (leader + 1) % 3;
    let others: Vec<usize> = (0..3).filter(|i| *i != cut_off).collect();
    let rt = runtime();
    let c = rt.block_on(async {
        let c = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(30))
            .connect(&ensemble.connect_string(cut_off))
            .await
            .unwrap();
        c.create("/before", b"", &open()).await.unwrap();
        c
    });
    for i in &others {
        ensemble.pause(*i);
    }
    // Within syncLimit ticks (and some slack) it stops answering: srvr says
    // so, the open session's reads fail, new sessions are refused.
    let stopped = wait_until(|| ensemble.mode(cut_off).is_none(), Duration::from_secs(30));
    assert!(stopped, "the cut-off member still claims a role");
    let read = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), c.get_data("/before")).await
    });
    assert!(
        !matches!(read, Ok(Ok(_))),
        "a member without a quorum served a read: {read:?}"
    );
    let fresh = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(3),
            common::try_connect(&ensemble.connect_string(cut_off)),
        )
        .await
    });
    assert!(
        !matches!(fresh, Ok(Ok(_))),
        "a member without a quorum granted a session"
    );
    for i in &others {
        ensemble.resume(*i);
    }
    ensemble.wait_for_roles(Duration::from_secs(30));
    rt.block_on(async {
        let c = client(&ensemble.connect_string(cut_off)).await;
        c.sync("/").await.unwrap();
        assert!(c.check_stat("/before").await.unwrap().is_some());
    });
}

#[test]
fn with_readonlymode_a_cut_off_member_serves_read_only_clients_until_it_rejoins() {
    let ensemble = Ensemble::start_with(3, 0, "readonlymode.enabled=true\n");
    let leader = ensemble.wait_for_roles(Duration::from_secs(30));
    let cut_off = (leader + 1) % 3;
    let others: Vec<usize> = (0..3).filter(|i| *i != cut_off).collect();
    let rt = runtime();
    rt.block_on(async {
        let c = client(&ensemble.connect_string(cut_off)).await;
        c.create("/before", b"kept", &open()).await.unwrap();
    });
    for i in &others {
        ensemble.pause(*i);
    }
    let read_only = wait_until(
        || ensemble.mode(cut_off).as_deref() == Some("read-only"),
        Duration::from_secs(30),
    );
    assert!(read_only, "mode: {:?}", ensemble.mode(cut_off));
    let isro = four_letter_at(ensemble.members[cut_off].client, "isro").unwrap();
    assert_eq!(isro, "ro");
    let cs = ensemble.connect_string(cut_off);
    let ro = rt.block_on(async {
        let ro = zk::Client::connector()
            .with_readonly(true)
            .with_session_timeout(Duration::from_secs(30))
            .connect(&cs)
            .await
            .expect("a read-only session");
        assert_eq!(ro.get_data("/before").await.unwrap().0, b"kept");
        assert_eq!(
            ro.create("/during", b"", &open()).await.unwrap_err(),
            zk::Error::NotReadOnly
        );
        assert_eq!(
            ro.set_data("/before", b"x", None).await.unwrap_err(),
            zk::Error::NotReadOnly
        );
        // A client that did not ask for read-only gets no session.
        let rw = tokio::time::timeout(Duration::from_secs(3), common::try_connect(&cs)).await;
        assert!(
            !matches!(rw, Ok(Ok(_))),
            "a read-write session from a read-only member"
        );
        ro
    });
    for i in &others {
        ensemble.resume(*i);
    }
    ensemble.wait_for_roles(Duration::from_secs(30));
    assert_eq!(
        four_letter_at(ensemble.members[cut_off].client, "isro").unwrap(),
        "rw"
    );
    rt.block_on(async {
        // The read-only session ends with the partition; the client, which
        // never had a read-write session, reconnects with a new one and
        // writes again.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match ro.create("/after", b"", &open()).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    assert_ne!(e, zk::Error::NodeExists);
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("the client never wrote after the member rejoined: {e}"),
            }
        }
    });
}
