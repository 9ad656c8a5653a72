//! Ensembles of real zookeeper-rs processes on 127.0.0.1, written as users
//! write them: Apache's `server.N` lines, a `myid` per member, one data dir
//! and client port each. Members are started, killed (SIGKILL), stopped
//! (SIGTERM) and restarted by index; roles come from `srvr`.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{four_letter_at, try_connect, wait_until};
use zookeeper_client as zk;

pub const TICK_MS: u64 = 500;

/// The tickTime ensembles are written with: `ZKRS_ENSEMBLE_TICK_MS` when set
/// (to measure at Apache's default of 2000), [`TICK_MS`] otherwise.
pub fn tick_ms() -> u64 {
    std::env::var("ZKRS_ENSEMBLE_TICK_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|ms| *ms > 0)
        .unwrap_or(TICK_MS)
}

pub struct Member {
    pub id: u64,
    pub client: SocketAddr,
    pub cfg: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    /// Sent SIGTERM, not yet seen to exit.
    pub stopping: Option<Child>,
}

pub struct Ensemble {
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
}

impl Ensemble {
    /// Writes the configs of `participants` voting members and `observers`
    /// observers and starts them all.
    pub fn start(participants: u64, observers: u64) -> Ensemble {
        Self::start_with(participants, observers, "")
    }

    /// [`Ensemble::start`] with `extra` lines in every member's zoo.cfg.
    pub fn start_with(participants: u64, observers: u64, extra: &str) -> Ensemble {
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
                    "tickTime={tick}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\n\
                     clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nmaxClientCnxns=0\n\
                     {peer_type}{extra}{servers}",
                    data.display(),
                    tick = tick_ms(),
                ),
            )
            .unwrap();
            members.push(Member {
                id,
                client: SocketAddr::from(([127, 0, 0, 1], *client)),
                cfg,
                log: home.join("server.log"),
                child: None,
                stopping: None,
            });
        }
        let mut ensemble = Ensemble { dir, members };
        for i in 0..ensemble.members.len() {
            ensemble.launch(i);
        }
        ensemble
    }

    pub fn launch(&mut self, index: usize) {
        let member = &mut self.members[index];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .unwrap();
        // `ZKRS_ENSEMBLE_SERVER` names another build (release, to measure).
        let server = std::env::var_os("ZKRS_ENSEMBLE_SERVER")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_zkServer").into());
        let child = Command::new(server)
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

    pub fn kill(&mut self, index: usize) {
        let member = &mut self.members[index];
        for mut child in [member.child.take(), member.stopping.take()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns how long the
    /// exit took.
    pub fn stop(&mut self, index: usize) -> Duration {
        let started = Instant::now();
        if let Some(mut child) = self.members[index].child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
        started.elapsed()
    }

    /// Freezes a member (SIGSTOP): to the others it is cut off, yet its
    /// sockets stay open.
    pub fn pause(&self, index: usize) {
        self.signal(index, nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets a paused member run again (SIGCONT).
    pub fn resume(&self, index: usize) {
        self.signal(index, nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, index: usize, signal: nix::sys::signal::Signal) {
        if let Some(child) = &self.members[index].child {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            nix::sys::signal::kill(pid, signal).expect("signalling a member");
        }
    }

    pub fn mode(&self, index: usize) -> Option<String> {
        let answer = four_letter_at(self.members[index].client, "srvr").ok()?;
        answer
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_owned)
    }

    /// The `mntr` lines of a member, as (key, value) pairs.
    pub fn mntr(&self, index: usize) -> Vec<(String, String)> {
        four_letter_at(self.members[index].client, "mntr")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once('\t')?;
                Some((key.to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// Sends SIGTERM without waiting for the exit (see [`Ensemble::exited`]).
    pub fn terminate(&mut self, index: usize) {
        let member = &mut self.members[index];
        let child = member.child.take().expect("the member is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        member.stopping = Some(child);
    }

    /// Whether a member sent SIGTERM by [`Ensemble::terminate`] has exited.
    pub fn exited(&mut self, index: usize) -> bool {
        match self.members[index].stopping.as_mut() {
            None => true,
            Some(child) => match child.try_wait() {
                Ok(Some(_)) | Err(_) => {
                    self.members[index].stopping = None;
                    true
                }
                Ok(None) => false,
            },
        }
    }

    pub fn zxid(&self, index: usize) -> Option<String> {
        let answer = four_letter_at(self.members[index].client, "srvr").ok()?;
        answer
            .lines()
            .find_map(|l| l.strip_prefix("Zxid: "))
            .map(str::to_owned)
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| self.members[*i].child.is_some())
            .collect()
    }

    /// Waits until the running members have one leader and the rest are
    /// followers or observers; returns the leader's index.
    pub fn wait_for_roles(&self, timeout: Duration) -> usize {
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

    pub fn connect_string(&self, index: usize) -> String {
        self.members[index].client.to_string()
    }

    pub fn logs(&self) -> String {
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

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

pub async fn client(cs: &str) -> zk::Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match try_connect(cs).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("connecting to {cs}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

impl Ensemble {
    /// A connect string naming every member, as a client of the whole
    /// ensemble is given.
    pub fn connect_string_all(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The member's whole log.
    pub fn log_of(&self, index: usize) -> String {
        fs::read_to_string(&self.members[index].log).unwrap_or_default()
    }

    /// Kills the leader with SIGKILL and waits for the others to elect a new
    /// one; returns (old leader, new leader).
    pub fn kill_leader(&mut self, timeout: Duration) -> (usize, usize) {
        let old = self.wait_for_roles(timeout);
        self.kill(old);
        let new = self.wait_for_roles(timeout);
        (old, new)
    }

    /// Waits until every running member reports the same last zxid.
    pub fn wait_for_same_zxid(&self, timeout: Duration) -> bool {
        wait_until(
            || {
                let zxids: Vec<Option<String>> =
                    self.running().iter().map(|i| self.zxid(*i)).collect();
                zxids.iter().all(|z| z.is_some() && *z == zxids[0])
            },
            timeout,
        )
    }
}
