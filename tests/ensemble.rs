//! Ensembles of real zookeeper-rs processes on 127.0.0.1, configured with
//! Apache's `server.N` lines and `myid` files: replication, roles, failover,
//! rejoining, sessions on followers and observers.

mod common;

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::ensemble::{client, open, runtime, tick_ms, Ensemble, TICK_MS};
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
        "a write was accepted {serving:?} after kill -9 of the leader (tickTime={} ms)",
        tick_ms()
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

/// Keeps writing through member `index` until `stop`; records every
/// acknowledged path and when it was acknowledged. A write that fails is not
/// recorded (its outcome may be unknown) and the writer reconnects.
async fn keep_writing(
    own: String,
    everyone: String,
    index: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, Instant)>>>,
) {
    let mut c = client(&own).await;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let name = format!("w{index}-{n:06}");
        match c.create(&format!("/load/{name}"), b"x", &open()).await {
            Ok(_) => acked.lock().unwrap().push((name, Instant::now())),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if let Ok(fresh) = common::try_connect(&everyone).await {
                    c = fresh;
                }
            }
        }
    }
}

/// How the leader leaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Leave {
    /// SIGTERM: it hands over.
    Stop,
    /// SIGKILL: the followers notice.
    Kill,
}

/// The leader of `voters` voters leaves while every member takes writes: a
/// new leader, no acknowledged write lost, and the figures printed.
fn leader_leaves_under_load(voters: u64, leave: Leave) {
    let mut ensemble = Ensemble::start(voters, 0);
    let leader = ensemble.wait_for_roles(Duration::from_secs(30));
    let elected = Instant::now();
    let rt = runtime();
    rt.block_on(async {
        let c = client(&ensemble.connect_string(leader)).await;
        c.create("/load", b"", &open()).await.unwrap();
    });
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let writers: Vec<_> = (0..voters as usize)
        .map(|i| {
            rt.spawn(keep_writing(
                ensemble.connect_string(i),
                ensemble.connect_string_all(),
                i,
                stop.clone(),
                acked.clone(),
            ))
        })
        .collect();
    // A second of load at least: a leader has led for longer than its
    // lease by then, as a leader that is stopped usually has.
    let loaded = wait_until(
        || acked.lock().unwrap().len() >= 200 && elected.elapsed() > Duration::from_secs(1),
        Duration::from_secs(30),
    );
    assert!(loaded, "the writers made no progress:\n{}", ensemble.logs());

    let sigterm = Instant::now();
    match leave {
        Leave::Stop => ensemble.terminate(leader),
        Leave::Kill => ensemble.kill(leader),
    }
    let others: Vec<usize> = (0..voters as usize).filter(|i| *i != leader).collect();
    let mut new_leader = None;
    let mut exited_after = None;
    let deadline = sigterm + Duration::from_secs(30);
    while (new_leader.is_none() || exited_after.is_none()) && Instant::now() < deadline {
        if new_leader.is_none() {
            new_leader = others
                .iter()
                .find(|i| ensemble.mode(**i).as_deref() == Some("leader"))
                .map(|i| (*i, sigterm.elapsed()));
        }
        if exited_after.is_none() && ensemble.exited(leader) {
            exited_after = Some(sigterm.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let (new_leader, elected_after) =
        new_leader.unwrap_or_else(|| panic!("no new leader:\n{}", ensemble.logs()));
    let exited_after = exited_after.expect("the old leader did not exit within 30 s");
    // Writes flow again under the new leader.
    let resumed = wait_until(
        || {
            acked
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, at)| *at > sigterm + elected_after)
                .count()
                >= 50
        },
        Duration::from_secs(30),
    );
    assert!(
        resumed,
        "no writes after the handover:\n{}",
        ensemble.logs()
    );
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for writer in writers {
            let _ = tokio::time::timeout(Duration::from_secs(30), writer).await;
        }
    });

    let acked = acked.lock().unwrap().clone();
    // The pause writers saw: the longest gap between acknowledgements that
    // ends after the signal; and the first write acknowledged once the new
    // leader was seen.
    let mut times: Vec<Instant> = acked.iter().map(|(_, at)| *at).collect();
    times.sort();
    let gap = times
        .windows(2)
        .filter(|pair| pair[1] > sigterm)
        .map(|pair| pair[1] - pair[0])
        .max()
        .expect("writes after the signal");
    let resumed_at = times
        .iter()
        .copied()
        .find(|at| *at >= sigterm + elected_after)
        .expect("writes after the new leader");
    let (what, signal) = match leave {
        Leave::Stop => ("handover", "SIGTERM"),
        Leave::Kill => ("failover", "SIGKILL"),
    };
    println!(
        "{what} ({voters} voters, tickTime={} ms): new leader {} ms after {signal}, \
         next write accepted {} ms after (longest pause between acknowledged writes {} ms), \
         old leader exited after {} ms",
        tick_ms(),
        elected_after.as_millis(),
        resumed_at.saturating_duration_since(sigterm).as_millis(),
        gap.as_millis(),
        exited_after.as_millis(),
    );
    assert_eq!(
        ensemble.wait_for_roles(Duration::from_secs(30)),
        new_leader,
        "leadership moved again after the handover"
    );
    let mut expected: Vec<String> = acked.into_iter().map(|(name, _)| name).collect();
    expected.sort();
    rt.block_on(async {
        for i in ensemble.running() {
            let c = client(&ensemble.connect_string(i)).await;
            // A sync may be refused while the ensemble settles; it must
            // succeed soon.
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Err(e) = c.sync("/").await {
                assert!(Instant::now() < deadline, "member {i} cannot sync: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let present: std::collections::HashSet<String> = c
                .list_children("/load")
                .await
                .unwrap()
                .into_iter()
                .collect();
            let lost: Vec<&String> = expected.iter().filter(|n| !present.contains(*n)).collect();
            assert!(
                lost.is_empty(),
                "member {i} lost {} acknowledged writes: {:?}",
                lost.len(),
                &lost[..lost.len().min(10)]
            );
        }
    });
}

#[test]
fn a_stopped_leader_hands_over_and_no_acknowledged_write_is_lost() {
    leader_leaves_under_load(3, Leave::Stop);
}

#[test]
fn a_stopped_leader_of_five_voters_is_replaced_and_no_acknowledged_write_is_lost() {
    leader_leaves_under_load(5, Leave::Stop);
}

#[test]
fn a_killed_leader_is_replaced_under_load_and_no_acknowledged_write_is_lost() {
    leader_leaves_under_load(3, Leave::Kill);
}

fn mntr_value(mntr: &[(String, String)], key: &str) -> Option<String> {
    mntr.iter()
        .find(|(k, _)| k == key)
        .map(|(_, value)| value.clone())
}

const LEADER_ONLY_KEYS: [&str; 9] = [
    "zk_learners",
    "zk_synced_followers",
    "zk_synced_non_voting_followers",
    "zk_synced_observers",
    "zk_pending_syncs",
    "zk_leader_uptime",
    "zk_last_proposal_size",
    "zk_max_proposal_size",
    "zk_min_proposal_size",
];

/// Apache's `zk_peer_state`, printed right after `zk_server_state`.
fn assert_peer_state(mntr: &[(String, String)], expected: &str) {
    let at = mntr.iter().position(|(k, _)| k == "zk_server_state");
    let next = at.and_then(|at| mntr.get(at + 1));
    assert_eq!(
        next.map(|(k, v)| (k.as_str(), v.as_str())),
        Some(("zk_peer_state", expected)),
        "{mntr:?}"
    );
}

#[test]
fn the_leader_counts_its_synced_followers_and_observers_in_mntr() {
    let ensemble = Ensemble::start(3, 1);
    let leader = ensemble.wait_for_roles(Duration::from_secs(30));
    let rt = runtime();
    rt.block_on(async {
        let c = client(&ensemble.connect_string(leader)).await;
        c.create("/counted", b"", &open()).await.unwrap();
    });
    let mut mntr = Vec::new();
    let caught_up = wait_until(
        || {
            mntr = ensemble.mntr(leader);
            mntr_value(&mntr, "zk_synced_followers").as_deref() == Some("2")
                && mntr_value(&mntr, "zk_synced_observers").as_deref() == Some("1")
        },
        Duration::from_secs(30),
    );
    assert!(caught_up, "{mntr:?}");
    assert_eq!(mntr_value(&mntr, "zk_learners").as_deref(), Some("3"));
    assert_eq!(
        mntr_value(&mntr, "zk_synced_non_voting_followers").as_deref(),
        Some("0")
    );
    assert_eq!(mntr_value(&mntr, "zk_pending_syncs").as_deref(), Some("0"));
    let size: i64 = mntr_value(&mntr, "zk_last_proposal_size")
        .unwrap()
        .parse()
        .unwrap();
    assert!(size > 0, "{mntr:?}");
    for key in LEADER_ONLY_KEYS {
        assert!(mntr_value(&mntr, key).is_some(), "the leader lacks {key}");
    }
    assert_peer_state(&mntr, "leading - broadcast");
    for member in (0..4).filter(|i| *i != leader) {
        let theirs = ensemble.mntr(member);
        assert!(
            mntr_value(&theirs, "zk_server_state").is_some(),
            "no mntr from member {member}"
        );
        let expected = match mntr_value(&theirs, "zk_server_state").as_deref() {
            Some("observer") => "observing - broadcast",
            _ => "following - broadcast",
        };
        assert_peer_state(&theirs, expected);
        for key in LEADER_ONLY_KEYS {
            assert!(
                mntr_value(&theirs, key).is_none(),
                "member {member} ({:?}) prints {key}",
                mntr_value(&theirs, "zk_server_state")
            );
        }
    }
}

#[test]
fn systemd_status_follows_the_members_mode() {
    use std::os::unix::net::UnixDatagram;
    let mut ensemble = Ensemble::start(3, 0);
    let leader = ensemble.wait_for_roles(Duration::from_secs(30));
    let watched = (leader + 1) % 3;
    let others: Vec<usize> = (0..3).filter(|i| *i != watched).collect();
    // Restart one member with a notification socket in systemd's place.
    ensemble.kill(watched);
    let socket_path = ensemble.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let member = &mut ensemble.members[watched];
    let log = std::fs::File::create(&member.log).unwrap();
    member.child = Some(
        std::process::Command::new(env!("CARGO_BIN_EXE_zkServer"))
            .arg("start-foreground")
            .arg(&member.cfg)
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let statuses = |until: &dyn Fn(&str) -> bool| -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            if let Ok(n) = socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = message.lines().any(until);
                seen.push(message);
                if done {
                    return seen;
                }
            }
        }
        panic!("no wanted STATUS within 30 s; got {seen:?}");
    };
    statuses(&|l| l == "READY=1");
    for i in &others {
        ensemble.pause(*i);
    }
    statuses(&|l| l == "STATUS=looking for a quorum; not serving clients");
    for i in &others {
        ensemble.resume(*i);
    }
    statuses(&|l| l == "STATUS=serving as follower" || l == "STATUS=serving as leader");
}
