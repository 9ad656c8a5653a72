//! The ensembles `zk-pseudo-cluster` writes: a plan (ids, hosts, ports,
//! roles), where each peer's files go, and the checks before anything is
//! written (distinct ports, free ports, no existing peer overwritten).
//!
//! Two layouts:
//! - [`Layout::Local`], under a base directory `D`: `D/N/zoo.cfg`,
//!   `D/N/data` (dataDir, with `myid` and the pidfile), `D/N/datalog`
//!   (dataLogDir) and `D/N/log` (`ZOO_LOG_DIR` for `start`).
//! - [`Layout::Systemd`], where the `zookeeper@N` unit reads them:
//!   `/etc/zookeeper/N/zoo.cfg`, dataDir `/var/lib/zookeeper/N` (with `myid`)
//!   and dataLogDir `/var/lib/zookeeper/N/datalog`.
//!
//! Every zoo.cfg written starts with [`MARKER`]; `destroy` removes only peers
//! whose zoo.cfg carries it.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The first line of every zoo.cfg this tool writes.
pub const MARKER: &str = "# Written by zk-pseudo-cluster.";

/// Default first client port (Apache's).
pub const DEFAULT_CLIENT_PORT: u16 = 2181;
/// Default first quorum port (Apache's).
pub const DEFAULT_PEER_PORT: u16 = 2888;
/// Election ports are this far above quorum ports (2888 → 3888, Apache's habit).
pub const ELECTION_PORT_OFFSET: u16 = 1000;
/// Default host of a pseudo-cluster's peers.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// Why an ensemble cannot be planned, written, found or removed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("an ensemble needs 1 to 255 servers, not {0}")]
    Size(u64),
    #[error("{0}")]
    Plan(String),
    #[error("cannot read {path}: {source}")]
    ReadSpec { path: PathBuf, source: io::Error },
    #[error("{path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error(
        "server.{id} already exists at {path}; destroy it first (its data is never overwritten)"
    )]
    Exists { id: u64, path: PathBuf },
    #[error("port {port} on {host} (server.{id} {what}) is in use")]
    PortBusy {
        id: u64,
        host: String,
        port: u16,
        what: &'static str,
    },
    #[error("cannot bind port {port} on {host} (server.{id} {what}): {source}")]
    PortUnusable {
        id: u64,
        host: String,
        port: u16,
        what: &'static str,
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} was not written by zk-pseudo-cluster; not touching it")]
    NotOurs { path: PathBuf },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One server of the ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPlan {
    pub id: u64,
    pub host: String,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
}

impl ServerPlan {
    /// The value of its `server.N` line:
    /// `host:quorum:election[:observer];host:client`.
    pub fn server_line(&self) -> String {
        let host = bracketed(&self.host);
        format!(
            "{host}:{}:{}{};{host}:{}",
            self.quorum_port,
            self.election_port,
            if self.observer { ":observer" } else { "" },
            self.client_port
        )
    }

    fn ports(&self) -> [(u16, &'static str); 3] {
        [
            (self.client_port, "client port"),
            (self.quorum_port, "quorum port"),
            (self.election_port, "election port"),
        ]
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// An ensemble: its timing and its servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsemblePlan {
    pub tick_time_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub servers: Vec<ServerPlan>,
}

/// `ensemble.toml`, the file `init --from` reads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnsembleFile {
    tick_time: Option<u32>,
    init_limit: Option<u32>,
    sync_limit: Option<u32>,
    /// Host of servers that name none.
    host: Option<String>,
    /// First client port; see [`EnsemblePlan::from_toml`].
    client_port: Option<u16>,
    /// First quorum port; election ports are [`ELECTION_PORT_OFFSET`] above.
    peer_port: Option<u16>,
    #[serde(default)]
    server: Vec<ServerEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    id: Option<u64>,
    host: Option<String>,
    client_port: Option<u16>,
    quorum_port: Option<u16>,
    election_port: Option<u16>,
    #[serde(default)]
    observer: bool,
}

fn offset_port(base: u16, offset: u64, what: &str) -> Result<u16, ClusterError> {
    u64::from(base)
        .checked_add(offset)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            ClusterError::Plan(format!(
                "{what} {base} + {offset} is beyond 65535; choose a lower first port"
            ))
        })
}

impl EnsemblePlan {
    /// `size` servers with ids 1..=size on `host`, server i taking client
    /// port `client_port + i - 1`, quorum port `peer_port + i - 1` and
    /// election port `peer_port + 1000 + i - 1`.
    pub fn local(
        size: u64,
        host: &str,
        client_port: u16,
        peer_port: u16,
    ) -> Result<EnsemblePlan, ClusterError> {
        if !(1..=255).contains(&size) {
            return Err(ClusterError::Size(size));
        }
        let election_base = offset_port(peer_port, u64::from(ELECTION_PORT_OFFSET), "peer port")?;
        let servers = (0..size)
            .map(|i| {
                Ok(ServerPlan {
                    id: i + 1,
                    host: host.to_owned(),
                    client_port: offset_port(client_port, i, "client port")?,
                    quorum_port: offset_port(peer_port, i, "peer port")?,
                    election_port: offset_port(election_base, i, "election port")?,
                    observer: false,
                })
            })
            .collect::<Result<Vec<_>, ClusterError>>()?;
        let plan = EnsemblePlan {
            tick_time_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
            servers,
        };
        plan.check()?;
        Ok(plan)
    }

    /// Reads an ensemble description:
    ///
    /// ```toml
    /// tick_time = 2000          # optional, with init_limit = 10, sync_limit = 5
    /// host = "127.0.0.1"        # for servers that name none
    /// client_port = 2181        # first client port
    /// peer_port = 2888          # first quorum port; elections 1000 above
    ///
    /// [[server]]
    /// id = 1                    # default: its position, from 1
    /// host = "10.0.0.1"
    /// client_port = 2181        # each port optional
    /// quorum_port = 2888
    /// election_port = 3888
    /// observer = false
    /// ```
    ///
    /// A server without a port takes the first port plus the number of servers
    /// listed before it on the same host: distinct ports on one host, the
    /// usual ports across hosts.
    pub fn from_toml(text: &str, origin: &Path) -> Result<EnsemblePlan, ClusterError> {
        let spec_error = |message: String| ClusterError::Spec {
            path: origin.to_path_buf(),
            message,
        };
        let file: EnsembleFile = toml::from_str(text).map_err(|e| spec_error(e.to_string()))?;
        if file.server.is_empty() {
            return Err(spec_error(
                "no [[server]] entries; list each server of the ensemble".to_owned(),
            ));
        }
        let default_host = file.host.unwrap_or_else(|| DEFAULT_HOST.to_owned());
        let client_base = file.client_port.unwrap_or(DEFAULT_CLIENT_PORT);
        let peer_base = file.peer_port.unwrap_or(DEFAULT_PEER_PORT);
        let election_base = offset_port(peer_base, u64::from(ELECTION_PORT_OFFSET), "peer port")?;
        let mut per_host: HashMap<String, u64> = HashMap::new();
        let mut servers = Vec::new();
        for (position, entry) in file.server.into_iter().enumerate() {
            let host = entry.host.unwrap_or_else(|| default_host.clone());
            let slot = per_host.entry(host.clone()).or_insert(0);
            let nth = *slot;
            *slot += 1;
            let id = entry.id.unwrap_or(position as u64 + 1);
            servers.push(ServerPlan {
                id,
                client_port: match entry.client_port {
                    Some(p) => p,
                    None => offset_port(client_base, nth, "client port")?,
                },
                quorum_port: match entry.quorum_port {
                    Some(p) => p,
                    None => offset_port(peer_base, nth, "peer port")?,
                },
                election_port: match entry.election_port {
                    Some(p) => p,
                    None => offset_port(election_base, nth, "election port")?,
                },
                host,
                observer: entry.observer,
            });
        }
        let plan = EnsemblePlan {
            tick_time_ms: file.tick_time.unwrap_or(2000),
            init_limit: file.init_limit.unwrap_or(10),
            sync_limit: file.sync_limit.unwrap_or(5),
            servers,
        };
        plan.check().map_err(|e| spec_error(e.to_string()))?;
        Ok(plan)
    }

    /// Reads [`EnsemblePlan::from_toml`] from a file.
    pub fn from_toml_file(path: &Path) -> Result<EnsemblePlan, ClusterError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterError::ReadSpec {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Ids in range and distinct, ports non-zero and distinct per host, at
    /// least one voter, timing positive.
    pub fn check(&self) -> Result<(), ClusterError> {
        let size = self.servers.len() as u64;
        if !(1..=255).contains(&size) {
            return Err(ClusterError::Size(size));
        }
        if self.tick_time_ms == 0 || self.init_limit == 0 || self.sync_limit == 0 {
            return Err(ClusterError::Plan(
                "tick_time, init_limit and sync_limit must be positive".to_owned(),
            ));
        }
        let mut ids = BTreeSet::new();
        let mut endpoints: HashMap<(String, u16), String> = HashMap::new();
        for server in &self.servers {
            if server.id > 255 {
                return Err(ClusterError::Plan(format!(
                    "server id {} is above 255",
                    server.id
                )));
            }
            if !ids.insert(server.id) {
                return Err(ClusterError::Plan(format!(
                    "server id {} is listed twice",
                    server.id
                )));
            }
            if server.host.trim().is_empty() {
                return Err(ClusterError::Plan(format!(
                    "server.{} has an empty host",
                    server.id
                )));
            }
            for (port, what) in server.ports() {
                let used_by = format!("server.{} {what}", server.id);
                if port == 0 {
                    return Err(ClusterError::Plan(format!("{used_by} is 0")));
                }
                if let Some(other) = endpoints.insert((server.host.clone(), port), used_by.clone())
                {
                    return Err(ClusterError::Plan(format!(
                        "port {port} on {} is both the {other} and the {used_by}",
                        server.host
                    )));
                }
            }
        }
        if self.servers.iter().all(|s| s.observer) {
            return Err(ClusterError::Plan(
                "every server is an observer; an ensemble needs voters".to_owned(),
            ));
        }
        Ok(())
    }

    /// The server with `id`.
    pub fn server(&self, id: u64) -> Option<&ServerPlan> {
        self.servers.iter().find(|s| s.id == id)
    }

    /// The zoo.cfg of `server`, whose files are at `paths`.
    pub fn render_cfg(&self, server: &ServerPlan, paths: &PeerPaths) -> String {
        let mut cfg = String::new();
        let _ = writeln!(cfg, "{MARKER}");
        let _ = writeln!(
            cfg,
            "# server.{} of an ensemble of {}; every member has the same server.N lines.",
            server.id,
            self.servers.len()
        );
        let _ = writeln!(cfg, "tickTime={}", self.tick_time_ms);
        let _ = writeln!(cfg, "initLimit={}", self.init_limit);
        let _ = writeln!(cfg, "syncLimit={}", self.sync_limit);
        let _ = writeln!(cfg, "dataDir={}", paths.data_dir.display());
        let _ = writeln!(cfg, "dataLogDir={}", paths.data_log_dir.display());
        let _ = writeln!(cfg, "4lw.commands.whitelist=srvr,stat,ruok,mntr,conf,isro");
        let _ = writeln!(cfg, "admin.enableServer=false");
        if server.observer {
            let _ = writeln!(cfg, "peerType=observer");
        }
        cfg.push_str("# host:quorumPort:electionPort[:observer];clientHost:clientPort\n");
        for other in &self.servers {
            let _ = writeln!(cfg, "server.{}={}", other.id, other.server_line());
        }
        cfg
    }
}

/// Where the peers' files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Everything under one directory.
    Local { base: PathBuf },
    /// Where the `zookeeper@N` unit reads: `etc_dir/N/zoo.cfg`, `state_dir/N`.
    Systemd {
        etc_dir: PathBuf,
        state_dir: PathBuf,
    },
}

/// One peer's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPaths {
    pub id: u64,
    pub cfg: PathBuf,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    /// `ZOO_LOG_DIR` for `zkServer start` (local layout; under systemd the
    /// journal takes the log).
    pub log_dir: Option<PathBuf>,
    /// Directories removed by `destroy`, deepest last.
    pub owned_dirs: Vec<PathBuf>,
}

impl Layout {
    /// The systemd layout at its standard places.
    pub fn systemd() -> Layout {
        Layout::Systemd {
            etc_dir: PathBuf::from("/etc/zookeeper"),
            state_dir: PathBuf::from("/var/lib/zookeeper"),
        }
    }

    /// Where peer `id` lives.
    pub fn peer(&self, id: u64) -> PeerPaths {
        match self {
            Layout::Local { base } => {
                let dir = base.join(id.to_string());
                PeerPaths {
                    id,
                    cfg: dir.join("zoo.cfg"),
                    data_dir: dir.join("data"),
                    data_log_dir: dir.join("datalog"),
                    log_dir: Some(dir.join("log")),
                    owned_dirs: vec![dir],
                }
            }
            Layout::Systemd { etc_dir, state_dir } => {
                let conf = etc_dir.join(id.to_string());
                let state = state_dir.join(id.to_string());
                PeerPaths {
                    id,
                    cfg: conf.join("zoo.cfg"),
                    data_log_dir: state.join("datalog"),
                    data_dir: state.clone(),
                    log_dir: None,
                    owned_dirs: vec![conf, state],
                }
            }
        }
    }

    /// The peers present: numbered directories holding a zoo.cfg, by id.
    pub fn discover(&self) -> Result<Vec<PeerPaths>, ClusterError> {
        let dir = match self {
            Layout::Local { base } => base,
            Layout::Systemd { etc_dir, .. } => etc_dir,
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ClusterError::Io {
                    path: dir.clone(),
                    source,
                })
            }
        };
        let mut ids: Vec<u64> = entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .filter(|id| self.peer(*id).cfg.is_file())
            .collect();
        ids.sort_unstable();
        Ok(ids.into_iter().map(|id| self.peer(id)).collect())
    }
}

fn non_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some())
}

/// Refuses when any of `peers` already has a zoo.cfg or data: an existing
/// peer's data is never overwritten.
pub fn check_absent(peers: &[PeerPaths]) -> Result<(), ClusterError> {
    for peer in peers {
        for path in [&peer.cfg, &peer.data_dir, &peer.data_log_dir] {
            let taken = if path == &peer.cfg {
                path.exists()
            } else {
                non_empty_dir(path)
            };
            if taken {
                return Err(ClusterError::Exists {
                    id: peer.id,
                    path: path.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The address to bind when checking a port on `host`, or `None` when the host
/// does not resolve to an address of this machine (a remote member).
fn local_bind_addr(host: &str, port: u16) -> Option<SocketAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let candidates: Vec<SocketAddr> = (bare, port).to_socket_addrs().ok()?.collect();
    candidates.into_iter().find(|addr| {
        // Port 0 probes whether the address is ours without touching `port`.
        TcpListener::bind(SocketAddr::new(addr.ip(), 0)).is_ok()
    })
}

/// Refuses when a port of the servers in `ids` (all when empty) is in use on
/// this machine. Servers on other hosts are not checked.
pub fn check_ports_free(plan: &EnsemblePlan, ids: &[u64]) -> Result<(), ClusterError> {
    for server in &plan.servers {
        if !ids.is_empty() && !ids.contains(&server.id) {
            continue;
        }
        for (port, what) in server.ports() {
            let Some(addr) = local_bind_addr(&server.host, port) else {
                continue;
            };
            match TcpListener::bind(addr) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    return Err(ClusterError::PortBusy {
                        id: server.id,
                        host: server.host.clone(),
                        port,
                        what,
                    })
                }
                Err(source) => {
                    return Err(ClusterError::PortUnusable {
                        id: server.id,
                        host: server.host.clone(),
                        port,
                        what,
                        source,
                    })
                }
            }
        }
    }
    Ok(())
}

/// Whether `host` is an address or name of this machine.
pub fn is_local_host(host: &str) -> bool {
    local_bind_addr(host, 0).is_some()
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Who should own the data directories (the service's user under systemd).
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Writes the files of the servers in `ids` (all when empty), after checking
/// that none exists. Nothing is written when a check fails.
pub fn write_peers(
    plan: &EnsemblePlan,
    layout: &Layout,
    ids: &[u64],
    owner: Option<Owner>,
) -> Result<Vec<PeerPaths>, ClusterError> {
    let chosen: Vec<&ServerPlan> = plan
        .servers
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .collect();
    for id in ids {
        if plan.server(*id).is_none() {
            return Err(ClusterError::Plan(format!(
                "--only {id}: the ensemble has no server.{id}"
            )));
        }
    }
    let peers: Vec<PeerPaths> = chosen.iter().map(|s| layout.peer(s.id)).collect();
    check_absent(&peers)?;
    for (server, peer) in chosen.iter().zip(&peers) {
        write_peer(plan, server, peer, owner)?;
    }
    Ok(peers)
}

fn write_peer(
    plan: &EnsemblePlan,
    server: &ServerPlan,
    peer: &PeerPaths,
    owner: Option<Owner>,
) -> Result<(), ClusterError> {
    let mut owned_by_service = vec![peer.data_dir.clone(), peer.data_log_dir.clone()];
    if let Some(log_dir) = &peer.log_dir {
        owned_by_service.push(log_dir.clone());
    }
    for dir in &owned_by_service {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let myid = peer.data_dir.join("myid");
    std::fs::write(&myid, format!("{}\n", server.id)).map_err(io_error(&myid))?;
    owned_by_service.push(myid);
    if let Some(owner) = owner {
        for path in &owned_by_service {
            nix::unistd::chown(
                path.as_path(),
                Some(nix::unistd::Uid::from_raw(owner.uid)),
                Some(nix::unistd::Gid::from_raw(owner.gid)),
            )
            .map_err(|e| ClusterError::Io {
                path: path.clone(),
                source: io::Error::from(e),
            })?;
        }
    }
    if let Some(dir) = peer.cfg.parent() {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let text = plan.render_cfg(server, peer);
    let mut temporary = peer.cfg.clone().into_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text).map_err(io_error(&temporary))?;
    std::fs::rename(&temporary, &peer.cfg).map_err(io_error(&peer.cfg))
}

/// Whether `cfg` was written by this tool.
pub fn is_ours(cfg: &Path) -> bool {
    std::fs::read_to_string(cfg).is_ok_and(|text| text.lines().next() == Some(MARKER))
}

/// Removes a peer's directories, if its zoo.cfg is ours.
pub fn remove_peer(peer: &PeerPaths) -> Result<(), ClusterError> {
    if !is_ours(&peer.cfg) {
        return Err(ClusterError::NotOurs {
            path: peer.cfg.clone(),
        });
    }
    for dir in &peer.owned_dirs {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(ClusterError::Io {
                    path: dir.clone(),
                    source: e,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_plans_give_every_server_distinct_ports() {
        let plan = EnsemblePlan::local(3, DEFAULT_HOST, 2181, 2888).unwrap();
        let lines: Vec<String> = plan.servers.iter().map(ServerPlan::server_line).collect();
        assert_eq!(
            lines,
            [
                "127.0.0.1:2888:3888;127.0.0.1:2181",
                "127.0.0.1:2889:3889;127.0.0.1:2182",
                "127.0.0.1:2890:3890;127.0.0.1:2183",
            ]
        );
        assert!(matches!(
            EnsemblePlan::local(0, DEFAULT_HOST, 2181, 2888),
            Err(ClusterError::Size(0))
        ));
        assert!(EnsemblePlan::local(3, DEFAULT_HOST, 65534, 2888).is_err());
        // Client ports running into quorum ports.
        assert!(matches!(
            EnsemblePlan::local(3, DEFAULT_HOST, 2887, 2888),
            Err(ClusterError::Plan(_))
        ));
    }

    #[test]
    fn toml_ensembles_default_ports_per_host_and_mark_observers() {
        let plan = EnsemblePlan::from_toml(
            r#"
            init_limit = 20
            [[server]]
            host = "10.0.0.1"
            [[server]]
            host = "10.0.0.2"
            [[server]]
            host = "10.0.0.2"
            observer = true
            [[server]]
            id = 9
            host = "10.0.0.3"
            client_port = 2200
            "#,
            Path::new("ensemble.toml"),
        )
        .unwrap();
        assert_eq!(plan.init_limit, 20);
        let lines: Vec<(u64, String)> = plan
            .servers
            .iter()
            .map(|s| (s.id, s.server_line()))
            .collect();
        assert_eq!(
            lines,
            [
                (1, "10.0.0.1:2888:3888;10.0.0.1:2181".to_owned()),
                (2, "10.0.0.2:2888:3888;10.0.0.2:2181".to_owned()),
                (3, "10.0.0.2:2889:3889:observer;10.0.0.2:2182".to_owned()),
                (9, "10.0.0.3:2888:3888;10.0.0.3:2200".to_owned()),
            ]
        );
        let err = EnsemblePlan::from_toml("[[server]]\nhots = \"x\"\n", Path::new("e.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hots"), "{err}");
    }

    #[test]
    fn written_configs_load_as_quorum_members() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::Local {
            base: dir.path().to_path_buf(),
        };
        let plan = EnsemblePlan::local(3, DEFAULT_HOST, 2181, 2888).unwrap();
        let peers = write_peers(&plan, &layout, &[], None).unwrap();
        assert_eq!(layout.discover().unwrap(), peers);
        let loaded = crate::config::ServerConfig::from_file(&peers[1].cfg).unwrap();
        assert_eq!(loaded.config.my_id, Some(2));
        assert_eq!(loaded.config.servers.len(), 3);
        assert_eq!(loaded.config.client_address().unwrap().port(), 2182);
        assert_eq!(loaded.config.transaction_log_dir(), peers[1].data_log_dir);
        assert!(matches!(
            write_peers(&plan, &layout, &[], None),
            Err(ClusterError::Exists { id: 1, .. })
        ));
        for peer in &peers {
            remove_peer(peer).unwrap();
        }
        assert!(layout.discover().unwrap().is_empty());
    }

    #[test]
    fn busy_ports_are_refused() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let plan = EnsemblePlan::local(1, DEFAULT_HOST, port, 40_000).unwrap();
        assert!(matches!(
            check_ports_free(&plan, &[]),
            Err(ClusterError::PortBusy {
                id: 1,
                what: "client port",
                ..
            })
        ));
    }
}
