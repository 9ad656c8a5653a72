//! Connect strings: `host:port[,host:port…][/chroot]`, as every ZooKeeper
//! client takes them.

use super::error::Error;
use super::path::validate_path;

/// The port a host without one is reached on.
pub const DEFAULT_PORT: u16 = 2181;

/// One server of a connect string, unresolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// A name or an address; IPv6 addresses without their brackets.
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// The servers, in the order given.
    pub hosts: Vec<HostPort>,
    /// The subtree every path is relative to; `None` for the whole tree
    /// (a chroot of `/` is the whole tree).
    pub chroot: Option<String>,
}

impl ConnectString {
    /// Parses `host[:port][,host[:port]…][/chroot]`. IPv6 addresses go in
    /// brackets (`[::1]:2181`).
    pub fn parse(input: &str) -> Result<ConnectString, Error> {
        let fail = |reason: &str| Error::ConnectString {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (hosts_part, chroot) = match input.find('/') {
            Some(at) => {
                let chroot = &input[at..];
                if chroot.len() == 1 {
                    (&input[..at], None)
                } else {
                    validate_path(chroot).map_err(|e| fail(&e.to_string()))?;
                    (&input[..at], Some(chroot.to_string()))
                }
            }
            None => (input, None),
        };
        let mut hosts = Vec::new();
        for item in hosts_part.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            hosts.push(parse_host_port(item).map_err(|reason| fail(&reason))?);
        }
        if hosts.is_empty() {
            return Err(fail("no server given"));
        }
        Ok(ConnectString { hosts, chroot })
    }

    /// The servers alone, comma-separated, as the zkCli prompt shows them.
    pub fn servers(&self) -> String {
        self.hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Display for ConnectString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.servers())?;
        if let Some(chroot) = &self.chroot {
            f.write_str(chroot)?;
        }
        Ok(())
    }
}

fn parse_host_port(item: &str) -> Result<HostPort, String> {
    let (host, port) = if let Some(rest) = item.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in {item:?}"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected {after:?} after ']' in {item:?}")),
            },
        }
    } else {
        match item.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return Err(format!("IPv6 address {item:?} must be in brackets")),
            None => (item, None),
        }
    };
    if host.is_empty() {
        return Err(format!("empty host in {item:?}"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("invalid port {text:?} in {item:?}"))?,
    };
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ports_and_chroot() {
        let cs = ConnectString::parse("a:1,b,[::1]:3/app/x").unwrap();
        assert_eq!(
            cs.hosts,
            vec![
                HostPort {
                    host: "a".into(),
                    port: 1
                },
                HostPort {
                    host: "b".into(),
                    port: DEFAULT_PORT
                },
                HostPort {
                    host: "::1".into(),
                    port: 3
                },
            ]
        );
        assert_eq!(cs.chroot.as_deref(), Some("/app/x"));
        assert_eq!(cs.to_string(), "a:1,b:2181,[::1]:3/app/x");
    }

    #[test]
    fn root_chroot_is_no_chroot() {
        assert_eq!(ConnectString::parse("h:1/").unwrap().chroot, None);
    }

    #[test]
    fn bad_strings_are_refused() {
        for bad in [
            "", "/x", "h:port", "h:0", "h:1/a/", "::1:2", "[::1", "h:1/a//b",
        ] {
            assert!(ConnectString::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
