//! `zkServer status`: where a server takes clients, found in zoo.cfg the way
//! Apache's `zkServer.sh status` finds it, and the ensemble view that asks
//! every `server.N` line's client port.
//!
//! Apache's order, kept here: `clientPortAddress` (else `localhost`) and
//! `clientPort`; without a numeric `clientPort`, the `;[host:]port` part of
//! this server's `server.<myid>` line (in zoo.cfg, then in the
//! `dynamicConfigFile`); without either, `secureClientPort`.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::env::{CfgError, RawConfig};
use super::probe::{self, SrvrReport};

/// Where to ask a server for its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTarget {
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
    /// Found through `secureClientPort`. We speak plain TCP only, so asking
    /// such a port fails, as Apache's script does without client TLS flags.
    pub ssl: bool,
}

impl ClientTarget {
    /// `Client port found: P. Client address: A. Client SSL: false.`, Apache's line.
    pub fn found_line(&self) -> String {
        format!(
            "Client port found: {}. Client address: {}. Client SSL: {}.",
            self.port, self.host, self.ssl
        )
    }
}

/// The outcome of looking for the client port: the target, if any, and the
/// remarks Apache's script prints on the way.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub target: Option<ClientTarget>,
    pub notes: Vec<String>,
}

/// The `;[host:]port` part of a `server.N` value: (host, port).
fn client_part(value: &str) -> Option<(Option<String>, u16)> {
    let (_, client) = value.split_once(';')?;
    let client = client.trim();
    let (host, port) = match client.rsplit_once(':') {
        Some((host, port)) => (Some(host.trim_matches(['[', ']']).to_owned()), port),
        None => (None, client),
    };
    let port = port.trim().parse().ok()?;
    Some((host.filter(|h| !h.is_empty()), port))
}

fn static_lines(raw: &RawConfig) -> Vec<(u64, String)> {
    raw.server_lines()
        .into_iter()
        .map(|(id, v)| (id, v.to_owned()))
        .collect()
}

/// The `server.N` lines of the `dynamicConfigFile`, if it names a readable one.
fn dynamic_lines(raw: &RawConfig) -> Vec<(u64, String)> {
    raw.get("dynamicConfigFile")
        .and_then(|dynamic| RawConfig::read(Path::new(dynamic)).ok())
        .map(|dynamic| static_lines(&dynamic))
        .unwrap_or_default()
}

/// The `server.N` lines of `raw`, or of its `dynamicConfigFile` when it has none.
fn server_lines(raw: &RawConfig) -> Vec<(u64, String)> {
    let own = static_lines(raw);
    if own.is_empty() {
        dynamic_lines(raw)
    } else {
        own
    }
}

/// Finds where this server takes clients, as Apache's `zkServer.sh status` does.
pub fn find_client_target(raw: &RawConfig) -> Lookup {
    let mut lookup = Lookup::default();
    let mut host = raw.get("clientPortAddress").map(str::to_owned);
    let mut port = raw.get("clientPort").and_then(|p| p.parse::<u16>().ok());
    if port.is_none() {
        match raw.my_id() {
            None => lookup.notes.push(
                "myid could not be determined; cannot look for the client port in the server.N lines."
                    .to_owned(),
            ),
            Some(my_id) => {
                let mine = |lines: Vec<(u64, String)>| {
                    lines
                        .into_iter()
                        .find(|(id, _)| *id == my_id)
                        .and_then(|(_, value)| client_part(&value))
                };
                let mut found = mine(static_lines(raw));
                if found.is_none() {
                    lookup.notes.push(
                        "Client port not found in static config file. Looking in dynamic config file."
                            .to_owned(),
                    );
                    found = mine(dynamic_lines(raw));
                }
                match found {
                    None => lookup
                        .notes
                        .push("Client port not found in the server configs".to_owned()),
                    Some((line_host, line_port)) => {
                        if line_host.is_some() {
                            host = line_host;
                        }
                        port = Some(line_port);
                    }
                }
            }
        }
    }
    let mut ssl = false;
    if port.is_none() {
        lookup.notes.push(
            "Client port not found. Looking for secureClientPort in the static config.".to_owned(),
        );
        if let Some(secure) = raw
            .get("secureClientPort")
            .and_then(|p| p.parse::<u16>().ok())
        {
            ssl = true;
            port = Some(secure);
            host = raw.get("secureClientPortAddress").map(str::to_owned);
        }
    }
    match port {
        Some(port) => {
            lookup.target = Some(ClientTarget {
                host: host.unwrap_or_else(|| "localhost".to_owned()),
                port,
                ssl,
            })
        }
        None => lookup.notes.push(
            "Unable to find either secure or unsecure client port in any configs. Terminating."
                .to_owned(),
        ),
    }
    lookup
}

/// Asks `target` for `srvr`.
pub fn ask_srvr(target: &ClientTarget, timeout: Duration) -> std::io::Result<SrvrReport> {
    probe::ask_host(&target.host, target.port, "srvr", timeout).map(|a| SrvrReport::parse(&a))
}

/// One `server.N` line, as the ensemble view needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    pub id: u64,
    /// `participant` or `observer`.
    pub role: String,
    /// Where it takes clients.
    pub host: String,
    pub port: u16,
}

/// The peers named by the `server.N` lines (or the dynamic file's), with their
/// client endpoints: the line's `;[host:]port`, else its quorum host with this
/// file's `clientPort` (the classic layout where every member uses the same
/// port). Lines without either are left out.
pub fn ensemble_peers(raw: &RawConfig) -> Vec<Peer> {
    let default_port = raw.get("clientPort").and_then(|p| p.parse::<u16>().ok());
    server_lines(raw)
        .into_iter()
        .filter_map(|(id, value)| {
            let quorum = value.split(';').next().unwrap_or_default();
            let first_address = quorum.split('|').next().unwrap_or_default().trim();
            let (quorum_host, rest) = match first_address.strip_prefix('[') {
                Some(bracketed) => bracketed.split_once(']')?,
                None => first_address.split_once(':')?,
            };
            let role = if rest.trim_end().to_ascii_lowercase().ends_with(":observer") {
                "observer"
            } else {
                "participant"
            };
            let (client_host, port) = match client_part(&value) {
                Some((host, port)) => (host, port),
                None => (None, default_port?),
            };
            let host = client_host
                .filter(|h| h != "0.0.0.0" && h != "::")
                .unwrap_or_else(|| quorum_host.to_owned());
            Some(Peer {
                id,
                role: role.to_owned(),
                host,
                port,
            })
        })
        .collect()
}

/// What one peer said, or why it said nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    pub id: u64,
    pub role: String,
    /// `host:port` of its client port.
    pub address: String,
    /// It answered `srvr`.
    pub reachable: bool,
    /// It answered with a mode, so it serves clients.
    pub serving: bool,
    pub mode: Option<String>,
    /// The last zxid it applied, in hex as `srvr` prints it.
    pub zxid: Option<String>,
    pub error: Option<String>,
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Asks every peer for `srvr` at once, each within `timeout`.
pub fn probe_peers(peers: &[Peer], timeout: Duration) -> Vec<PeerStatus> {
    std::thread::scope(|scope| {
        let asks: Vec<_> = peers
            .iter()
            .map(|peer| {
                scope.spawn(move || {
                    probe::ask_host(&peer.host, peer.port, "srvr", timeout)
                        .map(|a| SrvrReport::parse(&a))
                })
            })
            .collect();
        peers
            .iter()
            .zip(asks)
            .map(|(peer, ask)| {
                let answer = ask
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the probe thread panicked")));
                let mut status = PeerStatus {
                    id: peer.id,
                    role: peer.role.clone(),
                    address: host_port(&peer.host, peer.port),
                    reachable: false,
                    serving: false,
                    mode: None,
                    zxid: None,
                    error: None,
                };
                match answer {
                    Ok(report) => {
                        status.reachable = true;
                        status.serving = report.mode.is_some();
                        status.zxid = report.zxid.map(|z| format!("0x{z:x}"));
                        if !status.serving {
                            status.error = Some("not currently serving requests".to_owned());
                        }
                        status.mode = report.mode;
                    }
                    Err(e) => status.error = Some(e.to_string()),
                }
                status
            })
            .collect()
    })
}

/// The ensemble view as text: a header and one line per peer.
pub fn render_table(statuses: &[PeerStatus]) -> String {
    let rows: Vec<[String; 6]> = statuses
        .iter()
        .map(|s| {
            let state = match (&s.error, s.reachable) {
                (None, _) => "reachable".to_owned(),
                (Some(e), true) => format!("reachable, {e}"),
                (Some(e), false) => format!("unreachable ({e})"),
            };
            [
                s.id.to_string(),
                s.address.clone(),
                s.role.clone(),
                s.mode.clone().unwrap_or_else(|| "-".to_owned()),
                s.zxid.clone().unwrap_or_else(|| "-".to_owned()),
                state,
            ]
        })
        .collect();
    let header = ["ID", "ADDRESS", "ROLE", "MODE", "ZXID", "STATE"].map(str::to_owned);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The ensemble view as JSON: `{"peers": [...]}`.
pub fn render_json(statuses: &[PeerStatus]) -> String {
    #[derive(Serialize)]
    struct View<'a> {
        peers: &'a [PeerStatus],
    }
    serde_json::to_string_pretty(&View { peers: statuses })
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Reads `path` and returns its peers; an error when there are none to ask.
pub fn peers_of(path: &Path) -> Result<Vec<Peer>, StatusError> {
    let raw = RawConfig::read(path)?;
    let peers = ensemble_peers(&raw);
    if peers.is_empty() {
        return Err(StatusError::NoPeers {
            path: path.display().to_string(),
        });
    }
    Ok(peers)
}

/// Why the ensemble view cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Config(#[from] CfgError),
    #[error("{path} has no server.N lines with a client port to ask")]
    NoPeers { path: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawConfig {
        RawConfig::parse(text, Path::new("zoo.cfg")).unwrap()
    }

    #[test]
    fn client_port_and_address_come_first() {
        let lookup = find_client_target(&raw("dataDir=/nonexistent\nclientPort=2191\n"));
        assert_eq!(
            lookup.target.unwrap().found_line(),
            "Client port found: 2191. Client address: localhost. Client SSL: false."
        );
        let lookup = find_client_target(&raw(
            "dataDir=/x\nclientPort=2191\nclientPortAddress=127.0.0.2\n",
        ));
        assert_eq!(lookup.target.unwrap().host, "127.0.0.2");
    }

    #[test]
    fn without_client_port_this_servers_line_is_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        let text = format!(
            "dataDir={}\nserver.1=h1:2888:3888;2181\nserver.2=h2:2889:3889;[::1]:2182\n",
            dir.path().display()
        );
        let target = find_client_target(&raw(&text)).target.unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 2182));

        std::fs::write(dir.path().join("myid"), "1\n").unwrap();
        let target = find_client_target(&raw(&text)).target.unwrap();
        assert_eq!((target.host.as_str(), target.port), ("localhost", 2181));
    }

    #[test]
    fn no_port_anywhere_says_so() {
        let lookup = find_client_target(&raw("dataDir=/nonexistent\n"));
        assert!(lookup.target.is_none());
        assert!(lookup.notes.last().unwrap().contains("Terminating"));
        let lookup = find_client_target(&raw("dataDir=/nonexistent\nsecureClientPort=2281\n"));
        assert!(lookup.target.unwrap().ssl);
    }

    #[test]
    fn ensemble_peers_take_the_client_part_or_the_shared_client_port() {
        let peers = ensemble_peers(&raw("dataDir=/x\nclientPort=2181\n\
             server.1=10.0.0.1:2888:3888\n\
             server.2=10.0.0.2:2888:3888;0.0.0.0:2182\n\
             server.3=[fe80::1]:2888:3888:observer;127.0.0.1:2183\n"));
        let seen: Vec<(u64, &str, &str, u16)> = peers
            .iter()
            .map(|p| (p.id, p.role.as_str(), p.host.as_str(), p.port))
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, "participant", "10.0.0.1", 2181),
                (2, "participant", "10.0.0.2", 2182),
                (3, "observer", "127.0.0.1", 2183),
            ]
        );
    }

    #[test]
    fn unreachable_peers_are_reported_not_fatal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let statuses = probe_peers(
            &[Peer {
                id: 7,
                role: "participant".into(),
                host: "127.0.0.1".into(),
                port,
            }],
            Duration::from_secs(2),
        );
        assert!(!statuses[0].reachable);
        assert!(statuses[0].error.is_some());
        let table = render_table(&statuses);
        assert!(table.lines().nth(1).unwrap().starts_with("7 "));
        assert!(table.contains("unreachable"));
        let json: serde_json::Value = serde_json::from_str(&render_json(&statuses)).unwrap();
        assert_eq!(json["peers"][0]["id"], 7);
        assert_eq!(json["peers"][0]["reachable"], false);
    }
}
