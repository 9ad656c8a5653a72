//! `server.N` lines: their syntax and the shape of the quorum they describe.

use std::fmt;

use super::{
    ConfigError, Location, ServerConfig, Setting, MAX_EXTENDED_TYPES_SERVER_ID, MAX_SERVER_ID,
};

const SERVER_LINE_FORM: &str =
    "host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort] \
     (IPv6 addresses in [brackets])";

/// A quorum member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerType {
    /// Votes in elections and commits.
    #[default]
    Participant,
    /// Follows without voting.
    Observer,
}

impl fmt::Display for PeerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerType::Participant => "participant",
            PeerType::Observer => "observer",
        })
    }
}

/// One quorum address of a server: `host:quorumPort:electionPort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAddress {
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port followers use to reach the leader.
    pub quorum_port: u16,
    /// Port for leader election.
    pub election_port: u16,
}

/// Where a server takes client connections, from the `;[host:]port` part of its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEndpoint {
    /// Host or IP (without brackets); `None` means every interface.
    pub host: Option<String>,
    /// Client port.
    pub port: u16,
}

/// One `server.N=…` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// N, the server id (0..=255).
    pub id: u64,
    /// Quorum addresses: one, or several separated by `|` when `multiAddress.enabled`.
    pub addresses: Vec<QuorumAddress>,
    /// Participant unless the line says observer.
    pub peer_type: PeerType,
    /// The client endpoint, when the line has one.
    pub client: Option<ClientEndpoint>,
    /// The file and line it came from.
    pub location: Location,
}

/// Splits `host:port[:...]`, where the host may be a bracketed IPv6 literal.
fn split_host_and_ports(text: &str) -> Option<Vec<&str>> {
    match text.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            let ports = after.strip_prefix(':')?;
            let mut parts = vec![host];
            parts.extend(ports.split(':'));
            Some(parts)
        }
        None => Some(text.split(':').collect()),
    }
}

pub(super) fn parse_peer_type(text: &str) -> Option<PeerType> {
    match text.trim().to_ascii_lowercase().as_str() {
        "participant" => Some(PeerType::Participant),
        "observer" => Some(PeerType::Observer),
        _ => None,
    }
}

/// Parses `server.<id>=<spec>`.
pub(super) fn parse_server_line(
    setting: &Setting<'_>,
    id_text: &str,
) -> Result<ServerSpec, ConfigError> {
    let id = id_text
        .parse::<u64>()
        .ok()
        .filter(|id| *id <= MAX_SERVER_ID)
        .ok_or_else(|| ConfigError::Invalid {
            at: setting.at.clone(),
            key: setting.shown.to_owned(),
            message: format!(
                "expected a server id from 0 to {MAX_SERVER_ID} after \"server.\", found {id_text:?}"
            ),
        })?;
    let wrong_form = || setting.bad(SERVER_LINE_FORM);
    let mut halves = setting.value.split(';');
    let quorum_part = halves.next().unwrap_or_default();
    let client_part = halves.next();
    if halves.next().is_some() {
        return Err(wrong_form());
    }

    let mut addresses = Vec::new();
    let mut role: Option<PeerType> = None;
    for address in quorum_part.split('|') {
        let parts = split_host_and_ports(address.trim()).ok_or_else(wrong_form)?;
        let (host, quorum, election, kind) = match parts.as_slice() {
            [host, quorum, election] => (*host, *quorum, *election, None),
            [host, quorum, election, kind] => (*host, *quorum, *election, Some(*kind)),
            _ => return Err(wrong_form()),
        };
        let host = host.trim();
        if host.is_empty() {
            return Err(wrong_form());
        }
        let port = |text: &str| {
            text.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(wrong_form)
        };
        let quorum_port = port(quorum)?;
        let election_port = port(election)?;
        if quorum_port == election_port {
            return Err(ConfigError::Invalid {
                at: setting.at.clone(),
                key: setting.shown.to_owned(),
                message: format!(
                    "the quorum port and the election port must differ (both are {quorum_port})"
                ),
            });
        }
        if let Some(kind) = kind {
            let this_role = parse_peer_type(kind).ok_or_else(|| {
                setting.bad("a role of participant or observer after the election port")
            })?;
            if role.is_some_and(|r| r != this_role) {
                return Err(ConfigError::Invalid {
                    at: setting.at.clone(),
                    key: setting.shown.to_owned(),
                    message: "all addresses of one server must have the same role".to_owned(),
                });
            }
            role = Some(this_role);
        }
        addresses.push(QuorumAddress {
            host: host.to_owned(),
            quorum_port,
            election_port,
        });
    }

    let client = match client_part {
        None => None,
        Some(text) => {
            let parts = split_host_and_ports(text.trim()).ok_or_else(wrong_form)?;
            let (host, port) = match parts.as_slice() {
                [port] => (None, *port),
                [host, port] => (Some(host.trim().to_owned()), *port),
                _ => return Err(wrong_form()),
            };
            let port = port
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(wrong_form)?;
            Some(ClientEndpoint { host, port })
        }
    };

    Ok(ServerSpec {
        id,
        addresses,
        peer_type: role.unwrap_or_default(),
        client,
        location: setting.at.clone(),
    })
}

impl ServerConfig {
    /// Checks each server line against the id limit and the multi-address switch.
    pub(super) fn check_server_ids(&mut self) -> Result<(), ConfigError> {
        self.servers.sort_by_key(|s| s.id);
        let limit = self.server_id_limit();
        for spec in &self.servers {
            if spec.id > limit {
                return Err(ConfigError::Invalid {
                    at: spec.location.clone(),
                    key: format!("server.{}", spec.id),
                    message: format!(
                        "with extendedTypesEnabled, server ids must be at most {MAX_EXTENDED_TYPES_SERVER_ID}"
                    ),
                });
            }
            if spec.addresses.len() > 1 && !self.multi_address_enabled {
                return Err(ConfigError::Invalid {
                    at: spec.location.clone(),
                    key: format!("server.{}", spec.id),
                    message:
                        "several addresses separated by | need multiAddress.enabled=true in zoo.cfg"
                            .to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Checks the mix of participants and observers as Apache's `parseDynamicConfig` does.
    pub(super) fn check_quorum_shape(&self) -> Result<(), ConfigError> {
        let participants = self.participant_count();
        let observers = self.servers.len() - participants;
        let first_server = self.servers.first().map(|s| s.location.clone());
        let (at, key, message) = if participants == 0 && observers > 0 {
            (
                first_server,
                "server",
                "observers without any participant cannot form a quorum",
            )
        } else if participants == 0 && !self.standalone_enabled {
            (
                Some(self.key_location("standaloneEnabled")),
                "standaloneEnabled",
                "false needs at least one participant server.N line",
            )
        } else if participants == 1 && self.standalone_enabled && observers > 0 {
            (
                first_server,
                "server",
                "observers need a quorum; with a single participant set standaloneEnabled=false",
            )
        } else {
            return Ok(());
        };
        Err(ConfigError::Invalid {
            at: at.unwrap_or_else(|| self.key_location(key)),
            key: key.to_owned(),
            message: message.to_owned(),
        })
    }

    fn participant_count(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| s.peer_type == PeerType::Participant)
            .count()
    }

    /// The largest server id this configuration allows.
    pub fn server_id_limit(&self) -> u64 {
        if self.extended_types_enabled {
            MAX_EXTENDED_TYPES_SERVER_ID
        } else {
            MAX_SERVER_ID
        }
    }

    /// True when this server is meant to run in a quorum rather than alone: more than one
    /// participant, or `standaloneEnabled=false` (Apache's `isDistributed`).
    pub fn is_distributed(&self) -> bool {
        !self.standalone_enabled || self.participant_count() > 1
    }
}
