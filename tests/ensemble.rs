//! Ensembles of real zookeeper-rs processes on 127.0.0.1, configured with
//! Apache's `server.N` lines and `myid` files: replication, roles, failover,
//! rejoining, sessions on followers and observers.

mod common;

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{four_letter_at, try_connect, wait_until};
use zookeeper_client as zk;

const TICK_MS: u64 = 500;

struct Member {
    id: u64,
    client: SocketAddr,
    cfg: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

struct Ensemble {
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

impl Ensemble {
    /// Writes the configs of `participants` voting members and `observers`
    /// observers and starts them all.
    fn start(participants: u64, observers: u64) -> Ensemble {
        let dir = tempfile::tempdir().unwrap();
        let total = participants + observers;
        // Hold every probe socket until all ports are chosen, so no two
        // members are handed the same port.
        let probes: Vec<TcpListener> = (0..total * 3)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let picked: Vec<u16> = probes
            .iter()
            .map(|l| l.local_addr().expect("bound").port())
            .collect();
        drop(probes);
        let ports: Vec<(u16, u16, u16)> = picked.chunks(3).map(|c| (c[0], c[1], c[2])).collect();
        let mut servers = String::new();
        for (i, (_, quorum, election)) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let kind = if id > participants { ":observer" } else { "" };
            servers.push_str(&format!(
                "server.{id}=127.0.0.1:{quorum}:{election}{kind}\n"
            ));
        }
        let mut members = Vec::new();
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let home = dir.path().join(id.to_string());
            let data = home.join("data");
            fs::create_dir_all(&data).unwrap();
            fs::write(data.join("myid"), format!("{id}\n")).unwrap();
            let peer_type = if id > participants {
                "peerType=observer\n"
            } else {
                ""
            };
            let cfg = home.join("zoo.cfg");
            fs::write(
                &cfg,
                format!(
                    "tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\n\
                     clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nmaxClientCnxns=0\n\
                     {peer_type}{servers}",
                    data.display()
                ),
            )
            .unwrap();
            members.push(Member {
                id,
                client: SocketAddr::from(([127, 0, 0, 1], *client)),
                cfg,
                log: home.join("server.log"),
                child: None,
            });
        }
        let mut ensemble = Ensemble { dir, members };
        for i in 0..ensemble.members.len() {
            ensemble.launch(i);
        }
        ensemble
    }

    fn launch(&mut self, index: usize) {
        let member = &mut self.members[index];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_zkServer"))
            .env(
                "ZOO_LOG_LEVEL",
                std::env::var("ZKRS_ENSEMBLE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .arg("start-foreground")
            .arg(&member.cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning zkServer");
        member.child = Some(child);
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn mode(&self, index: usize) -> Option<String> {
        let answer = four_letter_at(self.members[index].client, "srvr").ok()?;
        answer
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_owned)
    }

    fn zxid(&self, index: usize) -> Option<String> {
        let answer = four_letter_at(self.members[index].client, "srvr").ok()?;
        answer
            .lines()
            .find_map(|l| l.strip_prefix("Zxid: "))
            .map(str::to_owned)
    }

    fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| self.members[*i].child.is_some())
            .collect()
    }

    /// Waits until the running members have one leader and the rest are
    /// followers or observers; returns the leader's index.
    fn wait_for_roles(&self, timeout: Duration) -> usize {
        let mut leader = None;
        let ok = wait_until(
            || {
                let modes: Vec<Option<String>> =
                    self.running().iter().map(|i| self.mode(*i)).collect();
                let leaders: Vec<usize> = self
                    .running()
                    .into_iter()
                    .zip(&modes)
                    .filter(|(_, m)| m.as_deref() == Some("leader"))
                    .map(|(i, _)| i)
                    .collect();
                let settled = modes
                    .iter()
                    .all(|m| matches!(m.as_deref(), Some("leader" | "follower" | "observer")));
                leader = leaders.first().copied();
                settled && leaders.len() == 1
            },
            timeout,
        );
        assert!(ok, "no settled leader within {timeout:?}:\n{}", self.logs());
        leader.unwrap()
    }

    fn connect_string(&self, index: usize) -> String {
        self.members[index].client.to_string()
    }

    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let log = fs::read_to_string(&m.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!(
                    "--- server.{} ---\n{}",
                    m.id,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            eprintln!(
                "ensemble logs in {}:\n{}",
                self.dir.path().display(),
                self.logs()
            );
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

async fn client(cs: &str) -> zk::Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match try_connect(cs).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("connecting to {cs}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

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
