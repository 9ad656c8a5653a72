//! `zk-pseudo-cluster`: the files `init` writes, its refusals, the
//! start/status/stop cycle and `destroy`.

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;
use zookeeper_rs::config::ServerConfig;

const TOOL: &str = env!("CARGO_BIN_EXE_zk-pseudo-cluster");

fn tool(dir: &Path, args: &[&str]) -> Output {
    Command::new(TOOL)
        .current_dir(dir)
        .env_remove("ZOOPIDFILE")
        .env_remove("ZOO_LOG_DIR")
        .env_remove("NOTIFY_SOCKET")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Whether every port from `first` to `first + count - 1` is free on loopback.
fn range_free(first: u16, count: u16) -> bool {
    (0..count).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, first + i)).is_ok())
}

/// A client port and a peer port whose ranges (and election ports, 1000
/// above the peer ports) are free now, for `size` servers.
fn free_ranges(size: u16) -> (u16, u16) {
    let seed = u16::try_from(std::process::id() % 97).unwrap();
    for attempt in 0..200u16 {
        let client = 20_000 + ((seed + attempt) % 97) * 100;
        let peer = client + 30;
        if range_free(client, size) && range_free(peer, size) && range_free(peer + 1000, size) {
            return (client, peer);
        }
    }
    panic!("no free port ranges found");
}

/// `init --size N` into `dir/pc` with free ports; returns the ports used.
fn init(dir: &TempDir, size: u16) -> (u16, u16) {
    let (client, peer) = free_ranges(size);
    let output = tool(
        dir.path(),
        &[
            "init",
            "--size",
            &size.to_string(),
            "--base-dir",
            "pc",
            "--client-port",
            &client.to_string(),
            "--peer-port",
            &peer.to_string(),
        ],
    );
    assert_exit(&output, 0);
    (client, peer)
}

fn peer_cfg(dir: &TempDir, id: u64) -> PathBuf {
    dir.path().join("pc").join(id.to_string()).join("zoo.cfg")
}

#[test]
fn init_writes_each_peer_with_distinct_ports_and_the_same_server_lines() {
    let dir = tempfile::tempdir().unwrap();
    init(&dir, 3);
    let mut ports = BTreeSet::new();
    let mut server_lists = Vec::new();
    for id in 1..=3u64 {
        let loaded = ServerConfig::from_file(&peer_cfg(&dir, id)).unwrap();
        let config = loaded.config;
        assert_eq!(config.my_id, Some(id));
        assert_eq!(config.init_limit, Some(10));
        assert_eq!(config.sync_limit, Some(5));
        let peer_dir = dir.path().join("pc").join(id.to_string());
        assert_eq!(config.data_dir, peer_dir.join("data"));
        assert_eq!(config.transaction_log_dir(), peer_dir.join("datalog"));
        assert!(peer_dir.join("datalog").is_dir());
        assert_eq!(
            fs::read_to_string(peer_dir.join("data/myid")).unwrap(),
            format!("{id}\n")
        );
        assert!(ports.insert(config.client_address().unwrap().port()));
        assert_eq!(config.servers.len(), 3);
        let servers: Vec<_> = config
            .servers
            .iter()
            .map(|s| (s.id, s.addresses.clone(), s.peer_type, s.client.clone()))
            .collect();
        server_lists.push(servers);
        if id == 1 {
            for server in &config.servers {
                for address in &server.addresses {
                    assert!(ports.insert(address.quorum_port));
                    assert!(ports.insert(address.election_port));
                }
            }
        }
    }
    assert_eq!(
        ports.len(),
        9,
        "client, quorum and election ports all distinct"
    );
    assert!(
        server_lists.iter().all(|list| *list == server_lists[0]),
        "every peer lists the same servers: {server_lists:?}"
    );
}

#[test]
fn init_refuses_to_overwrite_an_existing_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = init(&dir, 3);
    let precious = dir.path().join("pc/2/data/precious");
    fs::write(&precious, "keep me").unwrap();
    let before = fs::read_to_string(peer_cfg(&dir, 2)).unwrap();
    let again = tool(
        dir.path(),
        &[
            "init",
            "--size",
            "3",
            "--base-dir",
            "pc",
            "--client-port",
            &(client + 50).to_string(),
            "--peer-port",
            &peer.to_string(),
        ],
    );
    assert_exit(&again, 1);
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(fs::read_to_string(peer_cfg(&dir, 2)).unwrap(), before);
    assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me");
}

#[test]
fn init_refuses_busy_ports_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = free_ranges(3);
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, peer + 1001)).unwrap();
    let refused = tool(
        dir.path(),
        &[
            "init",
            "--size",
            "3",
            "--base-dir",
            "pc",
            "--client-port",
            &client.to_string(),
            "--peer-port",
            &peer.to_string(),
        ],
    );
    assert_exit(&refused, 1);
    let complaint = text(&refused.stderr);
    assert!(
        complaint.contains(&format!(
            "port {} on 127.0.0.1 (server.2 election port) is in use",
            peer + 1001
        )),
        "{complaint}"
    );
    assert!(!dir.path().join("pc").exists());
    drop(squatter);
}

#[test]
fn destroy_removes_the_peers_and_refuses_foreign_ones() {
    let dir = tempfile::tempdir().unwrap();
    init(&dir, 2);
    let destroyed = tool(dir.path(), &["destroy", "--base-dir", "pc"]);
    assert_exit(&destroyed, 0);
    assert_eq!(
        text(&destroyed.stdout),
        "server.1: removed\nserver.2: removed\n"
    );
    assert!(!dir.path().join("pc").exists());
    let nothing = tool(dir.path(), &["destroy", "--base-dir", "pc"]);
    assert_exit(&nothing, 1);

    // A hand-written peer is not ours to delete.
    fs::create_dir_all(dir.path().join("pc/1/data")).unwrap();
    fs::write(dir.path().join("pc/1/zoo.cfg"), "dataDir=/tmp/x\n").unwrap();
    let refused = tool(dir.path(), &["destroy", "--base-dir", "pc"]);
    assert_exit(&refused, 1);
    assert!(text(&refused.stderr).contains("not written by zk-pseudo-cluster"));
    assert!(dir.path().join("pc/1/zoo.cfg").exists());
}

#[test]
fn start_status_stop_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = init(&dir, 3);
    let pc = ["--base-dir", "pc"];
    let started = tool(dir.path(), &[&["start"], &pc[..]].concat());
    // Whatever happens next, leave no servers behind.
    struct StopOnDrop<'a>(&'a Path);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            let _ = tool(self.0, &["stop", "--base-dir", "pc", "--timeout", "5"]);
        }
    }
    let _stop = StopOnDrop(dir.path());
    assert_exit(&started, 0);
    for id in 1..=3 {
        assert!(
            text(&started.stdout).contains(&format!("server.{id}: Starting zookeeper ... STARTED")),
            "{}",
            text(&started.stdout)
        );
        assert!(dir
            .path()
            .join(format!("pc/{id}/data/zookeeper_server.pid"))
            .is_file());
        assert!(dir.path().join(format!("pc/{id}/log")).is_dir());
    }

    // The members serve once they have elected a leader.
    let mut status = tool(dir.path(), &[&["status"], &pc[..]].concat());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while status.status.code() != Some(0) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        status = tool(dir.path(), &[&["status"], &pc[..]].concat());
    }
    assert_exit(&status, 0);
    let table = text(&status.stdout);
    let modes: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(
        modes.iter().filter(|m| **m == "leader").count(),
        1,
        "one leader: {table}"
    );
    assert_eq!(
        modes.iter().filter(|m| **m == "follower").count(),
        2,
        "two followers: {table}"
    );
    assert_eq!(table.lines().count(), 4, "{table}");
    for (i, line) in table.lines().skip(1).enumerate() {
        assert!(line.starts_with(&format!("{} ", i + 1)), "{table}");
        assert!(
            line.contains(&format!("127.0.0.1:{}", client + i as u16)),
            "{table}"
        );
        assert!(line.ends_with("reachable"), "{table}");
    }
    let json = tool(dir.path(), &[&["status", "--json"], &pc[..]].concat());
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(view["peers"].as_array().unwrap().len(), 3);
    assert!(view["peers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["serving"] == true));

    // Destroy stops what runs, then removes.
    let destroyed = tool(dir.path(), &[&["destroy"], &pc[..]].concat());
    assert_exit(&destroyed, 0);
    assert!(text(&destroyed.stdout).contains("server.3: Stopping zookeeper ... STOPPED"));
    assert!(!dir.path().join("pc").exists());
    assert!(
        TcpListener::bind((Ipv4Addr::LOCALHOST, client)).is_ok(),
        "server.1 still holds its port"
    );
}

#[test]
fn systemd_layout_puts_configs_and_data_where_the_unit_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = free_ranges(3);
    let etc = dir.path().join("etc/zookeeper");
    let state = dir.path().join("var/lib/zookeeper");
    let output = tool(
        dir.path(),
        &[
            "init",
            "--systemd",
            "--etc-dir",
            etc.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--client-port",
            &client.to_string(),
            "--peer-port",
            &peer.to_string(),
        ],
    );
    assert_exit(&output, 0);
    assert!(text(&output.stdout)
        .contains("Start with: systemctl start zookeeper@1 zookeeper@2 zookeeper@3"));
    for id in 1..=3u64 {
        let loaded = ServerConfig::from_file(&etc.join(format!("{id}/zoo.cfg"))).unwrap();
        assert_eq!(loaded.config.data_dir, state.join(id.to_string()));
        assert_eq!(
            loaded.config.transaction_log_dir(),
            state.join(format!("{id}/datalog"))
        );
        assert_eq!(loaded.config.my_id, Some(id));
    }
}

#[test]
fn init_from_a_toml_description_with_an_observer() {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = free_ranges(4);
    fs::write(
        dir.path().join("ensemble.toml"),
        format!(
            "client_port = {client}\npeer_port = {peer}\ntick_time = 1000\n\
             [[server]]\n[[server]]\n[[server]]\n[[server]]\nobserver = true\n"
        ),
    )
    .unwrap();
    let output = tool(
        dir.path(),
        &["init", "--from", "ensemble.toml", "--base-dir", "pc"],
    );
    assert_exit(&output, 0);
    let observer = fs::read_to_string(peer_cfg(&dir, 4)).unwrap();
    assert!(observer.contains("peerType=observer\n"), "{observer}");
    assert!(observer.contains(&format!(
        "server.4=127.0.0.1:{}:{}:observer;127.0.0.1:{}\n",
        peer + 3,
        peer + 1003,
        client + 3
    )));
    let loaded = ServerConfig::from_file(&peer_cfg(&dir, 4)).unwrap();
    assert_eq!(loaded.config.tick_time_ms, 1000);
    assert_eq!(
        loaded.config.peer_type,
        zookeeper_rs::config::PeerType::Observer
    );
    let participant = fs::read_to_string(peer_cfg(&dir, 1)).unwrap();
    assert!(!participant.contains("peerType"));
}
