//! Asking a server a four-letter word, and reading the `srvr` answer.
//!
//! `srvr` is the probe because every server answers it whatever its
//! four-letter-word whitelist says (Apache always allows it, and so do we).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers are small; a peer that sends more than this is not a ZooKeeper
/// server answering `srvr`, and is not read further.
const MAX_ANSWER: u64 = 1 << 20;

/// What a `srvr` answer says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SrvrReport {
    /// `Zookeeper version:`.
    pub version: Option<String>,
    /// `Mode:`: standalone, leader, follower, observer, read-only. `None` when
    /// the server answered but is not serving (Apache answers "This ZooKeeper
    /// instance is not currently serving requests" while electing).
    pub mode: Option<String>,
    /// `Zxid:`, the last applied transaction.
    pub zxid: Option<u64>,
    /// `Node count:`.
    pub node_count: Option<u64>,
}

impl SrvrReport {
    /// Reads the lines it knows and ignores the rest.
    pub fn parse(answer: &str) -> SrvrReport {
        let mut report = SrvrReport::default();
        for line in answer.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "Zookeeper version" => report.version = Some(value.to_owned()),
                "Mode" => report.mode = Some(value.to_owned()).filter(|m| !m.is_empty()),
                "Zxid" => report.zxid = parse_zxid(value),
                "Node count" => report.node_count = value.parse().ok(),
                _ => {}
            }
        }
        report
    }

    /// The `Mode: …` line as the server printed it, as `zkServer status` shows it.
    pub fn mode_line(&self) -> Option<String> {
        self.mode.as_ref().map(|mode| format!("Mode: {mode}"))
    }
}

fn parse_zxid(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The address to connect to for a server listening on `listen`: a wildcard
/// listener is reached on the loopback address of its family.
pub fn reachable_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Sends `word` to `addr` and reads the answer until the server closes, all
/// within `timeout`.
pub fn ask(addr: SocketAddr, word: &str, timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    let remaining = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream.set_write_timeout(Some(remaining()))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(remaining()))?;
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no complete answer in time",
            ));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&chunk[..n]);
                if answer.len() as u64 > MAX_ANSWER {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "answer too long",
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Like [`ask`], for a host name (tried address by address, as a client
/// would) or an IP literal.
pub fn ask_host(host: &str, port: u16, word: &str, timeout: Duration) -> io::Result<String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (bare, port).to_socket_addrs()?.collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in addrs {
        match ask(reachable_addr(addr), word, timeout) {
            Ok(answer) => return Ok(answer),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// [`ask`] for async callers (the server's own readiness probe).
pub async fn ask_async(addr: SocketAddr, word: &str, timeout: Duration) -> io::Result<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(word.as_bytes()).await?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await?;
        Ok::<_, io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no complete answer in time",
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srvr_answers_are_read_line_by_line() {
        let report = SrvrReport::parse(
            "Zookeeper version: 3.9.3-zookeeper-rs-0.1.0\nLatency min/avg/max: 0/0.0/0\n\
             Zxid: 0x1f\nMode: follower\nNode count: 5\n",
        );
        assert_eq!(report.mode.as_deref(), Some("follower"));
        assert_eq!(report.zxid, Some(0x1f));
        assert_eq!(report.node_count, Some(5));
        assert_eq!(report.mode_line().as_deref(), Some("Mode: follower"));
        assert_eq!(
            SrvrReport::parse("This ZooKeeper instance is not currently serving requests\n"),
            SrvrReport::default()
        );
    }

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        assert_eq!(
            reachable_addr("0.0.0.0:2181".parse().unwrap()),
            "127.0.0.1:2181".parse().unwrap()
        );
        assert_eq!(
            reachable_addr("[::]:2181".parse().unwrap()),
            "[::1]:2181".parse().unwrap()
        );
        assert_eq!(
            reachable_addr("10.1.2.3:2181".parse().unwrap()),
            "10.1.2.3:2181".parse().unwrap()
        );
    }
}
